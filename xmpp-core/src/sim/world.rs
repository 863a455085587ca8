//! [`World`]: one hub, N server-side connections (c2s and XEP-0114
//! components), optional in-memory clients, a [`MemoryStore`] and simulated
//! time, pumped until quiescent.

use crate::entropy::Entropy;
use crate::hub::{ConnId, Fence, Hub, HubConfig, HubOutput};
use crate::jid::Jid;
use crate::modules::register::{AccountOp, AccountOpResult, RegistrationThrottle};
use crate::sasl::{ChannelBinding, ChannelBindingType};
use crate::storage::MemoryStore;
use crate::storage::StorageResult;
use crate::stream::{
    AcceptOutput, ClientConfig, ClientOutput, ClientStream, ComponentStream, ComponentStreamConfig,
    ConnOutput, ServerStream, ServerStreamConfig, StreamErrorCondition,
};
use crate::time::Millis;
use crate::wiring::{left_behind, Destination, LeftBehind, Partitions, SmRegistry};
use crate::xml::Element;
use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

/// Where simulated time starts: 2023-11-14T22:13:20Z.
pub const EPOCH: Millis = 1_700_000_000_000;

/// PBKDF2 iterations for accounts the world creates (the minimum, for speed).
pub const SIM_ITERATIONS: u32 = 4096;

/// Identifies an in-memory client ([`World::connect_client`]).
pub type ClientId = usize;

/// Upper bound on pump rounds: a livelock in the machines ends the pump
/// instead of hanging the test.
const MAX_PUMP_ROUNDS: usize = 100_000;

/// What happened to an in-memory client, in order.
#[derive(Debug, Clone, PartialEq)]
pub enum ClientEvent {
    /// Negotiation finished; the client is bound to this JID.
    Online(Jid),
    /// A stanza from the server.
    Stanza(Element),
    /// Negotiation or the stream failed (the text says why).
    Failed(String),
    /// The transport closed.
    Closed,
}

/// One server-side connection.
#[derive(Debug)]
struct SimConn {
    stream: ServerStream,
    /// Bytes written to the peer and not yet taken (raw connections only).
    to_client: Vec<u8>,
    /// The in-memory client on the other end, if any.
    client: Option<ClientId>,
    /// The transport is gone (either side closed it).
    transport_closed: bool,
    /// The stream reported `Bound` (or resumed a session), so the hub knows
    /// the session.
    bound: bool,
    /// STARTTLS upgrades or direct TLS.
    tls: bool,
    /// The id the hub knows this session by: the connection's own, or that
    /// of the connection whose session it resumed (XEP-0198), as the
    /// runtime's adopted mailbox.
    hub_id: ConnId,
    /// The session moved to another connection by resumption: this
    /// connection's end is not the session's end.
    retired: bool,
    /// Unacknowledged stanzas to route once the hub released the session.
    undelivered: Vec<Element>,
    /// Stanzas the hub delivered after the stream closed: what the
    /// runtime's connection leaves in its mailbox, rerouted at the end.
    never_taken: Vec<Element>,
    /// The session ended and waits for the hub's [`HubOutput::Released`].
    ending: bool,
}

/// One external component's connection (raw: the test plays the component).
#[derive(Debug)]
struct SimComponent {
    stream: ComponentStream,
    to_client: Vec<u8>,
    transport_closed: bool,
}

/// One in-memory client.
#[derive(Debug)]
struct SimClient {
    stream: ClientStream,
    conn: ConnId,
    events: VecDeque<ClientEvent>,
    closed: bool,
}

