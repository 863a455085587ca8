//! The service's settings: who may create nodes, the defaults of a new
//! node, and the budgets every input is held to (Prosody's mod_pubsub
//! names where it has them: `pubsub_max_items`, `pubsub_admins`).

use super::config::Access;

/// Who may create nodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CreatePolicy {
    /// Any user of a hosted domain.
    Local,
    /// The server's administrators only.
    Admins,
    /// Nobody: the service only serves existing nodes.
    Nobody,
}

impl CreatePolicy {
    /// From its configuration name (`local`, `admins`, `nobody`).
    pub fn parse(name: &str) -> Option<Self> {
        Some(match name {
            "local" => CreatePolicy::Local,
            "admins" => CreatePolicy::Admins,
            "nobody" => CreatePolicy::Nobody,
            _ => return None,
        })
    }
}

/// The service's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// Hosted domains: the service answers at `pubsub.<domain>` for each.
    pub domains: Vec<String>,
    /// Bare JIDs of the administrators: they own every node.
    pub admins: Vec<String>,
    /// Who may create nodes.
    pub create: CreatePolicy,
    /// `pubsub#max_items` of a new node.
    pub default_max_items: usize,
    /// `pubsub#access_model` of a new node.
    pub default_access: Access,
    /// Largest item payload, serialized (`payload-too-big` beyond).
    pub item_bytes_max: usize,
    /// Most items a node keeps (`pubsub#max_items=max` means this).
    pub items_per_node_max: usize,
    /// Most payload bytes a node keeps: beyond it the oldest items go,
    /// as beyond `max_items`.
    pub node_bytes_max: usize,
    /// Bytes of nodes a service keeps in memory; beyond it the least
    /// recently used are dropped (and read again when asked for). Fixed:
    /// not a configuration key.
    pub cache_bytes_max: usize,
    /// Most nodes one JID may have created.
    pub nodes_per_owner_max: usize,
    /// Most subscriptions (pending included) of one bare JID, over all
    /// nodes of a service.
    pub subscriptions_per_jid_max: usize,
    /// Most subscription requests waiting for approval on one node.
    pub pending_max: usize,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            domains: vec!["localhost".into()],
            admins: Vec::new(),
            create: CreatePolicy::Local,
            default_max_items: 10,
            default_access: Access::Open,
            item_bytes_max: 64 * 1024,
            items_per_node_max: 256,
            node_bytes_max: 1024 * 1024,
            cache_bytes_max: 64 * 1024 * 1024,
            nodes_per_owner_max: 100,
            subscriptions_per_jid_max: 1000,
            pending_max: 100,
        }
    }
}

impl Settings {
    /// The service domain of each hosted domain.
    pub fn service_domains(&self) -> Vec<String> {
        self.domains.iter().map(|d| format!("pubsub.{d}")).collect()
    }

    /// Whether `bare` is an administrator.
    pub fn is_admin(&self, bare: &str) -> bool {
        self.admins.iter().any(|a| a == bare)
    }

    /// Whether `bare` is a user of a hosted domain.
    pub fn is_local(&self, bare: &str) -> bool {
        bare.split_once('@')
            .is_some_and(|(_, d)| self.domains.iter().any(|h| h == d))
    }

    /// Whether `bare` may create nodes.
    pub fn may_create(&self, bare: &str) -> bool {
        match self.create {
            CreatePolicy::Local => self.is_local(bare) || self.is_admin(bare),
            CreatePolicy::Admins => self.is_admin(bare),
            CreatePolicy::Nobody => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn creation_follows_the_policy() {
        let mut s = Settings {
            admins: vec!["root@localhost".into()],
            ..Settings::default()
        };
        assert!(s.may_create("alice@localhost"));
        assert!(!s.may_create("eve@elsewhere.example"));
        s.create = CreatePolicy::Admins;
        assert!(!s.may_create("alice@localhost"));
        assert!(s.may_create("root@localhost"));
        s.create = CreatePolicy::Nobody;
        assert!(!s.may_create("root@localhost"));
        assert_eq!(s.service_domains(), vec!["pubsub.localhost".to_owned()]);
        assert_eq!(CreatePolicy::parse("admins"), Some(CreatePolicy::Admins));
        assert_eq!(CreatePolicy::parse("everyone"), None);
    }
}
