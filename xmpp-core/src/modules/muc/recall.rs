//! Discussion history refilled from the room's archive when a stored room
//! is read (as Prosody's mod_muc_mam does): without it a restart, or a
//! persistent room leaving memory, would empty the history a joining
//! occupant gets (§7.2.15). The archive holds each message exactly as the
//! room broadcast it (occupant JID, occupant id, stanza-id), which is
//! what the history keeps, so an entry read back looks like a live one;
//! when it was archived is its archive id's time.
//!
//! Moderated messages (XEP-0425) stay out: their originals are tombstones
//! without a body, and the announcements (no body either) name them.

use super::archive;
use super::message::SID;
use super::retract::{FASTEN, RETRACT_0, RETRACT_1};
use super::room::Room;
use super::settings::Settings;
use crate::archive::{ArchiveFilter, ArchivePage, ArchiveQuery, PageRequest};
use crate::ns;
use crate::storage::StorageRequest;
use crate::xml::{Element, Limits};
use std::collections::HashSet;

/// Most archived messages read back for one room: twice the largest
/// history the configuration allows (`max_history_messages` ≤ 1,000),
/// the slack for moderation announcements, which are archived but are no
/// history.
pub const READ_MAX: usize = 2_000;

/// The read of `room`'s newest archived messages, `None` when it keeps
/// no archive or no history.
pub fn request(room: &Room, settings: &Settings) -> Option<StorageRequest> {
    let want = settings.max_history_messages;
    if !room.config.logging || want == 0 || settings.history_bytes_max == 0 {
        return None;
    }
    Some(StorageRequest::QueryArchive {
        account: archive::owner(&room.jid),
        query: ArchiveQuery {
            filter: ArchiveFilter::default(),
            page: PageRequest {
                max: want.saturating_mul(2).min(READ_MAX),
                after: None,
                before: None,
                backward: true,
            },
        },
    })
}

/// Fill `room`'s history from `page` (oldest first): its groupchat
/// messages with a body, less the moderated ones, within the history's
/// budgets (the newest kept).
pub fn fill(room: &mut Room, settings: &Settings, page: &ArchivePage) {
    let limits = Limits::stored();
    let messages: Vec<(u64, Element)> = page
        .items
        .iter()
        .filter_map(|m| {
            let e = Element::parse_with_limits(m.stanza.as_bytes(), &limits).ok()?;
            Some((m.id.millis(), e))
        })
        .collect();
    let moderated: HashSet<&str> = messages.iter().filter_map(|(_, m)| retracted(m)).collect();
    let kept: Vec<&(u64, Element)> = messages
        .iter()
        .filter(|(_, m)| {
            m.attr("type") == Some("groupchat")
                && m.child(ns::CLIENT, "body").is_some()
                && stanza_id(m, &room.jid).is_none_or(|id| !moderated.contains(id))
        })
        .collect();
    for (at, m) in kept {
        room.history.push(
            *at,
            m.clone(),
            settings.max_history_messages,
            settings.history_bytes_max,
        );
    }
}

/// The stanza-id `room` gave `m`.
fn stanza_id<'a>(m: &'a Element, room: &str) -> Option<&'a str> {
    m.elements()
        .find(|e| e.is(SID, "stanza-id") && e.attr("by") == Some(room))
        .and_then(|e| e.attr("id"))
}

