//! The TOML schema of a configuration file. Sections follow the stack layers
//! (transport, stream, ...) so the layered tree can grow out of it. Every
//! value is `Spanned`, which is how effective values know their line.

use serde::Deserialize;
use toml::Spanned;

/// A configuration file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// One hosted domain (shorthand for `domains = [..]`).
    pub domain: Option<Spanned<String>>,
    /// Hosted domains.
    pub domains: Option<Spanned<Vec<String>>>,
    /// Data directory (store, generated certificates, admin socket).
    pub data_path: Option<Spanned<String>>,
    /// Log filter (tracing `EnvFilter` syntax), e.g. "info" or "debug".
    pub log_level: Option<Spanned<String>>,
    /// 01-transport.
    #[serde(default)]
    pub transport: TransportSection,
    /// 01-transport TLS.
    #[serde(default)]
    pub tls: TlsSection,
    /// 02-stream.
    #[serde(default)]
    pub stream: StreamSection,
}

/// Listeners and connection limits.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TransportSection {
    pub bind: Option<Spanned<String>>,
    pub c2s_port: Option<Spanned<u16>>,
    pub c2s_tls_port: Option<Spanned<u16>>,
    pub max_connections: Option<Spanned<usize>>,
    pub threads: Option<Spanned<usize>>,
}

/// Certificate and key.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsSection {
    pub certificate: Option<Spanned<String>>,
    pub key: Option<Spanned<String>>,
}

/// Stream negotiation and limits.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StreamSection {
    pub require_encryption: Option<Spanned<bool>>,
    pub auth_timeout: Option<Spanned<u64>>,
    pub keepalive_interval: Option<Spanned<u64>>,
    pub max_stanza_size: Option<Spanned<usize>>,
    pub scram_iterations: Option<Spanned<u32>>,
    pub mechanisms: Option<Spanned<Vec<String>>>,
}
