//! A room's configuration (§10.2, the `muc#roomconfig` form) and what it
//! shows in disco#info (§6.4, features and the `muc#roominfo` form).

use crate::modules::data_form::field;
use crate::modules::data_form::{parse_form, Fields, DATA};
use crate::stanza::StanzaError;
use crate::xml::Element;

/// `FORM_TYPE` of the configuration form.
pub const ROOMCONFIG: &str = "http://jabber.org/protocol/muc#roomconfig";
/// `FORM_TYPE` of the room information form.
pub const ROOMINFO: &str = "http://jabber.org/protocol/muc#roominfo";

/// Who may send private messages (`muc#roomconfig_allowpm`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AllowPm {
    /// Every occupant.
    Anyone,
    /// Participants and moderators.
    Participants,
    /// Moderators only.
    Moderators,
    /// Nobody.
    Nobody,
}

impl AllowPm {
    fn name(self) -> &'static str {
        match self {
            AllowPm::Anyone => "anyone",
            AllowPm::Participants => "participants",
            AllowPm::Moderators => "moderators",
            AllowPm::Nobody => "none",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "anyone" => AllowPm::Anyone,
            "participants" => AllowPm::Participants,
            "moderators" => AllowPm::Moderators,
            "none" => AllowPm::Nobody,
            _ => return None,
        })
    }
}

/// A room's configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoomConfig {
    /// Its natural-language name.
    pub name: String,
    /// Its description.
    pub description: String,
    /// Listed in the service's disco#items.
    pub public: bool,
    /// Kept when the last occupant leaves (and across restarts).
    pub persistent: bool,
    /// Only members may enter.
    pub members_only: bool,
    /// Only participants and moderators may speak.
    pub moderated: bool,
    /// The password to enter, if any.
    pub password: Option<String>,
    /// Real JIDs are shown to every occupant (non-anonymous), not only
    /// to moderators (semi-anonymous).
    pub whois_anyone: bool,
    /// Most occupants (admins and owners always enter).
    pub max_users: usize,
    /// Participants may change the subject.
    pub change_subject: bool,
    /// Participants may invite others (§7.8).
    pub allow_invites: bool,
    /// Who may send private messages.
    pub allow_pm: AllowPm,
    /// Messages are archived (XEP-0313 on the room JID) and entering
    /// occupants are told so (status 170).
    pub logging: bool,
}

