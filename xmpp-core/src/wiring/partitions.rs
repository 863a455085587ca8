//! Which hub partition owns a stanza's `to`, when a connected external
//! component (XEP-0114) takes it instead, and when it leaves for another
//! server (federation).

use crate::jid::Jid;
use std::collections::HashSet;
use std::hash::{Hash, Hasher};

/// The partitioning of accounts and domains over hub partitions: an
/// account lives in the partition its bare JID hashes to, a domain (and
/// its services) in the one the domain hashes to.
#[derive(Debug, Clone)]
pub struct Partitions {
    count: usize,
    /// The configured component domains (fixed at start): only stanzas
    /// for these look for a connected component, so user traffic needs
    /// no lookup.
    component_domains: HashSet<String>,
    /// With federation on, every domain this server hosts (its own, its
    /// services', its components'): a stanza for any other leaves over
    /// s2s. `None`: no federation, and a partition answers such stanzas
    /// `remote-server-not-found`.
    hosted: Option<HashSet<String>>,
}

/// Where a stanza goes ([`Partitions::destination`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Destination {
    /// To the component serving `domain` if one is connected, else to
    /// `partition` (whose hub answers for a component that is away).
    Component { domain: String, partition: usize },
    /// To this partition.
    Partition(usize),
    /// To another server (s2s) serving `domain`, or to `partition` (whose
    /// hub bounces it) when that cannot be.
    Remote { domain: String, partition: usize },
}

impl Destination {
    /// The partition that takes the stanza when no component does.
    pub fn partition(&self) -> usize {
        match self {
            Destination::Component { partition, .. }
            | Destination::Remote { partition, .. }
            | Destination::Partition(partition) => *partition,
        }
    }
}

impl Partitions {
    /// `count` partitions (at least one), with the configured component
    /// domains.
    pub fn new(count: usize, component_domains: impl IntoIterator<Item = String>) -> Self {
        Partitions {
            count: count.max(1),
            component_domains: component_domains.into_iter().collect(),
            hosted: None,
        }
    }

    /// Federation on: stanzas for a domain outside `hosted` (every domain
    /// this server serves) are [`Destination::Remote`].
    pub fn with_federation(mut self, hosted: impl IntoIterator<Item = String>) -> Self {
        self.hosted = Some(hosted.into_iter().collect());
        self
    }

    /// Whether `domain` is another server's (federation on and not hosted).
    pub fn is_remote(&self, domain: &str) -> bool {
        self.hosted.as_ref().is_some_and(|h| !h.contains(domain))
    }

    /// How many partitions there are.
    pub fn count(&self) -> usize {
        self.count
    }

    /// The partition owning a bare JID or a domain (as a string).
    pub fn of(&self, owner: &str) -> usize {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        owner.hash(&mut h);
        (h.finish() % self.count as u64) as usize
    }

    /// Whether `domain` is a configured component's.
    pub fn is_component(&self, domain: &str) -> bool {
        self.component_domains.contains(domain)
    }

    /// Where a stanza with this `to` goes: its bare JID's partition, unless
    /// its domain is a component's or another server's. A missing or
    /// malformed `to` goes to the partition of the empty string, whose hub
    /// answers it.
    pub fn destination(&self, to: Option<&str>) -> Destination {
        let Some(to) = to.and_then(|t| Jid::parse(t).ok()) else {
            return Destination::Partition(self.of(""));
        };
        let partition = self.of(&to.bare_str());
        if self.is_component(to.domain()) {
            return Destination::Component {
                domain: to.domain().to_owned(),
                partition,
            };
        }
        if self.is_remote(to.domain()) {
            return Destination::Remote {
                domain: to.domain().to_owned(),
                partition,
            };
        }
        Destination::Partition(partition)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_account_and_its_resources_share_a_partition() {
        let p = Partitions::new(8, []);
        let bare = p.of("alice@localhost");
        for to in [
            "alice@localhost",
            "alice@localhost/phone",
            "alice@localhost/a/b",
        ] {
            assert_eq!(p.destination(Some(to)), Destination::Partition(bare));
        }
        assert_eq!(
            p.destination(Some("localhost")).partition(),
            p.of("localhost")
        );
        let spread: HashSet<usize> = (0..64).map(|i| p.of(&format!("u{i}@x"))).collect();
        assert!(spread.len() > 4, "accounts spread over partitions");
        assert!((0..64).all(|i| p.of(&format!("u{i}@x")) < 8));
    }

    #[test]
    fn component_domains_and_bad_addresses() {
        let p = Partitions::new(4, ["muc.localhost".to_owned()]);
        assert_eq!(
            p.destination(Some("room@muc.localhost/nick")),
            Destination::Component {
                domain: "muc.localhost".into(),
                partition: p.of("room@muc.localhost"),
            }
        );
        assert_eq!(p.destination(None), Destination::Partition(p.of("")));
        assert_eq!(p.destination(Some("@@")), Destination::Partition(p.of("")));
        assert_eq!(Partitions::new(0, []).count(), 1);
    }

    #[test]
    fn with_federation_other_domains_are_remote() {
        let p = Partitions::new(2, ["muc.localhost".to_owned()])
            .with_federation(["localhost".to_owned(), "muc.localhost".to_owned()]);
        assert_eq!(
            p.destination(Some("bob@remote.example/r")),
            Destination::Remote {
                domain: "remote.example".into(),
                partition: p.of("bob@remote.example"),
            }
        );
        assert_eq!(
            p.destination(Some("alice@localhost")),
            Destination::Partition(p.of("alice@localhost"))
        );
        assert!(matches!(
            p.destination(Some("room@muc.localhost")),
            Destination::Component { .. }
        ));
        let off = Partitions::new(2, []);
        assert!(!off.is_remote("remote.example"));
    }
}
