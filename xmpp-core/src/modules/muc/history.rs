//! Discussion history (§7.2.15): the room's last messages, kept within a
//! count and a byte budget, and what a joining occupant asks of them
//! (`maxchars`, `maxstanzas`, `seconds`, `since`, §7.2.16).

use super::protocol::MUC;
use crate::ns;
use crate::time::{format_datetime, parse_datetime, Millis};
use crate::xml::Element;
use std::collections::VecDeque;

/// One message of the history.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    /// When the room received it.
    pub at: Millis,
    /// The message as broadcast, without `to`.
    pub stanza: Element,
    /// Its approximate serialized size.
    pub bytes: usize,
}

/// The room's history.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct History {
    entries: VecDeque<Entry>,
    bytes: usize,
}

/// What a joining occupant asked for; `None` fields are unlimited.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Request {
    /// `maxchars`.
    pub max_chars: Option<usize>,
    /// `maxstanzas`.
    pub max_stanzas: Option<usize>,
    /// Only messages received at or after this time (`seconds`, `since`).
    pub after: Option<Millis>,
}

impl Request {
    /// The `<history/>` of the join presence's `<x xmlns=muc>`, at `now`.
    pub fn parse(presence: &Element, now: Millis) -> Self {
        let Some(h) = presence
            .child(MUC, "x")
            .and_then(|x| x.child(MUC, "history"))
        else {
            return Request::default();
        };
        let num = |k: &str| h.attr(k).and_then(|v| v.parse::<u64>().ok());
        let seconds = num("seconds").map(|s| now.saturating_sub(s.saturating_mul(1000)));
        let since = h
            .attr("since")
            .and_then(parse_datetime)
            .map(|d| d.millis.max(0) as u64);
        Request {
            max_chars: num("maxchars").map(|n| n as usize),
            max_stanzas: num("maxstanzas").map(|n| n as usize),
            after: seconds.into_iter().chain(since).max(),
        }
    }
}

impl History {
    /// Keep `stanza`, dropping the oldest beyond `max` messages or
    /// `max_bytes`.
    pub fn push(&mut self, at: Millis, stanza: Element, max: usize, max_bytes: usize) {
        let bytes = stanza.approx_size();
        if max == 0 || bytes > max_bytes {
            return;
        }
        self.bytes += bytes;
        self.entries.push_back(Entry { at, stanza, bytes });
        while self.entries.len() > max || self.bytes > max_bytes {
            match self.entries.pop_front() {
                Some(e) => self.bytes -= e.bytes,
                None => break,
            }
        }
    }

    /// Drop the messages `pred` picks, returning them.
    pub fn take_where(&mut self, mut pred: impl FnMut(&Element) -> bool) -> Vec<Element> {
        let mut taken = Vec::new();
        let mut kept = VecDeque::with_capacity(self.entries.len());
        for e in self.entries.drain(..) {
            if pred(&e.stanza) {
                self.bytes -= e.bytes;
                taken.push(e.stanza);
            } else {
                kept.push_back(e);
            }
        }
        self.entries = kept;
        taken
    }

    /// Whether a message `pred` picks is kept.
    pub fn any(&self, mut pred: impl FnMut(&Element) -> bool) -> bool {
        self.entries.iter().any(|e| pred(&e.stanza))
    }

    /// Messages kept.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// No messages kept.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The messages `req` asks for, at most `cap`, oldest first, stamped
    /// with their delay (XEP-0203, `from` the room) and addressed to `to`.
    pub fn replay(&self, req: Request, cap: usize, room: &str, to: &str) -> Vec<Element> {
        let max = req.max_stanzas.unwrap_or(usize::MAX).min(cap);
        let mut chars = req.max_chars.unwrap_or(usize::MAX);
        let mut picked = Vec::new();
        for e in self.entries.iter().rev() {
            if picked.len() >= max || req.after.is_some_and(|a| e.at < a) || e.bytes > chars {
                break;
            }
            chars -= e.bytes;
            picked.push(e);
        }
        picked
            .into_iter()
            .rev()
            .map(|e| {
                let mut m = e.stanza.clone();
                m.set_attr("to", to);
                m.with_child(
                    Element::new(ns::DELAY, "delay")
                        .with_attr("from", room)
                        .with_attr("stamp", format_datetime(e.at)),
                )
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(body: &str) -> Element {
        Element::new(ns::CLIENT, "message")
            .with_attr("type", "groupchat")
            .with_child(Element::new(ns::CLIENT, "body").with_text(body))
    }

    #[test]
    fn history_keeps_its_budget_and_answers_requests() {
        let mut h = History::default();
        for i in 0..50u64 {
            h.push(i * 1000, msg(&format!("m{i}")), 20, 1 << 20);
        }
        assert_eq!(h.len(), 20);
        let all = h.replay(Request::default(), 10, "r@c", "u@d/r");
        assert_eq!(all.len(), 10);
        assert_eq!(
            all[9].child_text(ns::CLIENT, "body").as_deref(),
            Some("m49")
        );
        let few = Request {
            max_stanzas: Some(3),
            ..Request::default()
        };
        assert_eq!(h.replay(few, 10, "r@c", "u@d/r").len(), 3);
        let none = Request {
            max_chars: Some(0),
            ..Request::default()
        };
        assert!(h.replay(none, 10, "r@c", "u@d/r").is_empty());
        let recent = Request {
            after: Some(47_000),
            ..Request::default()
        };
        assert_eq!(h.replay(recent, 10, "r@c", "u@d/r").len(), 3);
        // A huge message alone is never kept; many bytes push old ones out.
        let mut h = History::default();
        h.push(0, msg(&"x".repeat(5000)), 20, 4096);
        assert!(h.is_empty());
        for i in 0..100 {
            h.push(i, msg(&"y".repeat(1000)), 1000, 4096);
        }
        assert!(h.len() <= 4);
    }
}
