//! Parser and serializer tests, including the RFC 6120 §11 restrictions.

use super::*;

const HEADER: &str = "<?xml version='1.0'?><stream:stream xmlns='jabber:client' \
     xmlns:stream='http://etherx.jabber.org/streams' to='example.com' version='1.0' xml:lang='en'>";

const STREAM_NS: &str = "http://etherx.jabber.org/streams";

fn events(input: &[u8], limits: Limits) -> Result<Vec<StreamEvent>, XmlError> {
    let mut p = StreamParser::new(limits);
    p.feed(input);
    let mut out = Vec::new();
    while let Some(ev) = p.next_event()? {
        out.push(ev);
    }
    Ok(out)
}

fn stream_err(body: &str) -> XmlError {
    let doc = format!("{HEADER}{body}");
    match events(doc.as_bytes(), Limits::default()) {
        Ok(evs) => panic!("expected an error, got {evs:?}"),
        Err(e) => e,
    }
}

fn roundtrip(el: &Element) {
    let xml = el.to_xml();
    let back = Element::parse(xml.as_bytes()).unwrap_or_else(|e| panic!("{xml}: {e}"));
    assert_eq!(&back, el, "{xml}");
    let mut inner = Vec::new();
    el.write_to(&mut inner, "jabber:client");
    let doc = [HEADER.as_bytes(), &inner].concat();
    let evs = events(&doc, Limits::default()).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(evs.get(1), Some(&StreamEvent::Stanza(el.clone())));
}

#[test]
fn stream_header_and_stanzas() {
    let doc =
        format!("{HEADER}<message to='a@b' type='chat'><body>hi</body></message></stream:stream>");
    let evs = events(doc.as_bytes(), Limits::default()).unwrap();
    assert_eq!(evs.len(), 3);
    let StreamEvent::Open(h) = &evs[0] else {
        panic!("{evs:?}")
    };
    assert!(h.is(STREAM_NS, "stream"));
    assert_eq!(h.attr("to"), Some("example.com"));
    assert_eq!(h.attr_ns(XML_NS, "lang"), Some("en"));
    assert!(h.children.is_empty());
    let StreamEvent::Stanza(m) = &evs[1] else {
        panic!("{evs:?}")
    };
    assert!(m.is("jabber:client", "message"));
    assert_eq!(m.child_text("jabber:client", "body").as_deref(), Some("hi"));
    assert_eq!(evs[2], StreamEvent::Close);
}

#[test]
fn billion_laughs_doctype_rejected() {
    let doc = "<?xml version='1.0'?><!DOCTYPE lolz [<!ENTITY lol 'lol'>\
               <!ENTITY lol2 '&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;'>]>\
               <stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>";
    let e = events(doc.as_bytes(), Limits::default()).unwrap_err();
    assert_eq!(e.condition(), "restricted-xml", "{e}");
    let e = stream_err("<!ENTITY x 'y'>");
    assert_eq!(e.condition(), "restricted-xml", "{e}");
    let e = stream_err("<message><body>&lol2;</body></message>");
    assert_eq!(e.condition(), "not-well-formed", "{e}");
    let e = Element::parse(b"<!DOCTYPE a><a/>").unwrap_err();
    assert_eq!(e.condition(), "restricted-xml", "{e}");
}

#[test]
fn processing_instruction_rejected() {
    let e = stream_err("<?evil foo?>");
    assert_eq!(e.condition(), "restricted-xml", "{e}");
    let e = stream_err("<message><?evil foo?></message>");
    assert_eq!(e.condition(), "restricted-xml", "{e}");
    let e = events(b"<?xml-stylesheet href='x'?><a/>", Limits::default()).unwrap_err();
    assert_eq!(e.condition(), "restricted-xml", "{e}");
}

#[test]
fn comment_rejected() {
    let e = stream_err("<!-- hi -->");
    assert_eq!(e.condition(), "restricted-xml", "{e}");
    let e = stream_err("<message><!-- hi --></message>");
    assert_eq!(e.condition(), "restricted-xml", "{e}");
}

