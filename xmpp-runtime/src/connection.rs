//! One task per client connection: it owns the socket and the connection's
//! `ServerStream`, and talks to hub partitions through channels.
//!
//! The task is a [`Connection`] turning its loop ([`Connection::step`]):
//! perform what the stream asks for, flush, then wait for the client, the
//! mailbox or the stream's timer and hand that to the stream. It ends when
//! the stream is over ([`Connection::end`]: the session's leftovers are
//! rerouted) or when its session went to a resuming connection
//! ([`Connection::hand_over`]).

use crate::accept::Admission;
use crate::account_ops::AccountOps;
use crate::bosh_pipe::BoshPipe;
use crate::clock::{entropy, now_ms, Alarm};
use crate::conn_gate::UnauthenticatedSlot;
use crate::conn_storage::ConnStorage;
use crate::limiters::Limiters;
use crate::mailbox::{ConnMsg, Mailbox, Released};
use crate::rate_limit::Bucket;
use crate::registry::ConnRegistry;
use crate::resumption;
use crate::router::{HubMsg, Router};
use crate::send;
use crate::session_end;
use crate::settings::{Settings, SettingsCell};
use crate::sm_registry::SmRegistry;
use crate::tls::{server_channel_bindings, ServerTls};
use crate::transport::Transport;
use futures_rustls::TlsAcceptor;
use smol::future::FutureExt;
use smol::Async;
use std::future::Future;
use std::net::{IpAddr, TcpListener, TcpStream};
use std::ops::ControlFlow::{self, Break, Continue};
use std::sync::Arc;
use std::time::{Duration, Instant};
use xmpp_core::hub::ConnId;
use xmpp_core::jid::Jid;
use xmpp_core::sasl::ChannelBinding;
use xmpp_core::stream::{ConnOutput, ServerStream, StreamErrorCondition, SuspendedSession};
use xmpp_core::Element;

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
    /// Stanza counters for `/metrics`.
    pub(crate) metrics: Arc<crate::metrics::Metrics>,
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

async fn run(tcp: Async<TcpStream>, direct_tls: bool, ctx: Arc<C2s>) {
    // The connection lives in this future, borrowed by the ones it awaits:
    // an `async fn` taking it by value would hold it twice
    // (rust-lang/rust#62958), and a connection's future is what each of
    // tens of thousands of sessions costs.
    let Some(mut conn) = Connection::open(tcp, direct_tls, ctx).await else {
        return;
    };
    conn.serve().await;
}

/// A connection the HTTP listener upgraded to a WebSocket (RFC 7395):
/// the same session machine, its frames decoded and written by the
/// stream itself. `tls` as for [`ServerStream::new_websocket`];
/// `unauthenticated` is the slot [`admit`] gave it before the upgrade;
/// `first` is what the client sent after the upgrade request.
pub(crate) async fn serve_websocket(
    transport: Transport,
    peer_ip: Option<IpAddr>,
    tls: Option<Vec<ChannelBinding>>,
    unauthenticated: Option<UnauthenticatedSlot>,
    first: Vec<u8>,
    see_other: Option<String>,
    ctx: Arc<C2s>,
) {
    let settings = ctx.settings.current();
    let now = now_ms();
    let mut stream = ServerStream::new_websocket(settings.stream.clone(), entropy(), now, tls);
    if let Some(uri) = see_other {
        stream.see_other_uri(uri);
    }
    if !first.is_empty() {
        stream.handle_input(now, &first);
    }
    tracing::debug!(?peer_ip, "connected over WebSocket");
    let mut conn = Connection::new(ctx, settings, peer_ip, transport, stream, unauthenticated);
    conn.serve().await;
}

/// Serve the c2s session behind a BOSH session (XEP-0206): the stream is
/// fed what the session's requests carry and writes what its responses
/// will. `unauthenticated` is the slot [`admit`] gave the request that
/// created the session.
pub(crate) async fn serve_bosh(
    pipe: Arc<BoshPipe>,
    peer_ip: Option<IpAddr>,
    tls: Option<Vec<ChannelBinding>>,
    unauthenticated: Option<UnauthenticatedSlot>,
    ctx: Arc<C2s>,
) {
    let settings = ctx.settings.current();
    let stream = ServerStream::new_bosh(settings.stream.clone(), entropy(), now_ms(), tls);
    tracing::debug!(?peer_ip, "connected over BOSH");
    let transport = Transport::Bosh(pipe);
    let mut conn = Connection::new(ctx, settings, peer_ip, transport, stream, unauthenticated);
    conn.serve().await;
}

