//! XEP-0357 Push Notifications, the protocol side: the `<enable/>` and
//! `<disable/>` commands, the stored registrations, which stanzas warrant a
//! notification, and the PubSub publish that carries it to the app server.
//!
//! When to notify, and the app servers' replies, is the module
//! ([`notify::Push`]).

mod notify;

pub use notify::{Push, ID};

use crate::jid::Jid;
use crate::ns;
use crate::stanza::StanzaError;
use crate::xml::Element;

/// XEP-0357 namespace (commands, notification payload, account feature).
pub const NS: &str = "urn:xmpp:push:0";
/// FORM_TYPE of the notification summary.
pub const SUMMARY: &str = "urn:xmpp:push:summary";
/// XEP-0060 namespace of the publish.
pub const PUBSUB: &str = "http://jabber.org/protocol/pubsub";
/// FORM_TYPE of the publish options a client may hand over with `<enable/>`.
pub const PUBLISH_OPTIONS: &str = "http://jabber.org/protocol/pubsub#publish-options";
/// XEP-0004 data forms.
const DATA: &str = "jabber:x:data";
/// Namespace of the stored registration document (ours, never on the wire).
const STORE_NS: &str = "urn:vireo:push";
/// Prefix of the ids of our publishes, so their replies find their way back.
pub const ID_PREFIX: &str = "push-";
/// Largest publish-options form kept, serialized: it is stored with the
/// account and repeated in every notification.
const MAX_OPTIONS_BYTES: usize = 8 * 1024;

/// What notifications tell app servers, and how many an account may enable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushSettings {
    /// Include the last message's body. Off by default: the app server and
    /// the platform's push service would read every message (§9).
    pub with_body: bool,
    /// Include the last message's sender.
    pub with_sender: bool,
    /// Registrations kept per account; enabling one more drops the oldest.
    pub max_registrations: usize,
}

impl Default for PushSettings {
    fn default() -> Self {
        PushSettings {
            with_body: false,
            with_sender: false,
            max_registrations: 16,
        }
    }
}

/// One enabled app server node (XEP-0357 §5).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registration {
    /// The app server's JID, normalized.
    pub jid: String,
    /// The node provisioned by the app server.
    pub node: String,
    /// The publish-options form, repeated in every publish.
    pub options: Option<Element>,
}

/// A push command from the account's own session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PushRequest {
    /// §5: publish to this node from now on (replacing an enabled one with
    /// the same JID and node).
    Enable(Registration),
    /// §6: stop publishing to this JID (every node, or one).
    Disable { jid: String, node: Option<String> },
}

impl PushRequest {
    /// The push command an iq carries; `None` when it is not one, an error
    /// for a malformed one.
    pub fn parse(iq: &Element) -> Option<Result<PushRequest, StanzaError>> {
        let child = iq.first_element()?;
        if child.ns != NS || !matches!(child.name.as_str(), "enable" | "disable") {
            return None;
        }
        Some(Self::parse_command(iq, child))
    }

    fn parse_command(iq: &Element, child: &Element) -> Result<PushRequest, StanzaError> {
        if iq.attr("type") != Some("set") {
            return Err(StanzaError::BadRequest);
        }
        let jid = match child.attr("jid").map(Jid::parse) {
            Some(Ok(j)) => j.to_string(),
            Some(Err(_)) => return Err(StanzaError::JidMalformed),
            None => return Err(StanzaError::BadRequest),
        };
        let node = child
            .attr("node")
            .filter(|n| !n.is_empty())
            .map(str::to_owned);
        if child.name == "disable" {
            return Ok(PushRequest::Disable { jid, node });
        }
        // The schema requires the node: without one there is nothing to
        // publish to.
        let node = node.ok_or(StanzaError::BadRequest)?;
        let options = match child.child(DATA, "x") {
            None => None,
            Some(form) if form_type(form) != Some(PUBLISH_OPTIONS) => {
                return Err(StanzaError::BadRequest)
            }
            Some(form) if form.to_xml().len() > MAX_OPTIONS_BYTES => {
                return Err(StanzaError::PolicyViolation)
            }
            Some(form) => Some(form.clone()),
        };
        Ok(PushRequest::Enable(Registration { jid, node, options }))
    }
}

/// The value of a form's FORM_TYPE field.
fn form_type(form: &Element) -> Option<&str> {
    form.elements()
        .find(|f| f.is(DATA, "field") && f.attr("var") == Some("FORM_TYPE"))
        .and_then(|f| f.child(DATA, "value"))
        .and_then(|v| match v.children.first() {
            Some(crate::xml::Node::Text(t)) => Some(t.trim()),
            _ => None,
        })
}

/// An account's push state as stored: the registrations and how many
/// notifications went out since the account was last online.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PushState {
    /// Enabled registrations, oldest first.
    pub registrations: Vec<Registration>,
    /// Messages notified since the account last came online (the summary's
    /// message-count).
    pub pending: u64,
}

