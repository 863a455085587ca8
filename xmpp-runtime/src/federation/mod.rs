//! Federation at run time: one outgoing link per domain pair (ours,
//! theirs), created on first use and gone when idle or failed, and the
//! way between our incoming streams and those links (a dialback key an
//! incoming stream presents is checked over a link to the claimed domain).
//!
//! The router hands this every stanza for a domain we do not host
//! ([`Federation::send`]); it queues it on its pair's link, which
//! connects, proves our domain, and sends. What cannot go — a domain we
//! refuse, a full queue, too many links, a link that failed — is bounced
//! to its sender with the RFC 6120 condition, never dropped silently.

pub(crate) mod inbound;
mod link;

use crate::counts::{Counted, Counts};

use crate::router::{RemoteRoute, Router};
use crate::s2s::config::S2sConfig;
use crate::s2s::link_queue::{LinkQueue, VerifyRequest};
use crate::s2s::Resolver;
use crate::tls::s2s::S2sTls;
use event_listener::{Event, EventListener};
use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use tracing::Instrument;
use xmpp_core::jid::Jid;
use xmpp_core::s2s::{IncomingConfig, OutgoingConfig};
use xmpp_core::stanza::{error_reply, is_error_or_result, StanzaError};
use xmpp_core::Element;

/// Verification requests waiting per link before it is up.
const MAX_WAITING_VERIFIES: usize = 64;

/// Links one account's stanzas may be setting up at once (resolving,
/// connecting, authenticating): a user writing to thousands of made-up
/// domains costs that many lookups at a time, and cannot take all of
/// `s2s_max_outgoing` from everyone else.
const MAX_SETUPS_PER_SENDER: usize = 16;

/// (our domain, the remote domain).
pub(crate) type Pair = (String, String);

/// The federation of one running server.
pub(crate) struct Federation {
    pub(crate) cfg: Arc<S2sConfig>,
    /// The receiving side's machine settings.
    pub(crate) incoming: Arc<IncomingConfig>,
    /// Links from a domain whose certificate does not prove it.
    outgoing: Arc<OutgoingConfig>,
    /// Links from a domain whose certificate proves it: SASL EXTERNAL.
    outgoing_external: Arc<OutgoingConfig>,
    /// Our domains whose certificates prove them.
    external_domains: HashSet<String>,
    pub(crate) tls: Option<Arc<S2sTls>>,
    pub(crate) resolver: Resolver,
    router: Weak<Router>,
    pub(crate) executor: Arc<smol::Executor<'static>>,
    links: Mutex<HashMap<Pair, Arc<LinkQueue>>>,
    /// Incoming streams the peer made bidirectional (XEP-0288), by the
    /// pair they may carry back: stanzas for a pair without an outgoing
    /// link go there instead of opening one. Locked after `links`.
    bidi: Mutex<HashMap<Pair, Arc<LinkQueue>>>,
    hosted: HashSet<String>,
    /// Links being set up, by the bare JID whose stanza opened them.
    setting_up: Arc<Counts<String>>,
    /// Incoming s2s connections per peer address.
    incoming_by_addr: Arc<Counts<IpAddr>>,
    /// The server is shutting down: streams close, no link opens.
    closing: AtomicBool,
    closing_event: Event,
    /// Stanza counters for `/metrics`.
    pub(crate) metrics: Arc<crate::metrics::Metrics>,
}

impl Federation {
    /// Federation for a server hosting `hosted`, with its certificates
    /// (`tls`: none means no STARTTLS either way).
    pub(crate) fn new(
        cfg: S2sConfig,
        hosted: Vec<String>,
        tls: Option<Arc<S2sTls>>,
        router: &Arc<Router>,
        executor: Arc<smol::Executor<'static>>,
        metrics: Arc<crate::metrics::Metrics>,
    ) -> Arc<Federation> {
        let secret = xmpp_core::s2s::dialback::DialbackSecret::new(
            &cfg.dialback_secret
                .clone()
                .unwrap_or_else(|| crate::clock::random_seed().to_vec()),
        );
        let mut incoming = cfg.incoming.clone();
        incoming.domains = hosted.clone();
        incoming.secret = secret.clone();
        incoming.starttls_available = tls.is_some();
        let mut outgoing = cfg.outgoing.clone();
        outgoing.secret = secret;
        outgoing.starttls = tls.is_some();
        outgoing.sasl_external = false;
        let outgoing_external = OutgoingConfig {
            sasl_external: true,
            ..outgoing.clone()
        };
        let external_domains = match &tls {
            Some(t) => hosted.iter().filter(|d| t.proves_own(d)).cloned().collect(),
            None => HashSet::new(),
        };
        let resolver = if cfg.nameservers.is_empty() {
            Resolver::from_system(cfg.dns.clone(), cfg.overrides.clone()).unwrap_or_else(|e| {
                tracing::warn!(error = %e, "no system nameservers: s2s resolves static routes only");
                Resolver::new(Vec::new(), cfg.dns.clone(), cfg.overrides.clone())
            })
        } else {
            Resolver::new(
                cfg.nameservers.clone(),
                cfg.dns.clone(),
                cfg.overrides.clone(),
            )
        };
        tracing::info!(
            domains = ?hosted,
            sasl_external = ?external_domains,
            routes = cfg.overrides.len(),
            "federation on"
        );
        Arc::new(Federation {
            cfg: Arc::new(cfg),
            incoming: Arc::new(incoming),
            outgoing: Arc::new(outgoing),
            outgoing_external: Arc::new(outgoing_external),
            external_domains,
            tls,
            resolver,
            router: Arc::downgrade(router),
            executor,
            links: Mutex::new(HashMap::new()),
            bidi: Mutex::new(HashMap::new()),
            hosted: hosted.into_iter().collect(),
            setting_up: Counts::new(),
            incoming_by_addr: Counts::new(),
            closing: AtomicBool::new(false),
            closing_event: Event::new(),
            metrics,
        })
    }

