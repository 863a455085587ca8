//! The hand-over seen from the holding stream: what `take_suspended` gives
//! away, and `abandon` when nobody takes it after all.

use super::test_support::{drain, logged_in};
use super::{ConnOutput, ServerStream, ServerStreamConfig};
use crate::xml::Element;

/// Alice, logged in and bound, with resumable stream management and one
/// message from bob she has not acknowledged.
fn alice_with_unacked_message() -> ServerStream {
    let cfg = ServerStreamConfig {
        require_encryption: false,
        ..Default::default()
    };
    let mut s = logged_in(cfg);
    s.handle_input(0, b"<enable xmlns='urn:xmpp:sm:3' resume='true'/>");
    assert!(drain(&mut s)
        .iter()
        .any(|o| matches!(o, ConnOutput::SmEnabled(_))));
    let msg = Element::parse(
        b"<message xmlns='jabber:client' type='chat' from='bob@localhost/pc' \
          to='alice@localhost/home'><body>hi</body></message>",
    )
    .expect("test XML");
    s.send_stanza(&msg);
    drain(&mut s);
    s
}

#[test]
fn a_taken_session_nobody_resumes_is_undeliverable_not_lost() {
    let mut holder = alice_with_unacked_message();
    let session = holder.take_suspended().expect("resumable");
    assert_eq!(session.pending(), 1);
    assert!(holder.is_closed());
    assert!(
        !drain(&mut holder)
            .iter()
            .any(|o| matches!(o, ConnOutput::Undelivered(_))),
        "the stanzas left with the session"
    );
    // The resuming connection gave up waiting: the holder abandons it.
    holder.abandon(session);
    let undelivered: Vec<Element> = drain(&mut holder)
        .into_iter()
        .filter_map(|o| match o {
            ConnOutput::Undelivered(v) => Some(v),
            _ => None,
        })
        .flatten()
        .collect();
    assert_eq!(undelivered.len(), 1);
    assert!(
        crate::stream::sm::is_redelivery(&undelivered[0]),
        "the message goes back to its account: {undelivered:?}"
    );
}
