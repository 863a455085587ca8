//! What a server is started with ([`RuntimeConfig`]) and what an embedder
//! reloads it with: a plain value, so that starting, reloading and the
//! settings snapshot all read it without depending on each other.

use crate::address_limits::AddressLimits;
use crate::rate_limit::RateLimit;
use crate::registration::RegistrationLimit;
use crate::s2s::S2sConfig;
use crate::tls::ServerTls;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;
use xmpp_core::http::HttpLimits;
use xmpp_core::hub::HubConfig;
use xmpp_core::stream::{ComponentStreamConfig, ServerStreamConfig};

/// The external component listener (XEP-0114).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ComponentListener {
    /// Address to listen on (loopback unless components run elsewhere:
    /// the stream is not encrypted).
    pub bind: IpAddr,
    /// Port (0 = ephemeral).
    pub port: u16,
    /// The components that may connect, with their secrets.
    pub stream: ComponentStreamConfig,
}

/// The HTTP listeners' settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpConfig {
    /// Plain HTTP port, if any (0 = ephemeral).
    pub port: Option<u16>,
    /// HTTPS port, if any (0 = ephemeral; needs a certificate).
    pub tls_port: Option<u16>,
    /// What one connection and request may cost.
    pub limits: HttpLimits,
    /// HTTP connections one address may hold at once.
    pub max_per_address: usize,
    /// Who may read `/metrics` (loopback by default, as Prosody's
    /// `openmetrics_allow_ips`); others get 403.
    pub metrics_allow: Vec<ipnet::IpNet>,
    /// XMPP over WebSocket at `/xmpp-websocket` (RFC 7395); `None` when the
    /// module is off.
    pub websocket: Option<WebSocketConfig>,
    /// XMPP over BOSH at `/http-bind` (XEP-0124, XEP-0206); `None` when the
    /// module is off.
    pub bosh: Option<BoshHttpConfig>,
    /// Converse.js's `dist/` files, served at `/conversejs` when set.
    pub conversejs_dir: Option<std::path::PathBuf>,
    /// The admin API at `/api/`: where its tokens are kept (the data
    /// directory); `None` when the module is off.
    pub api_tokens_dir: Option<std::path::PathBuf>,
    /// XEP-0363 uploads at `/upload/…`; `None` when the module is off.
    pub upload: Option<UploadHttpConfig>,
    /// The URL clients reach the HTTP server at (`https://chat.example.org`,
    /// behind a proxy); `None` derives it from each request's `Host`.
    pub external_url: Option<String>,
    /// Reverse proxies whose `X-Forwarded-For` names the client: its
    /// address, not the proxy's, is what per-address limits count.
    pub trusted_proxies: Vec<ipnet::IpNet>,
}

impl HttpConfig {
    /// Whether `other` configures the same HTTP service. The upload key is
    /// no setting: it is derived from the data directory's secret when the
    /// server starts, which a configuration read for a reload does not do.
    pub fn same_as(&self, other: &HttpConfig) -> bool {
        let settings = |c: &HttpConfig| {
            let mut c = c.clone();
            if let Some(u) = c.upload.as_mut() {
                u.secret = Vec::new();
            }
            c
        };
        settings(self) == settings(other)
    }
}

/// The upload endpoint's settings (the slots are the hub module's).
#[derive(Clone, PartialEq, Eq)]
pub struct UploadHttpConfig {
    /// Where files are kept.
    pub dir: std::path::PathBuf,
    /// The key slot tokens are signed with (the hub module's too).
    pub secret: Vec<u8>,
    /// Largest file, bytes.
    pub max_file_size: u64,
    /// How long files are kept, ms.
    pub retention_ms: u64,
}

impl std::fmt::Debug for UploadHttpConfig {
    /// The secret never reaches a log.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UploadHttpConfig")
            .field("dir", &self.dir)
            .field("max_file_size", &self.max_file_size)
            .field("retention_ms", &self.retention_ms)
            .finish_non_exhaustive()
    }
}

/// The BOSH endpoint's settings.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BoshHttpConfig {
    /// What sessions are granted (wait, hold, inactivity, pause).
    pub session: xmpp_core::bosh::BoshConfig,
    /// Web origins whose pages may use it (CORS); `None` allows any, for
    /// the reason [`WebSocketConfig::origins`] gives.
    pub origins: Option<Vec<String>>,
    /// BOSH on the plain HTTP port counts as encrypted: a TLS-terminating
    /// proxy is in front (Prosody's `consider_bosh_secure`).
    pub consider_secure: bool,
}

