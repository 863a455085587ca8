//! Opening the configured store (`storage.driver`: redb, sled or
//! PostgreSQL), and migrating a sled store to redb.
//!
//! Every command that opens the store goes through [`open_store`]: the
//! server, `adduser`/`passwd`/`deluser`, `import-users`, `config backup` and
//! `vireo-bench --fill-store`.
//!
//! Migration: with the driver "redb", a store directory that holds a sled
//! database (its `conf` and `db` files) and no `vireo.redb` is migrated
//! before it is opened. The sled store is opened read-only in spirit (only
//! read), every tree is copied into a redb file built in
//! `store/redb-migration/` and compared back entry by entry
//! ([`RedbBackend::import_sled`]); only then is the file renamed to
//! `store/vireo.redb`, and the sled files are moved into
//! `store/sled-migrated-<unix time>/` (kept, not deleted). A failure before
//! the rename leaves the sled store as it was (the partial file is removed)
//! and answers an error naming the store. The rename comes before the
//! move, so a crash in between leaves a complete `vireo.redb` next to the
//! sled files, which is then used (with a warning about the sled files).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use xmpp_runtime::storage::{redb, Backend, PostgresBackend, RedbBackend, SledBackend};

use crate::config::Config;

/// The directory a migration builds its redb file in.
const MIGRATION_DIR: &str = "redb-migration";

/// The files and directories of a sled 0.34 database.
fn sled_entries(dir: &Path) -> Vec<PathBuf> {
    let Ok(read) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut entries: Vec<PathBuf> = read
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| {
            let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
            matches!(name, "conf" | "db" | "blobs") || name.starts_with("snap.")
        })
        .collect();
    entries.sort();
    entries
}

/// Whether `dir` holds a sled database.
pub fn holds_sled(dir: &Path) -> bool {
    dir.join("conf").is_file() && dir.join("db").is_file()
}

/// The driver that opening `dir` without migrating needs: `driver`, except
/// that a sled store not yet migrated is read with sled (what `config
/// backup` does, so that a backup never migrates).
pub fn driver_without_migration<'d>(driver: &'d str, dir: &Path) -> &'d str {
    if driver == "redb" && !dir.join(redb::FILE_NAME).exists() && holds_sled(dir) {
        "sled"
    } else {
        driver
    }
}

/// Opens the store of the configuration: `storage.driver` in
/// `data_path/store` with `storage.cache_size`, migrating a sled store
/// first when the driver is redb (see the module docs).
pub fn open_store(cfg: &Config) -> Result<Arc<dyn Backend>, String> {
    if cfg.storage_driver == "postgresql" {
        return PostgresBackend::open(cfg.sql.clone())
            .map(|b| Arc::new(b) as Arc<dyn Backend>)
            .map_err(|e| format!("store PostgreSQL {}: {e}", cfg.sql.shown()));
    }
    open_store_at(
        &cfg.storage_driver,
        &cfg.store_path(),
        cfg.storage_cache_size,
    )
}

/// [`open_store`] for an embedded driver, directory and cache size.
pub fn open_store_at(
    driver: &str,
    dir: &Path,
    cache_bytes: u64,
) -> Result<Arc<dyn Backend>, String> {
    let shown = dir.display();
    match driver {
        "sled" => SledBackend::open_with_cache(dir, cache_bytes)
            .map(|b| Arc::new(b) as Arc<dyn Backend>)
            .map_err(|e| format!("store {shown}: {e}")),
        "redb" => {
            if dir.join(redb::FILE_NAME).exists() {
                if holds_sled(dir) {
                    tracing::warn!(
                        store = %shown,
                        "the store holds both vireo.redb and sled files; using vireo.redb \
                         (a migration was interrupted after its copy was complete): move the \
                         sled files (conf, db, snap.*, blobs) aside when convenient"
                    );
                }
            } else if holds_sled(dir) {
                migrate(dir, cache_bytes)?;
            }
            RedbBackend::open_with_cache(dir, cache_bytes)
                .map(|b| Arc::new(b) as Arc<dyn Backend>)
                .map_err(|e| format!("store {shown}: {e}"))
        }
        other => Err(format!(
            "store {shown}: unknown embedded storage.driver {other:?} (\"redb\", \"sled\")"
        )),
    }
}

/// Migrates the sled store in `dir` to `dir/vireo.redb`; see the module
/// docs.
pub fn migrate(dir: &Path, cache_bytes: u64) -> Result<(), String> {
    let shown = dir.display();
    let fail = |what: String| {
        format!(
            "store {shown}: migrating the sled store to redb failed: {what}; \
             the sled store was left as it was (set storage.driver = \"sled\" to keep using it)"
        )
    };
    let work = dir.join(MIGRATION_DIR);
    if work.exists() {
        // A migration interrupted before its rename: start over.
        std::fs::remove_dir_all(&work).map_err(|e| fail(format!("{}: {e}", work.display())))?;
    }
    tracing::info!(store = %shown, "migrating the sled store to redb");
    let started = std::time::Instant::now();
    let copied = (|| -> Result<redb::ImportReport, String> {
        let sled = SledBackend::open_with_cache(dir, cache_bytes).map_err(|e| e.to_string())?;
        let target = RedbBackend::open_with_cache(&work, cache_bytes).map_err(|e| e.to_string())?;
        target.import_sled(&sled).map_err(|e| e.to_string())
    })();
    let report = match copied {
        Ok(report) => report,
        Err(e) => {
            let _ = std::fs::remove_dir_all(&work);
            return Err(fail(e));
        }
    };
    let file = dir.join(redb::FILE_NAME);
    if let Err(e) = std::fs::rename(work.join(redb::FILE_NAME), &file) {
        let _ = std::fs::remove_dir_all(&work);
        return Err(fail(format!(
            "moving the new file to {}: {e}",
            file.display()
        )));
    }
    let _ = std::fs::remove_dir_all(&work);
    sync_dir(dir);
    // The copy is in place: from here on the sled files are only moved
    // aside, and a failure to do so is reported but leaves a usable store.
    let aside = dir.join(format!(
        "sled-migrated-{}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0)
    ));
    let moved = std::fs::create_dir(&aside).and_then(|()| {
        for entry in sled_entries(dir) {
            if let Some(name) = entry.file_name() {
                std::fs::rename(&entry, aside.join(name))?;
            }
        }
        Ok(())
    });
    sync_dir(dir);
    let tables: Vec<String> = report
        .tables
        .iter()
        .map(|(name, n)| format!("{name}={n}"))
        .collect();
    tracing::info!(
        store = %shown,
        accounts = report.accounts,
        entries = %tables.join(" "),
        bytes = report.bytes,
        seconds = started.elapsed().as_secs_f64(),
        sled_files = %aside.display(),
        "migrated the sled store to redb (every entry copied and compared); \
         the sled files were kept, moved aside"
    );
    if let Err(e) = moved {
        // The store is usable; the sled files only take room.
        tracing::warn!(
            store = %shown,
            "the store was migrated to {}, but moving the sled files into {} failed: {e}; \
             move conf, db, snap.* and blobs there by hand",
            file.display(),
            aside.display()
        );
    }
    Ok(())
}

/// Makes renames in `dir` durable (best effort).
fn sync_dir(dir: &Path) {
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
}

#[cfg(test)]
mod tests;
