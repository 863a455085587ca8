//! XEP-0060 Publish-Subscribe as a service at `pubsub.<domain>` for
//! every hosted domain: nodes any local user (or only administrators, as
//! configured) creates, publishes to and subscribes to, with access
//! models (open, authorize, whitelist), publish models, affiliations,
//! subscriptions awaiting an owner's approval (§8.6), item paging with
//! XEP-0059 and notifications of items, retractions, purges, deletions
//! (with redirects) and configuration changes.
//!
//! The service's records belong to its domain ([`store`]): nothing is
//! read before a request names a node, a node is read in pages and kept
//! while the partition runs (all of a service's stanzas come to the one
//! partition owning its domain), and every change is durable before its
//! result and its notifications leave.
//!
//! Not done: collection nodes, the `presence` and `roster` access models
//! (a service has no roster; PEP has them), several subscriptions of one
//! JID to a node, an entity's own affiliation list (§5.7), pending
//! subscriptions by ad-hoc command (§8.7), auto-create on publish.

pub mod affiliations;
pub mod config;
pub mod protocol;
pub mod settings;
pub mod store;
pub mod subscriptions;

use self::affiliations::{may_own, may_publish, may_read, may_retract, may_subscribe, Affiliation};
use self::config::NodeConfig;
use self::protocol::{Page, Request};
use self::settings::Settings;
use self::store::{Index, Item, Node, NS as STORE};
use self::subscriptions::{State, Subscription};
use super::pep::config::Fields;
use super::pep::protocol::{error, item, Refusal, EVENT, NS, OWNER};
use super::{Addressed, Context, Flow, Module, ModuleId};
use crate::jid::Jid;
use crate::ns;
use crate::stanza::{iq_result, StanzaError};
use crate::storage::{RequestId, StorageRequest, StorageResult};
use crate::xml::Element;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

/// Its identity.
pub const ID: ModuleId = ModuleId::new("pubsub");

/// Documents read per storage request.
const PAGE: usize = 256;
/// Most requests waiting for one read; beyond it they are refused
/// (`resource-constraint`) rather than queued without end.
const PARKED_MAX: usize = 256;

/// What the service's disco#info advertises.
const FEATURES: &[&str] = &[
    ns::DISCO_INFO,
    ns::DISCO_ITEMS,
    NS,
    "http://jabber.org/protocol/pubsub#access-authorize",
    "http://jabber.org/protocol/pubsub#access-open",
    "http://jabber.org/protocol/pubsub#access-whitelist",
    "http://jabber.org/protocol/pubsub#config-node",
    "http://jabber.org/protocol/pubsub#config-node-max",
    "http://jabber.org/protocol/pubsub#create-and-configure",
    "http://jabber.org/protocol/pubsub#create-nodes",
    "http://jabber.org/protocol/pubsub#delete-items",
    "http://jabber.org/protocol/pubsub#delete-nodes",
    "http://jabber.org/protocol/pubsub#instant-nodes",
    "http://jabber.org/protocol/pubsub#item-ids",
    "http://jabber.org/protocol/pubsub#manage-subscriptions",
    "http://jabber.org/protocol/pubsub#meta-data",
    "http://jabber.org/protocol/pubsub#modify-affiliations",
    "http://jabber.org/protocol/pubsub#outcast-affiliation",
    "http://jabber.org/protocol/pubsub#member-affiliation",
    "http://jabber.org/protocol/pubsub#persistent-items",
    "http://jabber.org/protocol/pubsub#publish",
    "http://jabber.org/protocol/pubsub#publish-only-affiliation",
    "http://jabber.org/protocol/pubsub#publish-options",
    "http://jabber.org/protocol/pubsub#publisher-affiliation",
    "http://jabber.org/protocol/pubsub#purge-nodes",
    "http://jabber.org/protocol/pubsub#retract-items",
    "http://jabber.org/protocol/pubsub#retrieve-default",
    "http://jabber.org/protocol/pubsub#retrieve-items",
    "http://jabber.org/protocol/pubsub#retrieve-subscriptions",
    "http://jabber.org/protocol/pubsub#subscribe",
    "http://jabber.org/protocol/pubsub#subscription-options",
    "http://jabber.org/protocol/pubsub#subscription-notifications",
    "http://jabber.org/protocol/rsm",
];

/// One service's records in memory, read on demand.
#[derive(Debug, Clone, Default)]
struct Service {
    /// Node names and creators, once read.
    index: Option<Index>,
    /// Nodes read so far.
    nodes: HashMap<String, Node>,
    /// Subscriptions by subscriber bare JID, once read: (node, jid).
    users: HashMap<String, BTreeMap<(String, String), Subscription>>,
}

/// Records to read before a request can run.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Load {
    Index,
    Node(String),
    User(String),
}

/// Work waiting for a read.
#[derive(Debug, Clone)]
enum Parked {
    /// An iq request.
    Iq(Element),
    /// An owner's answer to a §8.6 approval form.
    Approval(Element),
}

/// What a request is.
#[derive(Debug, Clone)]
enum Work {
    Pubsub(Request),
    DiscoInfo(Option<String>),
    DiscoItems(Option<String>),
    Approval {
        node: String,
        jid: String,
        allow: bool,
    },
}

impl Work {
    fn node(&self) -> Option<&str> {
        match self {
            Work::Pubsub(r) => r.node(),
            Work::DiscoInfo(n) | Work::DiscoItems(n) => n.as_deref(),
            Work::Approval { node, .. } => Some(node),
        }
    }
}

