//! XEP-0425 moderated message retraction: a moderator asks the room to
//! retract a message by the stanza-id the room gave it; the room drops it
//! from the discussion history, tells every occupant (with a stanza-id of
//! its own, archived like any message when the room logs) and answers.
//! Both the 0.2 request (`urn:xmpp:fasten:0` `<apply-to/>`, namespaces
//! `:0`, as ejabberd and older clients speak it) and the 0.3 one
//! (`<moderate id=…/>`, namespaces `:1`) are understood, and the
//! announcement follows the request's version.
//!
//! In a room that logs, the archived message is replaced by a tombstone
//! (§6 "Tombstones"): its attributes, the author's occupant id and the
//! room's stanza-id stay, everything it said goes, a `<retracted/>` with
//! who moderated it (and why) takes its place; archive queries, and the
//! history read back after a restart ([`super::recall`]), no longer have
//! its body. A message no longer in the history is read from the archive
//! first (`mod.rs`): what is in neither, or was moderated already (it has
//! no body), is `item-not-found`.

use super::message::SID;
use super::permissions::Role;
use super::room::{Env, Out, Room};
use crate::archive::{ArchiveFilter, ArchiveId, ArchiveQuery, PageRequest};
use crate::ns;
use crate::stanza::StanzaError;
use crate::storage::StorageRequest;
use crate::time::format_datetime;
use crate::xml::{Element, Node};

/// XEP-0422 fastening (0.2 requests).
pub const FASTEN: &str = "urn:xmpp:fasten:0";
/// XEP-0425 0.2.
pub const MODERATE_0: &str = "urn:xmpp:message-moderate:0";
/// XEP-0424 0.2 (used by XEP-0425 0.2).
pub const RETRACT_0: &str = "urn:xmpp:message-retract:0";
/// XEP-0425 0.3.
pub const MODERATE_1: &str = "urn:xmpp:message-moderate:1";
/// XEP-0424 1.x.
pub const RETRACT_1: &str = "urn:xmpp:message-retract:1";

/// A parsed moderation request: the stanza-id, the reason, the version.
pub struct Request {
    id: String,
    reason: Option<String>,
    v1: bool,
}

impl Request {
    /// The stanza-id of the message to retract.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The archive id it names, if the id is one of ours.
    pub fn archive_id(&self) -> Option<ArchiveId> {
        ArchiveId::parse(&self.id)
    }
}

/// The moderation request in `iq`, if it is one.
pub fn parse(iq: &Element) -> Option<Request> {
    let q = iq.first_element()?;
    if q.is(MODERATE_1, "moderate") && q.child(RETRACT_1, "retract").is_some() {
        return Some(Request {
            id: q.attr("id")?.to_owned(),
            reason: q.child_text(MODERATE_1, "reason"),
            v1: true,
        });
    }
    let m = q.child(MODERATE_0, "moderate")?;
    (q.is(FASTEN, "apply-to") && m.child(RETRACT_0, "retract").is_some()).then(|| Request {
        id: q.attr("id").unwrap_or_default().to_owned(),
        reason: m.child_text(MODERATE_0, "reason"),
        v1: false,
    })
}

/// The read of the archived message `id` of `room_jid`.
pub fn read(room_jid: &str, id: ArchiveId) -> StorageRequest {
    StorageRequest::QueryArchive {
        account: super::archive::owner(room_jid),
        query: ArchiveQuery {
            filter: ArchiveFilter {
                ids: Some(vec![id]),
                ..ArchiveFilter::default()
            },
            page: PageRequest {
                max: 1,
                after: None,
                before: None,
                backward: false,
            },
        },
    }
}

/// What a retraction does.
pub struct Retracted {
    /// The announcement, once per occupant session.
    pub out: Out,
    /// What replaces the archived message.
    pub tombstone: Element,
}

impl Room {
    /// Whether the session `full` may moderate messages: a moderator.
    pub fn may_moderate(&self, full: &str) -> Result<(), StanzaError> {
        match self.occupant_of(full) {
            Some(o) if o.role == Role::Moderator => Ok(()),
            _ => Err(StanzaError::Forbidden),
        }
    }

    /// Whether the message with the room's stanza-id `id` is in the
    /// history.
    pub fn in_history(&self, id: &str) -> bool {
        let room = self.jid.as_str();
        self.history.any(|m| stanza_id(m, room) == Some(id))
    }

