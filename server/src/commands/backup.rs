//! `vireo config backup DEST [--data] [--gzip]`: a timestamped tar archive
//! of the configuration (the file or tree given by `--config` or
//! `VIREO_CONFIG_PATH`) and, with `--data`, a consistent snapshot of the
//! embedded store and of the data directory's certificates.
//!
//! The store snapshot is taken by the running server through its admin
//! socket (a redb read transaction, or sled under its writer lock) into a
//! fresh directory, or, with the server stopped: the store is opened with
//! the configured driver (which recovers it and proves it readable; a sled
//! store not yet migrated to redb is opened with sled, so a backup never
//! migrates), flushed, and copied while this process holds the store's
//! lock, so no server can start writing in the middle of the copy. Either
//! way the copy is opened again and its accounts counted before it is
//! archived.
//!
//! Archive layout, under one top directory `vireo-backup-<UTC time>/`:
//! `MANIFEST.txt`, `config/…` (the file, or the whole tree), and with
//! `--data` `data/store/…` and `data/certs/…`. A redb store is the one
//! file `data/store/vireo.redb` (the sled files a migration moved aside,
//! `store/sled-migrated-*`, are left out); a sled store is its directory.
//! The archive is created with mode 0600: configurations hold passwords and
//! `--data` includes keys.

use crate::config::{Config, Source};
use crate::modules;
use std::fs::{File, OpenOptions};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use xmpp_runtime::storage::{redb, StorageError};

use super::check_certs::{fmt_utc, fmt_utc_compact, now_secs};

/// Why a backup failed.
#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    /// The running server could not take the snapshot.
    #[error("the running server could not snapshot its store: {0}")]
    Snapshot(String),
    /// `--data` with no store to snapshot.
    #[error("no store at {}: nothing to snapshot (is data_path right?)", path.display())]
    NoStore { path: PathBuf },
    /// Opening the store failed.
    #[error("{0}")]
    Open(String),
    /// Recovering or flushing the store failed.
    #[error("store {}: {source}", path.display())]
    Store {
        path: PathBuf,
        #[source]
        source: StorageError,
    },
    /// Writing the archive (or reading what goes into it) failed.
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// What was loaded, for humans.
pub fn describe_source(source: &Source) -> String {
    match source {
        Source::Defaults => "built-in defaults (no --config, no VIREO_CONFIG_PATH)".to_owned(),
        Source::File(p) => format!("file {}", p.display()),
        Source::Tree(p) => format!("tree {}", p.display()),
    }
}

/// The archive being written: plain or gzip.
enum Sink {
    Plain(tar::Builder<File>),
    Gzip(tar::Builder<flate2::write::GzEncoder<File>>),
}

impl Sink {
    fn append_file(&mut self, name: &str, path: &Path) -> std::io::Result<()> {
        match self {
            Sink::Plain(b) => b.append_path_with_name(path, name),
            Sink::Gzip(b) => b.append_path_with_name(path, name),
        }
    }

    fn append_dir(&mut self, name: &str, path: &Path) -> std::io::Result<()> {
        match self {
            Sink::Plain(b) => b.append_dir_all(name, path),
            Sink::Gzip(b) => b.append_dir_all(name, path),
        }
    }

    fn append_text(&mut self, name: &str, text: &str) -> std::io::Result<()> {
        let mut header = tar::Header::new_gnu();
        header.set_size(text.len() as u64);
        header.set_mode(0o600);
        header.set_mtime(u64::try_from(now_secs()).unwrap_or(0));
        header.set_cksum();
        match self {
            Sink::Plain(b) => b.append_data(&mut header, name, text.as_bytes()),
            Sink::Gzip(b) => b.append_data(&mut header, name, text.as_bytes()),
        }
    }

    fn finish(self) -> std::io::Result<()> {
        let file = match self {
            Sink::Plain(b) => b.into_inner()?,
            Sink::Gzip(b) => b.into_inner()?.finish()?,
        };
        file.sync_all()
    }
}