/// A successful request: the result's payload, and stanzas to send
/// after it (notifications, approval forms).
#[derive(Default)]
struct Answer {
    payload: Option<Element>,
    then: Vec<Element>,
}

impl Answer {
    fn empty() -> Result<Self, Refusal> {
        Ok(Answer::default())
    }

    fn with(payload: Element) -> Result<Self, Refusal> {
        Ok(Answer {
            payload: Some(payload),
            then: Vec::new(),
        })
    }
}

/// The XEP-0060 service.
#[derive(Debug, Clone)]
pub struct PubsubService {
    settings: Arc<Settings>,
    services: HashMap<String, Service>,
    /// Reads in flight: the service and what is read.
    loading: HashMap<RequestId, (String, Load)>,
    /// Pages read so far of multi-page reads.
    pages: HashMap<(String, Load), Vec<(String, String)>>,
    /// Work waiting for those reads.
    parked: HashMap<(String, Load), Vec<Parked>>,
    /// Reads in flight that a write has overtaken: read again.
    stale: HashSet<(String, Load)>,
}

impl Default for PubsubService {
    fn default() -> Self {
        PubsubService::new(Settings::default())
    }
}

impl PubsubService {
    /// The service with `settings`.
    pub fn new(settings: Settings) -> Self {
        PubsubService {
            settings: Arc::new(settings),
            services: HashMap::new(),
            loading: HashMap::new(),
            pages: HashMap::new(),
            parked: HashMap::new(),
            stale: HashSet::new(),
        }
    }

    /// Its settings.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }
}

impl Module for PubsubService {
    fn id(&self) -> ModuleId {
        ID
    }

    fn service_domains(&self) -> Vec<String> {
        self.settings.service_domains()
    }

    fn iq(&mut self, cx: &mut Context<'_>, to: Addressed<'_>, iq: &Element) -> Flow {
        let Addressed::Service { domain } = to else {
            return Flow::Pass;
        };
        if !self.settings.service_domains().iter().any(|d| d == domain) {
            return Flow::Pass;
        }
        if work(iq).is_none() {
            return Flow::Pass;
        }
        self.resume(cx, domain, Parked::Iq(iq.clone()));
        Flow::Handled
    }

    /// An owner's answer to an approval form (§8.6).
    fn service_stanza(&mut self, cx: &mut Context<'_>, domain: &str, stanza: &Element) -> Flow {
        if stanza.name != "message"
            || !self.settings.service_domains().iter().any(|d| d == domain)
            || subscriptions::authorization_answer(stanza).is_none()
        {
            return Flow::Pass;
        }
        self.resume(cx, domain, Parked::Approval(stanza.clone()));
        Flow::Handled
    }

    fn storage_answer(&mut self, cx: &mut Context<'_>, id: RequestId, result: StorageResult) {
        let Some((domain, load)) = self.loading.remove(&id) else {
            return;
        };
        let key = (domain.clone(), load.clone());
        let docs = match result {
            StorageResult::Blob(doc) => doc.map(|d| vec![(String::new(), d)]).unwrap_or_default(),
            StorageResult::Documents { items, more } => {
                let pages = self.pages.entry(key.clone()).or_default();
                let last = items.last().map(|(k, _)| k.clone());
                pages.extend(items);
                if more {
                    return self.read(cx, &domain, load, last);
                }
                let pages = self.pages.remove(&key).unwrap_or_default();
                if self.stale.remove(&key) {
                    return self.read(cx, &domain, load, None);
                }
                pages
            }
            other => {
                tracing::error!(domain, ?load, ?other, "reading pubsub records failed");
                self.pages.remove(&key);
                self.stale.remove(&key);
                for p in self.parked.remove(&key).unwrap_or_default() {
                    if let Parked::Iq(iq) = p {
                        refuse(cx, &iq, &domain, (StanzaError::InternalServerError, None));
                    }
                }
                return;
            }
        };
        let cap = self.settings.items_per_node_max;
        let bytes = self.settings.item_bytes_max;
        let svc = self.services.entry(domain.clone()).or_default();
        match &load {
            Load::Index => {
                svc.index = Some(
                    docs.first()
                        .map(|(_, d)| store::parse_index(d))
                        .unwrap_or_default(),
                );
            }
            Load::Node(name) => {
                let prefix = store::node_prefix(name);
                let docs: Vec<(String, String)> = docs
                    .into_iter()
                    .filter_map(|(k, v)| Some((k.strip_prefix(&prefix)?.to_owned(), v)))
                    .collect();
                match Node::from_documents(&docs, cap, bytes) {
                    Some(node) => {
                        svc.nodes.insert(name.clone(), node);
                    }
                    // The index named a node that is not (or no longer
                    // readably) stored: forget it rather than read again.
                    None => {
                        tracing::warn!(domain, node = name, "pubsub node missing or unreadable");
                        if let Some(index) = svc.index.as_mut() {
                            index.remove(name);
                        }
                    }
                }
            }
            Load::User(bare) => {
                let prefix = store::user_prefix(bare);
                let subs = docs
                    .into_iter()
                    .filter_map(|(k, v)| {
                        let key = store::parse_user_key(k.strip_prefix(&prefix)?)?;
                        let e = Element::parse(v.as_bytes()).ok()?;
                        Some((key, Subscription::from_element(&e)?.1))
                    })
                    .collect();
                svc.users.insert(bare.clone(), subs);
            }
        }
        for p in self.parked.remove(&key).unwrap_or_default() {
            self.resume(cx, &domain, p);
        }
    }
}

