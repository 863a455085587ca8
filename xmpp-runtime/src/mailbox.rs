//! A connection's inbox: what hub partitions (and shutdown) send it.
//!
//! A mutex-protected Vec the connection takes whole, plus an event to wake
//! it. Unlike a channel it holds no allocation while empty, which matters
//! when tens of thousands of sessions sit idle, and the receiver drains a
//! burst in one go.
//!
//! Stanzas waiting are bounded in bytes, never by blocking the sender: a
//! hub partition must not wait on one slow connection (every account of
//! the partition would stall, and partitions routing to each other could
//! deadlock). A stanza that does not fit is refused and the mailbox stays
//! *overflowed*: the partition ends the session in its hub and reroutes
//! what waits (to the account's other resources or offline storage), and
//! the connection, woken even in the middle of a write, ends its stream
//! with `resource-constraint`.

use event_listener::Event;
use std::sync::{Mutex, MutexGuard};
use xmpp_core::stream::{StreamErrorCondition, SuspendedSession};
use xmpp_core::Element;

/// A message to a connection task.
#[derive(Debug)]
pub(crate) enum ConnMsg {
    /// Write this stanza to the client. Boxed so each connection's queue
    /// slots stay pointer-sized (queues allocate slots in blocks).
    Deliver(Box<xmpp_core::Element>),
    /// Close the stream (with an error condition, or gracefully).
    Close(Option<StreamErrorCondition>),
    /// Another connection resumes this session (XEP-0198): give it up.
    Release(smol::channel::Sender<Released>),
    /// The hub let go of this connection's session (its answer to
    /// `HubMsg::Closed`, `HubOutput::Released`): nothing is delivered
    /// after this, so what came before can be rerouted.
    Drained,
    /// The hub delivered a page of offline messages (the `Deliver`s before
    /// this): tell it, through `HubMsg::PageDelivered`, once the client has
    /// them (`ServerStream::mark_page`).
    PageMark,
    /// XEP-0198: the connection's fence `seq` is back; everything its
    /// session sent before it is durable (`ServerStream::fence_done`).
    FenceDone(u64),
    /// The hub knows the session hibernates (`HubOutput::HibernationNoted`):
    /// stanzas after this need no report.
    HibernationNoted,
}

/// What the connection holding a resumable session gives up to the one
/// resuming it (XEP-0198, `resumption.rs`).
#[derive(Debug)]
pub(crate) struct Released {
    pub(crate) session: SuspendedSession,
    pub(crate) partition: usize,
}

#[derive(Debug, Default)]
struct Inner {
    queue: Vec<ConnMsg>,
    closed: bool,
    /// `Release` requests in `queue` (so waiting for one scans nothing).
    releases: usize,
    /// `Element::approx_size` of the stanzas in `queue`.
    bytes: usize,
    /// A stanza was refused for want of room: the session is over.
    overflowed: bool,
}

/// Why a stanza was not queued; it comes back for rerouting.
#[derive(Debug)]
pub(crate) enum Refused {
    /// The connection is gone.
    Closed(Box<Element>),
    /// The mailbox is over its byte limit (now or earlier).
    Full(Box<Element>),
}

/// One connection's inbox.
#[derive(Debug)]
pub(crate) struct Mailbox {
    inner: Mutex<Inner>,
    event: Event,
    /// Most bytes of stanzas waiting.
    limit: usize,
}

impl Default for Mailbox {
    fn default() -> Self {
        Mailbox::with_limit(usize::MAX)
    }
}

fn size(msg: &ConnMsg) -> usize {
    match msg {
        ConnMsg::Deliver(el) => el.approx_size(),
        _ => 0,
    }
}

