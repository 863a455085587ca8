//! XEP-0357 in the hub: the account's `<enable/>`/`<disable/>` commands, a
//! notification for every message that waits for an account with no session
//! to take it, and the app servers' replies.
//!
//! Notifications come from the server's domain (XEP-0357 0.3 and later: the
//! app server does not learn the user's JID), so the replies arrive at the
//! partition owning the domain, not the account's. The account's partition
//! tells the domain's which publish belongs to whom ([`Notice::PushSent`],
//! emitted before the publish, so it is always there first); a refusal goes
//! back to the account's partition as [`Notice::PushFailed`].

use super::{Hub, HubOutput, Notice};
use crate::jid::Jid;
use crate::modules::push::{notifiable, publish, PushRequest, Summary, ID_PREFIX};
use crate::stanza::{iq_result, StanzaError};
use crate::storage::StorageRequest;
use crate::time::Millis;
use crate::xml::Element;
use sha2::{Digest, Sha256};
use std::collections::{HashMap, VecDeque};

/// Publishes awaiting a reply, per partition; beyond this the oldest are
/// forgotten (their replies are then ignored).
const MAX_AWAITED: usize = 10_000;
/// How long a reply is waited for.
const REPLY_TIMEOUT_MS: Millis = 5 * 60 * 1000;

/// What a publish was for.
#[derive(Debug)]
struct Awaited {
    account: String,
    jid: String,
    node: String,
}

/// The publishes of this partition's domains that await the app server's
/// reply, oldest first.
#[derive(Debug, Default)]
pub(super) struct AwaitedReplies {
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

impl Hub {
    /// `<enable/>` or `<disable/>` from one of the account's sessions.
    pub(super) fn push_iq(&mut self, account: &str, iq: &Element, req: PushRequest) {
        let max = self.cfg.push.max_registrations;
        let Some(acc) = self.account_mut(account) else {
            return;
        };
        match req {
            PushRequest::Enable(reg) => {
                tracing::debug!(account, jid = %reg.jid, "push enabled");
                acc.push.enable(reg, max);
            }
            PushRequest::Disable { jid, node } => {
                tracing::debug!(account, %jid, "push disabled");
                acc.push.disable(&jid, node.as_deref());
            }
        }
        self.store_push(account, true);
        self.route(iq_result(iq));
    }

    /// A message for the account is waiting because no session could take
    /// it (stored offline; stream management's hibernated sessions call this
    /// too): publish a notification to every enabled app server.
    pub(crate) fn notify_push(&mut self, account: &str, stanza: &Element) {
        self.notify_push_all(account, std::slice::from_ref(stanza));
    }

    /// Several messages are waiting at once (a session hibernated with
    /// messages it never acknowledged): one notification counts them all
    /// and names the last one's sender.
    pub(crate) fn notify_push_all(&mut self, account: &str, stanzas: &[Element]) {
        if !self.enabled("push") {
            return;
        }
        let waiting: Vec<&Element> = stanzas.iter().filter(|s| notifiable(s)).collect();
        let Some(stanza) = waiting.last().copied() else {
            return;
        };
        let settings = self.cfg.push.clone();
        let Some(acc) = self.account_mut(account) else {
            return;
        };
        if acc.push.registrations.is_empty() {
            return;
        }
        acc.push.pending = acc
            .push
            .pending
            .saturating_add(u64::try_from(waiting.len()).unwrap_or(u64::MAX));
        let summary = Summary {
            message_count: acc.push.pending,
            sender: stanza
                .attr("from")
                .filter(|_| settings.with_sender)
                .map(str::to_owned),
            body: stanza
                .child_text(crate::ns::CLIENT, "body")
                .filter(|_| settings.with_body),
        };
        let registrations = acc.push.registrations.clone();
        tracing::debug!(
            account,
            count = summary.message_count,
            new = waiting.len(),
            "push notification"
        );
        self.store_push(account, false);
        let domain = Jid::parse(account)
            .map(|j| j.domain().to_owned())
            .unwrap_or_default();
        for reg in registrations {
            self.push_serial = self.push_serial.wrapping_add(1);
            let id = push_id(account, &reg.jid, &reg.node, self.now, self.push_serial);
            // First the note to the domain's partition, then the publish: the
            // reply can only arrive after the publish left, so the note is
            // always waiting for it.
            self.visible(HubOutput::Forward {
                owner: domain.clone(),
                notice: Notice::PushSent {
                    id: id.clone(),
                    account: account.to_owned(),
                    jid: reg.jid.clone(),
                    node: reg.node.clone(),
                },
            });
            self.route(publish(&reg, &domain, &id, &summary));
        }
    }

