//! The admin commands driven through the built `vireo` binary, each in its
//! own temporary directory: `config backup`, `config test`, `module list`,
//! `cert import`, `check certs`, `about`.

use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// Run `vireo ARGS` in `cwd` with no VIREO_* variable from the test's
/// environment, `stdin` fed to it.
fn vireo_with_stdin(cwd: &Path, args: &[&str], stdin: &str) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_vireo"));
    cmd.args(args)
        .current_dir(cwd)
        .env("NO_COLOR", "1")
        .env_remove("RUST_LOG")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("VIREO_") {
            cmd.env_remove(k);
        }
    }
    let mut child = cmd.spawn().expect("spawn vireo");
    if let Some(mut input) = child.stdin.take() {
        input.write_all(stdin.as_bytes()).expect("write stdin");
    }
    child.wait_with_output().expect("wait for vireo")
}

fn vireo(cwd: &Path, args: &[&str]) -> Output {
    vireo_with_stdin(cwd, args, "")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn describe(o: &Output) -> String {
    format!(
        "status {:?}\n--- stdout\n{}\n--- stderr\n{}",
        o.status.code(),
        stdout(o),
        stderr(o)
    )
}

/// A configuration file in `dir` hosting `domains`, data in `dir/data`,
/// plus `extra` TOML appended (sections go last).
fn write_config(dir: &Path, domains: &[&str], extra: &str) -> PathBuf {
    let path = dir.join("vireo.toml");
    let list: Vec<String> = domains.iter().map(|d| format!("{d:?}")).collect();
    let text = format!(
        "# test configuration\ndomains = [{}]\ndata_path = \"{}\"\n{extra}",
        list.join(", "),
        dir.join("data").display()
    );
    std::fs::write(&path, text).expect("write config");
    path
}

/// A self-signed certificate for `names` (valid from 1975 to 4096, or
/// for the year ending on `expired_on` when given), written as
/// `dir/NAME.crt` / `dir/NAME.key`.
fn make_cert(
    dir: &Path,
    file: &str,
    names: &[&str],
    expired_on: Option<(i32, u8, u8)>,
) -> (PathBuf, PathBuf) {
    let names: Vec<String> = names.iter().map(|s| s.to_string()).collect();
    let mut params = rcgen::CertificateParams::new(names).expect("params");
    if let Some((y, m, d)) = expired_on {
        params.not_before = rcgen::date_time_ymd(y - 1, m, d);
        params.not_after = rcgen::date_time_ymd(y, m, d);
    }
    let key = rcgen::KeyPair::generate().expect("key");
    let cert = params.self_signed(&key).expect("self-sign");
    let cert_path = dir.join(format!("{file}.crt"));
    let key_path = dir.join(format!("{file}.key"));
    std::fs::write(&cert_path, cert.pem()).expect("write cert");
    std::fs::write(&key_path, key.serialize_pem()).expect("write key");
    (cert_path, key_path)
}

fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 temp path")
}

/// The path after `archive: ` in the output.
fn archive_path(o: &Output) -> PathBuf {
    let out = stdout(o);
    let line = out
        .lines()
        .find_map(|l| l.strip_prefix("archive: "))
        .unwrap_or_else(|| panic!("no archive line\n{}", describe(o)));
    PathBuf::from(line)
}

/// Every entry of a tar archive (gzip when the name ends in `.gz`), with
/// the contents of regular files.
fn entries(archive: &Path) -> Vec<(String, Vec<u8>)> {
    let file = std::fs::File::open(archive).expect("open archive");
    let reader: Box<dyn Read> = if archive.extension().is_some_and(|e| e == "gz") {
        Box::new(flate2::read::GzDecoder::new(file))
    } else {
        Box::new(file)
    };
    let mut ar = tar::Archive::new(reader);
    let mut out = Vec::new();
    for e in ar.entries().expect("entries") {
        let mut e = e.expect("entry");
        let name = e.path().expect("path").display().to_string();
        let mut data = Vec::new();
        e.read_to_end(&mut data).expect("read entry");
        out.push((name, data));
    }
    out
}