/// A deterministic, single-threaded XMPP server world for tests, fuzzing and
/// embedding examples.
///
/// Everything is pure and in memory: a [`Hub`] (one partition), one
/// [`ServerStream`] per connection, a [`MemoryStore`] answering storage at
/// once, and a clock that only moves when told. "TLS" is a no-op upgrade
/// with fake channel bindings ([`World::fake_bindings`]). Every input pumps
/// all machines until nothing more happens, the way the runtime's tasks would.
#[derive(Debug)]
pub struct World {
    now: Millis,
    seed: u64,
    stream_cfg: Arc<ServerStreamConfig>,
    hub: Hub,
    store: MemoryStore,
    conns: BTreeMap<ConnId, SimConn>,
    clients: Vec<SimClient>,
    next_conn: ConnId,
    component_cfg: Arc<ComponentStreamConfig>,
    components: BTreeMap<ConnId, SimComponent>,
    /// Which connection serves each component domain (the driver's claim).
    component_domains: BTreeMap<String, ConnId>,
    /// The runtime's routing rule (one partition here: the world has one
    /// hub), with the configured component domains.
    partitions: Partitions,
    /// XEP-0198: resumable sessions by SM-ID, hibernated ones per account
    /// (the runtime's rules, with its limit), by the sessions' hub ids.
    sm_sessions: SmRegistry,
    /// XEP-0077 registrations; every simulated client shares one address.
    registrations: RegistrationThrottle<()>,
    /// XEP-0198 fences in the hub: token → (the hub's session id, the
    /// stream's fence number), what the runtime's partitions keep too.
    fences: BTreeMap<u64, (ConnId, u64)>,
    next_fence: u64,
}

impl World {
    /// A world with seed 0 at [`EPOCH`].
    pub fn new(stream: ServerStreamConfig, hub: HubConfig) -> Self {
        Self::with_seed(stream, hub, 0)
    }

    /// A world whose randomness (stream ids, nonces, resources) derives from
    /// `seed`: connection `n` gets `Entropy::from_u64(seed + n)`.
    pub fn with_seed(stream: ServerStreamConfig, hub: HubConfig, seed: u64) -> Self {
        World {
            now: EPOCH,
            seed,
            stream_cfg: Arc::new(stream),
            hub: Hub::new(Arc::new(hub)),
            store: MemoryStore::new(),
            conns: BTreeMap::new(),
            clients: Vec::new(),
            next_conn: 1,
            component_cfg: Arc::new(ComponentStreamConfig::default()),
            components: BTreeMap::new(),
            fences: BTreeMap::new(),
            next_fence: 0,
            component_domains: BTreeMap::new(),
            partitions: Partitions::new(1, []),
            sm_sessions: SmRegistry::default(),
            registrations: RegistrationThrottle::new(0),
        }
    }

    /// The components that may connect (XEP-0114).
    pub fn set_component_config(&mut self, cfg: ComponentStreamConfig) {
        let domains = cfg.components.iter().map(|c| c.domain.clone());
        self.partitions = Partitions::new(1, domains);
        self.component_cfg = Arc::new(cfg);
    }

    /// Open a raw connection on the component port; the test plays the
    /// component with [`client_sends`](Self::client_sends) and
    /// [`take_server_output`](Self::take_server_output).
    pub fn connect_component(&mut self) -> ConnId {
        let id = self.next_conn;
        self.next_conn += 1;
        let stream = ComponentStream::new(
            self.component_cfg.clone(),
            Entropy::from_u64(self.seed.wrapping_add(id)),
            self.now,
        );
        self.components.insert(
            id,
            SimComponent {
                stream,
                to_client: Vec::new(),
                transport_closed: false,
            },
        );
        self.pump();
        id
    }

    /// The simulated time.
    pub fn now(&self) -> Millis {
        self.now
    }

    /// The hub.
    pub fn hub(&self) -> &Hub {
        &self.hub
    }

    /// The store.
    pub fn store(&self) -> &MemoryStore {
        &self.store
    }

    /// The store, mutably (e.g. to create accounts).
    pub fn store_mut(&mut self) -> &mut MemoryStore {
        &mut self.store
    }

    /// Create an account (bare JID) with [`SIM_ITERATIONS`]; true if created.
    pub fn add_user(&mut self, jid: &str, password: &str) -> bool {
        matches!(
            self.store.add_user(jid, password, SIM_ITERATIONS),
            crate::storage::StorageResult::Done
        )
    }

    /// Allow one in-band registration (XEP-0077) per `interval` ms from the
    /// clients' address, as the runtime does per IP (0 = unlimited, the
    /// default).
    pub fn set_registration_limit(&mut self, interval: Millis) {
        self.registrations.set_interval(interval);
    }

    /// The channel bindings the fake TLS layer produces for a connection:
    /// a per-connection `tls-exporter` value and a `tls-server-end-point`
    /// value shared by all (one certificate).
    pub fn fake_bindings(conn: ConnId) -> Vec<ChannelBinding> {
        let exporter = Entropy::from_u64(0x7e57_e890_0000_0000 ^ conn).bytes(32);
        let endpoint = Entropy::from_u64(0xce27_0000_0000_0000).bytes(32);
        vec![
            ChannelBinding::new(ChannelBindingType::TlsExporter, exporter),
            ChannelBinding::new(ChannelBindingType::TlsServerEndPoint, endpoint),
        ]
    }

