//! XEP-0191 Blocking Command: the blocklist commands, and keeping blocked
//! JIDs' stanzas away from the user and the user's away from them.
//!
//! The list is an account document ([`BLOCKLIST_KEY`]) loaded with the
//! account, since every stanza to or from the account is checked against
//! it; it lives in the account's module state ([`Blocklist`]) while the
//! account is in memory.

use super::{Context, Flow, Module, ModuleId};
use crate::hub::ConnId;
use crate::jid::Jid;
use crate::stanza::{error_reply, iq_result, is_error_or_result, StanzaError};
use crate::storage::{Documents, StorageRequest};
use crate::xml::Element;
use std::collections::BTreeSet;

/// XEP-0191 namespace.
pub const NS: &str = "urn:xmpp:blocking";
/// Application error namespace for stanzas to a blocked JID.
const ERRORS: &str = "urn:xmpp:blocking:errors";

/// Its identity.
pub const ID: ModuleId = ModuleId::new("blocking");

/// Storage key of the blocklist: one JID per line.
pub const BLOCKLIST_KEY: &str = "blocklist";

/// The blocklist document for a set of JIDs.
pub fn blocklist_document<'a>(jids: impl IntoIterator<Item = &'a String>) -> String {
    jids.into_iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .join("\n")
}

/// The JIDs of a stored blocklist document.
pub fn parse_blocklist(doc: &str) -> Vec<String> {
    doc.lines()
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect()
}

/// An account's blocked JIDs, while it is loaded.
#[derive(Debug, Clone, Default)]
struct Blocklist(BTreeSet<String>);

/// A session asked for the blocklist, so it gets block/unblock pushes.
#[derive(Debug, Clone, Default)]
struct Interested;

/// XEP-0191: the blocklist, its commands and the filters it sets.
#[derive(Debug, Clone, Default)]
pub struct Blocking;

impl Module for Blocking {
    fn id(&self) -> ModuleId {
        ID
    }

    /// A filter: blocked stanzas are dropped before anything (archiving,
    /// carbons, offline storage) acts on them.
    fn priority(&self) -> i32 {
        100
    }

    fn server_features(&self) -> &'static [&'static str] {
        &[NS]
    }

    fn account_documents(&self) -> &'static [&'static str] {
        &[BLOCKLIST_KEY]
    }

    fn account_loaded(&mut self, cx: &mut Context<'_>, account: &str, documents: &Documents) {
        if let Some(doc) = documents.get(BLOCKLIST_KEY) {
            let jids = parse_blocklist(doc);
            if !jids.is_empty() {
                if let Some(list) = cx.account_state::<Blocklist>(account) {
                    list.0.extend(jids);
                }
            }
        }
    }

    fn outbound(
        &mut self,
        cx: &mut Context<'_>,
        account: &str,
        conn: ConnId,
        stanza: &Element,
    ) -> Flow {
        let to = stanza.attr("to").and_then(|t| Jid::parse(t).ok());
        let to_self = to.as_ref().is_none_or(|t| t.bare_str() == account);
        if stanza.name == "iq" && to_self {
            if let Some(req) = BlockingRequest::parse(stanza) {
                match req {
                    Ok(req) => command(cx, account, conn, stanza, req),
                    Err(e) => cx.bounce(stanza, e),
                }
                return Flow::Handled;
            }
        }
        // The user addressed a JID they blocked: answered with
        // not-acceptable + <blocked/> (§3.5), straight to the session
        // (routed, the error would itself be dropped as coming from the
        // blocked JID).
        let Some(to) = to else {
            return Flow::Pass;
        };
        if !blocks(cx, account, &to) {
            return Flow::Pass;
        }
        if !is_error_or_result(stanza) && stanza.name != "presence" {
            cx.deliver(conn, blocked_error(stanza, to.domain()));
        }
        Flow::Handled
    }

    /// A blocked sender's stanza is dropped, or answered service-unavailable
    /// for iq requests and messages (§3.5).
    fn inbound(&mut self, cx: &mut Context<'_>, account: &str, stanza: &Element) -> Flow {
        let Some(from) = stanza.attr("from").and_then(|f| Jid::parse(f).ok()) else {
            return Flow::Pass;
        };
        if !blocks(cx, account, &from) {
            return Flow::Pass;
        }
        if stanza.name != "presence" {
            cx.bounce(stanza, StanzaError::ServiceUnavailable);
        }
        Flow::Handled
    }

    /// Blocked contacts get no presence (§3.3), nor what modules send on
    /// the account's behalf (PEP notifications).
    fn broadcasting(
        &mut self,
        cx: &mut Context<'_>,
        account: &str,
        contact: &str,
        _presence: &Element,
    ) -> Flow {
        // XEP-0016 matching: a blocked domain blocks its users too.
        let blocked = Jid::parse(contact).is_ok_and(|who| blocks(cx, account, &who));
        if blocked {
            Flow::Handled
        } else {
            Flow::Pass
        }
    }
}

