//! Whatever a peer sends, the tree the parser builds for one stanza costs at
//! most a small constant times the stanza's bytes. Bytes alone never bounded
//! memory: a long namespace inherited by thousands of empty children, text
//! between empty elements and attribute floods all multiply their input. The
//! shapes below are the adversarial ones; each either parses within the
//! budget or is refused by a limit.

use proptest::prelude::*;
use xmpp_core::xml::{Limits, StreamEvent, StreamParser, XmlError};

/// Heap bytes per input byte a parsed stanza may cost at most. The worst
/// shape is `x<a/>` repeated: five bytes of input, an element and a text
/// node in memory (two 96-byte nodes and two one-byte strings), measured at
/// 32x; before namespaces were shared the bomb of the hostile tests cost
/// 7,000x.
const MAX_COST_PER_BYTE: usize = 40;

/// Fixed overhead of any stanza (the outermost element's own vectors).
const BASE_COST: usize = 1024;

const HEADER: &str = "<stream:stream xmlns='jabber:client' \
     xmlns:stream='http://etherx.jabber.org/streams' to='localhost' version='1.0'>";

/// Feed one stanza inside a stream and report its cost or the limit it hit.
fn parse_stanza(stanza: &str, limits: Limits) -> Result<usize, XmlError> {
    let mut p = StreamParser::new(limits);
    p.feed(HEADER.as_bytes());
    p.feed(stanza.as_bytes());
    loop {
        match p.next_event()? {
            Some(StreamEvent::Stanza(el)) => return Ok(el.heap_bytes()),
            Some(_) => continue,
            None => return Err(XmlError::Incomplete),
        }
    }
}

fn assert_within_budget(stanza: &str, limits: Limits) -> Result<(), TestCaseError> {
    match parse_stanza(stanza, limits) {
        Ok(cost) => prop_assert!(
            cost <= BASE_COST + MAX_COST_PER_BYTE * stanza.len(),
            "{} bytes of input cost {} bytes ({}x)",
            stanza.len(),
            cost,
            cost / stanza.len().max(1)
        ),
        Err(XmlError::Incomplete) => prop_assert!(false, "stanza did not complete"),
        // Refused by a limit or as malformed: it cost nothing lasting.
        Err(_) => {}
    }
    Ok(())
}

/// Adversarial stanzas: repeated cheap constructs under a namespace of
/// chosen length, with chosen counts.
fn hostile() -> impl Strategy<Value = String> {
    let ns = (1usize..2000).prop_map(|n| format!("urn:x:{}", "n".repeat(n)));
    let shape = prop_oneof![
        Just("<a/>"),
        Just("x<a/>"),
        Just("<a></a>"),
        Just("<p:a/>"),
        Just("<a p:b='' p:c=''/>"),
        Just("<a><b/></a>"),
        Just("<a b='' c='' d='' e=''/>"),
        Just("<a xmlns='urn:y'/>"),
    ];
    (ns, shape, 0usize..20_000, 0usize..80).prop_map(|(ns, shape, count, attrs)| {
        let extra: String = (0..attrs).map(|i| format!(" z{i}=''")).collect();
        format!(
            "<message xmlns='{ns}' xmlns:p='{ns}'{extra}>{}</message>",
            shape.repeat(count)
        )
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn hostile_stanzas_cost_a_bounded_multiple_of_their_bytes(stanza in hostile()) {
        assert_within_budget(&stanza, Limits::default())?;
    }

    #[test]
    fn hostile_stanzas_before_authentication_too(stanza in hostile()) {
        assert_within_budget(&stanza, Limits::default().unauthenticated(16 * 1024))?;
    }
}

#[test]
fn the_namespace_sibling_bomb_is_refused_early() {
    let ns = format!("urn:x:{}", "n".repeat(32 * 1024 - 6));
    let stanza = format!("<message xmlns='{ns}'>{}</message>", "<a/>".repeat(55_000));
    // The namespace alone passes the limit.
    assert!(matches!(
        parse_stanza(&stanza, Limits::default()),
        Err(XmlError::NamespaceTooLong { .. })
    ));
    // With a generous namespace limit the children limit trips instead.
    let lax = Limits {
        max_namespace_bytes: 64 * 1024,
        ..Limits::default()
    };
    assert!(matches!(
        parse_stanza(&stanza, lax),
        Err(XmlError::TooManyChildren { .. })
    ));
}

#[test]
fn shared_namespaces_cost_once() {
    let ns = format!("urn:x:{}", "n".repeat(1000));
    let stanza = format!("<message xmlns='{ns}'>{}</message>", "<a/>".repeat(4000));
    let cost = parse_stanza(&stanza, Limits::default()).expect("within limits");
    // 4,000 copies of the namespace would be 4 MB.
    assert!(cost < 1_000_000, "cost {cost}");
}