    /// Open a raw connection; the test writes bytes with
    /// [`client_sends`](Self::client_sends) and reads the server's with
    /// [`take_server_output`](Self::take_server_output).
    pub fn connect(&mut self, direct_tls: bool) -> ConnId {
        self.open_conn(direct_tls, None)
    }

    fn open_conn(&mut self, direct_tls: bool, client: Option<ClientId>) -> ConnId {
        let id = self.next_conn;
        self.next_conn += 1;
        let bindings = direct_tls.then(|| Self::fake_bindings(id));
        let stream = ServerStream::new(
            self.stream_cfg.clone(),
            Entropy::from_u64(self.seed.wrapping_add(id)),
            self.now,
            bindings,
        );
        self.conns.insert(
            id,
            SimConn {
                stream,
                to_client: Vec::new(),
                client,
                transport_closed: false,
                bound: false,
                tls: direct_tls,
                hub_id: id,
                retired: false,
                undelivered: Vec::new(),
                never_taken: Vec::new(),
                ending: false,
            },
        );
        self.pump();
        id
    }

    /// Bytes from the client of a raw connection; ignored once closed.
    pub fn client_sends(&mut self, conn: ConnId, bytes: &[u8]) {
        if let Some(c) = self.conns.get_mut(&conn) {
            if !c.transport_closed {
                c.stream.handle_input(self.now, bytes);
            }
        }
        if let Some(c) = self.components.get_mut(&conn) {
            if !c.transport_closed {
                c.stream.handle_input(self.now, bytes);
            }
        }
        self.pump();
    }

    /// Everything the server wrote to a raw connection since the last call.
    pub fn take_server_output(&mut self, conn: ConnId) -> Vec<u8> {
        self.pump();
        if let Some(c) = self.components.get_mut(&conn) {
            return std::mem::take(&mut c.to_client);
        }
        self.conns
            .get_mut(&conn)
            .map(|c| std::mem::take(&mut c.to_client))
            .unwrap_or_default()
    }

    /// True once the transport is closed (by the server or the client), or
    /// for an unknown connection.
    pub fn is_closed(&self, conn: ConnId) -> bool {
        if let Some(c) = self.components.get(&conn) {
            return c.transport_closed;
        }
        self.conns.get(&conn).is_none_or(|c| c.transport_closed)
    }

    /// True when the connection is (fake-)TLS.
    pub fn is_secure(&self, conn: ConnId) -> bool {
        self.conns.get(&conn).is_some_and(|c| c.tls)
    }

    /// The full JID the connection bound, if any.
    pub fn bound_jid(&self, conn: ConnId) -> Option<&Jid> {
        self.conns.get(&conn).and_then(|c| c.stream.jid())
    }

    /// The client closes the transport without a closing handshake. A
    /// session with resumable stream management hibernates (XEP-0198);
    /// any other ends.
    pub fn disconnect(&mut self, conn: ConnId) {
        self.transport_gone(conn);
        self.pump();
    }

    /// The transport is gone: the stream hears it (its outputs, drained by
    /// the next pump, end the session unless it hibernates).
    fn transport_gone(&mut self, conn: ConnId) {
        let now = self.now;
        let mut over_limit = None;
        if let Some(c) = self.conns.get_mut(&conn) {
            if !c.transport_closed && c.stream.transport_lost(now) {
                if c.bound {
                    let unacked = c.stream.unacked_messages();
                    self.hub.session_hibernated(now, c.hub_id, &unacked);
                }
                let account = c.stream.account().map(|a| a.bare_str());
                over_limit = self
                    .sm_sessions
                    .hibernated(&account.unwrap_or_default(), c.hub_id);
            }
        }
        self.close_transport(conn);
        // Too many hibernated sessions: the oldest ends, as in the runtime.
        if let Some(c) = over_limit.and_then(|oldest| self.session_conn(oldest)) {
            c.stream
                .close(Some(StreamErrorCondition::ResourceConstraint));
        }
    }

