//! Iqs between occupants, relayed as Prosody and ejabberd do (XEP-0045
//! leaves it to the service): a request from an occupant to `room/nick`
//! goes to the occupant's active session (the one whose presence or
//! message reached the room last, as Prosody picks its primary session),
//! from the requester's occupant JID and under an id of the room's, so
//! the answer comes back to the room, which hands it to the requester
//! under its own id. A vCard get goes to the occupant's bare JID instead,
//! for its server to answer with the stored vCard (avatars in rooms).
//! Real JIDs never cross.
//!
//! A request nobody answers in time, or whose target session leaves the
//! room first, is answered by the room with `recipient-unavailable`
//! (type `wait`, RFC 6120 §8.3.3.13: the intended recipient is
//! temporarily unavailable). XEP-0045 says nothing and Prosody answers
//! nothing, but RFC 6120 §8.2.3 wants every request answered: a client
//! waiting on a disco or version query to an occupant who closed their
//! laptop would otherwise wait for ever (ejabberd answers too).

use super::protocol::refuse;
use crate::ns;
use crate::stanza::StanzaError;
use crate::time::Millis;
use crate::xml::Element;
use std::collections::BTreeMap;

/// The vCard namespace: those gets go to the bare JID.
const VCARD: &str = crate::modules::stored_xml::VCARD;

/// A relayed request waiting for its answer.
#[derive(Debug, Clone, PartialEq)]
struct Pending {
    /// The requester's session.
    requester: String,
    /// The id it chose.
    id: String,
    /// The nick the answer comes from.
    target_nick: String,
    /// The JID the request went to: only it may answer.
    target: String,
    /// The target occupant's session it was meant for: when it leaves the
    /// room, the request is answered.
    session: String,
    /// When it went.
    at: Millis,
}

impl Pending {
    /// The room's `recipient-unavailable` to the requester.
    fn unavailable(&self, room: &str) -> Element {
        let asked = Element::new(ns::CLIENT, "iq")
            .with_attr("type", "get")
            .with_attr("id", self.id.clone())
            .with_attr("from", self.requester.clone())
            .with_attr("to", format!("{room}/{}", self.target_nick));
        refuse(&asked, StanzaError::RecipientUnavailable, room)
    }
}

/// A room's relayed requests.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Relay {
    /// By relayed id; ids grow (and time with them), so the first is the
    /// oldest.
    pending: BTreeMap<String, Pending>,
}

/// Why a request is not relayed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// Too many in flight.
    Full,
}

/// A request to relay.
pub struct Request<'a> {
    /// The iq as the requester sent it.
    pub iq: &'a Element,
    /// The requester's session.
    pub requester: &'a str,
    /// The requester's occupant JID.
    pub from: &'a str,
    /// The target's nick.
    pub target_nick: &'a str,
    /// Its active session.
    pub session: &'a str,
    /// Its bare JID.
    pub bare: &'a str,
}

impl Relay {
    /// The iq to route for `req`, remembered; at most `max` wait. `next`
    /// numbers the relayed ids: the service's, not the room's, so an id
    /// is not reused when a room's relay is emptied and made anew (a late
    /// answer would pass for the new request's).
    pub fn request(
        &mut self,
        req: Request<'_>,
        next: &mut u64,
        now: Millis,
        max: usize,
    ) -> Result<Element, Refused> {
        if self.pending.len() >= max {
            return Err(Refused::Full);
        }
        let vcard = req.iq.attr("type") == Some("get")
            && req.iq.first_element().is_some_and(|q| q.is(VCARD, "vCard"));
        let target = if vcard { req.bare } else { req.session };
        *next = next.wrapping_add(1);
        let relayed = format!("muc-iq-{:016x}", *next);
        let mut out = req.iq.clone();
        out.set_attr("from", req.from);
        out.set_attr("to", target);
        out.set_attr("id", relayed.clone());
        self.pending.insert(
            relayed,
            Pending {
                requester: req.requester.to_owned(),
                id: req.iq.attr("id").unwrap_or_default().to_owned(),
                target_nick: req.target_nick.to_owned(),
                target: target.to_owned(),
                session: req.session.to_owned(),
                at: now,
            },
        );
        Ok(out)
    }

