//! XEP-0163 §4.2 filtered notifications: a contact's client says which
//! nodes it wants with `<node>+notify` features, learned by XEP-0115 caps.
//! A verification string seen for the first time is asked for once
//! (disco#info to the resource that advertised it, from the owner's bare
//! JID), its answer checked against the hash and cached per partition.

use crate::modules::caps;
use crate::ns;
use crate::xml::Element;
use std::collections::{BTreeSet, HashMap, VecDeque};
use std::sync::Arc;

/// Most verification strings remembered per partition.
const CACHE_MAX: usize = 4096;
/// Most disco#info queries awaiting an answer per partition.
const ASKING_MAX: usize = 1024;
/// Most `+notify` features kept per verification string.
const NOTIFY_MAX: usize = 256;
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

/// The verification strings this partition knows, and the queries out.
#[derive(Debug, Clone, Default)]
pub struct Interests {
    known: HashMap<String, Arc<BTreeSet<String>>>,
    order: VecDeque<String>,
    /// Query id → (the resource asked, its verification string).
    asking: HashMap<String, (String, String)>,
    serial: u64,
}

impl Interests {
    /// The nodes clients advertising `ver` want, if known.
    pub fn wants(&self, ver: &str) -> Option<&BTreeSet<String>> {
        self.known.get(ver).map(|n| n.as_ref())
    }

    /// The disco#info query to send to `full` for `ver`, unless `ver`
    /// is known or asked for already (or too many queries are out).
    pub fn ask(&mut self, account: &str, full: &str, node: &str, ver: &str) -> Option<Element> {
        if self.known.contains_key(ver)
            || self.asking.len() >= ASKING_MAX
            || self.asking.values().any(|(_, v)| v == ver)
        {
            return None;
        }
        self.serial = self.serial.wrapping_add(1);
        let id = format!("{ID_PREFIX}{}", self.serial);
        self.asking
            .insert(id.clone(), (full.to_owned(), ver.to_owned()));
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
    /// from the resource asked), learn from it. `false` when not ours.
    pub fn answer(&mut self, iq: &Element) -> bool {
        let Some(id) = iq.attr("id").filter(|id| id.starts_with(ID_PREFIX)) else {
            return false;
        };
        let ours = self
            .asking
            .get(id)
            .is_some_and(|(full, _)| iq.attr("from") == Some(full.as_str()));
        if !ours {
            return false;
        }
        let Some((_, ver)) = self.asking.remove(id) else {
            return false;
        };
        let learned = match iq.attr("type") {
            Some("result") => iq.first_element().and_then(|q| notify_nodes(q, &ver)),
            _ => None,
        };
        match learned {
            Some(nodes) => self.learn(ver, nodes),
            None => tracing::debug!(ver, "caps answer refused or not matching its hash"),
        }
        true
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
            .ask("a@x", "b@x/r", "https://client", &ver)
            .expect("asks once");
        assert!(i.ask("a@x", "b@x/other", "https://client", &ver).is_none());
        let id = ask.attr("id").expect("id").to_owned();
        let spoofed = Element::new(ns::CLIENT, "iq")
            .with_attr("type", "result")
            .with_attr("id", id.clone())
            .with_attr("from", "c@x/r")
            .with_child(query.clone());
        assert!(!i.answer(&spoofed));
        let reply = Element::new(ns::CLIENT, "iq")
            .with_attr("type", "result")
            .with_attr("id", id)
            .with_attr("from", "b@x/r")
            .with_child(query);
        assert!(i.answer(&reply));
        assert!(i
            .wants(&ver)
            .is_some_and(|n| n.contains("http://jabber.org/protocol/tune")));
        assert_eq!(
            notify_nodes(&Element::new(ns::DISCO_INFO, "query"), &ver),
            None
        );
    }
}