    /// The account came online: the next notification counts from one.
    pub(super) fn push_seen(&mut self, account: &str) {
        let Some(acc) = self.account_mut(account) else {
            return;
        };
        if acc.push.pending == 0 {
            return;
        }
        acc.push.pending = 0;
        self.store_push(account, false);
    }

    /// A result or error addressed to the domain, answering one of our
    /// publishes. §7.1: an error disables the registration, unless it is of
    /// type `wait` (transient: the app server is busy or rate-limits).
    pub(super) fn push_reply(&mut self, reply: &Element) {
        let Some(id) = reply.attr("id") else { return };
        let from = reply
            .attr("from")
            .and_then(|f| Jid::parse(f).ok())
            .map(|f| f.to_string())
            .unwrap_or_default();
        let Some(awaited) = self.push_awaited.take_from(id, &from) else {
            tracing::debug!(id, %from, "not the reply to a push notification we await");
            return;
        };
        if reply.attr("type") != Some("error") {
            return;
        }
        let error = reply.child(crate::ns::CLIENT, "error");
        if error.and_then(|e| e.attr("type")) == Some("wait") {
            tracing::info!(jid = %awaited.jid, "push notification deferred by the app server");
            return;
        }
        let condition = error
            .and_then(|e| e.elements().find(|c| c.ns == crate::ns::STANZA_ERRORS))
            .map(|c| c.name.clone())
            .unwrap_or_default();
        tracing::info!(jid = %awaited.jid, %condition, "push notification refused; disabling the registration");
        self.visible(HubOutput::Forward {
            owner: awaited.account.clone(),
            notice: Notice::PushFailed {
                account: awaited.account,
                jid: awaited.jid,
                node: awaited.node,
            },
        });
    }

    /// Remember whose publish `id` was, for its reply.
    pub(super) fn push_sent(&mut self, id: String, account: String, jid: String, node: String) {
        let now = self.now;
        self.push_awaited
            .insert(now, id, Awaited { account, jid, node });
    }

    /// The app server refused: forget the registration.
    pub(super) fn push_failed(&mut self, account: &str, jid: &str, node: &str) {
        let removed = self
            .account_mut(account)
            .is_some_and(|a| a.push.disable(jid, Some(node)));
        if removed {
            self.store_push(account, false);
        }
    }

    /// Persist the account's push state; `told` when the client is told
    /// about the change (then what follows waits until it is durable).
    fn store_push(&mut self, account: &str, told: bool) {
        let Some(acc) = self.account(account) else {
            return;
        };
        let value = acc.push.to_document();
        let request = StorageRequest::StoreBlob {
            account: account.to_owned(),
            key: crate::storage::PUSH_KEY.to_owned(),
            value,
            limit: None,
        };
        if told {
            self.commit(request);
        } else {
            self.write(request);
        }
    }

    /// A push command the account's session sent to itself, if this is one
    /// and push is on; `true` when handled.
    pub(super) fn maybe_push_iq(&mut self, account: &str, iq: &Element, own: bool) -> bool {
        if !self.enabled("push") {
            return false;
        }
        let Some(req) = PushRequest::parse(iq) else {
            return false;
        };
        match req {
            _ if !own => self.bounce(iq, StanzaError::Forbidden),
            Ok(req) => self.push_iq(account, iq, req),
            Err(e) => self.bounce(iq, e),
        }
        true
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

/// Whether a stanza to the server is a reply to one of our publishes.
pub(super) fn is_push_reply(stanza: &Element) -> bool {
    stanza.name == "iq"
        && matches!(stanza.attr("type"), Some("result") | Some("error"))
        && stanza
            .attr("id")
            .is_some_and(|id| id.starts_with(ID_PREFIX))
}