impl Default for RoomConfig {
    fn default() -> Self {
        RoomConfig {
            name: String::new(),
            description: String::new(),
            public: true,
            persistent: false,
            members_only: false,
            moderated: false,
            password: None,
            whois_anyone: false,
            max_users: 200,
            change_subject: false,
            allow_invites: false,
            allow_pm: AllowPm::Anyone,
            logging: false,
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
    match single(values)? {
        "1" | "true" => Ok(true),
        "0" | "false" | "" => Ok(false),
        _ => Err(StanzaError::NotAcceptable),
    }
}

/// Longest name, description or password accepted.
const TEXT_MAX: usize = 1024;

impl RoomConfig {
    /// Apply a submitted form (§10.2): fields it does not know are left
    /// alone (clients send the whole form back, owner lists included);
    /// a known field with a bad value refuses the whole form.
    /// `max_users` is capped at `cap`.
    pub fn apply(&mut self, x: &Element, cap: usize) -> Result<(), StanzaError> {
        let fields: Fields = parse_form(x)?;
        let mut next = self.clone();
        let mut protect = None;
        let mut logging = None;
        for (var, values) in &fields {
            let text = || -> Result<String, StanzaError> {
                let v = single(values)?;
                if v.len() > TEXT_MAX {
                    return Err(StanzaError::NotAcceptable);
                }
                Ok(v.to_owned())
            };
            match var.as_str() {
                "muc#roomconfig_roomname" => next.name = text()?,
                "muc#roomconfig_roomdesc" => next.description = text()?,
                "muc#roomconfig_publicroom" => next.public = boolean(values)?,
                "muc#roomconfig_persistentroom" => next.persistent = boolean(values)?,
                "muc#roomconfig_membersonly" => next.members_only = boolean(values)?,
                "muc#roomconfig_moderatedroom" => next.moderated = boolean(values)?,
                "muc#roomconfig_passwordprotectedroom" => protect = Some(boolean(values)?),
                "muc#roomconfig_roomsecret" => {
                    let secret = text()?;
                    next.password = (!secret.is_empty()).then_some(secret);
                }
                "muc#roomconfig_whois" => {
                    next.whois_anyone = match single(values)? {
                        "anyone" => true,
                        "moderators" => false,
                        _ => return Err(StanzaError::NotAcceptable),
                    }
                }
                "muc#roomconfig_maxusers" => {
                    let v = single(values)?;
                    next.max_users = match v {
                        "" | "none" => cap,
                        n => n
                            .parse::<usize>()
                            .ok()
                            .filter(|n| (1..=cap).contains(n))
                            .ok_or(StanzaError::NotAcceptable)?,
                    };
                }
                "muc#roomconfig_changesubject" => next.change_subject = boolean(values)?,
                "muc#roomconfig_allowinvites" => next.allow_invites = boolean(values)?,
                "muc#roomconfig_allowpm" => {
                    next.allow_pm =
                        AllowPm::parse(single(values)?).ok_or(StanzaError::NotAcceptable)?
                }
                "muc#roomconfig_enablelogging" => logging = Some(boolean(values)?),
                _ => {}
            }
        }
        // Archived by default when persistent (unless the form says).
        next.logging = logging.unwrap_or(if next.persistent != self.persistent {
            next.persistent
        } else {
            self.logging
        });
        if protect == Some(false) {
            next.password = None;
        }
        if protect == Some(true) && next.password.is_none() {
            return Err(StanzaError::NotAcceptable);
        }
        *self = next;
        Ok(())
    }

    /// The configuration form (§10.2).
    pub fn form(&self, cap: usize) -> Element {
        let b = |v: bool| if v { "1" } else { "0" };
        let pm = Element::new(DATA, "field")
            .with_attr("var", "muc#roomconfig_allowpm")
            .with_attr("type", "list-single")
            .with_child(Element::new(DATA, "value").with_text(self.allow_pm.name()));
        let pm = ["anyone", "participants", "moderators", "none"]
            .into_iter()
            .fold(pm, |f, o| f.with_child(option(o)));
        let whois = Element::new(DATA, "field")
            .with_attr("var", "muc#roomconfig_whois")
            .with_attr("type", "list-single")
            .with_child(Element::new(DATA, "value").with_text(if self.whois_anyone {
                "anyone"
            } else {
                "moderators"
            }))
            .with_child(option("moderators"))
            .with_child(option("anyone"));
        Element::new(DATA, "x")
            .with_attr("type", "form")
            .with_child(field("FORM_TYPE", "hidden", ROOMCONFIG))
            .with_child(field("muc#roomconfig_roomname", "text-single", &self.name))
            .with_child(field(
                "muc#roomconfig_roomdesc",
                "text-single",
                &self.description,
            ))
            .with_child(field(
                "muc#roomconfig_publicroom",
                "boolean",
                b(self.public),
            ))
            .with_child(field(
                "muc#roomconfig_persistentroom",
                "boolean",
                b(self.persistent),
            ))
            .with_child(field(
                "muc#roomconfig_membersonly",
                "boolean",
                b(self.members_only),
            ))
            .with_child(field(
                "muc#roomconfig_moderatedroom",
                "boolean",
                b(self.moderated),
            ))
            .with_child(field(
                "muc#roomconfig_passwordprotectedroom",
                "boolean",
                b(self.password.is_some()),
            ))
            .with_child(field(
                "muc#roomconfig_roomsecret",
                "text-private",
                self.password.as_deref().unwrap_or_default(),
            ))
            .with_child(whois)
            .with_child(field(
                "muc#roomconfig_maxusers",
                "text-single",
                &self.max_users.min(cap).to_string(),
            ))
            .with_child(field(
                "muc#roomconfig_changesubject",
                "boolean",
                b(self.change_subject),
            ))
            .with_child(field(
                "muc#roomconfig_allowinvites",
                "boolean",
                b(self.allow_invites),
            ))
            .with_child(pm)
            .with_child(field(
                "muc#roomconfig_enablelogging",
                "boolean",
                b(self.logging),
            ))
    }

    /// The features naming the room's type (§6.4).
    pub fn features(&self) -> Vec<&'static str> {
        let pick = |c: bool, y: &'static str, n: &'static str| if c { y } else { n };
        vec![
            pick(self.public, "muc_public", "muc_hidden"),
            pick(self.persistent, "muc_persistent", "muc_temporary"),
            pick(self.members_only, "muc_membersonly", "muc_open"),
            pick(self.moderated, "muc_moderated", "muc_unmoderated"),
            pick(
                self.password.is_some(),
                "muc_passwordprotected",
                "muc_unsecured",
            ),
            pick(self.whois_anyone, "muc_nonanonymous", "muc_semianonymous"),
        ]
    }

    /// The stored form of the configuration: every field as attribute.
    pub fn to_element(&self, ns: &'static str) -> Element {
        let b = |v: bool| if v { "1" } else { "0" };
        let mut e = Element::new(ns, "config")
            .with_attr("name", self.name.clone())
            .with_attr("description", self.description.clone())
            .with_attr("public", b(self.public))
            .with_attr("persistent", b(self.persistent))
            .with_attr("members_only", b(self.members_only))
            .with_attr("moderated", b(self.moderated))
            .with_attr(
                "whois",
                if self.whois_anyone {
                    "anyone"
                } else {
                    "moderators"
                },
            )
            .with_attr("max_users", self.max_users.to_string())
            .with_attr("change_subject", b(self.change_subject))
            .with_attr("allow_invites", b(self.allow_invites))
            .with_attr("allow_pm", self.allow_pm.name())
            .with_attr("logging", b(self.logging));
        if let Some(p) = &self.password {
            e.set_attr("password", p.clone());
        }
        e
    }

    /// A stored configuration; missing attributes keep `defaults`.
    pub fn from_element(e: &Element, defaults: &RoomConfig) -> Self {
        let b = |k: &str, d: bool| e.attr(k).map_or(d, |v| v == "1");
        RoomConfig {
            name: e.attr("name").unwrap_or_default().to_owned(),
            description: e.attr("description").unwrap_or_default().to_owned(),
            public: b("public", defaults.public),
            persistent: b("persistent", defaults.persistent),
            members_only: b("members_only", defaults.members_only),
            moderated: b("moderated", defaults.moderated),
            password: e.attr("password").map(str::to_owned),
            whois_anyone: e.attr("whois") == Some("anyone"),
            max_users: e
                .attr("max_users")
                .and_then(|v| v.parse().ok())
                .unwrap_or(defaults.max_users),
            change_subject: b("change_subject", defaults.change_subject),
            allow_invites: b("allow_invites", defaults.allow_invites),
            allow_pm: e
                .attr("allow_pm")
                .and_then(AllowPm::parse)
                .unwrap_or(defaults.allow_pm),
            logging: b("logging", defaults.logging),
        }
    }
}

fn option(value: &str) -> Element {
    Element::new(DATA, "option").with_child(Element::new(DATA, "value").with_text(value))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn submit(pairs: &[(&str, &str)]) -> Element {
        pairs.iter().fold(
            Element::new(DATA, "x")
                .with_attr("type", "submit")
                .with_child(field("FORM_TYPE", "hidden", ROOMCONFIG)),
            |x, (k, v)| x.with_child(field(k, "text-single", v)),
        )
    }

    #[test]
    fn forms_apply_and_round_trip() {
        let mut c = RoomConfig::default();
        c.apply(
            &submit(&[
                ("muc#roomconfig_roomname", "Cave"),
                ("muc#roomconfig_persistentroom", "1"),
                ("muc#roomconfig_passwordprotectedroom", "1"),
                ("muc#roomconfig_roomsecret", "s3cret"),
                ("muc#roomconfig_whois", "anyone"),
                ("muc#roomconfig_maxusers", "30"),
                ("muc#roomowners", "x@y"),
            ]),
            100,
        )
        .expect("valid");
        assert_eq!(c.name, "Cave");
        assert!(c.persistent && c.whois_anyone);
        assert_eq!(c.password.as_deref(), Some("s3cret"));
        assert_eq!(c.max_users, 30);
        let stored = c.to_element("urn:test");
        assert_eq!(RoomConfig::from_element(&stored, &RoomConfig::default()), c);
        // Beyond the cap, or a bad value: nothing changes.
        let before = c.clone();
        assert_eq!(
            c.apply(&submit(&[("muc#roomconfig_maxusers", "101")]), 100),
            Err(StanzaError::NotAcceptable)
        );
        assert_eq!(
            c.apply(
                &submit(&[
                    ("muc#roomconfig_roomname", "Other"),
                    ("muc#roomconfig_whois", "everybody")
                ]),
                100
            ),
            Err(StanzaError::NotAcceptable)
        );
        assert_eq!(c, before);
        let huge = "x".repeat(TEXT_MAX + 1);
        assert_eq!(
            c.apply(&submit(&[("muc#roomconfig_roomname", &huge)]), 100),
            Err(StanzaError::NotAcceptable)
        );
    }
}
