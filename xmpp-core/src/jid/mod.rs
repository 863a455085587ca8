//! JIDs (RFC 7622): parsing, normalisation and comparison.
//!
//! Every part is normalised on construction, so equality, hashing and
//! ordering of [`Jid`] values are the RFC's comparison rules and a `Jid` can
//! key routing tables directly. Localparts use PRECIS UsernameCaseMapped
//! (`precis-profiles`); resourceparts use PRECIS OpaqueString, implemented
//! in the private `opaque` module with current Unicode tables (so emoji
//! resources and nicknames work, including emoji newer than Unicode 6.3 and
//! emoji ZWJ sequences, unlike RFC 6122 stringprep); domainparts use IDNA2008
//! and are stored as U-labels (so a `xn--` A-label and its Unicode spelling
//! are the same JID).

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

use idna::uts46::{AsciiDenyList, DnsLength, Hyphens, Uts46};
use precis_core::profile::PrecisFastInvocation;
use precis_profiles::UsernameCaseMapped;

pub(crate) mod opaque;

/// Maximum length in bytes of each part (RFC 7622 §3.2–3.4).
pub const MAX_PART_BYTES: usize = 1023;

/// Characters RFC 7622 §3.3.1 forbids in a localpart on top of the PRECIS
/// profile.
const LOCAL_FORBIDDEN: &[char] = &['"', '&', '\'', '/', ':', '<', '>', '@'];

/// Which part of a JID an error is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JidPart {
    /// The part before `@`.
    Local,
    /// The host part.
    Domain,
    /// The part after `/`.
    Resource,
}

impl fmt::Display for JidPart {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            JidPart::Local => "localpart",
            JidPart::Domain => "domainpart",
            JidPart::Resource => "resourcepart",
        })
    }
}

/// Why a string is not a valid JID.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JidError {
    /// A part is present (its separator was given) but empty, or the
    /// domainpart is missing.
    #[error("empty {0}")]
    Empty(JidPart),
    /// A part is longer than 1023 bytes after normalisation.
    #[error("{part} longer than {MAX_PART_BYTES} bytes ({len} bytes)")]
    TooLong {
        /// The offending part.
        part: JidPart,
        /// Its length in bytes.
        len: usize,
    },
    /// The localpart contains one of `"&'/:<>@` (possibly after width
    /// mapping, e.g. a fullwidth `＠`).
    #[error("localpart contains forbidden character {0:?}")]
    ForbiddenChar(char),
    /// The PRECIS profile rejected the part (disallowed code point, bidi
    /// rule, …).
    #[error("{part} rejected by PRECIS: {reason}")]
    Precis {
        /// The offending part.
        part: JidPart,
        /// What the profile reported.
        reason: String,
    },
    /// The domainpart is neither a valid IDNA2008 domain name nor an IP
    /// literal.
    #[error("invalid domainpart: {0}")]
    InvalidDomain(String),
}

/// A normalised JID.
///
/// Stored as one string (`local@domain/resource`) plus the offsets of the
/// separators, so `Display` and `bare_str` need no formatting work and a JID
/// costs one allocation.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Jid {
    full: String,
    /// Byte offset of the `@` when there is a localpart.
    at: Option<usize>,
    /// Byte offset of the `/` when there is a resourcepart.
    slash: Option<usize>,
}

impl Jid {
    /// Parse and normalise a JID string. The resourcepart is everything after
    /// the first `/`; the localpart is everything before the first `@`
    /// preceding it.
    pub fn parse(s: &str) -> Result<Jid, JidError> {
        let (bare, resource) = match s.split_once('/') {
            Some((b, r)) => (b, Some(r)),
            None => (s, None),
        };
        let (local, domain) = match bare.split_once('@') {
            Some((l, d)) => (Some(l), d),
            None => (None, bare),
        };
        Jid::new(local, domain, resource)
    }

