//! rustls configurations: the server's, a verifying client's for
//! embedders, and an insecure client's for the benchmark client and tests.

use std::fs::File;
use std::io::BufReader;
use std::path::Path;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::{self, CryptoProvider};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{
    ClientConfig, DigitallySignedStruct, RootCertStore, ServerConfig, SignatureScheme,
    SupportedProtocolVersion,
};

use super::TlsError;

/// ALPN protocol for XMPP client connections over direct TLS (XEP-0368).
pub const ALPN_XMPP_CLIENT: &[u8] = b"xmpp-client";

/// TLS 1.3 and 1.2; nothing older is offered or accepted.
pub(crate) const VERSIONS: &[&SupportedProtocolVersion] =
    &[&rustls::version::TLS13, &rustls::version::TLS12];

/// The crypto provider, chosen explicitly instead of the process default.
pub(crate) fn provider() -> Arc<CryptoProvider> {
    Arc::new(crypto::ring::default_provider())
}

/// A server configuration together with the end-entity certificate it
/// presents, which `tls-server-end-point` channel binding hashes (rustls does
/// not expose a server's own certificate on the connection).
#[derive(Debug, Clone)]
pub struct ServerTls {
    /// The rustls configuration for acceptors.
    pub config: Arc<ServerConfig>,
    /// DER of the first certificate of the chain.
    pub end_entity_der: Vec<u8>,
    /// Per-domain certificates chosen by SNI (virtual hosts), with their
    /// end-entity DER; the default above serves every other name.
    pub by_name: std::collections::BTreeMap<String, Vec<u8>>,
    /// The certified keys by domain, for the s2s configurations
    /// (`tls::s2s`), which present the same certificates.
    pub(crate) keys: Arc<SniResolver>,
}

impl ServerTls {
    /// The end-entity certificate served to a client that asked for `sni`.
    pub fn end_entity_for(&self, sni: Option<&str>) -> &[u8] {
        sni.map(|n| n.to_ascii_lowercase())
            .and_then(|n| self.by_name.get(&n))
            .unwrap_or(&self.end_entity_der)
    }
}

/// Picks the certificate by SNI, falling back to the default: a client that
/// sends no name (or an unknown one) still gets the primary domain's.
#[derive(Debug)]
pub(crate) struct SniResolver {
    default: Arc<rustls::sign::CertifiedKey>,
    by_name: std::collections::BTreeMap<String, Arc<rustls::sign::CertifiedKey>>,
}

impl SniResolver {
    /// The certified key for `domain`, or the default one.
    pub(crate) fn for_domain(&self, domain: &str) -> Arc<rustls::sign::CertifiedKey> {
        self.by_name
            .get(&domain.to_ascii_lowercase())
            .unwrap_or(&self.default)
            .clone()
    }
}

impl rustls::server::ResolvesServerCert for SniResolver {
    fn resolve(
        &self,
        hello: rustls::server::ClientHello<'_>,
    ) -> Option<Arc<rustls::sign::CertifiedKey>> {
        let named = hello
            .server_name()
            .and_then(|n| self.by_name.get(&n.to_ascii_lowercase()));
        Some(named.unwrap_or(&self.default).clone())
    }
}

fn certified_key(
    cert: &Path,
    key: &Path,
) -> Result<(Arc<rustls::sign::CertifiedKey>, Vec<u8>), TlsError> {
    let chain = load_certs(cert)?;
    let der = match chain.first() {
        Some(c) => c.as_ref().to_vec(),
        None => return Err(TlsError::NoCertificate(cert.to_owned())),
    };
    let private_key = load_private_key(key)?;
    let rejected = |source| TlsError::Rejected {
        cert: cert.to_owned(),
        key: key.to_owned(),
        source,
    };
    let signing = provider()
        .key_provider
        .load_private_key(private_key)
        .map_err(rejected)?;
    let ck = rustls::sign::CertifiedKey::new(chain, signing);
    ck.keys_match().map_err(rejected)?;
    Ok((Arc::new(ck), der))
}

