//! The XEP-0220 wire elements: `<db:result/>` and `<db:verify/>`.
//!
//! Each comes in four forms (§2.1–2.4): a request carrying a key, and an
//! answer of type `valid`, `invalid` or `error` (the last with an
//! `<error/>` child holding a stanza error condition, §2.4.2). They are
//! modelled as one body type, [`DbBody`], so a machine matches on what
//! arrived rather than on attribute strings.
//!
//! Namespaces. The parser resolves prefixes, so a received element is known
//! by its namespace, `jabber:server:dialback`, whatever prefix the peer
//! declared. Writing is the other way round: XEP-0220 §2 requires the prefix
//! the sender's stream header declared, and some deployments accept only
//! `db:`. So [`DialbackElement::write_to`] writes `db:result` / `db:verify`
//! without a declaration, relying on the s2s stream header to carry
//! [`write_stream_declaration`]; the `<error/>` child is written without
//! `xmlns` so it is in the stream's default namespace, `jabber:server`, as
//! §2.4.2 says ("implicitly qualified").
//!
//! Budgets: domains must be JID domainparts (RFC 7622, via [`Jid`]), keys
//! are bounded by [`MAX_KEY_BYTES`](super::MAX_KEY_BYTES), stream ids by
//! [`MAX_STREAM_ID_BYTES`], error text by [`MAX_ERROR_TEXT_BYTES`].

use std::fmt;

use super::key::{DialbackKey, KeyError};
use crate::jid::{Jid, JidError};
use crate::ns;
use crate::stanza::ErrorType;
use crate::xml::{escape_attr, escape_text, Element};

/// Longest stream id accepted in `<db:verify id=…/>`. Servers make ids of
/// 8 to 40 characters (UUIDs at most); the bound leaves a wide margin.
pub const MAX_STREAM_ID_BYTES: usize = 256;

/// Longest `<text/>` kept from a dialback error (it only goes to logs).
pub const MAX_ERROR_TEXT_BYTES: usize = 1024;

/// Longest name of an error condition outside the XEP's table (the
/// longest defined one, `remote-connection-failed`, has 24 bytes).
const MAX_CONDITION_NAME_BYTES: usize = 64;

/// Write the namespace declaration that lets dialback elements be written
/// with the `db:` prefix; it belongs on the s2s stream header, where it also
/// announces dialback support (XEP-0220 §2.4.1).
pub fn write_stream_declaration(out: &mut Vec<u8>) {
    out.extend_from_slice(b" xmlns:db='");
    out.extend_from_slice(ns::DIALBACK.as_bytes());
    out.push(b'\'');
}

/// A domain named in a dialback attribute: a valid JID domainpart, kept as
/// the peer wrote it because keys are computed over the exact strings
/// (an A-label and its U-label are different key input), with its
/// normalised form for routing decisions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DialbackDomain {
    wire: String,
    jid: Jid,
}

impl DialbackDomain {
    /// Validate a domain: it must be a JID domainpart (which also bounds it
    /// to 1023 bytes).
    pub fn parse(s: &str) -> Result<DialbackDomain, JidError> {
        let jid = Jid::domain_jid(s)?;
        Ok(DialbackDomain {
            wire: s.to_owned(),
            jid,
        })
    }

    /// The domain as written on the wire (and used as key input).
    pub fn as_str(&self) -> &str {
        &self.wire
    }

    /// The normalised domain JID (U-labels, lowercase).
    pub fn jid(&self) -> &Jid {
        &self.jid
    }
}

impl fmt::Display for DialbackDomain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.wire)
    }
}

/// The stream id a `<db:verify/>` names: 1 to [`MAX_STREAM_ID_BYTES`]
/// bytes, no whitespace or control characters (the schema says NMTOKEN).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamId(String);

impl StreamId {
    /// Validate a stream id.
    pub fn parse(s: &str) -> Option<StreamId> {
        let ok = !s.is_empty()
            && s.len() <= MAX_STREAM_ID_BYTES
            && !s.chars().any(|c| c.is_whitespace() || c.is_control());
        ok.then(|| StreamId(s.to_owned()))
    }

