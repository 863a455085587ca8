//! XEP-0160 offline storage under a quota, delivered in pages.
//!
//! A queue with no bound, loaded whole at login and sent in one burst,
//! let anyone lock a user out: the burst overran the client's XEP-0198
//! queue, the session ended with `resource-constraint`, its unacknowledged
//! messages went back offline and the next login did it again. So a
//! queue holds at most `Quotas::max_offline_messages` (beyond it the
//! sender is told `resource-constraint`, nothing vanishes silently), and a
//! login takes it one page at a time: the module sends a page, then
//! [`Context::page_sent`]; the connection reports back through
//! [`Hub::offline_page_delivered`](crate::hub::Hub::offline_page_delivered)
//! once the client has the page (acknowledged with XEP-0198, written to
//! the socket without), and only then is the next page read.

use super::{Context, Event, Flow, Module, ModuleId};
use crate::hub::ConnId;
use crate::jid::Jid;
use crate::ns;
use crate::stanza::StanzaError;
use crate::storage::{RequestId, StorageRequest, StorageResult};
use crate::time::format_datetime;
use crate::xml::{Element, Node};
use std::collections::HashMap;

/// Its identity.
pub const ID: ModuleId = ModuleId::new("offline");

/// What a storage request of this module was for.
#[derive(Debug, Clone)]
enum Waiting {
    /// A new message stored under the quota, kept serialized (an element
    /// tree costs several times its text, and a flood keeps many in
    /// flight): bounced if refused.
    Store(Box<str>),
    /// A page of the queue for a session; the account stays loaded until
    /// it is back.
    Page { account: String, conn: ConnId },
}

/// XEP-0160 Best Practices for Handling Offline Messages.
#[derive(Debug, Clone, Default)]
pub struct OfflineStorage {
    waiting: HashMap<RequestId, Waiting>,
}

impl OfflineStorage {
    /// Read the next page of `account`'s queue for the session on `conn`.
    fn take_page(&mut self, cx: &mut Context<'_>, account: &str, conn: ConnId) {
        let id = cx.request(StorageRequest::TakeOffline {
            account: account.to_owned(),
            page: cx.quotas().offline_page,
        });
        cx.hold_account(account);
        let waiting = Waiting::Page {
            account: account.to_owned(),
            conn,
        };
        self.waiting.insert(id, waiting);
    }

    /// The store's answer for a new message.
    fn stored(cx: &mut Context<'_>, xml: &str, result: StorageResult) {
        let cond = match result {
            StorageResult::Done => return,
            // ejabberd answers a full queue the same way.
            StorageResult::Full => StanzaError::ResourceConstraint,
            // Deleted meanwhile: as for any message to a missing account.
            StorageResult::NotFound => StanzaError::ServiceUnavailable,
            other => {
                tracing::error!(result = ?other, "storing an offline message failed");
                StanzaError::InternalServerError
            }
        };
        match Element::parse(xml.as_bytes()) {
            Ok(stanza) => {
                tracing::debug!(to = ?stanza.attr("to"), ?cond, "offline message refused");
                cx.bounce(&stanza, cond);
            }
            Err(e) => tracing::error!(error = %e, "refused offline message unreadable"),
        }
    }

    /// A page came back: deliver it to the session and mark its end, or
    /// put it back if the session left.
    fn page(cx: &mut Context<'_>, account: &str, conn: ConnId, result: StorageResult) {
        let StorageResult::Offline(stanzas) = result else {
            if let StorageResult::Failed(e) = result {
                tracing::error!(account, error = %e, "loading offline messages failed");
            }
            return;
        };
        let connected = cx
            .account(account)
            .is_some_and(|a| a.session_by_conn(conn).is_some());
        let more = connected && !stanzas.is_empty();
        for raw in stanzas {
            match Element::parse(raw.as_bytes()) {
                Ok(stanza) if connected => cx.deliver(conn, stanza),
                Ok(_) => {
                    // The session left while storage answered: keep it
                    // stored (accepted once, so beyond the quota too).
                    cx.write(StorageRequest::PushOffline {
                        account: account.to_owned(),
                        stanza: raw,
                        limit: None,
                    });
                }
                Err(e) => tracing::error!(account, error = %e, "unreadable offline message"),
            }
        }
        if more {
            // A page that came back empty ends the flush.
            cx.page_sent(conn);
        }
    }
}

impl Module for OfflineStorage {
    fn id(&self) -> ModuleId {
        ID
    }

    fn server_features(&self) -> &'static [&'static str] {
        &[ns::MSGOFFLINE]
    }

    /// Keep the message, stamped with XEP-0203 delay, for the next initial
    /// presence. A new message counts against the quota and is answered
    /// with an error when refused; one being redelivered (accepted once,
    /// and its session ended before the client had it) is stored
    /// regardless, and not accepted (archived) again.
    fn unavailable(
        &mut self,
        cx: &mut Context<'_>,
        account: &str,
        message: &mut Element,
        redelivered: bool,
    ) -> Flow {
        if !redelivered {
            cx.accept(account, message);
        }
        let domain = Jid::parse(account)
            .map(|j| j.domain().to_owned())
            .unwrap_or_default();
        message.children.push(Node::Element(
            Element::new(ns::DELAY, "delay")
                .with_attr("from", domain)
                .with_attr("stamp", format_datetime(cx.now()))
                .with_text("Offline storage"),
        ));
        cx.announce(Event::Unread {
            account,
            messages: std::slice::from_ref(message),
        });
        let xml = message.to_xml();
        let request = StorageRequest::PushOffline {
            account: account.to_owned(),
            stanza: xml.clone(),
            limit: (!redelivered).then_some(cx.quotas().max_offline_messages),
        };
        if redelivered {
            cx.write(request);
        } else {
            let id = cx.request(request);
            self.waiting
                .insert(id, Waiting::Store(xml.into_boxed_str()));
        }
        Flow::Handled
    }

    /// A session sent initial presence: its first page.
    fn event(&mut self, cx: &mut Context<'_>, event: Event<'_>) {
        if let Event::Online { account, conn } = event {
            self.take_page(cx, account, conn);
        }
    }

    /// The client has the last page it was sent: the next one.
    fn page_delivered(&mut self, cx: &mut Context<'_>, account: &str, conn: ConnId) {
        let present = cx
            .account(account)
            .is_some_and(|a| a.session_by_conn(conn).is_some());
        if present {
            self.take_page(cx, account, conn);
        }
    }

    fn storage_answer(&mut self, cx: &mut Context<'_>, id: RequestId, result: StorageResult) {
        match self.waiting.remove(&id) {
            Some(Waiting::Store(xml)) => Self::stored(cx, &xml, result),
            Some(Waiting::Page { account, conn }) => {
                Self::page(cx, &account, conn, result);
                cx.release_account(&account);
            }
            None => {}
        }
    }
}
