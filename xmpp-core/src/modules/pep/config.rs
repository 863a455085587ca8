//! Node configuration (XEP-0060 §8.2) and publish-options (XEP-0223,
//! XEP-0060 §7.1.5): the fields PEP supports, read from and written to
//! `jabber:x:data` forms.

use super::access::AccessModel;
use crate::stanza::StanzaError;
use crate::xml::Element;

/// `jabber:x:data`.
pub const DATA: &str = "jabber:x:data";
/// The FORM_TYPE of a node configuration form.
pub const NODE_CONFIG: &str = "http://jabber.org/protocol/pubsub#node_config";
/// The FORM_TYPE of a node's disco#info form.
pub const META_DATA: &str = "http://jabber.org/protocol/pubsub#meta-data";
/// The FORM_TYPE of publish-options.
pub const PUBLISH_OPTIONS: &str = "http://jabber.org/protocol/pubsub#publish-options";

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

/// The fields of a submitted form, FORM_TYPE aside: (var, values).
pub type Fields = Vec<(String, Vec<String>)>;

/// Read a submitted `jabber:x:data` form (`<x type='submit'/>`).
pub fn parse_form(x: &Element) -> Result<Fields, StanzaError> {
    if !x.is(DATA, "x") {
        return Err(StanzaError::BadRequest);
    }
    Ok(x.elements()
        .filter(|f| f.is(DATA, "field"))
        .filter_map(|f| {
            let var = f.attr("var")?;
            (var != "FORM_TYPE").then(|| {
                let values = f
                    .elements()
                    .filter(|v| v.is(DATA, "value"))
                    .map(Element::text)
                    .collect();
                (var.to_owned(), values)
            })
        })
        .collect())
}

fn single(values: &[String]) -> Result<&str, StanzaError> {
    match values {
        [v] => Ok(v.as_str()),
        _ => Err(StanzaError::NotAcceptable),
    }
}

fn boolean(values: &[String]) -> Result<bool, StanzaError> {
    match single(values)? {
        "1" | "true" => Ok(true),
        "0" | "false" => Ok(false),
        _ => Err(StanzaError::NotAcceptable),
    }
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
        let field = |var: &str, kind: &str, values: Vec<String>| {
            values.into_iter().fold(
                Element::new(DATA, "field")
                    .with_attr("var", var)
                    .with_attr("type", kind),
                |f, v| f.with_child(Element::new(DATA, "value").with_text(v)),
            )
        };
        Element::new(DATA, "x")
            .with_attr("type", "form")
            .with_child(field("FORM_TYPE", "hidden", vec![NODE_CONFIG.to_owned()]))
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
                vec![if self.persist_items { "1" } else { "0" }.to_owned()],
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
        let field = |var: &str, value: String| {
            Element::new(DATA, "field")
                .with_attr("var", var)
                .with_child(Element::new(DATA, "value").with_text(value))
        };
        Element::new(DATA, "x")
            .with_attr("type", "result")
            .with_child(field("FORM_TYPE", META_DATA.to_owned()).with_attr("type", "hidden"))
            .with_child(field(
                "pubsub#access_model",
                self.access_model.name().to_owned(),
            ))
            .with_child(field("pubsub#max_items", self.max_items.value()))
            .with_child(field("pubsub#owner", owner.to_owned()))
            .with_child(field(
                "pubsub#persist_items",
                if self.persist_items { "1" } else { "0" }.to_owned(),
            ))
    }

    /// The configuration as stored.
    pub fn to_element(&self, ns: &'static str) -> Element {
        let mut e = Element::new(ns, "config")
            .with_attr("access", self.access_model.name())
            .with_attr("persist", if self.persist_items { "1" } else { "0" })
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

    fn fields(pairs: &[(&str, &str)]) -> Fields {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), vec![(*v).to_owned()]))
            .collect()
    }

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
