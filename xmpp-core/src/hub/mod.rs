//! The hub: sessions, routing, roster and presence for the accounts of one
//! partition, and the protocol modules (`crate::modules`) that do the rest
//! through [`Context`].
//!
//! A server runs several hubs, each owning the accounts whose bare JID hashes
//! to it, so routing scales with cores while every hub stays a pure machine.
//! A stanza is processed twice, as RFC 6121 describes it: *outbound* in the
//! sender's hub ([`Hub::from_session`]), which stamps, tracks presence and
//! subscriptions and emits [`HubOutput::Route`]; and *inbound* in the
//! recipient's hub ([`Hub::routed`]), which applies the delivery rules.

mod account;
mod account_end;
mod context;
#[cfg(test)]
pub(crate) mod drive;
mod durability;
mod extensions;
mod inbound;
mod outbound;
mod presence;
mod quotas;
mod roster;

pub use account::{Account, ConnId, Session};
pub use context::Context;
pub use durability::Fence;
pub use extensions::Extensions;
pub use quotas::Quotas;

use crate::jid::Jid;
use crate::modules::{Addressed, Flow, Module, ModuleSet};
use crate::spare::ReleaseSpare;
use crate::stanza::{error_reply, is_error_or_result, StanzaError};
use crate::storage::{RequestId, StorageRequest, StorageResult};
use crate::stream::StreamErrorCondition;
use crate::time::Millis;
use crate::xml::Element;
use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

/// Hub settings shared by all partitions.
#[derive(Debug, Clone)]
pub struct HubConfig {
    /// Hosted domains.
    pub domains: Vec<String>,
    /// Software name and version for XEP-0092 and disco.
    pub software: (String, String),
    /// The modules, with their settings ([`ModuleSet::standard`] by
    /// default): configuration takes out those switched off and sets the
    /// others up; an embedder adds its own. Each partition runs fresh
    /// instances.
    pub modules: ModuleSet,
    /// XEP-0157 contact addresses published in disco#info: (kind, URIs),
    /// kind being abuse, admin, feedback, sales, security, status or support.
    pub contact: Vec<(String, Vec<String>)>,
    /// Domains served by external components (XEP-0114). The driver hands
    /// stanzas for a connected component to its connection; one that
    /// reaches a hub found the component away.
    pub components: Vec<String>,
    /// Per-account limits.
    pub quotas: Quotas,
}

impl HubConfig {
    /// Every domain this server hosts: its own, its modules' services and
    /// its components' (with federation on, stanzas for any other domain
    /// leave over s2s).
    pub fn hosted_domains(&self) -> Vec<String> {
        let mut all: Vec<String> = self.domains.clone();
        all.extend(self.modules.service_domains());
        all.extend(self.components.iter().cloned());
        all.sort();
        all.dedup();
        all
    }
}

impl Default for HubConfig {
    fn default() -> Self {
        HubConfig {
            domains: vec!["localhost".into()],
            software: ("Vireo".into(), env!("CARGO_PKG_VERSION").into()),
            modules: ModuleSet::standard(),
            contact: Vec::new(),
            components: Vec::new(),
            quotas: Quotas::default(),
        }
    }
}

/// What a hub asks its driver to do.
#[derive(Debug, Clone, PartialEq)]
pub enum HubOutput {
    /// Write a stanza to a local connection.
    Deliver { conn: ConnId, stanza: Element },
    /// Hand a stanza to the hub that owns its `to` (maybe this one).
    Route(Element),
    /// Perform a storage request; hand the result back with the id.
    Storage {
        id: RequestId,
        request: StorageRequest,
    },
    /// Close a connection, with a stream error condition or gracefully.
    Close {
        conn: ConnId,
        condition: Option<StreamErrorCondition>,
    },
    /// Hand a notice to the hub that owns `owner` (a bare JID or a domain,
    /// partitioned like a stanza's `to`): [`Hub::notice`].
    Forward { owner: String, notice: Notice },
    /// A page of offline messages was delivered to `conn` (the `Deliver`s
    /// before this one): once the client has them all, call
    /// [`Hub::offline_page_delivered`] for the next page
    /// ([`ServerStream::mark_page`](crate::stream::ServerStream::mark_page)
    /// tells when).
    OfflinePageSent { conn: ConnId },
    /// A fence given to [`Hub::fence`]: everything before it is durable.
    Fence(Fence),
    /// The hub now knows `conn`'s session hibernates
    /// ([`Hub::session_hibernated`]); pass it on behind the `Deliver`s
    /// before it. Stanzas the connection gets after hibernating and before
    /// this were handed over by a hub that still believed the session live,
    /// so nobody woke the client for them: the connection reports them with
    /// another [`Hub::session_hibernated`], and the hub notifies for those.
    /// What comes after it, the hub handed a session it knew hibernates,
    /// and notified for itself.
    HibernationNoted { conn: ConnId },
    /// The hub has let go of `conn`'s session after [`Hub::session_closed`]:
    /// it processed the close and the work queued before it (behind an
    /// account load), and the outputs before this one are the last it has
    /// for the session. Only now may the driver close the session's
    /// mailbox and reroute what it never took (`sm::undeliverable`).
    /// Emitted once per `session_closed` call, at once for a session the
    /// hub no longer knows.
    Released { conn: ConnId },
}

