//! XEP-0425 moderated message retraction: a moderator asks the room to
//! retract a message by the stanza-id the room gave it; the room drops it
//! from the discussion history, tells every occupant (with a stanza-id of
//! its own, archived like any message when the room logs) and answers.
//! Both the 0.2 request (`urn:xmpp:fasten:0` `<apply-to/>`, namespaces
//! `:0`, as ejabberd and older clients speak it) and the 0.3 one
//! (`<moderate id=…/>`, namespaces `:1`) are understood, and the
//! announcement follows the request's version.
//!
//! Not done: replacing the archived message with a tombstone (the archive
//! is append-only; readers see the retraction after it).

use super::message::SID;
use super::permissions::Role;
use super::room::{Env, Out, Room};
use crate::ns;
use crate::stanza::StanzaError;
use crate::xml::Element;

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

impl Room {
    /// Retract the message `req` names on behalf of the session `full`;
    /// `sid` is the announcement's own stanza-id. The announcement, once
    /// per occupant session.
    pub fn retract(
        &mut self,
        _env: &Env<'_>,
        full: &str,
        req: &Request,
        sid: &str,
    ) -> Result<Out, StanzaError> {
        let actor = self.occupant_of(full).ok_or(StanzaError::Forbidden)?;
        if actor.role != Role::Moderator {
            return Err(StanzaError::Forbidden);
        }
        let (nick, actor_id) = (actor.nick.clone(), actor.id.clone());
        let room = self.jid.clone();
        let known = self.history.remove_where(|m| {
            m.elements().any(|e| {
                e.is(SID, "stanza-id")
                    && e.attr("by") == Some(room.as_str())
                    && e.attr("id") == Some(req.id.as_str())
            })
        });
        let archived = self.config.logging && crate::archive::ArchiveId::parse(&req.id).is_some();
        if !known && !archived {
            return Err(StanzaError::ItemNotFound);
        }
        let by = self.occupant_jid(&nick);
        let reason = req.reason.as_ref().map(|r| {
            Element::new(if req.v1 { RETRACT_1 } else { MODERATE_0 }, "reason").with_text(r.clone())
        });
        let payload = if req.v1 {
            let mut r = Element::new(RETRACT_1, "retract")
                .with_attr("id", req.id.clone())
                .with_child(
                    Element::new(MODERATE_1, "moderated")
                        .with_attr("by", by)
                        .with_child(
                            Element::new(super::occupant_id::NS, "occupant-id")
                                .with_attr("id", actor_id),
                        ),
                );
            if let Some(reason) = reason {
                r = r.with_child(reason);
            }
            r
        } else {
            let mut m = Element::new(MODERATE_0, "moderated")
                .with_attr("by", by)
                .with_child(Element::new(RETRACT_0, "retract"));
            if let Some(reason) = reason {
                m = m.with_child(reason);
            }
            Element::new(FASTEN, "apply-to")
                .with_attr("id", req.id.clone())
                .with_child(m)
        };
        let announcement = Element::new(ns::CLIENT, "message")
            .with_attr("type", "groupchat")
            .with_attr("from", room.clone())
            .with_attr("id", sid)
            .with_child(payload)
            .with_child(
                Element::new(SID, "stanza-id")
                    .with_attr("id", sid)
                    .with_attr("by", room),
            );
        Ok(self.to_all(&announcement))
    }
}
