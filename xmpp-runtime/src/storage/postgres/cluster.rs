//! A throwaway PostgreSQL cluster for tests: Debian's server binaries,
//! `initdb` into a temporary directory (as the `postgres` user when the
//! tests run as root, which initdb refuses), one loopback port, a fresh
//! database per test. The cluster lives as long as the test process: a
//! watchdog stops it and removes its directory when the process is gone.
//!
//! Without PostgreSQL installed the tests that need it are skipped with a
//! message, unless `CI` is set (CI installs it, so a missing server there
//! is a failure, not a skip).

use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;

use super::PgOptions;

/// A running cluster.
pub struct Cluster {
    bin: PathBuf,
    dir: PathBuf,
    port: u16,
    as_postgres: bool,
}

static CLUSTER: OnceLock<Option<Cluster>> = OnceLock::new();
static DATABASES: AtomicU32 = AtomicU32::new(0);
static CLUSTERS: AtomicU32 = AtomicU32::new(0);

/// The directory of the newest installed PostgreSQL's programs.
fn bin_dir() -> Option<PathBuf> {
    if let Ok(dir) = std::env::var("VIREO_PG_BIN") {
        return Some(PathBuf::from(dir));
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let v = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").exists().then_some((v, bin))
        })
        .collect();
    versions.sort();
    versions.pop().map(|(_, bin)| bin)
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or(54329)
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

