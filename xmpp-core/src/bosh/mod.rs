//! XMPP over BOSH (XEP-0124, XEP-0206), the pure part: request bodies
//! read and checked, and the session machine that orders requests by
//! `rid`, holds them, answers them with what the c2s stream wrote, and
//! ends the session on terminate, inactivity or a broken rule.
//!
//! The HTTP is the driver's (`xmpp-runtime/src/http/bosh.rs`), and the
//! c2s session is the [`ServerStream`](crate::stream::ServerStream) every
//! transport shares, in its bare framing.

pub mod body;
pub mod session;

#[cfg(test)]
mod props_tests;
#[cfg(test)]
mod session_tests;

pub use body::{BodyAttrs, NS};
pub use session::{terminate, BoshConfig, BoshOutput, BoshSession, ReqId};

/// A terminal binding condition (XEP-0124 §17.2): the session ends and
/// the client is told why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BoshError {
    /// A body the server cannot read (not a `<body/>`, no `rid`, an
    /// attribute that is no number).
    #[error("bad request: {0}")]
    BadRequest(&'static str),
    /// An unknown session, or a `rid` outside the window.
    #[error("item not found: {0}")]
    ItemNotFound(&'static str),
    /// More requests at once than `requests`, or a pause over `maxpause`.
    #[error("policy violation: {0}")]
    PolicyViolation(&'static str),
}

impl BoshError {
    /// The `condition` attribute.
    pub fn condition(&self) -> &'static str {
        match self {
            BoshError::BadRequest(_) => "bad-request",
            BoshError::ItemNotFound(_) => "item-not-found",
            BoshError::PolicyViolation(_) => "policy-violation",
        }
    }
}