#[test]
fn unbound_prefix_rejected() {
    let e = stream_err("<foo:message/>");
    assert_eq!(e.condition(), "not-well-formed", "{e}");
    let e = stream_err("<message foo:bar='x'/>");
    assert_eq!(e.condition(), "not-well-formed", "{e}");
}

#[test]
fn mismatched_tags_rejected() {
    let e = stream_err("<message></iq>");
    assert_eq!(e.condition(), "not-well-formed", "{e}");
}

#[test]
fn error_state_is_sticky() {
    let mut p = StreamParser::new(Limits::default());
    p.feed(format!("{HEADER}<a></b>").as_bytes());
    assert!(matches!(p.next_event(), Ok(Some(StreamEvent::Open(_)))));
    let e1 = p.next_event().unwrap_err();
    p.feed(b"<message/>");
    assert_eq!(p.next_event().unwrap_err(), e1);
    assert_eq!(p.next_event().unwrap_err(), e1);
}

#[test]
fn oversized_stanza_rejected() {
    let limits = Limits {
        max_stanza_bytes: 1024,
        max_depth: 32,
        ..Limits::default()
    };
    let big = format!(
        "{HEADER}<message><body>{}</body></message>",
        "x".repeat(2000)
    );
    let e = events(big.as_bytes(), limits).unwrap_err();
    assert_eq!(e, XmlError::StanzaTooLarge { limit: 1024 });
    assert_eq!(e.condition(), "policy-violation");
    // Many small stanzas are fine.
    let many = format!(
        "{HEADER}{}",
        "<message><body>hello</body></message>".repeat(200)
    );
    assert_eq!(events(many.as_bytes(), limits).unwrap().len(), 201);
}

#[test]
fn unclosed_stanza_rejected_while_arriving() {
    let limits = Limits {
        max_stanza_bytes: 4096,
        max_depth: 32,
        ..Limits::default()
    };
    // Endless text.
    let mut p = StreamParser::new(limits);
    p.feed(HEADER.as_bytes());
    p.feed(b"<message><body>");
    let chunk = [b'a'; 1000];
    let mut failed = None;
    for i in 0..100 {
        p.feed(&chunk);
        match p.next_event() {
            Ok(Some(StreamEvent::Open(_))) | Ok(None) => {}
            Ok(Some(ev)) => panic!("{ev:?}"),
            Err(e) => {
                failed = Some((i, e));
                break;
            }
        }
    }
    let (i, e) = failed.expect("unbounded stanza accepted");
    assert!(i <= 5, "rejected too late: {i}");
    assert_eq!(e.condition(), "policy-violation");

    // Endless attribute value.
    let mut p = StreamParser::new(limits);
    p.feed(HEADER.as_bytes());
    p.feed(b"<message to='");
    let mut failed = false;
    for _ in 0..100 {
        p.feed(&chunk);
        if let Err(e) = p.next_event() {
            assert_eq!(e.condition(), "policy-violation", "{e}");
            failed = true;
            break;
        }
    }
    assert!(failed);
    assert!(p.pending_bytes() < 100_000);

    // Endless list of attributes.
    let mut p = StreamParser::new(limits);
    p.feed(HEADER.as_bytes());
    p.feed(b"<message");
    let mut failed = false;
    for i in 0..10_000 {
        p.feed(format!(" a{i}='x'").as_bytes());
        if let Err(e) = p.next_event() {
            assert_eq!(e.condition(), "policy-violation", "{e}");
            failed = true;
            break;
        }
    }
    assert!(failed);

    // Endless stream header.
    let mut p = StreamParser::new(limits);
    p.feed(b"<stream:stream xmlns:stream='http://etherx.jabber.org/streams' a='");
    let mut failed = false;
    for _ in 0..100 {
        p.feed(&chunk);
        if let Err(e) = p.next_event() {
            assert_eq!(e.condition(), "policy-violation", "{e}");
            failed = true;
            break;
        }
    }
    assert!(failed);
}

