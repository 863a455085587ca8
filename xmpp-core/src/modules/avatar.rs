//! XEP-0153 vCard-based avatars, done by the server on its users' behalf
//! (XEP-0398 §4): the SHA-1 of the stored vCard's photo goes into every
//! available presence they send, so contacts learn of avatar changes
//! without clients fetching their own vCard at each login.
//!
//! Whose hash wins: the server's. XEP-0153 §4.3 makes each client track
//! what its other resources might have done to the vCard, and a resource
//! that does not speak XEP-0153 forces the others to stop advertising
//! altogether; the server sees every vCard write, so its hash is always the
//! stored photo's, the same for every resource. A client's own non-empty
//! hash is therefore replaced (XEP-0398 §4 allows it), an empty `<x/>` is
//! filled in (it MUST be), and only an explicit empty `<photo/>` — a client
//! saying it has no image to advertise — is left alone, as XEP-0398 §4
//! requires.

use crate::xml::{Element, Node};
use base64::Engine as _;
use sha1::{Digest, Sha1};

/// The presence extension's namespace.
pub const NS: &str = "vcard-temp:x:update";

/// Storage key of the photo hash derived from the vCard: lowercase hex, or
/// empty when the vCard has no photo.
pub const AVATAR_KEY: &str = "avatar";

/// The photo hash of a stored vCard (XEP-0153 §3.1): SHA-1 of the decoded
/// BINVAL, lowercase hex; empty when there is no usable photo (none, an
/// EXTVAL only, or undecodable data).
pub fn photo_hash(vcard_xml: &str) -> String {
    const VCARD: &str = super::stored_xml::VCARD;
    let Ok(vcard) = Element::parse(vcard_xml.as_bytes()) else {
        return String::new();
    };
    let Some(binval) = vcard
        .child(VCARD, "PHOTO")
        .and_then(|p| p.child_text(VCARD, "BINVAL"))
    else {
        return String::new();
    };
    // §4.6: whitespace in the base64 MUST be ignored.
    let compact: String = binval.chars().filter(|c| !c.is_whitespace()).collect();
    match base64::engine::general_purpose::STANDARD.decode(compact) {
        Ok(bytes) if !bytes.is_empty() => Sha1::digest(&bytes)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect(),
        _ => String::new(),
    }
}

/// The client says it has no image to advertise: an empty `<photo/>`.
pub fn hides_avatar(presence: &Element) -> bool {
    presence
        .children
        .iter()
        .filter_map(|n| match n {
            Node::Element(e) if e.is(NS, "x") => Some(e),
            _ => None,
        })
        .any(|x| {
            x.child(NS, "photo")
                .is_some_and(|p| p.text().trim().is_empty())
        })
}

/// Put `hash` into an available presence from a client (empty:
/// `<photo/>`, no avatar), unless it [hides](hides_avatar) its avatar.
pub fn inject(presence: &mut Element, hash: &str) {
    if !hides_avatar(presence) {
        set_hash(presence, hash);
    }
}

/// Replace whatever update element a presence has with one for `hash`.
pub fn set_hash(presence: &mut Element, hash: &str) {
    presence.remove_children(NS, "x");
    let mut photo = Element::new(NS, "photo");
    if !hash.is_empty() {
        photo = photo.with_text(hash);
    }
    presence
        .children
        .push(Node::Element(Element::new(NS, "x").with_child(photo)));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn presence(xml: &str) -> Element {
        Element::parse(xml.as_bytes()).expect("XML")
    }

    #[test]
    fn hash_of_the_decoded_photo() {
        // SHA-1("hello") = aaf4c61d…; base64("hello") = aGVsbG8=, split by
        // whitespace as RFC 2045 lines may be.
        let v = "<vCard xmlns='vcard-temp'><FN>A</FN><PHOTO><TYPE>image/png</TYPE>\
                 <BINVAL>aGVs\n  bG8=</BINVAL></PHOTO></vCard>";
        assert_eq!(photo_hash(v), "aaf4c61ddcc5e8a2dabede0f3b482cd9aea9434d");
        assert_eq!(
            photo_hash("<vCard xmlns='vcard-temp'><FN>A</FN></vCard>"),
            ""
        );
        assert_eq!(
            photo_hash(
                "<vCard xmlns='vcard-temp'><PHOTO><EXTVAL>https://x/y.png</EXTVAL></PHOTO></vCard>"
            ),
            ""
        );
        assert_eq!(
            photo_hash("<vCard xmlns='vcard-temp'><PHOTO><BINVAL>!!!</BINVAL></PHOTO></vCard>"),
            ""
        );
        assert_eq!(photo_hash("not xml"), "");
    }

    #[test]
    fn injection_follows_xep_0398() {
        let h = "aaf4c61ddcc5e8a2dabede0f3b482cd9aea9434d";
        // Omitted: added.
        let mut p = presence("<presence xmlns='jabber:client'><show>away</show></presence>");
        inject(&mut p, h);
        assert_eq!(
            p.child(NS, "x")
                .and_then(|x| x.child_text(NS, "photo"))
                .as_deref(),
            Some(h)
        );
        // Empty <x/> and a client's own (stale) hash: replaced, once.
        for sent in [
            "<presence xmlns='jabber:client'><x xmlns='vcard-temp:x:update'/></presence>",
            "<presence xmlns='jabber:client'><x xmlns='vcard-temp:x:update'><photo>0000</photo></x></presence>",
        ] {
            let mut p = presence(sent);
            inject(&mut p, h);
            assert_eq!(p.elements().filter(|e| e.is(NS, "x")).count(), 1);
            assert_eq!(
                p.child(NS, "x").and_then(|x| x.child_text(NS, "photo")).as_deref(),
                Some(h)
            );
        }
        // An explicit empty <photo/> stays.
        let mut p = presence(
            "<presence xmlns='jabber:client'><x xmlns='vcard-temp:x:update'><photo/></x></presence>",
        );
        inject(&mut p, h);
        assert_eq!(
            p.child(NS, "x")
                .and_then(|x| x.child_text(NS, "photo"))
                .as_deref(),
            Some("")
        );
        // No avatar: an empty <photo/>.
        let mut p = presence("<presence xmlns='jabber:client'/>");
        inject(&mut p, "");
        let x = p.child(NS, "x").expect("x");
        assert!(x.child(NS, "photo").is_some_and(|ph| ph.text().is_empty()));
    }
}
