//! The core's RFC 6121 subscription state machine against a reference model.
//!
//! The model below is a literal transcription of the eight tables of RFC 6121
//! Appendix A (A.2.1–A.2.4 outbound, A.3.1–A.3.4 inbound) over the nine named
//! states of A.1. It deliberately does not reuse the core's flag arithmetic:
//! every row is written out, so a typo in either shows up as a mismatch.
//!
//! Column meanings, per the RFC:
//! - outbound tables: "ROUTE?" — the user's server routes the stanza to the
//!   contact;
//! - inbound tables: "DELIVER?" — the user's server delivers the stanza to the
//!   user's available resources. In A.3.1, the rows marked `no *` for the
//!   "From", "From + Pending Out" and "Both" states carry the footnote that the
//!   server auto-replies on the user's behalf with "subscribed".

use proptest::prelude::*;
use xmpp_core::modules::subscription::{inbound, outbound, SubscriptionKind, Transition};
use xmpp_core::storage::Subscription;

/// The nine defined states of RFC 6121 A.1.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    None,
    NonePendingOut,
    NonePendingIn,
    NonePendingOutIn,
    To,
    ToPendingIn,
    From,
    FromPendingOut,
    Both,
}

use State::*;

const STATES: [State; 9] = [
    None,
    NonePendingOut,
    NonePendingIn,
    NonePendingOutIn,
    To,
    ToPendingIn,
    From,
    FromPendingOut,
    Both,
];

const KINDS: [SubscriptionKind; 4] = [
    SubscriptionKind::Subscribe,
    SubscriptionKind::Subscribed,
    SubscriptionKind::Unsubscribe,
    SubscriptionKind::Unsubscribed,
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Direction {
    /// The user sent the stanza (A.2).
    Outbound,
    /// The contact's stanza reached the user's server (A.3).
    Inbound,
}

impl State {
    /// A.1's description of each state in terms of the roster's
    /// `subscription` value plus the pending flags.
    fn to_core(self) -> Subscription {
        let (to, from, pending_out, pending_in) = match self {
            None => (false, false, false, false),
            NonePendingOut => (false, false, true, false),
            NonePendingIn => (false, false, false, true),
            NonePendingOutIn => (false, false, true, true),
            To => (true, false, false, false),
            ToPendingIn => (true, false, false, true),
            From => (false, true, false, false),
            FromPendingOut => (false, true, true, false),
            Both => (true, true, false, false),
        };
        Subscription {
            to,
            from,
            pending_out,
            pending_in,
        }
    }

    /// The named state a core value stands for; `None` (the Rust one) for the
    /// seven flag combinations RFC 6121 does not define ("To + Pending Out",
    /// "From + Pending In", "Both + pending…").
    fn from_core(s: Subscription) -> Option<State> {
        STATES.iter().copied().find(|st| st.to_core() == s)
    }
}

/// What the reference model says one row does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Row {
    /// New state ("no state change" rows repeat the existing state).
    next: State,
    /// ROUTE? (outbound) / DELIVER? (inbound).
    forward: bool,
    /// The A.3.1 footnote: the server answers "subscribed" itself.
    auto_reply_subscribed: bool,
}

const fn row(next: State, forward: bool) -> Row {
    Row {
        next,
        forward,
        auto_reply_subscribed: false,
    }
}

const fn auto(next: State) -> Row {
    Row {
        next,
        forward: false,
        auto_reply_subscribed: true,
    }
}