    /// True while the connection's session waits to be resumed.
    pub fn is_hibernated(&self, conn: ConnId) -> bool {
        self.conns
            .get(&conn)
            .is_some_and(|c| c.stream.is_hibernated())
    }

    /// The earliest timer of any live stream (hibernated ones included),
    /// component or of the hub.
    pub fn next_timeout(&self) -> Option<Millis> {
        self.timers()
            .into_iter()
            .map(|(_, t)| t)
            .chain(self.hub.poll_timeout())
            .min()
    }

    /// Armed timers of live streams (hibernated c2s sessions included) and
    /// open components.
    fn timers(&self) -> Vec<(ConnId, Millis)> {
        let c2s = self
            .conns
            .iter()
            .filter(|(_, c)| !c.stream.is_closed())
            .filter_map(|(id, c)| c.stream.poll_timeout().map(|t| (*id, t)));
        let components = self
            .components
            .iter()
            .filter(|(_, c)| !c.transport_closed)
            .filter_map(|(id, c)| c.stream.poll_timeout().map(|t| (*id, t)));
        c2s.chain(components).collect()
    }

    /// Let `ms` of simulated time pass, firing every timer due on the way in
    /// order.
    pub fn advance(&mut self, ms: Millis) {
        let target = self.now.saturating_add(ms);
        let mut fired: Vec<(ConnId, Millis)> = Vec::new();
        loop {
            let next = self
                .timers()
                .into_iter()
                .filter(|(id, t)| *t <= target && !fired.contains(&(*id, *t)))
                .min_by_key(|(_, t)| *t);
            // The hub's timer (retention purge) fires before connection
            // timers due later.
            let hub_due = self
                .hub
                .poll_timeout()
                .filter(|t| *t <= target && next.is_none_or(|(_, c)| *t <= c));
            if let Some(t) = hub_due {
                self.now = self.now.max(t);
                self.hub.handle_timeout(self.now);
                self.pump();
                continue;
            }
            let Some((id, t)) = next else { break };
            fired.push((id, t));
            self.now = self.now.max(t);
            if let Some(c) = self.conns.get_mut(&id) {
                c.stream.handle_timeout(self.now);
            }
            if let Some(c) = self.components.get_mut(&id) {
                c.stream.handle_timeout(self.now);
            }
            self.pump();
        }
        self.now = target;
    }

    /// Jump to the next timer and fire it; false when no timer is armed.
    pub fn jump_to_next_timeout(&mut self) -> bool {
        match self.next_timeout() {
            Some(t) => {
                self.advance(t.saturating_sub(self.now));
                true
            }
            None => false,
        }
    }

    /// Start an in-memory [`ClientStream`] over a plain connection (it
    /// negotiates STARTTLS itself when offered); pumps until it settles.
    pub fn connect_client(&mut self, cfg: ClientConfig) -> ClientId {
        self.connect_client_with(cfg, false)
    }

    /// [`connect_client`](Self::connect_client), optionally over direct TLS.
    pub fn connect_client_with(&mut self, cfg: ClientConfig, direct_tls: bool) -> ClientId {
        let id = self.clients.len();
        let conn = self.next_conn;
        let bindings = direct_tls.then(|| Self::fake_bindings(conn));
        let seed = self.seed ^ 0xc11e_0000_0000_0000;
        let stream = ClientStream::new(
            cfg,
            Entropy::from_u64(seed.wrapping_add(id as u64)),
            self.now,
            bindings,
        );
        self.clients.push(SimClient {
            stream,
            conn,
            events: VecDeque::new(),
            closed: false,
        });
        let opened = self.open_conn(direct_tls, Some(id));
        debug_assert_eq!(opened, conn);
        id
    }

    /// The client's machine (bound JID, online state).
    pub fn client(&self, id: ClientId) -> Option<&ClientStream> {
        self.clients.get(id).map(|c| &c.stream)
    }

    /// A client's stream, to drive it by hand (the world does not run
    /// clients' timers: its clients are scripted).
    pub fn client_mut(&mut self, id: ClientId) -> Option<&mut ClientStream> {
        self.clients.get_mut(id).map(|c| &mut c.stream)
    }

    /// The server-side connection of a client.
    pub fn client_conn(&self, id: ClientId) -> Option<ConnId> {
        self.clients.get(id).map(|c| c.conn)
    }

