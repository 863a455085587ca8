//! XEP-0077 In-Band Registration: requests, their validation and the
//! replies.
//!
//! Three parties use it. The stream machine answers an unauthenticated
//! peer (fields, account creation) and its bound session (registration
//! details, password change): it is where credentials are handled. A hub
//! module ([`Cancellation`]) answers `<remove/>`, because cancelling ends
//! every session of the account and its presence subscriptions. The driver performs the account
//! operations ([`AccountOp`]): it derives the SCRAM keys off the protocol
//! thread, as `vireo adduser` does, and applies its per-address limit
//! ([`RegistrationThrottle`]) to new accounts.

mod cancel;
mod throttle;

pub use cancel::{Cancellation, ID};
pub use throttle::RegistrationThrottle;

use crate::jid::Jid;
use crate::stanza::{error_reply, iq_result, StanzaError};
use crate::xml::Element;

/// XEP-0077 namespace (iq payload and disco feature).
pub const NS: &str = "jabber:iq:register";
/// XEP-0077 §8 stream feature namespace.
pub const FEATURE_NS: &str = "http://jabber.org/features/iq-register";
/// XEP-0004 data forms.
const DATA: &str = "jabber:x:data";

/// What `<iq type='get'>` tells an unregistered entity (Prosody's wording).
pub const INSTRUCTIONS: &str = "Choose a username and password for use with this service.";

/// The stream feature offered before authentication when registration is
/// allowed.
pub fn stream_feature() -> Element {
    Element::new(FEATURE_NS, "register")
}

/// A `jabber:iq:register` request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RegisterRequest {
    /// `get`: the fields to fill in (or, once registered, the details on file).
    Fields,
    /// `set` with fields (legacy elements or a submitted data form): create
    /// an account, or change the password of the authenticated one. Absent
    /// fields are `None`; the caller decides which error that is.
    Submit {
        username: Option<String>,
        password: Option<String>,
    },
    /// `set` with `<remove/>`: cancel the registration (§3.2).
    Remove,
}

impl RegisterRequest {
    /// Parse an iq; `None` when its payload is not `jabber:iq:register`.
    pub fn parse(iq: &Element) -> Option<Result<Self, StanzaError>> {
        let query = iq.first_element().filter(|q| q.is(NS, "query"))?;
        match iq.attr("type") {
            Some("get") => Some(Ok(RegisterRequest::Fields)),
            Some("set") => Some(parse_set(query)),
            _ => None,
        }
    }
}

fn parse_set(query: &Element) -> Result<RegisterRequest, StanzaError> {
    if query.child(NS, "remove").is_some() {
        // §3.2: <remove/> must be the only child.
        return if query.elements().count() == 1 {
            Ok(RegisterRequest::Remove)
        } else {
            Err(StanzaError::BadRequest)
        };
    }
    // §4, §6: a submitted form takes precedence over the legacy fields.
    if let Some(form) = query
        .elements()
        .find(|e| e.is(DATA, "x") && e.attr("type") == Some("submit"))
    {
        let field = |var: &str| {
            form.elements()
                .find(|f| f.is(DATA, "field") && f.attr("var") == Some(var))
                .and_then(|f| f.child_text(DATA, "value"))
        };
        return Ok(RegisterRequest::Submit {
            username: field("username"),
            password: field("password"),
        });
    }
    Ok(RegisterRequest::Submit {
        username: query.child_text(NS, "username"),
        password: query.child_text(NS, "password"),
    })
}

/// Why a request is refused: the condition, its error type and a text for
/// the user.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refusal {
    /// RFC 6120 §8.3.3 condition.
    pub condition: StanzaError,
    /// RFC 6120 §8.3.2 error type.
    pub kind: &'static str,
    /// Human-readable text (`None`: the condition says it all).
    pub text: Option<&'static str>,
}

impl Refusal {
    /// A refusal with the condition's usual type and no text.
    pub const fn plain(condition: StanzaError, kind: &'static str) -> Self {
        Refusal {
            condition,
            kind,
            text: None,
        }
    }

    /// A refusal with a text.
    pub const fn with_text(condition: StanzaError, kind: &'static str, text: &'static str) -> Self {
        Refusal {
            condition,
            kind,
            text: Some(text),
        }
    }
}

/// Registration is off (§3.1: "MUST return a service-unavailable error").
pub const UNAVAILABLE: Refusal = Refusal::plain(StanzaError::ServiceUnavailable, "cancel");
/// The username is taken.
pub const TAKEN: Refusal = Refusal::with_text(
    StanzaError::Conflict,
    "cancel",
    "The requested username already exists.",
);
/// Registration over an unencrypted stream while encryption is required.
pub const ENCRYPTION_REQUIRED: Refusal = Refusal::with_text(
    StanzaError::PolicyViolation,
    "modify",
    "Encryption is required to register.",
);
/// Too many registrations from the peer's address: resource-constraint,
/// as ejabberd answers, which clients of RFC 3920 know (slixmpp cannot
/// parse RFC 6120's policy-violation).
pub const THROTTLED: Refusal = Refusal::with_text(
    StanzaError::ResourceConstraint,
    "wait",
    "Too many registrations from your address; try again later.",
);
/// The store failed.
pub const STORAGE_FAILED: Refusal = Refusal::plain(StanzaError::InternalServerError, "wait");