/// RFC 6121 A.2: server processing of outbound presence subscription stanzas.
fn model_outbound(s: State, kind: SubscriptionKind) -> Row {
    match kind {
        // A.2.1 Subscribe: routed in every state.
        SubscriptionKind::Subscribe => match s {
            None => row(NonePendingOut, true),
            NonePendingOut => row(NonePendingOut, true), // no state change
            NonePendingIn => row(NonePendingOutIn, true),
            NonePendingOutIn => row(NonePendingOutIn, true), // no state change
            To => row(To, true),                             // no state change
            ToPendingIn => row(ToPendingIn, true),           // no state change
            From => row(FromPendingOut, true),
            FromPendingOut => row(FromPendingOut, true), // no state change
            Both => row(Both, true),                     // no state change
        },
        // A.2.2 Unsubscribe: routed in every state.
        SubscriptionKind::Unsubscribe => match s {
            None => row(None, true), // no state change
            NonePendingOut => row(None, true),
            NonePendingIn => row(NonePendingIn, true), // no state change
            NonePendingOutIn => row(NonePendingIn, true),
            To => row(None, true),
            ToPendingIn => row(NonePendingIn, true),
            From => row(From, true), // no state change
            FromPendingOut => row(From, true),
            Both => row(From, true),
        },
        // A.2.3 Subscribed: routed only when it answers a pending request.
        // ("None"/"None + Pending Out"/"To" may note a pre-approval, §3.4;
        // the core does not implement pre-approval and the table itself says
        // "no" / "no state change".)
        SubscriptionKind::Subscribed => match s {
            None => row(None, false),
            NonePendingOut => row(NonePendingOut, false),
            NonePendingIn => row(From, true),
            NonePendingOutIn => row(FromPendingOut, true),
            To => row(To, false),
            ToPendingIn => row(Both, true),
            From => row(From, false),
            FromPendingOut => row(FromPendingOut, false),
            Both => row(Both, false),
        },
        // A.2.4 Unsubscribed.
        SubscriptionKind::Unsubscribed => match s {
            None => row(None, false),
            NonePendingOut => row(NonePendingOut, false),
            NonePendingIn => row(None, true),
            NonePendingOutIn => row(NonePendingOut, true),
            To => row(To, false),
            ToPendingIn => row(To, true),
            From => row(None, true),
            FromPendingOut => row(NonePendingOut, true),
            Both => row(To, true),
        },
    }
}

/// RFC 6121 A.3: server processing of inbound presence subscription stanzas.
fn model_inbound(s: State, kind: SubscriptionKind) -> Row {
    match kind {
        // A.3.1 Subscribe. `no *`: SHOULD auto-reply "subscribed".
        SubscriptionKind::Subscribe => match s {
            None => row(NonePendingIn, true),
            NonePendingOut => row(NonePendingOutIn, true),
            NonePendingIn => row(NonePendingIn, false),
            NonePendingOutIn => row(NonePendingOutIn, false),
            To => row(ToPendingIn, true),
            ToPendingIn => row(ToPendingIn, false),
            From => auto(From),
            FromPendingOut => auto(FromPendingOut),
            Both => auto(Both),
        },
        // A.3.2 Subscribed.
        SubscriptionKind::Subscribed => match s {
            None => row(None, false),
            NonePendingOut => row(To, true),
            NonePendingIn => row(NonePendingIn, false),
            NonePendingOutIn => row(ToPendingIn, true),
            To => row(To, false),
            ToPendingIn => row(ToPendingIn, false),
            From => row(From, false),
            FromPendingOut => row(Both, true),
            Both => row(Both, false),
        },
        // A.3.3 Unsubscribe.
        SubscriptionKind::Unsubscribe => match s {
            None => row(None, false),
            NonePendingOut => row(NonePendingOut, false),
            NonePendingIn => row(None, true),
            NonePendingOutIn => row(NonePendingOut, true),
            To => row(To, false),
            ToPendingIn => row(To, true),
            From => row(None, true),
            FromPendingOut => row(NonePendingOut, true),
            Both => row(To, true),
        },
        // A.3.4 Unsubscribed.
        SubscriptionKind::Unsubscribed => match s {
            None => row(None, false),
            NonePendingOut => row(None, true),
            NonePendingIn => row(NonePendingIn, false),
            NonePendingOutIn => row(NonePendingIn, true),
            To => row(None, true),
            ToPendingIn => row(NonePendingIn, true),
            From => row(From, false),
            FromPendingOut => row(From, true),
            Both => row(From, true),
        },
    }
}

fn model(dir: Direction, s: State, kind: SubscriptionKind) -> Row {
    match dir {
        Direction::Outbound => model_outbound(s, kind),
        Direction::Inbound => model_inbound(s, kind),
    }
}

fn core(dir: Direction, s: Subscription, kind: SubscriptionKind) -> Transition {
    match dir {
        Direction::Outbound => outbound(s, kind),
        Direction::Inbound => inbound(s, kind),
    }
}

/// The core's answer as a model row; `Err` when the core leaves the nine
/// defined states.
fn core_row(dir: Direction, s: State, kind: SubscriptionKind) -> Result<Row, Subscription> {
    let t = core(dir, s.to_core(), kind);
    let next = State::from_core(t.state).ok_or(t.state)?;
    Ok(Row {
        next,
        forward: t.forward,
        auto_reply_subscribed: t.auto_reply_subscribed,
    })
}

