//! Transcripts of a BOSH session: alone (the window, holding, pauses,
//! inactivity, terminal errors) and in front of a real c2s
//! [`ServerStream`] (login, restart, messages both ways, terminate, a
//! stream error).

use super::{BoshConfig, BoshOutput, BoshSession, ReqId};
use crate::entropy::Entropy;
use crate::sasl::StoredCredentials;
use crate::storage::StorageResult;
use crate::stream::{ConnOutput, ServerStream, ServerStreamConfig, StreamErrorCondition};
use crate::Element;
use std::sync::Arc;

const BODY: &str = "xmlns='http://jabber.org/protocol/httpbind'";

fn body(attrs: &str, children: &str) -> Element {
    let xml = format!("<body {BODY} {attrs}>{children}</body>");
    Element::parse(xml.as_bytes()).expect("test body parses")
}

fn create(cfg: BoshConfig) -> BoshSession {
    let request = body(
        "rid='100' to='localhost' wait='30' hold='1' ver='1.6' xmlns:xmpp='urn:xmpp:xbosh' xmpp:version='1.0'",
        "",
    );
    BoshSession::create(cfg, "s1".into(), 0, 1, &request).expect("created")
}

/// Outputs split: responses by request, deliveries joined, ends.
#[derive(Debug, Default)]
struct Outs {
    responses: Vec<(ReqId, String)>,
    delivered: String,
    ended: Option<bool>,
}

fn outs(s: &mut BoshSession) -> Outs {
    let mut o = Outs::default();
    while let Some(out) = s.poll_output() {
        match out {
            BoshOutput::Respond { req, body } => o
                .responses
                .push((req, String::from_utf8(body).expect("utf-8"))),
            BoshOutput::Deliver(b) => o.delivered.push_str(&String::from_utf8_lossy(&b)),
            BoshOutput::End { clean } => o.ended = Some(clean),
        }
    }
    o
}

#[test]
fn creation_delivers_a_header_and_answers_with_the_session_attributes() {
    let mut s = create(BoshConfig::default());
    let o = outs(&mut s);
    assert_eq!(
        o.delivered,
        "<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='localhost' version='1.0'>"
    );
    assert!(o.responses.is_empty(), "held for the features");
    s.push(
        0,
        b"<stream:features xmlns:stream='http://etherx.jabber.org/streams'/>",
    );
    assert!(
        outs(&mut s).responses.is_empty(),
        "a burst goes out at the flush"
    );
    s.flush(0);
    let o = outs(&mut s);
    assert_eq!(o.responses.len(), 1);
    let (req, text) = &o.responses[0];
    assert_eq!(*req, 1);
    for attr in [
        "sid='s1'",
        "wait='30'",
        "hold='1'",
        "requests='2'",
        "inactivity='60'",
        "xmpp:version='1.0'",
        "xmpp:restartlogic='true'",
        "from='localhost'",
    ] {
        assert!(text.contains(attr), "{attr} in {text}");
    }
    assert!(
        text.ends_with("<stream:features xmlns:stream='http://etherx.jabber.org/streams'/></body>")
    );
}

#[test]
fn requests_are_processed_in_rid_order_whatever_order_they_arrive_in() {
    let mut s = create(BoshConfig::default());
    outs(&mut s);
    // 102 overtakes 101: it waits for the gap.
    s.handle_request(
        1,
        3,
        body(
            "sid='s1' rid='102'",
            "<message xmlns='jabber:client' id='b'/>",
        ),
    );
    let o = outs(&mut s);
    assert!(o.delivered.is_empty());
    s.handle_request(
        1,
        2,
        body(
            "sid='s1' rid='101'",
            "<message xmlns='jabber:client' id='a'/>",
        ),
    );
    let o = outs(&mut s);
    assert_eq!(
        o.delivered, "<message id='a'/><message id='b'/>",
        "in rid order, jabber:client as the stream's default"
    );
    // Holding one: the creation request and 101 are answered, 102 held.
    let answered: Vec<ReqId> = o.responses.iter().map(|(r, _)| *r).collect();
    assert_eq!(answered, [1, 2]);
}

#[test]
fn unqualified_stanzas_are_moved_to_jabber_client() {
    let mut s = create(BoshConfig::default());
    outs(&mut s);
    s.handle_request(
        1,
        2,
        body(
            "sid='s1' rid='101'",
            "<message to='b@localhost'><body>hi</body></message>",
        ),
    );
    assert_eq!(
        outs(&mut s).delivered,
        "<message to='b@localhost'><body>hi</body></message>",
        "no httpbind namespace leaks into the stream"
    );
}

