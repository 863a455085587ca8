//! `vireo import-users FILE`: create many accounts in one process, for
//! provisioning benchmarks and migrations.
//!
//! The file has one account per line, `user@domain password` (the password
//! is the rest of the line; blank lines and lines starting with `#` are
//! skipped); `-` reads standard input. The whole file is checked before
//! anything is written. Accounts that already exist are left untouched and
//! counted. The SCRAM keys (PBKDF2 with the configured `scram_iterations`,
//! the whole cost of an import) are derived on all cores.
//!
//! It works on the store directly, so it refuses to run while a server uses
//! the data directory (detected by its admin socket answering): stop the
//! server first, or use `vireo adduser` for a few accounts on a live server.

use crate::config::Config;
use std::io::BufRead;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;
use xmpp_core::jid::Jid;
use xmpp_runtime::accounts::{account_jid, add_user, AccountError};
use xmpp_runtime::storage::Backend;

/// Import the accounts listed in `file` (`-` = stdin) with `threads`
/// workers (default: one per core). Returns the summary for the operator.
pub fn run(cfg: &Config, file: &str, threads: Option<usize>) -> Result<String, String> {
    let socket = cfg.admin_socket();
    if std::os::unix::net::UnixStream::connect(&socket).is_ok() {
        return Err(format!(
            "a server is running on this data directory (admin socket {} answers); \
             import-users writes the store directly: stop the server first",
            socket.display()
        ));
    }
    let accounts = read_accounts(cfg, file)?;
    let started = Instant::now();
    let backend: Arc<dyn Backend> = crate::store::open_store(cfg)?;
    let workers = threads
        .or_else(|| std::thread::available_parallelism().ok().map(|n| n.get()))
        .unwrap_or(1)
        .clamp(1, 256)
        .min(accounts.len().max(1));
    let next = AtomicUsize::new(0);
    let created = AtomicUsize::new(0);
    let existing = AtomicUsize::new(0);
    let errors: Mutex<Vec<String>> = Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for _ in 0..workers {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some((jid, password)) = accounts.get(i) else {
                    break;
                };
                match add_user(backend.as_ref(), jid, password, cfg.scram_iterations) {
                    Ok(()) => {
                        created.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(AccountError::Exists(_)) => {
                        existing.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(e) => {
                        if let Ok(mut errs) = errors.lock() {
                            errs.push(format!("{jid}: {e}"));
                        }
                    }
                }
            });
        }
    });
    backend.flush().map_err(|e| e.to_string())?;
    let errors = errors.into_inner().unwrap_or_else(|p| p.into_inner());
    let created = created.into_inner();
    let existing = existing.into_inner();
    if !errors.is_empty() {
        let shown: Vec<&str> = errors.iter().take(10).map(String::as_str).collect();
        return Err(format!(
            "{} of {} accounts failed ({created} created, {existing} already existed): {}",
            errors.len(),
            accounts.len(),
            shown.join("; ")
        ));
    }
    Ok(format!(
        "imported {} accounts: {created} created, {existing} already existed \
         ({} iterations, {workers} threads, {:.1} s)",
        accounts.len(),
        cfg.scram_iterations,
        started.elapsed().as_secs_f64()
    ))
}

/// Parse and check every line before touching the store.
fn read_accounts(cfg: &Config, file: &str) -> Result<Vec<(Jid, String)>, String> {
    let reader: Box<dyn BufRead> = if file == "-" {
        Box::new(std::io::stdin().lock())
    } else {
        let f = std::fs::File::open(file).map_err(|e| format!("{file}: {e}"))?;
        Box::new(std::io::BufReader::new(f))
    };
    let mut accounts = Vec::new();
    let mut problems = Vec::new();
    for (n, line) in reader.lines().enumerate() {
        let line = line.map_err(|e| format!("{file}: {e}"))?;
        let line = line.trim_end_matches('\r');
        if line.trim().is_empty() || line.trim_start().starts_with('#') {
            continue;
        }
        let trimmed = line.trim_start();
        let Some((jid, password)) = trimmed.split_once(char::is_whitespace) else {
            problems.push(format!("line {}: expected `user@domain password`", n + 1));
            continue;
        };
        let password = password.trim_start();
        if password.is_empty() {
            problems.push(format!("line {}: empty password", n + 1));
            continue;
        }
        match account_jid(jid, &cfg.domains) {
            Ok(j) => accounts.push((j, password.to_owned())),
            Err(e) => problems.push(format!("line {}: {e}", n + 1)),
        }
    }
    if !problems.is_empty() {
        let count = problems.len();
        problems.truncate(10);
        return Err(format!(
            "{file}: {count} bad lines, nothing imported: {}",
            problems.join("; ")
        ));
    }
    Ok(accounts)
}
