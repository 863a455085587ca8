//! An account deleted from the store (XEP-0077 `<remove/>`, or an
//! administrator): what lives on in the hub ends with it — its sessions,
//! with a `<not-authorized/>` stream error, and its presence subscriptions.

use super::{ConnId, Hub};
use crate::jid::Jid;
use crate::ns;
use crate::spare::ReleaseSpare;
use crate::stream::StreamErrorCondition;
use crate::xml::Element;
use std::collections::HashSet;

/// A session of the removed account: its connection and, when it was
/// available, its JID and directed-presence targets.
type Leaving = (ConnId, Option<(Jid, HashSet<String>)>);

impl Hub {
    /// The account's data is gone from the store: end its sessions (their
    /// unavailable presence first, while the roster still says who is
    /// subscribed), cancel its subscriptions and forget it.
    pub(super) fn account_deleted(&mut self, account: &str) {
        let account = account.to_owned();
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
