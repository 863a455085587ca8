//! One task per client connection: it owns the socket and the connection's
//! `ServerStream`, and talks to hub partitions through channels.

use crate::accept::Admission;
use crate::account_ops::AccountOps;
use crate::clock::{entropy, instant_for, now_ms};
use crate::conn_storage::ConnStorage;
use crate::limiters::Limiters;
use crate::mailbox::{ConnMsg, Mailbox};
use crate::registry::ConnRegistry;
use crate::resumption;
use crate::router::HubMsg;
use crate::router::Router;
use crate::send;
use crate::session_end;
use crate::settings::SettingsCell;
use crate::sm_registry::SmRegistry;
use crate::tls::{server_channel_bindings, ServerTls};
use crate::transport::Transport;
use futures_rustls::TlsAcceptor;
use smol::future::FutureExt;
use smol::Async;
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::time::Duration;
use xmpp_core::hub::ConnId;
use xmpp_core::sasl::ChannelBinding;
use xmpp_core::stream::{ConnOutput, ServerStream, StreamErrorCondition};

/// What a client connection uses, shared by all of them.
pub(crate) struct C2s {
    /// What new connections are served with.
    pub(crate) settings: Arc<SettingsCell>,
    pub(crate) conns: Arc<ConnRegistry>,
    pub(crate) router: Arc<Router>,
    /// Resumable sessions (XEP-0198) and the connections holding them.
    pub(crate) sm_sessions: SmRegistry,
    pub(crate) limiters: Arc<Limiters>,
    /// Password checks and in-band registration (XEP-0077).
    pub(crate) accounts: AccountOps,
    /// Where connections' storage requests run.
    pub(crate) storage: ConnStorage,
}

/// Accept client connections until the listener fails.
pub(crate) async fn accept_loop(
    ex: Arc<smol::Executor<'static>>,
    listener: Async<TcpListener>,
    direct_tls: bool,
    admission: Admission,
    ctx: Arc<C2s>,
) {
    crate::accept::accept_loop(ex, listener, admission, "c2s", move |tcp, _peer| {
        run(tcp, direct_tls, ctx.clone())
    })
    .await
}

enum Wake {
    Read(std::io::Result<usize>),
    Msgs(Vec<ConnMsg>),
    Timer,
}

/// A TLS handshake with `tls` (one snapshot for the handshake and the
/// channel binding: a reload swapping the certificate meanwhile must not
/// mix the two).
async fn tls_accept(
    ctx: &C2s,
    tls: Option<Arc<ServerTls>>,
    tcp: Async<TcpStream>,
) -> Option<(Transport, Vec<ChannelBinding>)> {
    let tls = tls?;
    let acceptor = TlsAcceptor::from(tls.config.clone());
    let handshake = acceptor.accept(tcp);
    let deadline = ctx.limiters.conn_gate.tls_handshake_timeout();
    let timeout = async {
        smol::Timer::after(deadline).await;
        Err(std::io::Error::from(std::io::ErrorKind::TimedOut))
    };
    match handshake.or(timeout).await {
        Ok(s) => {
            let conn = s.get_ref().1;
            let bindings = server_channel_bindings(conn, tls.end_entity_for(conn.server_name()));
            Some((Transport::Tls(Box::new(s)), bindings))
        }
        Err(e) => {
            tracing::debug!(error = %e, "TLS handshake failed");
            None
        }
    }
}