#[test]
fn a_repeated_rid_gets_the_same_response_and_a_forgotten_one_ends_the_session() {
    let mut s = create(BoshConfig::default());
    outs(&mut s);
    s.push(0, b"<x xmlns='y'/>");
    s.flush(0);
    let first = outs(&mut s).responses;
    assert_eq!(first.len(), 1);
    s.handle_request(1, 7, body("sid='s1' rid='100'", ""));
    let again = outs(&mut s).responses;
    assert_eq!(
        again,
        [(7, first[0].1.clone())],
        "the cached response, byte for byte"
    );
    for rid in 101..=104 {
        s.handle_request(1, 10 + rid, body(&format!("sid='s1' rid='{rid}'"), ""));
    }
    outs(&mut s);
    s.handle_request(1, 99, body("sid='s1' rid='100'", ""));
    let o = outs(&mut s);
    assert!(
        o.responses[0].1.contains("condition='item-not-found'"),
        "{o:?}"
    );
    assert_eq!(o.ended, Some(false));
}

#[test]
fn a_rid_beyond_the_window_ends_the_session() {
    let mut s = create(BoshConfig::default());
    outs(&mut s);
    s.handle_request(1, 2, body("sid='s1' rid='103'", ""));
    let o = outs(&mut s);
    assert!(
        o.responses
            .iter()
            .any(|(r, t)| *r == 2 && t.contains("item-not-found")),
        "{o:?}"
    );
    assert_eq!(o.ended, Some(false));
}

#[test]
fn held_requests_are_answered_empty_after_wait_and_inactivity_ends_the_session() {
    let mut s = create(BoshConfig::default());
    outs(&mut s);
    let wait = s.poll_timeout().expect("a held request has a deadline");
    assert_eq!(wait, 30_000);
    s.handle_timeout(wait);
    let o = outs(&mut s);
    assert_eq!(o.responses.len(), 1);
    assert!(
        o.responses[0].1.contains("sid='s1'"),
        "the first response carries the attributes"
    );
    let inactive = s.poll_timeout().expect("inactivity deadline");
    assert_eq!(inactive, wait + 60_000);
    s.handle_timeout(inactive);
    assert_eq!(outs(&mut s).ended, Some(false), "like a dropped connection");
}

#[test]
fn a_pause_answers_everything_and_stretches_inactivity() {
    let mut s = create(BoshConfig::default());
    outs(&mut s);
    s.handle_request(1_000, 2, body("sid='s1' rid='101' pause='200'", ""));
    let o = outs(&mut s);
    assert_eq!(o.responses.len(), 2);
    assert_eq!(s.poll_timeout(), Some(201_000));
    s.handle_request(2_000, 3, body("sid='s1' rid='102' pause='1000'", ""));
    let o = outs(&mut s);
    assert!(o.responses[0].1.contains("policy-violation"), "{o:?}");
}

#[test]
fn copies_of_a_request_get_the_answer_it_gets() {
    let mut s = create(BoshConfig::default());
    outs(&mut s);
    // 102 overtakes 101 and is sent again meanwhile.
    s.handle_request(
        1,
        2,
        body(
            "sid='s1' rid='102'",
            "<message xmlns='jabber:client' id='x'/>",
        ),
    );
    s.handle_request(
        1,
        3,
        body(
            "sid='s1' rid='102'",
            "<message xmlns='jabber:client' id='x'/>",
        ),
    );
    assert!(outs(&mut s).responses.is_empty());
    s.handle_request(1, 4, body("sid='s1' rid='101'", ""));
    let o = outs(&mut s);
    assert_eq!(o.delivered, "<message id='x'/>", "processed once");
    s.push(1, b"<y xmlns='z'/>");
    s.flush(1);
    let o = outs(&mut s);
    assert_eq!(o.responses.len(), 2, "{o:?}");
    assert_eq!(o.responses[0].1, o.responses[1].1);
    let reqs: Vec<ReqId> = o.responses.iter().map(|(r, _)| *r).collect();
    assert_eq!(reqs, [2, 3]);
}

#[test]
fn acks_report_the_highest_rid_when_answering_an_older_request() {
    let request = body(
        "rid='100' to='localhost' wait='30' hold='1' ack='1' xmlns:xmpp='urn:xmpp:xbosh' xmpp:version='1.0'",
        "",
    );
    let mut s =
        BoshSession::create(BoshConfig::default(), "s1".into(), 0, 1, &request).expect("created");
    outs(&mut s);
    s.handle_request(1, 2, body("sid='s1' rid='101'", ""));
    let o = outs(&mut s);
    assert!(o.responses[0].1.contains("ack='101'"), "{o:?}");
}

// ---- in front of a real c2s stream -------------------------------------

/// A BOSH session and the c2s stream behind it, driven as the runtime
/// does: deliveries into the stream, its writes into the session.
struct Pair {
    bosh: BoshSession,
    stream: ServerStream,
    now: u64,
    responses: Vec<(ReqId, String)>,
    stanzas: Vec<Element>,
    ended: Option<bool>,
}

impl Pair {
    fn new() -> Pair {
        let cfg = ServerStreamConfig::default();
        let stream = ServerStream::new_bosh(Arc::new(cfg), Entropy::from_u64(9), 0, Some(vec![]));
        let bosh = create(BoshConfig::default());
        let mut p = Pair {
            bosh,
            stream,
            now: 0,
            responses: Vec::new(),
            stanzas: Vec::new(),
            ended: None,
        };
        p.pump();
        p
    }

