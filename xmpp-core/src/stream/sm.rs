//! XEP-0198 Stream Management: acknowledgement counters, the queue of
//! stanzas the client has not acknowledged yet, and what becomes of them.
//!
//! Counters are 32-bit and wrap (XEP-0198 §4: "h" is an unsigned integer
//! modulo 2^32), so every comparison here is a wrapping difference against
//! the queue length, never a plain `<`.

use crate::jid::Jid;
use crate::stanza::{error_reply, StanzaError};
use crate::time::Millis;
use crate::xml::Element;
use std::collections::VecDeque;

/// XEP-0198 namespace (version 3 of the protocol).
pub const NS: &str = "urn:xmpp:sm:3";

/// Stream management settings for a listener.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SmConfig {
    /// How long a session whose connection broke stays resumable (ms); zero
    /// offers acknowledgements without resumption.
    pub resume_timeout_ms: Millis,
    /// Most unacknowledged stanzas kept; a session that exceeds it is ended
    /// and its queue handled as undeliverable, so one stalled phone cannot
    /// hold unbounded memory.
    pub max_unacked: usize,
    /// Most bytes of unacknowledged stanzas kept ([`Element::approx_size`]):
    /// counting stanzas alone let one session hold `max_unacked` times the
    /// largest stanza.
    pub max_unacked_bytes: usize,
    /// Ask for an acknowledgement (`<r/>`) after this many unacknowledged
    /// stanzas were written since the last request.
    pub request_every: u32,
}

impl Default for SmConfig {
    fn default() -> Self {
        SmConfig {
            resume_timeout_ms: 300_000,
            max_unacked: 1_000,
            max_unacked_bytes: 4 * 1024 * 1024,
            request_every: 5,
        }
    }
}

/// The client acknowledged more stanzas than were sent (XEP-0198 §4,
/// `<handled-count-too-high/>`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("client acknowledged {h} stanzas but only {sent} were sent")]
pub struct AckTooHigh {
    /// The acknowledged count the client sent.
    pub h: u32,
    /// What the server had sent.
    pub sent: u32,
}

impl AckTooHigh {
    /// The application-specific condition for the stream error.
    pub fn to_element(self) -> Element {
        Element::new(NS, "handled-count-too-high")
            .with_attr("h", self.h.to_string())
            .with_attr("send-count", self.sent.to_string())
    }
}

/// Stanzas sent to the client and not yet acknowledged, oldest first.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Unacked {
    /// The count the client last acknowledged (mod 2^32).
    acked: u32,
    queue: VecDeque<Element>,
    /// [`Element::approx_size`] of what `queue` holds.
    bytes: usize,
}

impl Unacked {
    /// An empty queue whose counter stands at `acked` (a session that has
    /// already sent that many stanzas, e.g. near the 2^32 wrap).
    pub fn with_acked(acked: u32) -> Self {
        Unacked {
            acked,
            queue: VecDeque::new(),
            bytes: 0,
        }
    }

    /// Record a stanza as sent.
    pub fn push(&mut self, stanza: Element) {
        self.bytes = self.bytes.saturating_add(stanza.approx_size());
        self.queue.push_back(stanza);
    }

    /// Roughly the bytes waiting for an acknowledgement.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// The outbound counter: stanzas sent so far (mod 2^32).
    pub fn sent(&self) -> u32 {
        self.acked.wrapping_add(self.queue.len() as u32)
    }

    /// The count last acknowledged by the client.
    pub fn acked(&self) -> u32 {
        self.acked
    }

    /// Whether the client acknowledged every stanza up to the outbound
    /// count `mark` (mod 2^32, like `ack`).
    pub fn acknowledged(&self, mark: u32) -> bool {
        let behind = mark.wrapping_sub(self.acked);
        behind == 0 || behind > u32::MAX / 2
    }

    /// Number of stanzas waiting for an acknowledgement.
    pub fn len(&self) -> usize {
        self.queue.len()
    }

    /// True when everything sent was acknowledged.
    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    /// The client handled `h` stanzas in total: drop those from the queue.
    /// Modulo 2^32 "ahead" and "behind" are told apart by the shorter
    /// distance: an `h` up to 2^31 behind the last acknowledgement is stale
    /// (a client repeating an older count) and changes nothing; one ahead of
    /// what was sent is the client's error.
    pub fn ack(&mut self, h: u32) -> Result<usize, AckTooHigh> {
        let ahead = h.wrapping_sub(self.acked);
        if ahead > u32::MAX / 2 {
            return Ok(0);
        }
        let newly = ahead as usize;
        if newly > self.queue.len() {
            return Err(AckTooHigh {
                h,
                sent: self.sent(),
            });
        }
        let freed: usize = self.queue.drain(..newly).map(|e| e.approx_size()).sum();
        self.bytes = self.bytes.saturating_sub(freed);
        self.acked = h;
        Ok(newly)
    }

