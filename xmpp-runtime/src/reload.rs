//! Live reconfiguration of a running server: what can change without
//! dropping sessions (certificate, limits, stream settings) is swapped for
//! new connections; what cannot (listeners, threads, domains) is reported.
//!
//! Existing connections keep the stream settings and TLS session they were
//! accepted with; connections accepted (and STARTTLS upgrades started) after
//! [`ServerHandle::reload`] use the new ones.

use crate::config::{ComponentListener, RuntimeConfig};
use crate::limiters::Limiters;
use crate::router::Router;
use crate::settings::{Settings, SettingsCell};
use crate::tls::ServerTls;
use sha2::{Digest, Sha256};
use std::fmt;
use std::sync::{Arc, RwLock};
use xmpp_core::stream::ServerStreamConfig;

/// Called by the admin socket's `reload` command (on a blocking thread): the
/// embedder re-reads its configuration, applies it with
/// [`ServerHandle::reload`] and returns the report to show the operator, or
/// the error (the server then keeps running as it was).
pub type ReloadHook = Arc<dyn Fn() -> Result<String, String> + Send + Sync>;

/// Where the admin socket finds the reload hook.
#[derive(Default)]
pub(crate) struct ReloadHookSlot(RwLock<Option<ReloadHook>>);

impl ReloadHookSlot {
    /// The hook, if one is installed.
    pub(crate) fn get(&self) -> Option<ReloadHook> {
        // A poisoned lock still holds a whole value.
        self.0.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn set(&self, hook: Option<ReloadHook>) {
        *self.0.write().unwrap_or_else(|e| e.into_inner()) = hook;
    }
}

/// One setting that changed, with a human-readable detail
/// (e.g. `max_connections`, `20000 -> 100`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// Which setting.
    pub setting: &'static str,
    /// What changed (old -> new, or a fingerprint).
    pub detail: String,
}

impl Change {
    /// A change described as `old -> new`.
    pub fn new(setting: &'static str, old: impl fmt::Display, new: impl fmt::Display) -> Self {
        Change {
            setting,
            detail: format!("{old} -> {new}"),
        }
    }
}

impl fmt::Display for Change {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.detail.is_empty() {
            f.write_str(self.setting)
        } else {
            write!(f, "{} ({})", self.setting, self.detail)
        }
    }
}

/// What a reload did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReloadReport {
    /// Applied now, for new connections.
    pub applied: Vec<Change>,
    /// Changed in the configuration but only effective after a restart.
    pub needs_restart: Vec<Change>,
}

impl fmt::Display for ReloadReport {
    /// `reloaded: A, B; needs restart: C` ("nothing" for an empty list).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fn list(f: &mut fmt::Formatter<'_>, items: &[Change], empty: &str) -> fmt::Result {
            if items.is_empty() {
                return f.write_str(empty);
            }
            for (i, c) in items.iter().enumerate() {
                if i > 0 {
                    f.write_str(", ")?;
                }
                write!(f, "{c}")?;
            }
            Ok(())
        }
        f.write_str("reloaded: ")?;
        list(f, &self.applied, "nothing changed")?;
        f.write_str("; needs restart: ")?;
        list(f, &self.needs_restart, "nothing")
    }
}

/// A cloneable handle on a running server, for reloading it and for
/// installing the admin socket's reload hook.
#[derive(Clone)]
pub struct ServerHandle {
    pub(crate) settings: Arc<SettingsCell>,
    /// For the partitions' byte budget.
    pub(crate) router: Arc<Router>,
    pub(crate) limiters: Arc<Limiters>,
    /// The configuration the server started with: a reload compares the
    /// settings that need a restart against it.
    pub(crate) started: Arc<RuntimeConfig>,
    pub(crate) reload_hook: Arc<ReloadHookSlot>,
}

impl fmt::Debug for ServerHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerHandle").finish_non_exhaustive()
    }
}

/// Short SHA-256 fingerprint of a DER certificate, for reports and logs.
pub fn fingerprint(der: &[u8]) -> String {
    let digest = Sha256::digest(der);
    let hex: String = digest.iter().take(8).map(|b| format!("{b:02x}")).collect();
    format!("sha256 {hex}…")
}