fn find<'a>(entries: &'a [(String, Vec<u8>)], suffix: &str) -> Option<&'a [u8]> {
    entries
        .iter()
        .find(|(n, _)| n.ends_with(suffix))
        .map(|(_, d)| d.as_slice())
}

#[test]
fn backup_archives_the_configuration_file() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(dir.path(), &["example.com"], "");
    let dest = dir.path().join("backups");
    let o = vireo(dir.path(), &["-c", s(&cfg), "config", "backup", s(&dest)]);
    assert!(o.status.success(), "{}", describe(&o));
    let archive = archive_path(&o);
    assert!(archive.starts_with(&dest), "{}", archive.display());
    let name = archive.file_name().unwrap().to_string_lossy().into_owned();
    assert!(
        name.starts_with("vireo-backup-20") && name.ends_with("Z.tar"),
        "{name}"
    );
    let mode = std::fs::metadata(&archive).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    let entries = entries(&archive);
    let stored = find(&entries, "/config/vireo.toml").expect("config in archive");
    assert_eq!(stored, std::fs::read(&cfg).unwrap().as_slice());
    let manifest = String::from_utf8(find(&entries, "/MANIFEST.txt").unwrap().to_vec()).unwrap();
    assert!(
        manifest.contains(&format!("file {}", cfg.display())),
        "{manifest}"
    );
    assert!(manifest.contains("example.com"), "{manifest}");
    // A second backup in the same second gets another name.
    let o2 = vireo(dir.path(), &["-c", s(&cfg), "config", "backup", s(&dest)]);
    assert!(o2.status.success(), "{}", describe(&o2));
    assert_ne!(archive_path(&o2), archive);
}

#[test]
fn backup_gzip_and_defaults() {
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("out");
    // No --config and no VIREO_CONFIG_PATH: the built-in defaults are noted.
    let o = vireo(dir.path(), &["config", "backup", "--gzip", s(&dest)]);
    assert!(o.status.success(), "{}", describe(&o));
    assert!(stdout(&o).contains("built-in defaults"), "{}", describe(&o));
    let archive = archive_path(&o);
    assert!(archive.to_string_lossy().ends_with(".tar.gz"));
    let entries = entries(&archive);
    let manifest = String::from_utf8(find(&entries, "/MANIFEST.txt").unwrap().to_vec()).unwrap();
    assert!(manifest.contains("built-in defaults"), "{manifest}");
    assert!(
        !entries.iter().any(|(n, _)| n.contains("/config/")),
        "{entries:?}"
    );
}

#[test]
fn backup_with_data_snapshots_the_stopped_store() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(dir.path(), &["example.com"], "");
    // Without a store there is nothing to snapshot.
    let o = vireo(
        dir.path(),
        &["-c", s(&cfg), "config", "backup", "--data", "out"],
    );
    assert!(!o.status.success(), "{}", describe(&o));
    assert!(stderr(&o).contains("no store at"), "{}", describe(&o));

    let o = vireo_with_stdin(
        dir.path(),
        &["-c", s(&cfg), "adduser", "alice@example.com"],
        "secret\n",
    );
    assert!(o.status.success(), "{}", describe(&o));
    let o = vireo(
        dir.path(),
        &["-c", s(&cfg), "config", "backup", "--data", "out"],
    );
    assert!(o.status.success(), "{}", describe(&o));
    assert!(
        stdout(&o).contains("(1 account, consistent snapshot opened, recovered and flushed"),
        "{}",
        describe(&o)
    );
    let archive = archive_path(&o);
    let archive = if archive.is_absolute() {
        archive
    } else {
        dir.path().join(archive)
    };
    // Restore the store somewhere else and open it: the account is there.
    let restore = dir.path().join("restore");
    tar::Archive::new(std::fs::File::open(&archive).unwrap())
        .unpack(&restore)
        .unwrap();
    let root = std::fs::read_dir(&restore)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    assert!(root.join("config/vireo.toml").is_file());
    assert!(root.join("data/store/vireo.redb").is_file());
    let store = vireo::store::open_store_at("redb", &root.join("data/store"), 1 << 20).unwrap();
    assert_eq!(
        store.accounts().unwrap(),
        vec!["alice@example.com".to_owned()]
    );
}

