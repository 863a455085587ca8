//! The way to the hub partitions: which partition owns a JID, the messages
//! a partition takes ([`HubMsg`]), the byte budget of each partition's
//! queue (`credit.rs`), the count of hub work not finished yet (what
//! shutdown waits for), and the connected external components and
//! federation, which get the stanzas for their domains straight from here.

use crate::credit::Credit;
use crate::mailbox::{ConnMsg, Mailbox};
use smol::channel::{Receiver, Sender};
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock, RwLock};
use std::time::Duration;
use xmpp_core::hub::{ConnId, Notice};
use xmpp_core::jid::Jid;
use xmpp_core::storage::{RequestId, StorageResult};
use xmpp_core::wiring::{Destination, Partitions};
use xmpp_core::Element;

/// Input to a hub partition.
#[derive(Debug)]
pub(crate) enum HubMsg {
    Bound {
        conn: ConnId,
        jid: Jid,
        mailbox: Arc<Mailbox>,
    },
    Closed(ConnId),
    /// The session's connection broke; it waits to be resumed (XEP-0198),
    /// with these messages unacknowledged.
    Hibernated(ConnId, Vec<Element>),
    /// A hibernated session continues on a new connection.
    Resumed(ConnId),
    /// The client has the page of offline messages last sent to it.
    PageDelivered(ConnId),
    /// An unacknowledged message of a session that ended (XEP-0198).
    Redeliver(Element),
    /// A stanza from a session, with the bytes of partition credit its
    /// connection took for it (returned once processed).
    FromSession(ConnId, Element, usize),
    /// A stanza another partition (or this one) routed here, with the
    /// credit charged for it when a client's stanza caused it: returned
    /// once it is handled (`credit.rs`).
    Routed(Element, Option<Charge>),
    /// A stanza from a peer that is not a session (an external component),
    /// with the bytes of partition credit its connection took for it: a
    /// component serves a whole domain and writes as fast as it likes, so
    /// it draws on the same budget as clients.
    FromPeer(Element, usize),
    /// The results of one storage batch (group commit), in request order:
    /// one message rather than one per request, so a burst of archive
    /// writes wakes the partition once.
    Storage(Vec<(RequestId, StorageResult)>),
    Notice(Notice),
    Kick(String),
    Shutdown,
    /// XEP-0198: a connection's durability fence, behind its stanzas
    /// (see `fences.rs`); answered with `ConnMsg::FenceDone(seq)`.
    Fence {
        conn: ConnId,
        seq: u64,
    },
    /// Partition `from` routed stanzas here before its fence `join` left
    /// its hub: report `FenceDone(join)` once they are durable here.
    RemoteFence {
        from: usize,
        join: u64,
    },
    /// A branch of this partition's fence `join` is back.
    FenceDone(u64),
}

/// Where stanzas for other servers go (federation, `crate::federation`):
/// a trait so that the router, a leaf, does not depend on the tasks.
pub(crate) trait RemoteRoute: Send + Sync {
    /// Take a stanza for a domain this server does not host.
    fn send(&self, stanza: Element);
}

/// Bytes charged to a partition's budget for a routed stanza that a
/// client's stanza caused (`credit.rs`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Charge {
    /// The partition whose budget the client drew on.
    pub(crate) partition: usize,
    pub(crate) bytes: usize,
}

/// A connected external component (XEP-0114).
struct Component {
    conn: ConnId,
    mailbox: Arc<Mailbox>,
}

/// Finds the partition that owns a JID and sends it work; stanzas for a
/// connected component go straight to its connection.
pub(crate) struct Router {
    parts: Vec<Sender<HubMsg>>,
    /// Per partition: bytes of client stanzas queued (`credit.rs`).
    credits: Vec<Credit>,
    /// Which partition owns what, and the configured component domains
    /// (only stanzas for these look at `components`, so user traffic takes
    /// no lock): the rule `sim::World` drives too.
    partitions: Partitions,
    /// Connected components by domain.
    components: RwLock<HashMap<String, Component>>,
    /// Federation, once started: stanzas for domains we do not host go
    /// there (`Destination::Remote`).
    federation: OnceLock<Box<dyn RemoteRoute>>,
    /// Hub work not finished yet: messages queued for or being processed by
    /// a partition, and storage requests awaiting their result. Counted up
    /// before the work that causes it is counted down, so zero means quiet
    /// (what shutdown waits for: a queue can be empty while the account a
    /// message needs is still loading). Relaxed suffices: one counter, and
    /// each increment is sequenced before the decrement of its cause.
    work: AtomicUsize,
}