    /// Build a JID from parts, normalising each. `Some("")` for the local or
    /// resource part is an error, as in `@example.com`.
    pub fn new(local: Option<&str>, domain: &str, resource: Option<&str>) -> Result<Jid, JidError> {
        let local = local.map(normalize_local).transpose()?;
        let domain = normalize_domain(domain)?;
        let resource = resource.map(normalize_resource).transpose()?;
        let mut full = String::with_capacity(
            local.as_ref().map_or(0, |l| l.len() + 1)
                + domain.len()
                + resource.as_ref().map_or(0, |r| r.len() + 1),
        );
        let mut at = None;
        if let Some(l) = &local {
            full.push_str(l);
            at = Some(full.len());
            full.push('@');
        }
        full.push_str(&domain);
        let mut slash = None;
        if let Some(r) = &resource {
            slash = Some(full.len());
            full.push('/');
            full.push_str(r);
        }
        Ok(Jid { full, at, slash })
    }

    /// A JID consisting of a domain only (a server or component address).
    pub fn domain_jid(domain: &str) -> Result<Jid, JidError> {
        Jid::new(None, domain, None)
    }

    /// The normalised localpart.
    pub fn local(&self) -> Option<&str> {
        self.at.map(|at| &self.full[..at])
    }

    /// The normalised domainpart (U-label form for IDNs).
    pub fn domain(&self) -> &str {
        let start = self.at.map_or(0, |at| at + 1);
        let end = self.slash.unwrap_or(self.full.len());
        &self.full[start..end]
    }

    /// The normalised resourcepart.
    pub fn resource(&self) -> Option<&str> {
        self.slash.map(|s| &self.full[s + 1..])
    }

    /// This JID without its resource.
    pub fn bare(&self) -> Jid {
        match self.slash {
            None => self.clone(),
            Some(s) => Jid {
                full: self.full[..s].to_owned(),
                at: self.at,
                slash: None,
            },
        }
    }

    /// True when there is no resourcepart.
    pub fn is_bare(&self) -> bool {
        self.slash.is_none()
    }

    /// True when there is a resourcepart.
    pub fn is_full(&self) -> bool {
        self.slash.is_some()
    }

    /// The bare JID with the given resource (replacing any existing one).
    pub fn with_resource(&self, resource: &str) -> Result<Jid, JidError> {
        let r = normalize_resource(resource)?;
        let bare_len = self.slash.unwrap_or(self.full.len());
        let mut full = String::with_capacity(bare_len + 1 + r.len());
        full.push_str(&self.full[..bare_len]);
        full.push('/');
        full.push_str(&r);
        Ok(Jid {
            full,
            at: self.at,
            slash: Some(bare_len),
        })
    }

    /// `local@domain`, or `domain` when there is no localpart.
    pub fn bare_str(&self) -> String {
        self.full[..self.slash.unwrap_or(self.full.len())].to_owned()
    }

    /// The whole normalised JID as a string slice.
    pub fn as_str(&self) -> &str {
        &self.full
    }
}

fn check_len(part: JidPart, s: &str) -> Result<(), JidError> {
    if s.is_empty() {
        return Err(JidError::Empty(part));
    }
    if s.len() > MAX_PART_BYTES {
        return Err(JidError::TooLong { part, len: s.len() });
    }
    Ok(())
}