/// What an iq asks, if it is the service's.
fn work(iq: &Element) -> Option<Result<Work, Refusal>> {
    let q = iq.first_element()?;
    if iq.attr("type") == Some("get") && q.is(ns::DISCO_INFO, "query") {
        return Some(Ok(Work::DiscoInfo(q.attr("node").map(str::to_owned))));
    }
    if iq.attr("type") == Some("get") && q.is(ns::DISCO_ITEMS, "query") {
        return Some(Ok(Work::DiscoItems(q.attr("node").map(str::to_owned))));
    }
    Some(Request::parse(iq)?.map(Work::Pubsub))
}

/// The bare JID that sent `stanza`.
fn requester(stanza: &Element) -> Option<String> {
    stanza
        .attr("from")
        .and_then(|f| Jid::parse(f).ok())
        .map(|j| j.bare_str())
}

fn bare_of(jid: &str) -> &str {
    crate::archive::bare_of(jid)
}

fn refuse(cx: &mut Context<'_>, iq: &Element, domain: &str, refusal: Refusal) {
    if iq.attr("from").is_none() || iq.name != "iq" {
        return;
    }
    cx.route(error(iq, domain, domain, refusal));
}

/// A durable write of one of the service's documents.
fn put(cx: &mut Context<'_>, domain: &str, key: String, value: Option<String>) {
    cx.commit(StorageRequest::StoreBlob {
        account: domain.to_owned(),
        key,
        value,
        limit: None,
    });
}

/// A notification of `event` to `to` (§7.1.2.1).
fn notification(domain: &str, to: &str, headline: bool, event: Element) -> Element {
    let mut m = super::pep::protocol::notification(domain, to, event);
    if !headline {
        m.remove_attr("type");
    }
    m
}

impl PubsubService {
    /// Run `parked` once what it needs is in memory, or read that first.
    fn resume(&mut self, cx: &mut Context<'_>, domain: &str, parked: Parked) {
        let (stanza, work) = match &parked {
            Parked::Iq(iq) => match work(iq) {
                Some(Ok(w)) => (iq, w),
                Some(Err(refusal)) => return refuse(cx, iq, domain, refusal),
                None => return,
            },
            Parked::Approval(m) => match subscriptions::authorization_answer(m) {
                Some((node, jid, allow)) => (m, Work::Approval { node, jid, allow }),
                None => return,
            },
        };
        let Some(who) = requester(stanza) else {
            return;
        };
        if let Some(load) = self.missing(domain, &work, &who) {
            return self.wait(cx, domain, load, parked);
        }
        let stanza = stanza.clone();
        let result = self.run(cx, domain, &who, work);
        if stanza.name != "iq" {
            if let Ok(answer) = result {
                for s in answer.then {
                    cx.route(s);
                }
            }
            return;
        }
        match result {
            Ok(Answer { payload, then }) => {
                let mut r = iq_result(&stanza);
                r.set_attr("from", stanza.attr("to").unwrap_or(domain));
                if let Some(p) = payload {
                    r = r.with_child(p);
                }
                cx.route(r);
                // Routed after the result, behind the same writes.
                for s in then {
                    cx.route(s);
                }
            }
            Err(refusal) => refuse(cx, &stanza, domain, refusal),
        }
    }

    /// The first record `work` needs that is not in memory yet.
    fn missing(&self, domain: &str, work: &Work, who: &str) -> Option<Load> {
        let Some(svc) = self.services.get(domain) else {
            return Some(Load::Index);
        };
        let index = svc.index.as_ref()?;
        if let Some(node) = work.node() {
            if index.contains_key(node) && !svc.nodes.contains_key(node) {
                return Some(Load::Node(node.to_owned()));
            }
        }
        let needs_user = matches!(
            work,
            Work::Pubsub(Request::Subscribe { .. } | Request::MySubscriptions { .. })
        );
        (needs_user && !svc.users.contains_key(who)).then(|| Load::User(who.to_owned()))
    }

    /// Park `parked` until `load` is read (reading it unless a read is in
    /// flight already).
    fn wait(&mut self, cx: &mut Context<'_>, domain: &str, load: Load, parked: Parked) {
        let key = (domain.to_owned(), load.clone());
        if let Some(waiting) = self.parked.get_mut(&key) {
            if waiting.len() < PARKED_MAX {
                waiting.push(parked);
            } else if let Parked::Iq(iq) = parked {
                refuse(cx, &iq, domain, (StanzaError::ResourceConstraint, None));
            }
            return;
        }
        self.parked.insert(key, vec![parked]);
        self.read(cx, domain, load, None);
    }

    /// Ask storage for (the next page of) `load`.
    fn read(&mut self, cx: &mut Context<'_>, domain: &str, load: Load, after: Option<String>) {
        let prefix = match &load {
            Load::Index => None,
            Load::Node(name) => Some(store::node_prefix(name)),
            Load::User(bare) => Some(store::user_prefix(bare)),
        };
        let request = match prefix {
            None => StorageRequest::LoadBlob {
                account: domain.to_owned(),
                key: store::INDEX_KEY.to_owned(),
            },
            Some(prefix) => StorageRequest::ListBlobs {
                account: domain.to_owned(),
                prefix,
                after,
                max: PAGE,
            },
        };
        let id = cx.request(request);
        self.loading.insert(id, (domain.to_owned(), load));
    }