impl PushState {
    /// Read the stored document; an unreadable one is logged and dropped
    /// (the client enables again when it finds pushes missing).
    pub fn from_document(doc: &str) -> PushState {
        let root = match Element::parse(doc.as_bytes()) {
            Ok(r) if r.is(STORE_NS, "push") => r,
            Ok(_) | Err(_) => {
                tracing::error!("unreadable push registrations; ignored");
                return PushState::default();
            }
        };
        let registrations = root
            .elements()
            .filter(|e| e.is(NS, "enable"))
            .filter_map(|e| {
                Some(Registration {
                    jid: e.attr("jid")?.to_owned(),
                    node: e.attr("node")?.to_owned(),
                    options: e.child(DATA, "x").cloned(),
                })
            })
            .collect();
        let pending = root
            .attr("pending")
            .and_then(|p| p.parse().ok())
            .unwrap_or(0);
        PushState {
            registrations,
            pending,
        }
    }

    /// The document to store, `None` when there is nothing to keep.
    pub fn to_document(&self) -> Option<String> {
        if self.registrations.is_empty() {
            return None;
        }
        let mut root =
            Element::new(STORE_NS, "push").with_attr("pending", self.pending.to_string());
        for r in &self.registrations {
            let mut e = Element::new(NS, "enable")
                .with_attr("jid", r.jid.clone())
                .with_attr("node", r.node.clone());
            if let Some(o) = &r.options {
                e = e.with_child(o.clone());
            }
            root = root.with_child(e);
        }
        Some(root.to_xml())
    }

    /// Enable a registration, replacing one with the same JID and node
    /// (§5: the last request's publish options win); beyond `max`, the
    /// oldest registration goes (most likely a device long gone).
    pub fn enable(&mut self, reg: Registration, max: usize) {
        self.registrations
            .retain(|r| !(r.jid == reg.jid && r.node == reg.node));
        self.registrations.push(reg);
        while self.registrations.len() > max.max(1) {
            let gone = self.registrations.remove(0);
            tracing::debug!(jid = %gone.jid, "push registration evicted by a newer one");
        }
    }

    /// Disable every node of a JID, or one; true when something was removed.
    pub fn disable(&mut self, jid: &str, node: Option<&str>) -> bool {
        let before = self.registrations.len();
        self.registrations
            .retain(|r| !(r.jid == jid && node.is_none_or(|n| n == r.node)));
        self.registrations.len() != before
    }
}

/// Whether a message warrants a notification: something a person would want
/// to be told about — a body, an end-to-end encrypted payload (OMEMO,
/// OpenPGP for XMPP, legacy OpenPGP) or a call proposal (XEP-0353), not
/// chat states, receipts or markers.
pub fn notifiable(stanza: &Element) -> bool {
    const PAYLOADS: [(&str, &str); 4] = [
        ("eu.siacs.conversations.axolotl", "encrypted"),
        ("urn:xmpp:openpgp:0", "openpgp"),
        ("jabber:x:encrypted", "x"),
        ("urn:xmpp:jingle-message:0", "propose"),
    ];
    stanza.name == "message"
        && !matches!(stanza.attr("type"), Some("error") | Some("groupchat"))
        && (stanza.child(ns::CLIENT, "body").is_some()
            || PAYLOADS.iter().any(|(n, e)| stanza.child(n, e).is_some()))
}

/// What the summary form says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    /// Messages since the account was last online.
    pub message_count: u64,
    /// The last message's sender, when configured to tell.
    pub sender: Option<String>,
    /// The last message's body, when configured to tell.
    pub body: Option<String>,
}

fn field(var: &str, ty: &str, value: &str) -> Element {
    Element::new(DATA, "field")
        .with_attr("var", var)
        .with_attr("type", ty)
        .with_child(Element::new(DATA, "value").with_text(value))
}