async fn run(tcp: Async<TcpStream>, direct_tls: bool, ctx: Arc<C2s>) {
    let peer = tcp.get_ref().peer_addr().ok();
    let peer_ip = peer.map(|p| p.ip());
    // Counted against its address until it authenticates; refused (closed
    // before any byte, there is no stream yet) over the address's limits.
    let mut unauthenticated = match ctx.limiters.conn_gate.admit(peer_ip, now_ms()) {
        Ok(slot) => slot,
        Err(refusal) => {
            ctx.limiters.refusals.refused(peer_ip, &refusal);
            return;
        }
    };
    let mut conn_id: ConnId = ctx.conns.next_id();
    // What this connection is served with, whatever a reload changes
    // meanwhile.
    let settings = ctx.settings.current();
    let (transport, bindings) = if direct_tls {
        match Box::pin(tls_accept(&ctx, settings.tls.clone(), tcp)).await {
            Some((t, b)) => (t, Some(b)),
            None => return,
        }
    } else {
        (Transport::Plain(tcp), None)
    };
    // `None` once the transport broke: a hibernated session (XEP-0198)
    // lives on without one until it is resumed or times out.
    let mut transport = Some(transport);
    tracing::debug!(conn = conn_id, ?peer, direct_tls, "connected");
    let cfg = settings.stream.clone();
    let mut mailbox = ctx.conns.open(conn_id, cfg.max_mailbox_bytes);
    let stall = cfg.send_timeout_ms.map(Duration::from_millis);
    let auth_timeout_ms = cfg.auth_timeout_ms;
    let mut stream = ServerStream::new(cfg, entropy(), now_ms(), bindings);
    let mut partition: Option<usize> = None;
    let mut bucket = settings.rate_limit.map(crate::rate_limit::Bucket::new);
    let mut timer = smol::Timer::never();
    let mut armed: Option<xmpp_core::time::Millis> = None;
    // The SM-ID this connection registered (resumable sessions only).
    let mut sm_id: Option<String> = None;
    // Unacknowledged stanzas to route once the hub knows the session ended.
    let mut undelivered: Vec<xmpp_core::Element> = Vec::new();
    let mut released = false;
    // Hibernated, and the hub has not said it knows (`ConnMsg::
    // HibernationNoted`): what it delivers meanwhile, it delivered
    // believing the session live, so it did not wake the client for it.
    let mut unnoted_hibernation = false;

    'conn: loop {
        // Perform everything the machine asked for.
        while let Some(out) = stream.poll_output() {
            match out {
                ConnOutput::Write(bytes) => {
                    let Some(t) = transport.as_mut() else {
                        continue; // hibernated: the stanzas wait in the SM queue
                    };
                    if send::write(t, &bytes, &mailbox, stall).await.is_err() {
                        transport = None;
                        unnoted_hibernation |=
                            lose_transport(&mut stream, &ctx, &mailbox, partition, conn_id);
                    }
                }
                ConnOutput::StartTls => {
                    let Some(t) = transport.as_mut() else {
                        break 'conn;
                    };
                    if send::flush(t, &mailbox, stall).await.is_err() {
                        break 'conn;
                    }
                    let Some(Transport::Plain(tcp)) = transport.take() else {
                        break 'conn;
                    };
                    // The certificate in force now: a renewed one serves
                    // every handshake after the reload.
                    let tls = ctx.settings.current().tls.clone();
                    match Box::pin(tls_accept(&ctx, tls, tcp)).await {
                        Some((t, b)) => {
                            transport = Some(t);
                            stream.tls_established(now_ms(), b);
                        }
                        None => break 'conn,
                    }
                }
                ConnOutput::Storage { id, request } => {
                    let Some(result) = ctx.storage.execute(request).await else {
                        break 'conn;
                    };
                    stream.handle_storage(now_ms(), id, result);
                }
                ConnOutput::Account { id, op } => {
                    let result = ctx
                        .accounts
                        .perform(peer_ip, settings.scram_iterations, op)
                        .await;
                    stream.handle_account(now_ms(), id, result);
                }
                ConnOutput::CheckPassword { id, check } => {
                    let ok = ctx.accounts.check_password(check).await;
                    stream.handle_password_check(now_ms(), id, ok);
                }
                ConnOutput::AuthStarted { account, .. } => {
                    // The failure backoff: the attempt waits before its
                    // credentials are even looked up, but never past the
                    // stream's own authentication deadline.
                    let wait = ctx
                        .limiters
                        .auth_throttle
                        .wait(peer_ip, Some(&account), now_ms())
                        .min(auth_timeout_ms);
                    if wait > 0 {
                        smol::Timer::after(Duration::from_millis(wait)).await;
                    }
                }
                ConnOutput::AuthFailed {
                    account,
                    mechanism,
                    failure,
                } => ctx.limiters.auth_throttle.sasl_failed(
                    peer_ip,
                    account.as_deref(),
                    mechanism,
                    failure,
                    now_ms(),
                ),
                ConnOutput::Authenticated { account, .. } => {
                    ctx.limiters.auth_throttle.succeeded(&account);
                    drop(unauthenticated.take());
                }
                ConnOutput::Bound(jid) => {
                    let p = ctx.router.partition(&jid.bare_str());
                    partition = Some(p);
                    ctx.router.send(
                        p,
                        HubMsg::Bound {
                            conn: conn_id,
                            jid,
                            mailbox: mailbox.clone(),
                        },
                    );
                }
                ConnOutput::Stanza(el) => {
                    if let Some(p) = partition {
                        ctx.router.hand_over(p, conn_id, el).await;
                    }
                }
                ConnOutput::SmEnabled(id) => {
                    if let Some(account) = stream.account() {
                        ctx.sm_sessions
                            .register(id.clone(), account.bare_str(), conn_id);
                        sm_id = Some(id);
                    }
                }
                ConnOutput::Resume { previd } => {
                    let account = stream.account().map(|a| a.bare_str()).unwrap_or_default();
                    match resumption::take_over(&ctx.sm_sessions, &ctx.conns, &previd, &account)
                        .await
                    {
                        Some(adopted) => {
                            // Continue as the old connection: its id and
                            // mailbox are what the hub knows the session by.
                            ctx.conns.forget(conn_id);
                            mailbox.close();
                            conn_id = adopted.conn;
                            mailbox = adopted.mailbox;
                            partition = Some(adopted.released.partition);
                            sm_id = Some(previd);
                            stream.resume(now_ms(), Some(adopted.released.session));
                        }
                        None => stream.resume(now_ms(), None),
                    }
                }
                ConnOutput::Resumed(jid) => {
                    tracing::info!(conn = conn_id, %jid, "session resumed");
                    if let Some(p) = partition {
                        ctx.router.send(p, HubMsg::Resumed(conn_id));
                    }
                }
                ConnOutput::Undelivered(stanzas) => undelivered.extend(stanzas),
                ConnOutput::PageDelivered => {
                    if let Some(p) = partition {
                        ctx.router.send(p, HubMsg::PageDelivered(conn_id));
                    }
                }
                // Behind the session's stanzas on its partition's queue.
                ConnOutput::Fence(seq) => match partition {
                    Some(p) => ctx.router.send(p, HubMsg::Fence { conn: conn_id, seq }),
                    None => stream.fence_done(now_ms(), seq),
                },
                ConnOutput::Close => {
                    if let Some(t) = transport.as_mut() {
                        send::close(t, stall).await;
                    }
                    break 'conn;
                }
                ConnOutput::Failed(_) => {}
            }
        }
        if let Some(t) = transport.as_mut() {
            if send::flush(t, &mailbox, stall).await.is_err() {
                transport = None;
                unnoted_hibernation |=
                    lose_transport(&mut stream, &ctx, &mailbox, partition, conn_id);
                continue;
            }
        }
        if stream.is_closed() {
            break;
        }
        if mailbox.overflowed() {
            // The client does not read what it is sent (its partition has
            // already let go of the session and rerouted what waited): end
            // it without waiting on a socket that does not drain.
            tracing::info!(
                conn = conn_id,
                "mailbox overflowed; ending the session with resource-constraint"
            );
            transport = None;
            stream.close(Some(StreamErrorCondition::ResourceConstraint));
            continue;
        }
        // Re-arm only when the machine wants an earlier wake-up: a busy
        // connection's deadline keeps moving later, and touching the
        // reactor's timer set on every wake costs more the more sessions
        // are online. A timer that fires early is simply re-armed.
        if let Some(want) = stream.poll_timeout() {
            if armed.is_none_or(|a| want < a) {
                timer.set_at(instant_for(want));
                armed = Some(want);
            }
        }
        let read = async {
            match transport.as_mut() {
                Some(t) => Wake::Read(
                    t.read_with(|bytes| stream.handle_input(now_ms(), bytes))
                        .await,
                ),
                None => std::future::pending().await,
            }
        };
        let msg = async { Wake::Msgs(mailbox.recv_all().await) };
        let tick = async {
            (&mut timer).await;
            Wake::Timer
        };
        match read.or(msg).or(tick).await {
            Wake::Read(Ok(0)) | Wake::Read(Err(_)) => {
                // No closing handshake: a resumable session hibernates,
                // any other ends (its outputs say how).
                transport = None;
                unnoted_hibernation |=
                    lose_transport(&mut stream, &ctx, &mailbox, partition, conn_id);
            }
            Wake::Read(Ok(n)) => {
                // Already handed to the stream; over its budget, the client
                // is read again only once it has paid for these bytes.
                if let Some(wait) = bucket
                    .as_mut()
                    .and_then(|b| b.take(n, std::time::Instant::now()))
                {
                    smol::Timer::after(wait).await;
                }
            }
            Wake::Msgs(msgs) => {
                // A burst becomes one write.
                let now = now_ms();
                let mut msgs = msgs.into_iter();
                let mut late = Vec::new();
                while let Some(msg) = msgs.next() {
                    if stream.is_closed() {
                        // Ended mid-burst (e.g. its SM queue overflowed):
                        // the rest is rerouted with the mailbox's leftovers.
                        mailbox.requeue_front(std::iter::once(msg).chain(msgs).collect());
                        break;
                    }
                    match msg {
                        ConnMsg::Deliver(el) => {
                            stream.send_stanza_at(now, &el);
                            if unnoted_hibernation && transport.is_none() {
                                late.push(*el);
                            }
                        }
                        ConnMsg::HibernationNoted => unnoted_hibernation = false,
                        ConnMsg::Close(cond) => stream.close(cond),
                        ConnMsg::Release(reply) => {
                            // Dropping `reply` answers "not here".
                            let Some(p) = partition else { continue };
                            // Before the resuming connection can tell the
                            // hub the session is awake again.
                            report_late(&ctx.router, p, conn_id, &mut late);
                            let Some(session) = stream.take_suspended() else {
                                continue;
                            };
                            let account = session.jid().bare_str();
                            ctx.sm_sessions.awake(&account, conn_id);
                            // What this connection did not process goes to
                            // the new owner of the mailbox, before anything newer.
                            mailbox.requeue_front(msgs.collect());
                            let released_session = crate::mailbox::Released {
                                session,
                                partition: p,
                            };
                            match reply.try_send(released_session) {
                                // Straight to the (bounded) farewell below.
                                Ok(()) => released = true,
                                // The resuming connection stopped waiting and
                                // told its client the session is gone.
                                Err(e) => stream.abandon(e.into_inner().session),
                            }
                            break;
                        }
                        ConnMsg::PageMark => stream.mark_page(),
                        ConnMsg::Drained => {}
                        ConnMsg::FenceDone(seq) => stream.fence_done(now, seq),
                    }
                }
                // A session that ended meanwhile reroutes them instead (to
                // offline storage, which notifies).
                if let (Some(p), false) = (partition, stream.is_closed()) {
                    report_late(&ctx.router, p, conn_id, &mut late);
                }
                if released {
                    break 'conn;
                }
            }
            Wake::Timer => {
                armed = None;
                stream.handle_timeout(now_ms());
            }
        }
    }
    if released {
        // The session, its id and its mailbox live on in the resuming
        // connection; only this transport ends (after the conflict error).
        if let Some(t) = transport.as_mut() {
            send::farewell(t, &mut stream).await;
        }
        tracing::info!(conn = conn_id, "session handed to a resuming connection");
        return;
    }
    // Whatever the machine still had to say about the session's end.
    while let Some(out) = stream.poll_output() {
        if let ConnOutput::Undelivered(stanzas) = out {
            undelivered.extend(stanzas);
        }
    }
    if let Some(id) = &sm_id {
        ctx.sm_sessions.unregister(id, conn_id);
    }
    ctx.conns.forget(conn_id);
    session_end::end_session(
        &ctx.router,
        &mailbox,
        partition,
        conn_id,
        stream.account(),
        undelivered,
    )
    .await;
    tracing::debug!(conn = conn_id, "disconnected");
}