fn normalize_local(s: &str) -> Result<String, JidError> {
    if s.is_empty() {
        return Err(JidError::Empty(JidPart::Local));
    }
    // Refuse absurd input before PRECIS spends time on it; normalisation can
    // shrink a string, but not by more than a small factor.
    if s.len() > 4 * MAX_PART_BYTES {
        return Err(JidError::TooLong {
            part: JidPart::Local,
            len: s.len(),
        });
    }
    // Fast path: printable ASCII is what PRECIS leaves alone except for
    // case folding (IdentifierClass admits all of it, no width or
    // normalization mapping applies, and no bidi rule can trip); this is the
    // JID of nearly every routed stanza.
    if s.bytes().all(|b| (0x21..0x7f).contains(&b)) {
        if let Some(c) = s.chars().find(|c| LOCAL_FORBIDDEN.contains(c)) {
            return Err(JidError::ForbiddenChar(c));
        }
        let out = s.to_ascii_lowercase();
        check_len(JidPart::Local, &out)?;
        return Ok(out);
    }
    let precis = |e: precis_core::Error| JidError::Precis {
        part: JidPart::Local,
        reason: e.to_string(),
    };
    let out = UsernameCaseMapped::enforce(s).map_err(precis)?;
    // RFC 8264 §7: the code points are checked after the mappings and the
    // normalization, which the crate does not do: "=" followed by U+0338
    // composes to "≠" (U+2260), a symbol the class disallows, so a JID would
    // parse whose display does not (found by the jid fuzz target). The
    // enforced string must itself be valid, and stable.
    if out != s {
        let again = UsernameCaseMapped::enforce(out.as_ref()).map_err(precis)?;
        if again != out {
            return Err(JidError::Precis {
                part: JidPart::Local,
                reason: "not stable under enforcement".to_owned(),
            });
        }
    }
    if let Some(c) = out.chars().find(|c| LOCAL_FORBIDDEN.contains(c)) {
        return Err(JidError::ForbiddenChar(c));
    }
    check_len(JidPart::Local, &out)?;
    Ok(out.into_owned())
}

fn normalize_resource(s: &str) -> Result<String, JidError> {
    if s.is_empty() {
        return Err(JidError::Empty(JidPart::Resource));
    }
    if s.len() > 4 * MAX_PART_BYTES {
        return Err(JidError::TooLong {
            part: JidPart::Resource,
            len: s.len(),
        });
    }
    let out = opaque::enforce(s).map_err(|e| JidError::Precis {
        part: JidPart::Resource,
        reason: e.to_string(),
    })?;
    check_len(JidPart::Resource, &out)?;
    Ok(out)
}

/// A domain of LDH labels with no A-labels needs no IDNA processing beyond
/// lowercasing: its U-label form is itself. `None` sends it the long way.
fn plain_ascii_domain(s: &str) -> Option<String> {
    if s.len() > MAX_PART_BYTES {
        return None;
    }
    let ok = s.split('.').all(|label| {
        let b = label.as_bytes();
        !b.is_empty()
            && b.len() <= 63
            && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'-')
            && b[0] != b'-'
            && b[b.len() - 1] != b'-'
            && !(b.len() >= 4 && b[..4].eq_ignore_ascii_case(b"xn--"))
    });
    // All-numeric labels could be an IPv4 literal; leave those to the full path.
    let numeric = s.bytes().all(|b| b.is_ascii_digit() || b == b'.');
    (ok && !numeric).then(|| s.to_ascii_lowercase())
}

fn normalize_domain(s: &str) -> Result<String, JidError> {
    // RFC 7622 §3.2: one trailing dot is stripped before anything else.
    let s = s.strip_suffix('.').unwrap_or(s);
    if s.is_empty() {
        return Err(JidError::Empty(JidPart::Domain));
    }
    if s.len() > 4 * MAX_PART_BYTES {
        return Err(JidError::TooLong {
            part: JidPart::Domain,
            len: s.len(),
        });
    }
    if let Some(inner) = s.strip_prefix('[') {
        let inner = inner
            .strip_suffix(']')
            .ok_or_else(|| JidError::InvalidDomain("unterminated IPv6 literal".to_owned()))?;
        let ip: Ipv6Addr = inner
            .parse()
            .map_err(|_| JidError::InvalidDomain(format!("bad IPv6 literal {inner:?}")))?;
        // The canonical text form makes equal addresses equal JIDs.
        return Ok(format!("[{ip}]"));
    }
    if let Ok(ip) = s.parse::<Ipv4Addr>() {
        return Ok(ip.to_string());
    }
    if let Some(fast) = plain_ascii_domain(s) {
        return Ok(fast);
    }
    let uts46 = Uts46::new();
    // STD3 rules: letters, digits and hyphens only in ASCII labels, which
    // also keeps `@`, `/`, whitespace and markup characters out.
    let ascii = uts46
        .to_ascii(
            s.as_bytes(),
            AsciiDenyList::STD3,
            Hyphens::Allow,
            DnsLength::Ignore,
        )
        .map_err(|_| JidError::InvalidDomain(format!("not an IDNA2008 domain name: {s:?}")))?;
    if ascii.split('.').any(str::is_empty) {
        return Err(JidError::InvalidDomain(format!("empty label in {s:?}")));
    }
    let (unicode, res) = uts46.to_unicode(ascii.as_bytes(), AsciiDenyList::STD3, Hyphens::Allow);
    res.map_err(|_| JidError::InvalidDomain(format!("invalid A-label in {s:?}")))?;
    // An A-label whose decoding is not itself a valid label (e.g. decodes to
    // another `xn--` label) must be refused: the stored U-label form has to
    // parse back to the same domain, or routing would lose the stanza.
    let back = uts46.to_ascii(
        unicode.as_bytes(),
        AsciiDenyList::STD3,
        Hyphens::Allow,
        DnsLength::Ignore,
    );
    if back.as_deref().ok() != Some(ascii.as_ref()) {
        return Err(JidError::InvalidDomain(format!(
            "A-label in {s:?} does not round-trip"
        )));
    }
    check_len(JidPart::Domain, &unicode)?;
    if ascii.len() > MAX_PART_BYTES {
        return Err(JidError::TooLong {
            part: JidPart::Domain,
            len: ascii.len(),
        });
    }
    Ok(unicode.into_owned())
}