    /// The id.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Dialback error conditions: the table of XEP-0220 §2.4.2, and any other
/// stanza error condition a peer may send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DialbackCondition {
    /// The `to` domain is not hosted here (step 3 or 4).
    ItemNotFound,
    /// No connection to the Authoritative Server could be made (step 4).
    RemoteConnectionFailed,
    /// The Authoritative Server's domain does not resolve, or answered
    /// host-unknown (step 4).
    RemoteServerNotFound,
    /// The connection to the Authoritative Server failed before it answered
    /// (step 4).
    RemoteServerTimeout,
    /// TLS is required before dialback (step 3 or 4).
    PolicyViolation,
    /// A valid certificate or other proof is required (step 3).
    NotAuthorized,
    /// The Authoritative Server answered "invalid" (step 4).
    Forbidden,
    /// The Initiating Server's identity could not be established (step 4).
    NotAcceptable,
    /// No room for another domain pair on this stream (step 4).
    ResourceConstraint,
    /// Another RFC 6120 stanza error condition, by element name.
    Other(String),
}

impl DialbackCondition {
    /// The condition's element name.
    pub fn name(&self) -> &str {
        use DialbackCondition::*;
        match self {
            ItemNotFound => "item-not-found",
            RemoteConnectionFailed => "remote-connection-failed",
            RemoteServerNotFound => "remote-server-not-found",
            RemoteServerTimeout => "remote-server-timeout",
            PolicyViolation => "policy-violation",
            NotAuthorized => "not-authorized",
            Forbidden => "forbidden",
            NotAcceptable => "not-acceptable",
            ResourceConstraint => "resource-constraint",
            Other(name) => name,
        }
    }

    /// The condition named `name` (an element in the stanza-errors
    /// namespace).
    fn from_name(name: &str) -> Option<DialbackCondition> {
        use DialbackCondition::*;
        Some(match name {
            "item-not-found" => ItemNotFound,
            "remote-connection-failed" => RemoteConnectionFailed,
            "remote-server-not-found" => RemoteServerNotFound,
            "remote-server-timeout" => RemoteServerTimeout,
            "policy-violation" => PolicyViolation,
            "not-authorized" => NotAuthorized,
            "forbidden" => Forbidden,
            "not-acceptable" => NotAcceptable,
            "resource-constraint" => ResourceConstraint,
            "text" => return None,
            other if other.len() <= MAX_CONDITION_NAME_BYTES => Other(other.to_owned()),
            _ => return None,
        })
    }

    /// The error type RFC 6120 §8.3.3 gives the condition.
    pub fn default_type(&self) -> ErrorType {
        use DialbackCondition::*;
        match self {
            ItemNotFound | RemoteConnectionFailed | RemoteServerNotFound | Other(_) => {
                ErrorType::Cancel
            }
            RemoteServerTimeout | ResourceConstraint => ErrorType::Wait,
            PolicyViolation | NotAcceptable => ErrorType::Modify,
            NotAuthorized | Forbidden => ErrorType::Auth,
        }
    }
}

/// The `<error/>` of a `type='error'` answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DialbackError {
    /// The error type (`cancel`, `wait`, ...).
    pub error_type: ErrorType,
    /// The condition.
    pub condition: DialbackCondition,
    /// Human-readable text, if the peer gave one (for logs).
    pub text: Option<String>,
}

impl DialbackError {
    /// An error with the condition's usual type and no text.
    pub fn new(condition: DialbackCondition) -> DialbackError {
        DialbackError {
            error_type: condition.default_type(),
            condition,
            text: None,
        }
    }

    fn to_element(&self) -> Element {
        let mut error = Element::new(ns::SERVER, "error")
            .with_attr("type", error_type_name(self.error_type))
            .with_child(Element::new(
                ns::STANZA_ERRORS,
                self.condition.name().to_owned(),
            ));
        if let Some(text) = &self.text {
            error = error.with_child(Element::new(ns::STANZA_ERRORS, "text").with_text(text));
        }
        error
    }
}

/// What a dialback element carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DbBody {
    /// A request: the key to verify (no `type`).
    Key(DialbackKey),
    /// `type='valid'`: the key (and so the domain pair) is verified.
    Valid,
    /// `type='invalid'`: the key is bogus.
    Invalid,
    /// `type='error'`: no verdict, for the reason given (XEP-0220 §2.4.2).
    Error(DialbackError),
}

/// `<db:result/>`: the Initiating Server's key (step 1) or the Receiving
/// Server's verdict on it (step 4).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DbResult {
    /// The Sender Domain in a request, the Target Domain in an answer.
    pub from: DialbackDomain,
    /// The Target Domain in a request, the Sender Domain in an answer.
    pub to: DialbackDomain,
    /// Key or verdict.
    pub body: DbBody,
}

/// `<db:verify/>`: the Receiving Server asking the Authoritative Server
/// about a key (step 2), or its answer (step 3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DbVerify {
    /// The Target Domain in a request, the Sender Domain in an answer.
    pub from: DialbackDomain,
    /// The Sender Domain in a request, the Target Domain in an answer.
    pub to: DialbackDomain,
    /// The id of the stream the key was received on (copied into the
    /// answer).
    pub id: StreamId,
    /// Key or verdict.
    pub body: DbBody,
}