fn mechanisms(cfg: &ServerStreamConfig) -> String {
    cfg.mechanisms
        .iter()
        .map(|m| m.name())
        .collect::<Vec<_>>()
        .join(" ")
}

fn seconds(ms: Option<u64>) -> String {
    match ms {
        Some(ms) => format!("{}s", ms / 1000),
        None => "off".to_owned(),
    }
}

impl ServerHandle {
    /// Install (or replace) what the admin socket's `reload` command calls.
    pub fn set_reload_hook(&self, hook: ReloadHook) {
        self.reload_hook.set(Some(hook));
    }

    /// Remove the reload hook (it usually holds a handle on the server, so
    /// removing it breaks that reference cycle).
    pub fn clear_reload_hook(&self) {
        self.reload_hook.set(None);
    }

    /// Apply `new` to the running server. Certificate and key, connection
    /// limit, stream settings (authentication timeout and mechanisms,
    /// keepalive, send timeout, stanza size limit, encryption requirement)
    /// and the SCRAM iteration count take effect for new connections;
    /// existing sessions are left alone. Listener addresses and ports,
    /// threads, partitions, domains, hub settings and the admin socket are
    /// only compared: their changes are reported as needing a restart.
    ///
    /// Turning TLS on or off needs a restart too (the listeners and the
    /// advertised stream features depend on it); replacing the certificate
    /// of a server that has one does not.
    pub fn reload(&self, new: &RuntimeConfig) -> ReloadReport {
        let mut report = ReloadReport {
            applied: Vec::new(),
            needs_restart: fixed_changes(&self.started, new),
        };
        // Everything new connections are served with becomes one new value,
        // swapped in one step. The partitions' byte budget and the
        // per-address limiters keep their counts, so they are reconfigured
        // in place (in the report's order).
        self.settings.update(|old| {
            let tls = certificate(old.tls.as_ref(), new.tls.as_ref(), &mut report);
            if old.max_connections != new.max_connections {
                report.applied.push(Change::new(
                    "max_connections",
                    old.max_connections,
                    new.max_connections,
                ));
            }
            let old_budget = self.router.set_queue_bytes(new.partition_queue_bytes);
            if old_budget != new.partition_queue_bytes {
                report.applied.push(Change::new(
                    "partition_queue_bytes",
                    old_budget,
                    new.partition_queue_bytes,
                ));
            }
            if old.rate_limit != new.c2s_rate_limit {
                report.applied.push(Change::new(
                    "c2s_rate_limit",
                    format!("{:?}", old.rate_limit),
                    format!("{:?}", new.c2s_rate_limit),
                ));
            }
            // For passwords set in-band and through the admin socket.
            if old.scram_iterations != new.scram_iterations {
                report.applied.push(Change::new(
                    "scram_iterations",
                    old.scram_iterations,
                    new.scram_iterations,
                ));
            }
            let (stream, mut stream_changes) = stream_settings(&old.stream, &new.stream);
            if let Some((old_limit, new_limit)) =
                self.limiters.registrations.set(&new.registration_limit)
            {
                stream_changes.push(Change::new("registration_limit", old_limit, new_limit));
            }
            self.limiters.auth_throttle.set(&new.address_limits);
            if let Some((old_limits, new_limits)) = self.limiters.conn_gate.set(&new.address_limits)
            {
                stream_changes.push(Change::new("address_limits", old_limits, new_limits));
            }
            report.applied.extend(stream_changes);
            let fresh = Settings {
                stream: Arc::new(stream),
                tls,
                rate_limit: new.c2s_rate_limit,
                max_connections: new.max_connections,
                scram_iterations: new.scram_iterations,
            };
            (fresh, ())
        });
        report
    }
}

