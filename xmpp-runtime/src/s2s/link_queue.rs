//! What waits for one outgoing link (a domain pair): stanzas from our
//! users, and dialback verifications our incoming streams asked for.
//!
//! Bounded in bytes and never blocking the sender, like a connection's
//! mailbox (`mailbox.rs`): a hub partition must not wait on a remote
//! server. A stanza that does not fit comes back to be bounced.

use event_listener::{Event, EventListener};
use std::collections::VecDeque;
use std::sync::{Mutex, MutexGuard};
use xmpp_core::s2s::dialback::{DialbackDomain, DialbackKey, StreamId};
use xmpp_core::Element;

/// An incoming stream's request to check a dialback key with the
/// Authoritative Server of `sender` (XEP-0220 `db:verify`).
#[derive(Debug)]
pub(crate) struct VerifyRequest {
    /// The domain the incoming stream claims (the remote one).
    pub(crate) sender: DialbackDomain,
    /// Our domain it wants to send to.
    pub(crate) target: DialbackDomain,
    /// The incoming stream's id.
    pub(crate) stream_id: StreamId,
    /// The key it presented.
    pub(crate) key: DialbackKey,
    /// Where the verdict goes.
    pub(crate) reply: smol::channel::Sender<VerifyVerdict>,
}

/// The answer to a [`VerifyRequest`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct VerifyVerdict {
    pub(crate) sender: String,
    pub(crate) target: String,
    /// `None`: the Authoritative Server could not be asked.
    pub(crate) valid: Option<bool>,
}

impl VerifyRequest {
    /// Answer the request (the incoming stream may be gone: no matter).
    pub(crate) fn answer(&self, valid: Option<bool>) {
        let _ = self.reply.try_send(VerifyVerdict {
            sender: self.sender.as_str().to_owned(),
            target: self.target.as_str().to_owned(),
            valid,
        });
    }
}

#[derive(Debug, Default)]
struct Inner {
    stanzas: VecDeque<Element>,
    verifies: VecDeque<VerifyRequest>,
    /// `Element::approx_size` of `stanzas`.
    bytes: usize,
    closed: bool,
}

/// The queue of one link.
#[derive(Debug)]
pub(crate) struct LinkQueue {
    inner: Mutex<Inner>,
    event: Event,
    limit: usize,
    /// Verification requests waiting at most (each is a few hundred bytes,
    /// and an incoming stream has only a few in flight).
    max_verifies: usize,
}

impl LinkQueue {
    pub(crate) fn new(limit: usize, max_verifies: usize) -> Self {
        LinkQueue {
            inner: Mutex::default(),
            event: Event::new(),
            limit,
            max_verifies,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // Pushing and taking cannot leave the queue inconsistent.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queue a stanza, or hand it back when the queue is full or closed.
    pub(crate) fn offer(&self, stanza: Element) -> Result<(), Element> {
        let n = stanza.approx_size();
        {
            let mut inner = self.lock();
            if inner.closed || inner.bytes.saturating_add(n) > self.limit {
                return Err(stanza);
            }
            inner.bytes += n;
            inner.stanzas.push_back(stanza);
        }
        self.event.notify(1);
        Ok(())
    }

    /// Queue a verification request, or hand it back.
    // A verification is rare (one per incoming stream and domain): moving
    // a couple of hundred bytes back on refusal costs nothing.
    #[allow(clippy::result_large_err)]
    pub(crate) fn offer_verify(&self, request: VerifyRequest) -> Result<(), VerifyRequest> {
        {
            let mut inner = self.lock();
            if inner.closed || inner.verifies.len() >= self.max_verifies {
                return Err(request);
            }
            inner.verifies.push_back(request);
        }
        self.event.notify(1);
        Ok(())
    }

    /// Everything waiting: verifications, and the stanzas too when
    /// `with_stanzas` (the link can send them).
    pub(crate) fn take(&self, with_stanzas: bool) -> (Vec<VerifyRequest>, Vec<Element>) {
        let mut inner = self.lock();
        let verifies = inner.verifies.drain(..).collect();
        let stanzas = if with_stanzas {
            inner.bytes = 0;
            inner.stanzas.drain(..).collect()
        } else {
            Vec::new()
        };
        (verifies, stanzas)
    }

    /// Whether anything waits that the link could take now.
    pub(crate) fn has_work(&self, with_stanzas: bool) -> bool {
        let inner = self.lock();
        !inner.verifies.is_empty() || (with_stanzas && !inner.stanzas.is_empty())
    }

    /// Wakes when something is queued.
    pub(crate) fn listen(&self) -> EventListener {
        self.event.listen()
    }

    /// No more items are taken; what waits is handed back.
    pub(crate) fn close_and_take(&self) -> (Vec<VerifyRequest>, Vec<Element>) {
        let mut inner = self.lock();
        inner.closed = true;
        inner.bytes = 0;
        (
            inner.verifies.drain(..).collect(),
            inner.stanzas.drain(..).collect(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(body: &str) -> Element {
        Element::new(xmpp_core::ns::CLIENT, "message")
            .with_attr("to", "bob@remote.example")
            .with_child(Element::new(xmpp_core::ns::CLIENT, "body").with_text(body))
    }

    #[test]
    fn stanzas_beyond_the_byte_limit_come_back() {
        let one = message("hello").approx_size();
        let q = LinkQueue::new(one * 2, 4);
        assert!(q.offer(message("hello")).is_ok());
        assert!(q.offer(message("hello")).is_ok());
        assert!(q.offer(message("hello")).is_err(), "over the limit");
        let (_, stanzas) = q.take(true);
        assert_eq!(stanzas.len(), 2);
        assert!(q.offer(message("hello")).is_ok(), "room again once taken");
        let (_, left) = q.close_and_take();
        assert_eq!(left.len(), 1);
        assert!(q.offer(message("hello")).is_err(), "closed");
    }

    #[test]
    fn stanzas_wait_until_the_link_can_send() {
        let q = LinkQueue::new(1 << 20, 4);
        assert!(q.offer(message("x")).is_ok());
        assert!(!q.has_work(false));
        assert!(q.take(false).1.is_empty());
        assert!(q.has_work(true));
        assert_eq!(q.take(true).1.len(), 1);
    }
}
