//! `vireo about`: version, build, paths, features built in, and whether a
//! server runs on the configured data directory (its admin socket answers).

use crate::config::Config;
use crate::modules::{Layer, CATALOG};
use std::fmt::Write;
use std::path::Path;

use super::backup::describe_source;

/// What the admin socket says about a server on this data directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerState {
    /// The socket answers.
    Running,
    /// The socket file exists but nobody answers (a crashed server).
    Stale,
    /// No socket.
    Stopped,
}

/// Probe the admin socket.
pub fn server_state(cfg: &Config) -> ServerState {
    let socket = cfg.admin_socket();
    if std::os::unix::net::UnixStream::connect(&socket).is_ok() {
        ServerState::Running
    } else if socket.exists() {
        ServerState::Stale
    } else {
        ServerState::Stopped
    }
}

/// Total size in bytes of the files under `dir`.
fn dir_size(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| match e.file_type() {
            Ok(t) if t.is_dir() => dir_size(&e.path()),
            Ok(t) if t.is_file() => e.metadata().map(|m| m.len()).unwrap_or(0),
            _ => 0,
        })
        .sum()
}

fn show(p: &Path) -> String {
    let abs = std::path::absolute(p).unwrap_or_else(|_| p.to_owned());
    abs.display().to_string()
}

fn exists(p: &Path) -> &'static str {
    if p.exists() {
        ""
    } else {
        " (not created yet)"
    }
}

/// The text printed by `vireo about`.
pub fn run(cfg: &Config) -> String {
    let mut out = String::new();
    let profile = if cfg!(debug_assertions) {
        "debug"
    } else {
        "release"
    };
    let _ = writeln!(
        out,
        "Vireo {} — an XMPP server in Rust",
        env!("CARGO_PKG_VERSION")
    );
    let _ = writeln!(
        out,
        "build:          {profile} profile, {}-{}, TLS: rustls (ring), store: redb (or sled)",
        std::env::consts::ARCH,
        std::env::consts::OS
    );
    let _ = writeln!(out, "\nconfiguration:  {}", describe_source(&cfg.source));
    if let Some(env) = &cfg.environment {
        let _ = writeln!(out, "environment:    {env}");
    }
    let _ = writeln!(out, "domains:        {}", cfg.domains.join(", "));
    let data = &cfg.data_path;
    let _ = writeln!(
        out,
        "data directory: {}{} ({})",
        show(data),
        exists(data),
        cfg.origin("data_path")
    );
    let store = cfg.store_path();
    let store_note = if store.is_dir() {
        format!(
            " ({:.1} MiB on disk)",
            dir_size(&store) as f64 / 1_048_576.0
        )
    } else {
        " (not created yet)".into()
    };
    let _ = writeln!(out, "store:          {}{store_note}", show(&store));
    let certs = match (&cfg.certificate, &cfg.key) {
        (Some(c), Some(k)) => format!("{} and {} (configured)", show(c), show(k)),
        _ => format!(
            "{}{} (generated or imported per domain)",
            show(&cfg.cert_dir()),
            exists(&cfg.cert_dir())
        ),
    };
    let _ = writeln!(out, "certificates:   {certs}");
    let socket = cfg.admin_socket();
    let _ = writeln!(out, "admin socket:   {}", show(&socket));
    let _ = writeln!(
        out,
        "listeners:      {}:{} (STARTTLS), {}:{} (direct TLS)",
        cfg.bind, cfg.c2s_port, cfg.bind, cfg.c2s_tls_port
    );
    let state = match server_state(cfg) {
        ServerState::Running => "running (its admin socket answers)",
        ServerState::Stale => {
            "not running (a stale admin socket is left from a server that did not stop cleanly)"
        }
        ServerState::Stopped => "not running",
    };
    let _ = writeln!(out, "server:         {state}");

    let built = CATALOG.iter().filter(|m| m.available).count();
    let _ = writeln!(
        out,
        "\nfeatures built in ({built} of {} modules; `vireo module list` for details):",
        CATALOG.len()
    );
    for layer in Layer::ALL {
        let names: Vec<String> = CATALOG
            .iter()
            .filter(|m| m.layer == layer && m.available)
            .map(|m| {
                if m.specs.is_empty() {
                    m.name.to_owned()
                } else {
                    format!("{} ({})", m.name, m.specs.join(", "))
                }
            })
            .collect();
        let names = if names.is_empty() {
            "-".to_owned()
        } else {
            names.join(", ")
        };
        let _ = writeln!(out, "  {:<15} {names}", layer.dir());
    }
    out.trim_end().to_owned()
}