impl fmt::Display for Jid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.full)
    }
}

impl fmt::Debug for Jid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Jid({:?})", self.full)
    }
}

impl FromStr for Jid {
    type Err = JidError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Jid::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ascii_fast_paths_agree_with_precis_and_idna() {
        for local in ["alice", "Alice", "a.b-c_d", "x+y=z", "MiXeD123", "~!#$%*"] {
            let fast = normalize_local(local).ok();
            let slow = UsernameCaseMapped::enforce(local)
                .ok()
                .map(|c| c.into_owned());
            assert_eq!(fast, slow, "{local}");
        }
        for domain in [
            "example.org",
            "Example.ORG",
            "a-b.c-d.e",
            "localhost",
            "x1.y2",
        ] {
            let fast = plain_ascii_domain(domain);
            let (slow, res) =
                Uts46::new().to_unicode(domain.as_bytes(), AsciiDenyList::STD3, Hyphens::Allow);
            assert!(res.is_ok());
            assert_eq!(fast.as_deref(), Some(slow.as_ref()), "{domain}");
        }
        for slow_only in [
            "xn--bcher-kva.example",
            "-a.b",
            "a..b",
            "127.0.0.1",
            "bücher.de",
        ] {
            assert_eq!(plain_ascii_domain(slow_only), None, "{slow_only}");
        }
    }

    #[test]
    fn nested_a_labels_are_refused() {
        // Found by fuzz/fuzz_targets/jid.rs: accepted, but its display did
        // not parse back.
        for bad in [
            "xn--xn--xn--ffta.ta.uuuu-uaf",
            "u@XN--XN--mmmmmCmmmm--NmmjjjjjnjmC",
        ] {
            if let Ok(jid) = Jid::parse(bad) {
                assert_eq!(Jid::parse(&jid.to_string()).ok(), Some(jid), "{bad}");
            }
        }
    }

