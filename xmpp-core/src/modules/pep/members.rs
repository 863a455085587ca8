//! Who else a node reaches: subscriptions (XEP-0060 §6.1, §6.2, the
//! owner's §8.8) and affiliations (the owner's §8.9: `member`s read a
//! whitelist node, `outcast`s read nothing). Both are kept in the node's
//! document, within budgets, and stored before the result leaves.

use super::access::{Access, Affiliation};
use super::protocol::{Refusal, NS, OWNER};
use super::requests::Answer;
use super::store::Node;
use super::{access_for, fits, state, store};
use crate::archive::bare_of;
use crate::modules::Context;
use crate::stanza::StanzaError;
use crate::xml::Element;

/// Most affiliations a node keeps.
pub const AFFILIATIONS_MAX: usize = 1000;
/// Most subscriptions a node keeps.
pub const SUBSCRIBERS_MAX: usize = 1000;
/// Most subscriptions of one bare JID (its resources) to a node, so that
/// one entity cannot take a node's whole budget (§6.1.3.4).
pub const PER_ENTITY_MAX: usize = 16;

/// The node `name`, loaded ([`super::Pep::process`] read it).
fn node<'a>(cx: &'a mut Context<'_>, account: &str, name: &str) -> Result<&'a mut Node, Refusal> {
    state(cx, account)?
        .nodes
        .get_mut(name)
        .ok_or((StanzaError::ItemNotFound, None))
}

/// Store `next` as node `name` when it fits the budgets.
fn replace(cx: &mut Context<'_>, account: &str, name: &str, next: Node) -> Result<(), Refusal> {
    let st = state(cx, account)?;
    let index = st
        .index
        .as_ref()
        .ok_or((StanzaError::InternalServerError, None))?;
    fits(index, name, &next)?;
    st.nodes.insert(name.to_owned(), next);
    store(cx, account, name)
}

/// `<subscription node jid subscription='…'/>` in `ns`.
fn subscription(ns: &'static str, node: &str, jid: &str, state: &str) -> Element {
    let mut e = Element::new(ns, "subscription")
        .with_attr("jid", jid)
        .with_attr("subscription", state);
    if ns == NS {
        e.set_attr("node", node);
    }
    e
}

/// §6.1: `requester` (a bare JID) subscribes `jid`, one of its own, if
/// the access model admits it; the last item follows the result (§6.1.7,
/// `send_last_published_item` is `on_sub_and_presence` in PEP).
pub(super) fn subscribe(
    cx: &mut Context<'_>,
    account: &str,
    requester: &str,
    name: String,
    jid: String,
) -> Result<Answer, Refusal> {
    if bare_of(&jid) != requester {
        return Err((StanzaError::BadRequest, Some("invalid-jid")));
    }
    let n = node(cx, account, &name)?;
    let (model, groups, affiliation) = (
        n.config.access_model,
        n.config.roster_groups.clone(),
        n.affiliation(requester),
    );
    let access = access_for(cx, account, requester, model, &groups, affiliation);
    if let Some(refusal) = access.refusal() {
        return Err(refusal);
    }
    let n = node(cx, account, &name)?;
    if !n.subscribers.contains(&jid) {
        room_for(n, requester)?;
        let next = with_subscriptions(n, &[(jid.clone(), true)])?;
        replace(cx, account, &name, next)?;
    }
    let result = Element::new(NS, "pubsub").with_child(subscription(NS, &name, &jid, "subscribed"));
    Ok(Answer {
        payload: Some(result),
        event: None,
        last: Some((jid, name)),
    })
}

/// Whether `requester` (a bare JID) may add one more subscription to
/// `node`: `policy-violation` + `too-many-subscriptions` beyond
/// [`PER_ENTITY_MAX`] of its own (§6.1.3.4).
pub fn room_for(node: &Node, requester: &str) -> Result<(), Refusal> {
    let own = node
        .subscribers
        .iter()
        .filter(|s| bare_of(s) == requester)
        .count();
    if own >= PER_ENTITY_MAX {
        return Err((StanzaError::PolicyViolation, Some("too-many-subscriptions")));
    }
    Ok(())
}

