//! XEP-0163 Personal Eventing Protocol: every account's bare JID is a
//! XEP-0060 publish-subscribe service its owner publishes to (avatars,
//! OMEMO device lists, bookmarks), read by others as each node's access
//! model allows and pushed to the owner's resources and to allowed
//! contacts whose clients asked for the node ([`interest`]: XEP-0115 caps
//! with `+notify`).
//!
//! Nodes are account documents ([`store`]), read on demand when a request
//! names them and kept in the account's state while it stays loaded; an
//! index of the nodes (with their access models and sizes) answers
//! disco#items and the budgets without reading every node.
//!
//! Resources (contacts' and the owner's own) that come online with caps
//! get the last item of every node they want and may read (§4.3.2), and
//! so do a contact's known resources when the owner approves its presence
//! subscription (§4.3.3, [`Event::SubscriptionApproved`]).
//!
//! Besides caps, entities may subscribe explicitly (XEP-0060 §6.1) and
//! the owner keeps affiliations ([`members`]): `member`s read whitelist
//! nodes, `outcast`s read nothing. Items of a node that does not persist
//! them live only in its loaded state, yet count against the budgets.
//!
//! Other modules' data is kept in step through events, never their
//! state: a stored vCard's photo becomes the XEP-0084 avatar ([`vcard`],
//! XEP-0398), legacy bookmarks in private storage and XEP-0402's node
//! follow each other ([`bookmarks`], XEP-0411), and every publish is
//! announced ([`Event::PepPublished`]).

pub mod access;
pub mod bookmarks;
pub mod config;
pub mod interest;
pub mod members;
mod notify;
pub mod protocol;
mod requests;
pub mod store;
pub mod vcard;

use self::access::{decide, Access, AccessModel, Affiliation, Requester};
use self::bookmarks::rewrite_legacy;
use self::config::SendLast;
use self::notify::notify;
use self::protocol::{error, item, notification, Refusal, Request, NS};
use self::requests::{
    configuration, configure, create, delete, disco_items, items, others, publish, published,
    purge, retract, Answer,
};
use self::store::{node_key, Entry, Index, Node, INDEX_KEY};
use super::{Addressed, Context, Event, Flow, Module, ModuleId};
use crate::jid::Jid;
use crate::ns;
use crate::stanza::{iq_result, StanzaError};
use crate::storage::{RequestId, StorageRequest, StorageResult};
use crate::xml::Element;
use std::collections::{BTreeMap, HashMap};

/// Its identity.
pub const ID: ModuleId = ModuleId::new("pep");

/// Largest item payload, serialized (XEP-0060 §7.1.3.6 `payload-too-big`).
pub const ITEM_BYTES_MAX: usize = 64 * 1024;
/// Largest stored node document.
pub const NODE_BYTES_MAX: usize = 512 * 1024;
/// Most nodes per account.
pub const NODES_MAX: usize = 100;
/// Most bytes stored in all of an account's nodes.
pub const ACCOUNT_BYTES_MAX: usize = 4 * 1024 * 1024;
/// Most resources of one contact whose presence is remembered.
const RESOURCES_MAX: usize = 16;
/// Most requests waiting for one read; beyond it they are refused
/// (`resource-constraint`) rather than queued without end.
const PARKED_MAX: usize = 256;

