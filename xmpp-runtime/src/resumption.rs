//! XEP-0198 resumption across connections: which connection holds each
//! resumable session, and the hand-over of a session from the connection
//! that holds it (alive, silently dead, or hibernating) to the one that
//! sent `<resume/>`.
//!
//! The session keeps its connection id and mailbox: the new connection
//! adopts both, so hub partitions never notice the move and stanzas queued
//! for the session during the hand-over stay in order.

use crate::mailbox::{ConnMsg, Mailbox, Released};
use crate::registry::ConnRegistry;
use crate::sm_registry::SmRegistry;
use smol::future::FutureExt;
use std::sync::Arc;
use std::time::Duration;
use xmpp_core::hub::ConnId;

/// How long the resuming connection waits for the holder to let go; the
/// holder answers as soon as its task runs (a blocked write gives way, see
/// [`crate::send::write`]), so this only bounds a bug.
const HANDOVER_TIMEOUT: Duration = Duration::from_secs(10);

/// A session taken over by a resuming connection.
pub(crate) struct Adopted {
    pub(crate) conn: ConnId,
    pub(crate) mailbox: Arc<Mailbox>,
    pub(crate) released: Released,
}

/// Take the session `previd` of `account` from the connection holding it.
/// `None` when there is no such session (unknown id, another account's,
/// or it ended meanwhile): the client gets `<failed><item-not-found/>`.
pub(crate) async fn take_over(
    sessions: &SmRegistry,
    conns: &ConnRegistry,
    previd: &str,
    account: &str,
) -> Option<Adopted> {
    let conn = sessions.holder(previd, account)?;
    let mailbox = conns.mailbox(conn)?;
    let (tx, rx) = smol::channel::bounded(1);
    if !mailbox.send(ConnMsg::Release(tx)) {
        return None;
    }
    let timeout = async {
        smol::Timer::after(HANDOVER_TIMEOUT).await;
        Err(smol::channel::RecvError)
    };
    let released = rx.recv().or(timeout).await.ok()?;
    Some(Adopted {
        conn,
        mailbox,
        released,
    })
}