    /// The client sends a stanza (once online).
    pub fn client_send_stanza(&mut self, id: ClientId, stanza: &Element) {
        if let Some(c) = self.clients.get_mut(id) {
            c.stream.send_stanza(self.now, stanza);
        }
        self.pump();
    }

    /// Everything that happened to the client since the last call.
    pub fn client_events(&mut self, id: ClientId) -> Vec<ClientEvent> {
        self.pump();
        self.clients
            .get_mut(id)
            .map(|c| c.events.drain(..).collect())
            .unwrap_or_default()
    }

    /// The client closes its stream gracefully.
    pub fn close_client(&mut self, id: ClientId) {
        if let Some(c) = self.clients.get_mut(id) {
            c.stream.close();
        }
        self.pump();
    }

    /// Run every machine until none has output left.
    pub fn pump(&mut self) {
        for _ in 0..MAX_PUMP_ROUNDS {
            let mut progress = false;
            let ids: Vec<ConnId> = self.conns.keys().copied().collect();
            for id in ids {
                progress |= self.drain_conn(id);
            }
            let ids: Vec<ConnId> = self.components.keys().copied().collect();
            for id in ids {
                progress |= self.drain_component(id);
            }
            for id in 0..self.clients.len() {
                progress |= self.drain_client(id);
            }
            progress |= self.drain_hub();
            if !progress {
                return;
            }
        }
        tracing::error!("simulated world did not settle");
    }

    /// The session of a connection ended: the hub hears it (unless the
    /// session lives on elsewhere), and the unacknowledged stanzas are
    /// routed once it released the session ([`Self::released`]), so the
    /// hub no longer counts the session as a target.
    fn end_session(&mut self, conn: ConnId) {
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        if !c.retired {
            if let Some(sm_id) = c.stream.sm_id() {
                self.sm_sessions.unregister(sm_id, c.hub_id);
            }
        }
        if c.bound && !c.retired {
            c.bound = false;
            c.ending = true;
            self.hub.session_closed(self.now, c.hub_id);
            return;
        }
        self.left_behind(conn);
    }

    /// The hub let go of the session `hub_id`: what its connection was
    /// never acknowledged goes back (the runtime's `Drained`).
    fn released(&mut self, hub_id: ConnId) {
        let Some((id, c)) = self
            .conns
            .iter_mut()
            .find(|(_, c)| c.hub_id == hub_id && c.ending)
        else {
            return;
        };
        c.ending = false;
        let id = *id;
        self.left_behind(id);
    }

    /// What the session of connection `conn` left behind goes back, by the
    /// runtime's rules ([`left_behind`]): messages to their account, error
    /// replies to requests routed.
    fn left_behind(&mut self, conn: ConnId) {
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        let undelivered = std::mem::take(&mut c.undelivered);
        let never_taken = std::mem::take(&mut c.never_taken);
        let domain = c.stream.account().map(|a| a.domain().to_owned());
        for stanza in left_behind(undelivered, never_taken, domain.as_deref()) {
            match stanza {
                LeftBehind::Redeliver { stanza, .. } => self.hub.redeliver(self.now, stanza),
                LeftBehind::Route(stanza) => self.route(stanza),
            }
        }
    }

    /// A stream asked to resume `previd`: take the session from the stream
    /// holding it, if it belongs to the same account (the runtime's
    /// registry, [`SmRegistry`]).
    fn resume(&mut self, conn: ConnId, previd: &str) {
        let account = self
            .conns
            .get(&conn)
            .and_then(|c| c.stream.account())
            .map(|a| a.bare_str())
            .unwrap_or_default();
        let holder = self.sm_sessions.holder(previd, &account);
        let mut found = None;
        let mut hub_id = conn;
        let old = holder.and_then(|h| {
            self.conns
                .iter_mut()
                .find(|(id, c)| **id != conn && c.hub_id == h && !c.retired)
        });
        if let Some((_, old)) = old {
            found = old.stream.take_suspended();
            if found.is_some() {
                old.retired = true;
                hub_id = old.hub_id;
                self.sm_sessions.awake(&account, hub_id);
            }
        }
        let now = self.now;
        if let Some(c) = self.conns.get_mut(&conn) {
            let resumed = found.is_some();
            if resumed {
                c.hub_id = hub_id;
                c.bound = true;
            }
            c.stream.resume(now, found);
            if resumed {
                self.hub.session_resumed(now, hub_id);
            }
        }
    }