/// §6.2: `requester` cancels the subscription of `jid`, one of its own
/// (the owner may cancel anyone's).
pub(super) fn unsubscribe(
    cx: &mut Context<'_>,
    account: &str,
    requester: &str,
    name: &str,
    jid: &str,
) -> Result<Answer, Refusal> {
    if bare_of(jid) != requester && requester != account {
        return Err((StanzaError::Forbidden, None));
    }
    let n = node(cx, account, name)?;
    if !n.subscribers.contains(jid) {
        return Err((StanzaError::UnexpectedRequest, Some("not-subscribed")));
    }
    n.subscribers.remove(jid);
    store(cx, account, name)?;
    Ok(Answer::empty())
}

/// §8.8.1: the node's subscriptions, for the owner.
pub(super) fn subscriptions(
    cx: &mut Context<'_>,
    account: &str,
    name: &str,
) -> Result<Answer, Refusal> {
    let n = node(cx, account, name)?;
    let list = n.subscribers.iter().fold(
        Element::new(OWNER, "subscriptions").with_attr("node", name),
        |l, jid| l.with_child(subscription(OWNER, name, jid, "subscribed")),
    );
    Ok(Answer::payload(
        Element::new(OWNER, "pubsub").with_child(list),
    ))
}

/// §8.8.2: the owner subscribes or unsubscribes JIDs, all or none.
pub(super) fn set_subscriptions(
    cx: &mut Context<'_>,
    account: &str,
    name: &str,
    changes: &[(String, bool)],
) -> Result<Answer, Refusal> {
    let next = with_subscriptions(node(cx, account, name)?, changes)?;
    replace(cx, account, name, next)?;
    Ok(Answer::empty())
}

/// `node` with `changes` to its subscriptions, within the budget.
pub fn with_subscriptions(node: &Node, changes: &[(String, bool)]) -> Result<Node, Refusal> {
    let mut next = node.clone();
    for (jid, subscribed) in changes {
        if *subscribed {
            next.subscribers.insert(jid.clone());
        } else {
            next.subscribers.remove(jid);
        }
    }
    if next.subscribers.len() > SUBSCRIBERS_MAX {
        return Err((StanzaError::PolicyViolation, None));
    }
    Ok(next)
}

/// §8.9.1: the node's affiliations, the owner's first.
pub(super) fn affiliations(
    cx: &mut Context<'_>,
    account: &str,
    name: &str,
) -> Result<Answer, Refusal> {
    let n = node(cx, account, name)?;
    let entry = |jid: &str, a: &str| {
        Element::new(OWNER, "affiliation")
            .with_attr("jid", jid)
            .with_attr("affiliation", a)
    };
    let list = n.affiliations.iter().fold(
        Element::new(OWNER, "affiliations")
            .with_attr("node", name)
            .with_child(entry(account, "owner")),
        |l, (jid, a)| l.with_child(entry(jid, a.name())),
    );
    Ok(Answer::payload(
        Element::new(OWNER, "pubsub").with_child(list),
    ))
}

/// §8.9.2: the owner changes affiliations, all or none.
pub(super) fn set_affiliations(
    cx: &mut Context<'_>,
    account: &str,
    name: &str,
    changes: &[(String, Affiliation)],
) -> Result<Answer, Refusal> {
    let next = with_affiliations(node(cx, account, name)?, account, changes)?;
    replace(cx, account, name, next)?;
    Ok(Answer::empty())
}

/// `node` with `changes` to its affiliations, within the budget: an
/// outcast loses its subscriptions; the owner's own affiliation does not
/// change (`not-acceptable`).
pub fn with_affiliations(
    node: &Node,
    account: &str,
    changes: &[(String, Affiliation)],
) -> Result<Node, Refusal> {
    let mut next = node.clone();
    for (jid, affiliation) in changes {
        if jid == account {
            return Err((StanzaError::NotAcceptable, None));
        }
        match affiliation {
            Affiliation::None => {
                next.affiliations.remove(jid);
            }
            Affiliation::Outcast => {
                next.affiliations.insert(jid.clone(), *affiliation);
                next.subscribers.retain(|s| bare_of(s) != jid);
            }
            Affiliation::Member => {
                next.affiliations.insert(jid.clone(), *affiliation);
            }
        }
    }
    if next.affiliations.len() > AFFILIATIONS_MAX {
        return Err((StanzaError::PolicyViolation, None));
    }
    Ok(next)
}