    /// The unacknowledged stanzas, oldest first.
    pub fn iter(&self) -> impl Iterator<Item = &Element> {
        self.queue.iter()
    }

    /// Take every unacknowledged stanza, oldest first.
    pub fn drain(&mut self) -> Vec<Element> {
        self.acked = self.sent();
        self.bytes = 0;
        self.queue.drain(..).collect()
    }
}

/// Stream management state of one stream, once `<enable/>` succeeded.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct SmState {
    /// SM-ID when the stream is resumable.
    pub(crate) id: Option<String>,
    /// How long the session stays resumable after its transport broke (ms):
    /// the `max` announced in `<enabled/>`.
    pub(crate) resume_ms: Millis,
    /// Stanzas received from the client and handled (mod 2^32).
    pub(crate) handled: u32,
    /// Stanzas sent and not yet acknowledged.
    pub(crate) unacked: Unacked,
    /// Stanzas written since the last `<r/>`.
    pub(crate) since_request: u32,
    /// The outbound count that ends the page of offline messages being
    /// delivered ([`ServerStream::mark_page`](super::ServerStream::mark_page)):
    /// once the client acknowledges it, the hub sends the next page.
    pub(crate) page_end: Option<u32>,
    /// Acknowledgements are promises: the part of `handled` whose effects
    /// are durable, the only count ever reported to the client.
    pub(crate) acks: DurableAcks,
}

impl SmState {
    pub(crate) fn new(id: Option<String>, resume_ms: Millis) -> Self {
        SmState {
            id,
            resume_ms,
            handled: 0,
            unacked: Unacked::default(),
            since_request: 0,
            page_end: None,
            acks: DurableAcks::default(),
        }
    }
}

/// The durable part of the handled count (XEP-0198 `h`).
///
/// A client drops a stanza from its own queue once `h` covers it, so `h`
/// may only cover stanzas whose effects (offline storage, archive, roster)
/// survive a crash. The stream cannot know which stanzas store something,
/// so it asks its driver for a *fence* ([`ConnOutput::Fence`]) that follows
/// the stanzas' path and comes back once everything before it is durable
/// ([`ServerStream::fence_done`]); `h` moves to the count the fence covered.
/// One fence is in flight at a time: requests arriving meanwhile share the
/// next one, so a client cannot make the server send fences faster than
/// storage commits.
///
/// [`ConnOutput::Fence`]: super::ConnOutput::Fence
/// [`ServerStream::fence_done`]: super::ServerStream::fence_done
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct DurableAcks {
    /// Handled stanzas known durable (mod 2^32).
    pub(crate) durable: u32,
    /// The fence in flight: its sequence number and the count it covers.
    pub(crate) in_flight: Option<(u64, u32)>,
    /// Sequence number of the next fence (unique within the session, which
    /// keeps it when it moves to a resuming stream).
    pub(crate) next_seq: u64,
    /// An `<r/>` waits for the fence in flight.
    pub(crate) ack_when_back: bool,
    /// An `<r/>` came after stanzas the fence in flight does not cover: a
    /// new fence follows it, and its return answers.
    pub(crate) ack_next: bool,
}

impl DurableAcks {
    /// Start a fence covering `handled`; its sequence number.
    pub(crate) fn start(&mut self, handled: u32) -> u64 {
        let seq = self.next_seq;
        self.next_seq = self.next_seq.wrapping_add(1);
        self.in_flight = Some((seq, handled));
        seq
    }

    /// The fence `seq` came back: the count it covered, if it was ours.
    pub(crate) fn finish(&mut self, seq: u64) -> Option<u32> {
        let (s, h) = self.in_flight?;
        if s != seq {
            return None;
        }
        self.in_flight = None;
        self.durable = h;
        Some(h)
    }

    /// Forget the acknowledgements owed on a transport that is gone.
    pub(crate) fn forget_requests(&mut self) {
        self.ack_when_back = false;
        self.ack_next = false;
    }
}

/// A session whose stream is gone but which may be resumed: everything a
/// new stream needs to continue it. The driver moves it, opaque, from the
/// old connection to the one that sent `<resume/>`.
#[derive(Debug, Clone, PartialEq)]
pub struct SuspendedSession {
    pub(crate) account: Jid,
    pub(crate) jid: Jid,
    pub(crate) state: SmState,
    /// Stanzas held by client state indication, not yet sent.
    pub(crate) held: Vec<Element>,
}

impl SuspendedSession {
    /// The bound full JID of the session.
    pub fn jid(&self) -> &Jid {
        &self.jid
    }

    /// The SM-ID the session is resumed by.
    pub fn id(&self) -> Option<&str> {
        self.state.id.as_deref()
    }

    /// Stanzas the client has not acknowledged plus those never sent.
    pub fn pending(&self) -> usize {
        self.state.unacked.len() + self.held.len()
    }
}

