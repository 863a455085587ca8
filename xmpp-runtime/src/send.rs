//! Writing to a client whose connection may be half-open: the phone left
//! without FIN or RST, its socket buffers fill up, and a plain write then
//! blocks until TCP gives up (many minutes, or never while the peer's
//! kernel still answers window probes). Meanwhile the connection task
//! reads neither its mailbox nor its timers, so its session can neither
//! be resumed elsewhere nor end. Every write here therefore gives way to
//! a resume (a `Release` queued in the mailbox) and to a stall (no
//! progress for the send timeout). Either way the transport is done for;
//! what was being written stays unacknowledged in an XEP-0198 session and
//! is replayed on resume or rerouted at the session's end.

use crate::mailbox::Mailbox;
use crate::transport::Transport;
use smol::future::FutureExt;
use smol::io::AsyncWriteExt;
use std::io;
use std::time::Duration;
use xmpp_core::stream::{ConnOutput, ServerStream};

/// How long a connection that gave its session away may spend telling its
/// (probably half-open) client `<conflict/>`.
const FAREWELL_TIMEOUT: Duration = Duration::from_secs(5);

/// Fails after `stall`, never without one. Lazily armed: a write that
/// completes at once never touches the reactor's timers.
async fn stalled<T>(stall: Option<Duration>) -> io::Result<T> {
    match stall {
        Some(d) => {
            smol::Timer::after(d).await;
            Err(io::ErrorKind::TimedOut.into())
        }
        None => std::future::pending().await,
    }
}

async fn released<T>(mailbox: &Mailbox) -> io::Result<T> {
    mailbox.release_requested().await;
    Err(io::ErrorKind::ConnectionAborted.into())
}

/// Write all of `bytes`; an error means the transport is done for.
pub(crate) async fn write(
    t: &mut Transport,
    bytes: &[u8],
    mailbox: &Mailbox,
    stall: Option<Duration>,
) -> io::Result<()> {
    let mut done = 0;
    while done < bytes.len() {
        // The stall clock restarts with every bit of progress: a slow link
        // is not a dead one.
        let n = t
            .write(&bytes[done..])
            .or(released(mailbox))
            .or(stalled(stall))
            .await?;
        if n == 0 {
            return Err(io::ErrorKind::WriteZero.into());
        }
        done += n;
    }
    Ok(())
}

/// Flush what TLS still holds, on the same terms as [`write`].
pub(crate) async fn flush(
    t: &mut Transport,
    mailbox: &Mailbox,
    stall: Option<Duration>,
) -> io::Result<()> {
    t.flush().or(released(mailbox)).or(stalled(stall)).await
}

/// Flush and close after the stream ended (its last words, e.g. a stream
/// error), bounded by the send timeout: a session's end must not wait on
/// a peer that stopped reading.
pub(crate) async fn close(t: &mut Transport, stall: Option<Duration>) {
    let closing = async {
        t.flush().await?;
        t.close().await
    };
    if let Err(e) = closing.or(stalled(stall)).await {
        tracing::debug!(error = %e, "connection closed without flushing");
    }
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
    if let Err(e) = goodbye.or(stalled(Some(FAREWELL_TIMEOUT))).await {
        tracing::debug!(error = %e, "old connection not told about the resume");
    }
}
