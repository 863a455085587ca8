//! Certificates made by rcgen in each test, with every kind of identity.
//! Names rcgen cannot write (an IA5String SRVName, a U-label dNSName,
//! malformed entries) go in a subjectAltName extension encoded here by hand,
//! still inside a real rcgen certificate.

use super::*;
use proptest::prelude::*;
use rcgen::{CertificateParams, CustomExtension, DistinguishedName, DnType, KeyPair, SanType};
use std::net::{IpAddr, Ipv4Addr};

/// id-ce-subjectAltName.
const OID_SAN: &[u64] = &[2, 5, 29, 17];
/// DER contents of the two XMPP otherName OIDs.
const DER_XMPP_ADDR: &[u8] = &[0x2b, 6, 1, 5, 5, 7, 8, 5];
const DER_DNS_SRV: &[u8] = &[0x2b, 6, 1, 5, 5, 7, 8, 7];
const UTF8_STRING: u8 = 0x0c;
const IA5_STRING: u8 = 0x16;

fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let len = content.len();
    if len < 0x80 {
        out.push(len as u8);
    } else if len < 0x100 {
        out.extend_from_slice(&[0x81, len as u8]);
    } else {
        out.extend_from_slice(&[0x82, (len >> 8) as u8, len as u8]);
    }
    out.extend_from_slice(content);
    out
}

/// otherName `[0] { OID, [0] EXPLICIT string }`.
fn other_name(oid: &[u8], string_tag: u8, value: &[u8]) -> Vec<u8> {
    let mut inner = tlv(0x06, oid);
    inner.extend(tlv(0xa0, &tlv(string_tag, value)));
    tlv(0xa0, &inner)
}

fn dns_name(name: &[u8]) -> Vec<u8> {
    tlv(0x82, name)
}

fn san(entries: &[Vec<u8>]) -> Vec<u8> {
    tlv(0x30, &entries.concat())
}

fn params(cn: Option<&str>) -> CertificateParams {
    let mut params = CertificateParams::default();
    params.distinguished_name = DistinguishedName::new();
    if let Some(cn) = cn {
        params.distinguished_name.push(DnType::CommonName, cn);
    }
    params
}

fn sign(params: CertificateParams) -> Vec<u8> {
    let key = KeyPair::generate().unwrap();
    params.self_signed(&key).unwrap().der().to_vec()
}

/// A certificate with rcgen's own subjectAltName entries.
fn cert(sans: Vec<SanType>, cn: Option<&str>) -> Vec<u8> {
    let mut params = params(cn);
    params.subject_alt_names = sans;
    sign(params)
}

/// A certificate whose subjectAltName extension holds exactly `raw`.
fn cert_with_raw_san(raw: Vec<u8>, cn: Option<&str>) -> Vec<u8> {
    let mut params = params(cn);
    params
        .custom_extensions
        .push(CustomExtension::from_oid_content(OID_SAN, raw));
    sign(params)
}

fn dns(name: &str) -> SanType {
    SanType::DnsName(name.try_into().unwrap())
}

fn xmpp_addr(addr: &str) -> SanType {
    SanType::OtherName((vec![1, 3, 6, 1, 5, 5, 7, 8, 5], addr.into()))
}

fn kind(der: &[u8], domain: &str) -> Result<MatchKind, PeerIdentityError> {
    verify_server_identity(der, domain).map(|m| m.kind)
}

fn no_match(der: &[u8], domain: &str) -> bool {
    matches!(
        verify_server_identity(der, domain),
        Err(PeerIdentityError::NoMatch { .. })
    )
}

#[test]
fn dns_id_matches_exactly_and_without_case() {
    let der = cert(vec![dns("example.org"), dns("Chat.Example.Net")], None);
    assert_eq!(kind(&der, "example.org"), Ok(MatchKind::DnsId));
    assert_eq!(kind(&der, "EXAMPLE.org."), Ok(MatchKind::DnsId));
    assert_eq!(kind(&der, "chat.example.net"), Ok(MatchKind::DnsId));
    assert!(no_match(&der, "example.net"));
    assert!(no_match(&der, "sub.example.org"));
    assert!(no_match(&der, "xample.org"));
    let err = verify_server_identity(&der, "other.example").unwrap_err();
    assert_eq!(
        err.to_string(),
        "certificate does not prove other.example: it presents DNS:example.org, \
         DNS:chat.example.net"
    );
}

