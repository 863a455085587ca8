//! TLS: certificates, rustls configuration, channel binding.
//!
//! Everything here uses rustls with the ring provider chosen explicitly, so
//! the build never depends on which crypto provider happens to be the
//! process default.

pub mod binding;
pub mod certs;
pub mod config;
pub mod peer_identity;
pub mod peer_trust;
pub mod s2s;

pub use binding::{client_channel_binding, client_channel_bindings, server_channel_bindings};
pub use certs::{generate_self_signed, write_file_atomically, CertPaths};
pub use config::{
    insecure_client_config, server_config, server_tls, server_tls_sni, verifying_client_config,
    ServerTls,
};

use std::path::PathBuf;

/// Why a TLS setup step failed. File-related variants name the file, so a
/// misconfigured `tls.toml` points straight at the culprit.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// Certificate generation was asked for no domain at all.
    #[error("cannot generate a certificate for an empty domain list")]
    NoDomains,
    /// A domain that cannot name a certificate file (empty, path separators,
    /// leading dot).
    #[error("invalid domain {0:?} for a certificate file name")]
    InvalidDomain(String),
    /// rcgen failed to build the certificate.
    #[error("certificate generation failed: {0}")]
    Generate(#[source] rcgen::Error),
    /// Reading or writing a file failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A PEM file could not be parsed.
    #[error("{}: invalid PEM: {source}", path.display())]
    Pem {
        /// The PEM file.
        path: PathBuf,
        /// The parser's error.
        #[source]
        source: std::io::Error,
    },
    /// The certificate file holds no certificate.
    #[error("{}: no certificate found", .0.display())]
    NoCertificate(PathBuf),
    /// The key file holds no private key.
    #[error("{}: no private key found (PKCS#8, PKCS#1 or SEC1 PEM expected)", .0.display())]
    NoPrivateKey(PathBuf),
    /// rustls rejected the certificate/key pair (unsupported key type, key
    /// not matching the certificate, ...).
    #[error("{} / {}: rejected by rustls: {source}", cert.display(), key.display())]
    Rejected {
        /// The certificate file.
        cert: PathBuf,
        /// The key file.
        key: PathBuf,
        /// rustls's reason.
        #[source]
        source: rustls::Error,
    },
    /// rustls refused the protocol version selection (a build problem: the
    /// provider lacks TLS 1.2/1.3 suites).
    #[error("TLS configuration: {0}")]
    Config(#[source] rustls::Error),
    /// The server-certificate verifier could not be built (no trusted
    /// root given).
    #[error("certificate verifier: {0}")]
    Verifier(#[source] rustls::client::VerifierBuilderError),
}
