//! PLAIN (RFC 4616): `[authzid] NUL authcid NUL passwd`. Only offered over TLS.

use super::authzid::{authzid_domain, check_authzid};
use super::message::bounded_utf8;
use super::SaslFailure;

/// The fields of a PLAIN message.
#[derive(Clone, PartialEq, Eq)]
pub struct PlainCredentials {
    /// Requested authorization identity; checked to name the same user.
    pub authzid: Option<String>,
    /// Authentication identity.
    pub username: String,
    /// The password as sent; [`StoredCredentials::verify_password`](super::StoredCredentials::verify_password)
    /// normalizes it.
    pub password: String,
}

impl PlainCredentials {
    /// The domain of a `username@domain` authzid, for the caller to check.
    pub fn authzid_domain(&self) -> Option<&str> {
        authzid_domain(self.authzid.as_deref())
    }
}

impl std::fmt::Debug for PlainCredentials {
    // Hand-written so the password never ends up in logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PlainCredentials")
            .field("authzid", &self.authzid)
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .finish()
    }
}

/// Parses a PLAIN message. Exactly two NULs; username and password must be
/// non-empty; an empty authzid means none. An authzid naming someone else →
/// `InvalidAuthzid`.
pub fn parse_plain(msg: &[u8]) -> Result<PlainCredentials, SaslFailure> {
    let msg = bounded_utf8(msg)?;
    let mut it = msg.split('\0');
    let (Some(authzid), Some(username), Some(password), None) =
        (it.next(), it.next(), it.next(), it.next())
    else {
        return Err(SaslFailure::MalformedRequest);
    };
    if username.is_empty() || password.is_empty() {
        return Err(SaslFailure::MalformedRequest);
    }
    let authzid = (!authzid.is_empty()).then_some(authzid);
    check_authzid(authzid, username)?;
    Ok(PlainCredentials {
        authzid: authzid.map(str::to_owned),
        username: username.to_owned(),
        password: password.to_owned(),
    })
}

/// Builds a PLAIN message (client side).
pub fn plain_message(authzid: Option<&str>, username: &str, password: &str) -> Vec<u8> {
    let mut out =
        Vec::with_capacity(authzid.map_or(0, str::len) + username.len() + password.len() + 2);
    out.extend_from_slice(authzid.unwrap_or_default().as_bytes());
    out.push(0);
    out.extend_from_slice(username.as_bytes());
    out.push(0);
    out.extend_from_slice(password.as_bytes());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let m = plain_message(None, "juliet", "r0m30");
        assert_eq!(m, b"\0juliet\0r0m30");
        let c = parse_plain(&m).expect("valid");
        assert_eq!(c.authzid, None);
        assert_eq!(c.username, "juliet");
        assert_eq!(c.password, "r0m30");
    }

    #[test]
    fn authzid() {
        let c = parse_plain(b"juliet\0juliet\0pw").expect("self authzid");
        assert_eq!(c.authzid.as_deref(), Some("juliet"));
        let c = parse_plain(b"juliet@capulet.lit\0juliet\0pw").expect("bare jid authzid");
        assert_eq!(c.authzid_domain(), Some("capulet.lit"));
        assert_eq!(
            parse_plain(b"romeo\0juliet\0pw"),
            Err(SaslFailure::InvalidAuthzid)
        );
        assert_eq!(
            parse_plain(b"romeo@montague.lit\0juliet\0pw"),
            Err(SaslFailure::InvalidAuthzid)
        );
    }

    #[test]
    fn malformed() {
        for bad in [
            &b""[..],
            b"\0",
            b"\0\0",
            b"\0juliet\0",
            b"\0\0pw",
            b"juliet\0pw",
            b"\0juliet\0pw\0",
            b"\0jul\0iet\0pw",
            b"\0juliet\0p\0w",
            b"\0juliet\0\xff",
        ] {
            assert_eq!(
                parse_plain(bad),
                Err(SaslFailure::MalformedRequest),
                "{bad:?}"
            );
        }
        let long = plain_message(None, "u", &"x".repeat(5000));
        assert_eq!(parse_plain(&long), Err(SaslFailure::MalformedRequest));
    }

    #[test]
    fn debug_redacts() {
        let c = parse_plain(b"\0juliet\0secret").expect("valid");
        assert!(!format!("{c:?}").contains("secret"));
    }
}