/// Work a module in one hub partition hands the same module in another
/// through [`HubOutput::Forward`] ([`Context::forward`]): XEP-0357 tells
/// the partition owning a domain, where app servers reply, whose a
/// notification was.
#[derive(Debug, Clone, PartialEq)]
pub struct Notice {
    /// The module it is for.
    pub module: crate::modules::ModuleId,
    /// The account it is about, loaded before the module hears it; `None`
    /// for the partition's domain.
    pub account: Option<String>,
    /// What it says, in the module's terms.
    pub body: Element,
}

/// Presence that needs no account state when the account has no sessions:
/// available/unavailable broadcasts, probes and presence errors.
fn stateless_presence(stanza: &Element) -> bool {
    stanza.name == "presence"
        && matches!(
            stanza.attr("type"),
            None | Some("unavailable") | Some("probe") | Some("error")
        )
}

/// Work that waits for an account to load.
#[derive(Debug)]
enum Deferred {
    Bound(ConnId, Jid),
    Closed(ConnId),
    /// XEP-0198: the session's connection broke (its unacknowledged
    /// messages) or it was resumed; queued like the bind before it, or a
    /// session whose account still loads would never learn it.
    Hibernated(ConnId, Vec<Element>),
    Resumed(ConnId),
    FromSession(ConnId, Element),
    Routed(Element),
    Redeliver(Element),
    Notice(Notice),
}

impl Deferred {
    /// Roughly the memory the work holds while it waits for its account.
    fn approx_bytes(&self) -> usize {
        const FIXED: usize = 64;
        FIXED
            + match self {
                Deferred::FromSession(_, s) | Deferred::Routed(s) | Deferred::Redeliver(s) => {
                    s.approx_size()
                }
                Deferred::Hibernated(_, unacked) => unacked.iter().map(Element::approx_size).sum(),
                _ => 0,
            }
    }
}

#[derive(Debug)]
enum Slot {
    /// The load's sequence number (fences wait for it) and the work queued.
    Loading(u64, Vec<Deferred>),
    /// Loaded, but modules read more before the queued work runs
    /// ([`Context::prepare`]): the account is there for their state, its
    /// work still waits.
    Preparing(Box<Preparing>),
    Loaded(Account),
}

/// An account whose modules are still reading what its work needs.
#[derive(Debug)]
struct Preparing {
    account: Account,
    seq: u64,
    queue: Vec<Deferred>,
    /// Storage answers still awaited.
    waits: usize,
}

/// What a pending storage request was for.
#[derive(Debug)]
enum Pending {
    Load(String),
    /// A module's request: the module's index in the hub's list.
    Module(usize),
}

/// One hub partition.
#[derive(Debug)]
pub struct Hub {
    cfg: Arc<HubConfig>,
    /// The modules, each taken out while one of its hooks runs.
    modules: Vec<Option<Box<dyn Module>>>,
    /// Each module's identity, by index (the module itself is out of its
    /// slot while one of its hooks runs).
    module_ids: Vec<crate::modules::ModuleId>,
    /// Service domains the modules host.
    services: Vec<String>,
    features: Vec<&'static str>,
    accounts: HashMap<String, Slot>,
    /// The account documents loaded with every account (the modules'
    /// and the hub's own).
    documents: crate::storage::DocumentKeys,
    /// Which account each bound connection belongs to.
    conns: HashMap<ConnId, String>,
    pending: HashMap<RequestId, Pending>,
    /// Module requests that an account being prepared waits for.
    preparations: HashMap<RequestId, String>,
    /// Accounts modules keep in memory while work for them is in flight
    /// ([`Context::hold_account`]), with how many holds.
    holds: HashMap<String, usize>,
    next_request: RequestId,
    out: VecDeque<HubOutput>,
    now: Millis,
    /// The first `now` this hub saw: its start, for uptime.
    started: Option<Millis>,
    /// Randomness for the modules ([`Context::entropy`]).
    entropy: crate::entropy::Entropy,
    /// Which partition of the server this hub is ([`Hub::set_partition`]).
    partition: usize,
    /// Answers, outputs held behind committed writes, and fences.
    durability: durability::Durability,
    /// [`Deferred::approx_bytes`] of the work queued behind account loads:
    /// stanzas to accounts being loaded are held here, not in storage
    /// requests, so a runtime bounding what it feeds the hub counts these
    /// too ([`Hub::held_bytes`]).
    deferred_bytes: usize,
}