impl Router {
    pub(crate) fn new(
        n: usize,
        component_domains: HashSet<String>,
        queue_bytes: usize,
    ) -> (Router, Vec<Receiver<HubMsg>>) {
        let (parts, rxs) = (0..n).map(|_| smol::channel::unbounded()).unzip();
        let router = Router {
            parts,
            credits: (0..n).map(|_| Credit::new(queue_bytes)).collect(),
            partitions: Partitions::new(n, component_domains),
            components: RwLock::new(HashMap::new()),
            federation: OnceLock::new(),
            work: AtomicUsize::new(0),
        };
        (router, rxs)
    }

    /// Federation on: stanzas for a domain outside `hosted` leave over s2s
    /// once [`federate`](Self::federate) is called (until then, and if
    /// federation cannot take one, their partition bounces them).
    pub(crate) fn with_federation(mut self, hosted: Vec<String>) -> Self {
        self.partitions = self.partitions.with_federation(hosted);
        self
    }

    /// Hand remote stanzas to `federation` from now on.
    pub(crate) fn federate(&self, federation: Box<dyn RemoteRoute>) {
        let _ = self.federation.set(federation);
    }

    /// Make `conn` the component serving `domain`; false when another
    /// connection already does (XEP-0114: `<conflict/>`).
    pub(crate) fn claim_component(
        &self,
        domain: &str,
        conn: ConnId,
        mailbox: Arc<Mailbox>,
    ) -> bool {
        let mut map = self.components.write().unwrap_or_else(|e| e.into_inner());
        if map.contains_key(domain) {
            return false;
        }
        map.insert(domain.to_owned(), Component { conn, mailbox });
        true
    }

    /// `conn` no longer serves `domain` (if it did).
    pub(crate) fn release_component(&self, domain: &str, conn: ConnId) {
        let mut map = self.components.write().unwrap_or_else(|e| e.into_inner());
        if map.get(domain).is_some_and(|c| c.conn == conn) {
            map.remove(domain);
        }
    }

    /// The partition of a bare JID (or domain) string.
    pub(crate) fn partition(&self, bare: &str) -> usize {
        self.partitions.of(bare)
    }

    pub(crate) fn send(&self, partition: usize, msg: HubMsg) {
        self.queue(partition, msg);
    }

    /// Queue `msg` for `partition`; false when it is gone (shutdown).
    fn queue(&self, partition: usize, msg: HubMsg) -> bool {
        let Some(p) = self.parts.get(partition) else {
            return false;
        };
        self.work.fetch_add(1, Ordering::Relaxed);
        if p.try_send(msg).is_err() {
            self.work.fetch_sub(1, Ordering::Relaxed);
            tracing::warn!(partition, "hub partition gone; message dropped");
            return false;
        }
        true
    }

    /// Hand a session's stanza to its partition once the partition has
    /// room for it: the only send that waits, and only connection tasks
    /// call it (see `credit.rs` for why this cannot deadlock).
    pub(crate) async fn hand_over(&self, partition: usize, conn: ConnId, stanza: Element) {
        let Some(credit) = self.credits.get(partition) else {
            return;
        };
        let n = stanza.approx_size();
        credit.acquire(n).await;
        self.send(partition, HubMsg::FromSession(conn, stanza, n));
    }

    /// The byte budget of `partition`'s queue.
    pub(crate) fn queue_bytes(&self, partition: usize) -> usize {
        self.credits.get(partition).map_or(0, Credit::limit)
    }

    /// Every partition's byte budget, changed by a configuration reload;
    /// the old one.
    pub(crate) fn set_queue_bytes(&self, bytes: usize) -> usize {
        let old = self.queue_bytes(0);
        for credit in &self.credits {
            credit.set_limit(bytes);
        }
        old
    }

