//! `vireo storage migrate` and `vireo storage upgrade`.
//!
//! A migration copies the whole store between backends through the storage
//! contract (`xmpp_runtime::storage::transfer`) and then reads both back
//! and compares them. It needs the server stopped: the embedded stores are
//! locked by the server that has them open, and a copy of a PostgreSQL
//! store that the server keeps writing would miss what came after. The
//! embedded stores are the data directory's (`DATA/store`), PostgreSQL is
//! the configured database (`storage.sql_*`), so a migration to PostgreSQL
//! is: configure the sql keys, `vireo storage migrate --from redb --to
//! postgresql`, set `storage.driver = "postgresql"`, start.

use std::sync::Arc;
use std::time::Instant;

use xmpp_runtime::storage::transfer::{self, TransferReport};
use xmpp_runtime::storage::{postgres, Backend, PostgresBackend, RedbBackend, SledBackend};

use crate::cli::StorageAction;
use crate::config::Config;

/// Runs a storage command; the text to print.
pub fn run(cfg: &Config, action: StorageAction) -> Result<String, String> {
    match action {
        StorageAction::Upgrade(_) => upgrade(cfg),
        StorageAction::Migrate(m) => migrate(cfg, &m.from, &m.to, m.verify_only),
    }
}

fn upgrade(cfg: &Config) -> Result<String, String> {
    if cfg.storage_driver != "postgresql" {
        return Ok(format!(
            "the {} store has no schema to upgrade (storage.driver is not \"postgresql\")",
            cfg.storage_driver
        ));
    }
    let before = PostgresBackend::inspect(&cfg.sql)?;
    PostgresBackend::open(cfg.sql.clone()).map_err(|e| e.to_string())?;
    Ok(match before {
        Some(v) if v == postgres::schema::CURRENT => format!(
            "PostgreSQL {}: schema version {v}, already current",
            cfg.sql.shown()
        ),
        Some(v) => format!(
            "PostgreSQL {}: schema upgraded from version {v} to {}",
            cfg.sql.shown(),
            postgres::schema::CURRENT
        ),
        None => format!(
            "PostgreSQL {}: schema version {} created",
            cfg.sql.shown(),
            postgres::schema::CURRENT
        ),
    })
}

/// Whether a server answers on the admin socket.
fn server_running(cfg: &Config) -> bool {
    std::os::unix::net::UnixStream::connect(cfg.admin_socket()).is_ok()
}

/// Opens one side of a migration, without the automatic sled migration of
/// `open_store` (a migration's source and target are exactly what was
/// named).
fn open(cfg: &Config, driver: &str) -> Result<Arc<dyn Backend>, String> {
    let dir = cfg.store_path();
    let shown = dir.display();
    match driver {
        "redb" => RedbBackend::open_with_cache(&dir, cfg.storage_cache_size)
            .map(|b| Arc::new(b) as Arc<dyn Backend>)
            .map_err(|e| format!("redb store {shown}: {e}")),
        "sled" => SledBackend::open_with_cache(&dir, cfg.storage_cache_size)
            .map(|b| Arc::new(b) as Arc<dyn Backend>)
            .map_err(|e| format!("sled store {shown}: {e}")),
        "postgresql" => PostgresBackend::open(cfg.sql.clone())
            .map(|b| Arc::new(b) as Arc<dyn Backend>)
            .map_err(|e| format!("PostgreSQL {}: {e}", cfg.sql.shown())),
        other => Err(format!(
            "unknown backend {other:?}: \"redb\", \"sled\" or \"postgresql\""
        )),
    }
}

fn migrate(cfg: &Config, from: &str, to: &str, verify_only: bool) -> Result<String, String> {
    if from == to {
        return Err(format!("--from and --to are both {from:?}"));
    }
    if server_running(cfg) {
        return Err(format!(
            "the server is running (its admin socket {} answers): stop it first; \
             a store that is being written cannot be copied consistently",
            cfg.admin_socket().display()
        ));
    }
    let source = open(cfg, from)?;
    let target = open(cfg, to)?;
    let started = Instant::now();
    let mut last_said = Instant::now();
    let mut progress = |r: &TransferReport| {
        if last_said.elapsed().as_secs() >= 5 {
            eprintln!("... {r}");
            last_said = Instant::now();
        }
    };
    let mut out = String::new();
    if !verify_only {
        let copied = transfer::copy(source.as_ref(), target.as_ref(), &mut progress)
            .map_err(|e| format!("migration {from} -> {to} stopped: {e}"))?;
        out.push_str(&format!(
            "copied {from} -> {to} in {:.1} s: {copied}\n",
            started.elapsed().as_secs_f64()
        ));
    }
    let checking = Instant::now();
    let verified = transfer::verify(source.as_ref(), target.as_ref(), &mut progress)
        .map_err(|e| format!("migration {from} -> {to}: {e}"))?;
    out.push_str(&format!(
        "verified in {:.1} s: the {to} store reads back equal to the {from} store ({verified})\n",
        checking.elapsed().as_secs_f64()
    ));
    if !verify_only {
        out.push_str(&format!(
            "next: set storage.driver = \"{to}\" (stack/06-storage/backends.toml or VIREO_DB_DRIVER) and start the server; the {from} store was left as it was"
        ));
    }
    Ok(out)
}