impl Hub {
    /// A hub running fresh instances of the configured modules.
    pub fn new(cfg: Arc<HubConfig>) -> Self {
        let modules = cfg.modules.instances();
        Self::with_modules(cfg, modules)
    }

    /// A hub running `modules` instead of the configured ones.
    pub fn with_modules(cfg: Arc<HubConfig>, mut modules: Vec<Box<dyn Module>>) -> Self {
        // Stable: modules of one priority keep the order they were given.
        modules.sort_by_key(|m| std::cmp::Reverse(m.priority()));
        let mut documents: Vec<&'static str> = modules
            .iter()
            .flat_map(|m| m.account_documents().iter().copied())
            .collect();
        documents.dedup();
        let mut features: Vec<&'static str> = modules
            .iter()
            .flat_map(|m| m.server_features().iter().copied())
            .collect();
        // Core features the hub itself implements.
        features.push(crate::ns::ROSTER_VER);
        features.sort_unstable();
        features.dedup();
        let services = modules.iter().flat_map(|m| m.service_domains()).collect();
        let module_ids = modules.iter().map(|m| m.id()).collect();
        Hub {
            cfg,
            modules: modules.into_iter().map(Some).collect(),
            module_ids,
            services,
            features,
            documents: documents.into(),
            accounts: HashMap::new(),
            conns: HashMap::new(),
            pending: HashMap::new(),
            preparations: HashMap::new(),
            holds: HashMap::new(),
            next_request: 1,
            out: VecDeque::new(),
            now: 0,
            started: None,
            entropy: crate::entropy::Entropy::from_u64(0),
            partition: 0,
            durability: durability::Durability::default(),
            deferred_bytes: 0,
        }
    }

    /// Bytes of stanzas the hub holds while their accounts load. Together
    /// with its outstanding storage requests, this is what a runtime waits
    /// on before feeding the hub more from its peers: a flood to accounts
    /// nobody is logged in to would otherwise wait here unbounded.
    pub fn held_bytes(&self) -> usize {
        self.deferred_bytes
    }

    /// Seed the randomness modules draw from (archive ids); the driver
    /// passes OS randomness, the default seed is fixed, for simulations.
    pub fn set_entropy(&mut self, entropy: crate::entropy::Entropy) {
        self.entropy = entropy;
    }

    /// This hub is partition `index` of the server: work done once per
    /// server on a shared store (the archive retention purge) runs in
    /// partition 0.
    pub fn set_partition(&mut self, index: usize) {
        self.partition = index;
    }

    /// When the hub next wants [`Hub::handle_timeout`] (a module's timer,
    /// such as the archive retention purge), if ever.
    pub fn poll_timeout(&self) -> Option<Millis> {
        let started = self.started?;
        self.modules
            .iter()
            .flatten()
            .filter_map(|m| m.poll_timeout(started, self.partition))
            .min()
    }

    /// Time has reached [`Hub::poll_timeout`]: run the modules' timers
    /// that are due.
    pub fn handle_timeout(&mut self, now: Millis) {
        self.tick(now);
        let Some(started) = self.started else {
            return;
        };
        for index in 0..self.modules.len() {
            let due = self.modules[index]
                .as_ref()
                .and_then(|m| m.poll_timeout(started, self.partition))
                .is_some_and(|at| at <= now);
            if due {
                self.with_module(index, |m, cx| m.timeout(cx));
            }
        }
        self.release_durable();
    }

    /// Features advertised in the server's disco#info.
    pub fn features(&self) -> &[&'static str] {
        &self.features
    }

    /// The server's disco#info `<query/>` for `domain` (what XEP-0115 caps
    /// hash; the Disco module answers with the same element).
    pub fn disco_info(&self) -> Element {
        crate::modules::disco::info_query(&self.cfg.software.0, &self.features, &self.cfg.contact)
    }

    /// Next instruction for the driver.
    pub fn poll_output(&mut self) -> Option<HubOutput> {
        self.out.pop_front()
    }

    /// Number of bound sessions in this partition.
    pub fn session_count(&self) -> usize {
        self.conns.len()
    }

