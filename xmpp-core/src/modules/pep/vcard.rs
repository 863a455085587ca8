//! XEP-0398 §3.2, from vCard to PEP: a vCard stored with a photo is
//! published as a XEP-0084 avatar, the image to `urn:xmpp:avatar:data`
//! (item id: its SHA-1) and then its description to
//! `urn:xmpp:avatar:metadata`, both open, as vCards are. The other way
//! (§3.1) is the vCard module's ([`crate::modules::avatar`]), told by
//! [`crate::modules::Event::PepPublished`]; each side does nothing when
//! the other already holds the same image, so neither loops.

use super::access::AccessModel;
use super::config;
use super::notify::notify;
use super::requests::{publish, published, Answer};
use super::{Load, Parked, PepState};
use crate::modules::avatar::photo_hash;
use crate::modules::stored_xml::VCARD;
use crate::modules::Context;
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

impl super::Pep {
    /// XEP-0398 §3.2: a stored vCard's photo published as the XEP-0084
    /// avatar (open nodes, created if need be), unless it is the avatar
    /// already; the nodes are read first.
    pub(super) fn vcard_stored(&mut self, cx: &mut Context<'_>, account: &str, xml: String) {
        let Some((id, data, metadata)) = avatar_items(&xml) else {
            return;
        };
        let Some(state) = cx.account_state::<PepState>(account) else {
            return;
        };
        let Some(index) = &state.index else {
            return self.wait(cx, account, Load::Index, Parked::Vcard { xml });
        };
        let unread = [DATA, METADATA]
            .into_iter()
            .find(|n| index.0.contains_key(*n) && !state.nodes.contains_key(*n));
        if let Some(node) = unread {
            return self.wait(
                cx,
                account,
                Load::Node(node.to_owned()),
                Parked::Vcard { xml },
            );
        }
        let open: config::Fields = vec![(
            "pubsub#access_model".to_owned(),
            vec![AccessModel::Open.name().to_owned()],
        )];
        for (node, payload) in [(DATA, data), (METADATA, metadata)] {
            let current = cx
                .account_state_ref::<PepState>(account)
                .and_then(|s| s.nodes.get(node))
                .and_then(|n| n.items.last())
                .is_some_and(|(i, _)| *i == id);
            if current {
                continue;
            }
            let answer = publish(
                cx,
                account,
                node.to_owned(),
                Some(id.clone()),
                payload,
                Some(&open),
                false,
            );
            match answer {
                Ok(Answer {
                    event: Some((audience, event)),
                    ..
                }) => {
                    notify(cx, &self.interests, account, &audience, &event);
                    published(cx, account, &event);
                }
                Ok(_) => {}
                Err(refusal) => {
                    tracing::info!(
                        account,
                        node,
                        ?refusal,
                        "vCard photo not published as avatar"
                    );
                    return;
                }
            }
        }
    }
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
