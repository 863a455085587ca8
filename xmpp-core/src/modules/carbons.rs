//! XEP-0280 Message Carbons: which messages are copied, the copy's shape,
//! and the module that keeps each session's choice and makes the copies.

use super::{Addressed, Context, Flow, Module, ModuleId};
use crate::archive::ArchiveId;
use crate::hub::ConnId;
use crate::stanza::iq_result;
use crate::xml::{Element, Node};

/// XEP-0280 namespace.
pub const NS: &str = "urn:xmpp:carbons:2";
/// XEP-0297 forwarding namespace.
const FORWARD: &str = "urn:xmpp:forward:0";
use super::hints::NS as HINTS;

/// `<enable/>` (true) or `<disable/>` (false), if the iq is a carbons toggle.
pub fn toggle(iq: &Element) -> Option<bool> {
    if iq.attr("type") != Some("set") {
        return None;
    }
    let child = iq.first_element()?;
    if child.is(NS, "enable") {
        Some(true)
    } else if child.is(NS, "disable") {
        Some(false)
    } else {
        None
    }
}

/// XEP-0280 §6: chat messages, and normal messages with a body, are copied;
/// unless marked private or no-copy, or already a carbon (no loops).
pub fn eligible(msg: &Element) -> bool {
    if msg.name != "message" {
        return false;
    }
    let kind = msg.attr("type").unwrap_or("normal");
    let interesting = match kind {
        "chat" => true,
        "normal" => msg.child(crate::ns::CLIENT, "body").is_some(),
        _ => false,
    };
    interesting
        && msg.child(NS, "private").is_none()
        && msg.child(HINTS, "no-copy").is_none()
        && msg.child(NS, "received").is_none()
        && msg.child(NS, "sent").is_none()
}

/// Remove `<private/>`: XEP-0280 §7 asks the sending server to strip it.
pub fn strip_private(msg: &mut Element) {
    msg.remove_children(NS, "private");
}

/// The copy for another resource: `<message from=bare to=resource>` wrapping
/// the original in `<sent/>` or `<received/>` and `<forwarded/>`.
pub fn wrap(original: &Element, sent: bool, bare: &str, to: &str) -> Element {
    let forwarded = Element {
        ns: FORWARD.into(),
        name: "forwarded".to_owned(),
        attrs: Vec::new(),
        children: vec![Node::Element(original.clone())],
    };
    let wrapper = Element::new(NS, if sent { "sent" } else { "received" }).with_child(forwarded);
    let mut m = Element::new(crate::ns::CLIENT, "message")
        .with_attr("from", bare)
        .with_attr("to", to)
        .with_child(wrapper);
    if let Some(t) = original.attr("type") {
        m.set_attr("type", t);
    }
    m
}

/// Its identity.
pub const ID: ModuleId = ModuleId::new("carbons");

/// XEP-0280 for the hub: sessions switch carbons on and off, and get
/// copies of what the account's other sessions send and receive.
#[derive(Debug, Clone, Default)]
pub struct Carbons {
    /// What [`Module::sending`] saw of the message in flight, for
    /// [`Module::sent`]: it was eligible (no `<private/>` before that was
    /// stripped) and another session wants a copy.
    copy_next: bool,
}

/// Kept on a session: whether it enabled carbons.
#[derive(Debug, Clone, Default)]
struct Enabled(bool);

/// Whether a session of the account other than `skip` has carbons on:
/// asked for every message sent, so it allocates nothing.
fn wants_copies(cx: &Context<'_>, account: &str, skip: &[ConnId]) -> bool {
    cx.account(account).is_some_and(|a| {
        a.sessions
            .values()
            .any(|s| s.ext.get::<Enabled>().is_some_and(|e| e.0) && !skip.contains(&s.conn))
    })
}

/// The account's sessions with carbons on, except `skip`: (connection,
/// full JID).
fn targets(cx: &Context<'_>, account: &str, skip: &[ConnId]) -> Vec<(ConnId, String)> {
    cx.account(account)
        .map(|a| {
            a.sessions
                .values()
                .filter(|s| s.ext.get::<Enabled>().is_some_and(|e| e.0))
                .filter(|s| !skip.contains(&s.conn))
                .map(|s| (s.conn, s.jid.to_string()))
                .collect()
        })
        .unwrap_or_default()
}

/// Copy `msg` (sent by, or delivered to, `account`) to `targets`.
fn copy(
    cx: &mut Context<'_>,
    account: &str,
    msg: &Element,
    sent: bool,
    targets: Vec<(ConnId, String)>,
) {
    for (conn, jid) in targets {
        cx.deliver(conn, wrap(msg, sent, account, &jid));
    }
}

impl Module for Carbons {
    fn id(&self) -> ModuleId {
        ID
    }

    fn server_features(&self) -> &'static [&'static str] {
        &[NS]
    }

    fn iq(&mut self, cx: &mut Context<'_>, to: Addressed<'_>, iq: &Element) -> Flow {
        let (Addressed::Session { account, conn }, Some(on)) = (to, toggle(iq)) else {
            return Flow::Pass;
        };
        if let Some(enabled) = cx.session_state::<Enabled>(account, conn) {
            enabled.0 = on;
        }
        let mut r = iq_result(iq);
        r.remove_attr("from");
        cx.deliver(conn, r);
        Flow::Handled
    }

    fn sending(
        &mut self,
        cx: &mut Context<'_>,
        account: &str,
        conn: ConnId,
        message: &mut super::Outgoing<'_>,
    ) {
        // The copy is only made (a clone of the message) when someone wants it.
        self.copy_next = eligible(message.stanza) && wants_copies(cx, account, &[conn]);
        strip_private(message.stanza);
    }

    fn sent(
        &mut self,
        cx: &mut Context<'_>,
        account: &str,
        conn: ConnId,
        message: &Element,
        archive_id: Option<ArchiveId>,
    ) {
        if !std::mem::take(&mut self.copy_next) {
            return;
        }
        // The account's other devices may see the archive id (XEP-0313
        // §3.4); the recipient may not.
        let mut carbon = message.clone();
        if let Some(id) = archive_id {
            super::mam::policy::add_stanza_id(&mut carbon, id, account);
        }
        let to = targets(cx, account, &[conn]);
        copy(cx, account, &carbon, true, to);
    }

    fn delivering(&mut self, cx: &mut Context<'_>, account: &str, stanza: &Element, to: &[ConnId]) {
        if eligible(stanza) {
            let others = targets(cx, account, to);
            copy(cx, account, stanza, false, others);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn el(x: &str) -> Element {
        Element::parse(x.as_bytes()).expect("test XML")
    }

    #[test]
    fn eligibility_follows_the_xep() {
        assert!(eligible(&el(
            "<message xmlns='jabber:client' type='chat'/>"
        )));
        assert!(eligible(&el(
            "<message xmlns='jabber:client'><body>x</body></message>"
        )));
        assert!(!eligible(&el("<message xmlns='jabber:client'/>")));
        assert!(!eligible(&el(
            "<message xmlns='jabber:client' type='groupchat'><body>x</body></message>"
        )));
        assert!(!eligible(&el("<message xmlns='jabber:client' type='chat'><private xmlns='urn:xmpp:carbons:2'/></message>")));
        assert!(!eligible(&el("<message xmlns='jabber:client' type='chat'><no-copy xmlns='urn:xmpp:hints'/></message>")));
        assert!(!eligible(&el("<message xmlns='jabber:client' type='chat'><sent xmlns='urn:xmpp:carbons:2'/></message>")));
    }
}
