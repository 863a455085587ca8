//! What a module sees of its hub: the one door from `modules` into the hub.
//!
//! A module never holds the hub. Each hook gets a [`Context`] borrowing it
//! for the call: reads of the accounts and settings, and actions that only
//! queue outputs (routing, bouncing, storage requests). The hub takes the
//! module out of its list for the call, so the hub stays `&mut` and the
//! module stays `&mut` without sharing.

use super::{Account, ConnId, Hub, Pending};
use crate::modules::{Addressed, Event, Flow, Module};
use crate::stanza::StanzaError;
use crate::storage::{RequestId, StorageRequest, StorageResult};
use crate::time::Millis;
use crate::xml::Element;

/// A module's view of its hub during one hook.
#[derive(Debug)]
pub struct Context<'a> {
    hub: &'a mut Hub,
    /// The module's index in the hub's list: storage answers come back to it.
    module: usize,
}

impl Context<'_> {
    /// The time of the input being processed (ms since the Unix epoch).
    pub fn now(&self) -> Millis {
        self.hub.now
    }

    /// When the hub started (its first input), for uptime.
    pub fn started(&self) -> Millis {
        self.hub.started.unwrap_or(self.hub.now)
    }

    /// Software name and version (XEP-0092).
    pub fn software(&self) -> (&str, &str) {
        (&self.hub.cfg.software.0, &self.hub.cfg.software.1)
    }

    /// Every feature of the server's disco#info.
    pub fn server_features(&self) -> &[&'static str] {
        &self.hub.features
    }

    /// The per-account limits.
    pub fn quotas(&self) -> &super::Quotas {
        &self.hub.cfg.quotas
    }

    /// XEP-0157 contact addresses: (kind, URIs).
    pub fn contact(&self) -> &[(String, Vec<String>)] {
        &self.hub.cfg.contact
    }

    /// Domains of external components (XEP-0114).
    pub fn components(&self) -> &[String] {
        &self.hub.cfg.components
    }

    /// Service domains the modules host.
    pub fn services(&self) -> &[String] {
        self.hub.services()
    }

    /// A loaded account of this partition.
    pub fn account(&self, account: &str) -> Option<&Account> {
        self.hub.account(account)
    }

    /// The state this module keeps for session `conn` of `account`,
    /// created with `Default` on first use; `None` when there is no such
    /// session.
    pub fn session_state<T: std::any::Any + Send + Default>(
        &mut self,
        account: &str,
        conn: ConnId,
    ) -> Option<&mut T> {
        let session = self.hub.account_mut(account)?.session_by_conn_mut(conn)?;
        Some(session.ext.get_or_default::<T>())
    }

    /// The state this module keeps for a loaded `account`, created with
    /// `Default` on first use; `None` when the account is not loaded here.
    /// It lives as long as the account stays in memory: what must outlive
    /// that is stored as an account document.
    pub fn account_state<T: std::any::Any + Send + Default>(
        &mut self,
        account: &str,
    ) -> Option<&mut T> {
        Some(self.hub.account_mut(account)?.ext.get_or_default::<T>())
    }

    /// The state this module keeps for `account`, if it keeps any.
    pub fn account_state_ref<T: std::any::Any>(&self, account: &str) -> Option<&T> {
        self.hub.account(account)?.ext.get::<T>()
    }

    /// Drop the state this module keeps for `account`.
    pub fn account_state_remove<T: std::any::Any>(&mut self, account: &str) {
        if let Some(a) = self.hub.account_mut(account) {
            a.ext.remove::<T>();
        }
    }

    /// The state this module keeps for session `conn` of `account`, if it
    /// keeps any.
    pub fn session_state_ref<T: std::any::Any>(&self, account: &str, conn: ConnId) -> Option<&T> {
        self.hub
            .account(account)?
            .session_by_conn(conn)?
            .ext
            .get::<T>()
    }

    /// Drop the state this module keeps for session `conn` of `account`.
    pub fn session_state_remove<T: std::any::Any>(&mut self, account: &str, conn: ConnId) {
        if let Some(session) = self
            .hub
            .account_mut(account)
            .and_then(|a| a.session_by_conn_mut(conn))
        {
            session.ext.remove::<T>();
        }
    }

    /// A write whose outcome clients are told: every stanza this hub sends
    /// after it waits until it is durable (an iq `result` is a promise).
    pub fn commit(&mut self, request: StorageRequest) {
        self.hub.commit(request);
    }

    /// Write `stanza` to session `conn` (not routed: no `to` is needed).
    pub fn deliver(&mut self, conn: ConnId, stanza: Element) {
        self.hub.deliver(conn, stanza);
    }

    /// Hand a stanza to the hub owning its `to`.
    pub fn route(&mut self, stanza: Element) {
        self.hub.route(stanza);
    }

    /// Answer `stanza` with an error (not an error or a result).
    pub fn bounce(&mut self, stanza: &Element, condition: StanzaError) {
        self.hub.bounce(stanza, condition);
    }

    /// Ask storage; the answer comes to this module's
    /// [`Module::storage_answer`] with the returned id.
    pub fn request(&mut self, request: StorageRequest) -> RequestId {
        self.hub.request_id(request, Pending::Module(self.module))
    }

    /// From [`Module::account_loaded`]: a storage request the account's
    /// waiting work waits for, so that it runs with what the answer brings
    /// (XEP-0153 reads the vCard of an account whose photo hash was never
    /// stored, so the first presence already carries it). The answer comes
    /// to [`Module::storage_answer`] first.
    pub fn prepare(&mut self, account: &str, request: StorageRequest) -> RequestId {
        let id = self.request(request);
        self.hub.preparing(account, id);
        id
    }

    /// Store `presence` as session `conn`'s current presence and send it
    /// again to its subscribers and the account's available resources
    /// (a module changed what it says).
    pub fn rebroadcast(&mut self, account: &str, conn: ConnId, presence: Element) {
        let Some(session) = self
            .hub
            .account_mut(account)
            .and_then(|a| a.session_by_conn_mut(conn))
        else {
            return;
        };
        session.last_presence = Some(presence.to_xml().into_boxed_str());
        self.hub
            .broadcast_presence(account, conn, &presence, &Default::default());
    }

    /// Hand `body` to this module in the partition owning `owner` (a bare
    /// JID or a domain): about `account`, which that partition loads
    /// first, or about its domain ([`Module::notice`]).
    pub fn forward(&mut self, owner: &str, account: Option<&str>, body: Element) {
        let Some(module) = self.hub.modules_id(self.module) else {
            return;
        };
        self.hub.visible(super::HubOutput::Forward {
            owner: owner.to_owned(),
            notice: super::Notice {
                module,
                account: account.map(str::to_owned),
                body,
            },
        });
    }

    /// The hub's randomness ([`Hub::set_entropy`]), for ids others must
    /// not guess.
    pub fn entropy(&mut self) -> &mut crate::entropy::Entropy {
        &mut self.hub.entropy
    }

    /// The account's data was deleted from the store: its sessions end
    /// (`<not-authorized/>`), its contacts' rosters drop it, the hub
    /// forgets it.
    pub fn account_deleted(&mut self, account: &str) {
        self.hub.account_deleted(account);
    }

    /// The message is accepted for `account` (it will be delivered or
    /// kept): the modules' [`Module::accepting`] hooks run on it (the
    /// archive stamps its stanza-id).
    pub fn accept(&mut self, account: &str, message: &mut Element) {
        self.hub.accepting(account, message);
    }

    /// Mark the end of a page of stanzas delivered to session `conn`: once
    /// its client has them, [`Module::page_delivered`] says so (the
    /// connection reports it through
    /// [`Hub::offline_page_delivered`](super::Hub::offline_page_delivered)).
    pub fn page_sent(&mut self, conn: ConnId) {
        self.hub.visible(super::HubOutput::OfflinePageSent { conn });
    }

    /// Keep `account` in memory, though it has no session, until as many
    /// [`Context::release_account`] calls (work for it is in flight).
    pub fn hold_account(&mut self, account: &str) {
        *self.hub.holds.entry(account.to_owned()).or_default() += 1;
    }

    /// One hold of [`Context::hold_account`] ends.
    pub fn release_account(&mut self, account: &str) {
        self.hub.release_account(account);
    }

    /// Whether a module withholds `stanza`, which this module would send
    /// on the account's behalf to `contact` (a bare JID): the other
    /// modules' [`Module::broadcasting`] decide (XEP-0191 withholds from
    /// blocked contacts what their presence would not reach either).
    pub fn withholds(&mut self, account: &str, contact: &str, stanza: &Element) -> bool {
        self.hub.module_broadcasting(account, contact, stanza) == Flow::Handled
    }

    /// Tell the other modules that `event` happened.
    pub fn announce(&mut self, event: Event<'_>) {
        self.hub.announce(event);
    }

    /// A write nothing waits for (failures are logged).
    pub fn write(&mut self, request: StorageRequest) {
        self.hub.write(request);
    }
}

