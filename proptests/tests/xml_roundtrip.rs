//! Serialize → parse must give back the same tree. A difference between what
//! the writer means and what the parser reads is how stanzas get smuggled.

use proptest::prelude::*;
use xmpp_core::xml::{Attr, Element, Limits, Node, StreamEvent, StreamParser, XML_NS};

fn ns() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(String::new()),
        Just("jabber:client".to_owned()),
        Just("urn:xmpp:test".to_owned()),
        Just("urn:a&b<c>'\"".to_owned()),
        "urn:[a-z]{1,6}",
        "http://ex\u{e4}mple\\.com/[a-z0-9]{0,4}",
    ]
}

fn name() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-zA-Z_][a-zA-Z0-9._-]{0,8}",
        Just("body".to_owned()),
        Just("n\u{e4}me".to_owned()),
        Just("x\u{4e2d}".to_owned()),
    ]
}

fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        "[ -~]{0,20}",
        "[<>&'\"\r\n\t ]{0,10}",
        Just("]]>".to_owned()),
        Just("h\u{e9}llo \u{1F600}\u{1F4F1} \u{4e2d}\u{6587}".to_owned()),
        "\\PC{0,12}",
    ]
}

fn attrs() -> impl Strategy<Value = Vec<Attr>> {
    let attr = prop_oneof![
        4 => (name(), text()).prop_map(|(name, value)| Attr { ns: Default::default(), name, value }),
        1 => text().prop_map(|value| Attr { ns: XML_NS.into(), name: "lang".to_owned(), value }),
        2 => ("urn:[a-c]", name(), text()).prop_map(|(ns, name, value)| Attr { ns: ns.into(), name, value }),
    ];
    prop::collection::vec(attr, 0..5)
}

fn leaf() -> impl Strategy<Value = Element> {
    (ns(), name(), attrs()).prop_map(|(ns, name, attrs)| Element {
        ns: ns.into(),
        name,
        attrs,
        children: Vec::new(),
    })
}

fn tree() -> impl Strategy<Value = Element> {
    leaf().prop_recursive(5, 48, 6, |inner| {
        (
            leaf(),
            prop::collection::vec(
                prop_oneof![inner.prop_map(Node::Element), text().prop_map(Node::Text)],
                0..6,
            ),
        )
            .prop_map(|(mut el, children)| {
                el.children = children;
                el
            })
    })
}

/// What the parser is expected to return for a generated tree: attributes
/// deduplicated and in (ns, name) order, adjacent text merged, empty text
/// dropped.
fn normalize(el: &Element) -> Element {
    let mut attrs: Vec<Attr> = Vec::new();
    for a in &el.attrs {
        if !attrs.iter().any(|b| b.ns == a.ns && b.name == a.name) {
            attrs.push(a.clone());
        }
    }
    attrs.sort_by(|a, b| (&a.ns, &a.name).cmp(&(&b.ns, &b.name)));
    let mut children: Vec<Node> = Vec::new();
    for c in &el.children {
        match c {
            Node::Element(e) => children.push(Node::Element(normalize(e))),
            Node::Text(t) if t.is_empty() => {}
            Node::Text(t) => match children.last_mut() {
                Some(Node::Text(prev)) => prev.push_str(t),
                _ => children.push(Node::Text(t.clone())),
            },
        }
    }
    Element {
        ns: el.ns.clone(),
        name: el.name.clone(),
        attrs,
        children,
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn standalone_roundtrip(el in tree()) {
        let el = normalize(&el);
        let xml = el.to_xml();
        let back = Element::parse(xml.as_bytes());
        prop_assert_eq!(back.as_ref(), Ok(&el), "{}", xml);
        // Parsing what was parsed and written again is a fixed point.
        let again = back.map(|b| b.to_xml());
        prop_assert_eq!(again.as_deref(), Ok(xml.as_str()));
    }

    #[test]
    fn in_stream_roundtrip(els in prop::collection::vec(tree(), 1..4), split in 1usize..64) {
        let els: Vec<Element> = els.iter().map(normalize).collect();
        let mut doc = b"<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>".to_vec();
        for e in &els {
            e.write_to(&mut doc, "jabber:client");
            doc.extend_from_slice(b"\n ");
        }
        doc.extend_from_slice(b"</stream:stream>");
        let mut p = StreamParser::new(Limits::default());
        let mut got = Vec::new();
        for chunk in doc.chunks(split) {
            p.feed(chunk);
            while let Some(ev) = p.next_event().map_err(|e| TestCaseError::fail(format!("{e}: {}", String::from_utf8_lossy(&doc))))? {
                got.push(ev);
            }
        }
        prop_assert_eq!(got.len(), els.len() + 2);
        prop_assert!(matches!(got.first(), Some(StreamEvent::Open(_))));
        prop_assert_eq!(got.last(), Some(&StreamEvent::Close));
        for (e, ev) in els.iter().zip(&got[1..]) {
            prop_assert_eq!(ev, &StreamEvent::Stanza(e.clone()));
        }
    }

    #[test]
    fn parse_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
        let _ = Element::parse(&bytes);
        let mut p = StreamParser::new(Limits::default());
        p.feed(&bytes);
        while let Ok(Some(_)) = p.next_event() {}
    }

    #[test]
    fn parsed_markup_roundtrips(body in "(<[a-c]( [a-c]='[^<&']{0,4}')?>|</[a-c]>|<[a-c]/>|[a-z &amp;&lt;]{0,5}){0,12}") {
        let doc = format!("<r xmlns='urn:r' xmlns:p='urn:p'><p:x p:y='1'/>{body}</r>");
        if let Ok(el) = Element::parse(doc.as_bytes()) {
            let xml = el.to_xml();
            prop_assert_eq!(Element::parse(xml.as_bytes()), Ok(el), "{}", xml);
        }
    }
}

