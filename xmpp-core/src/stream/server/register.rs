//! XEP-0077 on the c2s stream: in-band registration before authentication
//! and, for the bound session, its registration details and password
//! change. `<remove/>` goes on to the hub, which owns the account's
//! sessions. The account operations themselves are the driver's
//! ([`ConnOutput::Account`]).

use super::{valid_iq, Phase, ServerStream};
use crate::modules::register::{
    account_for, check_password, error, fields_reply, registered_reply, AccountOp, AccountOpResult,
    Refusal, RegisterRequest, ENCRYPTION_REQUIRED, STORAGE_FAILED, TAKEN, THROTTLED, UNAVAILABLE,
};
use crate::ns;
use crate::stanza::{Kind, StanzaError};
use crate::stream::ConnOutput;
use crate::time::Millis;
use crate::xml::Element;

/// XEP-0077 settings of a listener.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistrationConfig {
    /// New accounts may be created in-band (Prosody's `allow_registration`).
    /// Off, the stream still answers the bound session's password changes.
    pub allow_registration: bool,
    /// Shortest password accepted, in characters.
    pub min_password_length: usize,
}

impl Default for RegistrationConfig {
    /// Registration closed; passwords of at least 8 characters.
    fn default() -> Self {
        RegistrationConfig {
            allow_registration: false,
            min_password_length: 8,
        }
    }
}

/// A password change must name the account itself (§3.3; Prosody answers
/// the same).
const NOT_YOURS: Refusal = Refusal::with_text(
    StanzaError::BadRequest,
    "modify",
    "The username must be your own.",
);
/// §3.3: a password change without a password keeps the old one.
const NO_PASSWORD: Refusal =
    Refusal::with_text(StanzaError::BadRequest, "modify", "A password is required.");
/// `<remove/>` before authentication: nobody to remove (§3.2's table).
const NOT_REGISTERED: Refusal = Refusal::with_text(
    StanzaError::UnexpectedRequest,
    "modify",
    "Authenticate to cancel a registration.",
);

impl ServerStream {
    /// An element before authentication: answers `jabber:iq:register` iqs
    /// addressed to the server (§3.1); `false` when it is not one.
    pub(super) fn register_before_auth(&mut self, el: &Element) -> bool {
        if Kind::of(el) != Some(Kind::Iq) || !matches!(self.phase, Phase::Ready) {
            return false;
        }
        let Some(request) = RegisterRequest::parse(el) else {
            return false;
        };
        let domain = self.domain.clone().unwrap_or_default();
        if el.attr("to").is_some_and(|t| t != domain) {
            return false;
        }
        if !valid_iq(el) {
            self.reply(error(
                el,
                Refusal::plain(StanzaError::BadRequest, "modify"),
                &domain,
            ));
            return true;
        }
        let allowed = self
            .cfg
            .registration
            .as_ref()
            .filter(|r| r.allow_registration)
            .map(|r| r.min_password_length);
        let outcome = match (request, allowed) {
            (_, None) => Err(UNAVAILABLE),
            (_, Some(_)) if !self.secure && self.cfg.require_encryption => Err(ENCRYPTION_REQUIRED),
            (Err(e), _) => Err(Refusal::plain(e, "modify")),
            (Ok(RegisterRequest::Fields), _) => Ok(None),
            (Ok(RegisterRequest::Remove), _) => Err(NOT_REGISTERED),
            (Ok(RegisterRequest::Submit { username, password }), Some(min)) => {
                account_for(username.as_deref(), &domain).and_then(|account| {
                    check_password(password.as_deref(), min).map(|p| {
                        Some(AccountOp::Register {
                            account: account.bare_str(),
                            password: p.to_owned(),
                        })
                    })
                })
            }
        };
        match outcome {
            Ok(None) => self.reply(fields_reply(el)),
            Ok(Some(op)) => self.account_op(el, op),
            Err(refusal) => self.reply(error(el, refusal, &domain)),
        }
        true
    }

