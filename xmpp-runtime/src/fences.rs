//! XEP-0198 durability fences across hub partitions.
//!
//! A connection acknowledges its stanzas only once their effects are
//! durable. Its fence follows the stanzas' FIFO path: the connection puts
//! it on its own partition's queue behind them (`HubMsg::Fence`); that hub
//! returns it once it has processed them and their storage is answered
//! (`Hub::fence`). By then the stanzas it routed are queued at their
//! recipients' partitions, so the fence goes on to every partition this
//! one routed to since its previous fence (`HubMsg::RemoteFence`), each of
//! which returns it through its own hub the same way and reports back
//! (`HubMsg::FenceDone`). When every branch is back the connection hears
//! `ConnMsg::FenceDone`.
//!
//! Two things keep this exact while staying cheap. Fences of one partition
//! complete in the order they left its hub, so a fence that skipped a
//! partition (nothing routed there since the previous fence) still waits
//! for the previous fence's branch there. And branches go one hop only:
//! effects of what the recipients route further (an error bounced to the
//! sender, an automatic subscription answer) are not the sender's promise.

use std::collections::{HashMap, VecDeque};
use xmpp_core::hub::{ConnId, Fence};
use xmpp_core::spare::ReleaseSpare;

/// Whose fence a hub token is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Origin {
    /// A connection of this partition; its number for the fence.
    Conn { conn: ConnId, seq: u64 },
    /// Another partition's fence, reported back to it as `join`.
    Remote { partition: usize, join: u64 },
}

/// A local fence that left the hub, waiting for its branches.
#[derive(Debug)]
struct Join {
    token: u64,
    conn: ConnId,
    seq: u64,
    remaining: usize,
}

/// What the partition must do after a fence came out of its hub.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Returned {
    /// Send `HubMsg::RemoteFence { from: this, join }` to these partitions.
    pub(crate) branches: Vec<usize>,
    /// The join number for the branches.
    pub(crate) join: u64,
    /// Report `HubMsg::FenceDone(join)` to this partition.
    pub(crate) report: Option<(usize, u64)>,
    /// Connections whose fence is complete: `ConnMsg::FenceDone(seq)`.
    pub(crate) complete: Vec<(ConnId, u64)>,
}

/// One partition's fences.
#[derive(Debug)]
pub(crate) struct Fences {
    next_token: u64,
    origins: HashMap<u64, Origin>,
    /// Partitions this one routed to since its last local fence left the hub.
    routed: Vec<bool>,
    joins: VecDeque<Join>,
}

impl Fences {
    pub(crate) fn new(partitions: usize) -> Self {
        Fences {
            next_token: 0,
            origins: HashMap::new(),
            routed: vec![false; partitions],
            joins: VecDeque::new(),
        }
    }

    fn token(&mut self, origin: Origin) -> Fence {
        let token = self.next_token;
        self.next_token = self.next_token.wrapping_add(1);
        self.origins.insert(token, origin);
        Fence(token)
    }

    /// A connection's fence, for this partition's hub.
    pub(crate) fn local(&mut self, conn: ConnId, seq: u64) -> Fence {
        self.token(Origin::Conn { conn, seq })
    }

    /// Another partition's fence branch, for this partition's hub.
    pub(crate) fn remote(&mut self, partition: usize, join: u64) -> Fence {
        self.token(Origin::Remote { partition, join })
    }

    /// The hub routed a stanza to `partition`.
    pub(crate) fn routed_to(&mut self, partition: usize) {
        if let Some(r) = self.routed.get_mut(partition) {
            *r = true;
        }
    }

    /// The hub returned `fence`: everything before it here is durable.
    pub(crate) fn returned(&mut self, fence: Fence) -> Returned {
        let mut out = Returned::default();
        let origin = self.origins.remove(&fence.0);
        self.origins.release_spare();
        match origin {
            None => {}
            Some(Origin::Remote { partition, join }) => out.report = Some((partition, join)),
            Some(Origin::Conn { conn, seq }) => {
                for (p, r) in self.routed.iter_mut().enumerate() {
                    if std::mem::take(r) {
                        out.branches.push(p);
                    }
                }
                out.join = fence.0;
                self.joins.push_back(Join {
                    token: fence.0,
                    conn,
                    seq,
                    remaining: out.branches.len(),
                });
                out.complete = self.complete();
            }
        }
        out
    }

    /// A branch of local fence `join` is back.
    pub(crate) fn branch_done(&mut self, join: u64) -> Vec<(ConnId, u64)> {
        if let Some(j) = self.joins.iter_mut().find(|j| j.token == join) {
            j.remaining = j.remaining.saturating_sub(1);
        }
        self.complete()
    }

    /// Local fences complete in the order they left the hub.
    fn complete(&mut self) -> Vec<(ConnId, u64)> {
        let mut done = Vec::new();
        while self.joins.front().is_some_and(|j| j.remaining == 0) {
            if let Some(j) = self.joins.pop_front() {
                done.push((j.conn, j.seq));
            }
        }
        done
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fence_waits_for_every_partition_routed_to() {
        let mut f = Fences::new(4);
        f.routed_to(2);
        f.routed_to(3);
        f.routed_to(2);
        let fence = f.local(7, 1);
        let r = f.returned(fence);
        assert_eq!(r.branches, vec![2, 3]);
        assert!(r.complete.is_empty());
        assert!(f.branch_done(r.join).is_empty());
        assert_eq!(f.branch_done(r.join), vec![(7, 1)]);
    }

    #[test]
    fn a_later_fence_waits_for_an_earlier_ones_branches() {
        let mut f = Fences::new(2);
        f.routed_to(1);
        let first = f.local(7, 1);
        let r1 = f.returned(first);
        assert_eq!(r1.branches, vec![1]);
        // Nothing routed since: no branch of its own, but partition 1 may
        // still hold what the first fence covers there.
        let second = f.local(8, 1);
        let r2 = f.returned(second);
        assert!(r2.branches.is_empty());
        assert!(r2.complete.is_empty(), "completes after the first");
        assert_eq!(f.branch_done(r1.join), vec![(7, 1), (8, 1)]);
    }

    #[test]
    fn a_remote_branch_is_reported_back() {
        let mut f = Fences::new(2);
        let fence = f.remote(0, 42);
        let r = f.returned(fence);
        assert_eq!(r.report, Some((0, 42)));
        assert!(r.branches.is_empty() && r.complete.is_empty());
        // Unknown tokens change nothing.
        assert_eq!(f.returned(Fence(999)), Returned::default());
    }
}