#[test]
fn srv_id_proves_only_the_xmpp_server_service() {
    let raw = san(&[
        other_name(DER_DNS_SRV, IA5_STRING, b"_xmpp-server.example.org"),
        other_name(DER_DNS_SRV, IA5_STRING, b"_xmpp-client.example.net"),
    ]);
    let der = cert_with_raw_san(raw, Some("example.net"));
    let m = verify_server_identity(&der, "example.org").unwrap();
    assert_eq!(m.kind, MatchKind::SrvId);
    assert_eq!(m.to_string(), "SRV-ID SRV:_xmpp-server.example.org");
    // A client SRV-ID is no proof for s2s, and it rules out the CN.
    assert!(no_match(&der, "example.net"));
    // The SRV-ID names exactly its domain: no wildcard, no parent.
    assert!(no_match(&der, "chat.example.org"));

    // Written as UTF8String (as rcgen writes every otherName) it still
    // counts.
    let der = cert(
        vec![SanType::OtherName((
            vec![1, 3, 6, 1, 5, 5, 7, 8, 7],
            "_XMPP-Server.Example.org".into(),
        ))],
        None,
    );
    assert_eq!(kind(&der, "example.org"), Ok(MatchKind::SrvId));
}

#[test]
fn xmpp_addr_needs_a_domain_only_jid() {
    let der = cert(
        vec![xmpp_addr("example.org"), xmpp_addr("juliet@example.net")],
        None,
    );
    assert_eq!(kind(&der, "example.org"), Ok(MatchKind::XmppAddr));
    assert_eq!(kind(&der, "Example.ORG"), Ok(MatchKind::XmppAddr));
    // A user's address does not prove its server.
    assert!(no_match(&der, "example.net"));
    let ids = PeerIdentities::from_der(&der).unwrap();
    assert_eq!(
        ids.presented(),
        &[
            PresentedId::XmppAddr("example.org".into()),
            PresentedId::XmppAddr("juliet@example.net".into())
        ]
    );
}

#[test]
fn wildcards_cover_one_whole_left_most_label() {
    let der = cert(vec![dns("*.example.org")], None);
    assert_eq!(kind(&der, "chat.example.org"), Ok(MatchKind::WildcardDnsId));
    assert_eq!(kind(&der, "CHAT.example.org"), Ok(MatchKind::WildcardDnsId));
    assert!(no_match(&der, "example.org"), "never the parent domain");
    assert!(no_match(&der, "a.b.example.org"), "exactly one label");
    assert!(no_match(&der, "chat.example.net"));

    for pattern in [
        "*.org",
        "f*.example.org",
        "*oo.example.org",
        "xn--*.example.org",
        "chat.*.org",
        "*.*.example.org",
    ] {
        let der = cert(vec![dns(pattern)], None);
        for domain in [
            "foo.example.org",
            "example.org",
            "chat.example.org",
            "xn--bcher-kva.example.org",
        ] {
            assert!(no_match(&der, domain), "{pattern} must not match {domain}");
        }
    }

    // An exact DNS-ID wins over a wildcard one.
    let der = cert(vec![dns("*.example.org"), dns("chat.example.org")], None);
    assert_eq!(kind(&der, "chat.example.org"), Ok(MatchKind::DnsId));
}

#[test]
fn the_strongest_identity_is_reported() {
    let raw = san(&[
        dns_name(b"example.org"),
        other_name(DER_XMPP_ADDR, UTF8_STRING, b"example.org"),
        other_name(DER_DNS_SRV, IA5_STRING, b"_xmpp-server.example.org"),
    ]);
    let der = cert_with_raw_san(raw, Some("example.org"));
    assert_eq!(kind(&der, "example.org"), Ok(MatchKind::SrvId));
    let der = cert(vec![xmpp_addr("example.org"), dns("example.org")], None);
    assert_eq!(kind(&der, "example.org"), Ok(MatchKind::DnsId));
}