    /// The live connection carrying the hub's session `hub_id`.
    fn session_conn(&mut self, hub_id: ConnId) -> Option<&mut SimConn> {
        self.conns
            .values_mut()
            .find(|c| c.hub_id == hub_id && !c.retired)
    }

    fn close_transport(&mut self, conn: ConnId) {
        if let Some(c) = self.components.get_mut(&conn) {
            c.transport_closed = true;
            self.component_domains.retain(|_, owner| *owner != conn);
            return;
        }
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        if c.transport_closed {
            return;
        }
        c.transport_closed = true;
        if let Some(client) = c.client.and_then(|id| self.clients.get_mut(id)) {
            if !client.closed {
                client.closed = true;
                client.events.push_back(ClientEvent::Closed);
            }
        }
    }

    fn drain_conn(&mut self, id: ConnId) -> bool {
        let mut progress = false;
        loop {
            let Some(c) = self.conns.get_mut(&id) else {
                return progress;
            };
            let Some(out) = c.stream.poll_output() else {
                return progress;
            };
            progress = true;
            if c.transport_closed
                && matches!(
                    out,
                    ConnOutput::Write(_) | ConnOutput::StartTls | ConnOutput::Stanza(_)
                )
            {
                continue; // nobody reads or sends on it any more
            }
            match out {
                ConnOutput::Write(bytes) => match c.client {
                    Some(cid) => {
                        if let Some(client) = self.clients.get_mut(cid) {
                            client.stream.handle_input(self.now, &bytes);
                        }
                    }
                    None => c.to_client.extend_from_slice(&bytes),
                },
                ConnOutput::StartTls => {
                    c.tls = true;
                    c.stream.tls_established(self.now, Self::fake_bindings(id));
                }
                ConnOutput::Storage { id: req, request } => {
                    let result = self.store.execute(request);
                    c.stream.handle_storage(self.now, req, result);
                }
                ConnOutput::Account { id: req, op } => {
                    let result = account_op(&mut self.store, &mut self.registrations, self.now, op);
                    c.stream.handle_account(self.now, req, result);
                }
                ConnOutput::CheckPassword { id: req, check } => {
                    c.stream.handle_password_check(self.now, req, check.run())
                }
                ConnOutput::AuthStarted { .. }
                | ConnOutput::AuthFailed { .. }
                | ConnOutput::Authenticated { .. } => {}
                ConnOutput::Bound(jid) => {
                    c.bound = true;
                    self.hub.session_bound(self.now, c.hub_id, jid);
                }
                ConnOutput::Stanza(el) => {
                    if c.bound {
                        self.hub.from_session(self.now, c.hub_id, el);
                    }
                }
                ConnOutput::Undelivered(stanzas) => c.undelivered.extend(stanzas),
                ConnOutput::PageDelivered => {
                    let hub_id = c.hub_id;
                    self.hub.offline_page_delivered(self.now, hub_id);
                }
                ConnOutput::Resume { previd } => self.resume(id, &previd),
                // The runtime's rule: the fence follows the session's
                // stanzas through the hub and its storage.
                ConnOutput::Fence(seq) => {
                    if c.bound {
                        let token = self.next_fence;
                        self.next_fence += 1;
                        self.fences.insert(token, (c.hub_id, seq));
                        self.hub.fence(self.now, Fence(token));
                    } else {
                        c.stream.fence_done(self.now, seq);
                    }
                }
                ConnOutput::SmEnabled(sm_id) => {
                    if let Some(account) = c.stream.account() {
                        self.sm_sessions
                            .register(sm_id, account.bare_str(), c.hub_id);
                    }
                }
                ConnOutput::Resumed(_) => {}
                ConnOutput::Close => {
                    self.close_transport(id);
                    self.end_session(id);
                }
                // WebSocket only; the world's connections are TCP.
                ConnOutput::DropTransport => self.transport_gone(id),
            }
        }
    }