    /// A `jabber:iq:register` iq from the bound session to its server or
    /// its own bare JID: the details on file, or a password change. Other
    /// stanzas come back for routing (and `<remove/>` goes to the hub).
    pub(super) fn register_in_session(&mut self, el: Element) -> Option<Element> {
        let Some(request) = RegisterRequest::parse(&el) else {
            return Some(el);
        };
        let (Some(account), Some(cfg)) = (self.account.clone(), self.cfg.registration.clone())
        else {
            return Some(el);
        };
        let own = el
            .attr("to")
            .is_none_or(|t| t == account.domain() || t == account.bare_str());
        if !own || matches!(request, Ok(RegisterRequest::Remove)) {
            return Some(el);
        }
        let domain = account.domain().to_owned();
        let username = account.local().unwrap_or_default().to_owned();
        match request {
            Ok(RegisterRequest::Fields) => self.reply(registered_reply(&el, &username)),
            Ok(RegisterRequest::Submit {
                username: named,
                password,
            }) => {
                let named = named
                    .as_deref()
                    .and_then(|n| account_for(Some(n), &domain).ok());
                let change = if named.as_ref() != Some(&account) {
                    Err(NOT_YOURS)
                } else if password.as_deref().is_none_or(str::is_empty) {
                    Err(NO_PASSWORD)
                } else {
                    check_password(password.as_deref(), cfg.min_password_length)
                };
                match change {
                    Ok(p) => {
                        let op = AccountOp::SetPassword {
                            account: account.bare_str(),
                            password: p.to_owned(),
                        };
                        self.account_op(&el, op);
                    }
                    Err(refusal) => self.reply(error(&el, refusal, &domain)),
                }
            }
            Ok(RegisterRequest::Remove) => return Some(el),
            Err(e) => self.reply(error(&el, Refusal::plain(e, "modify"), &domain)),
        }
        None
    }

    /// The driver finished an [`AccountOp`] this stream asked for.
    pub fn handle_account(
        &mut self,
        now: Millis,
        id: crate::storage::RequestId,
        result: AccountOpResult,
    ) {
        self.clock = now;
        let Phase::AwaitAccount { req, .. } = &self.phase else {
            return;
        };
        if *req != id {
            return;
        }
        let Phase::AwaitAccount { iq, .. } = std::mem::replace(&mut self.phase, Phase::Ready)
        else {
            return;
        };
        let domain = self.domain.clone().unwrap_or_default();
        let refusal = match result {
            AccountOpResult::Done => None,
            AccountOpResult::Conflict => Some(TAKEN),
            AccountOpResult::Throttled => Some(THROTTLED),
            AccountOpResult::NotFound => Some(Refusal::plain(StanzaError::NotAuthorized, "auth")),
            AccountOpResult::Failed(e) => {
                tracing::error!(error = %e, "account operation failed");
                Some(STORAGE_FAILED)
            }
        };
        match refusal {
            None => self.reply(crate::stanza::iq_result(&iq)),
            Some(r) => self.reply(error(&iq, r, &domain)),
        }
        self.process();
    }

    /// Hand an account operation to the driver; the stream reads nothing
    /// more until it is answered, so requests stay in order.
    fn account_op(&mut self, iq: &Element, op: AccountOp) {
        let req = self.next_request;
        self.next_request += 1;
        self.out.push(ConnOutput::Account { id: req, op });
        // Only the envelope is kept for the answer: the payload holds the
        // password.
        let mut envelope = Element::new(iq.ns.clone(), iq.name.clone());
        envelope.attrs = iq.attrs.clone();
        self.phase = Phase::AwaitAccount {
            req,
            iq: Box::new(envelope),
        };
    }

    fn reply(&mut self, reply: Element) {
        self.out.write_element(&reply, ns::CLIENT);
    }
}