/// Whether `account` blocked `who`.
fn blocks(cx: &Context<'_>, account: &str, who: &Jid) -> bool {
    cx.account_state_ref::<Blocklist>(account)
        .is_some_and(|l| !l.0.is_empty() && matches(&l.0, who))
}

/// A blocking command from one of the account's sessions.
fn command(cx: &mut Context<'_>, account: &str, conn: ConnId, iq: &Element, req: BlockingRequest) {
    let (block, items) = match req {
        BlockingRequest::List => {
            cx.session_state::<Interested>(account, conn);
            let empty = BTreeSet::new();
            let list = cx
                .account_state_ref::<Blocklist>(account)
                .map_or(&empty, |l| &l.0);
            let reply = list_reply(iq, list);
            return cx.deliver(conn, reply);
        }
        BlockingRequest::Block(items) => (true, items),
        BlockingRequest::Unblock(items) => (false, items),
    };
    let Some(list) = cx.account_state::<Blocklist>(account) else {
        return;
    };
    let changed: Vec<String> = if block {
        items
            .into_iter()
            .filter(|j| list.0.insert(j.clone()))
            .collect()
    } else if items.is_empty() {
        std::mem::take(&mut list.0).into_iter().collect()
    } else {
        items.into_iter().filter(|j| list.0.remove(j)).collect()
    };
    let document = blocklist_document(list.0.iter());
    cx.commit(StorageRequest::StoreBlob {
        account: account.to_owned(),
        key: BLOCKLIST_KEY.to_owned(),
        value: (!document.is_empty()).then_some(document),
        limit: None,
    });
    let mut r = iq_result(iq);
    r.remove_attr("from");
    cx.deliver(conn, r);
    if changed.is_empty() {
        return;
    }
    let Some(acc) = cx.account(account) else {
        return;
    };
    let pushes: Vec<(ConnId, String)> = acc
        .sessions
        .values()
        .filter(|s| s.ext.has::<Interested>())
        .map(|s| (s.conn, s.jid.to_string()))
        .collect();
    // Presence follows the list: the newly blocked stop seeing us, the
    // unblocked see us again (§3.3, §3.4).
    let presences: Vec<Element> = acc.available().filter_map(|s| s.presence()).collect();
    let subscribers: Vec<String> = changed
        .iter()
        .filter(|j| acc.roster.get(*j).is_some_and(|i| i.subscription.from))
        .cloned()
        .collect();
    for (n, (c, jid)) in pushes.into_iter().enumerate() {
        cx.deliver(c, push(block, &changed, &jid, &format!("block-push-{n}")));
    }
    for contact in subscribers {
        for p in &presences {
            let mut p = p.clone();
            p.set_attr("to", &contact);
            if block {
                p = Element::new(crate::ns::CLIENT, "presence")
                    .with_attr("type", "unavailable")
                    .with_attr("from", p.attr("from").unwrap_or(account))
                    .with_attr("to", &contact);
            }
            cx.route(p);
        }
    }
}