    /// A partition processed a session's stanza of `n` bytes.
    pub(crate) fn returned(&self, partition: usize, n: usize) {
        if let Some(credit) = self.credits.get(partition) {
            credit.release(n);
        }
    }

    /// A partition handled a routed stanza: return what was charged for it.
    pub(crate) fn settle(&self, charge: Option<Charge>) {
        if let Some(c) = charge {
            self.returned(c.partition, c.bytes);
        }
    }

    /// Whether the budget `charge` was drawn on is crowded: a stanza that
    /// would fan out more waits (`credit.rs`, `held.rs`).
    pub(crate) fn crowded(&self, charge: Option<Charge>) -> bool {
        charge
            .and_then(|c| self.credits.get(c.partition))
            .is_some_and(Credit::crowded)
    }

    /// Whether `partition`'s budget is crowded.
    pub(crate) fn partition_crowded(&self, partition: usize) -> bool {
        self.credits.get(partition).is_some_and(Credit::crowded)
    }

    /// A stanza charged with `charge` is held.
    pub(crate) fn hold(&self, charge: Option<Charge>) {
        if let Some(c) = charge {
            if let Some(credit) = self.credits.get(c.partition) {
                credit.hold(c.bytes);
            }
        }
    }

    /// A held stanza charged with `charge` goes ahead.
    pub(crate) fn unhold(&self, charge: Option<Charge>) {
        if let Some(c) = charge {
            if let Some(credit) = self.credits.get(c.partition) {
                credit.unhold(c.bytes);
            }
        }
    }

    /// Wakes when `partition`'s budget gets bytes back.
    pub(crate) fn listen(&self, partition: usize) -> Option<event_listener::EventListener> {
        self.credits.get(partition).map(Credit::listen)
    }

    /// Charge `c` as a partition routing a copy would.
    #[cfg(test)]
    pub(crate) fn charge_for_test(&self, c: Charge) {
        if let Some(credit) = self.credits.get(c.partition) {
            credit.charge(c.bytes);
        }
    }

    /// How many partitions there are.
    pub(crate) fn partitions(&self) -> usize {
        self.parts.len()
    }

    /// A partition sent a storage request: work until it is answered.
    pub(crate) fn work_added(&self) {
        self.work.fetch_add(1, Ordering::Relaxed);
    }

    /// One unit of work (a partition message, a storage request) is done.
    pub(crate) fn done(&self) {
        self.work.fetch_sub(1, Ordering::Relaxed);
    }

    /// Route a stanza: to its component's connection when its `to` is a
    /// connected component's domain, else to the partition owning its `to`
    /// (which also answers for components that are away).
    pub(crate) fn route(&self, stanza: Element) {
        self.route_to(stanza);
    }

    /// [`route`](Self::route), telling which partition got the stanza
    /// (`None`: a component's connection).
    pub(crate) fn route_to(&self, stanza: Element) -> Option<usize> {
        self.route_charged(stanza, None)
    }

    /// [`route_to`](Self::route_to) a stanza caused by a client's stanza
    /// that drew on partition `origin`'s budget: a stanza for a partition
    /// is charged there until that partition has handled it (`credit.rs`).
    /// A component's mailbox is bounded on its own and is not charged.
    pub(crate) fn route_charged(&self, stanza: Element, origin: Option<usize>) -> Option<usize> {
        match self.destination(stanza) {
            Sent::Component | Sent::Remote => None,
            Sent::Partition(p, stanza) => {
                let charge = origin.and_then(|o| {
                    let credit = self.credits.get(o)?;
                    let bytes = stanza.approx_size();
                    credit.charge(bytes);
                    Some(Charge {
                        partition: o,
                        bytes,
                    })
                });
                if !self.queue(p, HubMsg::Routed(stanza, charge)) {
                    self.settle(charge);
                }
                Some(p)
            }
        }
    }

    /// Route a stanza a peer connection (a component) sent: like
    /// [`route`](Self::route), but a stanza for a partition waits for room
    /// in its budget first, as a client's does (see `credit.rs`). Only
    /// connection tasks call it.
    pub(crate) async fn route_from_peer(&self, stanza: Element) {
        let Sent::Partition(p, stanza) = self.destination(stanza) else {
            return;
        };
        let Some(credit) = self.credits.get(p) else {
            return;
        };
        let n = stanza.approx_size();
        credit.acquire(n).await;
        self.send(p, HubMsg::FromPeer(stanza, n));
    }

