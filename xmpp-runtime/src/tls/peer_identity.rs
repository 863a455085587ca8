//! RFC 6125 identity of an XMPP server peer: does its certificate prove a
//! domain for server-to-server use (RFC 6120 §13.7.1.2)?
//!
//! Chain validation (signatures, validity, trust anchors) is rustls's job;
//! this module answers the other half of "the certificate verifies": which
//! domains it names, read from the structure of the certificate and never
//! from a string rendering of it.
//!
//! Presented identifiers, from the subjectAltName extension:
//! - **SRV-ID**: otherName `id-on-dnsSRV` (1.3.6.1.5.5.7.8.7, RFC 4985),
//!   `_xmpp-server.example.org`; it proves the domain only for the
//!   `xmpp-server` service (an `_xmpp-client` SRV-ID does not).
//! - **DNS-ID**: dNSName, `example.org` or `*.example.org`.
//! - **XmppAddr**: otherName `id-on-xmppAddr` (1.3.6.1.5.5.7.8.5, RFC 6120
//!   §13.7.1.4), a UTF8String JID; only a domain-only JID names a server
//!   (as in Prosody and ejabberd).
//! - **CN-ID**: the Subject's (last) common name, only when the
//!   subjectAltName holds no DNS-ID, SRV-ID, URI-ID or XmppAddr at all —
//!   not even an unreadable one (RFC 6125 §6.4.4).
//!
//! Matching (RFC 6125 §6.4): domains compare as ASCII case-insensitive
//! A-labels; the reference domain is converted with IDNA (UTS #46, the
//! `idna` crate) and certificate names must already be A-labels (RFC 5280
//! §7.2, RFC 4985), so a U-label in a dNSName never matches. A wildcard
//! (§6.4.3) is only `*` as the whole left-most label of a DNS-ID or CN-ID,
//! matches exactly one non-empty label, never the parent domain itself,
//! and needs at least two labels after it (`*.com` names nothing). Partial
//! wildcards (`f*.example.org`, `xn--*.example.org`) match nothing.
//!
//! Budgets: a certificate over [`MAX_CERTIFICATE_BYTES`] is not parsed, and
//! one naming more than [`MAX_PRESENTED_NAMES`] identities is refused.

use std::fmt;

use x509_parser::asn1_rs::{Any, FromDer, Oid, Tag, TaggedExplicit};
use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::GeneralName;
use xmpp_core::Jid;

/// Largest certificate parsed, in DER bytes. Real server certificates are
/// 1–8 KiB, hosting certificates with hundreds of names a few times that.
pub const MAX_CERTIFICATE_BYTES: usize = 64 * 1024;

/// Most subjectAltName entries considered; a certificate with more is
/// refused rather than searched.
pub const MAX_PRESENTED_NAMES: usize = 1024;

/// id-on-xmppAddr (RFC 6120 §13.7.1.4).
const OID_XMPP_ADDR: &[u64] = &[1, 3, 6, 1, 5, 5, 7, 8, 5];
/// id-on-dnsSRV (RFC 4985 §2).
const OID_DNS_SRV: &[u64] = &[1, 3, 6, 1, 5, 5, 7, 8, 7];

/// The SRV service label that proves a domain for server-to-server
/// streams (RFC 6120 §13.7.1.2.1).
const XMPP_SERVER_SERVICE: &str = "_xmpp-server";

/// An identity a certificate presents, normalised for matching (DNS names
/// and SRV names lowercased, trailing dot removed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PresentedId {
    /// A dNSName, possibly with a left-most `*` label.
    Dns(String),
    /// An SRVName: `_service.domain`.
    Srv {
        /// The service label with its underscore (`_xmpp-server`).
        service: String,
        /// The domain.
        domain: String,
    },
    /// An XmppAddr, as written in the certificate.
    XmppAddr(String),
    /// The Subject common name, present only where RFC 6125 §6.4.4 lets
    /// it count.
    CommonName(String),
}