impl Cluster {
    /// The shared cluster, started at the first call; `None` (after saying
    /// why) when PostgreSQL is not installed outside CI.
    pub fn get() -> Option<&'static Cluster> {
        CLUSTER.get_or_init(Cluster::own).as_ref()
    }

    /// A cluster of the caller's own (one it may restart without
    /// disturbing other tests), stopped when dropped.
    pub fn own() -> Option<Cluster> {
        let Some(bin) = bin_dir() else {
            if std::env::var_os("CI").is_some() {
                panic!("PostgreSQL is not installed (/usr/lib/postgresql/*/bin): CI must install the postgresql package");
            }
            eprintln!("SKIPPED: PostgreSQL is not installed; install Debian's postgresql package to run the PostgreSQL backend tests");
            return None;
        };
        Some(Cluster::start(bin))
    }

    fn run(&self, program: &str, args: &[&str]) {
        let path = self.bin.join(program);
        let mut cmd = if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(&path);
            c
        } else {
            Command::new(&path)
        };
        let out = cmd
            .args(args)
            .output()
            .unwrap_or_else(|e| panic!("running {}: {e}", path.display()));
        assert!(
            out.status.success(),
            "{program} {args:?} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    fn start(bin: PathBuf) -> Cluster {
        let as_postgres = is_root();
        let dir = std::env::temp_dir().join(format!(
            "vireo-pgtest-{}-{}",
            std::process::id(),
            CLUSTERS.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("cluster directory");
        if as_postgres {
            let status = Command::new("chown")
                .args(["postgres:postgres"])
                .arg(&dir)
                .status()
                .expect("chown");
            assert!(status.success(), "chown postgres {}", dir.display());
        }
        let cluster = Cluster {
            bin,
            dir,
            port: free_port(),
            as_postgres,
        };
        let data = cluster.dir.join("data");
        let data = data.to_str().expect("utf-8 path");
        cluster.run(
            "initdb",
            &["-D", data, "-A", "trust", "-U", "postgres", "-E", "UTF8"],
        );
        cluster.pg_start();
        cluster.watch();
        cluster
    }

    /// Stops the cluster and removes its directory once this process is
    /// gone (tests have no global teardown).
    fn watch(&self) {
        let pg_ctl = self.bin.join("pg_ctl");
        let data = self.dir.join("data");
        let stop = if self.as_postgres {
            format!(
                "runuser -u postgres -- {} -D {} -m immediate stop",
                pg_ctl.display(),
                data.display()
            )
        } else {
            format!(
                "{} -D {} -m immediate stop",
                pg_ctl.display(),
                data.display()
            )
        };
        let script = format!(
            "while kill -0 {pid} 2>/dev/null; do sleep 1; done; {stop} >/dev/null 2>&1; rm -rf {dir}",
            pid = std::process::id(),
            dir = self.dir.display()
        );
        let _ = Command::new("setsid")
            .args(["sh", "-c", &script])
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn();
    }

    /// Options for the database `name` (which need not exist yet).
    pub fn options(&self, name: &str) -> PgOptions {
        PgOptions {
            host: "127.0.0.1".into(),
            port: self.port,
            database: name.into(),
            user: "postgres".into(),
            password: None,
            tls: "disable".into(),
            pool_size: 4,
            ..PgOptions::default()
        }
    }

    /// Creates a fresh database and returns its options.
    pub fn fresh_database(&self) -> PgOptions {
        let name = format!(
            "t{}_{}",
            std::process::id(),
            DATABASES.fetch_add(1, Ordering::Relaxed)
        );
        let port = self.port.to_string();
        self.run(
            "createdb",
            &["-h", "127.0.0.1", "-p", &port, "-U", "postgres", &name],
        );
        self.options(&name)
    }

    fn stop(&self) {
        let data = self.dir.join("data");
        let data = data.to_str().expect("utf-8 path");
        self.run("pg_ctl", &["-D", data, "-m", "immediate", "-w", "stop"]);
        let _ = std::fs::remove_dir_all(&self.dir);
    }

    /// Stops the server (fast) and starts it again on the same port: what
    /// an operator's restart looks like to a client.
    pub fn restart(&self) {
        let data = self.dir.join("data");
        let data = data.to_str().expect("utf-8 path");
        self.run("pg_ctl", &["-D", data, "-m", "fast", "-w", "stop"]);
        self.pg_start();
    }

    /// Turns TLS on with a certificate for "localhost" signed by itself
    /// (restarting the server) and returns that certificate, the one
    /// authority clients must trust.
    pub fn enable_tls(&self) -> PathBuf {
        let data = self.dir.join("data");
        let paths =
            crate::tls::generate_self_signed(&["localhost".to_owned()], &self.dir.join("certs"))
                .expect("test certificate");
        let (cert, key) = (data.join("server.crt"), data.join("server.key"));
        std::fs::copy(&paths.cert, &cert).expect("copy certificate");
        std::fs::copy(&paths.key, &key).expect("copy key");
        if self.as_postgres {
            let status = Command::new("chown")
                .args(["postgres:postgres"])
                .args([&cert, &key])
                .status()
                .expect("chown");
            assert!(status.success(), "chown the certificate");
        }
        // PostgreSQL refuses a key others can read.
        std::fs::set_permissions(&key, std::os::unix::fs::PermissionsExt::from_mode(0o600))
            .expect("chmod key");
        let conf = data.join("postgresql.conf");
        let mut text = std::fs::read_to_string(&conf).expect("postgresql.conf");
        text.push_str("\nssl = on\nssl_cert_file = 'server.crt'\nssl_key_file = 'server.key'\n");
        std::fs::write(&conf, text).expect("write postgresql.conf");
        self.restart();
        paths.cert
    }

    /// `pg_ctl start` on the cluster's port and socket directory.
    fn pg_start(&self) {
        let data = self.dir.join("data");
        let data = data.to_str().expect("utf-8 path");
        let opts = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c max_connections=200",
            self.port,
            self.dir.display()
        );
        let log = self.dir.join("log");
        let log = log.to_str().expect("utf-8 path");
        self.run(
            "pg_ctl",
            &["-D", data, "-o", &opts, "-l", log, "-w", "start"],
        );
    }
}

impl Drop for Cluster {
    /// Only clusters of a test's own are dropped (the shared one is a
    /// static): stop it now rather than when the process ends.
    fn drop(&mut self) {
        self.stop();
    }
}
