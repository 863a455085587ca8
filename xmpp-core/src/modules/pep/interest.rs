//! XEP-0163 §4.2 filtered notifications: a contact's client says which
//! nodes it wants with `<node>+notify` features, learned by XEP-0115 caps.
//! A verification string seen for the first time is asked for once
//! (disco#info to the resource that advertised it, from the owner's bare
//! JID), its answer checked against the hash and cached per partition.

use crate::modules::caps;
use crate::ns;
use crate::time::Millis;
use crate::xml::Element;
use std::collections::{BTreeSet, HashMap, VecDeque};
use std::sync::Arc;

/// Most verification strings remembered per partition.
const CACHE_MAX: usize = 4096;
/// Most disco#info queries awaiting an answer per partition.
const ASKING_MAX: usize = 1024;
/// Most `+notify` features kept per verification string.
const NOTIFY_MAX: usize = 256;
/// Most resources waiting for one verification string to be learned.
const WAITERS_MAX: usize = 64;
/// How long an answer is waited for; then the string may be asked again.
const ASK_TIMEOUT_MS: Millis = 60_000;
/// Prefix of the ids of our queries.
pub const ID_PREFIX: &str = "pep-caps-";

/// What a contact resource advertised: its caps node and verification
/// string (`hash='sha-1'` only, the one §5 defines).
pub fn advertised(presence: &Element) -> Option<(String, String)> {
    let c = presence.child(caps::NS, "c")?;
    if c.attr("hash")? != "sha-1" {
        return None;
    }
    Some((c.attr("node")?.to_owned(), c.attr("ver")?.to_owned()))
}

/// The nodes of a disco#info answer's `+notify` features, when the
/// answer hashes to `ver`.
pub fn notify_nodes(query: &Element, ver: &str) -> Option<BTreeSet<String>> {
    if !query.is(ns::DISCO_INFO, "query") || caps::ver(query) != ver {
        return None;
    }
    Some(
        query
            .elements()
            .filter(|f| f.is(ns::DISCO_INFO, "feature"))
            .filter_map(|f| f.attr("var")?.strip_suffix("+notify"))
            .take(NOTIFY_MAX)
            .map(str::to_owned)
            .collect(),
    )
}

/// A verification string answered, with the (account, contact resource)
/// pairs that waited for it.
pub type Learned = (String, Vec<(String, String)>);

/// The verification strings this partition knows, and the queries out.
#[derive(Debug, Clone, Default)]
pub struct Interests {
    known: HashMap<String, Arc<BTreeSet<String>>>,
    order: VecDeque<String>,
    /// Query id → (the resource asked, its verification string, when).
    asking: HashMap<String, (String, String, Millis)>,
    /// Verification string → the (account, contact resource) pairs that
    /// advertised it while it was asked for.
    waiters: HashMap<String, Vec<(String, String)>>,
    serial: u64,
}

impl Interests {
    /// The nodes clients advertising `ver` want, if known.
    pub fn wants(&self, ver: &str) -> Option<&BTreeSet<String>> {
        self.known.get(ver).map(|n| n.as_ref())
    }