    fn drain_component(&mut self, id: ConnId) -> bool {
        let mut progress = false;
        loop {
            let Some(c) = self.components.get_mut(&id) else {
                return progress;
            };
            let Some(out) = c.stream.poll_output() else {
                return progress;
            };
            progress = true;
            if c.transport_closed {
                continue;
            }
            match out {
                AcceptOutput::Write(bytes) => c.to_client.extend_from_slice(&bytes),
                // The driver's claim: one connection per component domain.
                AcceptOutput::Claim(jid) => {
                    match self.component_domains.entry(jid.domain().to_owned()) {
                        std::collections::btree_map::Entry::Occupied(_) => {
                            c.stream.close(Some(StreamErrorCondition::Conflict))
                        }
                        std::collections::btree_map::Entry::Vacant(slot) => {
                            slot.insert(id);
                            c.stream.claimed(self.now);
                        }
                    }
                }
                AcceptOutput::Stanza(el) => self.route(el),
                AcceptOutput::Close => self.close_transport(id),
            }
        }
    }

    /// What the runtime's router does, by the same rule
    /// ([`Partitions::destination`]): a stanza for a connected component
    /// goes to its connection, everything else to the hub.
    fn route(&mut self, stanza: Element) {
        let component = match self.partitions.destination(stanza.attr("to")) {
            Destination::Component { domain, .. } => self
                .component_domains
                .get(&domain)
                .copied()
                .and_then(|id| self.components.get_mut(&id)),
            Destination::Partition(_) | Destination::Remote { .. } => None,
        };
        match component {
            Some(c) => c.stream.send_stanza_at(self.now, &stanza),
            None => self.hub.routed(self.now, stanza),
        }
    }

    fn drain_client(&mut self, id: ClientId) -> bool {
        let mut progress = false;
        loop {
            let Some(c) = self.clients.get_mut(id) else {
                return progress;
            };
            let Some(out) = c.stream.poll_output() else {
                return progress;
            };
            progress = true;
            let conn = c.conn;
            match out {
                ClientOutput::Write(bytes) => {
                    if let Some(s) = self.conns.get_mut(&conn) {
                        if !s.transport_closed {
                            s.stream.handle_input(self.now, &bytes);
                        }
                    }
                }
                ClientOutput::StartTls => c
                    .stream
                    .tls_established(self.now, Self::fake_bindings(conn)),
                ClientOutput::Online(jid) => c.events.push_back(ClientEvent::Online(jid)),
                ClientOutput::Stanza(el) => c.events.push_back(ClientEvent::Stanza(el)),
                ClientOutput::Failed(why) => c.events.push_back(ClientEvent::Failed(why)),
                ClientOutput::Close => {
                    // Deliver what the server still has for the stream
                    // close, then drop the transport.
                    self.drain_conn(conn);
                    self.transport_gone(conn);
                }
            }
        }
    }

    fn drain_hub(&mut self) -> bool {
        let mut progress = false;
        while let Some(out) = self.hub.poll_output() {
            progress = true;
            match out {
                HubOutput::Deliver { conn, stanza } => {
                    if let Some(c) = self.session_conn(conn) {
                        if c.stream.is_closed() {
                            c.never_taken.push(stanza);
                        } else {
                            c.stream.send_stanza(&stanza);
                        }
                    }
                }
                HubOutput::Route(stanza) => self.route(stanza),
                HubOutput::Storage { id, request } => {
                    let result = self.store.execute(request);
                    self.hub.handle_storage(self.now, id, result);
                }
                HubOutput::Forward { notice, .. } => self.hub.notice(self.now, notice),
                HubOutput::Fence(Fence(token)) => {
                    let now = self.now;
                    if let Some((hub_id, seq)) = self.fences.remove(&token) {
                        if let Some(c) = self.session_conn(hub_id) {
                            c.stream.fence_done(now, seq);
                        }
                    }
                }
                HubOutput::Close { conn, condition } => {
                    if let Some(c) = self.session_conn(conn) {
                        c.stream.close(condition);
                    }
                }
                HubOutput::OfflinePageSent { conn } => {
                    if let Some(c) = self.session_conn(conn) {
                        c.stream.mark_page();
                    }
                }
                // Deliveries here are synchronous and a lost transport is
                // reported at once, so no stanza reaches a hibernated
                // connection before its hub knows: nothing to report.
                HubOutput::HibernationNoted { .. } => {}
                HubOutput::Released { conn } => self.released(conn),
            }
        }
        progress
    }
}

