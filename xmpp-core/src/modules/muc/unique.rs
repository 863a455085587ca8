//! Unique room names (XEP-0045 §10.1.4): a client about to create an ad
//! hoc room (a group conversation started from a one-to-one chat) asks the
//! service for a name nobody uses.
//!
//! The name is 160 random bits in hex, as Prosody answers with a UUID:
//! rooms live in every hub partition, so no one partition could check a
//! name against all of them, and a collision of 160 random bits does not
//! happen.

use crate::entropy::Entropy;
use crate::stanza::iq_result;
use crate::xml::Element;

/// The namespace (§10.1.4).
pub const NS: &str = "http://jabber.org/protocol/muc#unique";

/// Bytes of entropy in a name.
const NAME_BYTES: usize = 20;

/// Whether `iq` asks for a unique name.
pub fn asks(iq: &Element) -> bool {
    iq.attr("type") == Some("get") && iq.first_element().is_some_and(|q| q.is(NS, "unique"))
}

/// The result carrying a fresh name.
pub fn answer(iq: &Element, entropy: &mut Entropy) -> Element {
    iq_result(iq).with_child(Element::new(NS, "unique").with_text(entropy.hex_id(NAME_BYTES)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_fresh_and_long() {
        let iq = Element::parse(
            b"<iq xmlns='jabber:client' type='get' id='u' from='a@localhost/r' to='conference.localhost'><unique xmlns='http://jabber.org/protocol/muc#unique'/></iq>",
        )
        .expect("XML");
        assert!(asks(&iq));
        let mut e = Entropy::from_u64(7);
        let a = answer(&iq, &mut e);
        let b = answer(&iq, &mut e);
        let name = |r: &Element| r.child(NS, "unique").map(|u| u.text()).unwrap_or_default();
        assert_eq!(a.attr("type"), Some("result"));
        assert_eq!(a.attr("id"), Some("u"));
        assert_eq!(name(&a).len(), 2 * NAME_BYTES);
        assert!(name(&a).chars().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(name(&a), name(&b));
    }
}
