//! How persistent rooms are stored: one document per room under the
//! service's domain as owner (documents of a bare domain belong to the
//! service, see [`crate::storage::StorageRequest::StoreBlob`]), keyed
//! `r/<room's local part>`, holding what outlives the occupants: the
//! configuration, the affiliations, the registered nicks, the subject, the
//! creator and the occupant-id secret (XEP-0421: ids stay the same after a
//! restart; a document written before rooms had one gets a fresh one when
//! read, which the caller stores at once).
//! A room is read only when a stanza names it; the service's room listing
//! reads the documents in one page.

use super::config::RoomConfig;
use super::occupant_id::Secret;
use super::permissions::Affiliation;
use super::room::Room;
use crate::entropy::Entropy;
use crate::xml::{Element, Limits};

/// The namespace of the stored documents.
pub const NS: &str = super::NS;
/// Prefix of every room's key.
pub const PREFIX: &str = "r/";
/// Largest stored room document read back.
const DOC_BYTES_MAX: usize = 4 * 1024 * 1024;

/// The key of `room_jid`'s document.
pub fn key(room_jid: &str) -> String {
    key_of_local(room_jid.split('@').next().unwrap_or_default())
}

/// The key of the document of the room whose local part is `local`.
pub fn key_of_local(local: &str) -> String {
    format!("{PREFIX}{local}")
}

/// The local part of the room stored under `key`.
pub fn local_of_key(key: &str) -> &str {
    key.strip_prefix(PREFIX).unwrap_or(key)
}

/// The room as stored.
pub fn document(room: &Room) -> String {
    let mut e = Element::new(NS, "room")
        .with_attr("jid", room.jid.clone())
        .with_attr("creator", room.creator.clone())
        .with_attr("secret", room.secret.to_text())
        .with_child(room.config.to_element(NS));
    for (jid, a) in &room.affiliations {
        e = e.with_child(
            Element::new(NS, "aff")
                .with_attr("jid", jid.clone())
                .with_attr("affiliation", a.name()),
        );
    }
    if let Some(subject) = &room.subject {
        e = e.with_child(Element::new(NS, "subject").with_child(subject.clone()));
    }
    for (nick, jid) in &room.nicks {
        e = e.with_child(
            Element::new(NS, "nick")
                .with_attr("nick", nick.clone())
                .with_attr("jid", jid.clone()),
        );
    }
    e.to_xml()
}

fn parse(doc: &str) -> Option<Element> {
    let limits = Limits {
        max_stanza_bytes: DOC_BYTES_MAX,
        ..Limits::stored()
    };
    Element::parse_with_limits(doc.as_bytes(), &limits).ok()
}

/// A stored room, unlocked and empty, and whether its secret was drawn
/// now (the document had none, or an unreadable one: it must be written
/// again before any occupant id is seen); `None` when unreadable.
pub fn room(doc: &str, defaults: &RoomConfig, entropy: &mut Entropy) -> Option<(Room, bool)> {
    let e = parse(doc)?;
    let jid = e.attr("jid")?;
    let config = RoomConfig::from_element(e.child(NS, "config")?, defaults);
    let stored = e.attr("secret").and_then(Secret::from_text);
    let drawn = stored.is_none();
    let secret = stored.unwrap_or_else(|| Secret::draw(entropy));
    let mut room = Room::new(jid, e.attr("creator").unwrap_or_default(), config, secret);
    room.locked = false;
    room.affiliations = e
        .elements()
        .filter(|a| a.is(NS, "aff"))
        .filter_map(|a| {
            Some((
                a.attr("jid")?.to_owned(),
                Affiliation::parse(a.attr("affiliation")?)?,
            ))
        })
        .collect();
    room.subject = e
        .child(NS, "subject")
        .and_then(|s| s.first_element())
        .cloned();
    room.nicks = e
        .elements()
        .filter(|n| n.is(NS, "nick"))
        .filter_map(|n| Some((n.attr("nick")?.to_owned(), n.attr("jid")?.to_owned())))
        .collect();
    Some((room, drawn))
}