    fn links(&self) -> MutexGuard<'_, HashMap<Pair, Arc<LinkQueue>>> {
        // Inserting and removing cannot leave the map inconsistent.
        self.links.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn router(&self) -> Option<Arc<Router>> {
        self.router.upgrade()
    }

    /// The machine settings of a link from our `local` domain.
    pub(crate) fn outgoing_for(&self, local: &str) -> Arc<OutgoingConfig> {
        if self.external_domains.contains(local) {
            self.outgoing_external.clone()
        } else {
            self.outgoing.clone()
        }
    }

    /// Send a stanza from one of our domains to another server.
    pub(crate) fn send(self: &Arc<Self>, stanza: Element) {
        let from = domain_of(stanza.attr("from"));
        let to = domain_of(stanza.attr("to"));
        let (Some(local), Some(remote)) = (from, to) else {
            tracing::debug!("s2s: a stanza without from or to; dropped");
            return;
        };
        if !self.hosted.contains(&local) {
            // Only our own stanzas leave; a hub never routes others here.
            tracing::warn!(%local, %remote, "s2s: a stanza from a domain we do not host; dropped");
            return;
        }
        if !self.cfg.allows(&remote) {
            return self.bounce(&stanza, StanzaError::NotAllowed);
        }
        let stanza = match self.offer_bidi(&local, &remote, stanza) {
            Ok(()) => return,
            Err(stanza) => stanza,
        };
        let sender = bare(stanza.attr("from"));
        if let Err(stanza) =
            self.with_link(&local, &remote, sender.as_deref(), stanza, LinkQueue::offer)
        {
            self.bounce(&stanza, StanzaError::ResourceConstraint);
        }
    }

    /// Check a dialback key with the Authoritative Server of
    /// `request.sender`, over the link from `request.target`.
    pub(crate) fn verify(self: &Arc<Self>, request: VerifyRequest) {
        let local = request.target.as_str().to_owned();
        let remote = request.sender.as_str().to_owned();
        if let Err(request) =
            self.with_link(&local, &remote, None, request, LinkQueue::offer_verify)
        {
            request.answer(None);
        }
    }

    /// Offer `item` to the queue of the link (`local`, `remote`), creating
    /// the link if there is none; the item comes back when the queue is
    /// full or there are too many links. Runs under the map's lock, so a
    /// link that ends (`link_ended`) sees every item offered to it. A new
    /// link counts against `sender`'s links being set up.
    #[allow(clippy::result_large_err)] // the item, handed back
    fn with_link<T>(
        self: &Arc<Self>,
        local: &str,
        remote: &str,
        sender: Option<&str>,
        item: T,
        offer: impl FnOnce(&LinkQueue, T) -> Result<(), T>,
    ) -> Result<(), T> {
        let mut links = self.links();
        let key = (local.to_owned(), remote.to_owned());
        if let Some(queue) = links.get(&key) {
            return offer(queue, item).inspect_err(|_| {
                tracing::warn!(%local, %remote, "s2s queue full; refusing");
            });
        }
        if self.is_closing() {
            return Err(item);
        }
        if links.len() >= self.cfg.max_links {
            tracing::warn!(%local, %remote, max = self.cfg.max_links, "too many s2s links; refusing");
            return Err(item);
        }
        let queue = Arc::new(LinkQueue::new(self.cfg.queue_bytes, MAX_WAITING_VERIFIES));
        let setup = match sender {
            Some(sender) => match self
                .setting_up
                .take(sender.to_owned(), MAX_SETUPS_PER_SENDER)
            {
                Some(setup) => Some(setup),
                None => {
                    tracing::warn!(%sender, %remote, "s2s: too many links being set up for one sender; refusing");
                    return Err(item);
                }
            },
            None => None,
        };
        offer(&queue, item)?;
        links.insert(key.clone(), queue.clone());
        // Every log line of the link (the machine's too) names the pair.
        let span = tracing::info_span!("s2s_out", %local, %remote);
        self.executor
            .spawn(link::run(self.clone(), key, queue, setup).instrument(span))
            .detach();
        Ok(())
    }

