//! Who may read a node's items and is notified of them (XEP-0060 §4.5,
//! XEP-0163 §5): a pure decision on the node's access model and what the
//! owner's roster says about the requester.

use crate::stanza::StanzaError;

/// A node's access model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccessModel {
    /// Anyone.
    Open,
    /// Contacts subscribed to the owner's presence (XEP-0163's default).
    Presence,
    /// Such contacts in one of the allowed roster groups.
    Roster,
    /// The owner and the entities it made `member` (XEP-0060 §4.5).
    Whitelist,
}

impl AccessModel {
    /// The `pubsub#access_model` value.
    pub fn name(self) -> &'static str {
        match self {
            AccessModel::Open => "open",
            AccessModel::Presence => "presence",
            AccessModel::Roster => "roster",
            AccessModel::Whitelist => "whitelist",
        }
    }

    /// From a `pubsub#access_model` value; `None` for one not supported
    /// (`authorize` needs subscriptions).
    pub fn parse(name: &str) -> Option<Self> {
        Some(match name {
            "open" => AccessModel::Open,
            "presence" => AccessModel::Presence,
            "roster" => AccessModel::Roster,
            "whitelist" => AccessModel::Whitelist,
            _ => return None,
        })
    }
}

/// An affiliation the owner gave someone on a node (XEP-0060 §4.1); the
/// owner's own is implicit, and `publisher`s are not kept (only the owner
/// publishes to PEP).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Affiliation {
    /// None: the access model alone decides.
    None,
    /// May read and subscribe whatever the access model says (a
    /// whitelist's entries).
    Member,
    /// Banned: may neither read nor subscribe.
    Outcast,
}

impl Affiliation {
    /// The `affiliation` attribute value.
    pub fn name(self) -> &'static str {
        match self {
            Affiliation::None => "none",
            Affiliation::Member => "member",
            Affiliation::Outcast => "outcast",
        }
    }

    /// From an `affiliation` value; `None` for one PEP does not keep
    /// (`owner` of someone else, `publisher`, `publish-only`).
    pub fn parse(name: &str) -> Option<Self> {
        Some(match name {
            "none" => Affiliation::None,
            "member" => Affiliation::Member,
            "outcast" => Affiliation::Outcast,
            _ => return None,
        })
    }
}

/// What the owner's roster and the node's affiliations say about whoever
/// asks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Requester<'a> {
    /// The owner (any of their resources).
    Owner,
    /// Someone else: subscribed to the owner's presence or not, and in
    /// these roster groups of the owner's.
    Other {
        /// The roster item has subscription `from` or `both`.
        subscribed: bool,
        /// The item's roster groups (empty when not in the roster).
        groups: &'a [String],
        /// Its affiliation with the node.
        affiliation: Affiliation,
    },
}

/// The decision, with the refusal XEP-0060 §6.5 prescribes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// May read and is notified.
    Granted,
    /// §6.5.6: `not-authorized` + `presence-subscription-required`.
    PresenceSubscriptionRequired,
    /// §6.5.5: `not-authorized` + `not-in-roster-group`.
    NotInRosterGroup,
    /// §6.5.4 for whitelists: `not-allowed` + `closed-node`.
    ClosedNode,
    /// §6.1.3.8 / §6.5: an outcast is `forbidden`.
    Outcast,
}

impl Access {
    /// The stanza error and the pubsub#errors condition of a refusal.
    pub fn refusal(self) -> Option<(StanzaError, Option<&'static str>)> {
        match self {
            Access::Granted => None,
            Access::PresenceSubscriptionRequired => Some((
                StanzaError::NotAuthorized,
                Some("presence-subscription-required"),
            )),
            Access::NotInRosterGroup => {
                Some((StanzaError::NotAuthorized, Some("not-in-roster-group")))
            }
            Access::ClosedNode => Some((StanzaError::NotAllowed, Some("closed-node"))),
            Access::Outcast => Some((StanzaError::Forbidden, None)),
        }
    }
}

/// Whether `who` may read a node with `model` (and `allowed` groups for
/// the roster model): outcasts never, members always (§4.1).
pub fn decide(model: AccessModel, allowed: &[String], who: Requester<'_>) -> Access {
    let Requester::Other {
        subscribed,
        groups,
        affiliation,
    } = who
    else {
        return Access::Granted;
    };
    match affiliation {
        Affiliation::Outcast => return Access::Outcast,
        Affiliation::Member => return Access::Granted,
        Affiliation::None => {}
    }
    match model {
        AccessModel::Open => Access::Granted,
        AccessModel::Presence if subscribed => Access::Granted,
        AccessModel::Presence => Access::PresenceSubscriptionRequired,
        // XEP-0060 §4.5: "any entity in the specified roster group(s)",
        // whatever its presence subscription.
        AccessModel::Roster if groups.iter().any(|g| allowed.contains(g)) => Access::Granted,
        AccessModel::Roster => Access::NotInRosterGroup,
        AccessModel::Whitelist => Access::ClosedNode,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The decision table: every model against the owner, a subscribed
    /// contact in / out of the allowed group, an unsubscribed contact in
    /// the allowed group, a stranger, a member and an outcast.
    #[test]
    fn access_decision_table() {
        use AccessModel::*;
        let friends = vec!["Friends".to_owned()];
        let work = vec!["Work".to_owned()];
        let owner = Requester::Owner;
        let other = |subscribed, groups, affiliation| Requester::Other {
            subscribed,
            groups,
            affiliation,
        };
        let in_group = other(true, &friends, Affiliation::None);
        let other_group = other(true, &work, Affiliation::None);
        let unsubscribed = other(false, &friends, Affiliation::None);
        let stranger = other(false, &[], Affiliation::None);
        let member = other(false, &[], Affiliation::Member);
        let outcast = other(true, &friends, Affiliation::Outcast);
        let g = Access::Granted;
        let p = Access::PresenceSubscriptionRequired;
        let r = Access::NotInRosterGroup;
        let c = Access::ClosedNode;
        let o = Access::Outcast;
        let table = [
            (Open, [g, g, g, g, g, g, o]),
            (Presence, [g, g, g, p, p, g, o]),
            (Roster, [g, g, r, g, r, g, o]),
            (Whitelist, [g, c, c, c, c, g, o]),
        ];
        for (model, expected) in table {
            let got = [
                owner,
                in_group,
                other_group,
                unsubscribed,
                stranger,
                member,
                outcast,
            ]
            .map(|who| decide(model, &friends, who));
            assert_eq!(got, expected, "{model:?}");
        }
        assert_eq!(
            p.refusal(),
            Some((
                StanzaError::NotAuthorized,
                Some("presence-subscription-required")
            ))
        );
        assert_eq!(
            c.refusal(),
            Some((StanzaError::NotAllowed, Some("closed-node")))
        );
        assert_eq!(o.refusal(), Some((StanzaError::Forbidden, None)));
        assert_eq!(g.refusal(), None);
    }
}