/// The fuzz target's check, on mutated valid streams: every stanza that
/// parses re-serializes to an equal tree, standalone and in-stream.
fn check_stream(doc: &[u8], chunk: usize) -> Result<(), TestCaseError> {
    let mut p = StreamParser::new(Limits::default());
    for piece in doc.chunks(chunk.max(1)) {
        p.feed(piece);
        loop {
            match p.next_event() {
                Ok(Some(StreamEvent::Stanza(el))) => {
                    let xml = el.to_xml();
                    prop_assert_eq!(Element::parse(xml.as_bytes()), Ok(el.clone()), "{}", xml);
                    let mut inner = b"<s xmlns='jabber:client'>".to_vec();
                    el.write_to(&mut inner, "jabber:client");
                    let mut q = StreamParser::new(Limits::default());
                    q.feed(&inner);
                    prop_assert!(matches!(q.next_event(), Ok(Some(StreamEvent::Open(_)))));
                    prop_assert_eq!(q.next_event(), Ok(Some(StreamEvent::Stanza(el))));
                }
                Ok(Some(_)) => {}
                Ok(None) | Err(_) => break,
            }
        }
    }
    Ok(())
}

const SEED: &str = "<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' xml:lang='en'>\
<message to='a@b' xml:lang='de' xmlns:e='urn:e' e:x='1'><body>h&amp;i &#xD; &#x9;<![CDATA[<x>]]></body>\
<xml:foo a='&apos;&#10;'/><e:y xmlns='' z='q'><w/></e:y></message> \
<iq type='get'><q xmlns='urn:q'>t<r/>u</q></iq></stream:stream>";

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2048))]

    #[test]
    fn mutated_streams_roundtrip(
        edits in prop::collection::vec((any::<prop::sample::Index>(), 0u8..3, prop::sample::select(b"<>/='\"&;:#x ax\r\n\0\xff".to_vec())), 0..6),
        chunk in 1usize..40,
    ) {
        let mut doc = SEED.as_bytes().to_vec();
        for (idx, op, byte) in edits {
            let i = idx.index(doc.len() + 1);
            match op {
                0 => doc.insert(i, byte),
                1 if i < doc.len() => { doc.remove(i); }
                _ if i < doc.len() => doc[i] = byte,
                _ => {}
            }
        }
        check_stream(&doc, chunk)?;
    }
}

#[test]
fn seed_stream_parses() {
    let mut p = StreamParser::new(Limits::default());
    p.feed(SEED.as_bytes());
    let mut n = 0;
    while let Some(ev) = p.next_event().unwrap_or_else(|e| panic!("{e}")) {
        if let StreamEvent::Stanza(el) = ev {
            let xml = el.to_xml();
            assert_eq!(Element::parse(xml.as_bytes()), Ok(el), "{xml}");
        }
        n += 1;
    }
    assert_eq!(n, 4);
}