    /// Queue a stanza on an incoming bidirectional stream for the pair,
    /// if there is one: preferred to an outgoing link, which then idles
    /// out (with dialback, one was opened only to verify the peer's key).
    fn offer_bidi(&self, local: &str, remote: &str, stanza: Element) -> Result<(), Element> {
        let key = (local.to_owned(), remote.to_owned());
        let bidi = self.bidi.lock().unwrap_or_else(|e| e.into_inner());
        match bidi.get(&key) {
            Some(queue) => queue.offer(stanza),
            None => Err(stanza),
        }
    }

    /// An incoming stream may carry stanzas for `pair` back (XEP-0288): its
    /// queue, unless another stream does already.
    pub(crate) fn adopt_bidi(&self, pair: &Pair) -> Option<Arc<LinkQueue>> {
        let mut bidi = self.bidi.lock().unwrap_or_else(|e| e.into_inner());
        if bidi.contains_key(pair) {
            return None;
        }
        let queue = Arc::new(LinkQueue::new(self.cfg.queue_bytes, 0));
        bidi.insert(pair.clone(), queue.clone());
        Some(queue)
    }

    /// An incoming bidirectional stream ended: what waited for it comes
    /// back, to go on an outgoing link.
    pub(crate) fn bidi_ended(&self, pair: &Pair, queue: &Arc<LinkQueue>) -> Vec<Element> {
        let mut bidi = self.bidi.lock().unwrap_or_else(|e| e.into_inner());
        if bidi.get(pair).is_some_and(|q| Arc::ptr_eq(q, queue)) {
            bidi.remove(pair);
        }
        queue.close_and_take().1
    }

    /// A link ended: it leaves the map, and what waited for it comes back
    /// (nothing more can be offered to it).
    pub(crate) fn link_ended(
        &self,
        pair: &Pair,
        queue: &Arc<LinkQueue>,
    ) -> (Vec<VerifyRequest>, Vec<Element>) {
        let mut links = self.links();
        if links.get(pair).is_some_and(|q| Arc::ptr_eq(q, queue)) {
            links.remove(pair);
        }
        queue.close_and_take()
    }

    /// The server shuts down: every s2s stream closes (incoming ones with
    /// `system-shutdown`), and no new link opens (what would need one
    /// bounces).
    pub(crate) fn shut_down(&self) {
        self.closing.store(true, Ordering::Release);
        self.closing_event.notify(usize::MAX);
    }

    /// Whether [`shut_down`](Self::shut_down) was called.
    pub(crate) fn is_closing(&self) -> bool {
        self.closing.load(Ordering::Acquire)
    }

    /// Wakes at [`shut_down`](Self::shut_down) (check
    /// [`is_closing`](Self::is_closing) after listening).
    pub(crate) fn closing(&self) -> EventListener {
        self.closing_event.listen()
    }

    /// The domain pairs served now, sorted.
    pub(crate) fn status(&self) -> S2sStatus {
        let mut outgoing: Vec<Pair> = self.links().keys().cloned().collect();
        let mut bidi: Vec<Pair> = self
            .bidi
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .keys()
            .cloned()
            .collect();
        outgoing.sort();
        bidi.sort();
        S2sStatus { outgoing, bidi }
    }

    /// Answer a stanza that cannot go with an error from us.
    pub(crate) fn bounce(&self, stanza: &Element, condition: StanzaError) {
        if is_error_or_result(stanza) || stanza.attr("from").is_none() {
            return;
        }
        let by = domain_of(stanza.attr("from")).unwrap_or_default();
        let reply = error_reply(stanza, condition, &by);
        if let Some(router) = self.router() {
            router.route(reply);
        }
    }

    /// Count an incoming connection from `addr`; `None` when it has as many
    /// as allowed. The slot is given back when dropped.
    pub(crate) fn incoming_slot(&self, addr: IpAddr) -> Option<IncomingSlot> {
        self.incoming_by_addr
            .take(addr, self.cfg.max_incoming_per_address)
    }
}

impl RemoteRoute for Arc<Federation> {
    fn send(&self, stanza: Element) {
        Federation::send(self, stanza);
    }
}

/// What federation serves now ([`crate::RunningServer::s2s_status`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct S2sStatus {
    /// Outgoing links, as (our domain, remote domain).
    pub outgoing: Vec<(String, String)>,
    /// Incoming streams that carry our stanzas back (XEP-0288), as (our
    /// domain, remote domain).
    pub bidi: Vec<(String, String)>,
}

/// A link being set up, counted against the sender whose stanza opened
/// it until it is ready or gone (dropped).
pub(crate) type Setup = Counted<String>;

/// One counted incoming connection ([`Federation::incoming_slot`]).
pub(crate) type IncomingSlot = Counted<IpAddr>;

/// The bare JID of a JID attribute.
fn bare(jid: Option<&str>) -> Option<String> {
    Jid::parse(jid?).ok().map(|j| j.bare_str())
}

/// The domain of a JID attribute.
fn domain_of(jid: Option<&str>) -> Option<String> {
    Jid::parse(jid?).ok().map(|j| j.domain().to_owned())
}