/// The stanza-id a moderation announcement retracts (either version).
fn retracted(m: &Element) -> Option<&str> {
    if let Some(r) = m.child(RETRACT_1, "retract") {
        return r.attr("id");
    }
    let a = m.child(FASTEN, "apply-to")?;
    let moderated = a
        .elements()
        .any(|e| e.name == "moderated" && e.child(RETRACT_0, "retract").is_some());
    moderated.then(|| a.attr("id")).flatten()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::archive::{ArchiveId, ArchivedMessage};
    use crate::modules::muc::config::RoomConfig;
    use crate::modules::muc::occupant_id::Secret;

    const ROOM: &str = "r@conference.localhost";

    fn archived(n: u8, at: u64, xml: &str) -> ArchivedMessage {
        let mut b = [0u8; 16];
        b[..8].copy_from_slice(&at.to_be_bytes());
        b[15] = n;
        ArchivedMessage {
            id: ArchiveId::from_bytes(b),
            with: format!("{ROOM}/A"),
            stanza: xml.to_owned(),
        }
    }

    fn said(n: u8, body: &str) -> ArchivedMessage {
        archived(n, u64::from(n) * 1000, &format!("<message xmlns='jabber:client' from='{ROOM}/A' type='groupchat'><body>{body}</body><occupant-id xmlns='urn:xmpp:occupant-id:0' id='o'/><stanza-id xmlns='urn:xmpp:sid:0' id='s{n}' by='{ROOM}'/></message>"))
    }

    fn room() -> Room {
        Room::new(
            ROOM,
            "a@localhost",
            RoomConfig {
                persistent: true,
                logging: true,
                ..RoomConfig::default()
            },
            Secret::from_bytes(b"k"),
        )
    }

    fn bodies(r: &Room) -> Vec<String> {
        r.history
            .replay(Default::default(), usize::MAX, ROOM, "x@localhost/x")
            .iter()
            .filter_map(|m| m.child_text(ns::CLIENT, "body"))
            .collect()
    }

    #[test]
    fn reads_the_newest_and_skips_what_is_no_history() {
        let settings = Settings {
            max_history_messages: 3,
            ..Settings::default()
        };
        let r = room();
        let Some(StorageRequest::QueryArchive { account, query }) = request(&r, &settings) else {
            panic!("a logged room reads its archive");
        };
        assert_eq!(account, "conference.localhost/r");
        assert_eq!((query.page.max, query.page.backward), (6, true));
        let page = ArchivePage {
            items: vec![
                said(1, "one"),
                said(2, "two"),
                said(3, "spam"),
                said(4, "three"),
                // The 0.3 announcement of the moderation of s3.
                archived(5, 5000, &format!("<message xmlns='jabber:client' from='{ROOM}' type='groupchat'><retract xmlns='urn:xmpp:message-retract:1' id='s3'><moderated xmlns='urn:xmpp:message-moderate:1' by='{ROOM}/A'/></retract><stanza-id xmlns='urn:xmpp:sid:0' id='s5' by='{ROOM}'/></message>")),
                // A tombstone: the original replaced.
                archived(6, 6000, &format!("<message xmlns='jabber:client' from='{ROOM}/A' type='groupchat'><retracted xmlns='urn:xmpp:message-retract:1'/><stanza-id xmlns='urn:xmpp:sid:0' id='s6' by='{ROOM}'/></message>")),
                said(7, "four"),
                archived(8, 8000, "<garbage"),
            ],
            complete: true,
            count: None,
            first_index: None,
        };
        let mut r = room();
        fill(&mut r, &settings, &page);
        assert_eq!(bodies(&r), ["two", "three", "four"], "the newest three");
        let replayed = r
            .history
            .replay(Default::default(), 1, ROOM, "x@localhost/x")
            .remove(0);
        let delay = replayed.child(ns::DELAY, "delay").expect("delayed");
        assert_eq!(delay.attr("from"), Some(ROOM));
        assert_eq!(delay.attr("stamp"), Some("1970-01-01T00:00:07.000Z"));
        assert_eq!(replayed.attr("from"), Some("r@conference.localhost/A"));

        // The 0.2 announcement names its message by apply-to.
        let page = ArchivePage {
            items: vec![
                said(1, "kept"),
                said(2, "gone"),
                archived(3, 3000, &format!("<message xmlns='jabber:client' from='{ROOM}' type='groupchat'><apply-to xmlns='urn:xmpp:fasten:0' id='s2'><moderated xmlns='urn:xmpp:message-moderate:0' by='{ROOM}/A'><retract xmlns='urn:xmpp:message-retract:0'/></moderated></apply-to></message>")),
            ],
            complete: true,
            count: None,
            first_index: None,
        };
        let mut r = room();
        fill(&mut r, &settings, &page);
        assert_eq!(bodies(&r), ["kept"]);
    }

    #[test]
    fn no_read_without_an_archive_or_a_history() {
        let mut r = room();
        r.config.logging = false;
        assert!(request(&r, &Settings::default()).is_none());
        let none = Settings {
            max_history_messages: 0,
            ..Settings::default()
        };
        assert!(request(&room(), &none).is_none());
        // The read is bounded whatever the setting.
        let many = Settings {
            max_history_messages: usize::MAX,
            ..Settings::default()
        };
        let Some(StorageRequest::QueryArchive { query, .. }) = request(&room(), &many) else {
            panic!("a read");
        };
        assert_eq!(query.page.max, READ_MAX);
    }
}
