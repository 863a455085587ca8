//! Promises the hub makes only once they are durable.
//!
//! Storage answers come back after the group commit that made them durable,
//! so "answered" means "on disk". Two things wait for answers here:
//!
//! - **Committed writes** ([`Hub::commit`]): a write whose outcome clients
//!   are told (a roster item, the blocklist, archive preferences, push
//!   registrations). Every client-visible output after it (`Deliver`,
//!   `Route`, `Close`, `Forward`) is held, in order, until the write is
//!   answered, so an iq `result` or a roster push never announces a change a
//!   crash could still undo. Plain writes ([`Hub::write`]: archive, offline
//!   storage, last activity) hold nothing, so message delivery does not wait
//!   for the archive's flush.
//! - **Fences** ([`Hub::fence`], XEP-0198 acknowledgements): a fence comes
//!   out as [`HubOutput::Fence`] once everything this hub was given before
//!   it has been processed (account loads begun before it have run their
//!   queued work) and every storage request emitted meanwhile is answered.
//!   The driver carries fences between partitions; fences never hold other
//!   outputs.
//!
//! Answers are expected in request order (a partition's storage is FIFO),
//! but one that overtakes another is remembered, not trusted: the watermark
//! only moves over contiguous ids.

use super::{Hub, HubOutput};
use crate::storage::{RequestId, StorageRequest};
use std::collections::{BTreeSet, VecDeque};

/// A durability fence: an opaque token chosen by the driver, handed back
/// as [`HubOutput::Fence`] once everything before it is durable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Fence(pub u64);

/// A fence waiting for loads and answers.
#[derive(Debug)]
struct Waiting {
    fence: Fence,
    /// Account loads begun before the fence (their sequence numbers are
    /// `<= loads_before`) must have run their queued work.
    loads_before: u64,
    /// The last request id emitted once those loads had run: the answer
    /// the fence waits for.
    mark: Option<RequestId>,
}

/// Bookkeeping of answers, held outputs and fences.
#[derive(Debug, Default)]
pub(super) struct Durability {
    /// Every request id up to this one was answered.
    answered: RequestId,
    /// Answers that overtook an earlier one.
    early: BTreeSet<RequestId>,
    /// The latest committed write: visible outputs wait for its answer.
    gate: RequestId,
    /// Visible outputs waiting for `gate`'s answer (mark, output), in order.
    held: VecDeque<(RequestId, HubOutput)>,
    /// [`Element::approx_size`](crate::xml::Element::approx_size) of the
    /// stanzas in `held`: a room's fan-out waiting for its archive write
    /// is memory the driver must count ([`Hub::committing_bytes`]).
    held_bytes: usize,
    /// Sequence number of the latest account load begun.
    load_seq: u64,
    /// Loads begun and not finished (queued work not run yet).
    loading: BTreeSet<u64>,
    /// A load finished since fences were last looked at: some may now
    /// know their mark.
    loads_changed: bool,
    fences: VecDeque<Waiting>,
}

/// What a held output weighs: its stanza's size.
fn output_bytes(out: &HubOutput) -> usize {
    match out {
        HubOutput::Deliver { stanza, .. } | HubOutput::Route(stanza) => stanza.approx_size(),
        _ => 0,
    }
}

impl Durability {
    fn record_answer(&mut self, id: RequestId) {
        if id <= self.answered {
            return;
        }
        if id != self.answered + 1 {
            self.early.insert(id);
            return;
        }
        self.answered = id;
        while self.early.remove(&(self.answered + 1)) {
            self.answered += 1;
        }
    }
}

impl Hub {
    /// Hand `fence` back as [`HubOutput::Fence`] once everything given to
    /// this hub before it is durable (see the module documentation).
    pub fn fence(&mut self, now: crate::time::Millis, fence: Fence) {
        self.tick(now);
        let loads_before = self.durability.load_seq;
        // The mark is taken as soon as no earlier load is pending: taking
        // it later (when the fence reaches the front) would make each fence
        // wait for the writes of the time the previous one was released, a
        // convoy that grows with the storage backlog.
        let mark = self
            .durability
            .loading
            .is_empty()
            .then(|| self.last_request());
        self.durability.fences.push_back(Waiting {
            fence,
            loads_before,
            mark,
        });
        self.release_durable();
    }

    /// Fences not handed back yet.
    pub fn waiting_fences(&self) -> usize {
        self.durability.fences.len()
    }

    /// A write whose outcome clients are told: every client-visible output
    /// from now on waits until it is durable.
    pub(crate) fn commit(&mut self, request: StorageRequest) {
        self.write(request);
        self.durability.gate = self.last_request();
    }

    /// A client-visible output: out now, or held behind a committed write.
    pub(super) fn visible(&mut self, out: HubOutput) {
        let d = &mut self.durability;
        if d.gate > d.answered {
            d.held_bytes += output_bytes(&out);
            d.held.push_back((d.gate, out));
        } else {
            self.out.push_back(out);
        }
    }