/// What the runtime does for an [`AccountOp`]: the per-address limit for
/// registrations, then credentials with [`SIM_ITERATIONS`].
fn account_op(
    store: &mut MemoryStore,
    limit: &mut RegistrationThrottle<()>,
    now: Millis,
    op: AccountOp,
) -> AccountOpResult {
    let result = match &op {
        AccountOp::Register { account, password } => {
            if limit.try_acquire(&(), now).is_err() {
                return AccountOpResult::Throttled;
            }
            let r = store.add_user(account, password, SIM_ITERATIONS);
            if r != StorageResult::Done {
                limit.release(&(), now);
            }
            r
        }
        AccountOp::SetPassword { account, password } => {
            store.set_password(account, password, SIM_ITERATIONS)
        }
    };
    match result {
        StorageResult::Done => AccountOpResult::Done,
        StorageResult::Conflict => AccountOpResult::Conflict,
        StorageResult::NotFound => AccountOpResult::NotFound,
        other => AccountOpResult::Failed(format!("{other:?}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ns;

    fn world() -> World {
        let mut w = World::new(ServerStreamConfig::default(), HubConfig::default());
        assert!(w.add_user("alice@localhost", "alice-pw"));
        assert!(w.add_user("bob@localhost", "bob-pw"));
        w
    }

    fn online(w: &mut World, jid: &str, pw: &str) -> ClientId {
        let Ok(jid) = Jid::parse(jid) else {
            panic!("bad jid {jid}");
        };
        let id = w.connect_client(ClientConfig::new(jid.clone(), pw));
        let events = w.client_events(id);
        assert_eq!(events, vec![ClientEvent::Online(jid)], "client {id}");
        id
    }

    #[test]
    fn clients_negotiate_and_exchange_a_message() {
        let mut w = world();
        let a = online(&mut w, "alice@localhost/a", "alice-pw");
        let b = online(&mut w, "bob@localhost/b", "bob-pw");
        assert!(w.client_conn(a).is_some_and(|c| w.is_secure(c)));
        let msg = Element::new(ns::CLIENT, "message")
            .with_attr("to", "bob@localhost/b")
            .with_attr("type", "chat")
            .with_child(Element::new(ns::CLIENT, "body").with_text("hi"));
        w.client_send_stanza(a, &msg);
        let ev = w.client_events(b);
        assert_eq!(ev.len(), 1, "{ev:?}");
        let ClientEvent::Stanza(got) = &ev[0] else {
            panic!("{ev:?}");
        };
        assert_eq!(got.attr("from"), Some("alice@localhost/a"));
        assert_eq!(got.child_text(ns::CLIENT, "body").as_deref(), Some("hi"));
        w.close_client(a);
        assert_eq!(w.client_events(a), vec![ClientEvent::Closed]);
        assert_eq!(w.hub().session_count(), 1);
    }

    #[test]
    fn wrong_password_fails_and_auth_timeout_fires() {
        let mut w = world();
        let Ok(jid) = Jid::parse("alice@localhost") else {
            panic!()
        };
        let id = w.connect_client(ClientConfig::new(jid, "nope"));
        let ev = w.client_events(id);
        assert!(
            !ev.iter().any(|e| matches!(e, ClientEvent::Online(_))),
            "{ev:?}"
        );
        // ClientStream should also report `Failed` and close the transport,
        // but its `fail()` is a no-op after `handle_element` already set the
        // phase to Closed (reported bug); assert only what holds today.
        assert!(w
            .client(id)
            .is_some_and(|c| c.is_closed() && !c.is_online()));

        let raw = w.connect(false);
        assert!(!w.is_closed(raw));
        assert_eq!(w.next_timeout(), Some(EPOCH + 30_000));
        assert!(w.jump_to_next_timeout());
        assert!(w.is_closed(raw));
        let out = String::from_utf8_lossy(&w.take_server_output(raw)).into_owned();
        assert!(out.contains("connection-timeout"), "{out}");
    }

    #[test]
    fn same_seed_same_bytes() {
        let run = || {
            let mut w = world();
            let c = w.connect(false);
            w.client_sends(
                c,
                b"<?xml version='1.0'?><stream:stream xmlns='jabber:client' \
                  xmlns:stream='http://etherx.jabber.org/streams' to='localhost' version='1.0'>",
            );
            w.take_server_output(c)
        };
        assert_eq!(run(), run());
    }
}
