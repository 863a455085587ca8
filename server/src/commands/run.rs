//! `vireo run`: start the server and serve until SIGTERM/SIGINT; SIGHUP
//! reloads the configuration (see [`super::reload`]).

use super::reload::{LogControl, Reloader};
use crate::config::Config;
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
use signal_hook::iterator::Signals;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use xmpp_core::hub::{HubConfig, Quotas};
use xmpp_core::modules::ModuleSet;
use xmpp_core::s2s::{IncomingConfig, OutgoingConfig};
use xmpp_core::storage::OfflinePage;
use xmpp_core::stream::{ComponentSecret, ComponentStreamConfig, ServerStreamConfig};
use xmpp_core::xml::Limits;
use xmpp_runtime::s2s::probe::load_roots;
use xmpp_runtime::s2s::{S2sConfig, S2sOverrides};
use xmpp_runtime::storage::Backend;
use xmpp_runtime::tls::{generate_self_signed, server_tls, server_tls_sni, ServerTls, TlsError};
use xmpp_runtime::{ComponentListener, RuntimeConfig};

/// The certificate to serve: configured, or generated on first start.
pub(crate) fn certificate(cfg: &Config) -> Result<ServerTls, TlsError> {
    let (cert, key) = match (&cfg.certificate, &cfg.key) {
        (Some(c), Some(k)) => (c.clone(), k.clone()),
        _ => {
            let dir = cfg.cert_dir();
            let first = cfg.domains.first().cloned().unwrap_or_default();
            let cert = dir.join(format!("{first}.crt"));
            let key = dir.join(format!("{first}.key"));
            if !cert.exists() || !key.exists() {
                let paths = generate_self_signed(&cfg.domains, &dir)?;
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
    // Virtual hosts with a certificate of their own get it by SNI.
    let own: Vec<(String, PathBuf, PathBuf)> = cfg
        .vhosts
        .iter()
        .filter_map(|v| match (&v.certificate, &v.key) {
            (Some((c, _)), Some((k, _))) if *c != cert => {
                Some((v.domain.clone(), c.clone(), k.clone()))
            }
            _ => None,
        })
        .collect();
    if own.is_empty() {
        server_tls(&cert, &key)
    } else {
        server_tls_sni((&cert, &key), &own)
    }
}

fn ensure_data_dir(path: &PathBuf) -> Result<(), String> {
    std::fs::create_dir_all(path)
        .map_err(|e| format!("cannot create data directory {}: {e}", path.display()))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o700))
        .map_err(|e| format!("cannot restrict data directory {}: {e}", path.display()))
}

/// The per-account limits. An offline page stays well inside the XEP-0198
/// queue's limits, so delivering one never ends the session.
fn quotas(cfg: &Config) -> Quotas {
    let max = cfg
        .offline_page_size
        .min((cfg.smacks_max_queue_size / 2).max(1));
    Quotas {
        max_offline_messages: cfg.max_offline_messages,
        offline_page: OfflinePage {
            max,
            max_bytes: (1024 * 1024).min(cfg.smacks_max_queue_bytes / 4),
        },
        max_sessions: cfg.max_user_sessions,
        max_roster_items: cfg.max_roster_items,
        max_private_documents: cfg.max_private_documents,
    }
}

/// The hub modules the configuration enables, with their settings.
fn hub_modules(cfg: &Config) -> ModuleSet {
    let mut modules = ModuleSet::standard();
    for id in modules.ids() {
        // Disco answers for every other module: it is never off.
        if id != xmpp_core::modules::disco::ID && !cfg.modules.contains(&id.name()) {
            modules.remove(id);
        }
    }
    // Each module's settings come from its section (config/sections/).
    crate::config::sections::configure(cfg, &mut modules);
    modules
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
    let hub = HubConfig {
        domains: cfg.domains.clone(),
        modules: hub_modules(cfg),
        contact: cfg.contact.clone(),
        components: components(cfg).iter().map(|c| c.jid.clone()).collect(),
        quotas: quotas(cfg),
        ..HubConfig::default()
    };
    let limits = Limits {
        max_stanza_bytes: cfg.max_stanza_size,
        max_namespace_bytes: cfg.max_namespace_length,
        max_attributes: cfg.max_attributes,
        max_children: cfg.max_children,
        max_nodes: cfg.max_stanza_nodes,
        ..Limits::default()
    };
    let keepalive_ms = (cfg.keepalive_secs > 0).then(|| cfg.keepalive_secs.saturating_mul(1000));
    // XEP-0114: a listener only when there is a component to accept.
    let component_listener = (!components(cfg).is_empty()).then(|| ComponentListener {
        bind: cfg.component_bind,
        port: cfg.component_port,
        stream: ComponentStreamConfig {
            components: components(cfg)
                .iter()
                .map(|c| ComponentSecret {
                    domain: c.jid.clone(),
                    secret: c.secret.clone(),
                })
                .collect(),
            limits,
            handshake_timeout_ms: cfg.auth_timeout_secs.saturating_mul(1000),
            keepalive_ms,
        },
    });
    let s2s = federation(cfg, &tls, limits, threads);
    let http = cfg
        .modules
        .contains(&"http")
        .then(|| xmpp_runtime::HttpConfig {
            port: cfg.int("interfaces.http_port"),
            tls_port: tls.as_ref().and_then(|_| cfg.int("interfaces.https_port")),
            limits: xmpp_core::http::HttpLimits {
                max_head_bytes: cfg.int("interfaces.http_max_head").unwrap_or(8192),
                max_body_bytes: cfg.int("interfaces.http_max_body").unwrap_or(1 << 20),
                request_timeout_ms: cfg
                    .int::<u64>("interfaces.http_request_timeout")
                    .unwrap_or(10)
                    .saturating_mul(1000),
                idle_timeout_ms: cfg
                    .int::<u64>("interfaces.http_idle_timeout")
                    .unwrap_or(60)
                    .saturating_mul(1000),
                ..xmpp_core::http::HttpLimits::default()
            },
            max_per_address: cfg.int("interfaces.http_max_per_address").unwrap_or(64),
            // Checked when loading (schema `Ty::Ips`).
            metrics_allow: cfg
                .list("interfaces.metrics_allow_ips")
                .iter()
                .filter_map(|a| crate::config::schema::parse_net(a))
                .collect(),
            upload: crate::config::sections::upload::http(cfg, Vec::new()),
            api_tokens_dir: cfg.modules.contains(&"api").then(|| cfg.data_path.clone()),
            conversejs_dir: cfg
                .text("interfaces.conversejs_path")
                .map(std::path::PathBuf::from),
            external_url: cfg.text("interfaces.http_external_url"),
            trusted_proxies: cfg
                .list("interfaces.trusted_proxies")
                .iter()
                .filter_map(|a| crate::config::schema::parse_net(a))
                .collect(),
            bosh: cfg.modules.contains(&"bosh").then(|| {
                let origins = cfg.list("interfaces.bosh_origins");
                xmpp_runtime::BoshHttpConfig {
                    session: xmpp_core::bosh::BoshConfig {
                        max_wait_s: cfg.int("interfaces.bosh_max_wait").unwrap_or(120),
                        inactivity_s: cfg.int("interfaces.bosh_max_inactivity").unwrap_or(60),
                        max_pause_s: cfg.int("interfaces.bosh_max_pause").unwrap_or(300),
                        ..xmpp_core::bosh::BoshConfig::default()
                    },
                    origins: (!origins.iter().any(|o| o == "*")).then_some(origins),
                    consider_secure: cfg.flag("interfaces.bosh_consider_secure"),
                }
            }),
            websocket: cfg.modules.contains(&"websocket").then(|| {
                let origins = cfg.list("interfaces.websocket_origins");
                xmpp_runtime::WebSocketConfig {
                    origins: (!origins.iter().any(|o| o == "*")).then_some(origins),
                    consider_secure: cfg.flag("interfaces.websocket_consider_secure"),
                    see_other_uri: cfg.text("interfaces.websocket_see_other_uri"),
                }
            }),
        });
    // XEP-0115: clients may cache the server's features by this hash.
    let caps = xmpp_core::modules::caps::feature(
        &xmpp_core::hub::Hub::new(Arc::new(hub.clone())).disco_info(),
    );
    RuntimeConfig {
        bind: cfg.bind,
        c2s_port: cfg.c2s_port,
        // Listeners and features follow the enabled modules.
        c2s_tls_port: tls
            .as_ref()
            .filter(|_| cfg.modules.contains(&"c2s_direct_tls"))
            .map(|_| cfg.c2s_tls_port),
        tls,
        stream: ServerStreamConfig {
            domains: cfg.domains.clone(),
            require_encryption: cfg.require_encryption,
            starttls_available: true,
            mechanisms: cfg.mechanisms.clone(),
            auth_timeout_ms: cfg.auth_timeout_secs.saturating_mul(1000),
            bind_timeout_ms: cfg.bind_timeout_secs.saturating_mul(1000),
            max_auth_failures: 3,
            keepalive_ms,
            send_timeout_ms: (cfg.send_timeout_secs > 0)
                .then(|| cfg.send_timeout_secs.saturating_mul(1000)),
            max_mailbox_bytes: cfg.max_mailbox_bytes,
            // `run` replaces the secret with the one in the data directory.
            scram_decoy: Some((
                xmpp_runtime::clock::random_seed().to_vec(),
                cfg.scram_iterations,
            )),
            limits,
            unauthenticated_stanza_bytes: cfg.max_unauthenticated_stanza_size,
            // Stream features of switchable modules only when enabled.
            session_features: ServerStreamConfig::default()
                .session_features
                .into_iter()
                .filter(|f| f.ns != xmpp_core::stream::CSI_NS || cfg.modules.contains(&"csi"))
                .chain(std::iter::once(caps))
                .collect(),
            sm: cfg
                .modules
                .contains(&"smacks")
                .then(|| xmpp_core::stream::SmConfig {
                    resume_timeout_ms: cfg.smacks_resume_timeout_secs.saturating_mul(1000),
                    max_unacked: cfg.smacks_max_queue_size,
                    max_unacked_bytes: cfg.smacks_max_queue_bytes,
                    request_every: cfg.smacks_max_unacked_stanzas,
                }),
            registration: cfg.modules.contains(&"register").then_some(
                xmpp_core::stream::RegistrationConfig {
                    allow_registration: cfg.allow_registration,
                    min_password_length: cfg.min_password_length,
                },
            ),
        },
        hub,
        threads,
        partitions: threads * 2,
        max_connections: cfg.max_connections,
        partition_queue_bytes: cfg.partition_queue_bytes,
        c2s_rate_limit: (cfg.c2s_rate_limit > 0).then(|| xmpp_runtime::RateLimit {
            bytes_per_sec: cfg.c2s_rate_limit,
            burst: cfg.c2s_rate_burst.max(cfg.c2s_rate_limit),
        }),
        admin_socket: Some(cfg.admin_socket()),
        scram_iterations: cfg.scram_iterations,
        registration_limit: xmpp_runtime::RegistrationLimit {
            min_seconds: cfg.min_seconds_between_registrations,
            exempt: cfg.registration_whitelist.clone(),
        },
        components: component_listener,
        s2s,
        http,
        address_limits: xmpp_runtime::AddressLimits {
            max_unauthenticated: cfg.max_unauthenticated_per_address,
            max_new_per_second: cfg.max_new_connections_per_address,
            tls_handshake_timeout: std::time::Duration::from_secs(cfg.tls_handshake_timeout_secs),
            exempt: cfg.address_limits_exempt.clone(),
            max_tracked: cfg.max_tracked_addresses,
            auth_backoff: xmpp_core::throttle::Backoff {
                base_ms: cfg.auth_failure_delay_ms,
                max_ms: cfg.auth_failure_max_delay_ms,
                forget_ms: cfg.auth_failure_forget_secs.saturating_mul(1000),
            },
        },
    }
}

/// Federation, while the `s2s` module is on.
fn federation(
    cfg: &Config,
    tls: &Option<Arc<ServerTls>>,
    limits: Limits,
    _threads: usize,
) -> Option<S2sConfig> {
    if !cfg.modules.contains(&"s2s") {
        return None;
    }
    let secs = |key: &str, fallback: u64| cfg.int::<u64>(key).unwrap_or(fallback);
    let mut overrides = S2sOverrides::new();
    for item in cfg.list("transport.s2s_routes") {
        // Checked when loading (schema `Ty::Routes`).
        if let Some((domain, target)) = item.split_once('=') {
            if let Err(e) = overrides.insert(domain.trim(), target.trim()) {
                tracing::warn!(route = %item, error = %e, "s2s route ignored");
            }
        }
    }
    let cafile = cfg
        .s2s_cafile
        .clone()
        .unwrap_or_else(|| std::path::PathBuf::from(crate::commands::check_s2s::SYSTEM_CAS));
    let roots = match load_roots(&cafile) {
        Ok(r) => r,
        Err(e) => {
            tracing::warn!(cafile = %cafile.display(), error = %e, "no CA bundle for s2s: peers' certificates cannot verify (dialback only)");
            Arc::new(xmpp_runtime::s2s::probe::RootStore::empty())
        }
    };
    let auth_timeout_ms = secs("transport.s2s_timeout", 60).saturating_mul(1000);
    let require_tls = cfg.flag("stream.s2s_require_encryption") && tls.is_some();
    let bidi = cfg.flag("stream.s2s_bidi");
    Some(S2sConfig {
        port: cfg.int("transport.s2s_port").unwrap_or(5269),
        tls_port: tls
            .as_ref()
            .filter(|_| cfg.modules.contains(&"s2s_direct_tls"))
            .and_then(|_| cfg.int("transport.s2s_tls_port")),
        incoming: IncomingConfig {
            limits,
            require_tls,
            auth_timeout_ms,
            verify_timeout_ms: auth_timeout_ms,
            bidi,
            // Each verification costs an outgoing connection: a peer has a
            // few domains at most (its own, its services'), and with
            // transport.s2s_max_incoming_per_address this bounds what one
            // address can make us dial.
            max_pending: 4,
            ..IncomingConfig::default()
        },
        outgoing: OutgoingConfig {
            limits,
            require_tls,
            auth_timeout_ms,
            bidi,
            ..OutgoingConfig::default()
        },
        overrides,
        roots,
        connect_timeout: std::time::Duration::from_secs(secs("transport.s2s_connect_timeout", 10)),
        idle_timeout: std::time::Duration::from_secs(secs("transport.s2s_idle_timeout", 300)),
        queue_bytes: cfg.int("transport.s2s_max_queue_bytes").unwrap_or(1 << 20),
        max_links: cfg.int("transport.s2s_max_outgoing").unwrap_or(1000),
        max_incoming_per_address: cfg
            .int("transport.s2s_max_incoming_per_address")
            .unwrap_or(16),
        secure_auth: cfg.flag("stream.s2s_secure_auth"),
        secure_domains: cfg.list("stream.s2s_secure_domains"),
        insecure_domains: cfg.list("stream.s2s_insecure_domains"),
        blocked_domains: cfg.list("transport.s2s_deny_domains"),
        allowed_domains: cfg.list("transport.s2s_allow_domains"),
        ..S2sConfig::default()
    })
}

/// The components that may connect: none while the module is off.
fn components(cfg: &Config) -> &[crate::config::components::ComponentEntry] {
    if cfg.modules.contains(&"component") {
        &cfg.components
    } else {
        &[]
    }
}

/// Serve until a termination signal. `config_path` is what the
/// configuration was loaded from, re-read on SIGHUP and `vireo reload`;
/// `log` lets a reload change the log level.
pub fn run(
    cfg: &Config,
    config_path: Option<&Path>,
    log: Option<LogControl>,
) -> Result<(), String> {
    ensure_data_dir(&cfg.data_path)?;
    for w in &cfg.warnings {
        tracing::warn!("configuration: {w}");
    }
    if !cfg.require_encryption {
        tracing::warn!(
            "UNENCRYPTED c2s ALLOWED (stream.require_encryption = false, from {}): \
             passwords and messages can cross the network in clear; use only for \
             loopback benchmarks",
            cfg.origin("stream.require_encryption")
        );
    }
    let tls = Arc::new(certificate(cfg).map_err(|e| e.to_string())?);
    let backend: Arc<dyn Backend> = crate::store::open_store(cfg)?;
    let mut signals = Signals::new([SIGTERM, SIGINT, SIGHUP])
        .map_err(|e| format!("cannot install signal handlers: {e}"))?;
    let mut runtime = runtime_config(cfg, Some(tls));
    // The decoy secret survives restarts, like the salts of real accounts.
    let decoy =
        xmpp_runtime::decoy_secret::load_or_create(&cfg.data_path).map_err(|e| e.to_string())?;
    // Upload slots are signed with a key derived from the same secret:
    // slots granted before a restart stay valid after it.
    let upload_secret = crate::config::sections::upload::secret(&decoy);
    runtime
        .hub
        .modules
        .configure(xmpp_core::modules::upload::Upload::new(
            crate::config::sections::upload::settings(cfg, upload_secret.clone()),
        ));
    if let Some(upload) = runtime.http.as_mut().and_then(|h| h.upload.as_mut()) {
        upload.secret = upload_secret;
    }
    runtime.stream.scram_decoy = Some((decoy, cfg.scram_iterations));
    let server = xmpp_runtime::start(runtime, backend).map_err(|e| e.to_string())?;
    tracing::info!(
        domains = ?cfg.domains,
        starttls = %server.c2s_addr,
        direct_tls = ?server.c2s_tls_addr,
        components = ?server.component_addr,
        data = %cfg.data_path.display(),
        "vireo is ready"
    );
    let handle = server.handle();
    let reloader = Arc::new(Reloader::new(
        config_path.map(Path::to_path_buf),
        handle.clone(),
        log,
        cfg,
    ));
    let hook = reloader.clone();
    handle.set_reload_hook(Arc::new(move || {
        let outcome = hook.reload();
        match &outcome {
            Ok(summary) => tracing::info!("reload requested through the admin socket: {summary}"),
            Err(e) => tracing::error!(
                "reload requested through the admin socket failed, still running with \
                 the previous configuration: {e}"
            ),
        }
        outcome.map(|s| s.to_string()).map_err(|e| e.to_string())
    }));
    for sig in signals.forever() {
        if sig == SIGHUP {
            tracing::info!("SIGHUP: reloading the configuration");
            reloader.reload_and_log();
            continue;
        }
        tracing::info!(signal = sig, "termination signal received");
        break;
    }
    server.shutdown(Duration::from_secs(3));
    Ok(())
}