/// Whether a subscriber `jid` is still admitted to a node with `node`'s
/// access model (a presence subscription may have ended since).
pub(super) fn admitted(
    cx: &Context<'_>,
    account: &str,
    node: &super::notify::Audience,
    jid: &str,
) -> bool {
    let bare = bare_of(jid);
    let affiliation = node
        .affiliations
        .get(bare)
        .copied()
        .unwrap_or(Affiliation::None);
    access_for(cx, account, bare, node.access, &node.groups, affiliation) == Access::Granted
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::modules::pep::config::NodeConfig;
    use crate::modules::pep::store::{Entry, Index};

    fn jids(n: usize, len: usize) -> Vec<String> {
        (0..n)
            .map(|i| format!("{}{i}@example.org", "u".repeat(len)))
            .collect()
    }

    /// Many subscribers: the one beyond the budget is refused with
    /// nothing changed; repeating one costs nothing; long JIDs hit the
    /// node's byte budget first.
    #[test]
    fn subscriptions_have_a_budget() {
        let node = Node::new(NodeConfig::default());
        let full: Vec<(String, bool)> = jids(SUBSCRIBERS_MAX, 1)
            .into_iter()
            .map(|j| (j, true))
            .collect();
        let at_limit = with_subscriptions(&node, &full).expect("at the limit");
        assert_eq!(at_limit.subscribers.len(), SUBSCRIBERS_MAX);
        assert_eq!(
            with_subscriptions(&at_limit, &[("one@more".into(), true)]),
            Err((StanzaError::PolicyViolation, None))
        );
        // One entity, many resources: stopped at its own limit.
        let mut greedy = node.clone();
        for r in 0..PER_ENTITY_MAX {
            assert_eq!(room_for(&greedy, "g@x"), Ok(()));
            greedy.subscribers.insert(format!("g@x/{r}"));
        }
        assert_eq!(
            room_for(&greedy, "g@x"),
            Err((StanzaError::PolicyViolation, Some("too-many-subscriptions")))
        );
        assert_eq!(room_for(&greedy, "other@x"), Ok(()));
        let repeated = vec![("same@x".to_owned(), true); 10_000];
        assert_eq!(
            with_subscriptions(&node, &repeated)
                .expect("one subscription")
                .subscribers
                .len(),
            1
        );
        let long: Vec<(String, bool)> = jids(600, 1000).into_iter().map(|j| (j, true)).collect();
        let big = with_subscriptions(&node, &long).expect("within the count");
        assert_eq!(
            fits(&Index::default(), "n", &big),
            Err((StanzaError::PolicyViolation, None))
        );
    }

    #[test]
    fn affiliations_have_a_budget_and_outcasts_lose_their_subscriptions() {
        let mut node = Node::new(NodeConfig::default());
        node.subscribers.insert("bad@x/phone".into());
        node.subscribers.insert("good@x".into());
        let next = with_affiliations(
            &node,
            "owner@x",
            &[
                ("bad@x".into(), Affiliation::Outcast),
                ("good@x".into(), Affiliation::Member),
            ],
        )
        .expect("valid");
        assert_eq!(next.affiliation("bad@x"), Affiliation::Outcast);
        assert_eq!(next.affiliation("good@x"), Affiliation::Member);
        assert_eq!(next.subscribers.iter().collect::<Vec<_>>(), vec!["good@x"]);
        let removed = with_affiliations(&next, "owner@x", &[("good@x".into(), Affiliation::None)])
            .expect("valid");
        assert_eq!(removed.affiliation("good@x"), Affiliation::None);
        assert_eq!(
            with_affiliations(
                &node,
                "owner@x",
                &[("owner@x".into(), Affiliation::Outcast)]
            ),
            Err((StanzaError::NotAcceptable, None))
        );
        let many: Vec<(String, Affiliation)> = jids(AFFILIATIONS_MAX + 1, 1)
            .into_iter()
            .map(|j| (j, Affiliation::Member))
            .collect();
        assert_eq!(
            with_affiliations(&node, "owner@x", &many),
            Err((StanzaError::PolicyViolation, None))
        );
        let at_limit =
            with_affiliations(&node, "owner@x", &many[..AFFILIATIONS_MAX]).expect("at the limit");
        let doc = at_limit.document();
        let mut index = Index::default();
        index.0.insert("n".into(), Entry::of(&at_limit));
        assert!(index.0.get("n").is_some_and(|e| e.affiliated));
        assert_eq!(Node::parse(&doc), Some(at_limit));
    }

    #[test]
    fn subscription_elements_name_the_node_only_outside_the_owner_namespace() {
        let e = subscription(NS, "n", "b@x", "subscribed");
        assert_eq!(e.attr("node"), Some("n"));
        let e = subscription(OWNER, "n", "b@x", "subscribed");
        assert_eq!(e.attr("node"), None);
    }
}