/// The settings fixed at start that `new` changes: they need a restart.
fn fixed_changes(started: &RuntimeConfig, new: &RuntimeConfig) -> Vec<Change> {
    let mut changes = Vec::new();
    let mut restart = |c: Change| changes.push(c);
    if new.bind != started.bind {
        restart(Change::new("bind", started.bind, new.bind));
    }
    if new.c2s_port != started.c2s_port {
        restart(Change::new("c2s_port", started.c2s_port, new.c2s_port));
    }
    if new.c2s_tls_port != started.c2s_tls_port {
        let show = |p: Option<u16>| p.map_or_else(|| "none".to_owned(), |p| p.to_string());
        restart(Change::new(
            "c2s_tls_port",
            show(started.c2s_tls_port),
            show(new.c2s_tls_port),
        ));
    }
    if new.threads != started.threads {
        restart(Change::new("threads", started.threads, new.threads));
    }
    if new.partitions != started.partitions && new.threads == started.threads {
        restart(Change::new(
            "partitions",
            started.partitions,
            new.partitions,
        ));
    }
    if new.hub.domains != started.hub.domains || new.stream.domains != started.stream.domains {
        restart(Change::new(
            "domains",
            started.hub.domains.join(" "),
            new.hub.domains.join(" "),
        ));
    }
    if !new.hub.modules.same_as(&started.hub.modules) {
        restart(Change {
            setting: "hub modules and their settings (offline, archiving, push, extdisco)",
            detail: format!("{:?}", new.hub.modules),
        });
    }
    if new.hub.software != started.hub.software {
        restart(Change {
            setting: "software version",
            detail: String::new(),
        });
    }
    if new.components != started.components || new.hub.components != started.hub.components {
        let show = |c: &Option<ComponentListener>| match c {
            Some(c) => {
                let names: Vec<&str> = c
                    .stream
                    .components
                    .iter()
                    .map(|x| x.domain.as_str())
                    .collect();
                format!("{}:{} [{}]", c.bind, c.port, names.join(" "))
            }
            None => "none".to_owned(),
        };
        // A changed secret shows as the same list: say so, not what.
        restart(Change::new(
            "components",
            show(&started.components),
            show(&new.components),
        ));
    }
    let same_http = match (&new.http, &started.http) {
        (Some(a), Some(b)) => a.same_as(b),
        (a, b) => a.is_none() && b.is_none(),
    };
    if !same_http {
        let show = |c: &RuntimeConfig| match &c.http {
            Some(h) => format!("ports {:?} {:?} and their settings", h.port, h.tls_port),
            None => "off".to_owned(),
        };
        restart(Change::new("http listeners", show(started), show(new)));
    }
    let s2s = |c: &RuntimeConfig| c.s2s.as_ref().map(|s| s.summary());
    if s2s(new) != s2s(started) {
        let show = |c: &RuntimeConfig| match &c.s2s {
            Some(s) => format!("on, port {}", s.port),
            None => "off".to_owned(),
        };
        restart(Change::new(
            "federation (s2s) settings",
            show(started),
            show(new),
        ));
    }
    if new.admin_socket != started.admin_socket {
        let show = |p: &Option<std::path::PathBuf>| {
            p.as_ref()
                .map_or_else(|| "none".to_owned(), |p| p.display().to_string())
        };
        restart(Change::new(
            "admin_socket",
            show(&started.admin_socket),
            show(&new.admin_socket),
        ));
    }
    changes
}

/// The certificate for new handshakes: `new` when the server has one
/// (swapped even when the certificate is the same: the key or the
/// intermediates may have changed). Turning TLS on or off needs a restart
/// (the listeners and the advertised features depend on it), so then the
/// old one stays.
fn certificate(
    old: Option<&Arc<ServerTls>>,
    new: Option<&Arc<ServerTls>>,
    report: &mut ReloadReport,
) -> Option<Arc<ServerTls>> {
    match (old, new) {
        (Some(old), Some(fresh)) => {
            if old.end_entity_der != fresh.end_entity_der {
                report.applied.push(Change {
                    setting: "certificate",
                    detail: fingerprint(&fresh.end_entity_der),
                });
            }
            for (domain, der) in &fresh.by_name {
                if old.by_name.get(domain) != Some(der) {
                    report.applied.push(Change {
                        setting: "certificate",
                        detail: format!("{domain}: {}", fingerprint(der)),
                    });
                }
            }
            Some(fresh.clone())
        }
        (None, Some(_)) => {
            report.needs_restart.push(Change {
                setting: "tls",
                detail: "enabling TLS".to_owned(),
            });
            None
        }
        (Some(old), None) => {
            report.needs_restart.push(Change {
                setting: "tls",
                detail: "disabling TLS".to_owned(),
            });
            Some(old.clone())
        }
        (None, None) => None,
    }
}

