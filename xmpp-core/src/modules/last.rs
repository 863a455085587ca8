//! XEP-0012 Last Activity: the server's uptime (§5), and for an account
//! (§3) how long ago it logged out and the status it left with. The server
//! answers that on the account's behalf, from what it stored when a
//! resource went offline ([`LAST_KEY`]): forbidden to those not allowed to
//! see the account's presence, 0 seconds while a resource is connected.

use super::{Addressed, Context, Event, Flow, Module, ModuleId};
use crate::jid::Jid;
use crate::spare::ReleaseSpare;
use crate::stanza::{iq_result, StanzaError};
use crate::storage::{RequestId, StorageRequest, StorageResult};
use crate::time::Millis;
use crate::xml::Element;
use std::collections::HashMap;

/// XEP-0012 namespace.
pub const NS: &str = "jabber:iq:last";

/// Storage key of an account's last logout: the time (ms since the Unix
/// epoch) on the first line, the status of its unavailable presence after.
pub const LAST_KEY: &str = "last";

/// The stored document for a logout at `at` with `status`.
pub fn logout_document(at: Millis, status: &str) -> String {
    format!("{at}\n{status}")
}

/// A stored logout: (time, status); `None` for an unreadable document.
pub fn parse_logout(doc: &str) -> Option<(Millis, &str)> {
    let (at, status) = doc.split_once('\n').unwrap_or((doc, ""));
    Some((at.trim().parse().ok()?, status))
}

/// The `<query/>` answering a last-activity request: `seconds` and, when
/// there is one, the status text.
pub fn query(seconds: u64, status: &str) -> Element {
    let q = Element::new(NS, "query").with_attr("seconds", seconds.to_string());
    if status.is_empty() {
        q
    } else {
        q.with_text(status)
    }
}

/// Its identity.
pub const ID: ModuleId = ModuleId::new("last");

/// XEP-0012: the server's uptime, and accounts' last logout.
#[derive(Debug, Clone, Default)]
pub struct LastActivity {
    /// Account queries waiting for the stored logout: the account and the
    /// iq, by storage request.
    waiting: HashMap<RequestId, (String, Element)>,
}

impl Module for LastActivity {
    fn id(&self) -> ModuleId {
        ID
    }

    fn server_features(&self) -> &'static [&'static str] {
        &[NS]
    }

    fn iq(&mut self, cx: &mut Context<'_>, to: Addressed<'_>, iq: &Element) -> Flow {
        let asks =
            iq.attr("type") == Some("get") && iq.first_element().is_some_and(|c| c.is(NS, "query"));
        if !asks {
            return Flow::Pass;
        }
        match to {
            // §5: the server's uptime.
            Addressed::Server { .. } => {
                let uptime = cx.now().saturating_sub(cx.started()) / 1000;
                cx.route(iq_result(iq).with_child(query(uptime, "")));
            }
            Addressed::Account { account, own } => self.account_query(cx, account, own, iq),
            // Goes on to the account, or is not ours.
            Addressed::Session { .. } | Addressed::Service { .. } => return Flow::Pass,
        }
        Flow::Handled
    }

    fn event(&mut self, cx: &mut Context<'_>, event: Event<'_>) {
        // §3: stored even when other resources remain: while they are
        // connected queries get 0, and the last one to leave overwrites it.
        let Event::Offline { account, status } = event else {
            return;
        };
        cx.write(StorageRequest::StoreBlob {
            account: account.to_owned(),
            key: LAST_KEY.to_owned(),
            value: Some(logout_document(cx.now(), status)),
            limit: None,
        });
    }

    fn storage_answer(&mut self, cx: &mut Context<'_>, id: RequestId, result: StorageResult) {
        let Some((account, iq)) = self.waiting.remove(&id) else {
            return;
        };
        self.waiting.release_spare();
        let logout = match &result {
            StorageResult::Blob(Some(doc)) => parse_logout(doc),
            StorageResult::Blob(None) => None,
            other => {
                tracing::error!(account, ?other, "reading the last logout failed");
                return cx.bounce(&iq, StanzaError::InternalServerError);
            }
        };
        // Never logged out since this was recorded: nothing to tell.
        let Some((at, status)) = logout else {
            return cx.bounce(&iq, StanzaError::ItemNotFound);
        };
        let seconds = cx.now().saturating_sub(at) / 1000;
        let mut r = iq_result(&iq).with_child(query(seconds, status));
        r.set_attr("from", account);
        cx.route(r);
    }
}

impl LastActivity {
    /// §3: a query to an account's bare JID (`own`: from the account).
    fn account_query(&mut self, cx: &mut Context<'_>, account: &str, own: bool, iq: &Element) {
        let Some(acc) = cx.account(account) else {
            return;
        };
        let requester = iq
            .attr("from")
            .and_then(|f| Jid::parse(f).ok())
            .map(|j| j.bare_str());
        // Only for those who may see the account's presence.
        let allowed = own
            || requester.as_deref() == Some(account)
            || requester
                .as_deref()
                .and_then(|r| acc.roster.get(r))
                .is_some_and(|i| i.subscription.from);
        if !allowed {
            return cx.bounce(iq, StanzaError::Forbidden);
        }
        if !acc.sessions.is_empty() {
            let mut r = iq_result(iq).with_child(query(0, ""));
            r.set_attr("from", account);
            return cx.route(r);
        }
        let id = cx.request(StorageRequest::LoadBlob {
            account: account.to_owned(),
            key: LAST_KEY.to_owned(),
        });
        self.waiting.insert(id, (account.to_owned(), iq.clone()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logout_documents_round_trip() {
        let doc = logout_document(1_700_000_000_123, "Heading Home\nfor real");
        assert_eq!(
            parse_logout(&doc),
            Some((1_700_000_000_123, "Heading Home\nfor real"))
        );
        assert_eq!(parse_logout("42"), Some((42, "")));
        assert_eq!(parse_logout("garbage\nx"), None);
        let q = query(903, "Heading Home");
        assert_eq!(q.attr("seconds"), Some("903"));
        assert_eq!(q.text(), "Heading Home");
        assert!(query(0, "").children.is_empty());
    }
}