#[test]
fn backup_with_data_reports_a_failed_server_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(dir.path(), &["example.com"], "");
    std::fs::create_dir_all(dir.path().join("data/store")).unwrap();
    // A "running server" whose snapshot fails: the backup must fail and say
    // why, writing no archive. (A real server's snapshot is exercised by
    // the interop test test_backup_with_data_while_running.)
    let listener =
        std::os::unix::net::UnixListener::bind(dir.path().join("data/admin.sock")).unwrap();
    let server = std::thread::spawn(move || {
        use std::io::{BufRead, Write};
        // The probe connection, then the snapshot request.
        for _ in 0..2 {
            let (mut conn, _) = listener.accept().unwrap();
            let mut line = String::new();
            let _ = std::io::BufReader::new(conn.try_clone().unwrap()).read_line(&mut line);
            if line.starts_with("snapshot\t") {
                conn.write_all(b"error\tsimulated failure\n").unwrap();
                return;
            }
        }
    });
    let o = vireo(
        dir.path(),
        &["-c", s(&cfg), "config", "backup", "--data", "out"],
    );
    server.join().unwrap();
    assert!(!o.status.success(), "{}", describe(&o));
    assert!(
        stderr(&o).contains("could not snapshot its store: simulated failure"),
        "{}",
        describe(&o)
    );
    // The configuration alone can still be saved.
    let o = vireo(dir.path(), &["-c", s(&cfg), "config", "backup", "out"]);
    assert!(o.status.success(), "{}", describe(&o));
}

#[test]
fn config_test_passes_on_defaults() {
    let dir = tempfile::tempdir().unwrap();
    let o = vireo(dir.path(), &["config", "test"]);
    let out = stdout(&o);
    assert!(o.status.success(), "{}", describe(&o));
    for step in [
        "✓ load the configuration",
        "✓ load the TLS certificate: none configured: throwaway",
        "✓ start the server on 127.0.0.1",
        "✓ create a temporary account",
        "✓ log in with STARTTLS",
        "✓ log in with direct TLS",
        "✓ send a message to itself and receive it",
        "✓ shut down",
    ] {
        assert!(out.contains(step), "missing {step:?}\n{}", describe(&o));
    }
    assert!(!out.contains('✗'), "{}", describe(&o));
    assert!(out.contains(" ms)"), "timings shown");
    assert!(
        !dir.path().join("vireo-data").exists(),
        "config test must not touch the data directory"
    );
}

#[test]
fn config_test_logs_in_on_every_domain() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = make_cert(dir.path(), "multi", &["a.example", "b.example"], None);
    let cfg = write_config(
        dir.path(),
        &["a.example", "b.example"],
        &format!(
            "[tls]\ncertificate = \"{}\"\nkey = \"{}\"\n",
            cert.display(),
            key.display()
        ),
    );
    let o = vireo(dir.path(), &["-c", s(&cfg), "config", "test"]);
    assert!(o.status.success(), "{}", describe(&o));
    let out = stdout(&o);
    assert!(
        out.contains("✓ load the TLS certificate: configured "),
        "{out}"
    );
    assert!(
        out.contains("✓ log in on b.example (STARTTLS): bound vireo-test-"),
        "{out}"
    );
    assert!(
        out.contains("✓ send a message to itself and receive it"),
        "{out}"
    );
}

