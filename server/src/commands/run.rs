//! `vireo run`: start the server and serve until SIGTERM/SIGINT.

use crate::config::Config;
use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::Signals;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use xmpp_core::hub::HubConfig;
use xmpp_core::stream::ServerStreamConfig;
use xmpp_core::xml::Limits;
use xmpp_runtime::storage::{Backend, SledBackend};
use xmpp_runtime::tls::{generate_self_signed, server_tls, ServerTls};
use xmpp_runtime::RuntimeConfig;

/// The certificate to serve: configured, or generated on first start.
fn certificate(cfg: &Config) -> Result<ServerTls, String> {
    let (cert, key) = match (&cfg.certificate, &cfg.key) {
        (Some(c), Some(k)) => (c.clone(), k.clone()),
        _ => {
            let dir = cfg.cert_dir();
            let first = cfg.domains.first().cloned().unwrap_or_default();
            let cert = dir.join(format!("{first}.crt"));
            let key = dir.join(format!("{first}.key"));
            if !cert.exists() || !key.exists() {
                let paths = generate_self_signed(&cfg.domains, &dir).map_err(|e| e.to_string())?;
                tracing::warn!(
                    cert = %paths.cert.display(),
                    "generated a self-signed certificate; clients will not trust it \
                     (configure tls.certificate and tls.key for production)"
                );
                (paths.cert, paths.key)
            } else {
                (cert, key)
            }
        }
    };
    server_tls(&cert, &key).map_err(|e| e.to_string())
}

fn ensure_data_dir(path: &PathBuf) -> Result<(), String> {
    std::fs::create_dir_all(path)
        .map_err(|e| format!("cannot create data directory {}: {e}", path.display()))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o700))
        .map_err(|e| format!("cannot restrict data directory {}: {e}", path.display()))
}

/// Translate the effective configuration for the runtime.
pub fn runtime_config(cfg: &Config, tls: Option<Arc<ServerTls>>) -> RuntimeConfig {
    let threads = if cfg.threads == 0 {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    } else {
        cfg.threads
    };
    RuntimeConfig {
        bind: cfg.bind,
        c2s_port: cfg.c2s_port,
        c2s_tls_port: tls.as_ref().map(|_| cfg.c2s_tls_port),
        tls,
        stream: ServerStreamConfig {
            domains: cfg.domains.clone(),
            require_encryption: cfg.require_encryption,
            starttls_available: true,
            mechanisms: cfg.mechanisms.clone(),
            auth_timeout_ms: cfg.auth_timeout_secs.saturating_mul(1000),
            max_auth_failures: 3,
            keepalive_ms: (cfg.keepalive_secs > 0).then(|| cfg.keepalive_secs.saturating_mul(1000)),
            scram_decoy: Some((
                xmpp_runtime::clock::random_seed().to_vec(),
                cfg.scram_iterations,
            )),
            limits: Limits {
                max_stanza_bytes: cfg.max_stanza_size,
                ..Limits::default()
            },
            ..ServerStreamConfig::default()
        },
        hub: HubConfig {
            domains: cfg.domains.clone(),
            ..HubConfig::default()
        },
        threads,
        partitions: threads * 2,
        max_connections: cfg.max_connections,
        admin_socket: Some(cfg.admin_socket()),
        scram_iterations: cfg.scram_iterations,
    }
}

/// Serve until a termination signal.
pub fn run(cfg: &Config) -> Result<(), String> {
    ensure_data_dir(&cfg.data_path)?;
    if !cfg.require_encryption {
        tracing::warn!(
            "UNENCRYPTED c2s ALLOWED (stream.require_encryption = false, from {}): \
             passwords and messages can cross the network in clear; use only for \
             loopback benchmarks",
            cfg.origin("stream.require_encryption")
        );
    }
    let tls = Arc::new(certificate(cfg)?);
    let backend: Arc<dyn Backend> =
        Arc::new(SledBackend::open(&cfg.store_path()).map_err(|e| e.to_string())?);
    let mut signals = Signals::new([SIGTERM, SIGINT])
        .map_err(|e| format!("cannot install signal handlers: {e}"))?;
    let server =
        xmpp_runtime::start(runtime_config(cfg, Some(tls)), backend).map_err(|e| e.to_string())?;
    tracing::info!(
        domains = ?cfg.domains,
        starttls = %server.c2s_addr,
        direct_tls = ?server.c2s_tls_addr,
        data = %cfg.data_path.display(),
        "vireo is ready"
    );
    if let Some(sig) = signals.forever().next() {
        tracing::info!(signal = sig, "termination signal received");
    }
    server.shutdown(Duration::from_secs(3));
    Ok(())
}
