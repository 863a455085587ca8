//! `vireo export [--user JID] FILE`, `vireo user export JID [FILE]` and
//! `vireo import FILE`: XEP-0227 files of the store (`crate::portable`).
//!
//! Both work on the store directly, like `import-users`, so they refuse to
//! run while a server uses the data directory (its admin socket answers):
//! an embedded store is locked by the server, and an import beside a live
//! server would change accounts under its hub. An export is written to
//! `FILE.partial` and renamed when complete, so a file that exists is
//! whole.

use std::path::Path;
use std::time::Instant;

use crate::config::Config;
use crate::portable::export::{export as write_export, Selection};
use crate::portable::import::{import as read_import, ImportOptions};
use xmpp_core::portable::ReadLimits;
use xmpp_runtime::accounts::account_jid;

fn refuse_if_running(cfg: &Config, what: &str) -> Result<(), String> {
    let socket = cfg.admin_socket();
    if std::os::unix::net::UnixStream::connect(&socket).is_ok() {
        return Err(format!(
            "a server is running on this data directory (admin socket {} answers); \
             {what} works on the store directly: stop the server first",
            socket.display()
        ));
    }
    Ok(())
}

/// Export the store, or one account, to `file` (`-`: standard output).
/// The summary goes to standard error when the export goes to standard
/// output.
pub fn export(cfg: &Config, user: Option<&str>, file: &str) -> Result<Option<String>, String> {
    refuse_if_running(cfg, "export")?;
    let selection = match user {
        Some(jid) => Selection::User(
            account_jid(jid, &cfg.domains)
                .map_err(|e| e.to_string())?
                .bare_str(),
        ),
        None => Selection::All,
    };
    let backend = crate::store::open_store(cfg)?;
    let started = Instant::now();
    if file == "-" {
        let stdout = std::io::stdout();
        let mut out = std::io::BufWriter::new(stdout.lock());
        let counts =
            write_export(backend.as_ref(), &selection, &mut out).map_err(|e| e.to_string())?;
        drop(out);
        eprintln!(
            "exported {counts} ({:.1} s)",
            started.elapsed().as_secs_f64()
        );
        return Ok(None);
    }
    let path = Path::new(file);
    let partial = path.with_extension(match path.extension() {
        Some(ext) => format!("{}.partial", ext.to_string_lossy()),
        None => "partial".to_owned(),
    });
    let result = (|| {
        let f =
            std::fs::File::create(&partial).map_err(|e| format!("{}: {e}", partial.display()))?;
        let mut out = std::io::BufWriter::new(f);
        let counts =
            write_export(backend.as_ref(), &selection, &mut out).map_err(|e| e.to_string())?;
        let f = out
            .into_inner()
            .map_err(|e| format!("{}: {e}", partial.display()))?;
        f.sync_all()
            .map_err(|e| format!("{}: {e}", partial.display()))?;
        std::fs::rename(&partial, path).map_err(|e| format!("{file}: {e}"))?;
        Ok::<_, String>(counts)
    })();
    match result {
        Ok(counts) => Ok(Some(format!(
            "exported to {file}: {counts} ({:.1} s)",
            started.elapsed().as_secs_f64()
        ))),
        Err(e) => {
            let _ = std::fs::remove_file(&partial);
            Err(e)
        }
    }
}

/// Import `file` into the store; the report per kind.
pub fn import(cfg: &Config, file: &str, check: bool) -> Result<String, String> {
    refuse_if_running(cfg, "import")?;
    let backend = crate::store::open_store(cfg)?;
    let options = ImportOptions {
        domains: cfg.domains.clone(),
        iterations: cfg.scram_iterations,
        max_roster_items: cfg.max_roster_items,
        limits: ReadLimits::default(),
    };
    let started = Instant::now();
    let report = if check {
        let dry = crate::portable::import::CheckOnly(backend.as_ref());
        read_import(&dry, Path::new(file), &options)
    } else {
        read_import(backend.as_ref(), Path::new(file), &options)
    }
    .map_err(|e| e.to_string())?;
    let mode = if check {
        "check only, nothing written: "
    } else {
        ""
    };
    Ok(format!(
        "{mode}{report}({:.1} s)",
        started.elapsed().as_secs_f64()
    ))
}
