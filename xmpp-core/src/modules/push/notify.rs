//! XEP-0357 as a hub module: the account's `<enable/>`/`<disable/>`
//! commands, a notification for every message that waits for an account
//! with no session to take it, and the app servers' replies.
//!
//! Notifications come from the server's domain (XEP-0357 0.3 and later: the
//! app server does not learn the user's JID), so the replies arrive at the
//! partition owning the domain, not the account's. The account's partition
//! tells the domain's which publish belongs to whom (a `sent` notice,
//! emitted before the publish, so it is always there first); a refusal goes
//! back to the account's partition as a `failed` notice.

use super::{notifiable, publish, PushRequest, PushSettings, PushState, Summary, ID_PREFIX, NS};
use crate::jid::Jid;
use crate::modules::{Addressed, Context, Event, Flow, Module, ModuleId};
use crate::stanza::{iq_result, StanzaError};
use crate::storage::{Documents, StorageRequest, PUSH_KEY};
use crate::time::Millis;
use crate::xml::Element;
use sha2::{Digest, Sha256};
use std::collections::{HashMap, VecDeque};

/// Its identity.
pub const ID: ModuleId = ModuleId::new("push");

/// Publishes awaiting a reply, per partition; beyond this the oldest are
/// forgotten (their replies are then ignored).
const MAX_AWAITED: usize = 10_000;
/// How long a reply is waited for.
const REPLY_TIMEOUT_MS: Millis = 5 * 60 * 1000;
/// The namespace of the notices partitions exchange about publishes.
const NOTICE_NS: &str = "urn:vireo:push:notice";

/// What a publish was for.
#[derive(Debug, Clone)]
struct Awaited {
    account: String,
    jid: String,
    node: String,
}

/// The publishes of this partition's domains that await the app server's
/// reply, oldest first.
#[derive(Debug, Clone, Default)]
struct AwaitedReplies {
    by_id: HashMap<String, Awaited>,
    order: VecDeque<(Millis, String)>,
}

impl AwaitedReplies {
    fn insert(&mut self, now: Millis, id: String, awaited: Awaited) {
        while let Some((at, old)) = self.order.front() {
            let expired = now.saturating_sub(*at) > REPLY_TIMEOUT_MS;
            if !expired && self.order.len() < MAX_AWAITED {
                break;
            }
            self.by_id.remove(old);
            self.order.pop_front();
        }
        self.order.push_back((now, id.clone()));
        self.by_id.insert(id, awaited);
    }

    /// The publish `id`, if its reply is awaited from `from`; only then is
    /// it forgotten (a reply from anyone else changes nothing).
    fn take_from(&mut self, id: &str, from: &str) -> Option<Awaited> {
        if self.by_id.get(id)?.jid != from {
            return None;
        }
        // The id stays in `order` until it ages out; `by_id` decides.
        self.by_id.remove(id)
    }
}

/// XEP-0357 Push Notifications.
#[derive(Debug, Clone)]
pub struct Push {
    settings: PushSettings,
    /// Publishes from this partition's domains awaiting a reply.
    awaited: AwaitedReplies,
    /// Makes every notification id of this partition unique.
    serial: u64,
}

impl Push {
    /// The module, notifying as `settings` say.
    pub fn new(settings: PushSettings) -> Self {
        Push {
            settings,
            awaited: AwaitedReplies::default(),
            serial: 0,
        }
    }

    /// Messages are waiting: one notification to every enabled app
    /// server counts them all and names the last one's sender.
    fn notify(&mut self, cx: &mut Context<'_>, account: &str, messages: &[Element]) {
        let waiting: Vec<&Element> = messages.iter().filter(|s| notifiable(s)).collect();
        let Some(last) = waiting.last().copied() else {
            return;
        };
        let enabled = cx
            .account_state_ref::<PushState>(account)
            .is_some_and(|s| !s.registrations.is_empty());
        let Some(state) = cx.account_state::<PushState>(account).filter(|_| enabled) else {
            return;
        };
        state.pending = state
            .pending
            .saturating_add(u64::try_from(waiting.len()).unwrap_or(u64::MAX));
        let summary = Summary {
            message_count: state.pending,
            sender: last
                .attr("from")
                .filter(|_| self.settings.with_sender)
                .map(str::to_owned),
            body: last
                .child_text(crate::ns::CLIENT, "body")
                .filter(|_| self.settings.with_body),
        };
        let registrations = state.registrations.clone();
        tracing::debug!(
            account,
            count = summary.message_count,
            new = waiting.len(),
            "push notification"
        );
        store(cx, account, false);
        let domain = Jid::parse(account)
            .map(|j| j.domain().to_owned())
            .unwrap_or_default();
        for reg in registrations {
            self.serial = self.serial.wrapping_add(1);
            let id = push_id(account, &reg.jid, &reg.node, cx.now(), self.serial);
            // First the note to the domain's partition, then the publish:
            // the reply can only arrive after the publish left, so the note
            // is always waiting for it.
            let note = notice("sent", account, &reg.jid, &reg.node).with_attr("id", id.clone());
            cx.forward(&domain, None, note);
            cx.route(publish(&reg, &domain, &id, &summary));
        }
    }

    /// `<enable/>` or `<disable/>` from one of the account's sessions.
    fn command(&mut self, cx: &mut Context<'_>, account: &str, iq: &Element, req: PushRequest) {
        let max = self.settings.max_registrations;
        let Some(state) = cx.account_state::<PushState>(account) else {
            return;
        };
        match req {
            PushRequest::Enable(reg) => {
                tracing::debug!(account, jid = %reg.jid, "push enabled");
                state.enable(reg, max);
            }
            PushRequest::Disable { jid, node } => {
                tracing::debug!(account, %jid, "push disabled");
                state.disable(&jid, node.as_deref());
            }
        }
        store(cx, account, true);
        cx.route(iq_result(iq));
    }
}