/// What woke a connection.
enum Wake {
    /// Bytes from the client (already handed to the stream), or the end.
    Read(std::io::Result<usize>),
    Msgs(Vec<ConnMsg>),
    Timer,
}

/// How a connection's loop ended.
enum End {
    /// The stream is over: the session ends with it.
    Closed,
    /// The session went to a resuming connection (XEP-0198).
    Released,
}

/// A TLS handshake with `tls`, bounded by `deadline` (one snapshot for the
/// handshake and the channel binding: a reload swapping the certificate
/// meanwhile must not mix the two).
async fn tls_accept(
    tls: Option<Arc<ServerTls>>,
    deadline: Duration,
    tcp: Async<TcpStream>,
) -> Option<(Transport, Vec<ChannelBinding>)> {
    let tls = tls?;
    let acceptor = TlsAcceptor::from(tls.config.clone());
    let handshake = acceptor.accept(tcp);
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

/// Count a new connection against its address until it authenticates;
/// `None` (the connection is closed before any byte: there is no stream
/// yet) over the address's limits.
pub(crate) fn admit(ctx: &C2s, peer_ip: Option<IpAddr>) -> Option<Option<UnauthenticatedSlot>> {
    match ctx.limiters.conn_gate.admit(peer_ip, now_ms()) {
        Ok(slot) => Some(slot),
        Err(refusal) => {
            ctx.limiters.refusals.refused(peer_ip, &refusal);
            None
        }
    }
}

/// One client connection: its socket, its stream and its session's place
/// in the server.
struct Connection {
    ctx: Arc<C2s>,
    /// What this connection is served with, whatever a reload changes
    /// meanwhile.
    settings: Arc<Settings>,
    peer_ip: Option<IpAddr>,
    /// Its id; once it resumed a session, that session's.
    id: ConnId,
    /// `None` once the transport broke: a hibernated session (XEP-0198)
    /// lives on without one until it is resumed or times out.
    transport: Option<Transport>,
    stream: ServerStream,
    mailbox: Arc<Mailbox>,
    /// Its session's hub partition, once bound.
    partition: Option<usize>,
    /// Its place in its address's count until it authenticates.
    unauthenticated: Option<UnauthenticatedSlot>,
    /// Its read budget, if reads are limited.
    bucket: Option<Bucket>,
    /// How long a write may make no progress.
    stall: Option<Duration>,
    alarm: Alarm,
    /// The SM-ID this connection registered (resumable sessions only).
    sm_id: Option<String>,
    /// Unacknowledged stanzas to route once the hub knows the session ended.
    undelivered: Vec<Element>,
    /// Hibernated, and the hub has not said it knows (`ConnMsg::
    /// HibernationNoted`): what it delivers meanwhile, it delivered
    /// believing the session live, so it did not wake the client for it.
    unnoted_hibernation: bool,
}

impl Connection {
    /// Admit a new connection and set it up (with direct TLS, after the
    /// handshake); `None` when it is refused or the handshake fails.
    async fn open(tcp: Async<TcpStream>, direct_tls: bool, ctx: Arc<C2s>) -> Option<Self> {
        let peer = tcp.get_ref().peer_addr().ok();
        let peer_ip = peer.map(|p| p.ip());
        let unauthenticated = admit(&ctx, peer_ip)?;
        let settings = ctx.settings.current();
        let (transport, bindings) = if direct_tls {
            let deadline = ctx.limiters.conn_gate.tls_handshake_timeout();
            let (t, b) = Box::pin(tls_accept(settings.tls.clone(), deadline, tcp)).await?;
            (t, Some(b))
        } else {
            (Transport::Plain(tcp), None)
        };
        tracing::debug!(?peer, direct_tls, "connected");
        let stream = ServerStream::new(settings.stream.clone(), entropy(), now_ms(), bindings);
        Some(Connection::new(
            ctx,
            settings,
            peer_ip,
            transport,
            stream,
            unauthenticated,
        ))
    }

    fn new(
        ctx: Arc<C2s>,
        settings: Arc<Settings>,
        peer_ip: Option<IpAddr>,
        transport: Transport,
        stream: ServerStream,
        unauthenticated: Option<UnauthenticatedSlot>,
    ) -> Connection {
        let id = ctx.conns.next_id();
        let cfg = &settings.stream;
        let mailbox = ctx.conns.open(id, cfg.max_mailbox_bytes);
        let stall = cfg.send_timeout_ms.map(Duration::from_millis);
        let bucket = settings.rate_limit.map(Bucket::new);
        Connection {
            ctx,
            settings,
            peer_ip,
            id,
            transport: Some(transport),
            stream,
            mailbox,
            partition: None,
            unauthenticated,
            bucket,
            stall,
            alarm: Alarm::default(),
            sm_id: None,
            undelivered: Vec::new(),
            unnoted_hibernation: false,
        }
    }

    /// Run the connection to its end.
    async fn serve(&mut self) {
        let end = loop {
            if let Break(end) = self.step().await {
                break end;
            }
        };
        match end {
            End::Closed => self.end().await,
            // Rare, and its future is large: boxed, not part of every
            // connection's.
            End::Released => Box::pin(self.hand_over()).await,
        }
    }

    /// Perform the stream's outputs, then wait for one thing to happen and
    /// hand it to the stream.
    async fn step(&mut self) -> ControlFlow<End> {
        self.perform_outputs().await?;
        if !self.flush().await {
            // The stream has more to say about the lost transport.
            return Continue(());
        }
        if self.stream.is_closed() {
            return Break(End::Closed);
        }
        if self.mailbox.overflowed() {
            // The client does not read what it is sent (its partition has
            // already let go of the session and rerouted what waited): end
            // it without waiting on a socket that does not drain.
            tracing::info!(
                conn = self.id,
                "mailbox overflowed; ending the session with resource-constraint"
            );
            self.transport = None;
            self.stream
                .close(Some(StreamErrorCondition::ResourceConstraint));
            return Continue(());
        }
        self.alarm.want(self.stream.poll_timeout());
        match self.wait().await {
            // No closing handshake: a resumable session hibernates, any
            // other ends (its outputs say how).
            Wake::Read(Ok(0)) | Wake::Read(Err(_)) => self.lose_transport(),
            Wake::Read(Ok(n)) => self.pace(n).await,
            Wake::Msgs(msgs) => return self.handle_msgs(msgs),
            Wake::Timer => self.stream.handle_timeout(now_ms()),
        }
        Continue(())
    }

    /// Wait for the client, the mailbox or the alarm.
    async fn wait(&mut self) -> Wake {
        let Connection {
            transport,
            stream,
            mailbox,
            alarm,
            ..
        } = self;
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
            alarm.ring().await;
            Wake::Timer
        };
        read.or(msg).or(tick).await
    }

    /// `n` bytes were read (and handed to the stream); over its budget,
    /// the client is read again only once it has paid for them.
    async fn pace(&mut self, n: usize) {
        let Some(bucket) = self.bucket.as_mut() else {
            return;
        };
        if let Some(wait) = bucket.take(n, Instant::now()) {
            smol::Timer::after(wait).await;
        }
    }

    /// Perform everything the stream asked for.
    async fn perform_outputs(&mut self) -> ControlFlow<End> {
        // Not `while let`: its `Option` would be kept across the await.
        loop {
            let Some(out) = self.stream.poll_output() else {
                return Continue(());
            };
            self.perform(out).await?;
        }
    }

    /// Perform one thing the stream asked for. What happens a few times per
    /// session at most is boxed: its future then takes no room in every
    /// connection's.
    // Not an `async fn`: that would keep `out` twice (rust-lang/rust#62958).
    #[allow(clippy::manual_async_fn)]
    fn perform(&mut self, out: ConnOutput) -> impl Future<Output = ControlFlow<End>> + '_ {
        async move {
            match out {
                ConnOutput::Write(bytes) => self.write(&bytes).await,
                ConnOutput::StartTls => return Box::pin(self.start_tls()).await,
                ConnOutput::Storage { id, request } => {
                    let Some(result) = Box::pin(self.ctx.storage.execute(request)).await else {
                        return Break(End::Closed);
                    };
                    self.stream.handle_storage(now_ms(), id, result);
                }
                ConnOutput::Account { id, op } => {
                    let iterations = self.settings.scram_iterations;
                    let op = self.ctx.accounts.perform(self.peer_ip, iterations, op);
                    let result = Box::pin(op).await;
                    self.stream.handle_account(now_ms(), id, result);
                }
                ConnOutput::CheckPassword { id, check } => {
                    let ok = Box::pin(self.ctx.accounts.check_password(check)).await;
                    self.stream.handle_password_check(now_ms(), id, ok);
                }
                ConnOutput::AuthStarted { account, .. } => self.auth_backoff(&account).await,
                ConnOutput::AuthFailed {
                    account,
                    mechanism,
                    failure,
                } => {
                    self.ctx
                        .metrics
                        .auth(mechanism.map(|m| m.name()), "failure");
                    self.ctx.limiters.auth_throttle.sasl_failed(
                        self.peer_ip,
                        account.as_deref(),
                        mechanism,
                        failure,
                        now_ms(),
                    )
                }
                ConnOutput::Authenticated { account, mechanism } => {
                    self.ctx.metrics.auth(Some(mechanism.name()), "success");
                    self.ctx.limiters.auth_throttle.succeeded(&account);
                    drop(self.unauthenticated.take());
                }
                ConnOutput::Bound(jid) => self.bound(jid),
                ConnOutput::Stanza(el) => {
                    self.ctx.metrics.stanza_received("c2s", &el.name);
                    if let Some(p) = self.partition {
                        self.ctx.router.hand_over(p, self.id, el).await;
                    }
                }
                ConnOutput::SmEnabled(sm_id) => {
                    if let Some(account) = self.stream.account() {
                        let account = account.bare_str();
                        self.ctx
                            .sm_sessions
                            .register(sm_id.clone(), account, self.id);
                        self.sm_id = Some(sm_id);
                    }
                }
                ConnOutput::Resume { previd } => Box::pin(self.resume(previd)).await,
                ConnOutput::Resumed(jid) => {
                    tracing::info!(conn = self.id, %jid, "session resumed");
                    self.register_session(&jid);
                    self.to_partition(HubMsg::Resumed(self.id));
                }
                ConnOutput::Undelivered(stanzas) => self.undelivered.extend(stanzas),
                ConnOutput::PageDelivered => self.to_partition(HubMsg::PageDelivered(self.id)),
                // Behind the session's stanzas on its partition's queue.
                ConnOutput::Fence(seq) => match self.partition {
                    Some(p) => self
                        .ctx
                        .router
                        .send(p, HubMsg::Fence { conn: self.id, seq }),
                    None => self.stream.fence_done(now_ms(), seq),
                },
                ConnOutput::Close => {
                    if let Some(t) = self.transport.as_mut() {
                        send::close(t, self.stall).await;
                    }
                    return Break(End::Closed);
                }
                ConnOutput::DropTransport => {
                    if let Some(t) = self.transport.as_mut() {
                        send::close(t, self.stall).await;
                    }
                    self.lose_transport();
                }
            }
            Continue(())
        }
    }

    /// Send to the session's partition, once bound.
    fn to_partition(&self, msg: HubMsg) {
        if let Some(p) = self.partition {
            self.ctx.router.send(p, msg);
        }
    }

    /// Write to the client; a transport that fails is lost.
    async fn write(&mut self, bytes: &[u8]) {
        let Some(t) = self.transport.as_mut() else {
            return; // hibernated: the stanzas wait in the SM queue
        };
        if send::write(t, bytes, &self.mailbox, self.stall)
            .await
            .is_err()
        {
            self.lose_transport();
        }
    }

    /// Flush what TLS still holds; false when the transport broke.
    async fn flush(&mut self) -> bool {
        let Some(t) = self.transport.as_mut() else {
            return true;
        };
        if send::flush(t, &self.mailbox, self.stall).await.is_ok() {
            return true;
        }
        self.lose_transport();
        false
    }

    /// Upgrade the plain connection to TLS.
    async fn start_tls(&mut self) -> ControlFlow<End> {
        let Some(t) = self.transport.as_mut() else {
            return Break(End::Closed);
        };
        if send::flush(t, &self.mailbox, self.stall).await.is_err() {
            return Break(End::Closed);
        }
        let Some(Transport::Plain(tcp)) = self.transport.take() else {
            return Break(End::Closed);
        };
        // The certificate in force now: a renewed one serves every
        // handshake after the reload.
        let tls = self.ctx.settings.current().tls.clone();
        let deadline = self.ctx.limiters.conn_gate.tls_handshake_timeout();
        let Some((t, bindings)) = Box::pin(tls_accept(tls, deadline, tcp)).await else {
            return Break(End::Closed);
        };
        self.transport = Some(t);
        self.stream.tls_established(now_ms(), bindings);
        Continue(())
    }

    /// The failure backoff: an authentication attempt waits before its
    /// credentials are even looked up, but never past the stream's own
    /// authentication deadline.
    async fn auth_backoff(&self, account: &str) {
        let wait = self
            .ctx
            .limiters
            .auth_throttle
            .wait(self.peer_ip, Some(account), now_ms())
            .min(self.settings.stream.auth_timeout_ms);
        if wait > 0 {
            smol::Timer::after(Duration::from_millis(wait)).await;
        }
    }

    /// The session is bound to `jid`: its partition takes it from here.
    fn bound(&mut self, jid: Jid) {
        self.register_session(&jid);
        let p = self.ctx.router.partition(&jid.bare_str());
        self.partition = Some(p);
        let mailbox = self.mailbox.clone();
        self.ctx.router.send(
            p,
            HubMsg::Bound {
                conn: self.id,
                jid,
                mailbox,
            },
        );
    }

    /// List the session for the admin API.
    fn register_session(&self, jid: &Jid) {
        let transport = match &self.transport {
            Some(Transport::Bosh(_)) => "bosh",
            _ if self.stream.is_websocket() => "websocket",
            _ => "tcp",
        };
        let info = crate::registry::SessionInfo {
            jid: jid.clone(),
            transport,
            address: self.peer_ip,
            since: now_ms(),
        };
        self.ctx.conns.bind(self.id, info);
    }

    /// The client asks to resume session `previd` (XEP-0198).
    async fn resume(&mut self, previd: String) {
        let account = self
            .stream
            .account()
            .map(|a| a.bare_str())
            .unwrap_or_default();
        let (sessions, conns) = (&self.ctx.sm_sessions, &self.ctx.conns);
        let Some(adopted) = resumption::take_over(sessions, conns, &previd, &account).await else {
            return self.stream.resume(now_ms(), None);
        };
        // Continue as the old connection: its id and mailbox are what the
        // hub knows the session by.
        self.ctx.conns.forget(self.id);
        self.mailbox.close();
        self.id = adopted.conn;
        self.mailbox = adopted.mailbox;
        self.partition = Some(adopted.released.partition);
        self.sm_id = Some(previd);
        self.stream.resume(now_ms(), Some(adopted.released.session));
    }

    /// The transport broke: tell the stream, and the hub when the session
    /// hibernates (it still counts as available; push may wake the
    /// client).
    fn lose_transport(&mut self) {
        // A BOSH session that went away keeps what no request carried.
        let unsent = match &self.transport {
            Some(Transport::Bosh(pipe)) => pipe.take_unsent(),
            _ => Vec::new(),
        };
        self.transport = None;
        if self.mailbox.overflowed() {
            // Not a lost transport but a session over its limit: it ends
            // (in `step`) rather than hibernate.
            return;
        }
        if !self.stream.transport_lost(now_ms()) {
            // The session ends. Over TCP what was written is delivered as
            // far as we can know; a BOSH session's unsent messages go where
            // any ended session's undelivered ones do. (A hibernating
            // session replays them from its XEP-0198 queue instead.)
            let messages = xmpp_core::bosh::body::stanzas(&unsent)
                .into_iter()
                .filter(|e| e.name == "message");
            self.undelivered.extend(messages);
            return;
        }
        tracing::debug!(conn = self.id, "session hibernated");
        if let Some(p) = self.partition {
            let unacked = self.stream.unacked_messages();
            self.ctx
                .router
                .send(p, HubMsg::Hibernated(self.id, unacked));
            self.unnoted_hibernation = true;
        }
        let account = self
            .stream
            .account()
            .map(|a| a.bare_str())
            .unwrap_or_default();
        if let Some(oldest) = self.ctx.sm_sessions.hibernated(&account, self.id) {
            tracing::info!(conn = oldest, %account, "too many hibernated sessions; ending the oldest");
            if let Some(m) = self.ctx.conns.mailbox(oldest) {
                m.send(ConnMsg::Close(Some(
                    StreamErrorCondition::ResourceConstraint,
                )));
            }
        }
    }

    /// Messages from the hub and from other connections; a burst of
    /// stanzas becomes one write.
    fn handle_msgs(&mut self, msgs: Vec<ConnMsg>) -> ControlFlow<End> {
        let now = now_ms();
        let mut msgs = msgs.into_iter();
        // Delivered while hibernated before the hub knew it.
        let mut late = Vec::new();
        let mut released = false;
        while let Some(msg) = msgs.next() {
            if self.stream.is_closed() {
                // Ended mid-burst (e.g. its SM queue overflowed): the rest
                // is rerouted with the mailbox's leftovers.
                let rest = std::iter::once(msg).chain(msgs).collect();
                self.mailbox.requeue_front(rest);
                break;
            }
            match msg {
                ConnMsg::Deliver(el) => {
                    self.stream.send_stanza_at(now, &el);
                    if self.unnoted_hibernation && self.transport.is_none() {
                        late.push(*el);
                    }
                }
                ConnMsg::HibernationNoted => self.unnoted_hibernation = false,
                ConnMsg::Close(cond) => self.stream.close(cond),
                ConnMsg::Release(reply) => {
                    // Dropping `reply` answers "not here".
                    let Some((session, partition)) = self.give_up_session(&mut late) else {
                        continue;
                    };
                    // What this connection did not process goes to the new
                    // owner of the mailbox, before anything newer.
                    self.mailbox.requeue_front(msgs.collect());
                    match reply.try_send(Released { session, partition }) {
                        // Straight to the (bounded) farewell.
                        Ok(()) => released = true,
                        // The resuming connection stopped waiting and told
                        // its client the session is gone.
                        Err(e) => self.stream.abandon(e.into_inner().session),
                    }
                    break;
                }
                ConnMsg::PageMark => self.stream.mark_page(),
                ConnMsg::Drained => {}
                ConnMsg::FenceDone(seq) => self.stream.fence_done(now, seq),
            }
        }
        // A session that ended meanwhile reroutes them instead (to offline
        // storage, which notifies).
        if let (Some(p), false) = (self.partition, self.stream.is_closed()) {
            self.report_late(p, &mut late);
        }
        if released {
            return Break(End::Released);
        }
        Continue(())
    }

    /// The suspended session and its partition, for a resuming
    /// connection; `None` when there is no session to give.
    fn give_up_session(&mut self, late: &mut Vec<Element>) -> Option<(SuspendedSession, usize)> {
        let p = self.partition?;
        // Before the resuming connection can tell the hub the session is
        // awake again.
        self.report_late(p, late);
        let session = self.stream.take_suspended()?;
        let account = session.jid().bare_str();
        self.ctx.sm_sessions.awake(&account, self.id);
        Some((session, p))
    }

    /// Stanzas the hub delivered to a hibernated session believing it live:
    /// reported like the unacknowledged ones at hibernation, so that the
    /// hub wakes the client for these too (push).
    fn report_late(&self, partition: usize, late: &mut Vec<Element>) {
        if late.is_empty() {
            return;
        }
        tracing::debug!(
            conn = self.id,
            late = late.len(),
            "delivered while hibernating"
        );
        let late = std::mem::take(late);
        self.ctx
            .router
            .send(partition, HubMsg::Hibernated(self.id, late));
    }

    /// The session went to a resuming connection: the session, its id and
    /// its mailbox live on there; only this transport ends (after the
    /// conflict error).
    async fn hand_over(&mut self) {
        if let Some(t) = self.transport.as_mut() {
            send::farewell(t, &mut self.stream).await;
        }
        tracing::info!(conn = self.id, "session handed to a resuming connection");
    }

    /// The stream is over: the session ends, and nothing it was sent may
    /// vanish with it (`session_end.rs`).
    async fn end(&mut self) {
        // Whatever the stream still had to say about the session's end.
        while let Some(out) = self.stream.poll_output() {
            if let ConnOutput::Undelivered(stanzas) = out {
                self.undelivered.extend(stanzas);
            }
        }
        if let Some(sm_id) = &self.sm_id {
            self.ctx.sm_sessions.unregister(sm_id, self.id);
        }
        self.ctx.conns.forget(self.id);
        let undelivered = std::mem::take(&mut self.undelivered);
        session_end::end_session(
            &self.ctx.router,
            &self.mailbox,
            self.partition,
            self.id,
            self.stream.account(),
            undelivered,
        )
        .await;
        tracing::debug!(conn = self.id, "disconnected");
    }
}