#[test]
fn config_test_fails_clearly_on_an_unusable_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let junk = dir.path().join("junk.pem");
    std::fs::write(&junk, "this is not PEM\n").unwrap();
    let cfg = write_config(
        dir.path(),
        &["example.com"],
        &format!(
            "[tls]\ncertificate = \"{}\"\nkey = \"{}\"\n",
            junk.display(),
            junk.display()
        ),
    );
    let o = vireo(dir.path(), &["-c", s(&cfg), "config", "test"]);
    assert!(!o.status.success(), "{}", describe(&o));
    let out = stdout(&o);
    // The loader rejects an unreadable certificate with its file and line
    // (config test reports it as its failing first step); were it to pass
    // the loader, the certificate step would fail.
    assert!(
        out.contains("✗ load the configuration: ") || out.contains("✗ load the TLS certificate: "),
        "{}",
        describe(&o)
    );
    assert!(
        out.contains("junk.pem: no certificate found"),
        "{}",
        describe(&o)
    );
    assert!(out.contains("- start the server"), "{}", describe(&o));
    assert!(
        stderr(&o).contains("config test failed"),
        "{}",
        describe(&o)
    );

    // A key that does not belong to the certificate fails the same step.
    let (cert, _) = make_cert(dir.path(), "a", &["example.com"], None);
    let (_, other_key) = make_cert(dir.path(), "b", &["example.com"], None);
    let cfg = write_config(
        dir.path(),
        &["example.com"],
        &format!(
            "[tls]\ncertificate = \"{}\"\nkey = \"{}\"\n",
            cert.display(),
            other_key.display()
        ),
    );
    let o = vireo(dir.path(), &["-c", s(&cfg), "config", "test"]);
    assert!(!o.status.success(), "{}", describe(&o));
    let out = stdout(&o);
    assert!(
        out.contains("does not match") || out.contains("rejected by rustls"),
        "{}",
        describe(&o)
    );
    assert!(out.contains("✗ load the"), "{}", describe(&o));
    assert!(!out.contains("✓ log in"), "{}", describe(&o));
}

#[test]
fn module_list_shows_layers_specs_and_unbuilt_modules() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(dir.path(), &["a.example", "b.example"], "");
    let o = vireo(dir.path(), &["-c", s(&cfg), "module", "list"]);
    assert!(o.status.success(), "{}", describe(&o));
    let out = stdout(&o);
    for layer in [
        "01 transport (stack/01-transport/)",
        "02 stream (stack/02-stream/)",
        "03 stanza (stack/03-stanza/)",
        "04 protocol (stack/04-protocol/)",
        "05 services (stack/05-services/)",
        "06 storage (stack/06-storage/)",
        "07 interfaces (stack/07-interfaces/)",
        "08 integration (stack/08-integration/)",
    ] {
        assert!(out.contains(layer), "missing {layer}\n{out}");
    }
    // A module's entry: its status line and the line below it.
    let lines: Vec<&str> = out.lines().collect();
    let line = |name: &str| {
        let at = lines
            .iter()
            .position(|l| l.split_whitespace().nth(1) == Some(name))
            .unwrap_or_else(|| panic!("no line for {name}\n{out}"));
        format!("{}\n{}", lines[at], lines.get(at + 1).unwrap_or(&""))
    };
    let saslauth = line("saslauth");
    assert!(saslauth.contains("RFC 6120 §6"), "{saslauth}");
    assert!(
        saslauth.contains("enabled    default (all domains)"),
        "{saslauth}"
    );
    let muc = line("muc");
    assert!(muc.contains("XEP-0045"), "{muc}");
    let omemo = line("omemo");
    assert!(omemo.contains("XEP-0384"), "{omemo}");
    assert!(
        omemo.contains("not built  planned, not in this version"),
        "{omemo}"
    );
    let compression = line("compression");
    assert!(
        compression.contains("refused    stream compression inside TLS"),
        "{compression}"
    );
    assert!(line("offline").contains("needs router"));
    assert!(out.contains("domains: a.example, b.example"), "{out}");
}