/// Write the backup; returns the report ending with `archive: PATH`.
pub fn run(cfg: &Config, dest: &Path, data: bool, gzip: bool) -> Result<String, BackupError> {
    let socket = cfg.admin_socket();
    let running = std::os::unix::net::UnixStream::connect(&socket).is_ok();
    let store = cfg.store_path();
    if data && !store.is_dir() {
        return Err(BackupError::NoStore { path: store });
    }
    std::fs::create_dir_all(dest).map_err(|source| BackupError::Io {
        path: dest.to_owned(),
        source,
    })?;
    let now = now_secs();
    let stamp = fmt_utc_compact(now);
    let root = format!("vireo-backup-{stamp}");
    let (path, file) = create_archive(dest, &root, if gzip { ".tar.gz" } else { ".tar" })?;
    let mut sink = if gzip {
        Sink::Gzip(tar::Builder::new(flate2::write::GzEncoder::new(
            file,
            flate2::Compression::default(),
        )))
    } else {
        Sink::Plain(tar::Builder::new(file))
    };
    match write_contents(&mut sink, cfg, &root, now, data, running)
        .and_then(|lines| sink.finish().map(|()| lines).map_err(io_at(&path)))
    {
        Ok(mut lines) => {
            lines.push(format!("archive: {}", path.display()));
            Ok(lines.join("\n"))
        }
        Err(e) => {
            let _ = std::fs::remove_file(&path);
            Err(e)
        }
    }
}

fn io_at(path: &Path) -> impl Fn(std::io::Error) -> BackupError + '_ {
    move |source| BackupError::Io {
        path: path.to_owned(),
        source,
    }
}

/// Create `DEST/<root><ext>` (or `-2`, `-3`, … when taken), mode 0600.
fn create_archive(dest: &Path, root: &str, ext: &str) -> Result<(PathBuf, File), BackupError> {
    let mut n = 1;
    loop {
        let name = if n == 1 {
            format!("{root}{ext}")
        } else {
            format!("{root}-{n}{ext}")
        };
        let path = dest.join(name);
        match OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
        {
            Ok(f) => return Ok((path, f)),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && n < 100 => n += 1,
            Err(source) => return Err(BackupError::Io { path, source }),
        }
    }
}