/// What the account's disco#info advertises (XEP-0163 §7, XEP-0223).
const FEATURES: &[&str] = &[
    NS,
    "http://jabber.org/protocol/pubsub#access-open",
    "http://jabber.org/protocol/pubsub#access-presence",
    "http://jabber.org/protocol/pubsub#access-roster",
    "http://jabber.org/protocol/pubsub#access-whitelist",
    "http://jabber.org/protocol/pubsub#auto-create",
    "http://jabber.org/protocol/pubsub#config-node",
    "http://jabber.org/protocol/pubsub#config-node-max",
    "http://jabber.org/protocol/pubsub#create-and-configure",
    "http://jabber.org/protocol/pubsub#create-nodes",
    "http://jabber.org/protocol/pubsub#delete-items",
    "http://jabber.org/protocol/pubsub#delete-nodes",
    "http://jabber.org/protocol/pubsub#last-published",
    "http://jabber.org/protocol/pubsub#manage-subscriptions",
    "http://jabber.org/protocol/pubsub#meta-data",
    "http://jabber.org/protocol/pubsub#modify-affiliations",
    "http://jabber.org/protocol/pubsub#persistent-items",
    "http://jabber.org/protocol/pubsub#publish",
    "http://jabber.org/protocol/pubsub#publish-options",
    "http://jabber.org/protocol/pubsub#retract-items",
    "http://jabber.org/protocol/pubsub#purge-nodes",
    "http://jabber.org/protocol/pubsub#retrieve-items",
    "http://jabber.org/protocol/pubsub#subscribe",
    // XEP-0411 and XEP-0402 §5.3 ([`bookmarks`]).
    "urn:xmpp:bookmarks-conversion:0",
    "urn:xmpp:bookmarks:1#compat",
];

/// What PEP keeps for a loaded account.
#[derive(Debug, Default)]
struct PepState {
    /// The nodes, once read.
    index: Option<Index>,
    /// Nodes read so far.
    nodes: HashMap<String, Node>,
    /// Contacts' available resources, as their presence arrived, with
    /// the XEP-0115 verification string they advertised: whom
    /// notifications go to.
    contacts: HashMap<String, BTreeMap<String, Option<String>>>,
}

/// The caps verification string an owner's session last advertised.
#[derive(Debug, Default)]
struct OwnCaps(Option<String>);

/// A document to read before a request can run.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Load {
    Index,
    Node(String),
}

/// Work waiting for a read.
#[derive(Debug, Clone)]
enum Parked {
    /// A request from `own` sessions or another entity.
    Iq { iq: Element, own: bool },
    /// The last items a resource wants (§4.3.2), by its caps.
    LastItems { full: String, ver: String },
    /// The last item of `node` for a resource (or a new subscriber).
    LastItem {
        full: String,
        node: String,
        subscribing: bool,
    },
    /// A vCard stored, whose photo becomes the XEP-0084 avatar.
    Vcard { xml: String },
    /// Legacy bookmarks stored, to convert to XEP-0402 items.
    Legacy { xml: String },
}

/// XEP-0163 on every account.
#[derive(Debug, Clone, Default)]
pub struct Pep {
    /// Reads in flight: the account and what is read.
    loading: HashMap<RequestId, (String, Load)>,
    /// Requests waiting for those reads.
    parked: HashMap<(String, Load), Vec<Parked>>,
    /// Which nodes clients want notifications for, by their caps.
    interests: interest::Interests,
    /// Reads of legacy bookmarks to rewrite, by account.
    legacy: HashMap<RequestId, String>,
}

impl Module for Pep {
    fn id(&self) -> ModuleId {
        ID
    }