    fn run(
        &mut self,
        cx: &mut Context<'_>,
        domain: &str,
        who: &str,
        work: Work,
    ) -> Result<Answer, Refusal> {
        let settings = Arc::clone(&self.settings);
        let svc = self.services.entry(domain.to_owned()).or_default();
        let mut op = Op {
            cx,
            domain,
            who,
            settings: &settings,
            svc,
            touched: Vec::new(),
        };
        let result = match work {
            Work::DiscoInfo(node) => op.disco_info(node),
            Work::DiscoItems(node) => op.disco_items(node),
            Work::Approval { node, jid, allow } => op.decide(&node, &jid, allow),
            Work::Pubsub(request) => op.request(request),
        };
        // A subscriber's list being read now may miss what was just
        // written: read it again when that read ends.
        for bare in op.touched {
            let key = (domain.to_owned(), Load::User(bare));
            if self.parked.contains_key(&key) {
                self.stale.insert(key);
            }
        }
        result
    }
}

/// One request against one service.
struct Op<'a, 'c> {
    cx: &'a mut Context<'c>,
    domain: &'a str,
    who: &'a str,
    settings: &'a Settings,
    svc: &'a mut Service,
    /// Subscribers whose lists this request changed.
    touched: Vec<String>,
}

impl Op<'_, '_> {
    fn request(&mut self, request: Request) -> Result<Answer, Refusal> {
        match request {
            Request::Create { node, config } => self.create(node, config.as_ref()),
            Request::Default => {
                let config = NodeConfig::new(
                    self.settings.default_access,
                    self.settings.default_max_items,
                );
                Answer::with(
                    Element::new(OWNER, "pubsub")
                        .with_child(Element::new(OWNER, "default").with_child(config.form())),
                )
            }
            Request::MySubscriptions { node } => self.my_subscriptions(node.as_deref()),
            Request::Publish {
                node,
                id,
                payload,
                options,
            } => self.publish(&node, id, payload, options.as_ref()),
            Request::Items {
                node,
                max,
                ids,
                page,
            } => self.items(&node, max, &ids, page),
            Request::Retract { node, ids, notify } => self.retract(&node, &ids, notify),
            Request::Subscribe { node, jid, options } => {
                self.subscribe(&node, &jid, options.as_ref())
            }
            Request::Unsubscribe { node, jid } => self.unsubscribe(&node, &jid),
            Request::OptionsGet { node, jid } => {
                let sub = self.own_subscription(&node, &jid)?;
                Answer::with(
                    Element::new(NS, "pubsub").with_child(
                        Element::new(NS, "options")
                            .with_attr("node", node)
                            .with_attr("jid", jid)
                            .with_attr("subid", sub.subid.clone())
                            .with_child(sub.options_form()),
                    ),
                )
            }
            Request::OptionsSet { node, jid, fields } => {
                let mut sub = self.own_subscription(&node, &jid)?;
                sub.apply(&fields)
                    .map_err(|e| (e, Some("invalid-options")))?;
                self.store_sub(&node, &jid, Some(sub));
                Answer::empty()
            }
            Request::Delete { node, redirect } => self.delete(&node, redirect),
            Request::Purge { node } => self.purge(&node),
            Request::ConfigureGet { node } => {
                let n = self.owned(&node)?;
                Answer::with(
                    Element::new(OWNER, "pubsub").with_child(
                        Element::new(OWNER, "configure")
                            .with_attr("node", node)
                            .with_child(n.config.form()),
                    ),
                )
            }
            Request::ConfigureSet { node, fields } => self.configure(&node, &fields),
            Request::SubscriptionsGet { node } => {
                let n = self.owned(&node)?;
                let list = n.subs.iter().fold(
                    Element::new(OWNER, "subscriptions").with_attr("node", node.clone()),
                    |l, (jid, s)| l.with_child(s.element(OWNER, None, jid)),
                );
                Answer::with(Element::new(OWNER, "pubsub").with_child(list))
            }
            Request::SubscriptionsSet { node, changes } => self.set_subscriptions(&node, changes),
            Request::AffiliationsGet { node } => {
                let n = self.owned(&node)?;
                let list = n.affs.iter().fold(
                    Element::new(OWNER, "affiliations").with_attr("node", node.clone()),
                    |l, (jid, a)| {
                        l.with_child(
                            Element::new(OWNER, "affiliation")
                                .with_attr("jid", jid.clone())
                                .with_attr("affiliation", a.name()),
                        )
                    },
                );
                Answer::with(Element::new(OWNER, "pubsub").with_child(list))
            }
            Request::AffiliationsSet { node, changes } => self.set_affiliations(&node, changes),
        }
    }

    fn index(&mut self) -> Result<&mut Index, Refusal> {
        self.svc
            .index
            .as_mut()
            .ok_or((StanzaError::InternalServerError, None))
    }

    fn node(&self, name: &str) -> Result<&Node, Refusal> {
        self.svc
            .nodes
            .get(name)
            .ok_or((StanzaError::ItemNotFound, None))
    }

    fn node_mut(&mut self, name: &str) -> Result<&mut Node, Refusal> {
        self.svc
            .nodes
            .get_mut(name)
            .ok_or((StanzaError::ItemNotFound, None))
    }

    /// The requester's affiliation with `node` (administrators own
    /// every node).
    fn affiliation(&self, node: &Node) -> Affiliation {
        if self.settings.is_admin(self.who) {
            return Affiliation::Owner;
        }
        node.affs
            .get(self.who)
            .copied()
            .unwrap_or(Affiliation::None)
    }

    /// Whether one of the requester's JIDs is subscribed to `node`.
    fn subscribed(&self, node: &Node) -> bool {
        node.subs
            .range(self.who.to_owned()..)
            .take_while(|(j, _)| j.starts_with(self.who))
            .any(|(j, s)| bare_of(j) == self.who && s.state == State::Subscribed)
    }

