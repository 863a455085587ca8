//! TLS for server-to-server streams: the same certificates as the client
//! listeners, different rules.
//!
//! - As the receiving server we *ask* for a client certificate and take
//!   whatever comes: a certificate that does not verify must not fail the
//!   handshake, because dialback can still authenticate the peer (Prosody's
//!   `s2s_secure_auth = false`, the default everywhere). Whether it proves
//!   the peer's domain is judged afterwards ([`judge`]), and only then may
//!   SASL EXTERNAL use it.
//! - As the initiating server we present our certificate for the domain we
//!   send from, and accept any server certificate in the handshake for the
//!   same reason; [`judge`] tells the link whether it is trusted, and the
//!   policy (`s2s_secure_auth`) decides what an untrusted one may do.
//!
//! Handshake signatures are always verified: a peer cannot present a
//! certificate whose key it does not hold.

use super::config::{accepting_any_config, provider, ServerTls, SniResolver, VERSIONS};
use super::peer_trust::{judge_chain, CertVerdict};
use super::TlsError;
use rustls::client::ResolvesClientCert;
use rustls::pki_types::{CertificateDer, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::sign::CertifiedKey;
use rustls::{
    ClientConfig, DigitallySignedStruct, DistinguishedName, RootCertStore, ServerConfig,
    SignatureScheme,
};
use std::sync::Arc;
use xmpp_core::s2s::incoming::PeerCertificate;

/// ALPN protocol of s2s over direct TLS (XEP-0368).
pub const ALPN_XMPP_SERVER: &[u8] = b"xmpp-server";

/// The TLS configurations of federation, built once at start.
#[derive(Debug)]
pub struct S2sTls {
    /// For incoming connections (STARTTLS and direct TLS).
    pub server: Arc<ServerConfig>,
    keys: Arc<SniResolver>,
    /// The roots peers' chains are judged against.
    pub roots: Arc<RootCertStore>,
}

impl S2sTls {
    /// From the server's certificates, judging peers against `roots`.
    pub fn new(tls: &ServerTls, roots: Arc<RootCertStore>) -> Result<S2sTls, TlsError> {
        let verifier = AskAnyClientCert {
            algorithms: provider().signature_verification_algorithms,
        };
        let mut server = ServerConfig::builder_with_provider(provider())
            .with_protocol_versions(VERSIONS)
            .map_err(TlsError::Config)?
            .with_client_cert_verifier(Arc::new(verifier))
            .with_cert_resolver(tls.keys.clone());
        server.alpn_protocols = vec![ALPN_XMPP_SERVER.to_vec()];
        Ok(S2sTls {
            server: Arc::new(server),
            keys: tls.keys.clone(),
            roots,
        })
    }

    /// A client configuration for a link from our `local` domain: our
    /// certificate for it presented, any server certificate accepted (and
    /// judged afterwards with [`judge`]).
    pub fn client_config(&self, local: &str) -> Result<Arc<ClientConfig>, TlsError> {
        let key = self.keys.for_domain(local);
        let mut config = accepting_any_config(VERSIONS, None)?;
        config.client_auth_cert_resolver = Arc::new(OurCertificate(key));
        config.alpn_protocols = vec![ALPN_XMPP_SERVER.to_vec()];
        Ok(Arc::new(config))
    }

    /// Whether our own certificate for `domain` proves it (RFC 6125): only
    /// then is SASL EXTERNAL worth trying on our links from it.
    pub fn proves_own(&self, domain: &str) -> bool {
        let key = self.keys.for_domain(domain);
        judge(domain, &key.cert, &self.roots).is_some_and(|v| v.trusted())
    }
}

/// The verdict on a chain a peer presented for `domain`: `None` when it
/// presented none.
pub fn judge(
    domain: &str,
    chain: &[CertificateDer<'static>],
    roots: &Arc<RootCertStore>,
) -> Option<CertVerdict> {
    let (end_entity, intermediates) = chain.split_first()?;
    Some(judge_chain(domain, end_entity, intermediates, roots))
}

/// A client certificate judged after the handshake, for
/// [`xmpp_core::s2s::IncomingStream`]'s SASL EXTERNAL.
#[derive(Debug)]
pub struct JudgedPeer {
    chain: Vec<CertificateDer<'static>>,
    roots: Arc<RootCertStore>,
}

impl JudgedPeer {
    /// The chain a peer presented, if any.
    pub fn new(
        chain: Option<&[CertificateDer<'static>]>,
        roots: &Arc<RootCertStore>,
    ) -> Option<Self> {
        let chain = chain.filter(|c| !c.is_empty())?;
        Some(JudgedPeer {
            chain: chain.to_vec(),
            roots: roots.clone(),
        })
    }
}

impl PeerCertificate for JudgedPeer {
    fn proves(&self, domain: &str) -> bool {
        judge(domain, &self.chain, &self.roots).is_some_and(|v| v.trusted())
    }
}

/// Presents one certified key to every server that asks.
#[derive(Debug)]
struct OurCertificate(Arc<CertifiedKey>);

impl ResolvesClientCert for OurCertificate {
    fn resolve(
        &self,
        _root_hint_subjects: &[&[u8]],
        _sigschemes: &[SignatureScheme],
    ) -> Option<Arc<CertifiedKey>> {
        Some(self.0.clone())
    }

    fn has_certs(&self) -> bool {
        true
    }
}

/// Asks for a client certificate, never requires one, and takes any:
/// the judgment comes after the handshake ([`JudgedPeer`]).
#[derive(Debug)]
struct AskAnyClientCert {
    algorithms: rustls::crypto::WebPkiSupportedAlgorithms,
}

impl ClientCertVerifier for AskAnyClientCert {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        false
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}
