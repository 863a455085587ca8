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