    fn j(s: &str) -> Jid {
        Jid::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    /// RFC 8264 §7: validity is judged after normalization. "=" + U+0338
    /// composes to "≠", which IdentifierClass disallows: refused, rather
    /// than a JID whose display would not parse (a jid fuzz finding).
    #[test]
    fn a_localpart_that_normalizes_to_a_disallowed_code_point_is_refused() {
        assert!(matches!(
            Jid::parse("type=\u{338}@g4"),
            Err(JidError::Precis { .. })
        ));
        assert!(Jid::parse("type\u{2260}@g4").is_err());
        // The same in a resource is fine: OpaqueString admits symbols.
        assert_eq!(j("a@b/=\u{338}").resource(), Some("\u{2260}"));
        // Composition to an allowed letter still works: e + U+0301 = é.
        assert_eq!(j("e\u{301}@example.com").local(), Some("\u{e9}"));
    }

    #[test]
    fn parts() {
        let x = j("juliet@example.com/balcony");
        assert_eq!(x.local(), Some("juliet"));
        assert_eq!(x.domain(), "example.com");
        assert_eq!(x.resource(), Some("balcony"));
        assert!(x.is_full());
        assert_eq!(x.bare(), j("juliet@example.com"));
        assert!(x.bare().is_bare());
        assert_eq!(x.bare_str(), "juliet@example.com");
        assert_eq!(x.to_string(), "juliet@example.com/balcony");
        let d = j("example.com");
        assert_eq!(d, Jid::domain_jid("example.com").unwrap());
        assert_eq!(d.local(), None);
        assert_eq!(d.bare_str(), "example.com");
        assert_eq!(d.with_resource("r").unwrap().to_string(), "example.com/r");
        assert_eq!(
            x.with_resource("other").unwrap(),
            j("juliet@example.com/other")
        );
        assert_eq!("a@b/c".parse::<Jid>().unwrap(), j("a@b/c"));
        assert_eq!(format!("{:?}", j("a@b")), "Jid(\"a@b\")");
    }

    #[test]
    fn resource_takes_everything_after_first_slash() {
        let x = j("a@b/c@d/e");
        assert_eq!(x.local(), Some("a"));
        assert_eq!(x.domain(), "b");
        assert_eq!(x.resource(), Some("c@d/e"));
        let y = j("b/c@d");
        assert_eq!(y.local(), None);
        assert_eq!(y.resource(), Some("c@d"));
    }

    #[test]
    fn case_folding() {
        assert_eq!(
            j("JuLiEt@EXAMPLE.com/Balcony"),
            j("juliet@example.com/Balcony")
        );
        assert_ne!(j("a@b/Res"), j("a@b/res"));
        assert_eq!(
            j("\u{0130}stanbul@x").local(),
            j("i\u{307}stanbul@x").local()
        );
        assert_eq!(j("ΣΑΣ@x").local(), Some("σασ"));
    }

    #[test]
    fn width_and_compat_chars() {
        // UsernameCaseMapped maps fullwidth to halfwidth.
        assert_eq!(j("\u{FF4A}uliet@example.com"), j("juliet@example.com"));
        // A fullwidth @ becomes a real one and is then forbidden.
        assert!(matches!(
            Jid::new(Some("a\u{FF20}b"), "x", None),
            Err(JidError::ForbiddenChar('@'))
        ));
        // Compatibility characters (ligatures) are not IdentifierClass.
        assert!(matches!(
            Jid::parse("\u{FB01}x@example.com"),
            Err(JidError::Precis {
                part: JidPart::Local,
                ..
            })
        ));
        // Fullwidth in the domain is mapped by UTS 46.
        assert_eq!(j("a@\u{FF45}xample.com"), j("a@example.com"));
        // OpaqueString maps non-ASCII spaces to ASCII space.
        assert_eq!(j("a@b/x\u{3000}y"), j("a@b/x y"));
    }

    #[test]
    fn emoji_resource_accepted() {
        let x = j("romeo@example.net/phone📱");
        assert_eq!(x.resource(), Some("phone📱"));
        let m = j("room@muc.example.net/😀 grin");
        assert_eq!(m.resource(), Some("😀 grin"));
        // Emoji newer than Unicode 6.3 (U+1F980 crab is Unicode 8.0).
        for r in ["🦀", "🤔", "🥰"] {
            assert_eq!(j(&format!("room@muc.example.net/{r}")).resource(), Some(r));
        }
        // Emoji ZWJ sequence (woman technologist) plus a space.
        let zwj = j("juliet@example.com/👩\u{200D}💻 laptop");
        assert_eq!(zwj.resource(), Some("👩\u{200D}💻 laptop"));
        // NFC: precomposed and decomposed é are the same resource.
        let nfc = j("a@b/caf\u{E9}");
        assert_eq!(nfc, j("a@b/cafe\u{301}"));
        assert_eq!(nfc.resource(), Some("caf\u{E9}"));
        // Compatibility characters are FREE_PVAL in the FreeformClass and
        // are kept as they are.
        assert_eq!(j("a@b/Ⅻ").resource(), Some("Ⅻ"));
        for r in [
            "x\u{7}",
            "\u{0}",
            "\u{9F}",
            "x\u{FFFF}",
            "\u{FDD0}",
            "\u{200B}",
        ] {
            assert!(
                matches!(
                    Jid::parse(&format!("a@b/{r}")),
                    Err(JidError::Precis {
                        part: JidPart::Resource,
                        ..
                    })
                ),
                "{r:?}"
            );
        }
        assert_eq!(j(&x.to_string()), x);
        assert_eq!(j(&zwj.to_string()), zwj);
    }

    #[test]
    fn trailing_dot_domain() {
        assert_eq!(j("a@example.com."), j("a@example.com"));
        assert_eq!(j("example.com./r"), j("example.com/r"));
        assert!(Jid::parse("a@.").is_err());
        assert!(Jid::parse("a@example.com..").is_err());
    }

    #[test]
    fn idn_domains_compare_equal() {
        let u = j("user@bücher.example");
        let a = j("user@xn--bcher-kva.example");
        assert_eq!(u, a);
        assert_eq!(a.domain(), "bücher.example");
        assert_eq!(j("BÜCHER.example"), j("bücher.example"));
        assert!(Jid::parse("xn--zz.example").is_err());
    }

    #[test]
    fn ip_literals() {
        assert_eq!(j("a@127.0.0.1/r").domain(), "127.0.0.1");
        assert_eq!(j("a@[::1]").domain(), "[::1]");
        assert_eq!(j("a@[0:0::1]"), j("a@[::1]"));
        assert!(Jid::parse("a@[::1").is_err());
        assert!(Jid::parse("a@[nope]").is_err());
    }

    #[test]
    fn forbidden_chars() {
        for c in ['"', '&', '\'', ':', '<', '>'] {
            let s = format!("a{c}b@example.com");
            assert!(
                matches!(Jid::parse(&s), Err(JidError::ForbiddenChar(x)) if x == c),
                "{s}"
            );
        }
        assert!(Jid::parse("a b@example.com").is_err());
        assert!(Jid::parse("a@exa mple.com").is_err());
        assert!(Jid::parse("a@exa<mple.com").is_err());
        assert!(Jid::parse("a@b/\u{0}").is_err());
        assert!(Jid::parse("a@b/x\u{7}").is_err());
    }

    #[test]
    fn empty_parts() {
        assert_eq!(Jid::parse(""), Err(JidError::Empty(JidPart::Domain)));
        assert_eq!(Jid::parse("@a"), Err(JidError::Empty(JidPart::Local)));
        assert_eq!(Jid::parse("a@"), Err(JidError::Empty(JidPart::Domain)));
        assert_eq!(Jid::parse("a@b/"), Err(JidError::Empty(JidPart::Resource)));
        assert_eq!(Jid::parse("/r"), Err(JidError::Empty(JidPart::Domain)));
        assert!(j("a@b").with_resource("").is_err());
    }

    #[test]
    fn length_limits() {
        let ok = "a".repeat(1023);
        assert!(Jid::parse(&format!("{ok}@b/{ok}")).is_ok());
        let long = "a".repeat(1024);
        assert!(matches!(
            Jid::parse(&format!("{long}@b")),
            Err(JidError::TooLong {
                part: JidPart::Local,
                ..
            })
        ));
        assert!(matches!(
            Jid::parse(&format!("a@b/{long}")),
            Err(JidError::TooLong {
                part: JidPart::Resource,
                ..
            })
        ));
        let label = "a".repeat(60);
        let domain = vec![label.as_str(); 17].join(".");
        assert!(domain.len() > 1023);
        assert!(Jid::parse(&domain).is_err());
        assert!(Jid::parse(&"a".repeat(100_000)).is_err());
    }
}