    /// `node`, which the requester owns.
    fn owned(&self, name: &str) -> Result<&Node, Refusal> {
        let node = self.node(name)?;
        may_own(self.affiliation(node))?;
        Ok(node)
    }

    /// The requester's subscription `jid` to `node`.
    fn own_subscription(&self, name: &str, jid: &str) -> Result<Subscription, Refusal> {
        let node = self.node(name)?;
        if bare_of(jid) != self.who && may_own(self.affiliation(node)).is_err() {
            return Err((StanzaError::Forbidden, None));
        }
        node.subs
            .get(jid)
            .cloned()
            .ok_or((StanzaError::UnexpectedRequest, Some("not-subscribed")))
    }

    /// Store subscription (`node`, `jid`), or remove it (`None`), under
    /// the node and under its subscriber.
    fn store_sub(&mut self, name: &str, jid: &str, sub: Option<Subscription>) {
        let doc = sub.as_ref().map(|s| s.to_element(STORE, jid).to_xml());
        let bare = bare_of(jid).to_owned();
        if let Some(node) = self.svc.nodes.get_mut(name) {
            match &sub {
                Some(s) => node.subs.insert(jid.to_owned(), s.clone()),
                None => node.subs.remove(jid),
            };
        }
        if let Some(user) = self.svc.users.get_mut(&bare) {
            let key = (name.to_owned(), jid.to_owned());
            match &sub {
                Some(s) => user.insert(key, s.clone()),
                None => user.remove(&key),
            };
        }
        put(self.cx, self.domain, store::sub_key(name, jid), doc.clone());
        put(self.cx, self.domain, store::user_key(&bare, name, jid), doc);
        self.touched.push(bare);
    }

    /// The index as it now is, stored.
    fn store_index(&mut self) -> Result<(), Refusal> {
        let doc = store::index_document(self.index()?);
        put(self.cx, self.domain, store::INDEX_KEY.to_owned(), Some(doc));
        Ok(())
    }

    /// Notifications of `event` to the subscribers of `node` who want
    /// them (state `subscribed`, `pubsub#deliver` on).
    fn fan_out(&self, node: &Node, event: &Element) -> Vec<Element> {
        if !node.config.deliver_notifications {
            return Vec::new();
        }
        node.subs
            .iter()
            .filter(|(_, s)| s.state == State::Subscribed && s.deliver)
            .map(|(jid, _)| notification(self.domain, jid, node.config.headline, event.clone()))
            .collect()
    }

    /// §8.1: a named or instant node, configured as asked.
    fn create(&mut self, name: Option<String>, fields: Option<&Fields>) -> Result<Answer, Refusal> {
        if !self.settings.may_create(self.who) {
            return Err((StanzaError::Forbidden, None));
        }
        let instant = name.is_none();
        let name = name.unwrap_or_else(|| self.cx.entropy().hex_id(8));
        let mut config = NodeConfig::new(
            self.settings.default_access,
            self.settings.default_max_items,
        );
        if let Some(f) = fields {
            config
                .apply(f, self.settings.items_per_node_max)
                .map_err(|e| (e, None))?;
        }
        let who = self.who.to_owned();
        let nodes_max = self.settings.nodes_per_owner_max;
        let index = self.index()?;
        if index.contains_key(&name) {
            return Err((StanzaError::Conflict, None));
        }
        if index.values().filter(|c| **c == who).count() >= nodes_max {
            return Err((StanzaError::PolicyViolation, Some("max-nodes-exceeded")));
        }
        index.insert(name.clone(), who.clone());
        put(
            self.cx,
            self.domain,
            store::config_key(&name),
            Some(config.to_element(STORE).to_xml()),
        );
        put(
            self.cx,
            self.domain,
            store::aff_key(&name, &who),
            Some(store::aff_document(Affiliation::Owner)),
        );
        self.store_index()?;
        self.svc.nodes.insert(name.clone(), Node::new(config, &who));
        if instant {
            return Answer::with(
                Element::new(NS, "pubsub")
                    .with_child(Element::new(NS, "create").with_attr("node", name)),
            );
        }
        Answer::empty()
    }

    /// §7.1: publish, replacing an item of the same id, trimming to
    /// `max_items`.
    fn publish(
        &mut self,
        name: &str,
        id: Option<String>,
        payload: Element,
        options: Option<&Fields>,
    ) -> Result<Answer, Refusal> {
        if payload.to_xml().len() > self.settings.item_bytes_max {
            return Err((StanzaError::NotAcceptable, Some("payload-too-big")));
        }
        let cap = self.settings.items_per_node_max;
        let node = self.node(name)?;
        may_publish(&node.config, self.affiliation(node), self.subscribed(node))?;
        if options.is_some_and(|o| !node.config.meets(o, cap)) {
            return Err((StanzaError::Conflict, Some("precondition-not-met")));
        }
        let id = id.unwrap_or_else(|| self.cx.entropy().hex_id(8));
        let who = self.who.to_owned();
        let node = self.node_mut(name)?;
        let item = Item {
            seq: node.next_seq(),
            id: id.clone(),
            publisher: who,
            payload,
        };
        let mut gone: Vec<u64> = node
            .items
            .iter()
            .filter(|i| i.id == id)
            .map(|i| i.seq)
            .collect();
        node.items.retain(|i| i.id != id);
        node.items.push(item.clone());
        let excess = node.items.len().saturating_sub(node.config.max_items);
        gone.extend(node.items.drain(..excess).map(|i| i.seq));
        let persist = node.config.persist_items;
        for seq in gone {
            put(self.cx, self.domain, store::item_key(name, seq), None);
        }
        if persist {
            put(
                self.cx,
                self.domain,
                store::item_key(name, item.seq),
                Some(item.document()),
            );
        }
        let node = self.node(name)?;
        let event = Element::new(EVENT, "items")
            .with_attr("node", name)
            .with_child(if node.config.deliver_payloads {
                item_element(EVENT, &item)
            } else {
                Element::new(EVENT, "item").with_attr("id", id.clone())
            });
        let then = self.fan_out(node, &event);
        Ok(Answer {
            payload: Some(
                Element::new(NS, "pubsub").with_child(
                    Element::new(NS, "publish")
                        .with_attr("node", name)
                        .with_child(Element::new(NS, "item").with_attr("id", id)),
                ),
            ),
            then,
        })
    }