impl fmt::Display for PresentedId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PresentedId::Dns(n) => write!(f, "DNS:{n}"),
            PresentedId::Srv { service, domain } => write!(f, "SRV:{service}.{domain}"),
            PresentedId::XmppAddr(a) => write!(f, "xmppAddr:{a}"),
            PresentedId::CommonName(n) => write!(f, "CN:{n}"),
        }
    }
}

/// Which rule proved the domain, strongest first (the order in which they
/// are tried).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum MatchKind {
    /// An SRV-ID for `_xmpp-server`.
    SrvId,
    /// A DNS-ID equal to the domain.
    DnsId,
    /// A DNS-ID whose `*` covers the domain's left-most label.
    WildcardDnsId,
    /// A domain-only XmppAddr equal to the domain.
    XmppAddr,
    /// The Subject CN (no subjectAltName identity present).
    CommonName,
}

impl fmt::Display for MatchKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            MatchKind::SrvId => "SRV-ID",
            MatchKind::DnsId => "DNS-ID",
            MatchKind::WildcardDnsId => "wildcard DNS-ID",
            MatchKind::XmppAddr => "XmppAddr",
            MatchKind::CommonName => "CN-ID",
        })
    }
}

/// The identity that proved the domain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdentityMatch {
    /// The rule that matched.
    pub kind: MatchKind,
    /// The certificate's identifier that matched.
    pub presented: PresentedId,
}

impl fmt::Display for IdentityMatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.kind, self.presented)
    }
}

/// Why a certificate does not prove a domain.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PeerIdentityError {
    /// The certificate is over [`MAX_CERTIFICATE_BYTES`].
    #[error("certificate of {len} bytes (at most {MAX_CERTIFICATE_BYTES} are read)")]
    TooLarge {
        /// Its size.
        len: usize,
    },
    /// Not a DER X.509 certificate.
    #[error("not an X.509 certificate: {0}")]
    NotCertificate(String),
    /// The subjectAltName extension is malformed or present twice. No
    /// fallback to the CN then: a broken SAN must not unlock the CN.
    #[error("malformed subjectAltName: {0}")]
    BadSubjectAltName(String),
    /// More than [`MAX_PRESENTED_NAMES`] subjectAltName entries.
    #[error("more than {MAX_PRESENTED_NAMES} subjectAltName entries")]
    TooManyNames,
    /// The domain to check is not a valid domain name.
    #[error("{domain:?} is not a valid domain: {reason}")]
    InvalidReference {
        /// The domain asked about.
        domain: String,
        /// Why it is invalid.
        reason: String,
    },
    /// The certificate is readable but names other domains (or none).
    #[error("certificate does not prove {domain}: {}", presented_list(.presented))]
    NoMatch {
        /// The domain asked about.
        domain: String,
        /// What the certificate does present (usable identities only).
        presented: Vec<PresentedId>,
    },
}

fn presented_list(presented: &[PresentedId]) -> String {
    if presented.is_empty() {
        return "it presents no usable identity".to_owned();
    }
    let names: Vec<String> = presented.iter().map(ToString::to_string).collect();
    format!("it presents {}", names.join(", "))
}

/// The identities of one certificate, read once and matched against any
/// number of domains (a multiplexed stream asks about several).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerIdentities {
    presented: Vec<PresentedId>,
    unusable: usize,
}