#[test]
fn too_deep_rejected() {
    let limits = Limits {
        max_stanza_bytes: 1 << 20,
        max_depth: 4,
        ..Limits::default()
    };
    // Stanza at depth 1, children down to depth 4: allowed.
    let ok = format!("{HEADER}<a><b><c><d/></c></b></a>");
    assert_eq!(events(ok.as_bytes(), limits).unwrap().len(), 2);
    let deep = format!("{HEADER}<a><b><c><d><e/></d></c></b></a>");
    let e = events(deep.as_bytes(), limits).unwrap_err();
    assert_eq!(e, XmlError::TooDeep { limit: 4 });
    assert_eq!(e.condition(), "policy-violation");
    // Default limit, unclosed nesting.
    let deep = format!("{HEADER}{}", "<a>".repeat(100));
    assert_eq!(
        events(deep.as_bytes(), Limits::default()).unwrap_err(),
        XmlError::TooDeep { limit: 32 }
    );
    let deep = "<a>".repeat(40) + &"</a>".repeat(40);
    assert_eq!(
        Element::parse(deep.as_bytes()).unwrap_err(),
        XmlError::TooDeep { limit: 32 }
    );
}

#[test]
fn byte_by_byte_gives_identical_events() {
    let doc = format!(
        "{HEADER}  <message to='a@b' xml:lang='de'><body>h\u{e9}llo &amp; \u{1F600} \
         <![CDATA[<x>]]></body><x xmlns='urn:x' q='1'><y/></x></message>\n\
         <iq type='get' id='1'><ping xmlns='urn:xmpp:ping'/></iq> </stream:stream>"
    );
    let whole = events(doc.as_bytes(), Limits::default()).unwrap();
    assert_eq!(whole.len(), 4);
    let mut p = StreamParser::new(Limits::default());
    let mut split = Vec::new();
    for b in doc.as_bytes() {
        p.feed(std::slice::from_ref(b));
        while let Some(ev) = p.next_event().unwrap() {
            split.push(ev);
        }
    }
    assert_eq!(split, whole);
    // Text arriving in pieces is one node.
    let StreamEvent::Stanza(m) = &whole[1] else {
        panic!()
    };
    let body = m.child("jabber:client", "body").unwrap();
    assert_eq!(body.children.len(), 1);
    assert_eq!(body.text(), "h\u{e9}llo & \u{1F600} <x>");
}

#[test]
fn xml_lang_preserved() {
    let doc = format!("{HEADER}<message xml:lang='fr'><body xml:lang='de'>x</body></message>");
    let evs = events(doc.as_bytes(), Limits::default()).unwrap();
    let StreamEvent::Stanza(m) = &evs[1] else {
        panic!()
    };
    assert_eq!(m.attr_ns(XML_NS, "lang"), Some("fr"));
    let body = m.first_element().unwrap();
    assert_eq!(body.attr_ns(XML_NS, "lang"), Some("de"));
    let mut out = Vec::new();
    m.write_to(&mut out, "jabber:client");
    let s = String::from_utf8(out).unwrap();
    assert!(s.contains("xml:lang='fr'"), "{s}");
    roundtrip(m);
}

#[test]
fn unknown_payloads_preserved() {
    let doc = format!(
        "{HEADER}<message weird='1' xmlns:e='urn:ext' e:flag='yes'>\
         <x xmlns='urn:unknown' a='b'><deep>t<more/>u</deep></x>\
         <e:thing e:k='v' plain=''/></message>"
    );
    let evs = events(doc.as_bytes(), Limits::default()).unwrap();
    let StreamEvent::Stanza(m) = &evs[1] else {
        panic!()
    };
    assert_eq!(m.attr("weird"), Some("1"));
    assert_eq!(m.attr_ns("urn:ext", "flag"), Some("yes"));
    let x = m.child("urn:unknown", "x").unwrap();
    assert_eq!(x.attr("a"), Some("b"));
    let deep = x.child("urn:unknown", "deep").unwrap();
    assert_eq!(deep.children.len(), 3);
    let thing = m.child("urn:ext", "thing").unwrap();
    assert_eq!(thing.attr_ns("urn:ext", "k"), Some("v"));
    assert_eq!(thing.attr("plain"), Some(""));
    roundtrip(m);
}

