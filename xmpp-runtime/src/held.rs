//! Stanzas a partition holds back instead of fanning them out while the
//! budget they were charged to is spent (`credit.rs`).
//!
//! A partition also holds them while its own fan-out is unsettled: copies
//! waiting in its hub for a committed write (a room message's copies wait
//! for its archive write, [`Hub::committing_bytes`]), and copies released
//! by storage answers, which are charged to the partition's own budget
//! (nobody else's stanza is being handled then). Without that, with room
//! archives on, 2,000 messages to a room of 1,000 all fanned out into the
//! hub's commit queue before the first write was answered (2.3 GB).
//!
//! Only stanzas for a module's service (a room, a pubsub service) are
//! held: they are what fans out, one stanza becoming a copy per occupant
//! or subscriber. Copies for accounts are never held, since delivering
//! them is what returns the budget a held stanza waits for; so nothing
//! held can wait on something held.
//!
//! Order is kept: once something is held, every later stanza for a
//! service queues behind it, and so do fences and notices from other
//! partitions, which must not overtake a stanza sent before them (a
//! XEP-0198 fence would otherwise report a groupchat message durable
//! before its room had archived it).

use crate::router::{Charge, HubMsg, Router};
use std::collections::VecDeque;
use xmpp_core::hub::Hub;

/// One partition's held messages, oldest first.
#[derive(Debug, Default)]
pub(crate) struct Held {
    queue: VecDeque<HubMsg>,
}

impl Held {
    /// Whether `msg`, just received by partition `own`, must be held (or
    /// wait behind what is).
    pub(crate) fn takes(&self, msg: &HubMsg, hub: &Hub, router: &Router, own: usize) -> bool {
        match msg {
            HubMsg::Routed(stanza, charge) => {
                stanza
                    .attr("to")
                    .is_some_and(|to| hub.is_service_address(to))
                    && (!self.queue.is_empty() || busy(*charge, hub, router, own))
            }
            HubMsg::RemoteFence { .. } | HubMsg::Notice(_) => !self.queue.is_empty(),
            _ => false,
        }
    }

    /// Hold `msg` (one [`Held::takes`] took).
    pub(crate) fn push(&mut self, msg: HubMsg, router: &Router) {
        if let HubMsg::Routed(_, charge) = &msg {
            router.hold(*charge);
        }
        self.queue.push_back(msg);
    }

    /// Whether the oldest held message may go now.
    pub(crate) fn next_ready(&self, hub: &Hub, router: &Router, own: usize) -> bool {
        match self.queue.front() {
            Some(HubMsg::Routed(_, charge)) => !busy(*charge, hub, router, own),
            Some(_) => true,
            None => false,
        }
    }

    /// The oldest held message, once its budget has room.
    pub(crate) fn next(&mut self, hub: &Hub, router: &Router, own: usize) -> Option<HubMsg> {
        if let HubMsg::Routed(_, charge) = self.queue.front()? {
            if busy(*charge, hub, router, own) {
                return None;
            }
            router.unhold(*charge);
        }
        let msg = self.queue.pop_front();
        if self.queue.is_empty() {
            // A burst's worth of slots is not kept for ever.
            self.queue.shrink_to(0);
        }
        msg
    }

    /// The partition whose budget the oldest held message waits for.
    pub(crate) fn waiting_on(&self) -> Option<usize> {
        match self.queue.front()? {
            HubMsg::Routed(_, Some(charge)) => Some(charge.partition),
            _ => None,
        }
    }

    /// Whether anything is held.
    pub(crate) fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    /// How many messages are held.
    pub(crate) fn len(&self) -> usize {
        self.queue.len()
    }
}

