//! Affiliations (XEP-0060 §4.1) and what each lets an entity do with a
//! node, given its access and publish models: pure decisions, with the
//! refusals §6 and §7 prescribe.

use super::config::{Access, NodeConfig, PublishModel};
use crate::modules::xep0060::Refusal;
use crate::stanza::StanzaError;

/// An entity's affiliation with a node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Affiliation {
    /// Refused everything.
    Outcast,
    /// No affiliation.
    None,
    /// May subscribe and retrieve items on whitelist nodes.
    Member,
    /// May publish, and nothing else.
    PublishOnly,
    /// May publish and retract any item, subscribe and retrieve.
    Publisher,
    /// Everything, configuration and deletion included.
    Owner,
}

impl Affiliation {
    /// The `affiliation` attribute value.
    pub fn name(self) -> &'static str {
        match self {
            Affiliation::Outcast => "outcast",
            Affiliation::None => "none",
            Affiliation::Member => "member",
            Affiliation::PublishOnly => "publish-only",
            Affiliation::Publisher => "publisher",
            Affiliation::Owner => "owner",
        }
    }

    /// From an `affiliation` attribute value.
    pub fn parse(name: &str) -> Option<Self> {
        Some(match name {
            "outcast" => Affiliation::Outcast,
            "none" => Affiliation::None,
            "member" => Affiliation::Member,
            "publish-only" => Affiliation::PublishOnly,
            "publisher" => Affiliation::Publisher,
            "owner" => Affiliation::Owner,
            _ => return None,
        })
    }

    fn reads_closed_nodes(self) -> bool {
        matches!(
            self,
            Affiliation::Member | Affiliation::Publisher | Affiliation::Owner
        )
    }
}

const FORBIDDEN: Refusal = (StanzaError::Forbidden, None);

/// §6.1.3: whether `aff` may subscribe; `Ok(true)` when the subscription
/// waits for an owner's approval (`authorize`).
pub fn may_subscribe(config: &NodeConfig, aff: Affiliation) -> Result<bool, Refusal> {
    match (aff, config.access) {
        (Affiliation::Outcast, _) => Err(FORBIDDEN),
        (a, _) if a.reads_closed_nodes() => Ok(false),
        (_, Access::Open) => Ok(false),
        (_, Access::Authorize) => Ok(true),
        (_, Access::Whitelist) => Err((StanzaError::NotAllowed, Some("closed-node"))),
    }
}

/// §6.5: whether `aff`, subscribed or not, may retrieve items.
pub fn may_read(config: &NodeConfig, aff: Affiliation, subscribed: bool) -> Result<(), Refusal> {
    match (aff, config.access) {
        (Affiliation::Outcast, _) => Err(FORBIDDEN),
        (a, _) if a.reads_closed_nodes() => Ok(()),
        (_, Access::Open) => Ok(()),
        (_, Access::Authorize) if subscribed => Ok(()),
        (_, Access::Authorize) => Err((StanzaError::NotAuthorized, Some("not-subscribed"))),
        (_, Access::Whitelist) => Err((StanzaError::NotAllowed, Some("closed-node"))),
    }
}

/// §7.1.3.1: whether `aff`, subscribed or not, may publish.
pub fn may_publish(config: &NodeConfig, aff: Affiliation, subscribed: bool) -> Result<(), Refusal> {
    match (aff, config.publish) {
        (Affiliation::Outcast, _) => Err(FORBIDDEN),
        (Affiliation::Owner | Affiliation::Publisher | Affiliation::PublishOnly, _) => Ok(()),
        (_, PublishModel::Open) => Ok(()),
        (_, PublishModel::Subscribers) if subscribed => Ok(()),
        _ => Err(FORBIDDEN),
    }
}

/// §7.2.3.1: whether `aff` may retract an item `own`ed (published by it).
pub fn may_retract(aff: Affiliation, own: bool) -> Result<(), Refusal> {
    match aff {
        Affiliation::Owner | Affiliation::Publisher => Ok(()),
        Affiliation::PublishOnly | Affiliation::Member | Affiliation::None if own => Ok(()),
        _ => Err(FORBIDDEN),
    }
}

/// §8: whether `aff` may manage the node (configure, delete, purge,
/// subscriptions and affiliations).
pub fn may_own(aff: Affiliation) -> Result<(), Refusal> {
    if aff == Affiliation::Owner {
        Ok(())
    } else {
        Err(FORBIDDEN)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Affiliation::*;

    /// The XEP-0060 §4.1 table, per access model.
    #[test]
    fn affiliation_table() {
        let mut c = NodeConfig::new(Access::Open, 10);
        let all = [Outcast, None, Member, PublishOnly, Publisher, Owner];
        let read = |c: &NodeConfig, subscribed| all.map(|a| may_read(c, a, subscribed).is_ok());
        assert_eq!(read(&c, false), [false, true, true, true, true, true]);
        c.access = Access::Whitelist;
        assert_eq!(read(&c, false), [false, false, true, false, true, true]);
        c.access = Access::Authorize;
        assert_eq!(read(&c, false), [false, false, true, false, true, true]);
        assert_eq!(read(&c, true), [false, true, true, true, true, true]);
        assert_eq!(may_subscribe(&c, None), Ok(true));
        assert_eq!(may_subscribe(&c, Member), Ok(false));
        assert_eq!(may_subscribe(&c, Outcast), Err(FORBIDDEN));
        let publish =
            |c: &NodeConfig, subscribed| all.map(|a| may_publish(c, a, subscribed).is_ok());
        assert_eq!(publish(&c, true), [false, false, false, true, true, true]);
        c.publish = PublishModel::Subscribers;
        assert_eq!(publish(&c, true), [false, true, true, true, true, true]);
        c.publish = PublishModel::Open;
        assert_eq!(publish(&c, false), [false, true, true, true, true, true]);
        assert!(may_retract(PublishOnly, false).is_err());
        assert!(may_retract(Publisher, false).is_ok());
        assert!(may_own(Publisher).is_err());
        assert_eq!(Affiliation::parse("publish-only"), Some(PublishOnly));
    }
}
