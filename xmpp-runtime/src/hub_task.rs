//! Hub partitions: each a task owning one pure `Hub`, fed through a channel,
//! with its own storage worker thread so writes stay in order and never block
//! an executor thread.

use crate::clock::{instant_for, now_ms};
use crate::fences::Fences;
use crate::held::Held;
use crate::mailbox::{ConnMsg, Mailbox, Refused};
use crate::router::{HubMsg, Router};
use crate::storage::Backend;
use smol::channel::Receiver;
use smol::future::FutureExt;
use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use xmpp_core::hub::{ConnId, Hub, HubConfig, HubOutput};
use xmpp_core::jid::Jid;
use xmpp_core::spare::ReleaseSpare;
use xmpp_core::storage::{RequestId, StorageRequest};
use xmpp_core::stream::StreamErrorCondition;
use xmpp_core::wiring::{untaken, LeftBehind};
use xmpp_core::Element;

/// Most requests one storage flush covers.
const MAX_STORAGE_BATCH: usize = 256;

/// Storage requests a partition may have outstanding before it stops
/// returning its connections' credit (`credit.rs`): a client writing to
/// offline storage faster than the disk takes it then waits, instead of
/// the queue to the storage thread growing without bound. Measured with
/// archiving on (every message two or more requests, 50 pairs with 20 in
/// flight): at 4 or 16 batches the limit throttled delivery to half the
/// unbounded rate (13.5–18.8k vs 30.5–32k msgs/s, p99 1.1–1.9 s); at 64
/// batches it never binds in normal load (40.9k msgs/s, p99 43 ms) and
/// still stops a flood.
const MAX_STORAGE_BACKLOG: usize = 64 * MAX_STORAGE_BATCH;

/// The bytes of storage requests a partition may have outstanding, in
/// partition budgets (`transport.partition_queue_bytes`, 2 MiB): requests
/// are counted in bytes too, since one offline message may be 256 KiB.
/// Without it, a component flooding offline storage had 100 MiB of
/// stanzas waiting here for 24 MB sent. With archiving on, a saturated
/// store lags by thousands of requests of ~0.5 KB: one budget (2 MiB)
/// throttled delivery to a third (9.3–9.7k vs 25–30k msgs/s, p99 2.1–2.6
/// s); eight do not bind in normal load.
const STORAGE_BACKLOG_BUDGETS: usize = 8;

/// A partition's way to its storage thread, and how much it has asked
/// that is not answered yet.
struct StorageQueue {
    tx: std::sync::mpsc::Sender<(RequestId, StorageRequest)>,
    outstanding: usize,
    /// [`StorageRequest::approx_bytes`] of each outstanding request, in
    /// the order sent (the storage thread answers in that order).
    sizes: VecDeque<usize>,
    outstanding_bytes: usize,
}

impl StorageQueue {
    fn sent(&mut self, bytes: usize) {
        self.outstanding += 1;
        self.outstanding_bytes += bytes;
        self.sizes.push_back(bytes);
    }

    fn answered(&mut self, n: usize) {
        self.outstanding = self.outstanding.saturating_sub(n);
        for _ in 0..n {
            let bytes = self.sizes.pop_front().unwrap_or(0);
            self.outstanding_bytes = self.outstanding_bytes.saturating_sub(bytes);
        }
        self.sizes.release_spare();
    }

    /// Whether the store keeps up well enough to return credit, with a
    /// partition budget of `budget` bytes: over [`STORAGE_BACKLOG_BUDGETS`]
    /// of them outstanding, credit is held back too.
    fn keeps_up(&self, budget: usize) -> bool {
        self.outstanding <= MAX_STORAGE_BACKLOG
            && self.outstanding_bytes <= budget.saturating_mul(STORAGE_BACKLOG_BUDGETS)
    }
}

