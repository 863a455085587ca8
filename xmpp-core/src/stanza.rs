//! Stanza helpers: kinds, addressing and RFC 6120 §8.3 stanza errors.

use crate::jid::Jid;
use crate::ns;
use crate::xml::Element;

/// The three stanza kinds of RFC 6120 §8.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Message,
    Presence,
    Iq,
}

impl Kind {
    /// The kind of a `jabber:client` element, if it is a stanza.
    pub fn of(e: &Element) -> Option<Kind> {
        if e.ns != ns::CLIENT {
            return None;
        }
        match e.name.as_str() {
            "message" => Some(Kind::Message),
            "presence" => Some(Kind::Presence),
            "iq" => Some(Kind::Iq),
            _ => None,
        }
    }
}

/// Error types of RFC 6120 §8.3.2.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorType {
    Auth,
    Cancel,
    Continue,
    Modify,
    Wait,
}

impl ErrorType {
    fn name(self) -> &'static str {
        match self {
            ErrorType::Auth => "auth",
            ErrorType::Cancel => "cancel",
            ErrorType::Continue => "continue",
            ErrorType::Modify => "modify",
            ErrorType::Wait => "wait",
        }
    }
}

/// Stanza error conditions (RFC 6120 §8.3.3) with their usual error type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StanzaError {
    BadRequest,
    Conflict,
    FeatureNotImplemented,
    Forbidden,
    /// The entity is no longer there (XEP-0045 tombstones of destroyed
    /// rooms).
    Gone,
    InternalServerError,
    ItemNotFound,
    JidMalformed,
    NotAcceptable,
    NotAllowed,
    NotAuthorized,
    PolicyViolation,
    RecipientUnavailable,
    /// XEP-0045 §7.2.6: a members-only room refuses a non-member.
    RegistrationRequired,
    RemoteServerNotFound,
    /// The remote server did not answer in time (federation).
    RemoteServerTimeout,
    ResourceConstraint,
    ServiceUnavailable,
    UndefinedCondition,
    UnexpectedRequest,
}

impl StanzaError {
    /// Element name of the condition.
    pub fn name(self) -> &'static str {
        use StanzaError::*;
        match self {
            BadRequest => "bad-request",
            Conflict => "conflict",
            FeatureNotImplemented => "feature-not-implemented",
            Forbidden => "forbidden",
            Gone => "gone",
            InternalServerError => "internal-server-error",
            ItemNotFound => "item-not-found",
            JidMalformed => "jid-malformed",
            NotAcceptable => "not-acceptable",
            NotAllowed => "not-allowed",
            NotAuthorized => "not-authorized",
            PolicyViolation => "policy-violation",
            RecipientUnavailable => "recipient-unavailable",
            RegistrationRequired => "registration-required",
            RemoteServerNotFound => "remote-server-not-found",
            RemoteServerTimeout => "remote-server-timeout",
            ResourceConstraint => "resource-constraint",
            ServiceUnavailable => "service-unavailable",
            UndefinedCondition => "undefined-condition",
            UnexpectedRequest => "unexpected-request",
        }
    }

    /// The error type RFC 6120 §8.3.3 gives for the condition.
    pub fn default_type(self) -> ErrorType {
        use StanzaError::*;
        match self {
            BadRequest | JidMalformed | NotAcceptable | PolicyViolation => ErrorType::Modify,
            NotAuthorized | Forbidden | RegistrationRequired => ErrorType::Auth,
            InternalServerError | RecipientUnavailable | RemoteServerTimeout
            | ResourceConstraint | UnexpectedRequest => ErrorType::Wait,
            _ => ErrorType::Cancel,
        }
    }
}

/// Build the error reply to `stanza` (RFC 6120 §8.3.1): addresses swapped,
/// same id, `type='error'`, original payload kept so the sender can correlate,
/// `by` naming the entity that generated the error.
pub fn error_reply(stanza: &Element, cond: StanzaError, by: &str) -> Element {
    let mut reply = Element::new(ns::CLIENT, stanza.name.clone());
    if let Some(id) = stanza.attr("id") {
        reply.set_attr("id", id);
    }
    if let Some(from) = stanza.attr("from") {
        reply.set_attr("to", from);
    }
    if let Some(to) = stanza.attr("to") {
        reply.set_attr("from", to);
    } else {
        reply.set_attr("from", by);
    }
    reply.set_attr("type", "error");
    // Keep the payload of non-iq stanzas (iq error replies may omit it).
    if stanza.name != "iq" {
        reply.children = stanza.children.clone();
    }
    let error = Element::new(ns::CLIENT, "error")
        .with_attr("type", cond.default_type().name())
        .with_attr("by", by)
        .with_child(Element::new(ns::STANZA_ERRORS, cond.name()));
    reply.with_child(error)
}

/// True for stanzas that must never be answered with an error (errors, and iq
/// results), which prevents error loops.
pub fn is_error_or_result(stanza: &Element) -> bool {
    matches!(stanza.attr("type"), Some("error") | Some("result"))
}

/// An empty `type='result'` reply to an iq request.
pub fn iq_result(iq: &Element) -> Element {
    let mut r = Element::new(ns::CLIENT, "iq").with_attr("type", "result");
    if let Some(id) = iq.attr("id") {
        r.set_attr("id", id);
    }
    if let Some(from) = iq.attr("from") {
        r.set_attr("to", from);
    }
    if let Some(to) = iq.attr("to") {
        r.set_attr("from", to);
    }
    r
}

/// The parsed `to` of a stanza; `Ok(None)` when absent.
pub fn to_jid(stanza: &Element) -> Result<Option<Jid>, crate::jid::JidError> {
    stanza.attr("to").map(Jid::parse).transpose()
}

/// The parsed `from` of a stanza; `Ok(None)` when absent.
pub fn from_jid(stanza: &Element) -> Result<Option<Jid>, crate::jid::JidError> {
    stanza.attr("from").map(Jid::parse).transpose()
}

/// Elements in `from_ns` (a peer stream's content namespace:
/// `jabber:server`, `jabber:component:accept`) become `jabber:client`, the
/// namespace the hub works in; payloads keep their own namespaces.
pub(crate) fn into_client_ns(el: &mut Element, from_ns: &str) {
    if el.ns == from_ns {
        el.ns = ns::CLIENT.into();
    }
    for child in &mut el.children {
        if let crate::xml::Node::Element(c) = child {
            into_client_ns(c, from_ns);
        }
    }
}