    fn account_identities(&self) -> &'static [(&'static str, &'static str)] {
        &[("pubsub", "pep")]
    }

    fn account_features(&self) -> &'static [&'static str] {
        FEATURES
    }

    fn iq(&mut self, cx: &mut Context<'_>, to: Addressed<'_>, iq: &Element) -> Flow {
        let Addressed::Account { account, own } = to else {
            return Flow::Pass;
        };
        let disco_items = iq.attr("type") == Some("get")
            && iq
                .first_element()
                .is_some_and(|q| q.is(ns::DISCO_ITEMS, "query") && q.attr("node").is_none());
        if !disco_items && Request::parse(iq).is_none() {
            return Flow::Pass;
        }
        self.process(cx, account, own, iq.clone());
        Flow::Handled
    }

    /// The owner's own clients answer caps queries too.
    fn outbound(
        &mut self,
        cx: &mut Context<'_>,
        _account: &str,
        _conn: crate::hub::ConnId,
        stanza: &Element,
    ) -> Flow {
        if stanza.name != "iq" {
            return Flow::Pass;
        }
        self.caps_answer(cx, stanza)
    }

    /// An owner's session with caps gets the last items of the nodes its
    /// client wants when it comes online or its caps change (§4.3.2).
    fn presence_sending(
        &mut self,
        cx: &mut Context<'_>,
        account: &str,
        conn: crate::hub::ConnId,
        presence: &mut Element,
        broadcast: bool,
    ) {
        let Some((node, ver)) = interest::advertised(presence).filter(|_| broadcast) else {
            return;
        };
        let Some(full) = cx
            .account(account)
            .and_then(|a| a.session_by_conn(conn))
            .map(|s| s.jid.to_string())
        else {
            return;
        };
        let changed = cx
            .session_state::<OwnCaps>(account, conn)
            .is_some_and(|seen| {
                let changed = seen.0.as_deref() != Some(ver.as_str());
                seen.0 = Some(ver.clone());
                changed
            });
        if changed {
            self.wants_last_items(cx, account, full, &node, ver);
        }
    }

    /// §4.3.3: a contact the owner just approved gets, on each resource
    /// whose caps are known, the last items it may now read.
    fn event(&mut self, cx: &mut Context<'_>, event: Event<'_>) {
        let (account, contact) = match event {
            Event::SubscriptionApproved { account, contact } => (account, contact),
            Event::VcardStored { account, vcard } => {
                return self.vcard_stored(cx, account, vcard.to_owned());
            }
            Event::PrivateStored { account, xml } => {
                return self.legacy_stored(cx, account, xml.to_owned());
            }
            _ => return,
        };
        let resources: Vec<(String, String)> = cx
            .account_state_ref::<PepState>(account)
            .and_then(|s| s.contacts.get(contact))
            .map(|r| {
                r.iter()
                    .filter_map(|(full, ver)| Some((full.clone(), ver.clone()?)))
                    .collect()
            })
            .unwrap_or_default();
        for (full, ver) in resources {
            if self.interests.wants(&ver).is_some() {
                self.last_items(cx, account, full, ver);
            }
        }
    }

    /// Contacts' presence says where notifications go; their clients'
    /// answers to our caps queries say which nodes they want.
    fn inbound(&mut self, cx: &mut Context<'_>, account: &str, stanza: &Element) -> Flow {
        if stanza.name == "iq" {
            return self.caps_answer(cx, stanza);
        }
        if stanza.name != "presence" {
            return Flow::Pass;
        }
        let Some(from) = stanza.attr("from").and_then(|f| Jid::parse(f).ok()) else {
            return Flow::Pass;
        };
        let bare = from.bare_str();
        if from.resource().is_none() || bare == account {
            return Flow::Pass;
        }
        let full = from.to_string();
        let in_roster = cx
            .account(account)
            .is_some_and(|a| a.roster.contains_key(bare.as_str()));
        match stanza.attr("type") {
            None if in_roster => {
                let caps = interest::advertised(stanza);
                let mut changed = false;
                if let Some(state) = cx.account_state::<PepState>(account) {
                    let resources = state.contacts.entry(bare.to_string()).or_default();
                    if resources.len() < RESOURCES_MAX || resources.contains_key(&full) {
                        let ver = caps.as_ref().map(|(_, v)| v.clone());
                        changed = resources.insert(full.clone(), ver.clone()) != Some(ver);
                    }
                }
                // A resource that came online, or whose client now wants
                // other nodes, gets their last items (§4.3.2).
                if let Some((node, ver)) = caps.filter(|_| changed) {
                    self.wants_last_items(cx, account, full, &node, ver);
                }
            }
            Some("unavailable" | "error") => {
                if let Some(state) = cx.account_state::<PepState>(account) {
                    if let Some(resources) = state.contacts.get_mut(bare.as_str()) {
                        resources.remove(&full);
                        if resources.is_empty() {
                            state.contacts.remove(bare.as_str());
                        }
                    }
                }
            }
            _ => {}
        }
        Flow::Pass
    }

    fn storage_answer(&mut self, cx: &mut Context<'_>, id: RequestId, result: StorageResult) {
        if let Some(account) = self.legacy.remove(&id) {
            rewrite_legacy(cx, &account, result);
            return cx.release_account(&account);
        }
        let Some((account, load)) = self.loading.remove(&id) else {
            return;
        };
        let parked = self
            .parked
            .remove(&(account.clone(), load.clone()))
            .unwrap_or_default();
        let doc = match result {
            StorageResult::Blob(doc) => doc,
            other => {
                tracing::error!(account, ?load, ?other, "reading PEP data failed");
                for p in parked {
                    if let Parked::Iq { iq, .. } = p {
                        refuse(cx, &iq, &account, (StanzaError::InternalServerError, None));
                    }
                }
                cx.release_account(&account);
                return;
            }
        };
        if let Some(state) = cx.account_state::<PepState>(&account) {
            match &load {
                Load::Index => {
                    state.index = Some(doc.as_deref().map(Index::parse).unwrap_or_default());
                }
                Load::Node(name) => match doc.as_deref().and_then(Node::parse) {
                    Some(node) => {
                        state.nodes.insert(name.clone(), node);
                    }
                    // The index named a node that is not (or no longer
                    // readably) stored: forget it rather than read again.
                    None => {
                        tracing::warn!(account, node = name, "PEP node missing or unreadable");
                        if let Some(index) = state.index.as_mut() {
                            index.0.remove(name);
                        }
                    }
                },
            }
        }
        for p in parked {
            match p {
                Parked::Iq { iq, own } => self.process(cx, &account, own, iq),
                Parked::LastItems { full, ver } => self.last_items(cx, &account, full, ver),
                Parked::LastItem {
                    full,
                    node,
                    subscribing,
                } => self.last_item(cx, &account, full, node, subscribing),
                Parked::Vcard { xml } => self.vcard_stored(cx, &account, xml),
                Parked::Legacy { xml } => self.legacy_stored(cx, &account, xml),
            }
        }
        cx.release_account(&account);
    }
}

