//! Dialback keys as XEP-0185 §3 recommends:
//!
//! ```text
//! key = HMAC-SHA256( hex(SHA256(Secret)),
//!                    Receiving Server ' ' Originating Server ' ' Stream ID )
//! ```
//!
//! written as lowercase hex. The HMAC key is the *hex string* of the secret's
//! SHA-256 (64 ASCII bytes), not its raw digest: that is what the XEP's
//! worked example computes, and what Prosody and ejabberd do, so keys made
//! here verify there and the other way round.
//!
//! The secret never leaves this process (XEP-0185: no communication is
//! needed to create it); the runtime draws it at start or reads it from the
//! configuration of a cluster whose nodes must answer each other's keys.

use hmac::digest::KeyInit;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use std::fmt;

use crate::sasl::hash::ct_eq;

/// Longest key accepted from a peer, in bytes. Keys from XEP-0185 are 64
/// hex digits; older generators made shorter ones (40 for SHA-1). Anything
/// much longer is not a key but a way to make us hold and compare memory.
pub const MAX_KEY_BYTES: usize = 512;

/// Why a string is not an acceptable dialback key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// Nothing but whitespace.
    #[error("empty dialback key")]
    Empty,
    /// Longer than [`MAX_KEY_BYTES`].
    #[error("dialback key of {len} bytes (at most {MAX_KEY_BYTES})")]
    TooLong {
        /// The length after trimming.
        len: usize,
    },
    /// A character outside printable ASCII (`!`..`~`): no generator makes
    /// one, and a key is copied into `<db:verify/>` verbatim.
    #[error("dialback key with a character outside printable ASCII")]
    BadCharacter,
}

/// A dialback key as it travels: 1 to [`MAX_KEY_BYTES`] printable ASCII
/// characters. The XML whitespace around it (examples indent it) is not
/// part of the key.
#[derive(Clone, PartialEq, Eq)]
pub struct DialbackKey(String);

impl DialbackKey {
    /// Validate a key received as element text.
    pub fn parse(text: &str) -> Result<DialbackKey, KeyError> {
        let key = text.trim_matches(|c| matches!(c, ' ' | '\t' | '\n' | '\r'));
        if key.is_empty() {
            return Err(KeyError::Empty);
        }
        if key.len() > MAX_KEY_BYTES {
            return Err(KeyError::TooLong { len: key.len() });
        }
        if !key.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(KeyError::BadCharacter);
        }
        Ok(DialbackKey(key.to_owned()))
    }

    /// The key text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Keys are credentials for the length of a negotiation: logs show only
/// their length.
impl fmt::Debug for DialbackKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DialbackKey({} bytes)", self.0.len())
    }
}

/// The server secret keys are made from, held as the HMAC key XEP-0185
/// derives from it.
#[derive(Clone)]
pub struct DialbackSecret {
    /// Lowercase hex of SHA-256(secret): exactly one SHA-256 block.
    hmac_key: [u8; 64],
}

impl DialbackSecret {
    /// Derive the HMAC key from a secret (random bytes drawn at start, or a
    /// configured string shared by the nodes of one domain).
    pub fn new(secret: &[u8]) -> DialbackSecret {
        let digest = Sha256::digest(secret);
        let mut hmac_key = [0u8; 64];
        for (pair, byte) in hmac_key.chunks_exact_mut(2).zip(digest.iter()) {
            pair[0] = HEX[usize::from(byte >> 4)];
            pair[1] = HEX[usize::from(byte & 0x0f)];
        }
        DialbackSecret { hmac_key }
    }

    /// The key the Originating Server sends in `<db:result/>` (and the
    /// Authoritative Server recomputes for `<db:verify/>`): `receiving` is the
    /// Target Domain, `originating` the Sender Domain, `stream_id` the id the
    /// Receiving Server gave its response stream header.
    pub fn key(&self, receiving: &str, originating: &str, stream_id: &str) -> DialbackKey {
        let mut mac = <Hmac<Sha256> as KeyInit>::new(&self.hmac_key.into());
        mac.update(receiving.as_bytes());
        mac.update(b" ");
        mac.update(originating.as_bytes());
        mac.update(b" ");
        mac.update(stream_id.as_bytes());
        let tag = mac.finalize().into_bytes();
        let mut hex = String::with_capacity(64);
        for byte in tag {
            hex.push(char::from(HEX[usize::from(byte >> 4)]));
            hex.push(char::from(HEX[usize::from(byte & 0x0f)]));
        }
        DialbackKey(hex)
    }

    /// Whether `presented` is the key for this domain pair and stream, in
    /// time that does not depend on how much of it matched. Hex digits are
    /// compared without regard to case (some generators write uppercase).
    pub fn verify(
        &self,
        receiving: &str,
        originating: &str,
        stream_id: &str,
        presented: &DialbackKey,
    ) -> bool {
        let expected = self.key(receiving, originating, stream_id);
        let presented = presented.0.to_ascii_lowercase();
        ct_eq(expected.0.as_bytes(), presented.as_bytes())
    }
}