    /// The answer `reply` (a result or error from `from`) mapped back to
    /// its requester, from `room/targetnick`; `None` if it answers nothing
    /// this room sent to `from`.
    pub fn answer(&mut self, room: &str, from: &str, reply: &Element) -> Option<Element> {
        let id = reply.attr("id")?;
        if self.pending.get(id)?.target != from {
            return None;
        }
        let p = self.pending.remove(id)?;
        let mut out = reply.clone();
        out.set_attr("from", format!("{room}/{}", p.target_nick));
        out.set_attr("to", p.requester);
        out.set_attr("id", p.id);
        Some(out)
    }

    /// When the oldest request times out, `timeout` after it went.
    pub fn deadline(&self, timeout: Millis) -> Option<Millis> {
        let (_, p) = self.pending.first_key_value()?;
        Some(p.at.saturating_add(timeout))
    }

    /// The requests that have waited `timeout` by `now`, forgotten and
    /// answered with `recipient-unavailable`; a late answer is dropped.
    pub fn expire(&mut self, room: &str, now: Millis, timeout: Millis) -> Vec<Element> {
        let mut out = Vec::new();
        while let Some(entry) = self.pending.first_entry() {
            if entry.get().at.saturating_add(timeout) > now {
                break;
            }
            out.push(entry.remove().unavailable(room));
        }
        out
    }

    /// The requests whose target session is no longer in the room
    /// (`present` says), forgotten and answered with
    /// `recipient-unavailable`.
    pub fn orphans(&mut self, room: &str, present: impl Fn(&str) -> bool) -> Vec<Element> {
        let mut out = Vec::new();
        self.pending.retain(|_, p| {
            let keep = present(&p.session);
            if !keep {
                out.push(p.unavailable(room));
            }
            keep
        });
        out
    }

    /// Requests waiting.
    pub fn len(&self) -> usize {
        self.pending.len()
    }

    /// None waits.
    pub fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ROOM: &str = "den@conference.localhost";
    const TIMEOUT: Millis = 60_000;

    fn get(id: &str, payload: Element) -> Element {
        Element::new(ns::CLIENT, "iq")
            .with_attr("type", "get")
            .with_attr("id", id)
            .with_attr("from", "alice@localhost/phone")
            .with_attr("to", format!("{ROOM}/Bob"))
            .with_child(payload)
    }

    fn version(id: &str) -> Element {
        get(id, Element::new("jabber:iq:version", "query"))
    }

    fn ask(r: &mut Relay, iq: &Element, now: Millis, max: usize) -> Result<Element, Refused> {
        // Unique across the tests' relays, as the service's are.
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let mut next = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        r.request(
            Request {
                iq,
                requester: "alice@localhost/phone",
                from: "den@conference.localhost/Alice",
                target_nick: "Bob",
                session: "bob@localhost/desk",
                bare: "bob@localhost",
            },
            &mut next,
            now,
            max,
        )
    }

    fn result_from(from: &str, id: &str) -> Element {
        Element::new(ns::CLIENT, "iq")
            .with_attr("type", "result")
            .with_attr("id", id)
            .with_attr("from", from)
    }

    fn condition(e: &Element) -> Option<(String, String)> {
        let err = e.child(ns::CLIENT, "error")?;
        Some((
            err.attr("type")?.to_owned(),
            err.first_element()?.name.clone(),
        ))
    }

    fn unavailable() -> Option<(String, String)> {
        Some(("wait".into(), "recipient-unavailable".into()))
    }

    #[test]
    fn answers_go_back_under_the_requesters_id_only_from_the_target() {
        let mut r = Relay::default();
        let out = ask(&mut r, &version("v1"), 0, 8).unwrap_or_else(|_| panic!("refused"));
        assert_eq!(out.attr("to"), Some("bob@localhost/desk"));
        assert_eq!(out.attr("from"), Some("den@conference.localhost/Alice"));
        let id = out.attr("id").unwrap_or_default().to_owned();
        assert_ne!(id, "v1");
        // Forged by someone else, or an id never sent: nothing.
        assert!(r
            .answer(
                ROOM,
                "eve@localhost/x",
                &result_from("eve@localhost/x", &id)
            )
            .is_none());
        assert!(r
            .answer(
                ROOM,
                "bob@localhost/desk",
                &result_from("bob@localhost/desk", "v1")
            )
            .is_none());
        let back = r
            .answer(
                ROOM,
                "bob@localhost/desk",
                &result_from("bob@localhost/desk", &id),
            )
            .unwrap_or_else(|| panic!("not mapped back"));
        assert_eq!(back.attr("id"), Some("v1"));
        assert_eq!(back.attr("to"), Some("alice@localhost/phone"));
        assert_eq!(back.attr("from"), Some("den@conference.localhost/Bob"));
        // Once only.
        assert!(r
            .answer(
                ROOM,
                "bob@localhost/desk",
                &result_from("bob@localhost/desk", &id)
            )
            .is_none());
        assert!(r.is_empty());
        assert_eq!(r.deadline(TIMEOUT), None);
    }

