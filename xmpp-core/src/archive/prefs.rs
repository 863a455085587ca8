//! Archiving preferences (XEP-0441, in the `urn:xmpp:mam:2` namespace): a
//! default and the JIDs always or never archived. Stored as the account's
//! `<prefs/>` document and loaded with the account, since every message the
//! account sends or receives is checked against them.

use super::bare_of;
use crate::jid::Jid;
use crate::stanza::StanzaError;
use crate::xml::Element;

/// XEP-0313/XEP-0441 namespace.
const NS: &str = "urn:xmpp:mam:2";

/// Storage key of the preferences document.
pub const PREFS_KEY: &str = "mam-prefs";

/// What happens to messages with JIDs on neither list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DefaultPref {
    /// Archive them.
    #[default]
    Always,
    /// Do not archive them.
    Never,
    /// Archive them when the contact's bare JID is in the roster.
    Roster,
}

impl DefaultPref {
    /// The `default` attribute value.
    pub fn as_str(self) -> &'static str {
        match self {
            DefaultPref::Always => "always",
            DefaultPref::Never => "never",
            DefaultPref::Roster => "roster",
        }
    }

    /// From the attribute value (or configuration).
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "always" => Some(DefaultPref::Always),
            "never" => Some(DefaultPref::Never),
            "roster" => Some(DefaultPref::Roster),
            _ => None,
        }
    }
}

/// One account's preferences.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ArchivePrefs {
    /// For JIDs on neither list.
    pub default: DefaultPref,
    /// Always archived (normalized JIDs, bare or full).
    pub always: Vec<String>,
    /// Never archived; wins over `always` when a JID matches both.
    pub never: Vec<String>,
}

/// XEP-0441 §2.4: a listed full JID matches exactly, a listed bare JID
/// matches any resource of it.
fn listed(list: &[String], target: &str) -> bool {
    list.iter().any(|l| {
        if l.contains('/') {
            l == target
        } else {
            l == bare_of(target)
        }
    })
}

impl ArchivePrefs {
    /// The preferences with only a default.
    pub fn with_default(default: DefaultPref) -> Self {
        ArchivePrefs {
            default,
            ..ArchivePrefs::default()
        }
    }

    /// Whether a message to or from `target` (the recipient of an outgoing
    /// message, the sender of an incoming one) is archived.
    pub fn allows(&self, target: &str, in_roster: impl Fn(&str) -> bool) -> bool {
        if listed(&self.never, target) {
            return false;
        }
        if listed(&self.always, target) {
            return true;
        }
        match self.default {
            DefaultPref::Always => true,
            DefaultPref::Never => false,
            DefaultPref::Roster => in_roster(bare_of(target)),
        }
    }

    /// The `<prefs/>` element (the stored document, and the iq payload).
    pub fn to_element(&self) -> Element {
        let list = |name: &str, jids: &[String]| {
            jids.iter().fold(Element::new(NS, name), |e, j| {
                e.with_child(Element::new(NS, "jid").with_text(j.clone()))
            })
        };
        Element::new(NS, "prefs")
            .with_attr("default", self.default.as_str())
            .with_child(list("always", &self.always))
            .with_child(list("never", &self.never))
    }

    /// Read a `<prefs/>` element (a set request or the stored document).
    /// JIDs are normalized; a missing list is empty.
    pub fn from_element(e: &Element) -> Result<Self, StanzaError> {
        if !e.is(NS, "prefs") {
            return Err(StanzaError::BadRequest);
        }
        let default = e
            .attr("default")
            .and_then(DefaultPref::parse)
            .ok_or(StanzaError::BadRequest)?;
        let list = |name: &str| -> Result<Vec<String>, StanzaError> {
            let mut out: Vec<String> = Vec::new();
            for j in e.elements().filter(|c| c.is(NS, name)) {
                for jid in j.elements() {
                    if !jid.is(NS, "jid") {
                        return Err(StanzaError::BadRequest);
                    }
                    let parsed =
                        Jid::parse(jid.text().trim()).map_err(|_| StanzaError::JidMalformed)?;
                    let s = parsed.as_str().to_owned();
                    if !out.contains(&s) {
                        out.push(s);
                    }
                }
            }
            Ok(out)
        };
        Ok(ArchivePrefs {
            default,
            always: list("always")?,
            never: list("never")?,
        })
    }

    /// The stored document.
    pub fn to_document(&self) -> String {
        self.to_element().to_xml()
    }

    /// Read the stored document; `None` when it is unreadable.
    pub fn from_document(doc: &str) -> Option<Self> {
        Element::parse(doc.as_bytes())
            .ok()
            .and_then(|e| Self::from_element(&e).ok())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_and_default_decide() {
        let p = ArchivePrefs {
            default: DefaultPref::Roster,
            always: vec!["a@x".into(), "b@x/r".into()],
            never: vec!["c@x".into(), "a@x/secret".into()],
        };
        let roster = |j: &str| j == "friend@x";
        assert!(p.allows("a@x/any", roster));
        assert!(!p.allows("a@x/secret", roster), "never wins");
        assert!(p.allows("b@x/r", roster));
        assert!(!p.allows("b@x/other", roster));
        assert!(!p.allows("c@x/r", roster));
        assert!(p.allows("friend@x/phone", roster));
        assert!(!p.allows("stranger@x", roster));
        assert!(ArchivePrefs::default().allows("anyone@x", |_| false));
        assert!(!ArchivePrefs::with_default(DefaultPref::Never).allows("a@x", |_| true));
    }

    #[test]
    fn document_round_trips() {
        let p = ArchivePrefs {
            default: DefaultPref::Never,
            always: vec!["a@x".into()],
            never: vec!["b@x/r".into()],
        };
        assert_eq!(ArchivePrefs::from_document(&p.to_document()), Some(p));
        let bad = Element::new(NS, "prefs").with_attr("default", "sometimes");
        assert_eq!(
            ArchivePrefs::from_element(&bad),
            Err(StanzaError::BadRequest)
        );
        let bad_jid = Element::new(NS, "prefs")
            .with_attr("default", "always")
            .with_child(
                Element::new(NS, "always").with_child(Element::new(NS, "jid").with_text("@@")),
            );
        assert_eq!(
            ArchivePrefs::from_element(&bad_jid),
            Err(StanzaError::JidMalformed)
        );
    }
}