#[test]
fn whitespace_keepalives_ignored() {
    let doc = format!("{HEADER} \n\t\r\n <presence/> \n \n<presence/>  ");
    let evs = events(doc.as_bytes(), Limits::default()).unwrap();
    assert_eq!(evs.len(), 3);
    // Whitespace does not count towards the next stanza's size.
    let limits = Limits {
        max_stanza_bytes: 100,
        max_depth: 8,
        ..Limits::default()
    };
    let mut p = StreamParser::new(limits);
    p.feed(
        b"<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>",
    );
    assert!(matches!(p.next_event(), Ok(Some(StreamEvent::Open(_)))));
    for _ in 0..50 {
        p.feed(b"  ");
        assert_eq!(p.next_event(), Ok(None));
        p.feed(b"<presence/>");
        assert!(matches!(p.next_event(), Ok(Some(StreamEvent::Stanza(_)))));
    }
}

#[test]
fn text_at_stream_level_rejected() {
    let e = stream_err(" hello <presence/>");
    assert_eq!(e, XmlError::TextAtStreamLevel);
    assert_eq!(e.condition(), "not-well-formed");
}

#[test]
fn pending_bytes_after_starttls() {
    let mut p = StreamParser::new(Limits::default());
    p.feed(HEADER.as_bytes());
    assert!(matches!(p.next_event(), Ok(Some(StreamEvent::Open(_)))));
    p.feed(b"<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/><iq type='set' id='inj'/>");
    let Ok(Some(StreamEvent::Stanza(st))) = p.next_event() else {
        panic!()
    };
    assert!(st.is("urn:ietf:params:xml:ns:xmpp-tls", "starttls"));
    assert!(p.pending_bytes() > 0);
    p.clear();
    assert_eq!(p.pending_bytes(), 0);
    // A fresh stream starts after clear.
    p.feed(HEADER.as_bytes());
    assert!(matches!(p.next_event(), Ok(Some(StreamEvent::Open(_)))));
}

#[test]
fn restart_keeps_unconsumed_bytes() {
    let mut p = StreamParser::new(Limits::default());
    p.feed(HEADER.as_bytes());
    assert!(matches!(p.next_event(), Ok(Some(StreamEvent::Open(_)))));
    let full = format!("<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>{HEADER}<presence/>");
    p.feed(full.as_bytes());
    assert!(matches!(p.next_event(), Ok(Some(StreamEvent::Stanza(_)))));
    p.restart();
    assert!(matches!(p.next_event(), Ok(Some(StreamEvent::Open(_)))));
    assert!(matches!(p.next_event(), Ok(Some(StreamEvent::Stanza(_)))));
}

#[test]
fn encoding_errors() {
    let e = events(b"\xFE\xFF\x00<\x00a", Limits::default()).unwrap_err();
    assert_eq!(e.condition(), "unsupported-encoding");
    let e = events(
        b"<?xml version='1.0' encoding='ISO-8859-1'?><a>",
        Limits::default(),
    )
    .unwrap_err();
    assert_eq!(e.condition(), "unsupported-encoding", "{e}");
}

#[test]
fn invalid_utf8_rejected() {
    let mut doc = HEADER.as_bytes().to_vec();
    doc.extend_from_slice(b"<message>\xff\xfe</message>");
    let e = events(&doc, Limits::default()).unwrap_err();
    assert_eq!(e.condition(), "not-well-formed", "{e}");
}

#[test]
fn close_event() {
    let doc = format!("{HEADER}</stream:stream>");
    let evs = events(doc.as_bytes(), Limits::default()).unwrap();
    assert_eq!(evs.last(), Some(&StreamEvent::Close));
}

#[test]
fn serializer_escapes_and_namespaces() {
    let el = Element::new("jabber:client", "message")
        .with_attr("to", "a'b\"c<d>&e\tf\ng\rh")
        .with_child(Element::new("jabber:client", "body").with_text("<&>'\" \r\n \u{1F4F1} ]]>"))
        .with_child(Element::new("", "nons"))
        .with_child(Element::new("urn:x", "x").with_child(Element::new("urn:x", "y")));
    let mut out = Vec::new();
    el.write_to(&mut out, "jabber:client");
    let s = String::from_utf8(out).unwrap();
    assert!(s.starts_with("<message to='"), "{s}");
    assert!(s.contains("<body>"), "{s}");
    assert!(s.contains("<nons xmlns=''/>"), "{s}");
    assert!(s.contains("<x xmlns='urn:x'><y/></x>"), "{s}");
    roundtrip(&el);
    assert!(el.to_xml().starts_with("<message xmlns='jabber:client'"));
}