#[test]
fn cert_import_validates_and_installs() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(dir.path(), &["example.com"], "");
    let certs = dir.path().join("data/certs");
    let (good_cert, good_key) = make_cert(dir.path(), "good", &["example.com"], None);
    let (_, other_key) = make_cert(dir.path(), "other", &["example.com"], None);
    let (wrong_cert, wrong_key) = make_cert(dir.path(), "wrong", &["other.org"], None);
    let (old_cert, old_key) = make_cert(dir.path(), "old", &["example.com"], Some((2020, 1, 1)));
    let (wild_cert, wild_key) = make_cert(dir.path(), "wild", &["*.example.net"], None);

    // The key does not belong to the certificate.
    let o = vireo(
        dir.path(),
        &[
            "-c",
            s(&cfg),
            "cert",
            "import",
            "example.com",
            s(&good_cert),
            s(&other_key),
        ],
    );
    assert!(!o.status.success(), "{}", describe(&o));
    assert!(stderr(&o).contains("rejected"), "{}", describe(&o));
    assert!(!certs.join("example.com.crt").exists());

    // The certificate is for another domain.
    let o = vireo(
        dir.path(),
        &[
            "-c",
            s(&cfg),
            "cert",
            "import",
            "example.com",
            s(&wrong_cert),
            s(&wrong_key),
        ],
    );
    assert!(!o.status.success(), "{}", describe(&o));
    assert!(
        stderr(&o).contains("does not cover example.com (it names: DNS:other.org)"),
        "{}",
        describe(&o)
    );

    // Expired.
    let o = vireo(
        dir.path(),
        &[
            "-c",
            s(&cfg),
            "cert",
            "import",
            "example.com",
            s(&old_cert),
            s(&old_key),
        ],
    );
    assert!(!o.status.success(), "{}", describe(&o));
    assert!(
        stderr(&o).contains("expired on 2020-01-01"),
        "{}",
        describe(&o)
    );

    // Not PEM at all.
    let o = vireo(
        dir.path(),
        &[
            "-c",
            s(&cfg),
            "cert",
            "import",
            "example.com",
            s(&cfg),
            s(&good_key),
        ],
    );
    assert!(!o.status.success(), "{}", describe(&o));
    assert!(
        stderr(&o).contains("no certificate found"),
        "{}",
        describe(&o)
    );
    assert!(!certs.join("example.com.crt").exists());

    // A good pair is installed, the key private.
    let o = vireo(
        dir.path(),
        &[
            "-c",
            s(&cfg),
            "cert",
            "import",
            "example.com",
            s(&good_cert),
            s(&good_key),
        ],
    );
    assert!(o.status.success(), "{}", describe(&o));
    let installed = certs.join("example.com.crt");
    let installed_key = certs.join("example.com.key");
    assert_eq!(
        std::fs::read(&installed).unwrap(),
        std::fs::read(&good_cert).unwrap()
    );
    assert_eq!(
        std::fs::read(&installed_key).unwrap(),
        std::fs::read(&good_key).unwrap()
    );
    let mode = std::fs::metadata(&installed_key)
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    let out = stdout(&o);
    assert!(
        out.contains("imported the certificate for example.com (DNS:example.com"),
        "{out}"
    );
    assert!(out.contains("[tls]\ncertificate = \""), "{out}");
    assert!(out.contains("example.com.key\""), "{out}");

    // A wildcard covers one label.
    let o = vireo(
        dir.path(),
        &[
            "-c",
            s(&cfg),
            "cert",
            "import",
            "chat.example.net",
            s(&wild_cert),
            s(&wild_key),
        ],
    );
    assert!(o.status.success(), "{}", describe(&o));
    assert!(
        stdout(&o).contains("not a hosted domain"),
        "{}",
        describe(&o)
    );
    let o = vireo(
        dir.path(),
        &[
            "-c",
            s(&cfg),
            "cert",
            "import",
            "example.net",
            s(&wild_cert),
            s(&wild_key),
        ],
    );
    assert!(!o.status.success(), "{}", describe(&o));

    // The imported certificate is what `check certs` finds.
    let o = vireo(dir.path(), &["-c", s(&cfg), "check", "certs"]);
    assert!(o.status.success(), "{}", describe(&o));
    assert!(
        stdout(&o).contains("covered by DNS:example.com"),
        "{}",
        describe(&o)
    );
}