    /// A connection bound `jid`. A session already bound to the same full JID
    /// is replaced and told `<conflict/>` (RFC 6120 §7.7.2.2).
    pub fn session_bound(&mut self, now: Millis, conn: ConnId, jid: Jid) {
        self.tick(now);
        let account = jid.bare_str();
        // Known from now on, so stanzas the session sends while its account
        // loads are queued behind the bind instead of dropped.
        self.conns.insert(conn, account.clone());
        self.with_account(&account, Deferred::Bound(conn, jid));
    }

    /// True while the hub still counts `conn`'s session, which may still
    /// be delivered to: after `session_closed` too, until the work queued
    /// before it behind an account load has run.
    #[cfg(test)]
    pub(crate) fn knows_session(&self, conn: ConnId) -> bool {
        self.conns.contains_key(&conn)
    }

    /// A connection went away (closed, failed or kicked). The hub answers
    /// [`HubOutput::Released`] once it can no longer deliver to it.
    pub fn session_closed(&mut self, now: Millis, conn: ConnId) {
        self.tick(now);
        match self.conns.get(&conn).cloned() {
            Some(account) => self.with_account(&account, Deferred::Closed(conn)),
            None => self.visible(HubOutput::Released { conn }),
        }
    }

    /// A session's connection broke and the session waits to be resumed
    /// (XEP-0198): it stays available, and messages delivered to it from
    /// now on also trigger push notifications (XEP-0357). `unacked` are the
    /// messages it was sent but never acknowledged
    /// ([`ServerStream::unacked_messages`](crate::stream::ServerStream::unacked_messages)):
    /// the user has not seen them either, so they are announced at once.
    pub fn session_hibernated(&mut self, now: Millis, conn: ConnId, unacked: &[Element]) {
        self.tick(now);
        if let Some(account) = self.conns.get(&conn).cloned() {
            self.with_account(&account, Deferred::Hibernated(conn, unacked.to_vec()));
        }
    }

    /// A hibernated session was resumed: the user has seen what was
    /// waiting, so the push count starts again.
    pub fn session_resumed(&mut self, now: Millis, conn: ConnId) {
        self.tick(now);
        if let Some(account) = self.conns.get(&conn).cloned() {
            self.with_account(&account, Deferred::Resumed(conn));
        }
    }

    fn hibernated(&mut self, account: &str, conn: ConnId, unacked: &[Element]) {
        if self.set_hibernated(conn, true).is_some() {
            tracing::debug!(%account, conn, unacked = unacked.len(), "session hibernated");
            self.announce(crate::modules::Event::Unread {
                account,
                messages: unacked,
            });
            // In order with the deliveries (some may be held behind a commit).
            self.visible(HubOutput::HibernationNoted { conn });
        }
    }

    fn resumed(&mut self, account: &str, conn: ConnId) {
        if self.set_hibernated(conn, false).is_some() {
            tracing::debug!(%account, conn, "session resumed");
            self.announce(crate::modules::Event::Seen { account });
        }
    }

    fn set_hibernated(&mut self, conn: ConnId, hibernated: bool) -> Option<String> {
        let account = self.conns.get(&conn)?.clone();
        let session = self.account_mut(&account)?.session_by_conn_mut(conn)?;
        session.hibernated = hibernated;
        Some(account)
    }

    /// A stanza from a bound session (`from` already stamped by its stream).
    pub fn from_session(&mut self, now: Millis, conn: ConnId, stanza: Element) {
        self.tick(now);
        if let Some(account) = self.conns.get(&conn).cloned() {
            self.with_account(&account, Deferred::FromSession(conn, stanza));
        }
    }

    /// A stanza routed to a JID this partition owns.
    pub fn routed(&mut self, now: Millis, stanza: Element) {
        self.tick(now);
        let to = match stanza.attr("to").map(Jid::parse) {
            Some(Ok(j)) => j,
            _ => return, // the sender's stream normalized `to`; nothing to do
        };
        if self.is_service_domain(to.domain()) {
            return self.service_stanza(to.domain(), stanza);
        }
        if !self.is_local_domain(to.domain()) {
            // A component's stanzas only get here while it is away (RFC
            // 6120 §10.4: a service of ours that cannot take it); another
            // domain's when federation is off or could not take it.
            let cond = if self.is_component_domain(to.domain()) {
                StanzaError::ServiceUnavailable
            } else {
                StanzaError::RemoteServerNotFound
            };
            return self.bounce(&stanza, cond);
        }
        if to.local().is_none() {
            return self.server_stanza(stanza);
        }
        let account = to.bare_str();
        if !self.accounts.contains_key(&account) && stateless_presence(&stanza) {
            // An account that is not loaded has no sessions: availability
            // presence and probes have nobody to reach and change nothing,
            // so they are dropped without a storage round-trip (this is most
            // of the presence traffic of a big roster logging in).
            return;
        }
        self.with_account(&account, Deferred::Routed(stanza));
    }

