//! Node configuration (XEP-0060 §8.2) and publish-options (XEP-0223,
//! XEP-0060 §7.1.5): the fields PEP supports, read from and written to
//! `jabber:x:data` forms.

use super::access::AccessModel;
use crate::modules::xep0060::form::{
    self, field_values, flag, form_start, Fields, META_DATA, NODE_CONFIG,
};
use crate::stanza::StanzaError;
use crate::xml::Element;

/// The most items a node keeps: `pubsub#max_items=max` means this, and
/// a bigger number is refused (every input has a budget).
pub const MAX_ITEMS_CAP: usize = 64;

/// How many items a node keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MaxItems {
    /// At most this many (1 ..= [`MAX_ITEMS_CAP`]).
    Count(usize),
    /// `max`: as many as the service allows ([`MAX_ITEMS_CAP`]).
    Max,
}

impl MaxItems {
    /// The number of items kept.
    pub fn limit(self) -> usize {
        match self {
            MaxItems::Count(n) => n,
            MaxItems::Max => MAX_ITEMS_CAP,
        }
    }

    fn parse(value: &str) -> Result<Self, StanzaError> {
        if value == "max" {
            return Ok(MaxItems::Max);
        }
        match value.trim().parse::<usize>() {
            Ok(n) if (1..=MAX_ITEMS_CAP).contains(&n) => Ok(MaxItems::Count(n)),
            _ => Err(StanzaError::NotAcceptable),
        }
    }

    fn value(self) -> String {
        match self {
            MaxItems::Count(n) => n.to_string(),
            MaxItems::Max => "max".to_owned(),
        }
    }
}

/// When the last item goes to someone without a new publish
/// (`pubsub#send_last_published_item`, XEP-0060 §12.20).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SendLast {
    /// Never (XEP-0402 bookmarks ask for it).
    Never,
    /// To a new subscriber (§6.1.7).
    OnSub,
    /// Also to a resource that comes online wanting it (XEP-0163 §4.3.2,
    /// PEP's default).
    OnSubAndPresence,
}

impl SendLast {
    fn name(self) -> &'static str {
        match self {
            SendLast::Never => "never",
            SendLast::OnSub => "on_sub",
            SendLast::OnSubAndPresence => "on_sub_and_presence",
        }
    }

    fn parse(value: &str) -> Result<Self, StanzaError> {
        Ok(match value {
            "never" => SendLast::Never,
            "on_sub" => SendLast::OnSub,
            "on_sub_and_presence" => SendLast::OnSubAndPresence,
            _ => return Err(StanzaError::NotAcceptable),
        })
    }
}

/// A node's configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeConfig {
    /// Who may retrieve items and is notified (XEP-0060 §4.5).
    pub access_model: AccessModel,
    /// The owner's roster groups allowed by the `roster` access model.
    pub roster_groups: Vec<String>,
    /// Whether items are stored. When not, they live only in memory while
    /// the account stays loaded (the last one is still sent and notified);
    /// the configuration is stored either way.
    pub persist_items: bool,
    /// How many items are kept.
    pub max_items: MaxItems,
    /// When the last item is sent without a publish.
    pub send_last: SendLast,
}

impl Default for NodeConfig {
    /// XEP-0163 §3: presence access, items persisted; one item, as most
    /// PEP nodes hold a single current value.
    fn default() -> Self {
        NodeConfig {
            access_model: AccessModel::Presence,
            roster_groups: Vec::new(),
            persist_items: true,
            max_items: MaxItems::Count(1),
            send_last: SendLast::OnSubAndPresence,
        }
    }
}

fn single(values: &[String]) -> Result<&str, StanzaError> {
    match values {
        [v] => Ok(v.as_str()),
        _ => Err(StanzaError::NotAcceptable),
    }
}

fn boolean(values: &[String]) -> Result<bool, StanzaError> {
    form::boolean(single(values)?)
}

/// Most roster groups a `roster` node names.
const MAX_GROUPS: usize = 32;

impl NodeConfig {
    /// Apply submitted fields; an unknown field or a value out of range is
    /// `not-acceptable` and leaves the configuration unchanged.
    pub fn apply(&mut self, fields: &Fields) -> Result<(), StanzaError> {
        let mut next = self.clone();
        for (var, values) in fields {
            match var.as_str() {
                "pubsub#access_model" => {
                    next.access_model =
                        AccessModel::parse(single(values)?).ok_or(StanzaError::NotAcceptable)?;
                }
                "pubsub#roster_groups_allowed" => {
                    if values.len() > MAX_GROUPS {
                        return Err(StanzaError::NotAcceptable);
                    }
                    next.roster_groups = values.clone();
                }
                "pubsub#persist_items" => next.persist_items = boolean(values)?,
                "pubsub#max_items" => next.max_items = MaxItems::parse(single(values)?)?,
                "pubsub#send_last_published_item" => {
                    next.send_last = SendLast::parse(single(values)?)?;
                }
                _ => return Err(StanzaError::NotAcceptable),
            }
        }
        *self = next;
        Ok(())
    }