impl Module for Push {
    fn id(&self) -> ModuleId {
        ID
    }

    /// XEP-0357 §4.1: push is advertised on the account.
    fn account_features(&self) -> &'static [&'static str] {
        &[NS]
    }

    fn account_documents(&self) -> &'static [&'static str] {
        &[PUSH_KEY]
    }

    fn account_loaded(&mut self, cx: &mut Context<'_>, account: &str, documents: &Documents) {
        if let Some(doc) = documents.get(PUSH_KEY) {
            let state = PushState::from_document(doc);
            if state == PushState::default() {
                return;
            }
            if let Some(slot) = cx.account_state::<PushState>(account) {
                *slot = state;
            }
        }
    }

    fn iq(&mut self, cx: &mut Context<'_>, to: Addressed<'_>, iq: &Element) -> Flow {
        let Addressed::Account { account, own } = to else {
            return Flow::Pass;
        };
        let Some(req) = PushRequest::parse(iq) else {
            return Flow::Pass;
        };
        match req {
            _ if !own => cx.bounce(iq, StanzaError::Forbidden),
            Ok(req) => self.command(cx, account, iq, req),
            Err(e) => cx.bounce(iq, e),
        }
        Flow::Handled
    }

    fn event(&mut self, cx: &mut Context<'_>, event: Event<'_>) {
        match event {
            Event::Unread { account, messages } => self.notify(cx, account, messages),
            // The account came online: the next notification counts from one.
            Event::Seen { account } => {
                let waiting = cx
                    .account_state_ref::<PushState>(account)
                    .is_some_and(|s| s.pending > 0);
                if let Some(state) = cx.account_state::<PushState>(account).filter(|_| waiting) {
                    state.pending = 0;
                    store(cx, account, false);
                }
            }
            _ => {}
        }
    }

    /// A result or error answering one of our publishes. §7.1: an error
    /// disables the registration, unless it is of type `wait` (transient:
    /// the app server is busy or rate-limits).
    fn server_reply(&mut self, cx: &mut Context<'_>, reply: &Element) -> Flow {
        let Some(id) = reply.attr("id").filter(|id| id.starts_with(ID_PREFIX)) else {
            return Flow::Pass;
        };
        let from = reply
            .attr("from")
            .and_then(|f| Jid::parse(f).ok())
            .map(|f| f.to_string())
            .unwrap_or_default();
        let Some(awaited) = self.awaited.take_from(id, &from) else {
            tracing::debug!(id, %from, "not the reply to a push notification we await");
            return Flow::Handled;
        };
        if reply.attr("type") != Some("error") {
            return Flow::Handled;
        }
        let error = reply.child(crate::ns::CLIENT, "error");
        if error.and_then(|e| e.attr("type")) == Some("wait") {
            tracing::info!(jid = %awaited.jid, "push notification deferred by the app server");
            return Flow::Handled;
        }
        let condition = error
            .and_then(|e| e.elements().find(|c| c.ns == crate::ns::STANZA_ERRORS))
            .map(|c| c.name.clone())
            .unwrap_or_default();
        tracing::info!(jid = %awaited.jid, %condition, "push notification refused; disabling the registration");
        let note = notice("failed", &awaited.account, &awaited.jid, &awaited.node);
        cx.forward(&awaited.account, Some(&awaited.account), note);
        Flow::Handled
    }

    fn notice(&mut self, cx: &mut Context<'_>, account: Option<&str>, body: &Element) {
        let field = |name| body.attr(name).unwrap_or_default().to_owned();
        match (body.name.as_str(), account) {
            // Remember whose publish `id` was, for its reply.
            ("sent", None) => {
                let awaited = Awaited {
                    account: field("account"),
                    jid: field("jid"),
                    node: field("node"),
                };
                let now = cx.now();
                self.awaited.insert(now, field("id"), awaited);
            }
            // The app server refused: forget the registration.
            ("failed", Some(account)) => {
                let removed = cx
                    .account_state::<PushState>(account)
                    .is_some_and(|s| s.disable(&field("jid"), Some(&field("node"))));
                if removed {
                    store(cx, account, false);
                }
            }
            _ => {}
        }
    }
}

/// A notice about the publish for `account`'s registration (`jid`, `node`).
fn notice(kind: &str, account: &str, jid: &str, node: &str) -> Element {
    Element::new(NOTICE_NS, kind)
        .with_attr("account", account)
        .with_attr("jid", jid)
        .with_attr("node", node)
}

/// Persist the account's push state; `told` when the client is told
/// about the change (then what follows waits until it is durable).
fn store(cx: &mut Context<'_>, account: &str, told: bool) {
    let value = cx
        .account_state_ref::<PushState>(account)
        .and_then(PushState::to_document);
    let request = StorageRequest::StoreBlob {
        account: account.to_owned(),
        key: PUSH_KEY.to_owned(),
        value,
        limit: None,
    };
    if told {
        cx.commit(request);
    } else {
        cx.write(request);
    }
}

/// An id no other publish of the server shares, that reveals nothing of the
/// account to the app server.
fn push_id(account: &str, jid: &str, node: &str, now: Millis, serial: u64) -> String {
    let mut h = Sha256::new();
    for part in [account, jid, node] {
        h.update(part.as_bytes());
        h.update([0]);
    }
    h.update(now.to_le_bytes());
    let digest = h.finalize();
    let tag: String = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
    format!("{ID_PREFIX}{tag}-{serial}")
}