    /// Retract the message `req` names on behalf of the session `full`;
    /// `sid` is the announcement's own stanza-id, `archived` the message
    /// as the archive holds it (when it was read).
    pub fn retract(
        &mut self,
        env: &Env<'_>,
        full: &str,
        req: &Request,
        sid: &str,
        archived: Option<&Element>,
    ) -> Result<Retracted, StanzaError> {
        self.may_moderate(full)?;
        let actor = self.occupant_of(full).ok_or(StanzaError::Forbidden)?;
        let (nick, actor_id) = (actor.nick.clone(), actor.id.clone());
        let room = self.jid.clone();
        let said = |m: &Element| m.child(ns::CLIENT, "body").is_some();
        let original = self
            .history
            .take_where(|m| stanza_id(m, &room) == Some(req.id.as_str()))
            .into_iter()
            .next()
            .or_else(|| archived.filter(|m| said(m)).cloned())
            .ok_or(StanzaError::ItemNotFound)?;
        let by = self.occupant_jid(&nick);
        let reason = req.reason.as_ref().map(|r| {
            Element::new(if req.v1 { RETRACT_1 } else { MODERATE_0 }, "reason").with_text(r.clone())
        });
        let moderated_1 = || {
            Element::new(MODERATE_1, "moderated")
                .with_attr("by", by.clone())
                .with_child(
                    Element::new(super::occupant_id::NS, "occupant-id")
                        .with_attr("id", actor_id.clone()),
                )
        };
        let stamp = format_datetime(env.now);
        let (payload, mark) = if req.v1 {
            let mut r = Element::new(RETRACT_1, "retract")
                .with_attr("id", req.id.clone())
                .with_child(moderated_1());
            let mut t = Element::new(RETRACT_1, "retracted")
                .with_attr("stamp", stamp)
                .with_child(moderated_1());
            if let Some(reason) = reason {
                r = r.with_child(reason.clone());
                t = t.with_child(reason);
            }
            (r, t)
        } else {
            let mut m = Element::new(MODERATE_0, "moderated")
                .with_attr("by", by.clone())
                .with_child(Element::new(RETRACT_0, "retract"));
            let mut t = Element::new(MODERATE_0, "moderated")
                .with_attr("by", by.clone())
                .with_child(Element::new(RETRACT_0, "retracted").with_attr("stamp", stamp));
            if let Some(reason) = reason {
                m = m.with_child(reason.clone());
                t = t.with_child(reason);
            }
            let a = Element::new(FASTEN, "apply-to")
                .with_attr("id", req.id.clone())
                .with_child(m);
            (a, t)
        };
        let announcement = Element::new(ns::CLIENT, "message")
            .with_attr("type", "groupchat")
            .with_attr("from", room.clone())
            .with_attr("id", sid)
            .with_child(payload)
            .with_child(
                Element::new(SID, "stanza-id")
                    .with_attr("id", sid)
                    .with_attr("by", room.clone()),
            );
        Ok(Retracted {
            out: self.to_all(&announcement),
            tombstone: tombstone(&original, &room, mark),
        })
    }
}

/// The stanza-id `room` gave `m`.
fn stanza_id<'a>(m: &'a Element, room: &str) -> Option<&'a str> {
    m.elements()
        .find(|e| e.is(SID, "stanza-id") && e.attr("by") == Some(room))
        .and_then(|e| e.attr("id"))
}

/// `original` with nothing it said: its attributes, its author's occupant
/// id and `room`'s stanza-id, and `mark` (the `<retracted/>`).
fn tombstone(original: &Element, room: &str, mark: Element) -> Element {
    let mut t = original.clone();
    t.remove_attr("to");
    t.children.retain(|n| match n {
        Node::Element(e) => {
            e.is(super::occupant_id::NS, "occupant-id")
                || (e.is(SID, "stanza-id") && e.attr("by") == Some(room))
        }
        _ => false,
    });
    t.with_child(mark)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tombstone_keeps_who_and_where_not_what() {
        let original = Element::parse(
            b"<message xmlns='jabber:client' from='r@c/Bob' type='groupchat' id='m1'><body>spam</body><x xmlns='jabber:x:oob'><url>http://spam</url></x><occupant-id xmlns='urn:xmpp:occupant-id:0' id='bob'/><stanza-id xmlns='urn:xmpp:sid:0' id='S' by='r@c'/><stanza-id xmlns='urn:xmpp:sid:0' id='T' by='elsewhere'/></message>",
        )
        .expect("XML");
        let t = tombstone(&original, "r@c", Element::new(RETRACT_1, "retracted"));
        assert_eq!(
            t.to_xml(),
            Element::parse(b"<message xmlns='jabber:client' from='r@c/Bob' type='groupchat' id='m1'><occupant-id xmlns='urn:xmpp:occupant-id:0' id='bob'/><stanza-id xmlns='urn:xmpp:sid:0' id='S' by='r@c'/><retracted xmlns='urn:xmpp:message-retract:1'/></message>")
                .expect("XML")
                .to_xml()
        );
    }
}
