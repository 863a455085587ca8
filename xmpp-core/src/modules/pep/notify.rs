//! XEP-0163 §4.3 notifications: who an event reaches, by the node's
//! access model, affiliations and subscriptions, the owner's roster and
//! the contacts' caps.

use super::access::{decide, Access, AccessModel, Affiliation, Requester};
use super::protocol::notification;
use super::store::Node;
use super::{interest, members, PepState};
use crate::modules::Context;
use crate::xml::Element;
use std::collections::{BTreeMap, BTreeSet};

/// Whom a node's notifications may reach: its access model and groups,
/// its affiliations and its explicit subscribers (a copy: a deleted node
/// still tells them).
#[derive(Debug, Clone)]
pub(super) struct Audience {
    pub(super) access: AccessModel,
    pub(super) groups: Vec<String>,
    pub(super) affiliations: BTreeMap<String, Affiliation>,
    pub(super) subscribers: BTreeSet<String>,
}

impl Audience {
    pub(super) fn of(node: &Node) -> Self {
        Audience {
            access: node.config.access_model,
            groups: node.config.roster_groups.clone(),
            affiliations: node.affiliations.clone(),
            subscribers: node.subscribers.clone(),
        }
    }
}

/// XEP-0163 §4.3: the event to the owner's available resources, to the
/// available resources of the contacts the access model allows whose
/// clients asked for the node (`<node>+notify` in their caps, §4.2), and
/// to the explicit subscribers it still admits (§6.1) that were not
/// notified through their caps already.
pub(super) fn notify(
    cx: &mut Context<'_>,
    interests: &interest::Interests,
    account: &str,
    audience: &Audience,
    event: &Element,
) {
    let node = event.attr("node").unwrap_or_default();
    let Some(acc) = cx.account(account) else {
        return;
    };
    let own: Vec<String> = acc.available().map(|s| s.jid.to_string()).collect();
    let contacts: Vec<(String, String)> = cx
        .account_state_ref::<PepState>(account)
        .map(|s| {
            s.contacts
                .iter()
                .filter(|(bare, _)| {
                    let item = acc.roster.get(bare.as_str());
                    let who = Requester::Other {
                        subscribed: item.is_some_and(|i| i.subscription.from),
                        groups: item.map_or(&[], |i| i.groups.as_slice()),
                        affiliation: audience
                            .affiliations
                            .get(bare.as_str())
                            .copied()
                            .unwrap_or(Affiliation::None),
                    };
                    decide(audience.access, &audience.groups, who) == Access::Granted
                })
                .flat_map(|(bare, resources)| resources.iter().map(move |r| (bare, r)))
                .filter(|(_, (_, ver))| {
                    ver.as_deref()
                        .and_then(|v| interests.wants(v))
                        .is_some_and(|nodes| nodes.contains(node))
                })
                .map(|(bare, (full, _))| (bare.clone(), full.clone()))
                .collect()
        })
        .unwrap_or_default();
    let notified: BTreeSet<&str> = contacts
        .iter()
        .flat_map(|(bare, full)| [bare.as_str(), full.as_str()])
        .collect();
    let subscribers: Vec<(String, String)> = audience
        .subscribers
        .iter()
        .filter(|jid| {
            let bare = crate::archive::bare_of(jid);
            // A bare JID some resource of which was notified, or a
            // full JID notified, has it already.
            bare != account && !notified.contains(jid.as_str())
        })
        .filter(|jid| members::admitted(cx, account, audience, jid))
        .map(|jid| (crate::archive::bare_of(jid).to_owned(), jid.clone()))
        .collect();
    // Another module may withhold them from a contact (XEP-0191).
    let contacts: Vec<String> = contacts
        .into_iter()
        .chain(subscribers)
        .filter(|(bare, _)| !cx.withholds(account, bare, event))
        .map(|(_, full)| full)
        .collect();
    // Routed like the result before them, so they arrive after it.
    for to in own.into_iter().chain(contacts) {
        cx.route(notification(account, &to, event.clone()));
    }
}