impl PeerIdentities {
    /// Read the identities of a DER certificate (as rustls hands over the
    /// peer's end-entity certificate). Never panics, whatever the bytes.
    pub fn from_der(der: &[u8]) -> Result<PeerIdentities, PeerIdentityError> {
        if der.len() > MAX_CERTIFICATE_BYTES {
            return Err(PeerIdentityError::TooLarge { len: der.len() });
        }
        let (_, cert) = X509Certificate::from_der(der)
            .map_err(|e| PeerIdentityError::NotCertificate(e.to_string()))?;
        let san = cert
            .subject_alternative_name()
            .map_err(|e| PeerIdentityError::BadSubjectAltName(e.to_string()))?;
        let names = san.map_or(&[][..], |ext| &ext.value.general_names[..]);
        if names.len() > MAX_PRESENTED_NAMES {
            return Err(PeerIdentityError::TooManyNames);
        }
        let mut out = PeerIdentities {
            presented: Vec::new(),
            unusable: 0,
        };
        // RFC 6125 §6.4.4: any identifier of these types, readable or
        // not, rules out the CN.
        let mut blocks_cn = false;
        for name in names {
            let (counts, id) = read_general_name(name);
            blocks_cn |= counts;
            match id {
                Some(id) => out.presented.push(id),
                None if counts => out.unusable += 1,
                None => {}
            }
        }
        if !blocks_cn {
            // The most specific (last) CN, if it is a string.
            if let Some(cn) = cert.subject().iter_common_name().last() {
                match cn.as_str().ok().and_then(normalize_dns) {
                    Some(cn) => out.presented.push(PresentedId::CommonName(cn)),
                    None => out.unusable += 1,
                }
            }
        }
        Ok(out)
    }

    /// The usable identities, in certificate order (the CN last).
    pub fn presented(&self) -> &[PresentedId] {
        &self.presented
    }

    /// Identities of the types above that could not be read (non-ASCII
    /// dNSName, undecodable otherName, malformed SRVName, invalid JID, URI):
    /// they match nothing, but still rule out the CN.
    pub fn unusable(&self) -> usize {
        self.unusable
    }

    /// Whether the certificate proves `domain` for server-to-server use,
    /// and by which identity (the strongest kind when several match).
    pub fn verify_server(&self, domain: &str) -> Result<IdentityMatch, PeerIdentityError> {
        let reference = Reference::new(domain)?;
        self.presented
            .iter()
            .filter_map(|id| reference.matches(id).map(|kind| (kind, id)))
            .min_by_key(|(kind, _)| *kind)
            .map(|(kind, id)| IdentityMatch {
                kind,
                presented: id.clone(),
            })
            .ok_or_else(|| PeerIdentityError::NoMatch {
                domain: domain.to_owned(),
                presented: self.presented.clone(),
            })
    }
}

/// [`PeerIdentities::from_der`] then
/// [`verify_server`](PeerIdentities::verify_server).
pub fn verify_server_identity(
    der: &[u8],
    domain: &str,
) -> Result<IdentityMatch, PeerIdentityError> {
    PeerIdentities::from_der(der)?.verify_server(domain)
}

/// One subjectAltName entry: whether it is of a type that rules out the
/// CN, and the identity it presents if it is usable.
fn read_general_name(name: &GeneralName<'_>) -> (bool, Option<PresentedId>) {
    match name {
        GeneralName::DNSName(n) => (true, normalize_dns(n).map(PresentedId::Dns)),
        GeneralName::URI(_) => (true, None),
        GeneralName::OtherName(oid, value) => {
            if oid_is(oid, OID_DNS_SRV) {
                (true, other_name_string(value).and_then(srv_name))
            } else if oid_is(oid, OID_XMPP_ADDR) {
                let id = other_name_string(value)
                    .filter(|s| Jid::parse(s).is_ok())
                    .map(|s| PresentedId::XmppAddr(s.to_owned()));
                (true, id)
            } else {
                (false, None)
            }
        }
        // An entry x509-parser could not decode: a dNSName (2), URI (6)
        // or otherName (0, of unknown type) still rules out the CN.
        GeneralName::Invalid(tag, _) => (matches!(tag.0, 0 | 2 | 6), None),
        _ => (false, None),
    }
}

fn oid_is(oid: &Oid<'_>, arcs: &[u64]) -> bool {
    oid.iter().is_some_and(|it| it.eq(arcs.iter().copied()))
}

