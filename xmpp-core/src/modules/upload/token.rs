//! Upload slots as signed tokens: the hub issues one per slot request and
//! the HTTP endpoint checks it at the `PUT`, so nothing is stored between
//! the two (like Prosody's mod_http_file_share, whose tokens are JWTs).
//!
//! A token is `base64url(fields) "." base64url(HMAC-SHA256(secret,
//! fields))`, the fields joined by newlines (a filename is refused if it
//! holds one). The secret is the server's; a token proves that this
//! server granted exactly this file (slot, name, size, type, owner) until
//! `expires`.

use crate::time::Millis;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// What a slot grants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Slot {
    /// The slot's id: the file's name on disk and in its URL.
    pub id: String,
    /// The file name the client asked for (checked by [`valid_filename`]).
    pub filename: String,
    /// Exactly this many bytes.
    pub size: u64,
    /// The declared content type, if any.
    pub content_type: Option<String>,
    /// The account (bare JID) whose quota it counts against.
    pub owner: String,
    /// When the PUT must have started, ms since the epoch.
    pub expires: Millis,
}

/// Why a token is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// Not a token of ours: malformed, or a wrong signature.
    #[error("invalid upload token")]
    Invalid,
    /// Ours, but too late.
    #[error("upload slot expired")]
    Expired,
}

impl Slot {
    fn fields(&self) -> String {
        format!(
            "v1\n{}\n{}\n{}\n{}\n{}\n{}",
            self.id,
            self.filename,
            self.size,
            self.content_type.as_deref().unwrap_or(""),
            self.owner,
            self.expires
        )
    }

    /// The token granting this slot.
    pub fn sign(&self, secret: &[u8]) -> String {
        let fields = self.fields();
        format!(
            "{}.{}",
            B64.encode(&fields),
            B64.encode(mac(secret, fields.as_bytes()))
        )
    }

    /// The slot a token grants, if it is ours and not expired at `now`.
    pub fn verify(secret: &[u8], token: &str, now: Millis) -> Result<Slot, TokenError> {
        let (fields, sig) = token.split_once('.').ok_or(TokenError::Invalid)?;
        let fields = B64.decode(fields).map_err(|_| TokenError::Invalid)?;
        let sig = B64.decode(sig).map_err(|_| TokenError::Invalid)?;
        let mut check = Hmac::<Sha256>::new_from_slice(secret).map_err(|_| TokenError::Invalid)?;
        check.update(&fields);
        // Constant time: the comparison leaks nothing about the signature.
        check.verify_slice(&sig).map_err(|_| TokenError::Invalid)?;
        let text = String::from_utf8(fields).map_err(|_| TokenError::Invalid)?;
        let parts: Vec<&str> = text.split('\n').collect();
        let ["v1", id, filename, size, content_type, owner, expires] = parts[..] else {
            return Err(TokenError::Invalid);
        };
        let slot = Slot {
            id: id.to_owned(),
            filename: filename.to_owned(),
            size: size.parse().map_err(|_| TokenError::Invalid)?,
            content_type: (!content_type.is_empty()).then(|| content_type.to_owned()),
            owner: owner.to_owned(),
            expires: expires.parse().map_err(|_| TokenError::Invalid)?,
        };
        if now > slot.expires {
            return Err(TokenError::Expired);
        }
        Ok(slot)
    }
}

fn mac(secret: &[u8], data: &[u8]) -> Vec<u8> {
    match Hmac::<Sha256>::new_from_slice(secret) {
        Ok(mut m) => {
            m.update(data);
            m.finalize().into_bytes().to_vec()
        }
        // HMAC takes keys of any length: unreachable.
        Err(_) => Vec::new(),
    }
}

/// A file name a slot may carry: what a client would show, never a path.
/// 1–255 bytes, no `/`, `\`, control characters or newlines, not `.` or
/// `..`.
pub fn valid_filename(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 255
        && name != "."
        && name != ".."
        && !name
            .chars()
            .any(|c| c == '/' || c == '\\' || c.is_control())
}

/// A content type a slot may carry: `type/subtype` of token characters,
/// parameters (`; charset=utf-8`) allowed, at most 128 bytes.
pub fn valid_content_type(value: &str) -> bool {
    let Some((main, params)) = value.split_once(';').map_or(Some((value, "")), Some) else {
        return false;
    };
    let token = |s: &str| {
        !s.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$&^_.+-".contains(&b))
    };
    value.len() <= 128
        && main
            .split_once('/')
            .is_some_and(|(t, s)| token(t.trim()) && token(s.trim()))
        && params.bytes().all(|b| b.is_ascii_graphic() || b == b' ')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slot() -> Slot {
        Slot {
            id: "abc".into(),
            filename: "cat.jpg".into(),
            size: 1234,
            content_type: Some("image/jpeg".into()),
            owner: "alice@localhost".into(),
            expires: 10_000,
        }
    }

    #[test]
    fn a_signed_slot_verifies_until_it_expires() {
        let token = slot().sign(b"secret");
        assert_eq!(Slot::verify(b"secret", &token, 9_000), Ok(slot()));
        assert_eq!(
            Slot::verify(b"secret", &token, 10_001),
            Err(TokenError::Expired)
        );
        assert_eq!(
            Slot::verify(b"other", &token, 9_000),
            Err(TokenError::Invalid)
        );
    }

    #[test]
    fn a_changed_field_breaks_the_signature() {
        let token = slot().sign(b"secret");
        let (fields, sig) = token.split_once('.').expect("two parts");
        let text = String::from_utf8(B64.decode(fields).expect("b64")).expect("utf-8");
        let forged = B64.encode(text.replace("1234", "99999999"));
        assert_eq!(
            Slot::verify(b"secret", &format!("{forged}.{sig}"), 9_000),
            Err(TokenError::Invalid)
        );
        assert_eq!(
            Slot::verify(b"secret", "garbage", 0),
            Err(TokenError::Invalid)
        );
    }

    #[test]
    fn names_and_types() {
        for ok in ["cat.jpg", "Ünïcödé 🐈.png", "a b", "..."] {
            assert!(valid_filename(ok), "{ok}");
        }
        for bad in ["", ".", "..", "a/b", "a\\b", "a\nb", &"x".repeat(256)] {
            assert!(!valid_filename(bad), "{bad:?}");
        }
        for ok in [
            "image/png",
            "text/plain; charset=utf-8",
            "application/vnd.x+json",
        ] {
            assert!(valid_content_type(ok), "{ok}");
        }
        for bad in ["image", "/png", "text/html\r\nX: y", "a/b c"] {
            assert!(!valid_content_type(bad), "{bad:?}");
        }
    }
}