impl Pep {
    /// Run a request once what it needs is in memory, or read that first.
    fn process(&mut self, cx: &mut Context<'_>, account: &str, own: bool, iq: Element) {
        let request = match Request::parse(&iq) {
            Some(Ok(r)) => Some(r),
            Some(Err(refusal)) => return refuse(cx, &iq, account, refusal),
            None => None,
        };
        let Some(state) = cx.account_state::<PepState>(account) else {
            return refuse(cx, &iq, account, (StanzaError::InternalServerError, None));
        };
        let owner = own || requester(&iq).as_deref() == Some(account);
        let need = match (&state.index, &request) {
            (None, _) => Some(Load::Index),
            (Some(index), Some(r))
                if index.0.contains_key(r.node()) && !state.nodes.contains_key(r.node()) =>
            {
                Some(Load::Node(r.node().to_owned()))
            }
            // Who may see an affiliated node is in the node: disco#items
            // reads them one by one (at most `NODES_MAX`).
            (Some(index), None) if !owner => index
                .0
                .iter()
                .find(|(n, e)| e.affiliated && !state.nodes.contains_key(*n))
                .map(|(n, _)| Load::Node(n.clone())),
            _ => None,
        };
        if let Some(load) = need {
            return self.wait(cx, account, load, Parked::Iq { iq, own });
        }
        let from = requester(&iq).unwrap_or_default();
        let bookmarks = matches!(
            &request,
            Some(Request::Publish { node, .. } | Request::Retract { node, .. }
                | Request::Purge { node } | Request::Delete { node })
                if node == bookmarks::NODE
        ) && owner;
        let result = match request {
            None => Ok(disco_items(cx, account, owner, &iq)),
            Some(
                Request::Items { .. }
                | Request::Subscribe { .. }
                | Request::Unsubscribe { .. }
                | Request::Info { .. },
            ) if !owner => others(cx, account, &iq, &from, request),
            Some(_) if !owner => Err((StanzaError::Forbidden, None)),
            Some(Request::Publish {
                node,
                id,
                payload,
                options,
            }) => publish(cx, account, node, id, payload, options.as_ref(), true),
            Some(Request::Items { node, max, ids }) => {
                items(cx, account, owner, &iq, node, max, &ids)
            }
            Some(Request::Retract { node, ids, notify }) => {
                retract(cx, account, node, &ids, notify)
            }
            Some(Request::Create { node, config }) => create(cx, account, node, config.as_ref()),
            Some(Request::Delete { node }) => delete(cx, account, node),
            Some(Request::Purge { node }) => purge(cx, account, node),
            Some(Request::ConfigureGet { node }) => configuration(cx, account, &node),
            Some(Request::ConfigureSet { node, fields }) => configure(cx, account, &node, &fields),
            Some(Request::SubscriptionsGet { node }) => members::subscriptions(cx, account, &node),
            Some(Request::SubscriptionsSet { node, changes }) => {
                members::set_subscriptions(cx, account, &node, &changes)
            }
            Some(Request::AffiliationsGet { node }) => members::affiliations(cx, account, &node),
            Some(Request::AffiliationsSet { node, changes }) => {
                members::set_affiliations(cx, account, &node, &changes)
            }
            Some(r) => others(cx, account, &iq, &from, Some(r)),
        };
        match result {
            Ok(Answer {
                payload,
                event,
                last,
            }) => {
                let mut r = iq_result(&iq);
                r.set_attr("from", account);
                if let Some(p) = payload {
                    r = r.with_child(p);
                }
                cx.route(r);
                if let Some((audience, event)) = event {
                    notify(cx, &self.interests, account, &audience, &event);
                    published(cx, account, &event);
                }
                if let Some((to, node)) = last {
                    self.last_item(cx, account, to, node, true);
                }
                if bookmarks {
                    self.read_legacy(cx, account);
                }
            }
            Err(refusal) => refuse(cx, &iq, account, refusal),
        }
    }