/// The string inside an otherName value (`[0] EXPLICIT` around it). RFC
/// 6120 makes XmppAddr a UTF8String and RFC 4985 makes SRVName an
/// IA5String; either type is read for either name, because some generators
/// (rcgen among them) write every otherName as UTF8String.
fn other_name_string<'a>(value: &'a [u8]) -> Option<&'a str> {
    let (rest, tagged) =
        TaggedExplicit::<Any<'a>, x509_parser::asn1_rs::Error, 0>::from_der(value).ok()?;
    if !rest.is_empty() {
        return None;
    }
    let inner = tagged.into_inner();
    if inner.tag() != Tag::Utf8String && inner.tag() != Tag::Ia5String {
        return None;
    }
    std::str::from_utf8(inner.data).ok()
}

/// A DNS name as certificates must carry it: ASCII (A-labels), compared in
/// lowercase, without a trailing dot.
fn normalize_dns(name: &str) -> Option<String> {
    let name = name.strip_suffix('.').unwrap_or(name);
    (!name.is_empty() && name.is_ascii()).then(|| name.to_ascii_lowercase())
}

/// `_service.domain`, split.
fn srv_name(value: &str) -> Option<PresentedId> {
    let name = normalize_dns(value)?;
    let (service, domain) = name.split_once('.')?;
    if service.len() < 2 || !service.starts_with('_') || domain.is_empty() {
        return None;
    }
    Some(PresentedId::Srv {
        service: service.to_owned(),
        domain: domain.to_owned(),
    })
}

/// The domain asked about, in the two forms matching needs.
struct Reference {
    /// A-label form, lowercase, no trailing dot: for DNS-, SRV- and CN-IDs.
    ascii: String,
    /// Normalised JID domain: for XmppAddr.
    jid: Jid,
}

impl Reference {
    fn new(domain: &str) -> Result<Reference, PeerIdentityError> {
        let invalid = |reason: String| PeerIdentityError::InvalidReference {
            domain: domain.to_owned(),
            reason,
        };
        let bare = domain.strip_suffix('.').unwrap_or(domain);
        let jid = Jid::domain_jid(bare).map_err(|e| invalid(e.to_string()))?;
        let ascii = idna::domain_to_ascii(jid.domain())
            .map_err(|_| invalid("no IDNA A-label form".to_owned()))?
            .to_ascii_lowercase();
        Ok(Reference { ascii, jid })
    }

    fn matches(&self, id: &PresentedId) -> Option<MatchKind> {
        match id {
            PresentedId::Srv { service, domain } => (service == XMPP_SERVER_SERVICE
                && *domain == self.ascii)
                .then_some(MatchKind::SrvId),
            PresentedId::Dns(name) => dns_match(name, &self.ascii),
            PresentedId::XmppAddr(addr) => {
                let jid = Jid::parse(addr).ok()?;
                (jid.local().is_none() && jid.resource().is_none() && jid == self.jid)
                    .then_some(MatchKind::XmppAddr)
            }
            PresentedId::CommonName(name) => {
                dns_match(name, &self.ascii).map(|_| MatchKind::CommonName)
            }
        }
    }
}

/// RFC 6125 §6.4.1–6.4.3 for one normalised name against the A-label
/// reference.
fn dns_match(presented: &str, reference: &str) -> Option<MatchKind> {
    if !presented.contains('*') {
        return (presented == reference).then_some(MatchKind::DnsId);
    }
    let (wild, parent) = presented.split_once('.')?;
    if wild != "*" || parent.contains('*') || !parent.contains('.') {
        return None;
    }
    let (label, rest) = reference.split_once('.')?;
    (!label.is_empty() && rest == parent).then_some(MatchKind::WildcardDnsId)
}

#[cfg(test)]
#[path = "peer_identity_tests.rs"]
mod tests;
