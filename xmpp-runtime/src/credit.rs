//! Back-pressure from a hub partition to the connections feeding it.
//!
//! A partition's channel is unbounded because partitions, storage threads
//! and session ends must never wait to send to it: a partition that waited
//! on another could deadlock (A routes to B while B routes to A), and one
//! that waited on anything at all would stall every account it owns. What
//! must be bounded is what *clients* put there faster than the partition
//! processes it. So each partition has a byte budget that only connection
//! tasks draw on: a connection waits for room before handing a stanza over
//! (and meanwhile reads nothing more from its socket, which pushes back on
//! the client through TCP), and the partition returns the bytes once it
//! has processed the stanza. No cycle can form: the partition, the only
//! one who returns credit, never waits for a connection (it delivers to a
//! mailbox that refuses rather than blocks).
//!
//! A stanza's cost is not only its own bytes: a groupchat message of 200
//! bytes to a room of 1,000 becomes 1,000 routed copies, and returning its
//! credit once the first partition processed it let 1,000 senders with 2
//! messages in flight queue 2,000,000 copies (over a gigabyte) in the
//! partitions' channels. So what a client's stanza causes is charged too:
//! every stanza a partition routes to another partition while handling
//! it is [`Credit::charge`]d, without waiting, to the budget the client
//! drew on, travels with the routed stanza (`router::Charge`), and is
//! returned by the partition that handles it, after charging in turn what
//! *that* caused. The budget thus covers a client's whole fan-out until it
//! reaches the mailboxes (bounded on their own), and still only
//! connections wait: partitions charge and return, never acquire.
//!
//! Charging at fan-out still let a budget's worth of small messages in
//! before the first of them fanned out: 2,000 messages of 300 bytes to a
//! room of 1,000 are 600 KB admitted and 2,000,000 copies (1.5 GB of
//! elements) once the room's partition gets to them. So a partition does
//! not fan out for a budget that is already spent: a stanza for a service
//! (a room, a pubsub node) whose charge's budget is over its limit is
//! *held* (`held.rs`) until the copies already charged there have been
//! delivered. Held bytes are [`Credit::hold`]-counted apart, so a budget
//! spent on held stanzas alone never counts as crowded: what a held
//! stanza waits for is copies in flight, which partitions always process.

use event_listener::Event;
use std::sync::atomic::{AtomicUsize, Ordering};

/// One partition's budget of bytes in flight from connections.
#[derive(Debug)]
pub(crate) struct Credit {
    used: AtomicUsize,
    /// Of `used`: bytes of stanzas held until the budget has room
    /// ([`Credit::crowded`]).
    held: AtomicUsize,
    /// Changed by a configuration reload.
    limit: AtomicUsize,
    freed: Event,
}

impl Credit {
    pub(crate) fn new(limit: usize) -> Self {
        Credit {
            used: AtomicUsize::new(0),
            held: AtomicUsize::new(0),
            limit: AtomicUsize::new(limit),
            freed: Event::new(),
        }
    }

    /// The budget, in bytes.
    pub(crate) fn limit(&self) -> usize {
        self.limit.load(Ordering::Relaxed)
    }

    /// A new budget (configuration reload): a larger one admits waiting
    /// connections at once; a smaller one applies as credit comes back.
    pub(crate) fn set_limit(&self, limit: usize) {
        self.limit.store(limit, Ordering::Relaxed);
        self.freed.notify(usize::MAX);
    }

    /// Take `n` bytes of budget, waiting while the partition is behind.
    /// An empty budget admits anything, so a stanza larger than the whole
    /// budget still gets through (alone).
    pub(crate) async fn acquire(&self, n: usize) {
        loop {
            if self.try_acquire(n) {
                return;
            }
            let listener = self.freed.listen();
            if self.try_acquire(n) {
                return;
            }
            listener.await;
        }
    }

    fn try_acquire(&self, n: usize) -> bool {
        let mut cur = self.used.load(Ordering::Acquire);
        loop {
            if cur != 0 && cur.saturating_add(n) > self.limit() {
                return false;
            }
            match self.used.compare_exchange_weak(
                cur,
                cur.saturating_add(n),
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => return true,
                Err(actual) => cur = actual,
            }
        }
    }

    /// Bytes taken and not returned yet.
    #[cfg(test)]
    pub(crate) fn used(&self) -> usize {
        self.used.load(Ordering::Acquire)
    }