    /// The disco#info query to send to `full` for `ver`, unless `ver`
    /// is known or asked for already (or too many queries are out); the
    /// resource is among those [`Interests::answer`] returns.
    pub fn ask(
        &mut self,
        now: Millis,
        account: &str,
        full: &str,
        node: &str,
        ver: &str,
    ) -> Option<Element> {
        if self.known.contains_key(ver) {
            return None;
        }
        let waiting = self.waiters.entry(ver.to_owned()).or_default();
        if waiting.len() < WAITERS_MAX {
            waiting.push((account.to_owned(), full.to_owned()));
        }
        let expired: Vec<String> = self
            .asking
            .iter()
            .filter(|(_, (_, _, at))| now.saturating_sub(*at) > ASK_TIMEOUT_MS)
            .map(|(id, _)| id.clone())
            .collect();
        for id in expired {
            if let Some((_, v, _)) = self.asking.remove(&id) {
                self.waiters.remove(&v);
            }
        }
        if self.asking.len() >= ASKING_MAX || self.asking.values().any(|(_, v, _)| v == ver) {
            return None;
        }
        self.waiters
            .entry(ver.to_owned())
            .or_insert_with(|| vec![(account.to_owned(), full.to_owned())]);
        self.serial = self.serial.wrapping_add(1);
        let id = format!("{ID_PREFIX}{}", self.serial);
        self.asking
            .insert(id.clone(), (full.to_owned(), ver.to_owned(), now));
        Some(
            Element::new(ns::CLIENT, "iq")
                .with_attr("type", "get")
                .with_attr("id", id)
                .with_attr("from", account)
                .with_attr("to", full)
                .with_child(
                    Element::new(ns::DISCO_INFO, "query")
                        .with_attr("node", format!("{node}#{ver}")),
                ),
        )
    }

    /// An iq result or error: when it answers one of our queries (same id,
    /// from the resource asked), learn from it and return who waited for
    /// it (nobody when it taught nothing). `None` when not ours.
    pub fn answer(&mut self, iq: &Element) -> Option<Learned> {
        let id = iq.attr("id").filter(|id| id.starts_with(ID_PREFIX))?;
        let ours = self
            .asking
            .get(id)
            .is_some_and(|(full, _, _)| iq.attr("from") == Some(full.as_str()));
        if !ours {
            return None;
        }
        let (_, ver, _) = self.asking.remove(id)?;
        let waiting = self.waiters.remove(&ver).unwrap_or_default();
        let learned = match iq.attr("type") {
            Some("result") => iq.first_element().and_then(|q| notify_nodes(q, &ver)),
            _ => None,
        };
        match learned {
            Some(nodes) => {
                self.learn(ver.clone(), nodes);
                Some((ver, waiting))
            }
            None => {
                tracing::debug!(ver, "caps answer refused or not matching its hash");
                Some((ver, Vec::new()))
            }
        }
    }

    fn learn(&mut self, ver: String, nodes: BTreeSet<String>) {
        if self.known.len() >= CACHE_MAX {
            if let Some(old) = self.order.pop_front() {
                self.known.remove(&old);
            }
        }
        self.order.push_back(ver.clone());
        self.known.insert(ver, Arc::new(nodes));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn learns_notify_nodes_only_from_a_matching_answer() {
        let query = Element::parse(
            b"<query xmlns='http://jabber.org/protocol/disco#info'>\
              <identity category='client' type='pc'/>\
              <feature var='http://jabber.org/protocol/tune+notify'/>\
              <feature var='http://jabber.org/protocol/disco#info'/></query>",
        )
        .expect("XML");
        let ver = caps::ver(&query);
        let mut i = Interests::default();
        let ask = i
            .ask(0, "a@x", "b@x/r", "https://client", &ver)
            .expect("asks once");
        assert!(i
            .ask(1, "a@x", "b@x/other", "https://client", &ver)
            .is_none());
        let id = ask.attr("id").expect("id").to_owned();
        let spoofed = Element::new(ns::CLIENT, "iq")
            .with_attr("type", "result")
            .with_attr("id", id.clone())
            .with_attr("from", "c@x/r")
            .with_child(query.clone());
        assert!(i.answer(&spoofed).is_none());
        let reply = Element::new(ns::CLIENT, "iq")
            .with_attr("type", "result")
            .with_attr("id", id)
            .with_attr("from", "b@x/r")
            .with_child(query);
        let (_, waiting) = i.answer(&reply).expect("ours");
        assert_eq!(waiting.len(), 2, "both resources wait for it");
        assert!(i
            .wants(&ver)
            .is_some_and(|n| n.contains("http://jabber.org/protocol/tune")));
        assert_eq!(
            notify_nodes(&Element::new(ns::DISCO_INFO, "query"), &ver),
            None
        );
    }
}