#[test]
fn common_name_only_without_subject_alt_name_identities() {
    // CN only.
    let der = cert(vec![], Some("example.org"));
    assert_eq!(kind(&der, "example.org"), Ok(MatchKind::CommonName));
    assert!(no_match(&der, "other.org"));
    let der = cert(vec![], Some("*.example.org"));
    assert_eq!(kind(&der, "chat.example.org"), Ok(MatchKind::CommonName));
    assert!(no_match(&der, "example.org"));

    // Any DNS-ID, SRV-ID, XmppAddr or URI rules the CN out, even one that
    // names another domain.
    let der = cert(vec![dns("other.org")], Some("example.org"));
    assert!(no_match(&der, "example.org"));
    assert!(PeerIdentities::from_der(&der)
        .unwrap()
        .presented()
        .iter()
        .all(|id| !matches!(id, PresentedId::CommonName(_))));
    let der = cert(vec![xmpp_addr("other.org")], Some("example.org"));
    assert!(no_match(&der, "example.org"));
    let der = cert(
        vec![SanType::URI("xmpp:other.org".try_into().unwrap())],
        Some("example.org"),
    );
    assert!(no_match(&der, "example.org"));
    let raw = san(&[other_name(
        DER_DNS_SRV,
        IA5_STRING,
        b"_xmpp-server.other.org",
    )]);
    assert!(no_match(
        &cert_with_raw_san(raw, Some("example.org")),
        "example.org"
    ));

    // An IP address or e-mail SAN is none of those types: the CN counts.
    let der = cert(
        vec![
            SanType::IpAddress(IpAddr::V4(Ipv4Addr::LOCALHOST)),
            SanType::Rfc822Name("admin@example.org".try_into().unwrap()),
        ],
        Some("example.org"),
    );
    assert_eq!(kind(&der, "example.org"), Ok(MatchKind::CommonName));

    // Several CNs: the last (most specific) one.
    let mut p = params(None);
    p.distinguished_name
        .push(DnType::OrganizationName, "example.org");
    p.distinguished_name.push(DnType::CommonName, "example.org");
    let der = sign(p);
    assert_eq!(kind(&der, "example.org"), Ok(MatchKind::CommonName));
}

#[test]
fn internationalized_domains_compare_as_a_labels() {
    let der = cert(vec![dns("xn--bcher-kva.example")], None);
    assert_eq!(kind(&der, "bücher.example"), Ok(MatchKind::DnsId));
    assert_eq!(kind(&der, "BÜCHER.example"), Ok(MatchKind::DnsId));
    assert_eq!(kind(&der, "xn--bcher-kva.example"), Ok(MatchKind::DnsId));
    assert!(no_match(&der, "bucher.example"));

    let der = cert(vec![dns("*.xn--bcher-kva.example")], None);
    assert_eq!(
        kind(&der, "muc.bücher.example"),
        Ok(MatchKind::WildcardDnsId)
    );
    // The wildcard covers an A-label like any other label.
    let der = cert(vec![dns("*.shop.example")], None);
    assert_eq!(
        kind(&der, "bücher.shop.example"),
        Ok(MatchKind::WildcardDnsId)
    );

    // XmppAddr carries U-labels (UTF8String); it matches either spelling.
    let der = cert(vec![xmpp_addr("bücher.example")], None);
    assert_eq!(kind(&der, "xn--bcher-kva.example"), Ok(MatchKind::XmppAddr));
    assert_eq!(kind(&der, "bücher.example"), Ok(MatchKind::XmppAddr));

    // A U-label in a dNSName is malformed: it matches nothing, and still
    // rules out the CN.
    let raw = san(&[dns_name("bücher.example".as_bytes())]);
    let der = cert_with_raw_san(raw, Some("xn--bcher-kva.example"));
    assert!(no_match(&der, "bücher.example"));
    let ids = PeerIdentities::from_der(&der).unwrap();
    assert_eq!(ids.unusable(), 1);
    assert!(ids.presented().is_empty());
}

#[test]
fn malformed_subject_alt_names_are_refused_not_skipped() {
    // The extension's content is not a SEQUENCE of GeneralNames: an error,
    // never a fall back to the (matching) CN.
    for raw in [
        vec![],
        vec![0x30, 0x05, 0x82],
        vec![0x04, 0x02, 0x41, 0x42],
        vec![0x30, 0x03, 0x82, 0x05, 0x61],
    ] {
        let der = cert_with_raw_san(raw.clone(), Some("example.org"));
        assert!(
            matches!(
                verify_server_identity(&der, "example.org"),
                Err(PeerIdentityError::BadSubjectAltName(_))
            ),
            "{raw:?}: {:?}",
            verify_server_identity(&der, "example.org")
        );
    }
    // Two subjectAltName extensions.
    let mut p = params(None);
    p.subject_alt_names = vec![dns("other.org")];
    p.custom_extensions.push(CustomExtension::from_oid_content(
        OID_SAN,
        san(&[dns_name(b"example.org")]),
    ));
    assert!(matches!(
        verify_server_identity(&sign(p), "example.org"),
        Err(PeerIdentityError::BadSubjectAltName(_))
    ));

    // Undecodable otherName values: skipped, counted, and they rule out the
    // CN.
    let raw = san(&[
        // [0] EXPLICIT around an INTEGER.
        {
            let mut inner = tlv(0x06, DER_XMPP_ADDR);
            inner.extend(tlv(0xa0, &[0x02, 0x01, 0x05]));
            tlv(0xa0, &inner)
        },
        // Not a JID.
        other_name(DER_XMPP_ADDR, UTF8_STRING, b"a@b@c/"),
        // An SRVName without a service label.
        other_name(DER_DNS_SRV, IA5_STRING, b"example.org"),
        // Invalid UTF-8.
        other_name(DER_XMPP_ADDR, UTF8_STRING, &[0xff, 0xfe]),
        dns_name(b"example.net"),
    ]);
    let der = cert_with_raw_san(raw, Some("example.org"));
    let ids = PeerIdentities::from_der(&der).unwrap();
    assert_eq!(ids.unusable(), 4);
    assert_eq!(ids.presented(), &[PresentedId::Dns("example.net".into())]);
    assert!(no_match(&der, "example.org"));
    assert_eq!(kind(&der, "example.net"), Ok(MatchKind::DnsId));
}

