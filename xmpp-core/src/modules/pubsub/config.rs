//! A service node's configuration (XEP-0060 §8.2, §16.4.3): the fields
//! the service supports, read from submitted `jabber:x:data` forms (the
//! shared form layer, [`crate::modules::xep0060::form`]) and written to
//! the configuration form, the meta-data form and the stored document.

use crate::modules::xep0060::form::{
    self, field, field_values, flag, form_start, Fields, META_DATA, NODE_CONFIG,
};
use crate::stanza::StanzaError;
use crate::xml::Element;

/// Longest node title, in bytes.
pub const TITLE_BYTES_MAX: usize = 1024;

/// Who may subscribe and retrieve items (§4.5). `presence` and `roster`
/// are PEP's: a service has no roster of its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Anyone not outcast.
    Open,
    /// Subscriptions wait for an owner's approval; items go to
    /// subscribers and affiliated entities.
    Authorize,
    /// Only affiliated entities (members, publishers, owners).
    Whitelist,
}

impl Access {
    /// The `pubsub#access_model` value.
    pub fn name(self) -> &'static str {
        match self {
            Access::Open => "open",
            Access::Authorize => "authorize",
            Access::Whitelist => "whitelist",
        }
    }

    /// From a `pubsub#access_model` value.
    pub fn parse(name: &str) -> Option<Self> {
        Some(match name {
            "open" => Access::Open,
            "authorize" => Access::Authorize,
            "whitelist" => Access::Whitelist,
            _ => return None,
        })
    }
}

/// Who may publish (`pubsub#publish_model`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PublishModel {
    /// Owners, publishers and publish-only entities.
    Publishers,
    /// Those and the subscribers.
    Subscribers,
    /// Anyone not outcast.
    Open,
}

impl PublishModel {
    fn name(self) -> &'static str {
        match self {
            PublishModel::Publishers => "publishers",
            PublishModel::Subscribers => "subscribers",
            PublishModel::Open => "open",
        }
    }

    fn parse(name: &str) -> Option<Self> {
        Some(match name {
            "publishers" => PublishModel::Publishers,
            "subscribers" => PublishModel::Subscribers,
            "open" => PublishModel::Open,
            _ => return None,
        })
    }
}

/// A node's configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeConfig {
    /// `pubsub#title`.
    pub title: String,
    /// `pubsub#access_model`.
    pub access: Access,
    /// `pubsub#publish_model`.
    pub publish: PublishModel,
    /// `pubsub#max_items`: items kept, at most the service's cap.
    pub max_items: usize,
    /// `pubsub#persist_items`: items stored (false: kept in memory only).
    pub persist_items: bool,
    /// `pubsub#deliver_payloads`: notifications carry the payload.
    pub deliver_payloads: bool,
    /// `pubsub#deliver_notifications`: subscribers are notified at all.
    pub deliver_notifications: bool,
    /// `pubsub#notify_retract`.
    pub notify_retract: bool,
    /// `pubsub#notify_delete` (node deletion and purge).
    pub notify_delete: bool,
    /// `pubsub#notify_config`.
    pub notify_config: bool,
    /// `pubsub#send_last_published_item`: `on_sub` (and
    /// `on_sub_and_presence`, treated as `on_sub`) or `never`.
    pub send_last_on_sub: bool,
    /// `pubsub#notification_type`: `headline` (true) or `normal`.
    pub headline: bool,
}

impl NodeConfig {
    /// A new node's configuration, with the service's defaults.
    pub fn new(access: Access, max_items: usize) -> Self {
        NodeConfig {
            title: String::new(),
            access,
            publish: PublishModel::Publishers,
            max_items,
            persist_items: true,
            deliver_payloads: true,
            deliver_notifications: true,
            notify_retract: true,
            notify_delete: true,
            notify_config: false,
            send_last_on_sub: false,
            headline: true,
        }
    }
}

fn single(values: &[String]) -> Result<&str, StanzaError> {
    match values {
        [v] => Ok(v.as_str()),
        [] => Ok(""),
        _ => Err(StanzaError::NotAcceptable),
    }
}

