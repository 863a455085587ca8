//! External components (XEP-0114): the listener and one task per
//! component connection, owning its socket and `ComponentStream`.
//!
//! A component that proved its secret claims its domain in the router, which
//! from then on hands it every stanza for that domain; the component's own
//! stanzas are routed like any other. When it goes, stanzas still queued for
//! it are routed again, so the hub answers them `<service-unavailable/>`
//! instead of losing them.

use crate::accept::Admission;
use crate::clock::{entropy, now_ms, Alarm};
use crate::mailbox::ConnMsg;
use crate::registry::ConnRegistry;
use crate::router::Router;
use crate::transport::Transport;
use smol::future::FutureExt;
use smol::io::AsyncWriteExt;
use smol::Async;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use xmpp_core::hub::ConnId;
use xmpp_core::stream::{
    AcceptOutput, ComponentStream, ComponentStreamConfig, StreamErrorCondition,
};

/// Most bytes of stanzas waiting for a component (it serves a whole
/// domain, so more than a client's mailbox holds); over it the component
/// is disconnected and what it is sent meanwhile is answered as for a
/// component that is away.
const COMPONENT_MAILBOX_BYTES: usize = 64 * 1024 * 1024;

/// What a component connection uses, shared by all of them.
pub(crate) struct Components {
    pub(crate) conns: Arc<ConnRegistry>,
    pub(crate) router: Arc<Router>,
    /// The components that may connect, with their secrets.
    pub(crate) cfg: Arc<ComponentStreamConfig>,
}

/// Accept component connections until the listener fails.
pub(crate) async fn accept_loop(
    ex: Arc<smol::Executor<'static>>,
    listener: Async<TcpListener>,
    admission: Admission,
    ctx: Arc<Components>,
) {
    crate::accept::accept_loop(ex, listener, admission, "component", move |tcp, peer| {
        run(tcp, peer, ctx.clone())
    })
    .await
}

enum Wake {
    Read(std::io::Result<usize>),
    Msgs(Vec<ConnMsg>),
    Timer,
}

async fn run(tcp: Async<TcpStream>, peer: SocketAddr, ctx: Arc<Components>) {
    let conn_id: ConnId = ctx.conns.next_id();
    let mut transport = Transport::Plain(tcp);
    let mailbox = ctx.conns.open(conn_id, COMPONENT_MAILBOX_BYTES);
    let mut stream = ComponentStream::new(ctx.cfg.clone(), entropy(), now_ms());
    // The domain this connection serves, once claimed.
    let mut claimed: Option<String> = None;
    let mut alarm = Alarm::default();
    tracing::debug!(conn = conn_id, %peer, "component connection");

    'conn: loop {
        while let Some(out) = stream.poll_output() {
            match out {
                AcceptOutput::Write(bytes) => {
                    if transport.write_all(&bytes).await.is_err() {
                        break 'conn;
                    }
                }
                AcceptOutput::Claim(jid) => {
                    let domain = jid.domain().to_owned();
                    if ctx
                        .router
                        .claim_component(&domain, conn_id, mailbox.clone())
                    {
                        tracing::info!(%domain, %peer, "component connected");
                        stream.claimed(now_ms());
                        claimed = Some(domain);
                    } else {
                        tracing::warn!(%domain, %peer, "component already connected; refusing");
                        stream.close(Some(StreamErrorCondition::Conflict));
                    }
                }
                // Waits while the partition is behind, reading nothing
                // more meanwhile: TCP pushes back on the component.
                AcceptOutput::Stanza(el) => ctx.router.route_from_peer(el).await,
                AcceptOutput::Close => {
                    let _ = transport.flush().await;
                    let _ = transport.close().await;
                    break 'conn;
                }
            }
        }
        if transport.flush().await.is_err() || stream.is_closed() {
            break;
        }
        if mailbox.overflowed() {
            // Refused stanzas went back to the router (and were answered
            // as for a component that is away); this one cannot keep up.
            tracing::warn!(%peer, "component not reading fast enough; disconnecting");
            break;
        }
        alarm.want(stream.poll_timeout());
        let read = async {
            Wake::Read(
                transport
                    .read_with(|bytes| stream.handle_input(now_ms(), bytes))
                    .await,
            )
        };
        let msg = async { Wake::Msgs(mailbox.recv_all().await) };
        let tick = async {
            alarm.ring().await;
            Wake::Timer
        };
        match read.or(msg).or(tick).await {
            Wake::Read(Ok(0)) | Wake::Read(Err(_)) => break,
            Wake::Read(Ok(_)) => {}
            Wake::Msgs(msgs) => {
                let now = now_ms();
                for msg in msgs {
                    match msg {
                        ConnMsg::Deliver(el) => stream.send_stanza_at(now, &el),
                        ConnMsg::Close(cond) => stream.close(cond),
                        // Components have no resumable sessions (dropping
                        // the reply answers "not here") nor a hub session.
                        ConnMsg::Release(_)
                        | ConnMsg::Drained
                        | ConnMsg::PageMark
                        | ConnMsg::FenceDone(_)
                        | ConnMsg::HibernationNoted => {}
                    }
                }
            }
            Wake::Timer => stream.handle_timeout(now_ms()),
        }
    }
    // Unclaim first, so that what was queued for us, routed again, reaches
    // the hub and is answered instead of coming back here.
    if let Some(domain) = &claimed {
        ctx.router.release_component(domain, conn_id);
        tracing::info!(%domain, %peer, "component disconnected");
    }
    ctx.conns.forget(conn_id);
    for msg in mailbox.close_and_take() {
        if let ConnMsg::Deliver(el) = msg {
            ctx.router.route(*el);
        }
    }
}