#[test]
fn state_encoding_is_a_bijection() {
    for (i, a) in STATES.iter().enumerate() {
        assert_eq!(State::from_core(a.to_core()), Some(*a));
        for b in &STATES[i + 1..] {
            assert_ne!(a.to_core(), b.to_core());
        }
    }
}

/// All 9 states × 4 kinds × 2 directions, reporting every mismatch at once.
#[test]
fn every_table_row_matches_rfc_6121_appendix_a() {
    let mut mismatches = Vec::new();
    for dir in [Direction::Outbound, Direction::Inbound] {
        for s in STATES {
            for kind in KINDS {
                let want = model(dir, s, kind);
                let got = core_row(dir, s, kind);
                if got != Ok(want) {
                    mismatches.push(format!(
                        "{dir:?} {} in {s:?}: RFC says {want:?}, core gives {got:?}",
                        kind.as_type()
                    ));
                }
            }
        }
    }
    assert!(
        mismatches.is_empty(),
        "{} deviation(s) from RFC 6121 Appendix A:\n{}",
        mismatches.len(),
        mismatches.join("\n")
    );
}

/// A few rows spelled out as plain assertions, so a reader can check the
/// transcription against the RFC text without running the table.
#[test]
fn spot_checks_against_the_rfc_text() {
    // A.2.1: "To" + outbound subscribe: routed, no state change.
    assert_eq!(
        model_outbound(To, SubscriptionKind::Subscribe),
        row(To, true)
    );
    // A.2.2: "None" + outbound unsubscribe: routed, no state change.
    assert_eq!(
        model_outbound(None, SubscriptionKind::Unsubscribe),
        row(None, true)
    );
    // A.2.3: "None + Pending Out/In" + subscribed → "From + Pending Out".
    assert_eq!(
        model_outbound(NonePendingOutIn, SubscriptionKind::Subscribed),
        row(FromPendingOut, true)
    );
    // A.3.1: "Both" + inbound subscribe: not delivered, auto-reply.
    assert_eq!(model_inbound(Both, SubscriptionKind::Subscribe), auto(Both));
    // A.3.4: "To + Pending In" + inbound unsubscribed → "None + Pending In".
    assert_eq!(
        model_inbound(ToPendingIn, SubscriptionKind::Unsubscribed),
        row(NonePendingIn, true)
    );
}

fn kind() -> impl Strategy<Value = SubscriptionKind> {
    prop::sample::select(KINDS.to_vec())
}

fn direction() -> impl Strategy<Value = Direction> {
    prop_oneof![Just(Direction::Outbound), Just(Direction::Inbound)]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1024))]

    /// Random sequences from "None": core and model agree on the state and on
    /// the forwarding decision after every step, and the core never leaves
    /// the nine defined states.
    #[test]
    fn random_sequences_agree_with_the_model(
        steps in prop::collection::vec((direction(), kind()), 1..64),
    ) {
        let mut model_state = None;
        let mut core_state = Subscription::default();
        for (i, (dir, kind)) in steps.iter().copied().enumerate() {
            let want = model(dir, model_state, kind);
            let got = core(dir, core_state, kind);
            prop_assert_eq!(
                State::from_core(got.state),
                Some(want.next),
                "step {}: {:?} {} from {:?}: core state {:?}",
                i, dir, kind.as_type(), model_state, got.state
            );
            prop_assert_eq!(
                got.forward,
                want.forward,
                "step {}: {:?} {} from {:?}: forwarding",
                i, dir, kind.as_type(), model_state
            );
            prop_assert_eq!(
                got.auto_reply_subscribed,
                want.auto_reply_subscribed,
                "step {}: {:?} {} from {:?}: auto-reply",
                i, dir, kind.as_type(), model_state
            );
            model_state = want.next;
            core_state = got.state;
        }
    }

    /// Outbound stanzas never send an automatic reply; only inbound
    /// "subscribe" in a "From" state does.
    #[test]
    fn auto_reply_only_for_inbound_subscribe(
        s in prop::sample::select(STATES.to_vec()),
        k in kind(),
        dir in direction(),
    ) {
        let t = core(dir, s.to_core(), k);
        if t.auto_reply_subscribed {
            prop_assert_eq!(dir, Direction::Inbound);
            prop_assert_eq!(k, SubscriptionKind::Subscribe);
            prop_assert!(s.to_core().from);
            prop_assert!(!t.forward);
        }
    }
}