/// The §7 publish to one registration: the notification with the summary
/// form, then the registration's publish options.
pub fn publish(reg: &Registration, from: &str, id: &str, summary: &Summary) -> Element {
    let mut form = Element::new(DATA, "x")
        .with_attr("type", "form")
        .with_child(field("FORM_TYPE", "hidden", SUMMARY))
        .with_child(field(
            "message-count",
            "text-single",
            &summary.message_count.to_string(),
        ));
    if let Some(s) = &summary.sender {
        form = form.with_child(field("last-message-sender", "jid-single", s));
    }
    if let Some(b) = &summary.body {
        form = form.with_child(field("last-message-body", "text-single", b));
    }
    let item =
        Element::new(PUBSUB, "item").with_child(Element::new(NS, "notification").with_child(form));
    let mut pubsub = Element::new(PUBSUB, "pubsub").with_child(
        Element::new(PUBSUB, "publish")
            .with_attr("node", reg.node.clone())
            .with_child(item),
    );
    if let Some(o) = &reg.options {
        pubsub = pubsub.with_child(Element::new(PUBSUB, "publish-options").with_child(o.clone()));
    }
    Element::new(ns::CLIENT, "iq")
        .with_attr("type", "set")
        .with_attr("from", from)
        .with_attr("to", reg.jid.clone())
        .with_attr("id", id)
        .with_child(pubsub)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn iq(xml: &str) -> Element {
        match Element::parse(xml.as_bytes()) {
            Ok(e) => e,
            Err(e) => panic!("{e}: {xml}"),
        }
    }

    #[test]
    fn enable_with_options_and_disable_parse() {
        let e = iq("<iq xmlns='jabber:client' type='set' id='x'><enable xmlns='urn:xmpp:push:0' jid='Push.Example' node='n1'>\
            <x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE'><value>http://jabber.org/protocol/pubsub#publish-options</value></field>\
            <field var='secret'><value>s</value></field></x></enable></iq>");
        let Some(Ok(PushRequest::Enable(reg))) = PushRequest::parse(&e) else {
            panic!("not an enable")
        };
        assert_eq!(reg.jid, "push.example");
        assert_eq!(reg.node, "n1");
        assert!(reg.options.is_some());
        let d = iq("<iq xmlns='jabber:client' type='set' id='x'><disable xmlns='urn:xmpp:push:0' jid='push.example'/></iq>");
        assert_eq!(
            PushRequest::parse(&d),
            Some(Ok(PushRequest::Disable {
                jid: "push.example".into(),
                node: None
            }))
        );
    }

    #[test]
    fn malformed_commands_are_refused_precisely() {
        let cases = [
            ("<enable xmlns='urn:xmpp:push:0' node='n'/>", "set", StanzaError::BadRequest),
            ("<enable xmlns='urn:xmpp:push:0' jid='a@@b' node='n'/>", "set", StanzaError::JidMalformed),
            ("<enable xmlns='urn:xmpp:push:0' jid='p.example'/>", "set", StanzaError::BadRequest),
            ("<enable xmlns='urn:xmpp:push:0' jid='p.example' node='n'/>", "get", StanzaError::BadRequest),
            (
                "<enable xmlns='urn:xmpp:push:0' jid='p.example' node='n'><x xmlns='jabber:x:data' type='submit'>\
                 <field var='FORM_TYPE'><value>urn:other</value></field></x></enable>",
                "set",
                StanzaError::BadRequest,
            ),
        ];
        for (child, ty, want) in cases {
            let e = iq(&format!(
                "<iq xmlns='jabber:client' type='{ty}' id='x'>{child}</iq>"
            ));
            assert_eq!(PushRequest::parse(&e), Some(Err(want)), "{child}");
        }
        let other = iq(
            "<iq xmlns='jabber:client' type='set' id='x'><query xmlns='jabber:iq:roster'/></iq>",
        );
        assert_eq!(PushRequest::parse(&other), None);
    }

    #[test]
    fn state_round_trips_replaces_and_bounds() {
        let reg = |jid: &str, node: &str| Registration {
            jid: jid.into(),
            node: node.into(),
            options: None,
        };
        let mut s = PushState::default();
        assert_eq!(s.to_document(), None);
        s.enable(reg("a.example", "1"), 2);
        s.enable(reg("a.example", "2"), 2);
        s.enable(reg("a.example", "1"), 2);
        assert_eq!(
            s.registrations,
            vec![reg("a.example", "2"), reg("a.example", "1")]
        );
        s.enable(reg("b.example", "1"), 2);
        assert_eq!(
            s.registrations,
            vec![reg("a.example", "1"), reg("b.example", "1")]
        );
        s.pending = 3;
        let doc = s.to_document().unwrap_or_default();
        assert_eq!(PushState::from_document(&doc), s);
        assert!(!s.disable("a.example", Some("9")));
        assert!(s.disable("a.example", None));
        assert_eq!(s.registrations, vec![reg("b.example", "1")]);
    }

    #[test]
    fn only_messages_for_a_person_notify() {
        let yes = [
            "<message xmlns='jabber:client' type='chat'><body>hi</body></message>",
            "<message xmlns='jabber:client'><encrypted xmlns='eu.siacs.conversations.axolotl'/></message>",
            "<message xmlns='jabber:client'><propose xmlns='urn:xmpp:jingle-message:0' id='c'/></message>",
        ];
        let no = [
            "<message xmlns='jabber:client' type='chat'><active xmlns='http://jabber.org/protocol/chatstates'/></message>",
            "<message xmlns='jabber:client' type='error'><body>x</body></message>",
            "<presence xmlns='jabber:client'/>",
        ];
        for m in yes {
            assert!(notifiable(&iq(m)), "{m}");
        }
        for m in no {
            assert!(!notifiable(&iq(m)), "{m}");
        }
    }
}
