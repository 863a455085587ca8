//! A connection's inbox: what hub partitions (and shutdown) send it.
//!
//! A mutex-protected Vec the connection takes whole, plus an event to wake
//! it. Unlike a channel it holds no allocation while empty, which matters
//! when tens of thousands of sessions sit idle, and the receiver drains a
//! burst in one go.

use crate::server::ConnMsg;
use event_listener::Event;
use std::sync::{Mutex, MutexGuard};

#[derive(Debug, Default)]
struct Inner {
    queue: Vec<ConnMsg>,
    closed: bool,
    /// `Release` requests in `queue` (so waiting for one scans nothing).
    releases: usize,
}

/// One connection's inbox.
#[derive(Debug, Default)]
pub(crate) struct Mailbox {
    inner: Mutex<Inner>,
    event: Event,
}

impl Mailbox {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        // Pushing and taking cannot leave the queue inconsistent.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queue a message; false once the connection is gone.
    pub(crate) fn send(&self, msg: ConnMsg) -> bool {
        self.offer(msg).is_ok()
    }

    /// Queue a message, or hand it back once the connection is gone (so
    /// the caller can route it elsewhere).
    pub(crate) fn offer(&self, msg: ConnMsg) -> Result<(), ConnMsg> {
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
                    return std::mem::take(&mut inner.queue);
                }
                self.event.listen()
            };
            listener.await;
        }
    }

    /// Wait until another connection asks for this one's session (a
    /// `Release` is queued), leaving the queue as it is: a connection
    /// blocked writing to a half-open socket gives up the write for it.
    pub(crate) async fn release_requested(&self) {
        loop {
            let listener = {
                let inner = self.lock();
                if inner.releases > 0 {
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
    fn closing_drops_a_queued_release_so_its_resumer_hears_at_once() {
        let m = Mailbox::default();
        let (tx, rx) = smol::channel::bounded::<crate::resumption::Released>(1);
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
