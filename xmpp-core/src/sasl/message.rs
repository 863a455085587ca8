//! SCRAM message syntax (RFC 5802 §7): bounded input, attributes, saslnames,
//! nonces and embedded base64.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;

use super::SaslFailure;

/// Upper bound for any single SASL message we accept. Real SCRAM/PLAIN
/// messages are a few hundred bytes; anything bigger is abuse.
pub const MAX_MESSAGE_LEN: usize = 4096;

/// Checks the size bound and UTF-8 (SCRAM and PLAIN are UTF-8 by definition).
pub(crate) fn bounded_utf8(msg: &[u8]) -> Result<&str, SaslFailure> {
    if msg.len() > MAX_MESSAGE_LEN {
        return Err(SaslFailure::MalformedRequest);
    }
    std::str::from_utf8(msg).map_err(|_| SaslFailure::MalformedRequest)
}

/// Splits `x=value` where `x` is a single ASCII letter (`attr-val`).
pub(crate) fn attr(part: &str) -> Option<(u8, &str)> {
    let b = part.as_bytes();
    if b.len() >= 2 && b[0].is_ascii_alphabetic() && b[1] == b'=' {
        Some((b[0], &part[2..]))
    } else {
        None
    }
}

/// The value of `part` if it is attribute `name`, else `MalformedRequest`.
pub(crate) fn expect_attr(part: Option<&str>, name: u8) -> Result<&str, SaslFailure> {
    match part.and_then(attr) {
        Some((n, v)) if n == name => Ok(v),
        _ => Err(SaslFailure::MalformedRequest),
    }
}

/// Validates trailing optional extensions: each must be a well-formed
/// `attr-val`; we understand none, so their values are ignored (RFC 5802 §5.1
/// only obliges us to fail on the mandatory `m=` one, which is only legal first).
pub(crate) fn check_extensions<'a>(rest: impl Iterator<Item = &'a str>) -> Result<(), SaslFailure> {
    for part in rest {
        match attr(part) {
            Some((b'm', _)) | None => return Err(SaslFailure::MalformedRequest),
            Some((_, "")) => return Err(SaslFailure::MalformedRequest),
            Some(_) => {}
        }
    }
    Ok(())
}

/// Decodes a `saslname` (`=2C` → `,`, `=3D` → `=`); any other `=` escape, a
/// raw `,` or NUL, or an empty name is malformed.
pub(crate) fn decode_saslname(s: &str) -> Result<String, SaslFailure> {
    if s.is_empty() {
        return Err(SaslFailure::MalformedRequest);
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(pos) = rest.find(['=', ',', '\0']) {
        out.push_str(&rest[..pos]);
        let tail = &rest[pos..];
        if tail.starts_with("=2C") {
            out.push(',');
        } else if tail.starts_with("=3D") {
            out.push('=');
        } else {
            return Err(SaslFailure::MalformedRequest);
        }
        rest = &tail[3..];
    }
    out.push_str(rest);
    Ok(out)
}

/// Encodes a `saslname`; the inverse of [`decode_saslname`].
pub(crate) fn encode_saslname(s: &str) -> String {
    s.replace('=', "=3D").replace(',', "=2C")
}

/// Whether `s` is a non-empty run of `printable` (RFC 5802: 0x21–0x7E except `,`).
pub(crate) fn is_printable(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| (0x21..=0x7e).contains(&b) && b != b',')
}

/// Decodes strict, padded base64 as used inside SCRAM messages.
pub(crate) fn b64_decode(s: &str) -> Result<Vec<u8>, SaslFailure> {
    STANDARD
        .decode(s)
        .map_err(|_| SaslFailure::IncorrectEncoding)
}

/// Encodes base64 for SCRAM messages.
pub(crate) fn b64_encode(data: &[u8]) -> String {
    STANDARD.encode(data)
}

/// Turns caller-supplied random bytes into a `printable` nonce. Base64's
/// alphabet (`A–Z a–z 0–9 + / =`) is printable and comma-free.
pub(crate) fn nonce_from_bytes(nonce: &[u8]) -> String {
    b64_encode(nonce)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn saslname_round_trip() {
        for s in ["user", "a,b=c", "==,,", "ünï"] {
            assert_eq!(decode_saslname(&encode_saslname(s)).as_deref(), Ok(s));
        }
        assert_eq!(encode_saslname("a,b=c"), "a=2Cb=3Dc");
        assert!(decode_saslname("a=2").is_err());
        assert!(decode_saslname("a=2c").is_err());
        assert!(decode_saslname("a=").is_err());
        assert!(decode_saslname("a\0b").is_err());
        assert!(decode_saslname("").is_err());
    }

    #[test]
    fn attrs() {
        assert_eq!(attr("r=abc"), Some((b'r', "abc")));
        assert_eq!(attr("r="), Some((b'r', "")));
        assert_eq!(attr("1=abc"), None);
        assert_eq!(attr("r"), None);
        assert!(check_extensions(["x=1", "y=2"].into_iter()).is_ok());
        assert!(check_extensions(["m=1"].into_iter()).is_err());
        assert!(check_extensions(["garbage"].into_iter()).is_err());
    }

    #[test]
    fn printable() {
        assert!(is_printable("fyko+d2lbbFgONRv9qkxdawL"));
        assert!(!is_printable("a,b"));
        assert!(!is_printable("a b"));
        assert!(!is_printable(""));
    }

    #[test]
    fn bounds() {
        assert!(bounded_utf8(&[b'a'; MAX_MESSAGE_LEN]).is_ok());
        assert_eq!(
            bounded_utf8(&[b'a'; MAX_MESSAGE_LEN + 1]),
            Err(SaslFailure::MalformedRequest)
        );
        assert_eq!(bounded_utf8(&[0xff]), Err(SaslFailure::MalformedRequest));
    }
}