/// The account a requested username names on `domain`: the localpart
/// normalized by RFC 7622 (PRECIS UsernameCaseMapped), as SASL maps a login.
pub fn account_for(username: Option<&str>, domain: &str) -> Result<Jid, Refusal> {
    const INVALID: Refusal = Refusal::with_text(
        StanzaError::NotAcceptable,
        "modify",
        "The requested username is invalid.",
    );
    let username = username.filter(|u| !u.is_empty()).ok_or(INVALID)?;
    Jid::new(Some(username), domain, None).map_err(|_| INVALID)
}

/// Check a new password: present, accepted by PRECIS OpaqueString (what
/// SCRAM will hash), at least `min_length` characters.
pub fn check_password(password: Option<&str>, min_length: usize) -> Result<&str, Refusal> {
    const MISSING: Refusal = Refusal::with_text(
        StanzaError::NotAcceptable,
        "modify",
        "A password is required.",
    );
    const INVALID: Refusal = Refusal::with_text(
        StanzaError::NotAcceptable,
        "modify",
        "The password contains characters that are not allowed.",
    );
    const SHORT: Refusal = Refusal::with_text(
        StanzaError::NotAcceptable,
        "modify",
        "The password is too short.",
    );
    let password = password.filter(|p| !p.is_empty()).ok_or(MISSING)?;
    if crate::sasl::prepare_password(password).is_err() {
        return Err(INVALID);
    }
    if password.chars().count() < min_length {
        return Err(SHORT);
    }
    Ok(password)
}

/// The error reply: the refusal's type and text, plus the legacy `code`
/// that §9 requires servers to keep sending. The request's payload is not
/// echoed: it carries the password.
pub fn error(iq: &Element, refusal: Refusal, by: &str) -> Element {
    let mut reply = error_reply(iq, refusal.condition, by);
    if let Some(err) = reply.child_mut(crate::ns::CLIENT, "error") {
        err.set_attr("type", refusal.kind);
        if let Some(code) = legacy_code(refusal.condition) {
            err.set_attr("code", code);
        }
        if let Some(text) = refusal.text {
            err.children.push(crate::xml::Node::Element(
                Element::new(crate::ns::STANZA_ERRORS, "text").with_text(text),
            ));
        }
    }
    reply
}

/// XEP-0086 §3: the HTTP-style code of a condition, where it defines one.
fn legacy_code(condition: StanzaError) -> Option<&'static str> {
    use StanzaError::*;
    Some(match condition {
        BadRequest | JidMalformed | UnexpectedRequest => "400",
        NotAuthorized => "401",
        Forbidden => "403",
        ItemNotFound => "404",
        NotAllowed => "405",
        NotAcceptable => "406",
        Conflict => "409",
        InternalServerError | ResourceConstraint => "500",
        FeatureNotImplemented => "501",
        ServiceUnavailable => "503",
        _ => return None,
    })
}

/// The answer to `get` from an unregistered entity: instructions and the
/// two fields (§3.1).
pub fn fields_reply(iq: &Element) -> Element {
    iq_result(iq).with_child(
        Element::new(NS, "query")
            .with_child(Element::new(NS, "instructions").with_text(INSTRUCTIONS))
            .with_child(Element::new(NS, "username"))
            .with_child(Element::new(NS, "password")),
    )
}

/// The answer to `get` from the authenticated account: `<registered/>`
/// and its username; the password is never given out (§3.1 allows it
/// empty).
pub fn registered_reply(iq: &Element, username: &str) -> Element {
    iq_result(iq).with_child(
        Element::new(NS, "query")
            .with_child(Element::new(NS, "registered"))
            .with_child(Element::new(NS, "username").with_text(username))
            .with_child(Element::new(NS, "password")),
    )
}

/// An account operation the driver performs for a stream.
#[derive(Clone, PartialEq, Eq)]
pub enum AccountOp {
    /// Create an account in-band, for an unauthenticated peer: subject to
    /// the driver's per-address limit.
    Register {
        /// Normalized bare JID.
        account: String,
        /// The new password (validated by [`check_password`]).
        password: String,
    },
    /// Replace the authenticated account's password.
    SetPassword {
        /// Normalized bare JID.
        account: String,
        /// The new password (validated by [`check_password`]).
        password: String,
    },
}

impl AccountOp {
    /// The account concerned.
    pub fn account(&self) -> &str {
        match self {
            AccountOp::Register { account, .. } | AccountOp::SetPassword { account, .. } => account,
        }
    }
}

impl std::fmt::Debug for AccountOp {
    /// Never prints the password.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (op, account) = match self {
            AccountOp::Register { account, .. } => ("Register", account),
            AccountOp::SetPassword { account, .. } => ("SetPassword", account),
        };
        f.debug_struct(op)
            .field("account", account)
            .finish_non_exhaustive()
    }
}

/// How an [`AccountOp`] ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AccountOpResult {
    /// Created, or the password replaced.
    Done,
    /// Registration: the account exists already.
    Conflict,
    /// Password change: the account no longer exists.
    NotFound,
    /// Registration: the peer's address registered too recently.
    Throttled,
    /// The store failed (the text is for logs).
    Failed(String),
}

#[cfg(test)]
mod tests;
