//! XEP-0077 §3.2 in the hub: an account cancels its registration. The hub
//! owns what has to go with it: the stored data (one storage request), the
//! presence subscriptions, and every session, which ends with a
//! `<not-authorized/>` stream error.

use super::{ConnId, Hub, Pending};
use crate::jid::Jid;
use crate::modules::register::{error, RegisterRequest, STORAGE_FAILED};
use crate::ns;
use crate::spare::ReleaseSpare;
use crate::stanza::iq_result;
use crate::storage::{StorageRequest, StorageResult};
use crate::stream::StreamErrorCondition;
use crate::xml::Element;
use std::collections::HashSet;

/// A session of the removed account: its connection and, when it was
/// available, its JID and directed-presence targets.
type Leaving = (ConnId, Option<(Jid, HashSet<String>)>);

/// A cancellation waiting for its storage delete.
#[derive(Debug)]
pub(super) struct Cancel {
    account: String,
    conn: ConnId,
    iq: Element,
}

impl Hub {
    /// `<remove/>` from one of the account's sessions, addressed to the
    /// account itself or its server (or to nobody); `false` when `iq` is
    /// not one.
    pub(super) fn registration_removal(
        &mut self,
        account: &str,
        conn: ConnId,
        iq: &Element,
        to: Option<&Jid>,
    ) -> bool {
        if !self.enabled("register")
            || !matches!(
                RegisterRequest::parse(iq),
                Some(Ok(RegisterRequest::Remove))
            )
        {
            return false;
        }
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
            return false;
        }
        self.request(
            StorageRequest::DeleteAccount {
                account: account.to_owned(),
            },
            Pending::Cancel(Box::new(Cancel {
                account: account.to_owned(),
                conn,
                iq: iq.clone(),
            })),
        );
        true
    }

    /// The store answered the delete: confirm to the requesting session,
    /// take the account off its contacts' presence, end every session.
    pub(super) fn registration_removed(&mut self, cancel: Cancel, result: StorageResult) {
        let Cancel { account, conn, iq } = cancel;
        if result != StorageResult::Done {
            tracing::error!(account, ?result, "deleting the account failed");
            let domain = Jid::parse(&account)
                .map(|j| j.domain().to_owned())
                .unwrap_or_default();
            return self.deliver(conn, error(&iq, STORAGE_FAILED, &domain));
        }
        tracing::info!(account, "account removed in-band (XEP-0077)");
        let mut reply = iq_result(&iq);
        if iq.attr("to").is_none() {
            reply.remove_attr("from");
        }
        self.deliver(conn, reply);
        // Sessions end first, so nothing more is delivered to them; their
        // unavailable presence goes out while the roster still says who
        // is subscribed.
        let Some(acc) = self.account_mut(&account) else {
            return;
        };
        let leaving: Vec<Leaving> = acc
            .sessions
            .values()
            .map(|s| {
                (
                    s.conn,
                    s.available.then(|| (s.jid.clone(), s.directed.clone())),
                )
            })
            .collect();
        acc.sessions.retain(|_, _| false);
        for (c, available) in &leaving {
            self.conns.remove(c);
            if let Some((jid, directed)) = available {
                let unavailable = Element::new(ns::CLIENT, "presence")
                    .with_attr("type", "unavailable")
                    .with_attr("from", jid.to_string());
                self.broadcast_presence(&account, *c, &unavailable, directed);
            }
        }
        self.cancel_subscriptions(&account);
        self.accounts.remove(&account);
        self.accounts.release_spare();
        self.conns.release_spare();
        for (c, _) in leaving {
            self.visible(super::HubOutput::Close {
                conn: c,
                condition: Some(StreamErrorCondition::NotAuthorized),
            });
        }
    }

    /// §3.2: "cancel all existing presence subscriptions": unsubscribe from
    /// those we follow, unsubscribed to those following us (RFC 6121 §3.2,
    /// §3.3), so their rosters drop the account.
    fn cancel_subscriptions(&mut self, account: &str) {
        let items: Vec<(String, bool, bool)> = self
            .account(account)
            .map(|a| {
                a.roster
                    .values()
                    .map(|i| {
                        let s = i.subscription;
                        (i.jid.clone(), s.to || s.pending_out, s.from || s.pending_in)
                    })
                    .collect()
            })
            .unwrap_or_default();
        for (contact, following, followed) in items {
            for (kind, send) in [("unsubscribe", following), ("unsubscribed", followed)] {
                if send {
                    let p = Element::new(ns::CLIENT, "presence")
                        .with_attr("type", kind)
                        .with_attr("from", account)
                        .with_attr("to", contact.as_str());
                    self.route_outbound(p);
                }
            }
        }
    }
}