    /// Bytes of stanzas held until a committed write is durable: a room
    /// message's copies wait there for its archive write, so a driver
    /// bounding fan-out counts them too.
    pub fn committing_bytes(&self) -> usize {
        self.durability.held_bytes
    }

    /// The id of the latest request emitted (0 before any).
    fn last_request(&self) -> RequestId {
        self.next_request.saturating_sub(1)
    }

    /// An account load begins; its sequence number.
    pub(super) fn load_started(&mut self) -> u64 {
        self.durability.load_seq += 1;
        let seq = self.durability.load_seq;
        self.durability.loading.insert(seq);
        seq
    }

    /// An account load has run its queued work (or failed).
    pub(super) fn load_finished(&mut self, seq: u64) {
        self.durability.loading.remove(&seq);
        self.durability.loads_changed = true;
    }

    /// A storage answer arrived for `id`.
    pub(super) fn answered(&mut self, id: RequestId) {
        self.durability.record_answer(id);
    }

    /// Release held outputs and fences whose answers have all arrived.
    pub(super) fn release_durable(&mut self) {
        let answered = self.durability.answered;
        while let Some((mark, _)) = self.durability.held.front() {
            if *mark > answered {
                break;
            }
            if let Some((_, out)) = self.durability.held.pop_front() {
                let d = &mut self.durability;
                d.held_bytes = d.held_bytes.saturating_sub(output_bytes(&out));
                self.out.push_back(out);
            }
        }
        let last = self.last_request();
        let d = &mut self.durability;
        if std::mem::take(&mut d.loads_changed) {
            let first_loading = d.loading.first().copied();
            for f in d.fences.iter_mut().filter(|f| f.mark.is_none()) {
                if first_loading.is_none_or(|first| first > f.loads_before) {
                    f.mark = Some(last);
                }
            }
        }
        // In order: a fence whose loads are pending holds the later ones.
        while let Some(front) = d.fences.front() {
            match front.mark {
                Some(mark) if mark <= answered => {}
                _ => break,
            }
            let fence = front.fence;
            d.fences.pop_front();
            self.out.push_back(HubOutput::Fence(fence));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hub::HubConfig;
    use crate::jid::Jid;
    use crate::storage::{AccountData, StorageResult};
    use crate::xml::Element;
    use std::sync::Arc;

    fn outputs(hub: &mut Hub) -> Vec<HubOutput> {
        std::iter::from_fn(|| hub.poll_output()).collect()
    }

    fn storage(out: &[HubOutput]) -> Vec<(RequestId, StorageRequest)> {
        out.iter()
            .filter_map(|o| match o {
                HubOutput::Storage { id, request } => Some((*id, request.clone())),
                _ => None,
            })
            .collect()
    }

    fn loaded() -> StorageResult {
        StorageResult::Account(Some(AccountData {
            documents: [(crate::modules::avatar::AVATAR_KEY, String::new())]
                .into_iter()
                .collect(),
            ..AccountData::default()
        }))
    }

    fn has_fence(out: &[HubOutput], f: Fence) -> bool {
        out.contains(&HubOutput::Fence(f))
    }

    /// The reported bug: a message to an offline contact is acknowledged
    /// only once its offline copy is committed — after the contact's
    /// account loaded and the write was answered.
    #[test]
    fn a_fence_waits_for_the_load_and_the_offline_write() {
        let mut h = Hub::new(Arc::new(HubConfig::default()));
        let msg = Element::new(crate::ns::CLIENT, "message")
            .with_attr("to", "bob@localhost")
            .with_attr("from", "alice@localhost/a")
            .with_attr("type", "chat")
            .with_child(Element::new(crate::ns::CLIENT, "body").with_text("hi"));
        h.routed(0, msg);
        h.fence(0, Fence(9));
        let out = outputs(&mut h);
        assert!(!has_fence(&out, Fence(9)), "bob's account is still loading");
        let (load, _) = storage(&out)[0].clone();
        h.handle_storage(1, load, loaded());
        let out = outputs(&mut h);
        assert!(
            !has_fence(&out, Fence(9)),
            "the offline write is not answered"
        );
        let writes = storage(&out);
        assert!(
            writes
                .iter()
                .any(|(_, r)| matches!(r, StorageRequest::PushOffline { .. })),
            "{out:?}"
        );
        for (id, _) in writes {
            h.handle_storage(2, id, StorageResult::Done);
        }
        assert!(has_fence(&outputs(&mut h), Fence(9)));
        assert_eq!(h.waiting_fences(), 0);
    }

    /// Nothing outstanding: a fence comes back at once, and a later one is
    /// not held by an earlier one's wait once that is over.
    #[test]
    fn an_idle_hub_returns_fences_at_once() {
        let mut h = Hub::new(Arc::new(HubConfig::default()));
        h.fence(0, Fence(1));
        h.fence(0, Fence(2));
        assert_eq!(
            outputs(&mut h),
            vec![HubOutput::Fence(Fence(1)), HubOutput::Fence(Fence(2))]
        );
    }

    /// A fence waits for the writes before it, not for those emitted
    /// while it waits (else fences would convoy behind a storage backlog).
    #[test]
    fn a_fence_does_not_wait_for_later_writes() {
        let mut h = Hub::new(Arc::new(HubConfig::default()));
        let blob = |v: &str| StorageRequest::StoreBlob {
            account: "a@localhost".into(),
            key: "k".into(),
            value: Some(v.into()),
            limit: None,
        };
        h.write(blob("1"));
        h.fence(0, Fence(1));
        h.write(blob("2"));
        h.fence(0, Fence(2));
        h.write(blob("3"));
        let ids: Vec<RequestId> = storage(&outputs(&mut h))
            .into_iter()
            .map(|(id, _)| id)
            .collect();
        assert_eq!(ids.len(), 3);
        h.handle_storage(1, ids[0], StorageResult::Done);
        assert_eq!(outputs(&mut h), vec![HubOutput::Fence(Fence(1))]);
        h.handle_storage(1, ids[1], StorageResult::Done);
        assert_eq!(
            outputs(&mut h),
            vec![HubOutput::Fence(Fence(2))],
            "not waiting for write 3"
        );
    }

    /// Alice's session (conn 7), loaded, has sent a roster set whose write
    /// is not answered yet.
    fn roster_set_in_flight() -> Hub {
        let mut h = Hub::new(Arc::new(HubConfig::default()));
        h.session_bound(0, 7, Jid::parse("alice@localhost/a").expect("jid"));
        let (load, _) = storage(&outputs(&mut h))[0].clone();
        h.handle_storage(0, load, loaded());
        let _ = outputs(&mut h);
        let set = Element::parse(
            b"<iq xmlns='jabber:client' type='set' id='r1' from='alice@localhost/a'>\
              <query xmlns='jabber:iq:roster'><item jid='bob@localhost' name='Bob'/></query></iq>",
        )
        .expect("test XML");
        h.from_session(1, 7, set);
        h
    }

    /// A roster set's result and push announce a change: they wait for the
    /// roster write, and so does everything visible after them (in order).
    #[test]
    fn a_roster_result_waits_for_its_write() {
        let mut h = roster_set_in_flight();
        let ping = Element::parse(
            b"<iq xmlns='jabber:client' type='get' id='p1' from='alice@localhost/a' to='localhost'>\
              <ping xmlns='urn:xmpp:ping'/></iq>",
        )
        .expect("test XML");
        h.from_session(1, 7, ping);
        h.fence(1, Fence(3));
        let out = outputs(&mut h);
        let writes = storage(&out);
        assert!(
            matches!(
                writes.as_slice(),
                [(_, StorageRequest::PutRosterItem { .. })]
            ),
            "{out:?}"
        );
        assert!(
            out.iter().all(|o| matches!(o, HubOutput::Storage { .. })),
            "nothing visible before the write is answered: {out:?}"
        );
        h.handle_storage(2, writes[0].0, StorageResult::Done);
        let out = outputs(&mut h);
        let ids: Vec<Option<&str>> = out
            .iter()
            .map(|o| match o {
                HubOutput::Route(e) => e.attr("id"),
                HubOutput::Fence(_) => Some("fence"),
                _ => None,
            })
            .collect();
        assert_eq!(ids, vec![Some("r1"), Some("p1"), Some("fence")], "{out:?}");
    }

    /// A session's release is visible like its deliveries: behind what a
    /// committed write holds, so the driver drains the session's mailbox
    /// only after everything the hub had for it.
    #[test]
    fn a_release_waits_behind_held_outputs() {
        let mut h = roster_set_in_flight();
        h.session_closed(1, 7);
        let out = outputs(&mut h);
        assert!(
            !out.contains(&HubOutput::Released { conn: 7 }),
            "held behind the roster write: {out:?}"
        );
        let writes = storage(&out);
        h.handle_storage(2, writes[0].0, StorageResult::Done);
        let out = outputs(&mut h);
        let result = out
            .iter()
            .position(|o| matches!(o, HubOutput::Route(e) if e.attr("id") == Some("r1")));
        let released = out
            .iter()
            .position(|o| *o == HubOutput::Released { conn: 7 });
        assert!(result.is_some() && released > result, "{out:?}");
    }

    /// What waits for a commit is counted, so a driver can bound it.
    #[test]
    fn held_outputs_are_counted_until_released() {
        let mut h = roster_set_in_flight();
        let out = outputs(&mut h);
        assert!(h.committing_bytes() > 0, "the result waits: {out:?}");
        let writes = storage(&out);
        h.handle_storage(2, writes[0].0, StorageResult::Done);
        outputs(&mut h);
        assert_eq!(h.committing_bytes(), 0);
    }

    #[test]
    fn the_watermark_moves_over_contiguous_answers_only() {
        let mut d = Durability::default();
        d.record_answer(2);
        assert_eq!(d.answered, 0, "1 is still outstanding");
        d.record_answer(1);
        assert_eq!(d.answered, 2);
        d.record_answer(2);
        assert_eq!(d.answered, 2, "a repeated answer changes nothing");
        d.record_answer(3);
        assert_eq!(d.answered, 3);
        assert!(d.early.is_empty());
    }
}