/// A server configuration for several domains: `default` for clients that
/// name no known domain, and one certificate per entry of `by_name`, chosen
/// by SNI.
pub fn server_tls_sni(
    default: (&Path, &Path),
    by_name: &[(String, std::path::PathBuf, std::path::PathBuf)],
) -> Result<ServerTls, TlsError> {
    let (default_key, end_entity_der) = certified_key(default.0, default.1)?;
    let mut keys = std::collections::BTreeMap::new();
    let mut ders = std::collections::BTreeMap::new();
    for (domain, cert, key) in by_name {
        let (k, der) = certified_key(cert, key)?;
        keys.insert(domain.to_ascii_lowercase(), k);
        ders.insert(domain.to_ascii_lowercase(), der);
    }
    let resolver = Arc::new(SniResolver {
        default: default_key,
        by_name: keys,
    });
    let mut config = ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(VERSIONS)
        .map_err(TlsError::Config)?
        .with_no_client_auth()
        .with_cert_resolver(resolver.clone());
    config.alpn_protocols = vec![ALPN_XMPP_CLIENT.to_vec()];
    Ok(ServerTls {
        config: Arc::new(config),
        end_entity_der,
        by_name: ders,
        keys: resolver,
    })
}

/// Loads a PEM certificate chain and private key and builds the server
/// configuration: ring provider, TLS 1.2 and 1.3 only, no client
/// certificates, ALPN `xmpp-client` accepted (XEP-0368 direct TLS; clients
/// that send no ALPN are accepted too).
pub fn server_config(cert: &Path, key: &Path) -> Result<Arc<ServerConfig>, TlsError> {
    server_tls(cert, key).map(|t| t.config)
}

/// Like [`server_config`], also returning the end-entity certificate DER
/// read in the same pass, so channel binding always matches the served
/// certificate.
pub fn server_tls(cert: &Path, key: &Path) -> Result<ServerTls, TlsError> {
    server_tls_sni((cert, key), &[])
}

/// The HTTPS configuration: the same certificates, chosen by SNI, with
/// ALPN `http/1.1` (HTTP/2 is not offered).
pub fn https_config(tls: &ServerTls) -> Result<Arc<ServerConfig>, TlsError> {
    let mut config = ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(VERSIONS)
        .map_err(TlsError::Config)?
        .with_no_client_auth()
        .with_cert_resolver(tls.keys.clone());
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// Reads all certificates of a PEM file, end-entity first.
pub fn load_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let mut reader = open(path)?;
    let certs = rustls_pemfile::certs(&mut reader)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|source| TlsError::Pem {
            path: path.to_owned(),
            source,
        })?;
    if certs.is_empty() {
        return Err(TlsError::NoCertificate(path.to_owned()));
    }
    Ok(certs)
}

/// Reads the first private key (PKCS#8, PKCS#1 or SEC1) of a PEM file.
pub fn load_private_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    let mut reader = open(path)?;
    rustls_pemfile::private_key(&mut reader)
        .map_err(|source| TlsError::Pem {
            path: path.to_owned(),
            source,
        })?
        .ok_or_else(|| TlsError::NoPrivateKey(path.to_owned()))
}

fn open(path: &Path) -> Result<BufReader<File>, TlsError> {
    File::open(path)
        .map(BufReader::new)
        .map_err(|source| TlsError::Io {
            path: path.to_owned(),
            source,
        })
}