    /// A notice from another partition (or this one): see [`Notice`].
    pub fn notice(&mut self, now: Millis, notice: Notice) {
        self.tick(now);
        match notice.account.clone() {
            Some(account) => self.with_account(&account, Deferred::Notice(notice)),
            None => self.module_notice(&notice),
        }
    }

    /// The client on `conn` has the last page of stanzas it was sent
    /// ([`HubOutput::OfflinePageSent`]): the module that paged them (the
    /// offline queue) sends the next one.
    pub fn offline_page_delivered(&mut self, now: Millis, conn: ConnId) {
        self.tick(now);
        if let Some(account) = self.conns.get(&conn).cloned() {
            self.module_page_delivered(&account, conn);
        }
        self.release_durable();
    }

    /// One hold on `account` ends ([`Context::hold_account`]); without
    /// holds and sessions it leaves memory.
    pub(super) fn release_account(&mut self, account: &str) {
        if let Some(n) = self.holds.get_mut(account) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.holds.remove(account);
                self.holds.release_spare();
                self.maybe_unload(account);
            }
        }
    }

    /// A message a session was sent but never acknowledged before it ended
    /// for good (XEP-0198 §5; `ConnOutput::Undelivered`). It was delivered
    /// and archived once already, so it keeps its archive id and is neither
    /// archived nor carbon-copied again: the account's available resources
    /// get it, or offline storage keeps it (waking the phone by push).
    pub fn redeliver(&mut self, now: Millis, stanza: Element) {
        self.tick(now);
        let Some(to) = stanza.attr("to").and_then(|t| Jid::parse(t).ok()) else {
            return;
        };
        if !self.is_local_domain(to.domain()) || to.local().is_none() {
            return;
        }
        self.with_account(&to.bare_str(), Deferred::Redeliver(stanza));
    }

    /// End every session of an account (account deleted).
    pub fn kick_account(&mut self, account: &str, condition: StreamErrorCondition) {
        if let Some(Slot::Loaded(acc)) = self.accounts.get(account) {
            let conns: Vec<ConnId> = acc.sessions.values().map(|s| s.conn).collect();
            for conn in conns {
                self.visible(HubOutput::Close {
                    conn,
                    condition: Some(condition),
                });
            }
        }
    }

    /// Close every session (server shutdown).
    pub fn shutdown(&mut self) {
        let conns: Vec<ConnId> = self.conns.keys().copied().collect();
        for conn in conns {
            self.visible(HubOutput::Close {
                conn,
                condition: Some(StreamErrorCondition::SystemShutdown),
            });
        }
    }

    /// A storage result for a request this hub emitted.
    pub fn handle_storage(&mut self, now: Millis, id: RequestId, result: StorageResult) {
        self.tick(now);
        self.answered(id);
        self.storage_answer(id, result);
        if let Some(account) = self.preparations.remove(&id) {
            self.preparations.release_spare();
            self.prepared(&account);
        }
        self.release_durable();
    }

    fn storage_answer(&mut self, id: RequestId, result: StorageResult) {
        let answered = self.pending.remove(&id);
        self.pending.release_spare();
        match answered {
            Some(Pending::Load(account)) => self.account_loaded(&account, result),
            Some(Pending::Module(index)) => self.module_storage_answer(index, id, result),
            // A plain write (`Hub::write`): nothing waits for it.
            None => {
                if let StorageResult::Failed(e) = result {
                    tracing::error!(error = %e, "storage write failed");
                }
            }
        }
    }

    /// Time moves on; the first instant seen is the hub's start.
    fn tick(&mut self, now: Millis) {
        self.now = now;
        self.started.get_or_insert(now);
    }

    pub(crate) fn is_local_domain(&self, domain: &str) -> bool {
        self.cfg.domains.iter().any(|d| d == domain)
    }

    /// A domain hosted by a module ([`Module::service_domains`]).
    pub(crate) fn is_service_domain(&self, domain: &str) -> bool {
        self.services.iter().any(|d| d == domain)
    }

    /// Whether a stanza to `to` is for a module's service (a room, a
    /// pubsub service): the stanzas that may fan out to many, which a
    /// driver may hold back while the budget they were charged to is spent.
    pub fn is_service_address(&self, to: &str) -> bool {
        let bare = to.split('/').next().unwrap_or_default();
        let domain = bare.rsplit('@').next().unwrap_or_default();
        self.is_service_domain(domain)
    }

    /// The service domains the modules host.
    pub(crate) fn services(&self) -> &[String] {
        &self.services
    }

    /// A domain served by an external component (XEP-0114).
    pub(crate) fn is_component_domain(&self, domain: &str) -> bool {
        self.cfg.components.iter().any(|d| d == domain)
    }

    /// [`Hub::request`], returning the request's id.
    fn request_id(&mut self, request: StorageRequest, purpose: Pending) -> RequestId {
        let id = self.next_request;
        self.next_request += 1;
        self.pending.insert(id, purpose);
        self.out.push_back(HubOutput::Storage { id, request });
        id
    }

    /// A write nothing waits for: it gets an id but no entry in `pending`
    /// (archiving makes two per message), and its answer is only checked
    /// for failure.
    pub(crate) fn write(&mut self, request: StorageRequest) {
        let id = self.next_request;
        self.next_request += 1;
        self.out.push_back(HubOutput::Storage { id, request });
    }

    pub(crate) fn deliver(&mut self, conn: ConnId, stanza: Element) {
        if stanza.name == "message" {
            // Only a hibernated session's account is copied: this runs for
            // every message delivered.
            let hibernated = self
                .conns
                .get(&conn)
                .filter(|account| {
                    self.account(account)
                        .and_then(|a| a.session_by_conn(conn))
                        .is_some_and(|s| s.hibernated)
                })
                .cloned();
            if let Some(account) = hibernated {
                // Queued for a phone that is not listening: wake it up.
                self.announce(crate::modules::Event::Unread {
                    account: &account,
                    messages: std::slice::from_ref(&stanza),
                });
            }
        }
        self.visible(HubOutput::Deliver { conn, stanza });
    }

    pub(crate) fn route(&mut self, stanza: Element) {
        self.visible(HubOutput::Route(stanza));
    }

    /// Answer `stanza` with an error, unless it is itself an error or result.
    pub(crate) fn bounce(&mut self, stanza: &Element, cond: StanzaError) {
        if is_error_or_result(stanza) || stanza.attr("from").is_none() {
            return;
        }
        let by = self.cfg.domains.first().cloned().unwrap_or_default();
        let reply = error_reply(stanza, cond, &by);
        self.route(reply);
    }

    /// Run `work` now if the account is loaded, else queue it behind a load.
    fn with_account(&mut self, account: &str, work: Deferred) {
        match self.accounts.get_mut(account) {
            Some(Slot::Loaded(_)) => self.run(account, work),
            Some(Slot::Preparing(p)) => {
                self.deferred_bytes += work.approx_bytes();
                p.queue.push(work)
            }
            Some(Slot::Loading(_, queue)) => {
                self.deferred_bytes += work.approx_bytes();
                queue.push(work)
            }
            None => {
                self.deferred_bytes += work.approx_bytes();
                let seq = self.load_started();
                self.accounts
                    .insert(account.to_owned(), Slot::Loading(seq, vec![work]));
                self.request_id(
                    StorageRequest::LoadAccount {
                        account: account.to_owned(),
                        documents: self.documents.clone(),
                    },
                    Pending::Load(account.to_owned()),
                );
            }
        }
    }

    fn account_loaded(&mut self, account: &str, result: StorageResult) {
        let Some(Slot::Loading(seq, queue)) = self.accounts.remove(account) else {
            return;
        };
        match result {
            StorageResult::Account(Some(mut data)) => {
                // The modules read the documents; the account keeps none.
                let documents = std::mem::take(&mut data.documents);
                let preparing = Preparing {
                    account: Account::from_data(data),
                    seq,
                    queue,
                    waits: 0,
                };
                self.accounts
                    .insert(account.to_owned(), Slot::Preparing(Box::new(preparing)));
                self.modules_account_loaded(account, &documents);
                if matches!(self.accounts.get(account), Some(Slot::Preparing(p)) if p.waits == 0) {
                    self.run_loaded(account);
                }
            }
            other => {
                if let StorageResult::Failed(e) = &other {
                    tracing::error!(account, error = %e, "loading account failed");
                }
                let missing = matches!(other, StorageResult::Account(None));
                for work in queue {
                    self.deferred_bytes = self.deferred_bytes.saturating_sub(work.approx_bytes());
                    self.run_missing(work, missing);
                }
                self.load_finished(seq);
            }
        }
    }

    /// A request made by [`Context::prepare`] for `account`.
    pub(super) fn preparing(&mut self, account: &str, id: RequestId) {
        if let Some(Slot::Preparing(p)) = self.accounts.get_mut(account) {
            p.waits += 1;
            self.preparations.insert(id, account.to_owned());
        }
    }

    /// One of the answers a preparing account waited for has been handled.
    fn prepared(&mut self, account: &str) {
        if let Some(Slot::Preparing(p)) = self.accounts.get_mut(account) {
            p.waits = p.waits.saturating_sub(1);
            if p.waits == 0 {
                self.run_loaded(account);
            }
        }
    }

    /// The account is ready: run what waited for it.
    fn run_loaded(&mut self, account: &str) {
        let Some(Slot::Preparing(p)) = self.accounts.remove(account) else {
            return;
        };
        let Preparing {
            account: loaded,
            seq,
            queue,
            ..
        } = *p;
        self.accounts
            .insert(account.to_owned(), Slot::Loaded(loaded));
        // Unloading between queued items would drop the account under a
        // bind that is still waiting in the queue.
        for work in queue {
            self.deferred_bytes = self.deferred_bytes.saturating_sub(work.approx_bytes());
            self.run_one(account, work);
        }
        self.load_finished(seq);
        self.maybe_unload(account);
    }

    /// Work for an account that does not exist (or could not be loaded).
    fn run_missing(&mut self, work: Deferred, missing: bool) {
        match work {
            Deferred::Bound(conn, _) => {
                self.conns.remove(&conn);
                self.visible(HubOutput::Close {
                    conn,
                    condition: Some(if missing {
                        StreamErrorCondition::NotAuthorized
                    } else {
                        StreamErrorCondition::InternalServerError
                    }),
                })
            }
            Deferred::Closed(conn) => {
                self.conns.remove(&conn);
                self.visible(HubOutput::Released { conn });
            }
            Deferred::FromSession(..)
            | Deferred::Notice(_)
            | Deferred::Hibernated(..)
            | Deferred::Resumed(_) => {}
            // A message for a deleted account is answered, not dropped.
            Deferred::Routed(stanza) | Deferred::Redeliver(stanza) => {
                let cond = if missing {
                    StanzaError::ServiceUnavailable
                } else {
                    StanzaError::InternalServerError
                };
                // RFC 6121 §8.5.1: presence to a missing account is dropped.
                if stanza.name != "presence" {
                    self.bounce(&stanza, cond);
                }
            }
        }
    }

    fn run(&mut self, account: &str, work: Deferred) {
        self.run_one(account, work);
        self.maybe_unload(account);
    }

    fn run_one(&mut self, account: &str, work: Deferred) {
        match work {
            Deferred::Bound(conn, jid) => self.bind(account, conn, jid),
            Deferred::Closed(conn) => {
                self.unbind(account, conn);
                // Behind the deliveries before it, some maybe held behind
                // a commit: they still reach the mailbox.
                self.visible(HubOutput::Released { conn });
            }
            Deferred::Hibernated(conn, unacked) => self.hibernated(account, conn, &unacked),
            Deferred::Resumed(conn) => self.resumed(account, conn),
            Deferred::FromSession(conn, stanza) => self.outbound(account, conn, stanza),
            Deferred::Routed(stanza) => self.inbound(account, stanza),
            Deferred::Redeliver(stanza) => self.redeliver_loaded(account, stanza),
            Deferred::Notice(notice) => self.module_notice(&notice),
        }
    }

    /// Accounts without sessions are dropped from memory: storage is
    /// write-through, so nothing is lost.
    fn maybe_unload(&mut self, account: &str) {
        let idle =
            matches!(self.accounts.get(account), Some(Slot::Loaded(a)) if a.sessions.is_empty());
        if idle && !self.holds.contains_key(account) {
            self.accounts.remove(account);
            self.accounts.release_spare();
        }
    }

    pub(crate) fn account_mut(&mut self, account: &str) -> Option<&mut Account> {
        match self.accounts.get_mut(account) {
            Some(Slot::Loaded(a)) => Some(a),
            Some(Slot::Preparing(p)) => Some(&mut p.account),
            _ => None,
        }
    }

    pub(crate) fn account(&self, account: &str) -> Option<&Account> {
        match self.accounts.get(account) {
            Some(Slot::Loaded(a)) => Some(a),
            Some(Slot::Preparing(p)) => Some(&p.account),
            _ => None,
        }
    }

    fn bind(&mut self, account: &str, conn: ConnId, jid: Jid) {
        let resource = jid.resource().unwrap_or_default().to_owned();
        let old = self
            .account_mut(account)
            .and_then(|a| a.sessions.get(&resource))
            .map(|s| s.conn);
        let full = old.is_none()
            && self
                .account(account)
                .is_some_and(|a| a.sessions.len() >= self.cfg.quotas.max_sessions);
        // At the limit, a hibernated session (XEP-0198: a connection that
        // broke, most likely this very client's earlier one) makes room:
        // the oldest ends as when too many hibernate, and what was queued
        // for it is rerouted at its end.
        let hibernated = self
            .account(account)
            .filter(|_| full)
            .and_then(|a| a.sessions.values().find(|s| s.hibernated))
            .map(|s| s.conn);
        if let Some(oldest) = hibernated {
            tracing::info!(
                account,
                conn = oldest,
                "session limit reached; ending the oldest hibernated session"
            );
            self.unbind(account, oldest);
            self.out.push_back(HubOutput::Close {
                conn: oldest,
                condition: Some(StreamErrorCondition::ResourceConstraint),
            });
        } else if full {
            // Prosody's max_resources: one session too many is refused, the
            // live ones stay (ending the oldest would let a stolen password
            // log the owner out over and over).
            tracing::info!(account, conn, "session limit reached; refused");
            self.conns.remove(&conn);
            self.out.push_back(HubOutput::Close {
                conn,
                condition: Some(StreamErrorCondition::ResourceConstraint),
            });
            return;
        }
        if let Some(old_conn) = old {
            self.unbind(account, old_conn);
            self.visible(HubOutput::Close {
                conn: old_conn,
                condition: Some(StreamErrorCondition::Conflict),
            });
        }
        match self.account_mut(account) {
            Some(acc) => {
                acc.sessions.insert(resource, Session::new(conn, jid));
                self.conns.insert(conn, account.to_owned());
            }
            // Not loaded (cannot happen while binds run from the load
            // queue): load it again rather than lose the session.
            None => self.with_account(account, Deferred::Bound(conn, jid)),
        }
    }

    fn unbind(&mut self, account: &str, conn: ConnId) {
        self.conns.remove(&conn);
        self.conns.release_spare();
        let was_available = self
            .account(account)
            .and_then(|a| a.session_by_conn(conn))
            .map(|s| (s.available, s.jid.clone(), s.directed.clone()));
        if let Some((false, jid, directed)) = &was_available {
            // Never available to its contacts, yet present where it sent
            // directed presence (a room it joined): those targets hear
            // that it is gone (RFC 6121 §4.6.3).
            for to in directed {
                let unavailable = crate::xml::Element::new(crate::ns::CLIENT, "presence")
                    .with_attr("type", "unavailable")
                    .with_attr("from", jid.to_string())
                    .with_attr("to", to.clone());
                self.route(unavailable);
            }
        }
        if let Some((true, jid, directed)) = was_available {
            let unavailable = crate::xml::Element::new(crate::ns::CLIENT, "presence")
                .with_attr("type", "unavailable")
                .with_attr("from", jid.to_string());
            self.broadcast_presence(account, conn, &unavailable, &directed);
            // Gone without saying goodbye.
            self.announce(crate::modules::Event::Offline {
                account,
                status: "",
            });
        }
        if let Some(acc) = self.account_mut(account) {
            acc.sessions.retain(|_, s| s.conn != conn);
        }
    }

    /// A stanza for a service a module hosts: iq requests go to the
    /// modules' `iq`, messages, presence and iq answers (to requests the
    /// service relayed) to their `service_stanza`; what none takes is
    /// answered `service-unavailable` (presence and answers are dropped).
    fn service_stanza(&mut self, domain: &str, stanza: Element) {
        let flow = match stanza.name.as_str() {
            "iq" if matches!(stanza.attr("type"), Some("get") | Some("set")) => {
                self.module_iq(Addressed::Service { domain }, &stanza)
            }
            _ => self.module_service_stanza(domain, &stanza),
        };
        if flow == Flow::Handled {
            return;
        }
        if stanza.name != "presence" {
            self.bounce(&stanza, StanzaError::ServiceUnavailable);
        }
    }

    /// An iq or other stanza addressed to the server itself.
    pub(crate) fn server_stanza(&mut self, stanza: Element) {
        if stanza.name != "iq" {
            return; // messages and presence to the server have no handler yet
        }
        if !matches!(stanza.attr("type"), Some("get") | Some("set")) {
            self.module_server_reply(&stanza);
            return;
        }
        let domain = stanza
            .attr("to")
            .and_then(|t| Jid::parse(t).ok())
            .map(|j| j.domain().to_owned())
            .unwrap_or_default();
        if self.module_iq(Addressed::Server { domain: &domain }, &stanza) == Flow::Pass {
            self.bounce(&stanza, StanzaError::ServiceUnavailable);
        }
    }
}

#[cfg(test)]
mod tests;