    /// A caps answer to one of our queries: the resources that waited get
    /// their last items.
    fn caps_answer(&mut self, cx: &mut Context<'_>, iq: &Element) -> Flow {
        let Some((ver, waiting)) = self.interests.answer(iq) else {
            return Flow::Pass;
        };
        for (owner, full) in waiting {
            self.last_items(cx, &owner, full, ver.clone());
        }
        Flow::Handled
    }

    /// Resource `full` advertised caps `node#ver`: its last items now if
    /// the caps are known, else once they are.
    fn wants_last_items(
        &mut self,
        cx: &mut Context<'_>,
        account: &str,
        full: String,
        node: &str,
        ver: String,
    ) {
        if self.interests.wants(&ver).is_some() {
            self.last_items(cx, account, full, ver);
        } else if let Some(query) = self.interests.ask(cx.now(), account, &full, node, &ver) {
            cx.route(query);
        }
    }

    /// §4.3.2: the last item of every node resource `full` (the owner's
    /// or a contact's) may read and its client (caps `ver`) wants.
    fn last_items(&mut self, cx: &mut Context<'_>, account: &str, full: String, ver: String) {
        let Some(state) = cx.account_state_ref::<PepState>(account) else {
            return;
        };
        let Some(index) = &state.index else {
            return self.wait(cx, account, Load::Index, Parked::LastItems { full, ver });
        };
        let Some(wanted) = self.interests.wants(&ver) else {
            return;
        };
        let bare = crate::archive::bare_of(&full);
        // Affiliated nodes are decided once read ([`Pep::last_item`]).
        let nodes: Vec<String> = index
            .0
            .iter()
            .filter(|(name, entry)| {
                wanted.contains(*name)
                    && (entry.affiliated
                        || access_for(
                            cx,
                            account,
                            bare,
                            entry.access,
                            &entry.groups,
                            Affiliation::None,
                        ) == Access::Granted)
            })
            .map(|(name, _)| name.clone())
            .collect();
        for node in nodes {
            self.last_item(cx, account, full.clone(), node, false);
        }
    }