/// Spawn one task (and one storage thread) per partition.
pub(crate) fn spawn_partitions(
    ex: &smol::Executor<'static>,
    router: &Arc<Router>,
    backend: &Arc<dyn Backend>,
    cfg: Arc<HubConfig>,
    receivers: Vec<Receiver<HubMsg>>,
) {
    for (i, rx) in receivers.into_iter().enumerate() {
        let storage = storage_worker(i, router.clone(), backend.clone());
        let mut hub = Hub::new(cfg.clone());
        hub.set_entropy(crate::clock::entropy());
        // Partitions share one store: one of them runs the retention purge.
        hub.set_partition(i);
        let parts = PartitionState::new(i, router.partitions());
        ex.spawn(run_partition(parts, hub, rx, storage, router.clone()))
            .detach();
    }
}

/// A thread executing one partition's storage requests in FIFO order.
fn storage_worker(
    partition: usize,
    router: Arc<Router>,
    backend: Arc<dyn Backend>,
) -> std::sync::mpsc::Sender<(RequestId, StorageRequest)> {
    let (tx, rx) = std::sync::mpsc::channel::<(RequestId, StorageRequest)>();
    let spawned = std::thread::Builder::new()
        .name(format!("vireo-store-{partition}"))
        .spawn(move || {
            while let Ok(first) = rx.recv() {
                // Take whatever else is queued: one batch, one flush.
                let mut batch = vec![first];
                while batch.len() < MAX_STORAGE_BATCH {
                    match rx.try_recv() {
                        Ok(next) => batch.push(next),
                        Err(_) => break,
                    }
                }
                let (ids, reqs): (Vec<RequestId>, Vec<StorageRequest>) = batch.into_iter().unzip();
                let offline: Vec<Option<String>> = reqs
                    .iter()
                    .map(|r| match r {
                        StorageRequest::PushOffline { account, .. } => Some(account.clone()),
                        _ => None,
                    })
                    .collect();
                let results = backend.execute_batch(reqs);
                for (result, offline_for) in results.iter().zip(offline) {
                    if let Some(account) = offline_for {
                        tracing::debug!(%account, ?result, "offline message stored");
                    }
                }
                let answered = ids.len();
                let answers = ids.into_iter().zip(results).collect();
                router.send(partition, HubMsg::Storage(answers));
                // Each request was outstanding work until now.
                for _ in 0..answered {
                    router.done();
                }
            }
        });
    if let Err(e) = spawned {
        tracing::error!(error = %e, partition, "cannot spawn storage thread");
    }
    tx
}

/// What a partition task keeps besides its hub.
struct PartitionState {
    index: usize,
    conns: HashMap<ConnId, Arc<Mailbox>>,
    /// Connections that ended, waiting for the hub to let go of their
    /// session (`HubOutput::Released`).
    closing: Vec<ConnId>,
    /// Sessions the hub released while its outputs are carried out.
    released: Vec<ConnId>,
    fences: Fences,
}

impl PartitionState {
    fn new(index: usize, partitions: usize) -> Self {
        PartitionState {
            index,
            conns: HashMap::new(),
            closing: Vec::new(),
            released: Vec::new(),
            fences: Fences::new(partitions),
        }
    }

    /// Tell connections their fences are complete.
    fn fences_complete(&self, complete: Vec<(ConnId, u64)>) {
        for (conn, seq) in complete {
            if let Some(m) = self.conns.get(&conn) {
                m.send(ConnMsg::FenceDone(seq));
            }
        }
    }
}

