//! XEP-0198 resumption across connections: which connection holds each
//! resumable session, and the hand-over of a session from the connection
//! that holds it (alive, silently dead, or hibernating) to the one that
//! sent `<resume/>`.
//!
//! The session keeps its connection id and mailbox: the new connection
//! adopts both, so hub partitions never notice the move and stanzas queued
//! for the session during the hand-over stay in order.

use crate::mailbox::Mailbox;
use crate::server::{ConnMsg, Shared};
use crate::transport::Transport;
use smol::future::FutureExt;
use smol::io::AsyncWriteExt;
use std::io;
use std::sync::Arc;
use std::time::Duration;
use xmpp_core::hub::ConnId;
use xmpp_core::stream::{ConnOutput, ServerStream, SuspendedSession};

/// How long the resuming connection waits for the holder to let go; the
/// holder answers as soon as its task runs (a blocked write gives way, see
/// [`write`]), so this only bounds a bug.
const HANDOVER_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a connection that gave its session away may spend telling its
/// (probably half-open) client `<conflict/>`.
const FAREWELL_TIMEOUT: Duration = Duration::from_secs(5);

/// What the holding connection gives up.
#[derive(Debug)]
pub(crate) struct Released {
    pub(crate) session: SuspendedSession,
    pub(crate) partition: usize,
}

/// A session taken over by a resuming connection.
pub(crate) struct Adopted {
    pub(crate) conn: ConnId,
    pub(crate) mailbox: Arc<Mailbox>,
    pub(crate) released: Released,
}

/// Take the session `previd` of `account` from the connection holding it.
/// `None` when there is no such session (unknown id, another account's,
/// or it ended meanwhile): the client gets `<failed><item-not-found/>`.
pub(crate) async fn take_over(shared: &Shared, previd: &str, account: &str) -> Option<Adopted> {
    let conn = shared.sm_sessions.holder(previd, account)?;
    let mailbox = shared.conns().get(&conn).cloned()?;
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

/// Write to the client, unless another connection asks for the session
/// first: a write to a half-open connection blocks until TCP gives up
/// (many minutes), and the resume must not wait for it. An error means the
/// transport is done for; the stanzas being written stay unacknowledged in
/// the session, so the resuming connection replays them.
pub(crate) async fn write(t: &mut Transport, bytes: &[u8], mailbox: &Mailbox) -> io::Result<()> {
    let released = async {
        mailbox.release_requested().await;
        Err(io::ErrorKind::ConnectionAborted.into())
    };
    t.write_all(bytes).or(released).await
}

/// [`write`]'s counterpart for flushing (TLS may hold bytes back).
pub(crate) async fn flush(t: &mut Transport, mailbox: &Mailbox) -> io::Result<()> {
    let released = async {
        mailbox.release_requested().await;
        Err(io::ErrorKind::ConnectionAborted.into())
    };
    t.flush().or(released).await
}

/// The session went to another connection: write what the stream still
/// has to say (the `<conflict/>` error), bounded in time, and close.
pub(crate) async fn farewell(t: &mut Transport, stream: &mut ServerStream) {
    let goodbye = async {
        while let Some(out) = stream.poll_output() {
            if let ConnOutput::Write(bytes) = out {
                t.write_all(&bytes).await?;
            }
        }
        t.flush().await?;
        t.close().await
    };
    let timeout = async {
        smol::Timer::after(FAREWELL_TIMEOUT).await;
        Err(io::ErrorKind::TimedOut.into())
    };
    if let Err(e) = goodbye.or(timeout).await {
        tracing::debug!(error = %e, "old connection not told about the resume");
    }
}
