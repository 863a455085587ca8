//! XEP-0421 occupant ids: an opaque id per user and room, the same over
//! nick changes, rejoins and server restarts, that nobody can link across
//! rooms or back to the real JID: a keyed hash (HMAC-SHA-256) of the room
//! and the bare JID under the room's own [`Secret`], drawn from the hub's
//! entropy when the room is created and stored with a persistent room. A
//! client's own `<occupant-id/>` is stripped.

use crate::entropy::Entropy;
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The namespace.
pub const NS: &str = "urn:xmpp:occupant-id:0";

/// Bytes of a room's secret.
pub const SECRET_BYTES: usize = 32;

/// A room's occupant-id key. Its `Debug` does not show it: rooms are
/// logged.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(Vec<u8>);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(..)")
    }
}

impl Secret {
    /// A fresh secret.
    pub fn draw(entropy: &mut Entropy) -> Self {
        Secret(entropy.bytes(SECRET_BYTES))
    }

    /// A given key (tests, tools).
    pub fn from_bytes(bytes: &[u8]) -> Self {
        Secret(bytes.to_vec())
    }

    /// As stored: base64.
    pub fn to_text(&self) -> String {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD.encode(&self.0)
    }

    /// A stored secret; `None` unless it is base64 of [`SECRET_BYTES`]
    /// bytes.
    pub fn from_text(text: &str) -> Option<Self> {
        use base64::Engine as _;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(text.trim())
            .ok()?;
        (bytes.len() == SECRET_BYTES).then_some(Secret(bytes))
    }

    /// The occupant id of `bare` in `room`.
    pub fn derive(&self, room: &str, bare: &str) -> String {
        derive(&self.0, room, bare)
    }
}

/// The occupant id of `bare` in `room` under `secret`.
pub fn derive(secret: &[u8], room: &str, bare: &str) -> String {
    use base64::Engine as _;
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret) else {
        return String::new();
    };
    mac.update(room.as_bytes());
    mac.update(&[0]);
    mac.update(bare.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(&mac.finalize().into_bytes()[..18])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stable_per_room_and_user_unlinkable_across() {
        let a = derive(b"k", "r@c", "alice@d");
        assert_eq!(a, derive(b"k", "r@c", "alice@d"));
        assert_ne!(a, derive(b"k", "s@c", "alice@d"));
        assert_ne!(a, derive(b"k", "r@c", "bob@d"));
        assert_ne!(a, derive(b"other", "r@c", "alice@d"));
    }

    #[test]
    fn secrets_round_trip_as_text_and_stay_hidden() {
        let s = Secret::from_bytes(&[7; SECRET_BYTES]);
        assert_eq!(Secret::from_text(&s.to_text()), Some(s.clone()));
        assert_eq!(Secret::from_text("c2hvcnQ="), None, "too short");
        assert_eq!(Secret::from_text("not base64!"), None);
        assert_eq!(format!("{s:?}"), "Secret(..)");
        assert_eq!(
            s.derive("r@c", "alice@d"),
            derive(&[7; SECRET_BYTES], "r@c", "alice@d")
        );
    }
}