/// A blocking command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BlockingRequest {
    /// `<blocklist/>`: the current list.
    List,
    /// `<block>` with at least one item.
    Block(Vec<String>),
    /// `<unblock>`: these items, or everything when empty.
    Unblock(Vec<String>),
}

impl BlockingRequest {
    /// Parse an iq's payload; `None` when it is not a blocking command.
    pub fn parse(iq: &Element) -> Option<Result<Self, StanzaError>> {
        let child = iq.first_element()?;
        if child.ns != NS {
            return None;
        }
        let set = iq.attr("type") == Some("set");
        let items = || -> Result<Vec<String>, StanzaError> {
            child
                .elements()
                .filter(|e| e.is(NS, "item"))
                .map(|e| {
                    e.attr("jid")
                        .and_then(|j| Jid::parse(j).ok())
                        .map(|j| j.to_string())
                        .ok_or(StanzaError::JidMalformed)
                })
                .collect()
        };
        Some(match (child.name.as_str(), set) {
            ("blocklist", false) => Ok(BlockingRequest::List),
            ("block", true) => match items() {
                Ok(v) if v.is_empty() => Err(StanzaError::BadRequest),
                Ok(v) => Ok(BlockingRequest::Block(v)),
                Err(e) => Err(e),
            },
            ("unblock", true) => items().map(BlockingRequest::Unblock),
            _ => Err(StanzaError::BadRequest),
        })
    }
}

/// XEP-0016 §2.1 matching, as XEP-0191 uses it: an item blocks its full
/// JID, a bare JID blocks all its resources, a domain blocks everyone there.
pub fn matches<'a>(blocked: impl IntoIterator<Item = &'a String>, who: &Jid) -> bool {
    let full = who.to_string();
    let bare = who.bare_str();
    let domain = who.domain();
    blocked
        .into_iter()
        .any(|b| *b == full || *b == bare || b == domain)
}

/// The result to `<blocklist/>`.
pub fn list_reply<'a>(iq: &Element, blocked: impl IntoIterator<Item = &'a String>) -> Element {
    let mut list = Element::new(NS, "blocklist");
    for j in blocked {
        list = list.with_child(Element::new(NS, "item").with_attr("jid", j.clone()));
    }
    let mut r = iq_result(iq);
    r.remove_attr("from");
    r.with_child(list)
}

/// The push announcing a change to every resource that asked for the list.
pub fn push(block: bool, items: &[String], to: &str, id: &str) -> Element {
    let mut cmd = Element::new(NS, if block { "block" } else { "unblock" });
    for j in items {
        cmd = cmd.with_child(Element::new(NS, "item").with_attr("jid", j.clone()));
    }
    Element::new(crate::ns::CLIENT, "iq")
        .with_attr("type", "set")
        .with_attr("id", id)
        .with_attr("to", to)
        .with_child(cmd)
}

/// The error for a stanza the user sent to a JID they blocked (§3.5).
pub fn blocked_error(stanza: &Element, by: &str) -> Element {
    let mut e = error_reply(stanza, StanzaError::NotAcceptable, by);
    if let Some(err) = e.child_mut(crate::ns::CLIENT, "error") {
        err.set_attr("type", "cancel");
        err.children
            .push(crate::xml::Node::Element(Element::new(ERRORS, "blocked")));
    }
    e
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matching_follows_xep_0016() {
        let list = vec![
            "bad@x".to_owned(),
            "spam.example".to_owned(),
            "c@y/phone".to_owned(),
        ];
        let j = |s: &str| Jid::parse(s).expect("JID");
        assert!(matches(&list, &j("bad@x/any")));
        assert!(matches(&list, &j("whoever@spam.example/r")));
        assert!(matches(&list, &j("c@y/phone")));
        assert!(!matches(&list, &j("c@y/laptop")));
        assert!(!matches(&list, &j("good@x")));
    }
}
