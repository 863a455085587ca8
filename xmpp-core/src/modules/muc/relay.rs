//! Iqs between occupants, relayed as Prosody and ejabberd do (XEP-0045
//! leaves it to the service): a request from an occupant to `room/nick`
//! goes to one session of that occupant, from the requester's occupant
//! JID and under an id of the room's, so the answer comes back to the
//! room, which hands it to the requester under its own id. A vCard get
//! goes to the occupant's bare JID instead, for its server to answer with
//! the stored vCard (avatars in rooms). Real JIDs never cross.

use crate::time::Millis;
use crate::xml::Element;
use std::collections::BTreeMap;

/// A request older than this is forgotten when room is needed for another; its late
/// answer is dropped.
pub const TIMEOUT_MS: Millis = 120_000;

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
    /// When it went.
    at: Millis,
}

/// A room's relayed requests.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Relay {
    next: u64,
    /// By relayed id; ids grow, so the first is the oldest.
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
    /// Its session.
    pub session: &'a str,
    /// Its bare JID.
    pub bare: &'a str,
}

impl Relay {
    /// The iq to route for `req`, remembered; at most `max` wait, after
    /// the expired and those whose target is gone (`present` says) are
    /// forgotten.
    pub fn request(
        &mut self,
        req: Request<'_>,
        now: Millis,
        max: usize,
        present: impl Fn(&str) -> bool,
    ) -> Result<Element, Refused> {
        if self.pending.len() >= max {
            self.pending
                .retain(|_, p| now.saturating_sub(p.at) < TIMEOUT_MS && present(&p.target_nick));
        }
        if self.pending.len() >= max {
            return Err(Refused::Full);
        }
        let vcard = req.iq.attr("type") == Some("get")
            && req.iq.first_element().is_some_and(|q| q.is(VCARD, "vCard"));
        let target = if vcard { req.bare } else { req.session };
        self.next = self.next.wrapping_add(1);
        let relayed = format!("muc-iq-{:016x}", self.next);
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
    use crate::ns;

    const ROOM: &str = "den@conference.localhost";

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
        r.request(
            Request {
                iq,
                requester: "alice@localhost/phone",
                from: "den@conference.localhost/Alice",
                target_nick: "Bob",
                session: "bob@localhost/desk",
                bare: "bob@localhost",
            },
            now,
            max,
            |_| true,
        )
    }

    fn result_from(from: &str, id: &str) -> Element {
        Element::new(ns::CLIENT, "iq")
            .with_attr("type", "result")
            .with_attr("id", id)
            .with_attr("from", from)
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
    }

    #[test]
    fn vcard_gets_go_to_the_bare_jid() {
        let mut r = Relay::default();
        let out = ask(&mut r, &get("c", Element::new(VCARD, "vCard")), 0, 8)
            .unwrap_or_else(|_| panic!("refused"));
        assert_eq!(out.attr("to"), Some("bob@localhost"));
    }

    #[test]
    fn many_requests_stop_at_the_budget_until_they_expire() {
        let mut r = Relay::default();
        for i in 0..1_024 {
            assert!(ask(&mut r, &version(&i.to_string()), 0, 1_024).is_ok());
        }
        assert_eq!(
            ask(&mut r, &version("x"), TIMEOUT_MS - 1, 1_024),
            Err(Refused::Full)
        );
        assert_eq!(r.len(), 1_024);
        // Expired, they make room.
        assert!(ask(&mut r, &version("y"), TIMEOUT_MS, 1_024).is_ok());
        assert_eq!(r.len(), 1);
    }

    #[test]
    fn requests_to_a_departed_occupant_are_forgotten_when_full() {
        let mut r = Relay::default();
        assert!(ask(&mut r, &version("a"), 0, 1).is_ok());
        let gone = r.request(
            Request {
                iq: &version("b"),
                requester: "alice@localhost/phone",
                from: "den@conference.localhost/Alice",
                target_nick: "Carol",
                session: "carol@localhost/pad",
                bare: "carol@localhost",
            },
            1,
            1,
            |n| n != "Bob",
        );
        assert!(gone.is_ok());
        assert_eq!(r.len(), 1);
    }
}