/// A client configuration that verifies the server's certificate the
/// standard way (rustls's webpki verifier): a chain to one of `roots`,
/// validity dates, and the name the client connects to (the JID's domain).
/// Ring provider, TLS 1.2 and 1.3, as the server. To trust exactly one
/// self-signed certificate, put only that certificate in `roots`.
///
/// An empty `roots` is refused ([`TlsError::Verifier`]): it would fail
/// every handshake, which is a configuration mistake, not a policy.
pub fn verifying_client_config(
    roots: impl Into<Arc<RootCertStore>>,
) -> Result<Arc<ClientConfig>, TlsError> {
    let provider = provider();
    let verifier = WebPkiServerVerifier::builder_with_provider(roots.into(), provider.clone())
        .build()
        .map_err(TlsError::Verifier)?;
    let config = ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(VERSIONS)
        .map_err(TlsError::Config)?
        .with_webpki_verifier(verifier)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// **INSECURE — FOR THE BENCHMARK CLIENT AND TESTS ONLY. NEVER USE IT TO
/// TALK TO A REAL SERVER.**
///
/// A client configuration that accepts *any* server certificate for *any*
/// name, expired or self-signed: an active attacker can impersonate the
/// server and read everything, including passwords sent with PLAIN. It only
/// still checks that the handshake is signed by the key of the certificate
/// presented, so channel binding over it is meaningful in tests.
pub fn insecure_client_config() -> Arc<ClientConfig> {
    // The ring provider always has TLS 1.2 and 1.3 suites, so building with
    // them cannot fail; `insecure_client_config_is_buildable` checks it.
    #[allow(clippy::expect_used)]
    let config =
        insecure_client_config_with(VERSIONS).expect("the ring provider supports TLS 1.2 and 1.3");
    Arc::new(config)
}

/// [`insecure_client_config`] restricted to some protocol versions.
pub(crate) fn insecure_client_config_with(
    versions: &[&'static SupportedProtocolVersion],
) -> Result<ClientConfig, TlsError> {
    accepting_any_config(versions, None)
}

/// A client configuration that accepts any server certificate (handshake
/// signatures still verified) and, with `capture`, keeps the chain the
/// server presented, so a probe can judge it afterwards and describe a bad
/// one instead of only failing (`s2s::probe`).
pub(crate) fn accepting_any_config(
    versions: &[&'static SupportedProtocolVersion],
    capture: Option<Arc<CapturedChain>>,
) -> Result<ClientConfig, TlsError> {
    let provider = provider();
    let verifier = AcceptAnyServerCert {
        algorithms: provider.signature_verification_algorithms,
        capture,
    };
    Ok(ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(versions)
        .map_err(TlsError::Config)?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_no_client_auth())
}

/// The end-entity certificate and intermediates a server presented.
pub(crate) type Chain = (CertificateDer<'static>, Vec<CertificateDer<'static>>);

/// Where [`accepting_any_config`] keeps the chain of its last handshake.
#[derive(Debug, Default)]
pub(crate) struct CapturedChain(std::sync::Mutex<Option<Chain>>);

impl CapturedChain {
    /// The chain of the last handshake, if one got that far.
    pub(crate) fn get(&self) -> Option<Chain> {
        self.0.lock().ok()?.clone()
    }
}

/// Accepts every certificate; verifies only handshake signatures.
#[derive(Debug)]
struct AcceptAnyServerCert {
    algorithms: crypto::WebPkiSupportedAlgorithms,
    capture: Option<Arc<CapturedChain>>,
}

impl ServerCertVerifier for AcceptAnyServerCert {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if let Some(slot) = self.capture.as_ref().and_then(|c| c.0.lock().ok()) {
            let mut slot = slot;
            *slot = Some((
                end_entity.clone().into_owned(),
                intermediates
                    .iter()
                    .map(|c| c.clone().into_owned())
                    .collect(),
            ));
        }
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn insecure_client_config_is_buildable() {
        assert!(insecure_client_config_with(VERSIONS).is_ok());
        let _ = insecure_client_config();
    }

    #[test]
    fn verifying_client_config_needs_a_root() {
        let err = verifying_client_config(RootCertStore::empty()).unwrap_err();
        assert!(matches!(err, TlsError::Verifier(_)), "{err}");
        let dir = tempfile::tempdir().unwrap();
        let paths =
            super::super::generate_self_signed(&["localhost".to_owned()], dir.path()).unwrap();
        let mut roots = RootCertStore::empty();
        for cert in load_certs(&paths.cert).unwrap() {
            roots.add(cert).unwrap();
        }
        assert!(verifying_client_config(roots).is_ok());
    }

    #[test]
    fn errors_name_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing.crt");
        let err = server_config(&missing, &missing).unwrap_err();
        assert!(err.to_string().contains("missing.crt"), "{err}");

        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "not pem at all\n").unwrap();
        let err = server_config(&empty, &empty).unwrap_err();
        assert!(matches!(err, TlsError::NoCertificate(_)), "{err}");
        assert!(err.to_string().contains("empty.pem"), "{err}");

        let paths =
            super::super::generate_self_signed(&["example.org".to_owned()], dir.path()).unwrap();
        let err = server_config(&paths.cert, &empty).unwrap_err();
        assert!(matches!(err, TlsError::NoPrivateKey(_)), "{err}");
        assert!(err.to_string().contains("empty.pem"), "{err}");

        // A key that does not belong to the certificate.
        let other = dir.path().join("other");
        let other =
            super::super::generate_self_signed(&["example.net".to_owned()], &other).unwrap();
        let err = server_config(&paths.cert, &other.key).unwrap_err();
        assert!(matches!(err, TlsError::Rejected { .. }), "{err}");

        let tls = server_tls(&paths.cert, &paths.key).unwrap();
        assert_eq!(tls.config.alpn_protocols, vec![ALPN_XMPP_CLIENT.to_vec()]);
    }
}