/// What becomes of a stanza the client never acknowledged when its session
/// ends for good (XEP-0198 §5: "treat as undeliverable"): a message with
/// content goes back to the account for redelivery ([`is_redelivery`]:
/// another resource or offline storage gets it, keeping its `to` and its
/// archive id); a request gets an error, so its sender does not wait
/// forever; presence is state that the session's end replaces.
pub fn undeliverable(stanza: Element, domain: &str) -> Option<Element> {
    match stanza.name.as_str() {
        "message" => redeliverable(stanza),
        "iq" if matches!(stanza.attr("type"), Some("get" | "set")) => Some(error_reply(
            &stanza,
            StanzaError::ServiceUnavailable,
            domain,
        )),
        _ => None,
    }
}

/// Whether an undelivered stanza goes back to its account for redelivery
/// (`Hub::redeliver`) rather than being routed (an error reply).
pub fn is_redelivery(stanza: &Element) -> bool {
    stanza.name == "message" && stanza.attr("type") != Some("error")
}

fn redeliverable(stanza: Element) -> Option<Element> {
    if matches!(
        stanza.attr("type"),
        Some("error" | "groupchat" | "headline")
    ) {
        return None;
    }
    // Copies of other conversations (carbons, archive results) live on
    // elsewhere; content that only says "typing" is stale by now.
    let copy = stanza
        .elements()
        .any(|c| c.ns == crate::modules::carbons::NS || c.ns == "urn:xmpp:mam:2");
    if copy || !crate::modules::hints::has_content(&stanza) {
        return None;
    }
    Some(stanza)
}

/// Parse the `h` attribute of `<a/>` / `<resume/>`.
pub(crate) fn parse_h(el: &Element) -> Option<u32> {
    el.attr("h").and_then(|h| h.trim().parse().ok())
}

/// A `<failed/>` with a stanza error condition (XEP-0198 §6).
pub(crate) fn failed(condition: StanzaError, h: Option<u32>) -> Element {
    let mut f = Element::new(NS, "failed")
        .with_child(Element::new(crate::ns::STANZA_ERRORS, condition.name()));
    if let Some(h) = h {
        f.set_attr("h", h.to_string());
    }
    f
}

#[cfg(test)]
mod tests {
    use super::*;

    fn el(x: &str) -> Element {
        Element::parse(x.as_bytes()).expect("test XML")
    }

    #[test]
    fn ack_drops_the_acknowledged_prefix() {
        let mut u = Unacked::default();
        for i in 0..5 {
            u.push(el(&format!("<message xmlns='jabber:client' id='{i}'/>")));
        }
        assert_eq!(u.sent(), 5);
        assert_eq!(u.ack(3), Ok(3));
        assert_eq!(u.len(), 2);
        assert_eq!(u.iter().next().and_then(|m| m.attr("id")), Some("3"));
        assert_eq!(u.ack(3), Ok(0), "a repeated ack changes nothing");
        assert_eq!(u.ack(6), Err(AckTooHigh { h: 6, sent: 5 }));
        assert_eq!(u.ack(2), Ok(0), "a stale count is ignored");
        assert_eq!(u.len(), 2);
    }

    #[test]
    fn counters_wrap_at_two_to_the_32() {
        let mut u = Unacked::with_acked(u32::MAX - 1);
        for _ in 0..4 {
            u.push(el("<message xmlns='jabber:client'/>"));
        }
        assert_eq!(u.sent(), 2);
        assert_eq!(u.ack(0), Ok(2));
        assert_eq!(u.ack(2), Ok(2));
        assert!(u.is_empty());
    }

    #[test]
    fn undeliverable_messages_go_back_for_redelivery() {
        let chat = el("<message xmlns='jabber:client' type='chat' to='juliet@example.com/balcony' from='romeo@example.net/a'><body>hi</body></message>");
        let out = undeliverable(chat.clone(), "example.com").expect("redelivered");
        assert_eq!(out, chat, "kept as it was, `to` included");
        assert!(is_redelivery(&out));
        let typing = el("<message xmlns='jabber:client' type='chat' to='juliet@example.com/b'><composing xmlns='http://jabber.org/protocol/chatstates'/></message>");
        assert!(undeliverable(typing, "example.com").is_none());
        let carbon = el("<message xmlns='jabber:client' to='juliet@example.com/b'><sent xmlns='urn:xmpp:carbons:2'><forwarded xmlns='urn:xmpp:forward:0'/></sent></message>");
        assert!(undeliverable(carbon, "example.com").is_none());
        let presence = el("<presence xmlns='jabber:client' to='juliet@example.com/b'/>");
        assert!(undeliverable(presence, "example.com").is_none());
        let iq = el("<iq xmlns='jabber:client' type='get' id='q' from='romeo@example.net/a' to='juliet@example.com/b'><query xmlns='jabber:iq:version'/></iq>");
        let err = undeliverable(iq, "example.com").expect("error reply");
        assert_eq!(err.attr("type"), Some("error"));
        assert_eq!(err.attr("to"), Some("romeo@example.net/a"));
        assert!(!is_redelivery(&err));
    }
}