    /// The newest item of `node`, to `full` (a resource, or a JID
    /// `subscribing`), if it may read it and the node sends it then
    /// (`pubsub#send_last_published_item`).
    fn last_item(
        &mut self,
        cx: &mut Context<'_>,
        account: &str,
        full: String,
        node: String,
        subscribing: bool,
    ) {
        let Some(state) = cx.account_state_ref::<PepState>(account) else {
            return;
        };
        let Some(n) = state.nodes.get(&node) else {
            let indexed = state
                .index
                .as_ref()
                .is_some_and(|i| i.0.contains_key(&node));
            if indexed {
                self.wait(
                    cx,
                    account,
                    Load::Node(node.clone()),
                    Parked::LastItem {
                        full,
                        node,
                        subscribing,
                    },
                );
            }
            return;
        };
        let sends = match n.config.send_last {
            SendLast::Never => false,
            SendLast::OnSub => subscribing,
            SendLast::OnSubAndPresence => true,
        };
        let Some((id, payload)) = n.items.last().filter(|_| sends) else {
            return;
        };
        let bare = crate::archive::bare_of(&full).to_owned();
        let access = access_for(
            cx,
            account,
            &bare,
            n.config.access_model,
            &n.config.roster_groups,
            n.affiliation(&bare),
        );
        if access != Access::Granted {
            return;
        }
        let event = Element::new(protocol::EVENT, "items")
            .with_attr("node", node.clone())
            .with_child(item(protocol::EVENT, id, payload));
        if bare != account && cx.withholds(account, &bare, &event) {
            return;
        }
        cx.route(notification(account, &full, event));
    }

    /// Park `parked` until `load` is read (reading it unless a read is in
    /// flight already).
    fn wait(&mut self, cx: &mut Context<'_>, account: &str, load: Load, parked: Parked) {
        let key = (account.to_owned(), load);
        if let Some(waiting) = self.parked.get_mut(&key) {
            if waiting.len() < PARKED_MAX {
                waiting.push(parked);
            } else if let Parked::Iq { iq, .. } = parked {
                refuse(cx, &iq, account, (StanzaError::ResourceConstraint, None));
            }
            return;
        }
        let storage_key = match &key.1 {
            Load::Index => INDEX_KEY.to_owned(),
            Load::Node(name) => node_key(name),
        };
        let id = cx.request(StorageRequest::LoadBlob {
            account: account.to_owned(),
            key: storage_key,
        });
        // The account stays in memory until the answer is used.
        cx.hold_account(account);
        self.loading.insert(id, key.clone());
        self.parked.insert(key, vec![parked]);
    }
}

/// The bare JID that sent `iq`.
fn requester(iq: &Element) -> Option<String> {
    iq.attr("from")
        .and_then(|f| Jid::parse(f).ok())
        .map(|j| j.bare_str().to_string())
}

/// The domain of `account`, which errors are `by`.
fn domain(account: &str) -> &str {
    account.split_once('@').map_or(account, |(_, d)| d)
}

fn refuse(cx: &mut Context<'_>, iq: &Element, account: &str, refusal: Refusal) {
    if iq.attr("from").is_none() {
        return;
    }
    cx.route(error(iq, account, domain(account), refusal));
}

/// Whether `bare` may read a node of `account` with `model`, `groups`,
/// and `affiliation` for it: the owner always, others as the owner's
/// roster says.
fn access_for(
    cx: &Context<'_>,
    account: &str,
    bare: &str,
    model: AccessModel,
    groups: &[String],
    affiliation: Affiliation,
) -> Access {
    if bare == account {
        return Access::Granted;
    }
    let item = cx.account(account).and_then(|a| a.roster.get(bare));
    decide(
        model,
        groups,
        Requester::Other {
            subscribed: item.is_some_and(|i| i.subscription.from),
            groups: item.map_or(&[], |i| i.groups.as_slice()),
            affiliation,
        },
    )
}

/// Whether the sender of `iq` may read `node`.
fn access_of(cx: &Context<'_>, account: &str, owner: bool, iq: &Element, node: &Node) -> Access {
    if owner {
        return Access::Granted;
    }
    let bare = requester(iq).unwrap_or_default();
    access_for(
        cx,
        account,
        &bare,
        node.config.access_model,
        &node.config.roster_groups,
        node.affiliation(&bare),
    )
}