/// Either dialback element.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DialbackElement {
    /// `<db:result/>`.
    Result(DbResult),
    /// `<db:verify/>`.
    Verify(DbVerify),
}

/// Why an element is not a usable dialback element. Dialback errors are
/// answered without closing the stream (XEP-0220 §2.4.2), so the cause is
/// kept precise for the log line and the answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DialbackParseError {
    /// Not `result` or `verify` in `jabber:server:dialback`.
    #[error("not a dialback element")]
    NotDialback,
    /// A required attribute is absent.
    #[error("dialback element without '{0}'")]
    MissingAttribute(&'static str),
    /// `from` or `to` is not a JID domainpart.
    #[error("dialback '{attribute}' is not a valid domain: {error}")]
    BadDomain {
        /// `from` or `to`.
        attribute: &'static str,
        /// Why the domain was refused.
        error: JidError,
    },
    /// `id` is empty, too long or has whitespace or control characters.
    #[error("dialback 'id' is not a valid stream id")]
    BadStreamId,
    /// `type` is none of `valid`, `invalid`, `error`.
    #[error("dialback 'type' is not valid, invalid or error")]
    BadType,
    /// A request whose key is unacceptable.
    #[error("dialback key: {0}")]
    Key(#[from] KeyError),
    /// `type='error'` without an `<error/>` child holding a condition.
    #[error("dialback error without an <error/> condition")]
    MissingCondition,
    /// The `<error type=…>` is not an RFC 6120 error type.
    #[error("dialback <error/> with an unknown type")]
    BadErrorType,
    /// The error's `<text/>` is over [`MAX_ERROR_TEXT_BYTES`].
    #[error("dialback error text over {MAX_ERROR_TEXT_BYTES} bytes")]
    ErrorTextTooLong,
}

impl DialbackElement {
    /// Parse a received top-level element. Text in an answer (`valid`,
    /// `invalid`, `error`) is ignored, as are children other than the
    /// error: peers have no reason to send them, and refusing them would
    /// only break interoperability.
    pub fn parse(el: &Element) -> Result<DialbackElement, DialbackParseError> {
        if el.ns != ns::DIALBACK {
            return Err(DialbackParseError::NotDialback);
        }
        let verify = match el.name.as_str() {
            "result" => false,
            "verify" => true,
            _ => return Err(DialbackParseError::NotDialback),
        };
        let from = domain_attr(el, "from")?;
        let to = domain_attr(el, "to")?;
        let id = if verify {
            let id = el
                .attr("id")
                .ok_or(DialbackParseError::MissingAttribute("id"))?;
            Some(StreamId::parse(id).ok_or(DialbackParseError::BadStreamId)?)
        } else {
            None
        };
        let body = match el.attr("type") {
            None => DbBody::Key(DialbackKey::parse(&el.text())?),
            Some("valid") => DbBody::Valid,
            Some("invalid") => DbBody::Invalid,
            Some("error") => DbBody::Error(parse_error(el)?),
            Some(_) => return Err(DialbackParseError::BadType),
        };
        Ok(match id {
            Some(id) => DialbackElement::Verify(DbVerify { from, to, id, body }),
            None => DialbackElement::Result(DbResult { from, to, body }),
        })
    }

    /// Write the element as it goes on an s2s stream: `db:`-prefixed (the
    /// stream header declared the prefix, [`write_stream_declaration`]) and
    /// with the `<error/>` child in the stream's default namespace.
    pub fn write_to(&self, out: &mut Vec<u8>) {
        let (name, from, to, id, body) = self.parts();
        out.extend_from_slice(b"<db:");
        out.extend_from_slice(name.as_bytes());
        for (attr, value) in [("from", Some(from)), ("to", Some(to)), ("id", id)] {
            if let Some(value) = value {
                out.push(b' ');
                out.extend_from_slice(attr.as_bytes());
                out.extend_from_slice(b"='");
                escape_attr(value, out);
                out.push(b'\'');
            }
        }
        if let Some(kind) = body_type(body) {
            out.extend_from_slice(b" type='");
            out.extend_from_slice(kind.as_bytes());
            out.push(b'\'');
        }
        match body {
            DbBody::Valid | DbBody::Invalid => {
                out.extend_from_slice(b"/>");
                return;
            }
            DbBody::Key(key) => {
                out.push(b'>');
                escape_text(key.as_str(), out);
            }
            DbBody::Error(error) => {
                out.push(b'>');
                error.to_element().write_to(out, ns::SERVER);
            }
        }
        out.extend_from_slice(b"</db:");
        out.extend_from_slice(name.as_bytes());
        out.push(b'>');
    }

    /// The element as a tree (for tests, logs and code that works on
    /// elements); written by the generic writer it declares its namespace
    /// as a default instead of using the `db:` prefix.
    pub fn to_element(&self) -> Element {
        let (name, from, to, id, body) = self.parts();
        let mut el = Element::new(ns::DIALBACK, name)
            .with_attr("from", from)
            .with_attr("to", to);
        if let Some(id) = id {
            el.set_attr("id", id);
        }
        if let Some(kind) = body_type(body) {
            el.set_attr("type", kind);
        }
        match body {
            DbBody::Key(key) => el.with_text(key.as_str()),
            DbBody::Error(error) => el.with_child(error.to_element()),
            DbBody::Valid | DbBody::Invalid => el,
        }
    }

    /// The `from` and `to` domains.
    pub fn domains(&self) -> (&DialbackDomain, &DialbackDomain) {
        match self {
            DialbackElement::Result(r) => (&r.from, &r.to),
            DialbackElement::Verify(v) => (&v.from, &v.to),
        }
    }

    /// The body.
    pub fn body(&self) -> &DbBody {
        match self {
            DialbackElement::Result(r) => &r.body,
            DialbackElement::Verify(v) => &v.body,
        }
    }

    fn parts(&self) -> (&'static str, &str, &str, Option<&str>, &DbBody) {
        match self {
            DialbackElement::Result(r) => ("result", r.from.as_str(), r.to.as_str(), None, &r.body),
            DialbackElement::Verify(v) => (
                "verify",
                v.from.as_str(),
                v.to.as_str(),
                Some(v.id.as_str()),
                &v.body,
            ),
        }
    }
}

fn body_type(body: &DbBody) -> Option<&'static str> {
    match body {
        DbBody::Key(_) => None,
        DbBody::Valid => Some("valid"),
        DbBody::Invalid => Some("invalid"),
        DbBody::Error(_) => Some("error"),
    }
}