/// Whether a stanza charged with `charge` would fan out more than partition
/// `own` should take on now: its budget pays for copies in flight, or the
/// partition's own fan-out (copies in its hub's commit queue, copies released
/// by storage answers) is a budget's worth.
fn busy(charge: Option<Charge>, hub: &Hub, router: &Router, own: usize) -> bool {
    router.crowded(charge)
        || router.partition_crowded(own)
        || hub.committing_bytes() > router.queue_bytes(own)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;
    use xmpp_core::hub::HubConfig;
    use xmpp_core::Element;

    fn message(to: &str) -> Element {
        let mut el = Element::new(xmpp_core::ns::CLIENT, "message");
        el.set_attr("to", to);
        el.set_attr("type", "groupchat");
        el
    }

    fn routed(to: &str, partition: usize) -> HubMsg {
        let stanza = message(to);
        let bytes = stanza.approx_size();
        HubMsg::Routed(stanza, Some(Charge { partition, bytes }))
    }

    /// 1,000 copies of a room's message in flight on partition 0's budget:
    /// the next message to the room waits (and a fence behind it), copies
    /// for accounts do not, and once they are delivered the message goes,
    /// then the fence, in order.
    #[test]
    fn a_room_stanza_waits_while_its_budget_pays_for_copies_in_flight() {
        let hub = Hub::new(std::sync::Arc::new(HubConfig::default()));
        let (router, _rxs) = Router::new(2, HashSet::new(), 1_000);
        // 1,000 copies, charged as the room's partition routes them.
        let copies: Vec<Option<Charge>> = (0..1_000)
            .map(|_| {
                let c = Charge {
                    partition: 0,
                    bytes: 100,
                };
                router.charge_for_test(c);
                Some(c)
            })
            .collect();
        let mut held = Held::default();
        let to_room = routed("room@conference.localhost", 0);
        assert!(held.takes(&to_room, &hub, &router, 1), "budget spent");
        held.push(to_room, &router);
        let fence = HubMsg::RemoteFence { from: 1, join: 7 };
        assert!(
            held.takes(&fence, &hub, &router, 1),
            "a fence keeps its place"
        );
        held.push(fence, &router);
        let copy = routed("u1@localhost/r", 0);
        assert!(
            !held.takes(&copy, &hub, &router, 1),
            "copies are never held"
        );
        let other_room = routed("other@conference.localhost", 1);
        assert!(
            held.takes(&other_room, &hub, &router, 1),
            "queued behind what is held, whatever its budget"
        );
        held.push(other_room, &router);
        assert!(held.next(&hub, &router, 1).is_none());
        assert_eq!(held.waiting_on(), Some(0));
        // The copies are delivered.
        for c in copies {
            router.settle(c);
        }
        assert!(
            matches!(held.next(&hub, &router, 1), Some(HubMsg::Routed(s, _)) if s.attr("to") == Some("room@conference.localhost"))
        );
        assert!(matches!(
            held.next(&hub, &router, 1),
            Some(HubMsg::RemoteFence { join: 7, .. })
        ));
        assert!(matches!(
            held.next(&hub, &router, 1),
            Some(HubMsg::Routed(..))
        ));
        assert!(held.next(&hub, &router, 1).is_none());
        assert_eq!(held.len(), 0);
    }

    /// A budget spent only on held stanzas is not crowded: once every
    /// stanza charged to it has been looked at, the oldest goes (else
    /// nothing would ever return the budget).
    #[test]
    fn stanzas_held_alone_do_not_block_themselves() {
        let hub = Hub::new(std::sync::Arc::new(HubConfig::default()));
        let (router, _rxs) = Router::new(1, HashSet::new(), 100);
        // 50 stanzas to the room in the channel, charged on their way.
        let msgs: Vec<HubMsg> = (0..50)
            .map(|_| routed("room@conference.localhost", 0))
            .collect();
        for msg in &msgs {
            if let HubMsg::Routed(_, Some(c)) = msg {
                router.charge_for_test(*c);
            }
        }
        let mut held = Held::default();
        for msg in msgs {
            assert!(
                held.takes(&msg, &hub, &router, 0),
                "the channel alone is over budget"
            );
            held.push(msg, &router);
        }
        let Some(HubMsg::Routed(_, first)) = held.next(&hub, &router, 0) else {
            panic!("all held: the oldest goes");
        };
        router.settle(first);
        assert_eq!(held.len(), 49);
    }
}