    /// §6.5: items: all, by id, the newest `max`, or a XEP-0059 page
    /// (in publication order).
    fn items(
        &mut self,
        name: &str,
        max: Option<usize>,
        ids: &[String],
        page: Option<Page>,
    ) -> Result<Answer, Refusal> {
        let node = self.node(name)?;
        may_read(&node.config, self.affiliation(node), self.subscribed(node))?;
        let all: Vec<&Item> = node.items.iter().collect();
        let mut set = None;
        let chosen: Vec<&Item> = if !ids.is_empty() {
            let found: Vec<&Item> = all.into_iter().filter(|i| ids.contains(&i.id)).collect();
            if found.is_empty() {
                return Err((StanzaError::ItemNotFound, None));
            }
            found
        } else if let Some(page) = page {
            let position = |id: &str| {
                all.iter()
                    .position(|i| i.id == id)
                    .ok_or((StanzaError::ItemNotFound, None))
            };
            let limit = page.max.unwrap_or(all.len());
            let (from, to) = match (&page.after, &page.before) {
                (Some(after), _) => {
                    let from = position(after)? + 1;
                    (from, from.saturating_add(limit).min(all.len()))
                }
                (None, Some(before)) => {
                    let to = if before.is_empty() {
                        all.len()
                    } else {
                        position(before)?
                    };
                    (to.saturating_sub(limit), to)
                }
                (None, None) => (0, limit.min(all.len())),
            };
            let chosen: Vec<&Item> = all.get(from..to).map(<[_]>::to_vec).unwrap_or_default();
            let mut s = Element::new(crate::modules::mam::rsm::NS, "set");
            if let (Some(first), Some(last)) = (chosen.first(), chosen.last()) {
                s = s
                    .with_child(
                        Element::new(crate::modules::mam::rsm::NS, "first")
                            .with_attr("index", from.to_string())
                            .with_text(first.id.clone()),
                    )
                    .with_child(
                        Element::new(crate::modules::mam::rsm::NS, "last")
                            .with_text(last.id.clone()),
                    );
            }
            set = Some(
                s.with_child(
                    Element::new(crate::modules::mam::rsm::NS, "count")
                        .with_text(all.len().to_string()),
                ),
            );
            chosen
        } else {
            let skip = all.len().saturating_sub(max.unwrap_or(usize::MAX));
            all.into_iter().skip(skip).collect()
        };
        let list = chosen
            .into_iter()
            .fold(Element::new(NS, "items").with_attr("node", name), |l, i| {
                l.with_child(item_element(NS, i))
            });
        let mut pubsub = Element::new(NS, "pubsub").with_child(list);
        if let Some(s) = set {
            pubsub = pubsub.with_child(s);
        }
        Answer::with(pubsub)
    }

    /// §7.2: delete items, notifying when asked or configured.
    fn retract(&mut self, name: &str, ids: &[String], notify: bool) -> Result<Answer, Refusal> {
        let node = self.node(name)?;
        let aff = self.affiliation(node);
        if aff == Affiliation::Outcast {
            return Err((StanzaError::Forbidden, None));
        }
        for id in ids {
            let item = node
                .items
                .iter()
                .find(|i| i.id == *id)
                .ok_or((StanzaError::ItemNotFound, None))?;
            may_retract(aff, item.publisher == self.who)?;
        }
        let node = self.node_mut(name)?;
        let gone: Vec<u64> = node
            .items
            .iter()
            .filter(|i| ids.contains(&i.id))
            .map(|i| i.seq)
            .collect();
        node.items.retain(|i| !ids.contains(&i.id));
        for seq in gone {
            put(self.cx, self.domain, store::item_key(name, seq), None);
        }
        let node = self.node(name)?;
        let then = if notify || node.config.notify_retract {
            let event = ids.iter().fold(
                Element::new(EVENT, "items").with_attr("node", name),
                |e, id| e.with_child(Element::new(EVENT, "retract").with_attr("id", id.clone())),
            );
            self.fan_out(node, &event)
        } else {
            Vec::new()
        };
        Ok(Answer {
            payload: None,
            then,
        })
    }

    /// §8.4: delete the node and everything under it; subscribers are
    /// told (with the redirect, §8.4.2).
    fn delete(&mut self, name: &str, redirect: Option<String>) -> Result<Answer, Refusal> {
        let node = self.owned(name)?;
        let mut event = Element::new(EVENT, "delete").with_attr("node", name);
        if let Some(uri) = redirect {
            event = event.with_child(Element::new(EVENT, "redirect").with_attr("uri", uri));
        }
        let then = if node.config.notify_delete {
            self.fan_out(node, &event)
        } else {
            Vec::new()
        };
        let node = self
            .svc
            .nodes
            .remove(name)
            .ok_or((StanzaError::ItemNotFound, None))?;
        for item in &node.items {
            put(self.cx, self.domain, store::item_key(name, item.seq), None);
        }
        for jid in node.subs.keys() {
            self.store_sub(name, jid, None);
        }
        for jid in node.affs.keys() {
            put(self.cx, self.domain, store::aff_key(name, jid), None);
        }
        put(self.cx, self.domain, store::config_key(name), None);
        self.index()?.remove(name);
        self.store_index()?;
        Ok(Answer {
            payload: None,
            then,
        })
    }

