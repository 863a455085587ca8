//! XEP-0198 acknowledgements are promises: `h` covers only stanzas whose
//! effects are durable, which the driver confirms by returning fences.

use super::test_support::{drain, logged_in, written};
use super::{ConnOutput, ServerStream, ServerStreamConfig};
use crate::entropy::Entropy;
use crate::sim::driver::LOGIN;
use crate::xml::Element;
use std::sync::Arc;

fn fences(out: &[ConnOutput]) -> Vec<u64> {
    out.iter()
        .filter_map(|o| match o {
            ConnOutput::Fence(seq) => Some(*seq),
            _ => None,
        })
        .collect()
}

fn alice(resume: bool) -> ServerStream {
    let cfg = ServerStreamConfig {
        require_encryption: false,
        ..Default::default()
    };
    let mut s = logged_in(cfg);
    let enable = if resume {
        "<enable xmlns='urn:xmpp:sm:3' resume='true'/>"
    } else {
        "<enable xmlns='urn:xmpp:sm:3'/>"
    };
    s.handle_input(0, enable.as_bytes());
    drain(&mut s);
    s
}

fn messages(n: usize) -> String {
    (0..n)
        .map(|i| {
            format!("<message to='bob@localhost' type='chat' id='m{i}'><body>{i}</body></message>")
        })
        .collect()
}

#[test]
fn h_does_not_advance_before_the_fence_returns() {
    let mut s = alice(false);
    s.handle_input(
        1,
        format!("{}<r xmlns='urn:xmpp:sm:3'/>", messages(3)).as_bytes(),
    );
    let out = drain(&mut s);
    let stanzas = out
        .iter()
        .filter(|o| matches!(o, ConnOutput::Stanza(_)))
        .count();
    assert_eq!(stanzas, 3, "the stanzas go to the hub at once");
    assert!(
        !written(&out).contains("<a "),
        "no acknowledgement before the fence: {}",
        written(&out)
    );
    let f = fences(&out);
    assert_eq!(f.len(), 1, "one fence behind the stanzas: {out:?}");
    let stanza_pos = out.iter().rposition(|o| matches!(o, ConnOutput::Stanza(_)));
    let fence_pos = out.iter().position(|o| matches!(o, ConnOutput::Fence(_)));
    assert!(fence_pos > stanza_pos, "the fence follows the stanzas");

    // A fence number that is not the one in flight changes nothing.
    s.fence_done(2, f[0] + 1);
    assert!(!written(&drain(&mut s)).contains("<a "));

    s.fence_done(3, f[0]);
    assert!(written(&drain(&mut s)).contains("h='3'"));

    // Nothing new since: answered at once, no fence.
    s.handle_input(4, b"<r xmlns='urn:xmpp:sm:3'/>");
    let out = drain(&mut s);
    assert!(fences(&out).is_empty());
    assert!(written(&out).contains("h='3'"));
}

#[test]
fn requests_during_a_fence_share_the_next_one() {
    let mut s = alice(false);
    s.handle_input(
        1,
        format!("{}<r xmlns='urn:xmpp:sm:3'/>", messages(2)).as_bytes(),
    );
    let first = fences(&drain(&mut s));
    // The same count again: answered by the fence in flight, no new one.
    s.handle_input(2, b"<r xmlns='urn:xmpp:sm:3'/>");
    assert!(fences(&drain(&mut s)).is_empty());
    // More stanzas and two requests: one fence after the first returns.
    s.handle_input(
        3,
        format!(
            "{}<r xmlns='urn:xmpp:sm:3'/><r xmlns='urn:xmpp:sm:3'/>",
            messages(2)
        )
        .as_bytes(),
    );
    let out = drain(&mut s);
    assert!(fences(&out).is_empty(), "one fence in flight at a time");
    assert!(!written(&out).contains("<a "));

    s.fence_done(4, first[0]);
    let out = drain(&mut s);
    assert!(written(&out).contains("h='2'"), "{}", written(&out));
    assert!(!written(&out).contains("h='4'"), "4 is not durable yet");
    let second = fences(&out);
    assert_eq!(second.len(), 1);

    s.fence_done(5, second[0]);
    let out = drain(&mut s);
    assert!(written(&out).contains("h='4'"), "{}", written(&out));
    assert!(fences(&out).is_empty());
}

#[test]
fn resumed_reports_only_the_durable_count() {
    let mut old = alice(true);
    let smid = old.sm_id().expect("resumable").to_owned();
    old.handle_input(
        1,
        format!("{}<r xmlns='urn:xmpp:sm:3'/>", messages(2)).as_bytes(),
    );
    let fence = fences(&drain(&mut old));
    assert!(old.transport_lost(2), "hibernates");
    let session = old.take_suspended().expect("resumable session");

    let cfg = ServerStreamConfig {
        require_encryption: false,
        ..Default::default()
    };
    let mut new = ServerStream::new(Arc::new(cfg), Entropy::from_u64(8), 3, None);
    drain(&mut new);
    for part in &LOGIN[..5] {
        new.handle_input(3, part.as_bytes());
        drain(&mut new);
    }
    new.handle_input(
        4,
        format!("<resume xmlns='urn:xmpp:sm:3' previd='{smid}' h='0'/>").as_bytes(),
    );
    assert!(drain(&mut new)
        .iter()
        .any(|o| matches!(o, ConnOutput::Resume { .. })));
    new.resume(5, Some(session));
    let out = drain(&mut new);
    assert!(
        !written(&out).contains("resumed"),
        "<resumed/> waits for the fence in flight: {}",
        written(&out)
    );
    assert!(
        fences(&out).is_empty(),
        "the old stream's fence still counts"
    );
    // Stanzas for the client meanwhile wait behind <resumed/>.
    let msg = Element::parse(
        b"<message xmlns='jabber:client' type='chat' from='bob@localhost/pc' \
          to='alice@localhost/home' id='late'><body>hi</body></message>",
    )
    .expect("test XML");
    new.send_stanza(&msg);
    assert!(written(&drain(&mut new)).is_empty());

    new.fence_done(6, fence[0]);
    let out = drain(&mut new);
    let text = written(&out);
    let resumed = text.find("<resumed").expect("resumed now");
    assert!(text.contains("h='2'"), "{text}");
    let late = text.find("id='late'").expect("the late message follows");
    assert!(resumed < late);
    assert!(
        !text.contains("<a "),
        "the old transport's <r/> is not answered here"
    );
    assert!(out.iter().any(|o| matches!(o, ConnOutput::Resumed(_))));
}

#[test]
fn a_session_with_nothing_pending_resumes_at_once() {
    let mut old = alice(true);
    let smid = old.sm_id().expect("resumable").to_owned();
    assert!(old.transport_lost(1));
    let session = old.take_suspended().expect("resumable session");
    let cfg = ServerStreamConfig {
        require_encryption: false,
        ..Default::default()
    };
    let mut new = ServerStream::new(Arc::new(cfg), Entropy::from_u64(8), 3, None);
    drain(&mut new);
    for part in &LOGIN[..5] {
        new.handle_input(3, part.as_bytes());
        drain(&mut new);
    }
    new.handle_input(
        4,
        format!("<resume xmlns='urn:xmpp:sm:3' previd='{smid}' h='0'/>").as_bytes(),
    );
    drain(&mut new);
    new.resume(5, Some(session));
    let out = drain(&mut new);
    assert!(fences(&out).is_empty());
    assert!(written(&out).contains("<resumed"));
}