fn domain_attr(
    el: &Element,
    attribute: &'static str,
) -> Result<DialbackDomain, DialbackParseError> {
    let value = el
        .attr(attribute)
        .ok_or(DialbackParseError::MissingAttribute(attribute))?;
    DialbackDomain::parse(value).map_err(|error| DialbackParseError::BadDomain { attribute, error })
}

/// The `<error/>` child: in `jabber:server` as §2.4.2 says, or in the
/// dialback namespace, which is what a sender gets that writes the parent
/// with a default namespace declaration instead of the `db:` prefix.
fn parse_error(el: &Element) -> Result<DialbackError, DialbackParseError> {
    let error = el
        .elements()
        .find(|c| c.name == "error" && (c.ns == ns::SERVER || c.ns == ns::DIALBACK))
        .ok_or(DialbackParseError::MissingCondition)?;
    let condition = error
        .elements()
        .filter(|c| c.ns == ns::STANZA_ERRORS)
        .find_map(|c| DialbackCondition::from_name(&c.name))
        .ok_or(DialbackParseError::MissingCondition)?;
    let error_type = match error.attr("type") {
        None => condition.default_type(),
        Some(t) => parse_error_type(t).ok_or(DialbackParseError::BadErrorType)?,
    };
    let text = match error.child(ns::STANZA_ERRORS, "text") {
        None => None,
        Some(t) => {
            let text = t.text();
            if text.len() > MAX_ERROR_TEXT_BYTES {
                return Err(DialbackParseError::ErrorTextTooLong);
            }
            Some(text)
        }
    };
    Ok(DialbackError {
        error_type,
        condition,
        text,
    })
}

fn parse_error_type(s: &str) -> Option<ErrorType> {
    Some(match s {
        "auth" => ErrorType::Auth,
        "cancel" => ErrorType::Cancel,
        "continue" => ErrorType::Continue,
        "modify" => ErrorType::Modify,
        "wait" => ErrorType::Wait,
        _ => return None,
    })
}

fn error_type_name(t: ErrorType) -> &'static str {
    match t {
        ErrorType::Auth => "auth",
        ErrorType::Cancel => "cancel",
        ErrorType::Continue => "continue",
        ErrorType::Modify => "modify",
        ErrorType::Wait => "wait",
    }
}

#[cfg(test)]
#[path = "element_tests.rs"]
mod tests;