fn boolean(values: &[String]) -> Result<bool, StanzaError> {
    form::boolean(single(values)?)
}

/// Fields clients send that change nothing here: accepted and ignored.
const IGNORED: &[&str] = &[
    "pubsub#type",
    "pubsub#description",
    "pubsub#presence_based_delivery",
    "pubsub#notify_sub",
    "pubsub#purge_offline",
    "pubsub#subscribe",
    "pubsub#itemreply",
    "pubsub#max_payload_size",
];

impl NodeConfig {
    /// Apply submitted fields, `max_items` capped at `cap`; an unknown
    /// field or a value out of range is `not-acceptable` and leaves the
    /// configuration unchanged.
    pub fn apply(&mut self, fields: &Fields, cap: usize) -> Result<(), StanzaError> {
        let mut next = self.clone();
        for (var, values) in fields {
            match var.as_str() {
                "pubsub#title" => {
                    let t = single(values)?;
                    if t.len() > TITLE_BYTES_MAX {
                        return Err(StanzaError::NotAcceptable);
                    }
                    next.title = t.to_owned();
                }
                "pubsub#access_model" => {
                    next.access =
                        Access::parse(single(values)?).ok_or(StanzaError::NotAcceptable)?
                }
                "pubsub#publish_model" => {
                    next.publish =
                        PublishModel::parse(single(values)?).ok_or(StanzaError::NotAcceptable)?
                }
                "pubsub#max_items" => {
                    next.max_items = match single(values)? {
                        "max" => cap,
                        n => match n.trim().parse::<usize>() {
                            Ok(n) if (1..=cap).contains(&n) => n,
                            _ => return Err(StanzaError::NotAcceptable),
                        },
                    }
                }
                "pubsub#persist_items" => next.persist_items = boolean(values)?,
                "pubsub#deliver_payloads" => next.deliver_payloads = boolean(values)?,
                "pubsub#deliver_notifications" => next.deliver_notifications = boolean(values)?,
                "pubsub#notify_retract" => next.notify_retract = boolean(values)?,
                "pubsub#notify_delete" => next.notify_delete = boolean(values)?,
                "pubsub#notify_config" => next.notify_config = boolean(values)?,
                "pubsub#send_last_published_item" => {
                    next.send_last_on_sub = match single(values)? {
                        "never" => false,
                        "on_sub" | "on_sub_and_presence" => true,
                        _ => return Err(StanzaError::NotAcceptable),
                    }
                }
                "pubsub#notification_type" => {
                    next.headline = match single(values)? {
                        "headline" => true,
                        "normal" => false,
                        _ => return Err(StanzaError::NotAcceptable),
                    }
                }
                "pubsub#node_type" if single(values)? == "leaf" => {}
                v if IGNORED.contains(&v) => {}
                _ => return Err(StanzaError::NotAcceptable),
            }
        }
        *self = next;
        Ok(())
    }

    /// XEP-0060 §7.1.5: whether the configuration meets every
    /// precondition (a field it does not know never does).
    pub fn meets(&self, fields: &Fields, cap: usize) -> bool {
        let mut wanted = self.clone();
        wanted.apply(fields, cap).is_ok() && wanted == *self
    }

    fn fields(&self) -> Vec<(&'static str, &'static str, String)> {
        vec![
            ("pubsub#title", "text-single", self.title.clone()),
            (
                "pubsub#access_model",
                "list-single",
                self.access.name().into(),
            ),
            (
                "pubsub#publish_model",
                "list-single",
                self.publish.name().into(),
            ),
            (
                "pubsub#max_items",
                "text-single",
                self.max_items.to_string(),
            ),
            (
                "pubsub#persist_items",
                "boolean",
                flag(self.persist_items).into(),
            ),
            (
                "pubsub#deliver_payloads",
                "boolean",
                flag(self.deliver_payloads).into(),
            ),
            (
                "pubsub#deliver_notifications",
                "boolean",
                flag(self.deliver_notifications).into(),
            ),
            (
                "pubsub#notify_retract",
                "boolean",
                flag(self.notify_retract).into(),
            ),
            (
                "pubsub#notify_delete",
                "boolean",
                flag(self.notify_delete).into(),
            ),
            (
                "pubsub#notify_config",
                "boolean",
                flag(self.notify_config).into(),
            ),
            (
                "pubsub#send_last_published_item",
                "list-single",
                if self.send_last_on_sub {
                    "on_sub"
                } else {
                    "never"
                }
                .into(),
            ),
            (
                "pubsub#notification_type",
                "list-single",
                if self.headline { "headline" } else { "normal" }.into(),
            ),
            ("pubsub#node_type", "list-single", "leaf".into()),
        ]
    }

