//! XEP-0421 occupant ids: an opaque id per user and room, the same over
//! nick changes and rejoins, that nobody can link across rooms or back to
//! the real JID: a keyed hash (HMAC-SHA-256) of the room and the bare JID
//! under a secret drawn from the hub's entropy when the module first
//! needs it. A client's own `<occupant-id/>` is stripped.

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The namespace.
pub const NS: &str = "urn:xmpp:occupant-id:0";

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
}