#[test]
fn namespaced_attributes_roundtrip() {
    let mut el = Element::new("urn:a", "a");
    for (ns, name, value) in [
        ("urn:p", "x", "1"),
        ("urn:q", "x", "2"),
        ("urn:p", "y", "3"),
        (XML_NS, "lang", "en"),
        ("urn:a", "z", "4"),
        ("", "plain", "5"),
    ] {
        el.attrs.push(Attr {
            ns: ns.into(),
            name: name.into(),
            value: value.into(),
        });
    }
    el.attrs
        .sort_by(|a, b| (&a.ns, &a.name).cmp(&(&b.ns, &b.name)));
    el.children.push(Node::Element(
        Element::new("urn:a", "b").with_attr("k", "v"),
    ));
    roundtrip(&el);
}

#[test]
fn xml_namespace_element_roundtrip() {
    // `<xml:foo/>` is legal; the default namespace must never be bound to
    // the xml namespace when writing it back.
    let doc = format!("{HEADER}<message><xml:foo><bar/></xml:foo></message>");
    match events(doc.as_bytes(), Limits::default()) {
        Ok(evs) => {
            let StreamEvent::Stanza(m) = &evs[1] else {
                panic!()
            };
            roundtrip(m);
        }
        Err(e) => assert_eq!(e.condition(), "not-well-formed"),
    }
}

#[test]
fn element_parse_rejects_garbage() {
    assert!(Element::parse(b"").is_err());
    assert!(Element::parse(b"<a>").is_err());
    assert!(Element::parse(b"<a/><b/>").is_err());
    assert!(Element::parse(b"<a/>junk").is_err());
    assert!(Element::parse(b"text").is_err());
    assert!(Element::parse(b"<?xml version='1.0'?>\n<a xmlns='urn:x'/>\n").is_ok());
}

#[test]
fn escape_functions() {
    let mut out = Vec::new();
    escape_text("a<b>&c'\"\r", &mut out);
    assert_eq!(out, b"a&lt;b&gt;&amp;c'\"&#xD;");
    out.clear();
    escape_attr("a<b>&c'\"\t\n\r", &mut out);
    assert_eq!(out, b"a&lt;b&gt;&amp;c&apos;&quot;&#x9;&#xA;&#xD;");
}

#[test]
fn attribute_limit() {
    let limits = Limits {
        max_attributes: 3,
        ..Limits::default()
    };
    let ok = format!("{HEADER}<message a='1' b='2' c='3'/>");
    assert!(events(ok.as_bytes(), limits).is_ok());
    let flood = format!("{HEADER}<message><x a='1' b='2' c='3' d='4'/></message>");
    let err = events(flood.as_bytes(), limits).unwrap_err();
    assert_eq!(err, XmlError::TooManyAttributes { limit: 3 });
    assert_eq!(err.condition(), "policy-violation");
}

#[test]
fn children_and_node_limits() {
    let limits = Limits {
        max_children: 4,
        max_nodes: 8,
        ..Limits::default()
    };
    let four = format!("{HEADER}<message><a/>t<b/><c/></message>");
    assert!(events(four.as_bytes(), limits).is_ok());
    let five = format!("{HEADER}<message><a/>t<b/><c/>u</message>");
    assert_eq!(
        events(five.as_bytes(), limits).unwrap_err(),
        XmlError::TooManyChildren { limit: 4 }
    );
    // Eight nodes in all: the message, two children with two each, one more.
    let deep = format!("{HEADER}<message><a><b/><c/></a><d><e/><f/></d><g/></message>");
    assert!(events(deep.as_bytes(), limits).is_ok());
    let nine = format!("{HEADER}<message><a><b/><c/></a><d><e/><f/></d><g><h/></g></message>");
    assert_eq!(
        events(nine.as_bytes(), limits).unwrap_err(),
        XmlError::TooManyNodes { limit: 8 }
    );
    // The count starts again with every stanza.
    let two = format!("{HEADER}<message><a/><b/></message><message><a/><b/></message>");
    assert!(events(two.as_bytes(), limits).is_ok());
}