/// The WebSocket endpoint's settings.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WebSocketConfig {
    /// Web origins whose pages may open a WebSocket (the `Origin` header,
    /// e.g. `https://chat.example.org`); `None` allows any. XMPP
    /// authenticates inside the stream, never with cookies, so a foreign
    /// page gains nothing a script outside a browser would not have: any
    /// origin is the default, as in ejabberd.
    pub origins: Option<Vec<String>>,
    /// WebSockets over plain HTTP count as encrypted: a TLS-terminating
    /// proxy is in front (Prosody's `consider_websocket_secure`).
    pub consider_secure: bool,
    /// Send every client to this WebSocket URL instead (RFC 7395 §3.6.1).
    pub see_other_uri: Option<String>,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            port: Some(0),
            tls_port: None,
            limits: HttpLimits::default(),
            max_per_address: 64,
            metrics_allow: crate::address_limits::loopback(),
            websocket: Some(WebSocketConfig::default()),
            bosh: Some(BoshHttpConfig::default()),
            upload: None,
            api_tokens_dir: None,
            conversejs_dir: None,
            external_url: None,
            trusted_proxies: Vec::new(),
        }
    }
}

/// Everything the runtime needs to serve.
#[derive(Clone)]
pub struct RuntimeConfig {
    /// Address to listen on.
    pub bind: IpAddr,
    /// STARTTLS c2s port (0 = ephemeral).
    pub c2s_port: u16,
    /// Direct-TLS c2s port (XEP-0368), if any (0 = ephemeral).
    pub c2s_tls_port: Option<u16>,
    /// Certificate and key for the hosted domains.
    pub tls: Option<Arc<ServerTls>>,
    /// c2s stream settings.
    pub stream: ServerStreamConfig,
    /// Hub settings.
    pub hub: HubConfig,
    /// Executor threads (per-connection work runs on all of them).
    pub threads: usize,
    /// Hub partitions (accounts are spread over them by bare JID).
    pub partitions: usize,
    /// Refuse connections beyond this many.
    pub max_connections: usize,
    /// Bytes of client stanzas one hub partition may have queued; a
    /// connection waits for room before handing over another
    /// (`credit.rs`).
    pub partition_queue_bytes: usize,
    /// Per-connection limit on received bytes, if any.
    pub c2s_rate_limit: Option<RateLimit>,
    /// Unix admin socket for `vireo adduser` & co. while running.
    pub admin_socket: Option<PathBuf>,
    /// PBKDF2 iterations for passwords set through the admin socket and
    /// in-band (XEP-0077).
    pub scram_iterations: u32,
    /// External components, if any may connect.
    pub components: Option<ComponentListener>,
    /// The per-address limit on in-band registrations (XEP-0077).
    pub registration_limit: RegistrationLimit,
    /// Connection limits per address and the authentication backoff.
    pub address_limits: AddressLimits,
    /// Federation (s2s), if on.
    pub s2s: Option<S2sConfig>,
    /// The HTTP listeners, if any.
    pub http: Option<HttpConfig>,
}

/// A server for an embedder or a test: loopback on an ephemeral STARTTLS
/// port, no certificate (so STARTTLS is not offered until `tls` is set),
/// one executor thread per core and two hub partitions per thread, and
/// every limit at the default of the `vireo` configuration
/// (spec/config.md).
impl Default for RuntimeConfig {
    fn default() -> Self {
        let threads = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1);
        RuntimeConfig {
            bind: IpAddr::V4(std::net::Ipv4Addr::LOCALHOST),
            c2s_port: 0,
            c2s_tls_port: None,
            tls: None,
            stream: ServerStreamConfig::default(),
            hub: HubConfig::default(),
            threads,
            partitions: threads * 2,
            max_connections: 20_000,
            partition_queue_bytes: 2 * 1024 * 1024,
            c2s_rate_limit: None,
            admin_socket: None,
            scram_iterations: 10_000,
            components: None,
            registration_limit: Default::default(),
            address_limits: Default::default(),
            s2s: None,
            http: None,
        }
    }
}

impl std::fmt::Debug for RuntimeConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RuntimeConfig")
            .field("bind", &self.bind)
            .field("c2s_port", &self.c2s_port)
            .field("c2s_tls_port", &self.c2s_tls_port)
            .field("tls", &self.tls.is_some())
            .field("threads", &self.threads)
            .field("partitions", &self.partitions)
            .field(
                "components",
                &self.components.as_ref().map(|c| (c.bind, c.port)),
            )
            .field("s2s", &self.s2s)
            .field("http", &self.http)
            .finish_non_exhaustive()
    }
}
