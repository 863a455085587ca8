//! The paging rule of offline delivery seen from the stream: a page counts
//! as delivered once the client acknowledged its last stanza (XEP-0198), or
//! at once without stream management (the driver has written it by then);
//! and the XEP-0198 queue is bounded in bytes, not only in stanzas.

use super::test_support::{drain, logged_in, written};
use super::{ConnOutput, ServerStream, ServerStreamConfig, SmConfig};
use crate::xml::Element;

/// Alice, logged in and bound; with `sm`, stream management enabled.
fn alice(sm: Option<SmConfig>) -> ServerStream {
    let enable = sm.is_some();
    let cfg = ServerStreamConfig {
        require_encryption: false,
        sm,
        ..Default::default()
    };
    let mut s = logged_in(cfg);
    if enable {
        s.handle_input(0, b"<enable xmlns='urn:xmpp:sm:3' resume='true'/>");
        drain(&mut s);
    }
    s
}

fn message(body: &str) -> Element {
    Element::new(crate::ns::CLIENT, "message")
        .with_attr("type", "chat")
        .with_attr("from", "bob@localhost/pc")
        .with_attr("to", "alice@localhost/home")
        .with_child(Element::new(crate::ns::CLIENT, "body").with_text(body))
}

fn delivered(out: &[ConnOutput]) -> bool {
    out.iter().any(|o| matches!(o, ConnOutput::PageDelivered))
}

#[test]
fn with_stream_management_a_page_is_delivered_once_acknowledged() {
    let mut s = alice(Some(SmConfig::default()));
    for i in 0..3 {
        s.send_stanza(&message(&format!("m{i}")));
    }
    drain(&mut s);
    s.mark_page();
    let out = drain(&mut s);
    assert!(!delivered(&out), "not before the client has it");
    assert!(
        written(&out).contains("<r xmlns='urn:xmpp:sm:3'/>"),
        "the page's end asks for an acknowledgement: {}",
        written(&out)
    );
    // A stanza after the page is not part of it.
    s.send_stanza(&message("live"));
    drain(&mut s);
    s.handle_input(0, b"<a xmlns='urn:xmpp:sm:3' h='2'/>");
    assert!(
        !delivered(&drain(&mut s)),
        "one of the page still unacknowledged"
    );
    s.handle_input(0, b"<a xmlns='urn:xmpp:sm:3' h='3'/>");
    assert!(delivered(&drain(&mut s)));
    s.handle_input(0, b"<a xmlns='urn:xmpp:sm:3' h='4'/>");
    assert!(!delivered(&drain(&mut s)), "once per page");
}

#[test]
fn with_everything_acknowledged_or_without_stream_management_at_once() {
    let mut s = alice(Some(SmConfig::default()));
    s.mark_page();
    assert!(
        delivered(&drain(&mut s)),
        "an empty queue: nothing to wait for"
    );
    let mut plain = alice(None);
    plain.send_stanza(&message("m0"));
    plain.mark_page();
    let out = drain(&mut plain);
    let write = out.iter().position(|o| matches!(o, ConnOutput::Write(_)));
    let page = out
        .iter()
        .position(|o| matches!(o, ConnOutput::PageDelivered));
    assert!(
        matches!((write, page), (Some(w), Some(p)) if w < p),
        "written first, then delivered: {out:?}"
    );
}

#[test]
fn the_unacknowledged_queue_is_bounded_in_bytes() {
    let mut s = alice(Some(SmConfig {
        max_unacked_bytes: 10_000,
        ..SmConfig::default()
    }));
    let big = "x".repeat(4_000);
    s.send_stanza(&message(&big));
    s.send_stanza(&message(&big));
    assert!(!s.is_closed());
    s.handle_input(0, b"<a xmlns='urn:xmpp:sm:3' h='1'/>");
    s.send_stanza(&message(&big));
    assert!(!s.is_closed(), "acknowledged bytes are freed");
    s.send_stanza(&message(&big));
    let out = drain(&mut s);
    assert!(s.is_closed());
    assert!(
        written(&out).contains("resource-constraint"),
        "{}",
        written(&out)
    );
    let undelivered: usize = out
        .iter()
        .map(|o| match o {
            ConnOutput::Undelivered(v) => v.len(),
            _ => 0,
        })
        .sum();
    assert_eq!(undelivered, 3, "every unacknowledged message goes back");
}
