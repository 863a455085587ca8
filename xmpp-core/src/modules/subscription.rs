//! The RFC 6121 Appendix A subscription state tables as pure functions.
//!
//! Kept free of rosters and routing so the proptests can hold them against a
//! literal transcription of the RFC's tables.

use crate::storage::Subscription;

/// The four subscription presence types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubscriptionKind {
    Subscribe,
    Subscribed,
    Unsubscribe,
    Unsubscribed,
}

impl SubscriptionKind {
    /// From a presence `type` attribute.
    pub fn from_type(t: Option<&str>) -> Option<Self> {
        match t? {
            "subscribe" => Some(Self::Subscribe),
            "subscribed" => Some(Self::Subscribed),
            "unsubscribe" => Some(Self::Unsubscribe),
            "unsubscribed" => Some(Self::Unsubscribed),
            _ => None,
        }
    }

    /// The presence `type` attribute value.
    pub fn as_type(self) -> &'static str {
        match self {
            Self::Subscribe => "subscribe",
            Self::Subscribed => "subscribed",
            Self::Unsubscribe => "unsubscribe",
            Self::Unsubscribed => "unsubscribed",
        }
    }
}

/// Outcome of one transition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transition {
    /// The state after the stanza.
    pub state: Subscription,
    /// Outbound: route the stanza to the contact. Inbound: deliver it to the
    /// user's available resources.
    pub forward: bool,
    /// Inbound subscribe from an already-approved contact: the server answers
    /// `subscribed` on the user's behalf (RFC 6121 §3.1.3) instead of asking.
    pub auto_reply_subscribed: bool,
}

/// The user sent a subscription stanza to the contact (Appendix A.2).
pub fn outbound(s: Subscription, kind: SubscriptionKind) -> Transition {
    let mut n = s;
    let forward = match kind {
        SubscriptionKind::Subscribe => {
            if !s.to {
                n.pending_out = true;
            }
            true
        }
        SubscriptionKind::Unsubscribe => {
            n.to = false;
            n.pending_out = false;
            true
        }
        SubscriptionKind::Subscribed => {
            if s.pending_in {
                n.from = true;
                n.pending_in = false;
                true
            } else {
                false
            }
        }
        SubscriptionKind::Unsubscribed => {
            n.from = false;
            n.pending_in = false;
            s.from || s.pending_in
        }
    };
    Transition {
        state: n,
        forward,
        auto_reply_subscribed: false,
    }
}

/// The contact's subscription stanza reached the user's server (Appendix A.3).
pub fn inbound(s: Subscription, kind: SubscriptionKind) -> Transition {
    let mut n = s;
    let mut auto = false;
    let forward = match kind {
        SubscriptionKind::Subscribe => {
            if s.from {
                auto = true;
                false
            } else if s.pending_in {
                false
            } else {
                n.pending_in = true;
                true
            }
        }
        SubscriptionKind::Subscribed => {
            if s.pending_out {
                n.to = true;
                n.pending_out = false;
                true
            } else {
                false
            }
        }
        SubscriptionKind::Unsubscribe => {
            n.from = false;
            n.pending_in = false;
            s.from || s.pending_in
        }
        SubscriptionKind::Unsubscribed => {
            n.to = false;
            n.pending_out = false;
            s.to || s.pending_out
        }
    };
    Transition {
        state: n,
        forward,
        auto_reply_subscribed: auto,
    }
}
