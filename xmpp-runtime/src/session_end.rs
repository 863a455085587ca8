//! The end of a c2s connection: nothing its session was sent may vanish
//! with it.
//!
//! Until its hub partition has processed `HubMsg::Closed` (and, when the
//! account is loading, the work queued before it), the hub still counts
//! the session and keeps delivering to its mailbox. So the mailbox stays
//! open until the partition answers with `ConnMsg::Drained`; then
//! the stanzas the stream never acknowledged (XEP-0198) and those it never
//! took from its mailbox are routed again, oldest first, and reach the
//! account's other resources or offline storage, by the core's rules
//! (`xmpp_core::wiring::left_behind`, which `sim::World` follows too). A
//! `Release` still queued is dropped, which tells a resuming connection at
//! once that the session is gone.

use crate::mailbox::{ConnMsg, Mailbox};
use crate::router::{HubMsg, Router};
use smol::future::FutureExt;
use std::time::Duration;
use xmpp_core::hub::ConnId;
use xmpp_core::jid::Jid;
use xmpp_core::wiring::{left_behind, LeftBehind};
use xmpp_core::Element;

/// How long to wait for the partition's answer; it comes after the
/// partition's backlog, so this only bounds a bug (a partition gone).
const DRAIN_TIMEOUT: Duration = Duration::from_secs(30);

/// Tell the hub the session ended, then route what it leaves behind:
/// `undelivered` (the stream's unacknowledged stanzas, already made
/// undeliverable) and whatever the mailbox still holds.
pub(crate) async fn end_session(
    router: &Router,
    mailbox: &Mailbox,
    partition: Option<usize>,
    conn: ConnId,
    account: Option<&Jid>,
    undelivered: Vec<Element>,
) {
    let mut left = Vec::new();
    if let Some(p) = partition {
        router.send(p, HubMsg::Closed(conn));
        let drained = async {
            loop {
                for msg in mailbox.recv_all().await {
                    match msg {
                        ConnMsg::Drained => return true,
                        other => left.push(other),
                    }
                }
            }
        };
        let timeout = async {
            smol::Timer::after(DRAIN_TIMEOUT).await;
            false
        };
        if !drained.or(timeout).await {
            tracing::warn!(conn, "hub did not confirm the session's end");
        }
    }
    left.extend(mailbox.close_and_take());
    // After `Closed`, on the same partition queue: the hub no longer counts
    // the session, so these reach other resources or offline storage.
    let never_taken = left.into_iter().filter_map(|msg| match msg {
        ConnMsg::Deliver(stanza) => Some(*stanza),
        _ => None,
    });
    let domain = account.map(Jid::domain);
    let mut rerouted = 0usize;
    for stanza in left_behind(undelivered, never_taken, domain) {
        rerouted += 1;
        hand_back(router, stanza);
    }
    if rerouted > 0 {
        tracing::debug!(conn, rerouted, "stanzas left by an ended session rerouted");
    }
}

/// A stanza left behind goes to its account's partition or is routed.
fn hand_back(router: &Router, stanza: LeftBehind) {
    match stanza {
        LeftBehind::Redeliver { account, stanza } => {
            let p = router.partition(&account);
            router.send(p, HubMsg::Redeliver(stanza));
        }
        LeftBehind::Route(stanza) => router.route(stanza),
    }
}