impl Mailbox {
    /// A mailbox holding at most `limit` bytes of stanzas.
    pub(crate) fn with_limit(limit: usize) -> Self {
        Mailbox {
            inner: Mutex::default(),
            event: Event::new(),
            limit,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // Pushing and taking cannot leave the queue inconsistent.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queue a message; false once the connection is gone.
    pub(crate) fn send(&self, msg: ConnMsg) -> bool {
        self.offer(msg).is_ok()
    }

    /// Queue a message, or hand it back once the connection is gone (so
    /// the caller can route it elsewhere). A stanza goes through
    /// [`Mailbox::deliver`], under the byte limit.
    pub(crate) fn offer(&self, msg: ConnMsg) -> Result<(), ConnMsg> {
        let msg = match msg {
            ConnMsg::Deliver(el) => {
                return self.deliver(el).map_err(|r| match r {
                    Refused::Closed(el) | Refused::Full(el) => ConnMsg::Deliver(el),
                })
            }
            other => other,
        };
        let mut inner = self.lock();
        if inner.closed {
            return Err(msg);
        }
        if matches!(msg, ConnMsg::Release(_)) {
            inner.releases += 1;
        }
        inner.queue.push(msg);
        drop(inner);
        self.event.notify(1);
        Ok(())
    }

    /// Queue a stanza unless the connection is gone or the mailbox is full
    /// (which it stays from then on).
    pub(crate) fn deliver(&self, stanza: Box<Element>) -> Result<(), Refused> {
        let len = stanza.approx_size();
        let mut inner = self.lock();
        if inner.closed {
            return Err(Refused::Closed(stanza));
        }
        let total = inner.bytes.saturating_add(len);
        if inner.overflowed || total > self.limit {
            let first = !inner.overflowed;
            inner.overflowed = true;
            drop(inner);
            if first {
                tracing::info!(
                    queued = total - len,
                    limit = self.limit,
                    "mailbox over its byte limit; the session ends"
                );
                self.event.notify(usize::MAX);
            }
            return Err(Refused::Full(stanza));
        }
        inner.bytes = total;
        inner.queue.push(ConnMsg::Deliver(stanza));
        drop(inner);
        self.event.notify(1);
        Ok(())
    }

    /// True once a stanza was refused for want of room.
    pub(crate) fn overflowed(&self) -> bool {
        self.lock().overflowed
    }

    /// Take the stanzas waiting, oldest first, leaving any other message:
    /// an overflowed session's partition reroutes them before the stanzas
    /// it was refused, so they keep their order.
    pub(crate) fn take_stanzas(&self) -> Vec<Element> {
        let mut inner = self.lock();
        inner.bytes = 0;
        let (stanzas, rest): (Vec<ConnMsg>, Vec<ConnMsg>) = std::mem::take(&mut inner.queue)
            .into_iter()
            .partition(|m| matches!(m, ConnMsg::Deliver(_)));
        inner.queue = rest;
        stanzas
            .into_iter()
            .filter_map(|m| match m {
                ConnMsg::Deliver(el) => Some(*el),
                _ => None,
            })
            .collect()
    }

    /// The connection ended: refuse further messages.
    pub(crate) fn close(&self) {
        self.lock().closed = true;
        self.event.notify(usize::MAX);
    }

    /// Put messages back in front of any that arrived since (a connection
    /// handing its session over passes on what it did not process).
    pub(crate) fn requeue_front(&self, mut msgs: Vec<ConnMsg>) {
        if msgs.is_empty() {
            return;
        }
        let mut inner = self.lock();
        inner.releases += msgs
            .iter()
            .filter(|m| matches!(m, ConnMsg::Release(_)))
            .count();
        // Back under the limit's count, never refused: they were admitted.
        let back: usize = msgs.iter().map(size).sum();
        inner.bytes = inner.bytes.saturating_add(back);
        msgs.append(&mut inner.queue);
        inner.queue = msgs;
        drop(inner);
        self.event.notify(1);
    }

    /// Close, returning what was queued and never taken.
    pub(crate) fn close_and_take(&self) -> Vec<ConnMsg> {
        let mut inner = self.lock();
        inner.closed = true;
        inner.releases = 0;
        inner.bytes = 0;
        let left = std::mem::take(&mut inner.queue);
        drop(inner);
        self.event.notify(usize::MAX);
        left
    }

    /// Wait for messages and take them all, oldest first.
    pub(crate) async fn recv_all(&self) -> Vec<ConnMsg> {
        loop {
            let listener = {
                let mut inner = self.lock();
                if !inner.queue.is_empty() {
                    inner.releases = 0;
                    inner.bytes = 0;
                    return std::mem::take(&mut inner.queue);
                }
                self.event.listen()
            };
            listener.await;
        }
    }

    /// Wait until another connection asks for this one's session (a
    /// `Release` is queued) or the mailbox overflowed, leaving the queue as
    /// it is: a connection blocked writing to a half-open socket (or to a
    /// client that stopped reading) gives up the write for either.
    pub(crate) async fn release_requested(&self) {
        loop {
            let listener = {
                let inner = self.lock();
                if inner.releases > 0 || inner.overflowed {
                    return;
                }
                self.event.listen()
            };
            listener.await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use smol::future::FutureExt;
    use std::time::Duration;

    fn deliver(id: &str) -> ConnMsg {
        ConnMsg::Deliver(Box::new(
            xmpp_core::Element::new("jabber:client", "message").with_attr("id", id),
        ))
    }

    fn id(m: &ConnMsg) -> Option<&str> {
        match m {
            ConnMsg::Deliver(el) => el.attr("id"),
            _ => None,
        }
    }

    /// True when `release_requested` resolves without waiting.
    fn release_pending(m: &Mailbox) -> bool {
        smol::block_on(
            async {
                m.release_requested().await;
                true
            }
            .or(async {
                smol::Timer::after(Duration::from_millis(20)).await;
                false
            }),
        )
    }

    #[test]
    fn a_queued_release_is_noticed_until_taken_or_requeued() {
        let m = Mailbox::default();
        m.send(deliver("1"));
        assert!(!release_pending(&m));
        let (tx, _rx) = smol::channel::bounded(1);
        m.send(ConnMsg::Release(tx));
        assert!(release_pending(&m), "a writer must give way");
        let taken = smol::block_on(m.recv_all());
        assert_eq!(taken.len(), 2);
        assert!(!release_pending(&m), "taken: handled by the owner");
        // Handed on to the session's next owner, still in front.
        m.send(deliver("3"));
        m.requeue_front(taken.into_iter().skip(1).collect());
        assert!(release_pending(&m));
        let again = smol::block_on(m.recv_all());
        assert!(matches!(again[0], ConnMsg::Release(_)));
        assert_eq!(id(&again[1]), Some("3"));
    }

    #[test]
    fn over_its_byte_limit_the_mailbox_refuses_stanzas_from_then_on() {
        let one = deliver("1");
        let len = size(&one);
        let m = Mailbox::with_limit(2 * len);
        assert!(m.offer(one).is_ok());
        assert!(m.offer(deliver("2")).is_ok());
        assert!(!m.overflowed());
        assert!(!release_pending(&m));
        let refused = m.deliver(Box::new(xmpp_core::Element::new(
            "jabber:client",
            "message",
        )));
        assert!(matches!(refused, Err(Refused::Full(_))));
        assert!(m.overflowed());
        assert!(release_pending(&m), "a blocked write must give way");
        // Even a small stanza is refused now: the session is over.
        let tiny = xmpp_core::Element::new("x", "m");
        assert!(matches!(m.deliver(Box::new(tiny)), Err(Refused::Full(_))));
        // Control messages still get through, and the stanzas that fit
        // come out in order for rerouting.
        assert!(m.send(ConnMsg::Drained));
        let taken = m.take_stanzas();
        let ids: Vec<_> = taken.iter().map(|e| e.attr("id")).collect();
        assert_eq!(ids, [Some("1"), Some("2")]);
        let rest = smol::block_on(m.recv_all());
        assert!(matches!(rest[..], [ConnMsg::Drained]));
    }

    #[test]
    fn taking_frees_room() {
        let one = deliver("1");
        let m = Mailbox::with_limit(size(&one));
        assert!(m.offer(one).is_ok());
        assert_eq!(smol::block_on(m.recv_all()).len(), 1);
        assert!(m.offer(deliver("2")).is_ok(), "room again once taken");
        assert!(!m.overflowed());
    }

    #[test]
    fn closing_drops_a_queued_release_so_its_resumer_hears_at_once() {
        let m = Mailbox::default();
        let (tx, rx) = smol::channel::bounded::<Released>(1);
        m.send(deliver("1"));
        m.send(ConnMsg::Release(tx));
        let left = m.close_and_take();
        assert_eq!(id(&left[0]), Some("1"));
        drop(left);
        assert!(smol::block_on(rx.recv()).is_err());
        assert!(!m.send(deliver("2")), "closed");
        assert!(!release_pending(&m));
    }
}