#[test]
fn check_certs_flags_expired_and_mismatched_certificates() {
    let dir = tempfile::tempdir().unwrap();
    let with_cert = |cert: &Path, key: &Path, domains: &[&str]| {
        write_config(
            dir.path(),
            domains,
            &format!(
                "[tls]\ncertificate = \"{}\"\nkey = \"{}\"\n",
                cert.display(),
                key.display()
            ),
        )
    };
    let (good, good_key) = make_cert(dir.path(), "good", &["example.com", "*.example.org"], None);
    let cfg = with_cert(&good, &good_key, &["example.com", "chat.example.org"]);
    let o = vireo(dir.path(), &["-c", s(&cfg), "check", "certs"]);
    assert!(o.status.success(), "{}", describe(&o));
    let out = stdout(&o);
    assert!(out.contains("covered by DNS:example.com"), "{out}");
    assert!(out.contains("covered by DNS:*.example.org"), "{out}");
    assert!(stdout(&o).contains("days left"), "{out}");

    // Expired.
    let (old, old_key) = make_cert(dir.path(), "old", &["example.com"], Some((2021, 6, 1)));
    let cfg = with_cert(&old, &old_key, &["example.com"]);
    let o = vireo(dir.path(), &["-c", s(&cfg), "check", "certs"]);
    assert!(!o.status.success(), "{}", describe(&o));
    assert!(
        stdout(&o).contains("✗ validity     EXPIRED on 2021-06-01"),
        "{}",
        describe(&o)
    );
    assert!(
        stderr(&o).contains("1 error(s), 0 warning(s)"),
        "{}",
        describe(&o)
    );

    // Expires in ten days: a warning, so not clean either.
    let soon = {
        let names = vec!["example.com".to_owned()];
        let mut params = rcgen::CertificateParams::new(names).unwrap();
        let now = time::OffsetDateTime::now_utc();
        params.not_before = now - time::Duration::days(80);
        params.not_after = now + time::Duration::days(10);
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        let (c, k) = (dir.path().join("soon.crt"), dir.path().join("soon.key"));
        std::fs::write(&c, cert.pem()).unwrap();
        std::fs::write(&k, key.serialize_pem()).unwrap();
        (c, k)
    };
    let cfg = with_cert(&soon.0, &soon.1, &["example.com"]);
    let o = vireo(dir.path(), &["-c", s(&cfg), "check", "certs"]);
    assert!(!o.status.success(), "{}", describe(&o));
    assert!(
        stdout(&o).contains("⚠ validity     expires in 9 days")
            || stdout(&o).contains("⚠ validity     expires in 10 days"),
        "{}",
        describe(&o)
    );
    assert!(
        stderr(&o).contains("0 error(s), 1 warning(s)"),
        "{}",
        describe(&o)
    );

    // Names another domain.
    let (other, other_key) = make_cert(dir.path(), "other", &["other.org"], None);
    let cfg = with_cert(&other, &other_key, &["example.com"]);
    let o = vireo(dir.path(), &["-c", s(&cfg), "check", "certs"]);
    assert!(!o.status.success(), "{}", describe(&o));
    assert!(
        stdout(&o).contains("NOT covered by the certificate (it names: DNS:other.org)"),
        "{}",
        describe(&o)
    );

    // The key is not the certificate's.
    let cfg = with_cert(&good, &other_key, &["example.com"]);
    let o = vireo(dir.path(), &["-c", s(&cfg), "check", "certs"]);
    assert!(!o.status.success(), "{}", describe(&o));
    assert!(stdout(&o).contains("✗ key"), "{}", describe(&o));

    // Nothing configured or generated yet: a warning, not clean.
    let cfg = write_config(dir.path(), &["example.com"], "");
    let o = vireo(dir.path(), &["-c", s(&cfg), "check", "certs"]);
    assert!(!o.status.success(), "{}", describe(&o));
    assert!(stdout(&o).contains("none yet"), "{}", describe(&o));
    assert!(
        stderr(&o).contains("0 error(s), 1 warning(s)"),
        "{}",
        describe(&o)
    );
}