/// Whether `node`, as `name`, keeps within the node's and the account's
/// byte budgets (counting items kept only in memory too).
fn fits(index: &Index, name: &str, node: &Node) -> Result<(), Refusal> {
    let bytes = node.footprint();
    let others = index.bytes() - index.0.get(name).map_or(0, |e| e.bytes.min(index.bytes()));
    if bytes > NODE_BYTES_MAX || others.saturating_add(bytes) > ACCOUNT_BYTES_MAX {
        return Err((StanzaError::PolicyViolation, None));
    }
    Ok(())
}

/// The account's index and nodes ([`Pep::process`] read the index first).
fn state<'a>(cx: &'a mut Context<'_>, account: &str) -> Result<&'a mut PepState, Refusal> {
    cx.account_state::<PepState>(account)
        .filter(|s| s.index.is_some())
        .ok_or((StanzaError::InternalServerError, None))
}

/// Store `name` as it now is in the state (or its deletion) and the index.
fn store(cx: &mut Context<'_>, account: &str, name: &str) -> Result<(), Refusal> {
    let state = state(cx, account)?;
    let (doc, index) = match (state.nodes.get(name), state.index.as_mut()) {
        (Some(node), Some(index)) => {
            let doc = node.document();
            index.0.insert(name.to_owned(), Entry::of(node));
            (Some(doc), index.document())
        }
        (None, Some(index)) => {
            index.0.remove(name);
            (None, index.document())
        }
        (_, None) => return Err((StanzaError::InternalServerError, None)),
    };
    // Durable before the result and notifications leave.
    cx.commit(StorageRequest::StoreBlob {
        account: account.to_owned(),
        key: node_key(name),
        value: doc,
        limit: None,
    });
    cx.commit(StorageRequest::StoreBlob {
        account: account.to_owned(),
        key: INDEX_KEY.to_owned(),
        value: index,
        limit: None,
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::modules::pep::config::NodeConfig;

    /// Items of a node that does not store them count as much as stored
    /// ones: memory has the same budget as the disk.
    #[test]
    fn items_kept_in_memory_count_against_the_budgets() {
        let mut volatile = NodeConfig::default();
        volatile
            .apply(&vec![
                ("pubsub#persist_items".to_owned(), vec!["0".to_owned()]),
                ("pubsub#max_items".to_owned(), vec!["max".to_owned()]),
            ])
            .expect("valid");
        let mut node = Node::new(volatile);
        let payload = Element::new("urn:x", "data").with_text("x".repeat(ITEM_BYTES_MAX - 100));
        for i in 0..9 {
            node.publish(i.to_string(), payload.clone());
        }
        assert!(node.document().len() < 1024, "nothing stored");
        assert_eq!(
            fits(&Index::default(), "n", &node),
            Err((StanzaError::PolicyViolation, None))
        );
        let mut index = Index::default();
        let mut small = Node::new(node.config.clone());
        small.publish("a".into(), payload);
        index.0.insert("other".into(), Entry::of(&small));
        assert!(index.bytes() > ITEM_BYTES_MAX - 100);
    }

    #[test]
    fn error_carries_the_pubsub_condition() {
        let iq = Element::parse(
            b"<iq xmlns='jabber:client' type='get' id='1' from='c@localhost/r' to='a@localhost'/>",
        )
        .expect("XML");
        let e = error(
            &iq,
            "a@localhost",
            domain("a@localhost"),
            (
                StanzaError::NotAuthorized,
                Some("presence-subscription-required"),
            ),
        );
        let err = e.child(ns::CLIENT, "error").expect("error");
        assert_eq!(err.attr("type"), Some("auth"));
        assert_eq!(err.attr("by"), Some("localhost"));
        assert!(err
            .child(protocol::ERRORS, "presence-subscription-required")
            .is_some());
        assert_eq!(e.attr("from"), Some("a@localhost"));
    }
}