    fn request(&mut self, req: ReqId, attrs: &str, children: &str) {
        self.bosh
            .handle_request(self.now, req, body(attrs, children));
        self.pump();
    }

    fn pump(&mut self) {
        let creds = StoredCredentials::derive("secret", b"salt", 4096).ok();
        loop {
            let mut progress = false;
            while let Some(o) = self.bosh.poll_output() {
                progress = true;
                match o {
                    BoshOutput::Respond { req, body } => self
                        .responses
                        .push((req, String::from_utf8(body).expect("utf-8"))),
                    BoshOutput::Deliver(b) => self.stream.handle_input(self.now, &b),
                    BoshOutput::End { clean } => self.ended = Some(clean),
                }
            }
            while let Some(o) = self.stream.poll_output() {
                progress = true;
                match o {
                    ConnOutput::Write(b) => self.bosh.push(self.now, &b),
                    ConnOutput::Storage { id, .. } => self.stream.handle_storage(
                        self.now,
                        id,
                        StorageResult::Credentials(creds.clone()),
                    ),
                    ConnOutput::CheckPassword { id, check } => {
                        self.stream.handle_password_check(self.now, id, check.run())
                    }
                    ConnOutput::Stanza(el) => self.stanzas.push(el),
                    ConnOutput::Close => self.bosh.stream_closed(self.now),
                    _ => {}
                }
            }
            self.bosh.flush(self.now);
            if !progress {
                return;
            }
        }
    }

    fn answer_to(&self, req: ReqId) -> &str {
        self.responses
            .iter()
            .find(|(r, _)| *r == req)
            .map(|(_, t)| t.as_str())
            .unwrap_or_else(|| panic!("no answer to {req}: {:?}", self.responses))
    }
}

#[test]
fn a_client_logs_in_restarts_binds_chats_and_terminates_over_bosh() {
    let mut p = Pair::new();
    let features = p.answer_to(1);
    assert!(
        features.contains("<mechanism>PLAIN</mechanism>"),
        "{features}"
    );
    assert!(!features.contains("starttls"), "{features}");
    p.request(
        2,
        "sid='s1' rid='101'",
        "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>AGFsaWNlAHNlY3JldA==</auth>",
    );
    assert!(p
        .answer_to(2)
        .contains("<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>"));
    p.request(
        3,
        "sid='s1' rid='102' xmlns:xmpp='urn:xmpp:xbosh' xmpp:restart='true'",
        "",
    );
    assert!(p.answer_to(3).contains("urn:ietf:params:xml:ns:xmpp-bind"));
    p.request(
        4,
        "sid='s1' rid='103'",
        "<iq xmlns='jabber:client' type='set' id='b'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>web</resource></bind></iq>",
    );
    assert!(p.answer_to(4).contains("<jid>alice@localhost/web</jid>"));
    assert!(p.answer_to(4).contains("<iq xmlns='jabber:client'"));

    p.request(
        5,
        "sid='s1' rid='104'",
        "<message xmlns='jabber:client' to='bob@localhost'><body>hi</body></message>",
    );
    assert_eq!(p.stanzas.len(), 1, "to the hub");
    assert_eq!(p.stanzas[0].attr("from"), Some("alice@localhost/web"));
    // 105 held; a message for Alice answers it.
    p.request(6, "sid='s1' rid='105'", "");
    let incoming = Element::parse(
        b"<message xmlns='jabber:client' from='bob@localhost/x' to='alice@localhost/web'><body>back</body></message>",
    )
    .expect("parses");
    p.stream.send_stanza(&incoming);
    p.pump();
    assert!(
        p.answer_to(6).contains("<body>back</body>"),
        "{:?}",
        p.responses
    );

    p.request(
        7,
        "sid='s1' rid='106' type='terminate'",
        "<presence xmlns='jabber:client' type='unavailable'/>",
    );
    assert!(p.answer_to(7).contains("type='terminate'"));
    assert!(
        p.stanzas.iter().any(|s| s.name == "presence"),
        "the payload before the end"
    );
    assert_eq!(p.ended, Some(true));
    assert!(p.stream.is_closed(), "a clean close, no hibernation");
}

#[test]
fn a_stream_error_ends_the_session_with_remote_stream_error() {
    let mut p = Pair::new();
    p.request(2, "sid='s1' rid='101'", "");
    p.stream.close(Some(StreamErrorCondition::SystemShutdown));
    p.pump();
    let last = &p.responses.last().expect("an answer").1;
    assert!(
        last.contains("type='terminate'") && last.contains("condition='remote-stream-error'"),
        "{last}"
    );
    assert!(
        last.contains(
            "<stream:error xmlns:stream='http://etherx.jabber.org/streams'><system-shutdown"
        ),
        "{last}"
    );
    assert_eq!(p.ended, Some(true));
}