impl Hub {
    /// Run `hook` on each module in order until one handles it. A module
    /// is out of the list while its hook runs, so when a hook leads back
    /// here (an event it announces) every module but itself hears it.
    fn each_module(
        &mut self,
        mut hook: impl FnMut(&mut dyn Module, &mut Context<'_>) -> Flow,
    ) -> Flow {
        for index in 0..self.modules.len() {
            if let Some(flow) = self.with_module(index, &mut hook) {
                if flow == Flow::Handled {
                    return Flow::Handled;
                }
            }
        }
        Flow::Pass
    }

    /// Run `hook` on the module at `index`, if it is there.
    pub(super) fn with_module<T>(
        &mut self,
        index: usize,
        hook: impl FnOnce(&mut dyn Module, &mut Context<'_>) -> T,
    ) -> Option<T> {
        let mut module = self.modules.get_mut(index)?.take()?;
        let result = hook(
            module.as_mut(),
            &mut Context {
                hub: self,
                module: index,
            },
        );
        self.modules[index] = Some(module);
        Some(result)
    }

    /// An iq request for the modules.
    pub(super) fn module_iq(&mut self, to: Addressed<'_>, iq: &Element) -> Flow {
        self.each_module(|m, cx| m.iq(cx, to, iq))
    }

    /// An account was loaded: the modules set up their state.
    pub(super) fn modules_account_loaded(
        &mut self,
        account: &str,
        documents: &crate::storage::Documents,
    ) {
        self.each_module(|m, cx| {
            m.account_loaded(cx, account, documents);
            Flow::Pass
        });
    }

    /// The identity of the module at `index`.
    fn modules_id(&self, index: usize) -> Option<crate::modules::ModuleId> {
        self.module_ids.get(index).copied()
    }

    /// A notice for one module, by its identity.
    pub(super) fn module_notice(&mut self, notice: &super::Notice) {
        let Some(index) = self.module_ids.iter().position(|id| *id == notice.module) else {
            return;
        };
        let account = notice.account.as_deref();
        self.with_module(index, |m, cx| m.notice(cx, account, &notice.body));
    }

    /// A message no session takes; `false` when no module kept it.
    pub(super) fn module_unavailable(
        &mut self,
        account: &str,
        message: &mut Element,
        redelivered: bool,
    ) -> bool {
        self.each_module(|m, cx| m.unavailable(cx, account, message, redelivered)) == Flow::Handled
    }

    /// The client has the page marked on `conn`.
    pub(super) fn module_page_delivered(&mut self, account: &str, conn: ConnId) {
        self.each_module(|m, cx| {
            m.page_delivered(cx, account, conn);
            Flow::Pass
        });
    }

    /// A message or presence for a hosted service.
    pub(super) fn module_service_stanza(&mut self, domain: &str, stanza: &Element) -> Flow {
        self.each_module(|m, cx| m.service_stanza(cx, domain, stanza))
    }

    /// An iq result or error to the server, for the module that awaits it.
    pub(super) fn module_server_reply(&mut self, reply: &Element) {
        self.each_module(|m, cx| m.server_reply(cx, reply));
    }

    /// A stanza from a session, before the hub's outbound rules.
    pub(super) fn module_outbound(
        &mut self,
        account: &str,
        conn: ConnId,
        stanza: &Element,
    ) -> Flow {
        self.each_module(|m, cx| m.outbound(cx, account, conn, stanza))
    }

    /// A stanza for an account, before the delivery rules.
    pub(super) fn module_inbound(&mut self, account: &str, stanza: &Element) -> Flow {
        self.each_module(|m, cx| m.inbound(cx, account, stanza))
    }

    /// An available presence from a session, before it goes out.
    pub(super) fn presence_sending(
        &mut self,
        account: &str,
        conn: ConnId,
        presence: &mut Element,
        broadcast: bool,
    ) {
        self.each_module(|m, cx| {
            m.presence_sending(cx, account, conn, presence, broadcast);
            Flow::Pass
        });
    }

    /// Whether presence broadcast to `contact` goes out.
    pub(super) fn module_broadcasting(
        &mut self,
        account: &str,
        contact: &str,
        presence: &Element,
    ) -> Flow {
        self.each_module(|m, cx| m.broadcasting(cx, account, contact, presence))
    }

    /// A message from a session, before archiving (modules may change it).
    /// Returns the id the archive gave it.
    pub(super) fn sending(
        &mut self,
        account: &str,
        conn: ConnId,
        message: &mut Element,
    ) -> Option<crate::archive::ArchiveId> {
        let mut outgoing = crate::modules::Outgoing {
            stanza: message,
            archive_id: None,
        };
        self.each_module(|m, cx| {
            m.sending(cx, account, conn, &mut outgoing);
            Flow::Pass
        });
        outgoing.archive_id
    }

    /// A stanza accepted for an account, before delivery or offline
    /// storage.
    pub(super) fn accepting(&mut self, account: &str, stanza: &mut Element) {
        self.each_module(|m, cx| {
            m.accepting(cx, account, stanza);
            Flow::Pass
        });
    }

    /// The message, archived, before routing.
    pub(super) fn sent(
        &mut self,
        account: &str,
        conn: ConnId,
        message: &Element,
        archive_id: Option<crate::archive::ArchiveId>,
    ) {
        self.each_module(|m, cx| {
            m.sent(cx, account, conn, message, archive_id);
            Flow::Pass
        });
    }

    /// A stanza about to be delivered to sessions `to` of `account`.
    pub(super) fn delivering(&mut self, account: &str, stanza: &Element, to: &[ConnId]) {
        self.each_module(|m, cx| {
            m.delivering(cx, account, stanza, to);
            Flow::Pass
        });
    }

    /// Tell every module (but one whose hook announced it) about an event.
    pub(super) fn announce(&mut self, event: Event<'_>) {
        self.each_module(|m, cx| {
            m.event(cx, event);
            Flow::Pass
        });
    }

    /// A storage answer for the module at `index`.
    pub(super) fn module_storage_answer(
        &mut self,
        index: usize,
        id: RequestId,
        result: StorageResult,
    ) {
        self.with_module(index, |m, cx| m.storage_answer(cx, id, result));
    }

    /// Features the modules add to accounts' disco#info.
    pub(super) fn account_features(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.modules
            .iter()
            .flatten()
            .flat_map(|m| m.account_features().iter().copied())
    }

    /// Identities the modules add to accounts' disco#info.
    pub(super) fn account_identities(
        &self,
    ) -> impl Iterator<Item = &'static (&'static str, &'static str)> + '_ {
        self.modules
            .iter()
            .flatten()
            .flat_map(|m| m.account_identities().iter())
    }
}
