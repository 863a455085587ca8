//! What federation is started with: a plain value inside
//! [`RuntimeConfig`](crate::RuntimeConfig).

use super::{DnsBudget, S2sOverrides};
use rustls::RootCertStore;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use xmpp_core::s2s::{IncomingConfig, OutgoingConfig};

/// Federation (s2s) settings. The domains the incoming side accepts and
/// the dialback secret are filled in at start from the hub's domains and a
/// fresh random secret unless set here.
#[derive(Clone)]
pub struct S2sConfig {
    /// The s2s port with STARTTLS (0 = ephemeral).
    pub port: u16,
    /// The direct-TLS s2s port (XEP-0368), if any (0 = ephemeral).
    pub tls_port: Option<u16>,
    /// The receiving side's settings.
    pub incoming: IncomingConfig,
    /// The initiating side's settings.
    pub outgoing: OutgoingConfig,
    /// The dialback secret; `None`: a random one per start (keys only
    /// outlive a start while a stream is being verified).
    pub dialback_secret: Option<Vec<u8>>,
    /// Static routes (`s2s_routes`, `VIREO_S2S_OVERRIDES`).
    pub overrides: S2sOverrides,
    /// DNS servers; empty: the system's (`/etc/resolv.conf`).
    pub nameservers: Vec<SocketAddr>,
    /// What one resolution may cost.
    pub dns: DnsBudget,
    /// Roots peers' certificates are judged against.
    pub roots: Arc<RootCertStore>,
    /// One connection attempt (TCP and TLS handshake).
    pub connect_timeout: Duration,
    /// A link or incoming stream that carried nothing this long is closed.
    pub idle_timeout: Duration,
    /// Bytes of stanzas waiting for one outgoing link; more bounce with
    /// `resource-constraint`.
    pub queue_bytes: usize,
    /// Outgoing links (domain pairs) at once; a stanza needing one more
    /// bounces with `resource-constraint`.
    pub max_links: usize,
    /// Incoming s2s connections from one IP address at once.
    pub max_incoming_per_address: usize,
    /// Peers must prove their domain with a trusted certificate (Prosody's
    /// `s2s_secure_auth`): no dialback over a certificate that does not
    /// verify.
    pub secure_auth: bool,
    /// Domains held to `secure_auth` even when it is off.
    pub secure_domains: Vec<String>,
    /// Domains exempt from `secure_auth` when it is on.
    pub insecure_domains: Vec<String>,
    /// Remote domains we never federate with (either direction).
    pub blocked_domains: Vec<String>,
    /// When non-empty, the only remote domains we federate with.
    pub allowed_domains: Vec<String>,
}

impl Default for S2sConfig {
    fn default() -> Self {
        S2sConfig {
            port: 0,
            tls_port: None,
            incoming: IncomingConfig::default(),
            outgoing: OutgoingConfig::default(),
            dialback_secret: None,
            overrides: S2sOverrides::new(),
            nameservers: Vec::new(),
            dns: DnsBudget::default(),
            roots: Arc::new(RootCertStore::empty()),
            connect_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(300),
            queue_bytes: 1024 * 1024,
            max_links: 1000,
            max_incoming_per_address: 16,
            secure_auth: false,
            secure_domains: Vec::new(),
            insecure_domains: Vec::new(),
            blocked_domains: Vec::new(),
            allowed_domains: Vec::new(),
        }
    }
}

impl S2sConfig {
    /// Whether federation with `domain` is allowed at all.
    pub fn allows(&self, domain: &str) -> bool {
        !self.blocked_domains.iter().any(|d| d == domain)
            && (self.allowed_domains.is_empty() || self.allowed_domains.iter().any(|d| d == domain))
    }

    /// Whether `domain` must prove itself with a trusted certificate.
    pub fn needs_secure_auth(&self, domain: &str) -> bool {
        if self.secure_domains.iter().any(|d| d == domain) {
            return true;
        }
        self.secure_auth && !self.insecure_domains.iter().any(|d| d == domain)
    }
}

impl S2sConfig {
    /// Every setting, as text, for telling whether a reload changed any
    /// (the roots by their count, the secret not at all).
    pub fn summary(&self) -> String {
        let (i, o) = (&self.incoming, &self.outgoing);
        format!(
            "ports {} {:?}; incoming tls {} bidi {} auth {} ms pending {} pairs {} limits {:?}; \
             outgoing tls {} bidi {} auth {} ms; routes {:?}; nameservers {:?}; dns {:?}; \
             roots {}; connect {:?} idle {:?}; queue {} links {} per address {}; \
             secure {} {:?} insecure {:?}; blocked {:?} allowed {:?}",
            self.port,
            self.tls_port,
            i.require_tls,
            i.bidi,
            i.auth_timeout_ms,
            i.max_pending,
            i.max_pairs,
            i.limits,
            o.require_tls,
            o.bidi,
            o.auth_timeout_ms,
            self.overrides,
            self.nameservers,
            self.dns,
            self.roots.len(),
            self.connect_timeout,
            self.idle_timeout,
            self.queue_bytes,
            self.max_links,
            self.max_incoming_per_address,
            self.secure_auth,
            self.secure_domains,
            self.insecure_domains,
            self.blocked_domains,
            self.allowed_domains,
        )
    }
}

impl std::fmt::Debug for S2sConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S2sConfig")
            .field("port", &self.port)
            .field("tls_port", &self.tls_port)
            .field("overrides", &self.overrides.len())
            .field("secure_auth", &self.secure_auth)
            .finish_non_exhaustive()
    }
}