async fn run_partition(
    mut st: PartitionState,
    mut hub: Hub,
    rx: Receiver<HubMsg>,
    storage: std::sync::mpsc::Sender<(RequestId, StorageRequest)>,
    router: Arc<Router>,
) {
    let mut storage = StorageQueue {
        tx: storage,
        outstanding: 0,
        sizes: VecDeque::new(),
        outstanding_bytes: 0,
    };
    // Credit of processed client stanzas not returned yet, held back
    // while storage is behind.
    let mut owed = 0usize;
    // Stanzas for services waiting for their budget (`held.rs`).
    let mut held = Held::default();
    // The hub's clock starts now, not at its first stanza: its timers (and
    // the server's uptime) run on an idle server too.
    hub.handle_timeout(now_ms());
    loop {
        // What was held goes first, as far as its budget allows.
        if let Some(msg) = held.next(&hub, &router, st.index) {
            handle(&mut st, &mut hub, msg, &mut storage, &router, &mut owed);
            continue;
        }
        // The next message (storage answers among them), the hub's timer
        // (archive retention), or room in a budget the oldest held stanza
        // waits for: its charge's, or this partition's own. Listening
        // before the check below means a return in between is not missed.
        let freed = (!held.is_empty()).then(|| {
            let own = router.listen(st.index);
            let theirs = held
                .waiting_on()
                .filter(|p| *p != st.index)
                .and_then(|p| router.listen(p));
            async move {
                match (own, theirs) {
                    (Some(a), Some(b)) => a.or(b).await,
                    (Some(a), None) | (None, Some(a)) => a.await,
                    (None, None) => std::future::pending().await,
                }
            }
        });
        if freed.is_some() && held.next_ready(&hub, &router, st.index) {
            continue;
        }
        let next = async { rx.recv().await.map(Next::Msg) };
        let timer = hub.poll_timeout().map(|deadline| async move {
            smol::Timer::at(instant_for(deadline)).await;
            Ok(Next::Timer)
        });
        let next = match (timer, freed) {
            (Some(t), Some(f)) => {
                next.or(t)
                    .or(async move {
                        f.await;
                        Ok(Next::Freed)
                    })
                    .await
            }
            (Some(t), None) => next.or(t).await,
            (None, Some(f)) => {
                next.or(async move {
                    f.await;
                    Ok(Next::Freed)
                })
                .await
            }
            (None, None) => next.await,
        };
        match next {
            Err(_) => break,
            Ok(Next::Freed) => {}
            Ok(Next::Timer) => {
                hub.handle_timeout(now_ms());
                // What a timer causes (a hibernated session timing out of
                // its rooms) is charged to this partition's budget.
                let index = st.index;
                drain_outputs(&mut st, &mut hub, &mut storage, &router, Some(index));
            }
            Ok(Next::Msg(msg)) if held.takes(&msg, &hub, &router, st.index) => {
                held.push(msg, &router);
                if held.len() % 10_000 == 1 {
                    tracing::debug!(partition = st.index, held = held.len(), "holding fan-out");
                }
            }
            Ok(Next::Msg(msg)) => handle(&mut st, &mut hub, msg, &mut storage, &router, &mut owed),
        }
    }
}

/// What a partition wakes up for.
enum Next {
    Msg(HubMsg),
    Timer,
    /// The budget a held stanza waits for got bytes back.
    Freed,
}