/// Never print the secret.
impl fmt::Debug for DialbackSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("DialbackSecret(..)")
    }
}

const HEX: &[u8; 16] = b"0123456789abcdef";

#[cfg(test)]
mod tests {
    use super::*;

    /// XEP-0185 §4: the worked example, including the intermediate HMAC key.
    #[test]
    fn xep_0185_example() {
        let secret = DialbackSecret::new(b"s3cr3tf0rd14lb4ck");
        assert_eq!(
            &secret.hmac_key[..],
            b"a7136eb1f46c9ef18c5e78c36ca257067c69b3d518285f0b18a96c33beae9acc"
        );
        let key = secret.key("xmpp.example.com", "example.org", "D60000229F");
        assert_eq!(
            key.as_str(),
            "37c69b1cf07a3f67c04a5ef5902fa5114f2c76fe4a2686482ba5b89323075643"
        );
        assert!(secret.verify("xmpp.example.com", "example.org", "D60000229F", &key));
    }

    /// XEP-0220 §2.1.1 and §2.2.2: the two keys of the protocol examples.
    #[test]
    fn xep_0220_examples() {
        let capulet = DialbackSecret::new(b"s3cr3tf0rd14lb4ck");
        assert_eq!(
            capulet
                .key("montague.example", "capulet.example", "D60000229F")
                .as_str(),
            "b4835385f37fe2895af6c196b59097b16862406db80559900d96bf6fa7d23df3"
        );
        let montague = DialbackSecret::new(b"d14lb4ck43v3r");
        assert_eq!(
            montague
                .key("capulet.example", "montague.example", "417GAF25")
                .as_str(),
            "225cc5aa6a071133249d25fef42ae516fc7a86c523aa1c6980a7f73e784c972d"
        );
    }

    #[test]
    fn verification_binds_every_input() {
        let secret = DialbackSecret::new(b"s3cr3tf0rd14lb4ck");
        let key = secret.key("montague.example", "capulet.example", "D60000229F");
        assert!(secret.verify("montague.example", "capulet.example", "D60000229F", &key));
        // Other receiving domain, originating domain, stream id, secret.
        assert!(!secret.verify("evil.example", "capulet.example", "D60000229F", &key));
        assert!(!secret.verify("montague.example", "evil.example", "D60000229F", &key));
        assert!(!secret.verify("montague.example", "capulet.example", "D60000229G", &key));
        let other = DialbackSecret::new(b"another secret");
        assert!(!other.verify("montague.example", "capulet.example", "D60000229F", &key));
        // The space delimiter keeps concatenations apart (XEP-0185 note 5).
        assert!(!secret.verify("montague.exampl", "e capulet.example", "D60000229F", &key));
    }

    #[test]
    fn presented_keys_compare_without_case_and_whitespace() {
        let secret = DialbackSecret::new(b"s3cr3tf0rd14lb4ck");
        let key = secret.key("montague.example", "capulet.example", "D60000229F");
        let wire = format!("\n        {}\n      ", key.as_str().to_ascii_uppercase());
        let presented = DialbackKey::parse(&wire).unwrap();
        assert!(secret.verify(
            "montague.example",
            "capulet.example",
            "D60000229F",
            &presented
        ));
        let truncated = DialbackKey::parse(&key.as_str()[..63]).unwrap();
        assert!(!secret.verify(
            "montague.example",
            "capulet.example",
            "D60000229F",
            &truncated
        ));
    }

    #[test]
    fn key_budget_and_characters() {
        let at_limit = "a".repeat(MAX_KEY_BYTES);
        assert_eq!(DialbackKey::parse(&at_limit).unwrap().as_str(), at_limit);
        assert_eq!(
            DialbackKey::parse(&"a".repeat(MAX_KEY_BYTES + 1)),
            Err(KeyError::TooLong {
                len: MAX_KEY_BYTES + 1
            })
        );
        assert_eq!(DialbackKey::parse(" \n\t"), Err(KeyError::Empty));
        assert_eq!(DialbackKey::parse(""), Err(KeyError::Empty));
        assert_eq!(DialbackKey::parse("ab cd"), Err(KeyError::BadCharacter));
        assert_eq!(DialbackKey::parse("abcé"), Err(KeyError::BadCharacter));
        assert_eq!(DialbackKey::parse("ab\u{0}"), Err(KeyError::BadCharacter));
    }

    #[test]
    fn secrets_and_keys_stay_out_of_logs() {
        let secret = DialbackSecret::new(b"s3cr3tf0rd14lb4ck");
        assert_eq!(format!("{secret:?}"), "DialbackSecret(..)");
        let key = secret.key("a.example", "b.example", "id");
        assert_eq!(format!("{key:?}"), "DialbackKey(64 bytes)");
    }
}