    /// XEP-0060 §7.1.5: whether the node's configuration meets every
    /// precondition (a field it does not know never does).
    pub fn meets(&self, fields: &Fields) -> bool {
        let mut wanted = self.clone();
        wanted.apply(fields).is_ok() && wanted == *self
    }

    /// The configuration form (§8.2.1).
    pub fn form(&self) -> Element {
        let field =
            |var: &str, kind: &str, values: Vec<String>| field_values(var, Some(kind), values);
        form_start("form", NODE_CONFIG)
            .with_child(field(
                "pubsub#access_model",
                "list-single",
                vec![self.access_model.name().to_owned()],
            ))
            .with_child(field(
                "pubsub#roster_groups_allowed",
                "list-multi",
                self.roster_groups.clone(),
            ))
            .with_child(field(
                "pubsub#persist_items",
                "boolean",
                vec![flag(self.persist_items).to_owned()],
            ))
            .with_child(field(
                "pubsub#max_items",
                "text-single",
                vec![self.max_items.value()],
            ))
            .with_child(field(
                "pubsub#send_last_published_item",
                "list-single",
                vec![self.send_last.name().to_owned()],
            ))
    }

    /// XEP-0060 §5.4: the `pubsub#meta-data` form of a node `owner` has.
    pub fn meta_data(&self, owner: &str) -> Element {
        let field = |var: &str, value: String| field_values(var, None, [value]);
        form_start("result", META_DATA)
            .with_child(field(
                "pubsub#access_model",
                self.access_model.name().to_owned(),
            ))
            .with_child(field("pubsub#max_items", self.max_items.value()))
            .with_child(field("pubsub#owner", owner.to_owned()))
            .with_child(field(
                "pubsub#persist_items",
                flag(self.persist_items).to_owned(),
            ))
    }

    /// The configuration as stored.
    pub fn to_element(&self, ns: &'static str) -> Element {
        let mut e = Element::new(ns, "config")
            .with_attr("access", self.access_model.name())
            .with_attr("persist", flag(self.persist_items))
            .with_attr("max", self.max_items.value())
            .with_attr("send-last", self.send_last.name());
        for g in &self.roster_groups {
            e = e.with_child(Element::new(ns, "group").with_text(g.clone()));
        }
        e
    }

    /// A stored configuration; `None` when unreadable.
    pub fn from_element(e: &Element, ns: &str) -> Option<Self> {
        Some(NodeConfig {
            access_model: AccessModel::parse(e.attr("access")?)?,
            roster_groups: e
                .elements()
                .filter(|g| g.is(ns, "group"))
                .map(Element::text)
                .collect(),
            persist_items: e.attr("persist")? == "1",
            max_items: MaxItems::parse(e.attr("max")?).ok()?,
            // Stored before it was kept: PEP's default.
            send_last: e
                .attr("send-last")
                .map_or(Ok(SendLast::OnSubAndPresence), SendLast::parse)
                .ok()?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::modules::xep0060::form::single_values as fields;

    #[test]
    fn publish_options_are_preconditions() {
        let mut c = NodeConfig::default();
        c.apply(&fields(&[
            ("pubsub#access_model", "open"),
            ("pubsub#max_items", "max"),
            ("pubsub#send_last_published_item", "never"),
        ]))
        .expect("valid");
        assert_eq!(c.send_last, SendLast::Never);
        assert_eq!(
            c.clone()
                .apply(&fields(&[("pubsub#send_last_published_item", "sometimes")])),
            Err(StanzaError::NotAcceptable)
        );
        assert_eq!(c.access_model, AccessModel::Open);
        assert_eq!(c.max_items.limit(), MAX_ITEMS_CAP);
        assert!(c.meets(&fields(&[("pubsub#access_model", "open")])));
        assert!(!c.meets(&fields(&[("pubsub#access_model", "presence")])));
        assert!(!c.meets(&fields(&[("pubsub#unknown", "1")])));
        assert_eq!(
            c.apply(&fields(&[("pubsub#max_items", "100000")])),
            Err(StanzaError::NotAcceptable)
        );
        let stored = c.to_element("urn:test");
        assert_eq!(NodeConfig::from_element(&stored, "urn:test"), Some(c));
    }
}
