//! XEP-0352 Client State Indication: while a client says it is inactive
//! (a phone in a pocket), stanzas it does not need at once wait, so its
//! radio can sleep; anything important flushes them, in order.

use crate::xml::Element;

/// XEP-0352 namespace.
pub const NS: &str = "urn:xmpp:csi:0";
/// XEP-0085 chat states namespace.
const CHATSTATES: &str = "http://jabber.org/protocol/chatstates";

/// Most stanzas held before the queue is flushed anyway.
const MAX_HELD: usize = 256;

/// The held stanzas of an inactive client.
#[derive(Debug, Default)]
pub(crate) struct CsiQueue {
    inactive: bool,
    held: Vec<Element>,
}

/// What to do with an outgoing stanza.
#[derive(Debug)]
pub(crate) enum Verdict {
    /// Write it now.
    Send(Element),
    /// Write these (the held stanzas, then this one) now.
    Flush(Vec<Element>),
    /// Held.
    Held,
}

impl CsiQueue {
    /// `<active/>` or `<inactive/>`; returns the stanzas to write now.
    pub(crate) fn set_active(&mut self, active: bool) -> Vec<Element> {
        self.inactive = !active;
        if active {
            std::mem::take(&mut self.held)
        } else {
            Vec::new()
        }
    }

    /// Take the held stanzas without changing the state (the session moves
    /// to another stream or ends).
    pub(crate) fn take_held(&mut self) -> Vec<Element> {
        std::mem::take(&mut self.held)
    }

    /// Put stanzas back in front of the held ones.
    pub(crate) fn restore_held(&mut self, mut stanzas: Vec<Element>) {
        stanzas.append(&mut self.held);
        self.held = stanzas;
    }

    /// Keep a stanza behind the held ones, whatever the state (a resumed
    /// session not yet told so).
    pub(crate) fn hold(&mut self, stanza: Element) {
        self.held.push(stanza);
    }

    /// Decide about one outgoing stanza.
    pub(crate) fn offer(&mut self, stanza: &Element) -> Verdict {
        if !self.inactive {
            return Verdict::Send(stanza.clone());
        }
        if important(stanza) || self.held.len() >= MAX_HELD {
            let mut out = std::mem::take(&mut self.held);
            out.push(stanza.clone());
            return Verdict::Flush(out);
        }
        if stanza.name == "presence" {
            // Only the latest presence of each sender matters.
            let from = stanza.attr("from");
            self.held
                .retain(|h| !(h.name == "presence" && h.attr("from") == from));
        }
        self.held.push(stanza.clone());
        Verdict::Held
    }
}

/// Messages with content, every iq, and subscription requests are
/// important; availability presence and bare chat states can wait.
fn important(stanza: &Element) -> bool {
    match stanza.name.as_str() {
        "presence" => matches!(
            stanza.attr("type"),
            Some("subscribe" | "subscribed" | "unsubscribe" | "unsubscribed" | "error")
        ),
        "message" => stanza.elements().any(|c| c.ns != CHATSTATES),
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn el(x: &str) -> Element {
        Element::parse(x.as_bytes()).expect("test XML")
    }

    #[test]
    fn holds_presence_and_chat_states_until_something_matters() {
        let mut q = CsiQueue::default();
        assert!(q.set_active(false).is_empty());
        let p1 = el("<presence xmlns='jabber:client' from='b@x/1'><show>away</show></presence>");
        let p2 = el("<presence xmlns='jabber:client' from='b@x/1'/>");
        let typing = el("<message xmlns='jabber:client' from='b@x/1'><composing xmlns='http://jabber.org/protocol/chatstates'/></message>");
        assert!(matches!(q.offer(&p1), Verdict::Held));
        assert!(matches!(q.offer(&p2), Verdict::Held));
        assert!(matches!(q.offer(&typing), Verdict::Held));
        let msg = el("<message xmlns='jabber:client' from='b@x/1'><body>hi</body></message>");
        match q.offer(&msg) {
            // p1 was replaced by p2; order otherwise kept.
            Verdict::Flush(out) => assert_eq!(out, vec![p2, typing, msg]),
            other => panic!("expected a flush, got {other:?}"),
        }
        assert!(matches!(
            q.offer(&el("<presence xmlns='jabber:client' from='c@x'/>")),
            Verdict::Held
        ));
        assert_eq!(q.set_active(true).len(), 1);
        assert!(matches!(
            q.offer(&el("<presence xmlns='jabber:client'/>")),
            Verdict::Send(_)
        ));
    }
}
