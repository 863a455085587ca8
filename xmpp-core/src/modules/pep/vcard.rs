//! XEP-0398 §3.2, from vCard to PEP: a vCard stored with a photo is
//! published as a XEP-0084 avatar, the image to `urn:xmpp:avatar:data`
//! (item id: its SHA-1) and then its description to
//! `urn:xmpp:avatar:metadata`, both open, as vCards are. The other way
//! (§3.1) is the vCard module's ([`crate::modules::avatar`]), told by
//! [`crate::modules::Event::PepPublished`]; each side does nothing when
//! the other already holds the same image, so neither loops.

use crate::modules::avatar::photo_hash;
use crate::modules::stored_xml::VCARD;
use crate::xml::Element;
use base64::Engine as _;

/// XEP-0084's data node and namespace.
pub const DATA: &str = "urn:xmpp:avatar:data";
/// XEP-0084's metadata node and namespace.
pub const METADATA: &str = "urn:xmpp:avatar:metadata";

/// The two items to publish for a vCard's photo: (id, data payload,
/// metadata payload); `None` when the vCard has no usable photo.
pub fn avatar_items(vcard_xml: &str) -> Option<(String, Element, Element)> {
    let id = photo_hash(vcard_xml);
    if id.is_empty() {
        return None;
    }
    let vcard = Element::parse(vcard_xml.as_bytes()).ok()?;
    let photo = vcard.child(VCARD, "PHOTO")?;
    let binval: String = photo
        .child_text(VCARD, "BINVAL")?
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(&binval)
        .ok()?
        .len();
    let kind = photo
        .child_text(VCARD, "TYPE")
        .map(|t| t.trim().to_owned())
        .filter(|t| !t.is_empty())
        .unwrap_or_else(|| "image/png".to_owned());
    let data = Element::new(DATA, "data").with_text(binval);
    let metadata = Element::new(METADATA, "metadata").with_child(
        Element::new(METADATA, "info")
            .with_attr("bytes", bytes.to_string())
            .with_attr("id", id.clone())
            .with_attr("type", kind),
    );
    Some((id, data, metadata))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_photo_becomes_data_and_metadata() {
        // base64("hello"), SHA-1 aaf4c61d…
        let v = "<vCard xmlns='vcard-temp'><FN>A</FN><PHOTO><TYPE>image/jpeg</TYPE>\
                 <BINVAL>aGVs\n bG8=</BINVAL></PHOTO></vCard>";
        let (id, data, metadata) = avatar_items(v).expect("a photo");
        assert_eq!(id, "aaf4c61ddcc5e8a2dabede0f3b482cd9aea9434d");
        assert_eq!(data.text(), "aGVsbG8=");
        let info = metadata.child(METADATA, "info").expect("info");
        assert_eq!(info.attr("bytes"), Some("5"));
        assert_eq!(info.attr("type"), Some("image/jpeg"));
        assert_eq!(info.attr("id"), Some(id.as_str()));
        assert_eq!(
            avatar_items("<vCard xmlns='vcard-temp'><FN>A</FN></vCard>"),
            None
        );
        assert_eq!(
            avatar_items("<vCard xmlns='vcard-temp'><PHOTO><BINVAL>!!</BINVAL></PHOTO></vCard>"),
            None
        );
    }
}