    /// Hand the stanza to its component if it has one that is connected,
    /// else name the partition owning its `to`.
    fn destination(&self, stanza: Element) -> Sent {
        match self.partitions.destination(stanza.attr("to")) {
            Destination::Component { domain, partition } => {
                match self.to_component(&domain, stanza) {
                    Ok(()) => Sent::Component,
                    Err(stanza) => Sent::Partition(partition, stanza),
                }
            }
            Destination::Partition(p) => Sent::Partition(p, stanza),
            Destination::Remote { partition, .. } => match self.federation.get() {
                Some(federation) => {
                    federation.send(stanza);
                    Sent::Remote
                }
                None => Sent::Partition(partition, stanza),
            },
        }
    }

    /// Hand a stanza to the component serving `domain`; back when there is
    /// none (or it just went away).
    fn to_component(&self, domain: &str, stanza: Element) -> Result<(), Element> {
        let map = self.components.read().unwrap_or_else(|e| e.into_inner());
        let Some(c) = map.get(domain) else {
            return Err(stanza);
        };
        match c.mailbox.offer(ConnMsg::Deliver(Box::new(stanza))) {
            Ok(()) => Ok(()),
            Err(ConnMsg::Deliver(s)) => Err(*s),
            Err(
                ConnMsg::Close(_)
                | ConnMsg::Release(_)
                | ConnMsg::Drained
                | ConnMsg::PageMark
                | ConnMsg::FenceDone(_)
                | ConnMsg::HibernationNoted,
            ) => Ok(()),
        }
    }

    pub(crate) fn broadcast(&self, msg: impl Fn() -> HubMsg) {
        for i in 0..self.parts.len() {
            self.send(i, msg());
        }
    }

    /// Wait (bounded) until the hub is quiet: every message processed and
    /// every storage request answered, including those caused by others.
    pub(crate) fn drain(&self, max: Duration) {
        let deadline = std::time::Instant::now() + max;
        while self.work.load(Ordering::Relaxed) > 0 && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

/// Where [`Router::destination`] sent a stanza.
enum Sent {
    /// Into a connected component's mailbox.
    Component,
    /// To federation, for another server.
    Remote,
    /// To this partition (not sent yet).
    Partition(usize, Element),
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(to: &str) -> Element {
        let mut el = Element::new(xmpp_core::ns::CLIENT, "message");
        el.set_attr("to", to);
        el.set_attr("type", "groupchat");
        el
    }

    /// A stanza routed while handling a client's stanza holds the client's
    /// budget until the partition it went to has handled it.
    #[test]
    fn a_charged_route_holds_the_origin_budget_until_settled() {
        let (router, rxs) = Router::new(2, HashSet::new(), 1);
        let stanza = message("u1@localhost/r");
        let bytes = stanza.approx_size();
        let p = router.route_charged(stanza, Some(0));
        let Some(p) = p else {
            panic!("routed to a partition");
        };
        let Ok(HubMsg::Routed(_, charge)) = rxs[p].try_recv() else {
            panic!("a routed stanza");
        };
        assert_eq!(
            charge,
            Some(Charge {
                partition: 0,
                bytes
            })
        );
        assert_eq!(router.credits[0].used(), bytes, "charged to the origin");
        assert_eq!(router.credits[1].used(), 0);
        router.settle(charge);
        assert_eq!(router.credits[0].used(), 0, "returned once handled");
    }

    /// What a partition routes on its own (timers, session ends) is not
    /// charged to anyone.
    #[test]
    fn an_uncharged_route_takes_no_budget() {
        let (router, rxs) = Router::new(1, HashSet::new(), 1);
        router.route(message("u1@localhost"));
        let Ok(HubMsg::Routed(_, charge)) = rxs[0].try_recv() else {
            panic!("a routed stanza");
        };
        assert_eq!(charge, None);
        assert_eq!(router.credits[0].used(), 0);
    }
}