#[test]
fn invalid_reference_domains_are_refused() {
    let der = cert(vec![dns("example.org")], None);
    for domain in ["", "user@example.org", "example.org/res", "exa mple.org"] {
        assert!(
            matches!(
                verify_server_identity(&der, domain),
                Err(PeerIdentityError::InvalidReference { .. })
            ),
            "{domain:?}"
        );
    }
}

#[test]
fn name_count_budget_at_the_limit() {
    let names =
        |n: usize| -> Vec<SanType> { (0..n).map(|i| dns(&format!("h{i}.example.org"))).collect() };
    let der = cert(names(MAX_PRESENTED_NAMES), None);
    assert!(der.len() <= MAX_CERTIFICATE_BYTES);
    let last = format!("h{}.example.org", MAX_PRESENTED_NAMES - 1);
    assert_eq!(kind(&der, &last), Ok(MatchKind::DnsId));
    let der = cert(names(MAX_PRESENTED_NAMES + 1), None);
    assert_eq!(
        verify_server_identity(&der, "h0.example.org"),
        Err(PeerIdentityError::TooManyNames)
    );
}

#[test]
fn size_budget_and_garbage() {
    let at_limit = vec![0x30; MAX_CERTIFICATE_BYTES];
    assert!(matches!(
        PeerIdentities::from_der(&at_limit),
        Err(PeerIdentityError::NotCertificate(_))
    ));
    let over = vec![0x30; MAX_CERTIFICATE_BYTES + 1];
    assert_eq!(
        PeerIdentities::from_der(&over),
        Err(PeerIdentityError::TooLarge {
            len: MAX_CERTIFICATE_BYTES + 1
        })
    );
    for garbage in [
        &b""[..],
        b"\x30",
        b"\x30\x80",
        b"\x30\x84\xff\xff\xff\xff",
        b"hello",
    ] {
        assert!(matches!(
            PeerIdentities::from_der(garbage),
            Err(PeerIdentityError::NotCertificate(_))
        ));
    }
}

/// One real certificate with every identity kind, for mutation.
fn seed_certificate() -> Vec<u8> {
    let raw = san(&[
        dns_name(b"*.example.org"),
        other_name(DER_XMPP_ADDR, UTF8_STRING, b"example.org"),
        other_name(DER_DNS_SRV, IA5_STRING, b"_xmpp-server.example.org"),
    ]);
    cert_with_raw_san(raw, Some("example.org"))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Random bytes never panic.
    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        if let Ok(ids) = PeerIdentities::from_der(&bytes) {
            let _ = ids.verify_server("example.org");
        }
    }

    /// A real certificate with bytes changed, cut or extended never panics,
    /// and whatever still parses answers consistently.
    #[test]
    fn mutated_certificates_never_panic(
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
        cut in any::<prop::sample::Index>(),
        truncate in any::<bool>(),
    ) {
        let mut der = seed_certificate();
        for (at, byte) in edits {
            let i = at.index(der.len());
            der[i] = byte;
        }
        if truncate {
            der.truncate(cut.index(der.len()));
        }
        if let Ok(ids) = PeerIdentities::from_der(&der) {
            for domain in ["example.org", "chat.example.org", "example.net"] {
                match ids.verify_server(domain) {
                    Ok(m) => prop_assert!(ids.presented().contains(&m.presented)),
                    Err(PeerIdentityError::NoMatch { .. }) => {}
                    Err(e) => prop_assert!(false, "unexpected {e}"),
                }
            }
        }
    }
}