/// Process one message, carry out what it caused, and return credit.
fn handle(
    st: &mut PartitionState,
    hub: &mut Hub,
    msg: HubMsg,
    storage: &mut StorageQueue,
    router: &Router,
    owed: &mut usize,
) {
    let now = now_ms();
    // Credit a session's stanza took, returned once it is processed.
    let mut credit = 0usize;
    // The budget charged for what this message causes (`credit.rs`):
    // this partition's for a client's stanza (or its session's end), the
    // charge's for a stanza routed with one; and that charge, returned
    // once the stanzas it caused are charged in turn.
    let mut origin: Option<usize> = None;
    let mut settle = None;
    match msg {
        HubMsg::Bound { conn, jid, mailbox } => {
            st.conns.insert(conn, mailbox);
            hub.session_bound(now, conn, jid);
        }
        HubMsg::Closed(conn) => {
            // A session's end tells its rooms and contacts: 1,000 clients
            // leaving a room of 1,000 are half a million presences.
            hub.session_closed(now, conn);
            st.closing.push(conn);
            origin = Some(st.index);
        }
        HubMsg::Hibernated(conn, unacked) => hub.session_hibernated(now, conn, &unacked),
        HubMsg::Resumed(conn) => hub.session_resumed(now, conn),
        HubMsg::PageDelivered(conn) => hub.offline_page_delivered(now, conn),
        HubMsg::Redeliver(stanza) => hub.redeliver(now, stanza),
        HubMsg::FromSession(conn, stanza, n) => {
            hub.from_session(now, conn, stanza);
            credit = n;
            origin = Some(st.index);
        }
        HubMsg::Routed(stanza, charge) => {
            hub.routed(now, stanza);
            origin = charge.map(|c| c.partition);
            settle = charge;
        }
        HubMsg::FromPeer(stanza, n) => {
            hub.routed(now, stanza);
            credit = n;
            origin = Some(st.index);
        }
        HubMsg::Storage(answers) => {
            // What an answer releases (a room message's copies, behind its
            // archive write) is this partition's fan-out (`held.rs`).
            origin = Some(st.index);
            storage.answered(answers.len());
            for (id, result) in answers {
                hub.handle_storage(now, id, result);
            }
        }
        HubMsg::Notice(notice) => hub.notice(now, notice),
        HubMsg::Kick(account) => hub.kick_account(&account, StreamErrorCondition::NotAuthorized),
        HubMsg::Shutdown => hub.shutdown(),
        HubMsg::Fence { conn, seq } => {
            let fence = st.fences.local(conn, seq);
            tracing::trace!(partition = st.index, conn, seq, token = fence.0, "fence in");
            hub.fence(now, fence);
        }
        HubMsg::RemoteFence { from, join } => {
            let fence = st.fences.remote(from, join);
            tracing::trace!(
                partition = st.index,
                from,
                join,
                token = fence.0,
                "fence branch in"
            );
            hub.fence(now, fence);
        }
        HubMsg::FenceDone(join) => {
            let complete = st.fences.branch_done(join);
            tracing::trace!(partition = st.index, join, ?complete, "fence branch back");
            st.fences_complete(complete);
        }
    }
    drain_outputs(st, hub, storage, router, origin);
    router.settle(settle);
    *owed += credit;
    // Stanzas held for accounts still loading may take one budget (they
    // wait for a single storage read, not a commit).
    let budget = router.queue_bytes(st.index);
    if *owed > 0 && storage.keeps_up(budget) && hub.held_bytes() <= budget {
        router.returned(st.index, *owed);
        *owed = 0;
    }
    // One message of the router's outstanding work is done.
    router.done();
}

/// Carry out everything the hub asked for.
fn drain_outputs(
    st: &mut PartitionState,
    hub: &mut Hub,
    storage: &mut StorageQueue,
    router: &Router,
    origin: Option<usize>,
) {
    // Stanzas refused by a full mailbox, with their connection.
    let mut refused: Vec<(ConnId, Box<Element>)> = Vec::new();
    loop {
        while let Some(out) = hub.poll_output() {
            perform(st, out, storage, router, &mut refused, origin);
        }
        if refused.is_empty() {
            break;
        }
        end_overflowed(hub, &st.conns, router, std::mem::take(&mut refused));
    }
    // `Drained` is the last message an ended connection gets, once the hub
    // can no longer deliver to it (its end may wait for an account load);
    // the connection then reroutes what it never took. Sent after the
    // overflows above, which took what waited in the mailbox first. A
    // release without a `Closed` from the connection (a mailbox that
    // overflowed) is not its end: the connection's own close follows.
    let PartitionState {
        conns,
        closing,
        released,
        ..
    } = st;
    for conn in released.drain(..) {
        let Some(i) = closing.iter().position(|c| *c == conn) else {
            continue;
        };
        closing.swap_remove(i);
        if let Some(m) = conns.remove(&conn) {
            m.send(ConnMsg::Drained);
        }
    }
    conns.release_spare();
    closing.release_spare();
    released.release_spare();
}