/// The tombstone of a destroyed room, kept until `until` (ms), naming
/// its alternate venue.
pub fn tombstone_document(until: u64, venue: Option<&str>) -> String {
    let mut e = Element::new(NS, "tombstone").with_attr("until", until.to_string());
    if let Some(v) = venue {
        e.set_attr("venue", v);
    }
    e.to_xml()
}

/// A stored tombstone: until when, and the alternate venue.
pub fn tombstone(doc: &str) -> Option<(u64, Option<String>)> {
    let e = parse(doc).filter(|e| e.is(NS, "tombstone"))?;
    Some((
        e.attr("until")?.parse().ok()?,
        e.attr("venue").map(str::to_owned),
    ))
}

/// A stored room, as an administrator lists it: its JID, name and
/// whether it is public (tombstones and other documents: `None`).
pub fn summary(doc: &str) -> Option<(String, String, bool)> {
    let e = parse(doc).filter(|e| e.attr("jid").is_some())?;
    let c = e.child(NS, "config")?;
    Some((
        e.attr("jid").unwrap_or_default().to_owned(),
        c.attr("name").unwrap_or_default().to_owned(),
        c.attr("public") == Some("1"),
    ))
}

/// A stored room's JID and name, if it is public.
pub fn listing(doc: &str) -> Option<(String, String)> {
    let e = parse(doc)?;
    let c = e.child(NS, "config")?;
    (c.attr("public") == Some("1")).then(|| {
        (
            e.attr("jid").unwrap_or_default().to_owned(),
            c.attr("name").unwrap_or_default().to_owned(),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rooms_round_trip() {
        let mut r = Room::new(
            "cave@conference.localhost",
            "alice@localhost",
            RoomConfig {
                persistent: true,
                name: "Cave".into(),
                ..RoomConfig::default()
            },
            Secret::from_bytes(&[3; super::super::occupant_id::SECRET_BYTES]),
        );
        r.locked = false;
        r.affiliations
            .insert("bob@localhost".into(), Affiliation::Member);
        r.nicks.insert("Bobby".into(), "bob@localhost".into());
        r.subject = Some(
            Element::parse(
                b"<message xmlns='jabber:client' from='cave@conference.localhost/A' type='groupchat'><subject>S</subject></message>",
            )
            .expect("XML"),
        );
        let doc = document(&r);
        let mut entropy = Entropy::from_u64(1);
        assert_eq!(
            room(&doc, &RoomConfig::default(), &mut entropy),
            Some((r.clone(), false))
        );
        assert_eq!(
            listing(&doc),
            Some(("cave@conference.localhost".into(), "Cave".into()))
        );
        assert_eq!(key("cave@conference.localhost"), "r/cave");
        assert_eq!(room("<garbage", &RoomConfig::default(), &mut entropy), None);
    }

    /// A document from before rooms had a secret gets one, said to be new
    /// so that the caller stores it.
    #[test]
    fn an_old_document_gets_a_secret_to_store() {
        let mut r = Room::new(
            "old@conference.localhost",
            "alice@localhost",
            RoomConfig::default(),
            Secret::from_bytes(&[3; super::super::occupant_id::SECRET_BYTES]),
        );
        r.locked = false;
        let mut e = Element::parse(document(&r).as_bytes()).expect("XML");
        e.remove_attr("secret");
        let mut entropy = Entropy::from_u64(1);
        let (loaded, drawn) =
            room(&e.to_xml(), &RoomConfig::default(), &mut entropy).expect("readable");
        assert!(drawn);
        assert_ne!(loaded.secret, r.secret);
        let (again, drawn) =
            room(&document(&loaded), &RoomConfig::default(), &mut entropy).expect("readable");
        assert!(!drawn);
        assert_eq!(again.secret, loaded.secret);
    }
}