#[test]
fn about_shows_version_paths_features_and_state() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(dir.path(), &["example.com"], "");
    let o = vireo(dir.path(), &["-c", s(&cfg), "about"]);
    assert!(o.status.success(), "{}", describe(&o));
    let out = stdout(&o);
    assert!(
        out.contains(&format!("Vireo {}", env!("CARGO_PKG_VERSION"))),
        "{out}"
    );
    assert!(out.contains(&format!("file {}", cfg.display())), "{out}");
    let data = dir.path().join("data");
    assert!(
        out.contains(&format!("data directory: {}", data.display())),
        "{out}"
    );
    assert!(
        out.contains(&format!("{}", data.join("store").display())),
        "{out}"
    );
    assert!(
        out.contains(&format!("{}", data.join("admin.sock").display())),
        "{out}"
    );
    assert!(out.contains("server:         not running"), "{out}");
    assert!(out.contains("saslauth (RFC 6120 §6"), "{out}");
    assert!(
        !out.contains("omemo (XEP-0384"),
        "modules not built are not features: {out}"
    );

    std::fs::create_dir_all(&data).unwrap();
    let _listener = std::os::unix::net::UnixListener::bind(data.join("admin.sock")).unwrap();
    let o = vireo(dir.path(), &["-c", s(&cfg), "about"]);
    assert!(o.status.success(), "{}", describe(&o));
    assert!(
        stdout(&o).contains("server:         running"),
        "{}",
        describe(&o)
    );
}

#[test]
fn configuration_tree_backup_and_per_domain_modules() {
    let dir = tempfile::tempdir().unwrap();
    let tree = dir.path().join("tree");
    let o = vireo(
        dir.path(),
        &["config", "init", s(&tree), "--domain", "example.com"],
    );
    assert!(o.status.success(), "{}", describe(&o));
    std::fs::write(
        tree.join("domains/b.example.toml"),
        "domain = \"b.example\"\nmodules_disabled = [\"ping\"]\n",
    )
    .unwrap();

    // The whole tree is archived.
    let o = vireo(dir.path(), &["-c", s(&tree), "config", "backup", "out"]);
    assert!(o.status.success(), "{}", describe(&o));
    assert!(
        stdout(&o).contains("configuration: tree "),
        "{}",
        describe(&o)
    );
    let entries = entries(&dir.path().join(archive_path(&o)));
    for file in [
        "/config/vireo.toml",
        "/config/stack/01-transport/tls.toml",
        "/config/stack/08-integration/apis.toml",
        "/config/domains/b.example.toml",
        "/config/environments/production.toml",
    ] {
        let stored = find(&entries, file).unwrap_or_else(|| panic!("{file} archived"));
        let on_disk = std::fs::read(tree.join(file.trim_start_matches("/config/"))).unwrap();
        assert_eq!(stored, on_disk.as_slice(), "{file}");
    }

    // Module decisions come from the tree, per domain.
    let o = vireo(dir.path(), &["-c", s(&tree), "module", "list"]);
    assert!(o.status.success(), "{}", describe(&o));
    let out = stdout(&o);
    let ping = out
        .lines()
        .find(|l| l.split_whitespace().nth(1) == Some("ping"))
        .unwrap_or_else(|| panic!("no ping line\n{out}"));
    assert!(ping.starts_with("  ± ping"), "{ping}");
    assert!(
        ping.contains("example.com: enabled (by ") && ping.contains("core.toml:"),
        "{ping}"
    );
    assert!(
        ping.contains("b.example: disabled (by ") && ping.contains("b.example.toml:1)"),
        "{ping}"
    );
}
