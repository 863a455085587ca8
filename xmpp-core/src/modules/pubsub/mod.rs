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
//! subscriptions by ad-hoc command (§8.7), auto-create on publish,
//! owners subscribing others (§8.8.2).
//!
//! Files by concept: [`protocol`] parses requests, [`config`],
//! [`affiliations`] and [`subscriptions`] are the pure rules, [`store`]
//! the documents, [`settings`] the budgets; `op` runs one request, with
//! `nodes`, `items`, `subscribing` and `disco` for each kind.

pub mod affiliations;
mod cache;
pub mod config;
mod disco;
mod items;
mod nodes;
mod op;
pub mod protocol;
pub mod settings;
pub mod store;
mod subscribing;
pub mod subscriptions;

use self::op::Op;
use self::protocol::Request;
use self::settings::Settings;
use self::store::{Index, Node};
use self::subscriptions::Subscription;
use super::pep::protocol::{error, Refusal, NS};
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
    /// Nodes read so far (up to [`Settings::cache_bytes_max`]).
    nodes: HashMap<String, Node>,
    /// Which of them were used last, and their sizes.
    cache: cache::Cache,
    /// Subscriptions by subscriber bare JID, once read: (node, jid).
    users: HashMap<String, BTreeMap<(String, String), Subscription>>,
}

impl Service {
    /// Drop the least recently used nodes beyond `max` bytes, never
    /// `keep`. A node with `persist_items=false` loses its items so.
    fn evict(&mut self, keep: &str, max: usize) {
        for name in self.cache.evict(max, keep) {
            self.nodes.remove(&name);
        }
    }
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

    /// Whether `domain` is one of its services (`pubsub.<hosted domain>`).
    fn hosts(&self, domain: &str) -> bool {
        domain
            .strip_prefix("pubsub.")
            .is_some_and(|d| self.settings.domains.iter().any(|h| h == d))
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
        if !self.hosts(domain) {
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
            || !self.hosts(domain)
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
        let cache_max = self.settings.cache_bytes_max;
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
                        svc.cache.touch(name, node.weight());
                        svc.nodes.insert(name.clone(), node);
                        svc.evict(name, cache_max);
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
        let used = work.node().map(str::to_owned);
        let result = match work {
            Work::DiscoInfo(node) => op.disco_info(node),
            Work::DiscoItems(node) => op.disco_items(node),
            Work::Approval { node, jid, allow } => op.decide(&node, &jid, allow),
            Work::Pubsub(request) => op.request(request),
        };
        let touched = op.touched;
        // What the request used is the most recent; its size may have
        // changed (or it is gone).
        if let (Some(name), Some(svc)) = (used, self.services.get_mut(domain)) {
            match svc.nodes.get(&name) {
                Some(node) => svc.cache.touch(&name, node.weight()),
                None => svc.cache.forget(&name),
            }
            svc.evict(&name, settings.cache_bytes_max);
        }
        // A subscriber's list being read now may miss what was just
        // written: read it again when that read ends.
        for bare in touched {
            let key = (domain.to_owned(), Load::User(bare));
            if self.parked.contains_key(&key) {
                self.stale.insert(key);
            }
        }
        result
    }
}

#[cfg(test)]
mod tests;