    /// Take `n` bytes of budget at once, past the limit if need be: a
    /// partition charging what a client's stanza caused, which must not
    /// wait. Connections drawing on the budget then wait until it is back.
    pub(crate) fn charge(&self, n: usize) {
        self.used.fetch_add(n, Ordering::AcqRel);
    }

    /// Whether what this budget already paid for, beyond the stanzas held
    /// for it, is over its limit: a stanza that would fan out more waits.
    pub(crate) fn crowded(&self) -> bool {
        let used = self.used.load(Ordering::Acquire);
        let held = self.held.load(Ordering::Acquire);
        used.saturating_sub(held) > self.limit()
    }

    /// `n` charged bytes are held, not fanned out yet.
    pub(crate) fn hold(&self, n: usize) {
        self.held.fetch_add(n, Ordering::AcqRel);
    }

    /// `n` held bytes are processed now.
    pub(crate) fn unhold(&self, n: usize) {
        let before = self.held.fetch_sub(n, Ordering::AcqRel);
        debug_assert!(before >= n, "held bytes released twice");
    }

    /// Wakes when bytes come back ([`Credit::release`]): listen, check
    /// [`Credit::crowded`], then wait.
    pub(crate) fn listen(&self) -> event_listener::EventListener {
        self.freed.listen()
    }

    /// The partition processed `n` bytes taken with [`Credit::acquire`]
    /// or [`Credit::charge`].
    pub(crate) fn release(&self, n: usize) {
        let before = self.used.fetch_sub(n, Ordering::AcqRel);
        debug_assert!(before >= n, "credit released twice");
        self.freed.notify(usize::MAX);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use smol::future::FutureExt;
    use std::time::Duration;

    fn admitted(c: &Credit, n: usize) -> bool {
        smol::block_on(
            async {
                c.acquire(n).await;
                true
            }
            .or(async {
                smol::Timer::after(Duration::from_millis(20)).await;
                false
            }),
        )
    }

    #[test]
    fn a_full_budget_waits_until_bytes_are_returned() {
        let c = Credit::new(100);
        assert!(admitted(&c, 60));
        assert!(admitted(&c, 40));
        assert!(!admitted(&c, 1), "full");
        c.release(60);
        assert!(admitted(&c, 50));
        c.release(40);
        c.release(50);
        // Empty, so even more than the whole budget gets through, alone.
        assert!(admitted(&c, 1000));
        assert!(!admitted(&c, 1));
        c.release(1000);
    }

    #[test]
    fn a_waiting_sender_wakes_when_bytes_are_returned() {
        let c = std::sync::Arc::new(Credit::new(10));
        assert!(admitted(&c, 10));
        let c2 = c.clone();
        let waiter = std::thread::spawn(move || smol::block_on(c2.acquire(5)));
        std::thread::sleep(Duration::from_millis(20));
        c.release(10);
        waiter.join().expect("the waiter finishes");
        assert!(!admitted(&c, 6));
    }

    #[test]
    fn a_charged_fan_out_holds_the_budget_until_it_is_returned() {
        let c = Credit::new(100);
        assert!(admitted(&c, 10));
        // The stanza caused 1,000 bytes of routed copies: charged past the
        // limit, then the stanza itself is processed.
        c.charge(1000);
        c.release(10);
        assert!(!admitted(&c, 1), "the fan-out is still queued");
        // The copies are handled one partition at a time.
        c.release(600);
        assert!(!admitted(&c, 1));
        c.release(400);
        assert!(admitted(&c, 100), "all returned: room again");
        c.release(100);
    }

    #[test]
    fn held_bytes_never_make_a_budget_crowded() {
        let c = Credit::new(100);
        // A hundred small stanzas for a room, all held: nothing fanned out
        // yet, so the first must go ahead (or nothing ever returns).
        c.charge(150);
        c.hold(150);
        assert!(!c.crowded());
        // One goes ahead and fans out 500 bytes of copies.
        c.unhold(10);
        c.charge(500);
        assert!(c.crowded(), "its copies are in flight: the rest waits");
        c.release(10);
        c.release(390);
        assert!(c.crowded());
        c.release(110);
        assert!(!c.crowded(), "copies delivered: the next may fan out");
        c.unhold(140);
        c.release(140);
        assert_eq!(c.used(), 0);
    }
}