    /// The configuration form (§8.2.1).
    pub fn form(&self) -> Element {
        self.fields()
            .into_iter()
            .fold(form_start("form", NODE_CONFIG), |x, (var, kind, value)| {
                x.with_child(field(var, kind, &value))
            })
    }

    /// The node's meta-data (§5.4), with its owners.
    pub fn meta_data(&self, owners: &[String]) -> Element {
        let owner = field_values("pubsub#owner", Some("jid-multi"), owners.iter().cloned());
        form_start("result", META_DATA)
            .with_child(field("pubsub#title", "text-single", &self.title))
            .with_child(field("pubsub#type", "text-single", ""))
            .with_child(field(
                "pubsub#access_model",
                "list-single",
                self.access.name(),
            ))
            .with_child(field(
                "pubsub#publish_model",
                "list-single",
                self.publish.name(),
            ))
            .with_child(owner)
    }

    /// The configuration as stored: every field as an attribute.
    pub fn to_element(&self, ns: &'static str) -> Element {
        self.fields()
            .into_iter()
            .fold(Element::new(ns, "config"), |e, (var, _, value)| {
                e.with_attr(var.trim_start_matches("pubsub#"), value)
            })
    }

    /// A stored configuration; `None` when unreadable.
    pub fn from_element(e: &Element, cap: usize) -> Option<Self> {
        let mut c = NodeConfig::new(Access::Open, 1);
        let fields: Fields = e
            .attrs
            .iter()
            .filter(|a| a.name != "node_type")
            .map(|a| (format!("pubsub#{}", a.name), vec![a.value.clone()]))
            .collect();
        // Stored before the cap was lowered: keep what fits.
        let fields: Fields = fields
            .into_iter()
            .map(
                |(k, v)| match (k.as_str(), v.first().map(|n| n.parse::<usize>())) {
                    ("pubsub#max_items", Some(Ok(n))) if n > cap => (k, vec![cap.to_string()]),
                    _ => (k, v),
                },
            )
            .collect();
        c.apply(&fields, cap).ok()?;
        Some(c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::modules::xep0060::form::single_values as fields;

    #[test]
    fn fields_apply_within_the_cap_and_round_trip() {
        let mut c = NodeConfig::new(Access::Open, 10);
        c.apply(
            &fields(&[
                ("pubsub#access_model", "authorize"),
                ("pubsub#max_items", "max"),
                ("pubsub#title", "News"),
                ("pubsub#send_last_published_item", "on_sub_and_presence"),
                ("pubsub#notification_type", "normal"),
            ]),
            50,
        )
        .expect("valid");
        assert_eq!(c.max_items, 50);
        assert!(c.send_last_on_sub && !c.headline);
        assert_eq!(
            c.apply(&fields(&[("pubsub#max_items", "51")]), 50),
            Err(StanzaError::NotAcceptable)
        );
        assert_eq!(
            c.apply(&fields(&[("pubsub#access_model", "presence")]), 50),
            Err(StanzaError::NotAcceptable)
        );
        assert!(c.meets(&fields(&[("pubsub#access_model", "authorize")]), 50));
        assert!(!c.meets(&fields(&[("pubsub#access_model", "open")]), 50));
        let stored = c.to_element("urn:test");
        assert_eq!(NodeConfig::from_element(&stored, 50), Some(c.clone()));
        // A lowered cap trims what was stored.
        assert_eq!(
            NodeConfig::from_element(&stored, 20).map(|c| c.max_items),
            Some(20)
        );
    }
}
