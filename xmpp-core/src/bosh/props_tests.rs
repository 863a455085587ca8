//! The `rid` window under any network: requests overtaking each other,
//! retransmitted by the client, duplicated by the network, answered late.
//! Whatever the interleaving, every stanza reaches the stream exactly
//! once and in order, and the session survives.

use super::{BoshConfig, BoshOutput, BoshSession, ReqId};
use crate::Element;
use proptest::prelude::*;
use std::collections::{BTreeSet, HashMap};

/// One step of the network and the client.
#[derive(Debug, Clone)]
enum Step {
    /// The client sends its next request (if it may: fewer than
    /// `requests` unanswered).
    Send,
    /// The network delivers the in-flight request at this index (mod len).
    Deliver(usize),
    /// The client gives up on an unanswered request and sends it again.
    Retransmit(usize),
    /// The network delivers a copy of an in-flight request.
    Duplicate(usize),
    /// Time passes beyond `wait`: what the network carries arrives (last
    /// sent first), then held requests are answered.
    Wait,
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        3 => Just(Step::Send),
        4 => any::<usize>().prop_map(Step::Deliver),
        1 => any::<usize>().prop_map(Step::Retransmit),
        1 => any::<usize>().prop_map(Step::Duplicate),
        1 => Just(Step::Wait),
    ]
}

fn body(rid: u64, children: &str) -> Element {
    let xml = format!(
        "<body xmlns='http://jabber.org/protocol/httpbind' sid='p' rid='{rid}'>{children}</body>"
    );
    Element::parse(xml.as_bytes()).expect("parses")
}

/// The ids of the `<message/>`s delivered to the stream, in order.
fn message_ids(delivered: &str) -> Vec<u64> {
    delivered
        .split("<message id='")
        .skip(1)
        .filter_map(|rest| rest.split('\'').next())
        .filter_map(|id| id.parse().ok())
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn every_stanza_arrives_once_in_order(steps in proptest::collection::vec(step(), 1..200)) {
        let create = Element::parse(
            b"<body xmlns='http://jabber.org/protocol/httpbind' rid='1000' to='localhost' hold='1' wait='60'/>",
        ).expect("parses");
        let mut s = BoshSession::create(BoshConfig::default(), "p".into(), 0, 0, &create).expect("created");
        let requests = s.requests() as usize;
        let mut now = 0;
        let mut next_req: ReqId = 1;
        let mut next_rid = 1001;
        // Requests the client sent and has no answer for: rid -> payload.
        let mut unanswered: HashMap<u64, String> = HashMap::new();
        unanswered.insert(1000, String::new());
        let mut req_rid: HashMap<ReqId, u64> = HashMap::from([(0, 1000)]);
        // What the network carries: (req id, rid, payload).
        let mut in_flight: Vec<(ReqId, u64, String)> = Vec::new();
        let mut delivered = String::new();
        let mut sent_ids = Vec::new();
        for step in steps {
            match step {
                Step::Send if unanswered.len() < requests => {
                    let id = sent_ids.len() as u64 + 1;
                    sent_ids.push(id);
                    let payload = format!("<message xmlns='jabber:client' id='{id}'/>");
                    unanswered.insert(next_rid, payload.clone());
                    in_flight.push((next_req, next_rid, payload));
                    req_rid.insert(next_req, next_rid);
                    next_req += 1;
                    next_rid += 1;
                }
                Step::Send => {}
                Step::Deliver(i) if !in_flight.is_empty() => {
                    let (req, rid, payload) = in_flight.remove(i % in_flight.len());
                    s.handle_request(now, req, body(rid, &payload));
                }
                Step::Deliver(_) => {}
                Step::Retransmit(i) if !unanswered.is_empty() => {
                    let rids: BTreeSet<u64> = unanswered.keys().copied().collect();
                    let rid = *rids.iter().nth(i % rids.len()).expect("non-empty");
                    let payload = unanswered[&rid].clone();
                    in_flight.push((next_req, rid, payload));
                    req_rid.insert(next_req, rid);
                    next_req += 1;
                }
                Step::Retransmit(_) => {}
                Step::Duplicate(i) if !in_flight.is_empty() => {
                    let (_, rid, payload) = in_flight[i % in_flight.len()].clone();
                    in_flight.push((next_req, rid, payload));
                    req_rid.insert(next_req, rid);
                    next_req += 1;
                }
                Step::Duplicate(_) => {}
                Step::Wait => {
                    while let Some((req, rid, payload)) = in_flight.pop() {
                        s.handle_request(now, req, body(rid, &payload));
                    }
                    now += 61_000;
                    s.handle_timeout(now);
                }
            }
            while let Some(out) = s.poll_output() {
                match out {
                    BoshOutput::Respond { req, body } => {
                        let text = String::from_utf8(body).expect("utf-8");
                        prop_assert!(!text.contains("terminate"), "terminated: {text}");
                        if let Some(&rid) = req_rid.get(&req) {
                            unanswered.remove(&rid);
                            // The client has every answer below its lowest
                            // unanswered rid: it closes the connections
                            // still carrying those, and a request on a
                            // closed connection never arrives. (A copy
                            // arriving after the server forgot its response
                            // would rightly end the session: §14.3.)
                            let low = unanswered.keys().min().copied().unwrap_or(next_rid);
                            in_flight.retain(|(_, r, _)| *r >= low);
                        }
                    }
                    BoshOutput::Deliver(b) => delivered.push_str(&String::from_utf8_lossy(&b)),
                    BoshOutput::End { clean } => prop_assert!(false, "ended (clean: {clean})"),
                }
            }
            // As every BOSH client does, one with nothing unanswered sends
            // an empty request at once, so the server always has one to
            // answer with (and inactivity never strikes in this model).
            if unanswered.is_empty() {
                unanswered.insert(next_rid, String::new());
                in_flight.push((next_req, next_rid, String::new()));
                req_rid.insert(next_req, next_rid);
                next_req += 1;
                next_rid += 1;
            }
        }
        let ids = message_ids(&delivered);
        // Exactly once, in order: a prefix of what was sent (the rest may
        // still be in flight or waiting behind a gap).
        prop_assert_eq!(&ids[..], &sent_ids[..ids.len()]);
    }
}
