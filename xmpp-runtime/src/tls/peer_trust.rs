//! Judging a certificate a peer presented for a domain: the chain against
//! the trusted roots (dates included), the identities against the domain
//! (RFC 6125, [`super::peer_identity`]). Federation's links and listeners
//! and `vireo check s2s` judge the same way.

use super::config::provider;
use super::peer_identity::{IdentityMatch, PeerIdentities, PeerIdentityError, PresentedId};
use rustls::client::danger::ServerCertVerifier;
use rustls::client::WebPkiServerVerifier;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, RootCertStore};
use std::sync::Arc;

/// The certificate the peer presented, judged.
#[derive(Debug, Clone)]
pub struct CertVerdict {
    /// The chain to a trusted root (dates included): `Ok`, or why not.
    pub chain: Result<(), String>,
    /// Whether the certificate proves the domain (RFC 6125).
    pub identity: Result<IdentityMatch, PeerIdentityError>,
    /// The reference identities it presents.
    pub presented: Vec<PresentedId>,
}

impl CertVerdict {
    /// Whether the chain leads to a trusted root and the certificate
    /// proves the domain.
    pub fn trusted(&self) -> bool {
        self.chain.is_ok() && self.identity.is_ok()
    }
}

/// Judge a chain presented for `domain`: the chain against `roots` (dates
/// included), the identities against the domain (RFC 6125).
pub fn judge_chain(
    domain: &str,
    end_entity: &CertificateDer<'static>,
    intermediates: &[CertificateDer<'static>],
    roots: &Arc<RootCertStore>,
) -> CertVerdict {
    let chain = if roots.is_empty() {
        Err("no trusted roots".to_owned())
    } else {
        match (
            ServerName::try_from(domain.to_owned()),
            WebPkiServerVerifier::builder_with_provider(Arc::clone(roots), provider()).build(),
        ) {
            (Err(e), _) => Err(format!("{domain}: {e}")),
            (_, Err(e)) => Err(e.to_string()),
            (Ok(name), Ok(v)) => {
                match v.verify_server_cert(end_entity, intermediates, &name, &[], UnixTime::now()) {
                    Ok(_) => Ok(()),
                    // The chain is good; whether the name is, RFC 6125 says
                    // below (XMPP certificates may carry only SRV-IDs or
                    // XmppAddrs, which webpki does not read).
                    Err(rustls::Error::InvalidCertificate(
                        CertificateError::NotValidForName
                        | CertificateError::NotValidForNameContext { .. },
                    )) => Ok(()),
                    Err(e) => Err(e.to_string()),
                }
            }
        }
    };
    let parsed = PeerIdentities::from_der(end_entity.as_ref());
    let presented = parsed
        .as_ref()
        .map(|p| p.presented().to_vec())
        .unwrap_or_default();
    let identity = parsed.and_then(|p| p.verify_server(domain));
    CertVerdict {
        chain,
        identity,
        presented,
    }
}
