//! Arbitrary bytes into the stream parser, fed in chunks whose size comes from
//! the first input byte. Every stanza that parses must serialize to bytes
//! that parse back to the same tree: a differential between writer and parser
//! is how stanzas get smuggled past a router.

use xmpp_core::xml::{Element, Limits, StreamEvent, StreamParser};

/// Run one input.
pub fn run(data: &[u8]) {
    let Some((&first, rest)) = data.split_first() else {
        return;
    };
    let chunk = usize::from(first).max(1);
    let mut parser = StreamParser::new(Limits::default());
    let mut default_ns = String::new();
    for piece in rest.chunks(chunk) {
        parser.feed(piece);
        loop {
            match parser.next_event() {
                Ok(Some(StreamEvent::Stanza(el))) => {
                    let mut out = Vec::new();
                    el.write_to(&mut out, &default_ns);
                    // Standalone parsing needs the namespace declared.
                    let standalone = el.to_xml();
                    let reparsed = Element::parse(standalone.as_bytes());
                    assert_eq!(reparsed.as_ref(), Ok(&el), "{standalone}");
                    // The in-stream form must parse back the same inside a
                    // stream whose default namespace is the stanza's.
                    let mut doc = b"<s xmlns='".to_vec();
                    xmpp_core::xml::escape_attr(&default_ns, &mut doc);
                    doc.extend_from_slice(b"'>");
                    doc.extend_from_slice(&out);
                    let mut p = StreamParser::new(Limits::default());
                    p.feed(&doc);
                    assert!(matches!(p.next_event(), Ok(Some(StreamEvent::Open(_)))));
                    let again = p.next_event();
                    assert_eq!(again, Ok(Some(StreamEvent::Stanza(el))));
                }
                Ok(Some(StreamEvent::Open(_))) => {
                    // Use a namespace that the stanzas are likely to share,
                    // so the xmlns-omission path is exercised too.
                    default_ns = "jabber:client".to_owned();
                }
                Ok(Some(StreamEvent::Close)) => {}
                Ok(None) | Err(_) => break,
            }
        }
    }
}