/// Stanzas the hub delivered to a hibernated session believing it live:
/// reported like the unacknowledged ones at hibernation, so that the hub
/// wakes the client for these too (push).
fn report_late(
    router: &Router,
    partition: usize,
    conn: ConnId,
    late: &mut Vec<xmpp_core::Element>,
) {
    if late.is_empty() {
        return;
    }
    tracing::debug!(conn, late = late.len(), "delivered while hibernating");
    router.send(partition, HubMsg::Hibernated(conn, std::mem::take(late)));
}

/// The transport broke: tell the stream, and the hub when the session
/// hibernates (it still counts as available; push may wake the client).
/// True when the hub was told.
fn lose_transport(
    stream: &mut ServerStream,
    ctx: &C2s,
    mailbox: &Mailbox,
    partition: Option<usize>,
    conn: ConnId,
) -> bool {
    if mailbox.overflowed() {
        // Not a lost transport but a session over its limit: it ends
        // (below, in the connection loop) rather than hibernate.
        return false;
    }
    if !stream.transport_lost(now_ms()) {
        return false;
    }
    tracing::debug!(conn, "session hibernated");
    let told = match partition {
        Some(p) => {
            ctx.router
                .send(p, HubMsg::Hibernated(conn, stream.unacked_messages()));
            true
        }
        None => false,
    };
    let account = stream.account().map(|a| a.bare_str()).unwrap_or_default();
    if let Some(oldest) = ctx.sm_sessions.hibernated(&account, conn) {
        tracing::info!(conn = oldest, %account, "too many hibernated sessions; ending the oldest");
        let mailbox = ctx.conns.mailbox(oldest);
        if let Some(m) = mailbox {
            m.send(ConnMsg::Close(Some(
                StreamErrorCondition::ResourceConstraint,
            )));
        }
    }
    told
}