    /// §8.5: delete every item; subscribers are told.
    fn purge(&mut self, name: &str) -> Result<Answer, Refusal> {
        self.owned(name)?;
        let node = self.node_mut(name)?;
        let gone: Vec<u64> = node.items.drain(..).map(|i| i.seq).collect();
        for seq in gone {
            put(self.cx, self.domain, store::item_key(name, seq), None);
        }
        let node = self.node(name)?;
        let then = if node.config.notify_delete {
            self.fan_out(node, &Element::new(EVENT, "purge").with_attr("node", name))
        } else {
            Vec::new()
        };
        Ok(Answer {
            payload: None,
            then,
        })
    }

    /// §8.2.5: a new configuration; items beyond `max_items` go.
    fn configure(&mut self, name: &str, fields: &Fields) -> Result<Answer, Refusal> {
        self.owned(name)?;
        let cap = self.settings.items_per_node_max;
        let node = self.node_mut(name)?;
        node.config.apply(fields, cap).map_err(|e| (e, None))?;
        let excess = node.items.len().saturating_sub(node.config.max_items);
        let gone: Vec<u64> = node.items.drain(..excess).map(|i| i.seq).collect();
        let doc = node.config.to_element(STORE).to_xml();
        for seq in gone {
            put(self.cx, self.domain, store::item_key(name, seq), None);
        }
        put(self.cx, self.domain, store::config_key(name), Some(doc));
        let node = self.node(name)?;
        let then = if node.config.notify_config {
            let mut event = Element::new(EVENT, "configuration").with_attr("node", name);
            if node.config.deliver_payloads {
                event = event.with_child(node.config.meta_data(&node.owners()));
            }
            self.fan_out(node, &event)
        } else {
            Vec::new()
        };
        Ok(Answer {
            payload: None,
            then,
        })
    }

    /// §6.1: subscribe `jid` (one of the requester's), at once or
    /// pending the owners' approval (§8.6).
    fn subscribe(
        &mut self,
        name: &str,
        jid: &str,
        options: Option<&Fields>,
    ) -> Result<Answer, Refusal> {
        if bare_of(jid) != self.who {
            return Err((StanzaError::BadRequest, Some("invalid-jid")));
        }
        let node = self.node(name)?;
        let pending = may_subscribe(&node.config, self.affiliation(node))?;
        if let Some(existing) = node.subs.get(jid) {
            return Answer::with(Element::new(NS, "pubsub").with_child(existing.element(
                NS,
                Some(name),
                jid,
            )));
        }
        let count = self.svc.users.get(self.who).map_or(0, BTreeMap::len);
        if count >= self.settings.subscriptions_per_jid_max {
            return Err((StanzaError::PolicyViolation, Some("too-many-subscriptions")));
        }
        // Counted only for requests that would wait: subscribing to an
        // open node stays O(1) in the number of subscribers.
        let waiting = || {
            node.subs
                .values()
                .filter(|s| s.state == State::Pending)
                .count()
        };
        if pending && waiting() >= self.settings.pending_max {
            return Err((StanzaError::PolicyViolation, Some("too-many-subscriptions")));
        }
        let mut sub = Subscription {
            subid: self.cx.entropy().hex_id(8),
            state: if pending {
                State::Pending
            } else {
                State::Subscribed
            },
            deliver: true,
        };
        if let Some(o) = options {
            sub.apply(o).map_err(|e| (e, Some("invalid-options")))?;
        }
        self.store_sub(name, jid, Some(sub.clone()));
        let node = self.node(name)?;
        let mut then = Vec::new();
        if pending {
            let form = subscriptions::authorization_form(name, jid, &sub.subid);
            for owner in node.owners() {
                then.push(
                    Element::new(ns::CLIENT, "message")
                        .with_attr("from", self.domain)
                        .with_attr("to", owner)
                        .with_child(form.clone()),
                );
            }
        } else if node.config.send_last_on_sub {
            if let Some(last) = node.items.last() {
                let event = Element::new(EVENT, "items")
                    .with_attr("node", name)
                    .with_child(item_element(EVENT, last));
                then.push(notification(self.domain, jid, node.config.headline, event));
            }
        }
        Ok(Answer {
            payload: Some(Element::new(NS, "pubsub").with_child(sub.element(NS, Some(name), jid))),
            then,
        })
    }

    /// §6.2.
    fn unsubscribe(&mut self, name: &str, jid: &str) -> Result<Answer, Refusal> {
        self.own_subscription(name, jid)?;
        self.store_sub(name, jid, None);
        Answer::empty()
    }

    /// §5.6: the requester's subscriptions, of every node or of one.
    fn my_subscriptions(&self, node: Option<&str>) -> Result<Answer, Refusal> {
        let list = self
            .svc
            .users
            .get(self.who)
            .into_iter()
            .flatten()
            .filter(|((n, _), _)| node.is_none_or(|want| want == n))
            .fold(Element::new(NS, "subscriptions"), |l, ((n, jid), s)| {
                l.with_child(s.element(NS, Some(n), jid))
            });
        Answer::with(Element::new(NS, "pubsub").with_child(list))
    }