#[test]
fn text_split_by_the_parser_is_one_node() {
    let limits = Limits {
        max_children: 1,
        ..Limits::default()
    };
    let doc = format!("{HEADER}<message>{}</message>", "x".repeat(20_000));
    let mut p = StreamParser::new(limits);
    // Byte-sized feeds make rxml report the text in many pieces.
    for chunk in doc.as_bytes().chunks(7) {
        p.feed(chunk);
        while p.next_event().expect("one text node").is_some() {}
    }
}

#[test]
fn namespace_limit() {
    let limits = Limits {
        max_namespace_bytes: 64,
        ..Limits::default()
    };
    let long = "u".repeat(65);
    let el = format!("{HEADER}<message><x xmlns='{long}'/></message>");
    assert_eq!(
        events(el.as_bytes(), limits).unwrap_err(),
        XmlError::NamespaceTooLong { limit: 64 }
    );
    let attr = format!("{HEADER}<message xmlns:p='{long}' p:a='1'/>");
    assert_eq!(
        events(attr.as_bytes(), limits).unwrap_err(),
        XmlError::NamespaceTooLong { limit: 64 }
    );
}

#[test]
fn parsed_children_share_their_namespace() {
    let doc = format!("{HEADER}<message><x xmlns='urn:shared'><a/><b/></x></message>");
    let evs = events(doc.as_bytes(), Limits::default()).expect("parses");
    let StreamEvent::Stanza(msg) = &evs[1] else {
        panic!("{evs:?}")
    };
    let x = msg.first_element().expect("x");
    let ptrs: Vec<_> = x.elements().map(|c| c.ns.as_str().as_ptr()).collect();
    assert_eq!(ptrs, vec![x.ns.as_str().as_ptr(); 2]);
}

#[test]
fn unauthenticated_limits_are_lifted_by_restart_with() {
    let full = Limits::default();
    let mut p = StreamParser::new(full.unauthenticated(1024));
    p.feed(HEADER.as_bytes());
    assert!(matches!(p.next_event(), Ok(Some(StreamEvent::Open(_)))));
    p.restart_with(full);
    p.feed(HEADER.as_bytes());
    assert!(matches!(p.next_event(), Ok(Some(StreamEvent::Open(_)))));
    p.feed(format!("<message><body>{}</body></message>", "x".repeat(4000)).as_bytes());
    assert!(matches!(p.next_event(), Ok(Some(StreamEvent::Stanza(_)))));

    let mut anon = StreamParser::new(full.unauthenticated(1024));
    anon.feed(HEADER.as_bytes());
    assert!(matches!(anon.next_event(), Ok(Some(StreamEvent::Open(_)))));
    anon.feed(format!("<auth>{}</auth>", "x".repeat(4000)).as_bytes());
    assert_eq!(
        anon.next_event().unwrap_err(),
        XmlError::StanzaTooLarge { limit: 1024 }
    );
}

#[test]
fn writer_declares_an_attribute_prefix_once_per_subtree() {
    let ns = "urn:long:namespace";
    let child = Element::new("jabber:client", "e").with_attr_ns(ns, "a", "1");
    let mut el = Element::new("jabber:client", "message").with_attr_ns(ns, "top", "x");
    for _ in 0..3 {
        el = el.with_child(child.clone());
    }
    let xml = el.to_xml();
    assert_eq!(xml.matches(ns).count(), 1, "{xml}");
    roundtrip(&el);
    // Siblings each declare it when no ancestor did.
    let plain = Element::new("jabber:client", "message")
        .with_child(child.clone())
        .with_child(child);
    let xml = plain.to_xml();
    assert_eq!(xml.matches(ns).count(), 2, "{xml}");
    roundtrip(&plain);
}