/// Append everything; returns the report lines.
fn write_contents(
    sink: &mut Sink,
    cfg: &Config,
    root: &str,
    now: i64,
    data: bool,
    running: bool,
) -> Result<Vec<String>, BackupError> {
    let source = &cfg.source;
    let mut lines = vec![format!("configuration: {}", describe_source(source))];
    let mut manifest = format!(
        "Vireo backup\n\
         created:        {}\n\
         vireo version:  {}\n\
         configuration:  {}\n\
         domains:        {}\n\
         data directory: {}\n",
        fmt_utc(now),
        env!("CARGO_PKG_VERSION"),
        describe_source(source),
        cfg.domains.join(", "),
        cfg.data_path.display(),
    );
    match source {
        Source::Defaults => {
            manifest.push_str(
                "\nNo configuration file is in use: the server runs on its built-in \
                 defaults (plus environment variables), so there is no file to back up.\n",
            );
            lines.push("  (built-in defaults are in use: no configuration file to archive)".into());
        }
        Source::File(p) => {
            let name = p
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| "vireo.toml".into());
            sink.append_file(&format!("{root}/config/{name}"), p)
                .map_err(io_at(p))?;
            manifest.push_str(&format!("\nconfig/{name}: {}\n", p.display()));
        }
        Source::Tree(p) => {
            sink.append_dir(&format!("{root}/config"), p)
                .map_err(io_at(p))?;
            manifest.push_str(&format!("\nconfig/: the tree {}\n", p.display()));
        }
    }
    // Environment variables change the effective configuration too: record
    // which are set (names only: VIREO_DB_PASSWORD must not leak).
    let mut vars: Vec<String> = std::env::vars_os()
        .filter_map(|(k, _)| k.into_string().ok())
        .filter(|k| k.starts_with("VIREO_"))
        .collect();
    vars.sort();
    if !vars.is_empty() {
        manifest.push_str(&format!(
            "environment overrides set (values not recorded): {}\n",
            vars.join(", ")
        ));
    }
    let mut pki: Vec<&Path> = Vec::new();
    for (c, k) in cfg.certificate.iter().zip(&cfg.key) {
        pki.extend([c.as_path(), k.as_path()]);
    }
    for vh in &cfg.vhosts {
        for (p, _) in vh.certificate.iter().chain(&vh.key) {
            pki.push(p);
        }
    }
    pki.sort();
    pki.dedup();
    let outside: Vec<String> = pki
        .into_iter()
        .filter(|p| match source {
            Source::Tree(t) => !p.starts_with(t),
            _ => true,
        })
        .map(|p| p.display().to_string())
        .collect();
    if !outside.is_empty() {
        manifest.push_str(&format!(
            "not archived (outside the configuration; back them up with your PKI): {}\n",
            outside.join(", ")
        ));
    }
    if data && cfg.storage_driver == "postgresql" {
        manifest.push_str(&format!(
            "not archived: the PostgreSQL database {} (back it up with pg_dump)\n",
            cfg.sql.shown()
        ));
    } else if data {
        let store = cfg.store_path();
        // A running server copies its own store (consistent under its
        // writer lock) into a fresh directory; a stopped one is opened here,
        // which also recovers and flushes it.
        let snapshot_dir = store.with_file_name(format!("store-snapshot-{now}"));
        let (source, how) = if running {
            match xmpp_runtime::admin::snapshot(&cfg.admin_socket(), &snapshot_dir) {
                Ok(Some(Ok(()))) => (snapshot_dir.clone(), "taken by the running server"),
                Ok(Some(Err(e))) => {
                    return Err(BackupError::Snapshot(e));
                }
                Ok(None) => (
                    store.clone(),
                    "opened, recovered and flushed with the server stopped",
                ),
                Err(e) => return Err(BackupError::Snapshot(e.to_string())),
            }
        } else {
            (
                store.clone(),
                "opened, recovered and flushed with the server stopped",
            )
        };
        let driver = crate::store::driver_without_migration(&cfg.storage_driver, &source);
        let backend = crate::store::open_store_at(driver, &source, cfg.storage_cache_size)
            .map_err(BackupError::Open)?;
        backend.flush().map_err(|e| BackupError::Store {
            path: source.clone(),
            source: e,
        })?;
        let accounts = backend
            .accounts()
            .map_err(|e| BackupError::Store {
                path: source.clone(),
                source: e,
            })?
            .len();
        // Copied while `backend` holds the store's lock: nothing else can
        // open this copy and write during the archive.
        if driver == "redb" {
            let file = source.join(redb::FILE_NAME);
            sink.append_file(&format!("{root}/data/store/{}", redb::FILE_NAME), &file)
                .map_err(io_at(&file))?;
        } else {
            sink.append_dir(&format!("{root}/data/store"), &source)
                .map_err(io_at(&source))?;
        }
        drop(backend);
        if source == snapshot_dir {
            let _ = std::fs::remove_dir_all(&snapshot_dir);
        }
        manifest.push_str(&format!(
            "data/store/: snapshot of {} ({}; {how})\n",
            store.display(),
            accounts_text(accounts)
        ));
        lines.push(format!(
            "store: {} ({}, consistent snapshot {how})",
            store.display(),
            accounts_text(accounts)
        ));
        let certs = cfg.cert_dir();
        if certs.is_dir() {
            sink.append_dir(&format!("{root}/data/certs"), &certs)
                .map_err(io_at(&certs))?;
            manifest.push_str(&format!(
                "data/certs/: {} (includes private keys)\n",
                certs.display()
            ));
            lines.push(format!("certificates: {}", certs.display()));
        }
        manifest.push_str(
            "\nRestore: stop the server, move the old data directory aside, and \
             extract data/store and data/certs into the data directory.\n",
        );
    }
    let built = modules::CATALOG.iter().filter(|m| m.available).count();
    manifest.push_str(&format!(
        "modules built into this version: {built} of {}\n",
        modules::CATALOG.len()
    ));
    sink.append_text(&format!("{root}/MANIFEST.txt"), &manifest)
        .map_err(|source| BackupError::Io {
            path: PathBuf::from("MANIFEST.txt"),
            source,
        })?;
    Ok(lines)
}

fn accounts_text(n: usize) -> String {
    if n == 1 {
        "1 account".to_owned()
    } else {
        format!("{n} accounts")
    }
}