/// The stream settings new connections get from `new`, and what changed
/// from `old`.
fn stream_settings(
    old: &ServerStreamConfig,
    new: &ServerStreamConfig,
) -> (ServerStreamConfig, Vec<Change>) {
    let mut fresh = new.clone();
    // Fixed at start: what the listeners offer and which domains the hub
    // serves.
    fresh.starttls_available = old.starttls_available;
    fresh.domains = old.domains.clone();
    // The decoy secret must stay: a new one would change the salts invented
    // for unknown accounts, telling them apart from real ones across a
    // reload. Its iteration count follows `scram_iterations`.
    fresh.scram_decoy = match (&old.scram_decoy, &fresh.scram_decoy) {
        (Some((secret, _)), Some((_, iterations))) => Some((secret.clone(), *iterations)),
        (Some(old_decoy), None) => Some(old_decoy.clone()),
        (None, new_decoy) => new_decoy.clone(),
    };
    let mut stream_changes = Vec::new();
    if old.auth_timeout_ms != fresh.auth_timeout_ms {
        stream_changes.push(Change::new(
            "auth_timeout",
            seconds(Some(old.auth_timeout_ms)),
            seconds(Some(fresh.auth_timeout_ms)),
        ));
    }
    if old.keepalive_ms != fresh.keepalive_ms {
        stream_changes.push(Change::new(
            "keepalive",
            seconds(old.keepalive_ms),
            seconds(fresh.keepalive_ms),
        ));
    }
    if old.send_timeout_ms != fresh.send_timeout_ms {
        stream_changes.push(Change::new(
            "send_timeout",
            seconds(old.send_timeout_ms),
            seconds(fresh.send_timeout_ms),
        ));
    }
    if old.limits.max_stanza_bytes != fresh.limits.max_stanza_bytes {
        stream_changes.push(Change::new(
            "max_stanza_size",
            old.limits.max_stanza_bytes,
            fresh.limits.max_stanza_bytes,
        ));
    }
    for (key, was, now) in [
        (
            "max_unauthenticated_stanza_size",
            old.unauthenticated_stanza_bytes,
            fresh.unauthenticated_stanza_bytes,
        ),
        (
            "max_namespace_length",
            old.limits.max_namespace_bytes,
            fresh.limits.max_namespace_bytes,
        ),
        (
            "max_attributes",
            old.limits.max_attributes,
            fresh.limits.max_attributes,
        ),
        (
            "max_children",
            old.limits.max_children,
            fresh.limits.max_children,
        ),
        (
            "max_stanza_nodes",
            old.limits.max_nodes,
            fresh.limits.max_nodes,
        ),
    ] {
        if was != now {
            stream_changes.push(Change::new(key, was, now));
        }
    }
    if old.limits.max_depth != fresh.limits.max_depth {
        stream_changes.push(Change::new(
            "max_depth",
            old.limits.max_depth,
            fresh.limits.max_depth,
        ));
    }
    if old.require_encryption != fresh.require_encryption {
        stream_changes.push(Change::new(
            "require_encryption",
            old.require_encryption,
            fresh.require_encryption,
        ));
    }
    if old.mechanisms != fresh.mechanisms {
        stream_changes.push(Change::new(
            "mechanisms",
            mechanisms(old),
            mechanisms(&fresh),
        ));
    }
    if old.max_auth_failures != fresh.max_auth_failures {
        stream_changes.push(Change::new(
            "max_auth_failures",
            old.max_auth_failures,
            fresh.max_auth_failures,
        ));
    }
    if old.session_features != fresh.session_features {
        stream_changes.push(Change {
            setting: "stream features",
            detail: String::new(),
        });
    }
    if old.registration != fresh.registration {
        let show = |r: &Option<xmpp_core::stream::RegistrationConfig>| match r {
            None => "off".to_owned(),
            Some(r) => format!(
                "{}, min_password_length {}",
                if r.allow_registration {
                    "open"
                } else {
                    "closed"
                },
                r.min_password_length
            ),
        };
        stream_changes.push(Change::new(
            "registration",
            show(&old.registration),
            show(&fresh.registration),
        ));
    }
    (fresh, stream_changes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::{Backend, MemoryBackend};
    use crate::tls::{generate_self_signed, insecure_client_config, server_tls};
    use futures_rustls::TlsConnector;
    use rustls::pki_types::ServerName;
    use smol::io::{AsyncReadExt, AsyncWriteExt};
    use std::net::{IpAddr, Ipv4Addr, SocketAddr};
    use std::path::Path;
    use xmpp_core::hub::HubConfig;

    fn tls(dir: &Path) -> Arc<crate::tls::ServerTls> {
        let paths = generate_self_signed(&["localhost".to_owned()], dir).unwrap();
        Arc::new(server_tls(&paths.cert, &paths.key).unwrap())
    }

    fn config(tls: Arc<crate::tls::ServerTls>, admin: &Path) -> RuntimeConfig {
        RuntimeConfig {
            bind: IpAddr::V4(Ipv4Addr::LOCALHOST),
            c2s_port: 0,
            c2s_tls_port: Some(0),
            tls: Some(tls),
            stream: ServerStreamConfig {
                scram_decoy: Some((vec![7; 32], 4096)),
                ..ServerStreamConfig::default()
            },
            hub: HubConfig::default(),
            threads: 1,
            partitions: 1,
            max_connections: 100,
            partition_queue_bytes: 8 * 1024 * 1024,
            c2s_rate_limit: None,
            admin_socket: Some(admin.to_owned()),
            scram_iterations: 4096,
            components: None,
            s2s: None,
            http: None,
            registration_limit: Default::default(),
            address_limits: Default::default(),
        }
    }

    type ClientTls = futures_rustls::client::TlsStream<smol::net::TcpStream>;

    /// A direct-TLS connection: the stream and the certificate presented.
    async fn connect(addr: SocketAddr) -> (ClientTls, Vec<u8>) {
        let tcp = smol::net::TcpStream::connect(addr).await.unwrap();
        let name = ServerName::try_from("localhost").unwrap();
        let tls = TlsConnector::from(insecure_client_config())
            .connect(name, tcp)
            .await
            .unwrap();
        let cert = tls.get_ref().1.peer_certificates().unwrap()[0].to_vec();
        (tls, cert)
    }

    /// Open a stream and read until the features arrive.
    async fn features(s: &mut ClientTls) -> String {
        s.write_all(
            b"<?xml version='1.0'?><stream:stream xmlns='jabber:client' \
              xmlns:stream='http://etherx.jabber.org/streams' to='localhost' version='1.0'>",
        )
        .await
        .unwrap();
        s.flush().await.unwrap();
        let mut got = Vec::new();
        let mut buf = [0u8; 4096];
        while !String::from_utf8_lossy(&got).contains("</stream:features>") {
            let n = s.read(&mut buf).await.unwrap();
            assert!(n > 0, "closed: {}", String::from_utf8_lossy(&got));
            got.extend_from_slice(&buf[..n]);
        }
        String::from_utf8_lossy(&got).into_owned()
    }

    #[test]
    fn reload_swaps_certificate_and_limits_for_new_connections_only() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (tls(&dir.path().join("a")), tls(&dir.path().join("b")));
        let admin = dir.path().join("admin.sock");
        let backend: Arc<dyn Backend> = Arc::new(MemoryBackend::new());
        let server = crate::start(config(a.clone(), &admin), backend).unwrap();
        let addr = server.c2s_tls_addr.unwrap();
        let handle = server.handle();
        smol::block_on(async {
            let (mut old, cert) = connect(addr).await;
            assert_eq!(cert, a.end_entity_der);

            let mut new_cfg = config(b.clone(), &admin);
            new_cfg.max_connections = 50;
            new_cfg.partition_queue_bytes = 1024 * 1024;
            new_cfg.c2s_port = 5999;
            new_cfg.stream.auth_timeout_ms = 5_000;
            new_cfg.stream.scram_decoy = Some((vec![9; 32], 8192));
            new_cfg.scram_iterations = 8192;
            let report = handle.reload(&new_cfg);
            let applied: Vec<_> = report.applied.iter().map(|c| c.setting).collect();
            assert_eq!(
                applied,
                [
                    "certificate",
                    "max_connections",
                    "partition_queue_bytes",
                    "scram_iterations",
                    "auth_timeout"
                ],
                "{report}"
            );
            assert_eq!(
                report.needs_restart,
                vec![Change::new("c2s_port", 0, 5999)],
                "{report}"
            );
            assert_eq!(handle.settings.current().max_connections, 50);
            assert_eq!(handle.router.set_queue_bytes(1024 * 1024), 1024 * 1024);
            let stream = handle.settings.current().stream.clone();
            assert_eq!(stream.auth_timeout_ms, 5_000);
            // The decoy secret survives; its iteration count follows.
            assert_eq!(stream.scram_decoy, Some((vec![7; 32], 8192)));
            assert!(stream.starttls_available);

            // A new connection gets the new certificate...
            let (mut fresh, cert) = connect(addr).await;
            assert_eq!(cert, b.end_entity_der);
            assert!(features(&mut fresh).await.contains("mechanisms"));
            // ...and the one accepted before keeps working.
            assert!(features(&mut old).await.contains("mechanisms"));

            // Applying the same configuration again changes nothing.
            let again = handle.reload(&new_cfg);
            assert!(again.applied.is_empty(), "{again}");
            assert_eq!(again.needs_restart.len(), 1, "{again}");
        });
        server.shutdown(std::time::Duration::from_secs(1));
    }

    #[test]
    fn admin_reload_runs_the_hook() {
        let dir = tempfile::tempdir().unwrap();
        let admin = dir.path().join("admin.sock");
        let backend: Arc<dyn Backend> = Arc::new(MemoryBackend::new());
        let server = crate::start(config(tls(dir.path()), &admin), backend).unwrap();
        let answer = crate::admin::reload(&admin).unwrap();
        assert!(
            matches!(&answer, Some(Err(m)) if m.contains("does not support")),
            "{answer:?}"
        );
        let handle = server.handle();
        handle.set_reload_hook(Arc::new(|| Ok("reloaded: nothing changed".to_owned())));
        assert_eq!(
            crate::admin::reload(&admin).unwrap(),
            Some(Ok("reloaded: nothing changed".to_owned()))
        );
        handle.set_reload_hook(Arc::new(|| {
            Err("vireo.toml:3: bad value\n  | detail\n".to_owned())
        }));
        assert_eq!(
            crate::admin::reload(&admin).unwrap(),
            Some(Err("vireo.toml:3: bad value\n  | detail".to_owned()))
        );
        server.shutdown(std::time::Duration::from_secs(1));
        assert_eq!(crate::admin::reload(&admin).unwrap(), None);
    }

    #[test]
    fn report_reads_well() {
        let empty = ReloadReport::default();
        assert_eq!(
            empty.to_string(),
            "reloaded: nothing changed; needs restart: nothing"
        );
        let r = ReloadReport {
            applied: vec![
                Change::new("max_connections", 10, 20),
                Change {
                    setting: "certificate",
                    detail: "sha256 00…".into(),
                },
            ],
            needs_restart: vec![Change::new("c2s_port", 5222, 5300)],
        };
        assert_eq!(
            r.to_string(),
            "reloaded: max_connections (10 -> 20), certificate (sha256 00…); \
             needs restart: c2s_port (5222 -> 5300)"
        );
    }

    /// Federation's listeners and links are set up at start: switching it
    /// on or changing any of its settings needs a restart, and says so.
    #[test]
    fn federation_changes_need_a_restart() {
        let started = RuntimeConfig::default();
        let on = RuntimeConfig {
            s2s: Some(crate::s2s::S2sConfig::default()),
            ..RuntimeConfig::default()
        };
        let names = |c: Vec<Change>| c.iter().map(|c| c.setting).collect::<Vec<_>>();
        assert_eq!(
            names(fixed_changes(&started, &on)),
            vec!["federation (s2s) settings"]
        );
        let mut stricter = on.clone();
        if let Some(s) = stricter.s2s.as_mut() {
            s.secure_auth = true;
        }
        assert_eq!(
            names(fixed_changes(&on, &stricter)),
            vec!["federation (s2s) settings"]
        );
        assert!(fixed_changes(&on, &on.clone()).is_empty());
    }
}
