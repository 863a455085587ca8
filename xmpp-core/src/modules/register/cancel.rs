//! XEP-0077 §3.2 as a hub module: an account cancels its registration.
//! The store deletes its data (one request); the hub then ends what lives
//! on ([`Context::account_deleted`]): its sessions, with a
//! `<not-authorized/>` stream error, and its presence subscriptions.

use super::{error, RegisterRequest, NS, STORAGE_FAILED};
use crate::hub::ConnId;
use crate::jid::Jid;
use crate::modules::{Context, Flow, Module, ModuleId};
use crate::stanza::iq_result;
use crate::storage::{RequestId, StorageRequest, StorageResult};
use crate::xml::Element;
use std::collections::HashMap;

/// Its identity.
pub const ID: ModuleId = ModuleId::new("register");

/// A cancellation waiting for its storage delete.
#[derive(Debug, Clone)]
struct Cancel {
    account: String,
    conn: ConnId,
    iq: Element,
}

/// XEP-0077 in the hub: `<remove/>` from a bound session, and the
/// registration feature in the server's disco#info (the rest of XEP-0077
/// happens in the stream, where credentials are handled).
#[derive(Debug, Clone, Default)]
pub struct Cancellation {
    waiting: HashMap<RequestId, Cancel>,
}

impl Module for Cancellation {
    fn id(&self) -> ModuleId {
        ID
    }

    /// Before anything else acts on a stanza of an account being removed.
    fn priority(&self) -> i32 {
        200
    }

    fn server_features(&self) -> &'static [&'static str] {
        &[NS]
    }

    /// `<remove/>` addressed to the account itself or its server (or to
    /// nobody).
    fn outbound(
        &mut self,
        cx: &mut Context<'_>,
        account: &str,
        conn: ConnId,
        stanza: &Element,
    ) -> Flow {
        if stanza.name != "iq"
            || !matches!(
                RegisterRequest::parse(stanza),
                Some(Ok(RegisterRequest::Remove))
            )
        {
            return Flow::Pass;
        }
        let to = stanza.attr("to").and_then(|t| Jid::parse(t).ok());
        let own = match to {
            None => true,
            Some(t) if t.is_bare() && t.bare_str() == account => true,
            Some(t) => {
                t.local().is_none()
                    && t.is_bare()
                    && Jid::parse(account).is_ok_and(|a| a.domain() == t.domain())
            }
        };
        if !own {
            return Flow::Pass;
        }
        let id = cx.request(StorageRequest::DeleteAccount {
            account: account.to_owned(),
        });
        let cancel = Cancel {
            account: account.to_owned(),
            conn,
            iq: stanza.clone(),
        };
        self.waiting.insert(id, cancel);
        Flow::Handled
    }

    /// The store answered the delete: confirm to the requesting session,
    /// then the hub ends the rest.
    fn storage_answer(&mut self, cx: &mut Context<'_>, id: RequestId, result: StorageResult) {
        let Some(Cancel { account, conn, iq }) = self.waiting.remove(&id) else {
            return;
        };
        if result != StorageResult::Done {
            tracing::error!(account, ?result, "deleting the account failed");
            let domain = Jid::parse(&account)
                .map(|j| j.domain().to_owned())
                .unwrap_or_default();
            return cx.deliver(conn, error(&iq, STORAGE_FAILED, &domain));
        }
        tracing::info!(account, "account removed in-band (XEP-0077)");
        let mut reply = iq_result(&iq);
        if iq.attr("to").is_none() {
            reply.remove_attr("from");
        }
        cx.deliver(conn, reply);
        cx.account_deleted(&account);
    }
}