/// Sessions whose mailbox overflowed (a client that stopped reading): the
/// hub lets go of them now, as if their connections had ended, so nothing
/// more is delivered to them; then what waited in their mailboxes and what
/// they were refused goes, oldest first, to the accounts' other resources
/// or offline storage (`sm::undeliverable`, as at any session's end). The
/// connections end their streams with `resource-constraint` themselves.
fn end_overflowed(
    hub: &mut Hub,
    conns: &HashMap<ConnId, Arc<Mailbox>>,
    router: &Router,
    refused: Vec<(ConnId, Box<Element>)>,
) {
    let now = now_ms();
    let mut ended: Vec<ConnId> = Vec::new();
    let mut undelivered: Vec<Element> = Vec::new();
    for (conn, stanza) in refused {
        if !ended.contains(&conn) {
            ended.push(conn);
            hub.session_closed(now, conn);
            if let Some(m) = conns.get(&conn) {
                undelivered.extend(m.take_stanzas());
            }
            tracing::info!(
                conn,
                "session's mailbox overflowed; rerouting what waits for it"
            );
        }
        undelivered.push(*stanza);
    }
    for stanza in undelivered {
        let Some(domain) = stanza
            .attr("to")
            .and_then(|t| Jid::parse(t).ok())
            .map(|j| j.domain().to_owned())
        else {
            continue;
        };
        // The account is this partition's: its hub takes the message back.
        match untaken(stanza, &domain) {
            Some(LeftBehind::Redeliver { stanza, .. }) => hub.redeliver(now, stanza),
            Some(LeftBehind::Route(stanza)) => router.route(stanza),
            None => {}
        }
    }
}

/// Carry out one thing the hub asked for.
fn perform(
    st: &mut PartitionState,
    out: HubOutput,
    storage: &mut StorageQueue,
    router: &Router,
    refused: &mut Vec<(ConnId, Box<Element>)>,
    origin: Option<usize>,
) {
    let index = st.index;
    match out {
        HubOutput::Deliver { conn, stanza } => {
            if let Some(m) = st.conns.get(&conn) {
                if let Err(Refused::Full(s)) = m.deliver(Box::new(stanza)) {
                    refused.push((conn, s));
                }
            }
        }
        HubOutput::OfflinePageSent { conn } => {
            if let Some(m) = st.conns.get(&conn) {
                m.send(ConnMsg::PageMark);
            }
        }
        HubOutput::HibernationNoted { conn } => {
            if let Some(m) = st.conns.get(&conn) {
                m.send(ConnMsg::HibernationNoted);
            }
        }
        HubOutput::Route(stanza) => {
            if let Some(p) = router.route_charged(stanza, origin) {
                st.fences.routed_to(p);
            }
        }
        HubOutput::Forward { owner, notice } => {
            let p = router.partition(&owner);
            st.fences.routed_to(p);
            router.send(p, HubMsg::Notice(notice));
        }
        HubOutput::Fence(fence) => {
            let returned = st.fences.returned(fence);
            tracing::trace!(
                partition = index,
                token = fence.0,
                ?returned,
                "fence out of the hub"
            );
            for p in returned.branches {
                let join = returned.join;
                router.send(p, HubMsg::RemoteFence { from: index, join });
            }
            if let Some((p, join)) = returned.report {
                router.send(p, HubMsg::FenceDone(join));
            }
            st.fences_complete(returned.complete);
        }
        HubOutput::Storage { id, request } => {
            router.work_added();
            let bytes = request.approx_bytes();
            if storage.tx.send((id, request)).is_err() {
                router.done();
                tracing::error!(partition = index, "storage worker gone");
            } else {
                storage.sent(bytes);
            }
        }
        HubOutput::Close { conn, condition } => {
            if let Some(m) = st.conns.get(&conn) {
                m.send(ConnMsg::Close(condition));
            }
        }
        HubOutput::Released { conn } => st.released.push(conn),
    }
}