    /// §8.6 and §8.8.2: an owner approves or denies a pending
    /// subscription; the subscriber is told (§8.6 example 182).
    fn decide(&mut self, name: &str, jid: &str, allow: bool) -> Result<Answer, Refusal> {
        self.owned(name)?;
        let Some(mut sub) = self.node(name)?.subs.get(jid).cloned() else {
            return Answer::empty();
        };
        if allow {
            sub.state = State::Subscribed;
            self.store_sub(name, jid, Some(sub.clone()));
        } else {
            self.store_sub(name, jid, None);
        }
        let event = Element::new(EVENT, "subscription")
            .with_attr("node", name)
            .with_attr("jid", jid)
            .with_attr("subscription", if allow { "subscribed" } else { "none" });
        let headline = self.node(name)?.config.headline;
        Ok(Answer {
            payload: None,
            then: vec![notification(self.domain, jid, headline, event)],
        })
    }

    /// §8.8.2: approve pending subscriptions or remove subscriptions
    /// (subscribing others is refused: their budget is theirs).
    fn set_subscriptions(
        &mut self,
        name: &str,
        changes: Vec<(String, bool)>,
    ) -> Result<Answer, Refusal> {
        self.owned(name)?;
        let mut then = Vec::new();
        for (jid, subscribed) in changes {
            let existing = self.node(name)?.subs.get(&jid).cloned();
            match (existing, subscribed) {
                (Some(s), true) if s.state == State::Pending => {
                    then.extend(self.decide(name, &jid, true)?.then);
                }
                (None, true) => return Err((StanzaError::NotAcceptable, None)),
                (Some(_), false) => self.store_sub(name, &jid, None),
                _ => {}
            }
        }
        Ok(Answer {
            payload: None,
            then,
        })
    }

    /// §8.9.2: change affiliations; an outcast loses its subscriptions,
    /// and the node keeps at least one owner.
    fn set_affiliations(
        &mut self,
        name: &str,
        changes: Vec<(String, Affiliation)>,
    ) -> Result<Answer, Refusal> {
        self.owned(name)?;
        let mut affs = self.node(name)?.affs.clone();
        for (jid, aff) in &changes {
            let bare = bare_of(jid).to_owned();
            match aff {
                Affiliation::None => affs.remove(&bare),
                a => affs.insert(bare, *a),
            };
        }
        if !affs.values().any(|a| *a == Affiliation::Owner) {
            return Err((StanzaError::NotAcceptable, None));
        }
        for (jid, aff) in changes {
            let bare = bare_of(&jid).to_owned();
            let doc = (aff != Affiliation::None).then(|| store::aff_document(aff));
            put(self.cx, self.domain, store::aff_key(name, &bare), doc);
            if aff == Affiliation::Outcast {
                let theirs: Vec<String> = self
                    .node(name)?
                    .subs
                    .keys()
                    .filter(|j| bare_of(j) == bare)
                    .cloned()
                    .collect();
                for j in theirs {
                    self.store_sub(name, &j, None);
                }
            }
        }
        self.node_mut(name)?.affs = affs;
        Answer::empty()
    }

    /// XEP-0030 info of the service or of a node (§5.1, §5.3, §5.4).
    fn disco_info(&self, node: Option<String>) -> Result<Answer, Refusal> {
        let mut q = Element::new(ns::DISCO_INFO, "query");
        match node {
            None => {
                q = q.with_child(
                    Element::new(ns::DISCO_INFO, "identity")
                        .with_attr("category", "pubsub")
                        .with_attr("type", "service")
                        .with_attr("name", "Publish-Subscribe"),
                );
                for f in FEATURES {
                    q = q.with_child(Element::new(ns::DISCO_INFO, "feature").with_attr("var", *f));
                }
            }
            Some(name) => {
                let n = self.node(&name)?;
                q = q
                    .with_attr("node", name.clone())
                    .with_child(
                        Element::new(ns::DISCO_INFO, "identity")
                            .with_attr("category", "pubsub")
                            .with_attr("type", "leaf"),
                    )
                    .with_child(Element::new(ns::DISCO_INFO, "feature").with_attr("var", NS))
                    .with_child(n.config.meta_data(&n.owners()));
            }
        }
        Answer::with(q)
    }

    /// XEP-0030 items: the nodes (§5.2), or a node's item ids (§5.5).
    fn disco_items(&self, node: Option<String>) -> Result<Answer, Refusal> {
        let mut q = Element::new(ns::DISCO_ITEMS, "query");
        match node {
            None => {
                let index = self
                    .svc
                    .index
                    .as_ref()
                    .ok_or((StanzaError::InternalServerError, None))?;
                for name in index.keys() {
                    q = q.with_child(
                        Element::new(ns::DISCO_ITEMS, "item")
                            .with_attr("jid", self.domain)
                            .with_attr("node", name.clone()),
                    );
                }
            }
            Some(name) => {
                let n = self.node(&name)?;
                may_read(&n.config, self.affiliation(n), self.subscribed(n))?;
                q = q.with_attr("node", name);
                for i in &n.items {
                    q = q.with_child(
                        Element::new(ns::DISCO_ITEMS, "item")
                            .with_attr("jid", self.domain)
                            .with_attr("name", i.id.clone()),
                    );
                }
            }
        }
        Answer::with(q)
    }
}

/// `<item id='…'>payload</item>` in namespace `ns`.
fn item_element(ns: &'static str, i: &Item) -> Element {
    item(ns, &i.id, &i.payload)
}

#[cfg(test)]
mod tests;