/// The parser after the header of `input` was returned, fed in chunks of
/// `step` bytes.
fn after_header(input: &[u8], step: usize) -> StreamParser {
    let mut p = StreamParser::new(Limits::default());
    for chunk in input.chunks(step) {
        p.feed(chunk);
        while let Some(ev) = p.next_event().unwrap() {
            if matches!(ev, StreamEvent::Open(_)) {
                return p;
            }
        }
    }
    panic!("no header in {}", String::from_utf8_lossy(input));
}

const DIALBACK: &str = "jabber:server:dialback";

#[test]
fn header_namespace_declarations_are_known() {
    let s2s = b"<?xml version='1.0'?><stream:stream xmlns='jabber:server' \
        xmlns:stream='http://etherx.jabber.org/streams' xmlns:db='jabber:server:dialback' \
        to='b.example' version='1.0'>";
    for step in [1, 7, s2s.len()] {
        let p = after_header(s2s, step);
        assert_eq!(p.header_prefix(DIALBACK), Some("db"), "step {step}");
        assert_eq!(
            p.header_prefix("http://etherx.jabber.org/streams"),
            Some("stream")
        );
        // The default namespace is no prefix.
        assert_eq!(p.header_prefix("jabber:server"), None);
    }
    let other =
        b"<stream:stream xmlns='jabber:server' xmlns:stream='http://etherx.jabber.org/streams' \
        xmlns:dialback='jabber:server:dialback' version='1.0'>";
    assert_eq!(
        after_header(other, 5).header_prefix(DIALBACK),
        Some("dialback")
    );
    let c2s =
        b"<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' \
        version='1.0'>";
    assert_eq!(after_header(c2s, 3).header_prefix(DIALBACK), None);
}

#[test]
fn declarations_below_the_header_do_not_count_and_restart_forgets() {
    let c2s =
        b"<stream:stream xmlns='jabber:server' xmlns:stream='http://etherx.jabber.org/streams' \
        version='1.0'>";
    let mut p = after_header(c2s, 4);
    p.feed(b"<db:result xmlns:db='jabber:server:dialback' from='a.example' to='b.example'>k</db:result>");
    assert!(matches!(p.next_event(), Ok(Some(StreamEvent::Stanza(_)))));
    assert_eq!(p.header_prefix(DIALBACK), None);

    let s2s =
        b"<stream:stream xmlns='jabber:server' xmlns:stream='http://etherx.jabber.org/streams' \
        xmlns:db='jabber:server:dialback' version='1.0'>";
    let mut p = after_header(s2s, 9);
    assert_eq!(p.header_prefix(DIALBACK), Some("db"));
    p.restart();
    assert_eq!(p.header_prefix(DIALBACK), None);
    p.feed(c2s);
    assert!(matches!(p.next_event(), Ok(Some(StreamEvent::Open(_)))));
    assert_eq!(p.header_prefix(DIALBACK), None);
    p.restart();
    p.feed(s2s);
    assert!(matches!(p.next_event(), Ok(Some(StreamEvent::Open(_)))));
    assert_eq!(p.header_prefix(DIALBACK), Some("db"));
}

#[test]
fn header_declarations_are_bounded() {
    let limits = Limits {
        max_attributes: 3,
        ..Limits::default()
    };
    let mut header = String::from("<stream:stream xmlns:stream='http://etherx.jabber.org/streams'");
    for i in 0..10 {
        header.push_str(&format!(" xmlns:p{i}='urn:x:{i}'"));
    }
    header.push_str(" xmlns:db='jabber:server:dialback' version='1.0'>");
    let mut p = StreamParser::new(limits);
    p.feed(header.as_bytes());
    assert!(matches!(p.next_event(), Ok(Some(StreamEvent::Open(_)))));
    // The first three are kept (the stream prefix and p0, p1); later ones
    // are not.
    assert_eq!(p.header_prefix("urn:x:1"), Some("p1"));
    assert_eq!(p.header_prefix("urn:x:2"), None);
    assert_eq!(p.header_prefix(DIALBACK), None);
}