    #[test]
    fn vcard_gets_go_to_the_bare_jid() {
        let mut r = Relay::default();
        let out = ask(&mut r, &get("c", Element::new(VCARD, "vCard")), 0, 8)
            .unwrap_or_else(|_| panic!("refused"));
        assert_eq!(out.attr("to"), Some("bob@localhost"));
    }

    #[test]
    fn many_requests_stop_at_the_budget_until_answered_or_expired() {
        let mut r = Relay::default();
        for i in 0..1_024 {
            assert!(ask(&mut r, &version(&i.to_string()), i, 1_024).is_ok());
        }
        assert_eq!(ask(&mut r, &version("x"), 2_000, 1_024), Err(Refused::Full));
        assert_eq!(r.len(), 1_024);
        assert_eq!(r.deadline(TIMEOUT), Some(TIMEOUT));
        // Not yet.
        assert!(r.expire(ROOM, TIMEOUT - 1, TIMEOUT).is_empty());
        // The first ten are due: each requester hears recipient-unavailable.
        let gone = r.expire(ROOM, TIMEOUT + 9, TIMEOUT);
        assert_eq!(gone.len(), 10);
        assert_eq!(gone[0].attr("id"), Some("0"));
        assert_eq!(gone[9].attr("id"), Some("9"));
        assert_eq!(gone[0].attr("to"), Some("alice@localhost/phone"));
        assert_eq!(gone[0].attr("from"), Some("den@conference.localhost/Bob"));
        assert_eq!(gone[0].attr("type"), Some("error"));
        assert_eq!(condition(&gone[0]), unavailable());
        assert_eq!(r.len(), 1_014);
        assert_eq!(r.deadline(TIMEOUT), Some(TIMEOUT + 10));
        // Expired, they make room.
        assert!(ask(&mut r, &version("y"), TIMEOUT + 9, 1_024).is_ok());
    }

    #[test]
    fn a_late_answer_is_dropped() {
        let mut r = Relay::default();
        let out = ask(&mut r, &version("a"), 0, 8).unwrap_or_else(|_| panic!("refused"));
        let id = out.attr("id").unwrap_or_default().to_owned();
        assert_eq!(r.expire(ROOM, TIMEOUT, TIMEOUT).len(), 1);
        assert!(r
            .answer(
                ROOM,
                "bob@localhost/desk",
                &result_from("bob@localhost/desk", &id)
            )
            .is_none());
    }

    #[test]
    fn requests_to_a_departed_session_are_answered_at_once() {
        let mut r = Relay::default();
        assert!(ask(&mut r, &version("a"), 0, 8).is_ok());
        let to_carol = r.request(
            Request {
                iq: &version("b"),
                requester: "alice@localhost/phone",
                from: "den@conference.localhost/Alice",
                target_nick: "Carol",
                session: "carol@localhost/pad",
                bare: "carol@localhost",
            },
            &mut 1_000_000,
            1,
            8,
        );
        assert!(to_carol.is_ok());
        // A vCard get goes to the bare JID but is still bob's desk's.
        assert!(ask(&mut r, &get("c", Element::new(VCARD, "vCard")), 2, 8).is_ok());
        let gone = r.orphans(ROOM, |s| s != "bob@localhost/desk");
        let ids: Vec<_> = gone.iter().filter_map(|e| e.attr("id")).collect();
        assert_eq!(ids, ["a", "c"]);
        assert!(gone.iter().all(|e| condition(e) == unavailable()));
        assert_eq!(r.len(), 1);
        assert!(r.orphans(ROOM, |_| true).is_empty());
    }
}
