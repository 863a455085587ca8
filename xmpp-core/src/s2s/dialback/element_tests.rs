//! Round trips of every dialback form through the real stream parser, the
//! XEP-0220 examples as a peer writes them, and each refusal.

use super::*;
use crate::s2s::dialback::{DialbackSecret, MAX_KEY_BYTES};
use crate::stream::header::write_s2s_header;
use crate::xml::{Limits, StreamEvent, StreamParser};

fn domain(s: &str) -> DialbackDomain {
    DialbackDomain::parse(s).unwrap()
}

fn key() -> DialbackKey {
    DialbackSecret::new(b"s3cr3tf0rd14lb4ck").key(
        "montague.example",
        "capulet.example",
        "D60000229F",
    )
}

/// Every element below `header`, as the s2s stream parser delivers them.
fn stanzas_after(header: &[u8], body: &[u8]) -> Vec<Element> {
    let mut parser = StreamParser::new(Limits::default());
    parser.feed(header);
    parser.feed(body);
    let mut out = Vec::new();
    while let Some(ev) = parser.next_event().unwrap() {
        if let StreamEvent::Stanza(el) = ev {
            out.push(el);
        }
    }
    out
}

/// Written by us behind our own s2s header, read back by our parser.
fn over_the_wire(el: &DialbackElement) -> DialbackElement {
    let mut header = Vec::new();
    write_s2s_header(
        &mut header,
        Some("capulet.example"),
        Some("montague.example"),
        None,
    );
    let mut body = Vec::new();
    el.write_to(&mut body);
    let got = stanzas_after(&header, &body);
    assert_eq!(got.len(), 1, "{}", String::from_utf8_lossy(&body));
    DialbackElement::parse(&got[0]).unwrap()
}

fn every_form() -> Vec<DialbackElement> {
    let mut bodies = vec![DbBody::Key(key()), DbBody::Valid, DbBody::Invalid];
    for condition in all_conditions() {
        bodies.push(DbBody::Error(DialbackError::new(condition)));
    }
    bodies.push(DbBody::Error(DialbackError {
        error_type: ErrorType::Wait,
        condition: DialbackCondition::RemoteServerTimeout,
        text: Some("authoritative server closed the stream <early> & 'suddenly'".into()),
    }));
    let mut out = Vec::new();
    for body in bodies {
        out.push(DialbackElement::Result(DbResult {
            from: domain("capulet.example"),
            to: domain("montague.example"),
            body: body.clone(),
        }));
        out.push(DialbackElement::Verify(DbVerify {
            from: domain("montague.example"),
            to: domain("capulet.example"),
            id: StreamId::parse("417GAF25").unwrap(),
            body,
        }));
    }
    out
}

fn all_conditions() -> Vec<DialbackCondition> {
    use DialbackCondition::*;
    vec![
        ItemNotFound,
        RemoteConnectionFailed,
        RemoteServerNotFound,
        RemoteServerTimeout,
        PolicyViolation,
        NotAuthorized,
        Forbidden,
        NotAcceptable,
        ResourceConstraint,
        Other("undefined-condition".into()),
    ]
}

#[test]
fn every_form_round_trips_over_an_s2s_stream() {
    for el in every_form() {
        assert_eq!(over_the_wire(&el), el);
    }
}

#[test]
fn every_form_round_trips_as_a_tree() {
    for el in every_form() {
        let tree = el.to_element();
        let reparsed = Element::parse(tree.to_xml().as_bytes()).unwrap();
        assert_eq!(DialbackElement::parse(&reparsed).unwrap(), el);
    }
}

#[test]
fn written_with_the_db_prefix_and_the_error_in_the_stream_namespace() {
    let el = DialbackElement::Verify(DbVerify {
        from: domain("montague.example"),
        to: domain("capulet.example"),
        id: StreamId::parse("417GAF25").unwrap(),
        body: DbBody::Error(DialbackError::new(DialbackCondition::ItemNotFound)),
    });
    let mut out = Vec::new();
    el.write_to(&mut out);
    assert_eq!(
        String::from_utf8(out).unwrap(),
        "<db:verify from='montague.example' to='capulet.example' id='417GAF25' type='error'>\
         <error type='cancel'><item-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>\
         </error></db:verify>"
    );
    let mut header = Vec::new();
    write_s2s_header(&mut header, Some("a.example"), None, Some("x"));
    // Our header announces dialback the way XEP-0220 §2.4.1 says, as our
    // own parser (and so a peer's) sees it.
    let mut parser = StreamParser::new(Limits::default());
    parser.feed(&header);
    assert!(matches!(
        parser.next_event(),
        Ok(Some(StreamEvent::Open(_)))
    ));
    assert_eq!(parser.header_prefix(ns::DIALBACK), Some("db"));
    let header = String::from_utf8(header).unwrap();
    assert!(header.contains(" xmlns='jabber:server'"), "{header}");
    assert!(
        header.contains(" xmlns:db='jabber:server:dialback'"),
        "{header}"
    );
}

/// The examples of XEP-0220 §2, as a peer writes them: indented keys, the
/// XEP's stream header, attributes in the XEP's order.
#[test]
fn xep_0220_examples_parse() {
    let header = b"<stream:stream xmlns:stream='http://etherx.jabber.org/streams' \
        xmlns='jabber:server' xmlns:db='jabber:server:dialback' \
        to='montague.example' from='capulet.example' version='1.0'>";
    let body = b"<db:result
          from='capulet.example'
          to='montague.example'>
        b4835385f37fe2895af6c196b59097b16862406db80559900d96bf6fa7d23df3
      </db:result>
      <db:result from='montague.example' to='capulet.example' type='valid'/>
      <db:result from='montague.example' to='capulet.example' type='invalid'/>
      <db:result from='montague.example' to='capulet.example' type='error'>
        <error type='cancel'>
          <item-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>
        </error>
      </db:result>
      <db:verify from='capulet.example' id='417GAF25' to='montague.example'>
       225cc5aa6a071133249d25fef42ae516fc7a86c523aa1c6980a7f73e784c972d
     </db:verify>
      <db:verify from='montague.example' id='417GAF25' to='capulet.example' type='valid'/>";
    let got: Vec<_> = stanzas_after(header, body)
        .iter()
        .map(|el| DialbackElement::parse(el).unwrap())
        .collect();
    assert_eq!(got.len(), 6);
    let DialbackElement::Result(step1) = &got[0] else {
        panic!("{:?}", got[0]);
    };
    assert_eq!(step1.from.as_str(), "capulet.example");
    assert_eq!(step1.to.as_str(), "montague.example");
    let DbBody::Key(k) = &step1.body else {
        panic!("{step1:?}");
    };
    // The key verifies with the secret of XEP-0220's example.
    let capulet = DialbackSecret::new(b"s3cr3tf0rd14lb4ck");
    assert!(capulet.verify("montague.example", "capulet.example", "D60000229F", k));
    assert_eq!(got[1].body(), &DbBody::Valid);
    assert_eq!(got[2].body(), &DbBody::Invalid);
    assert_eq!(
        got[3].body(),
        &DbBody::Error(DialbackError::new(DialbackCondition::ItemNotFound))
    );
    let DialbackElement::Verify(step2) = &got[4] else {
        panic!("{:?}", got[4]);
    };
    assert_eq!(step2.id.as_str(), "417GAF25");
    let DbBody::Key(k) = &step2.body else {
        panic!("{step2:?}");
    };
    let montague = DialbackSecret::new(b"d14lb4ck43v3r");
    assert!(montague.verify("capulet.example", "montague.example", "417GAF25", k));
    assert!(matches!(&got[5], DialbackElement::Verify(v) if v.body == DbBody::Valid));
}

/// Any prefix the peer declared works, and so does a default namespace
/// declaration on the element itself (its `<error/>` then inherits the
/// dialback namespace).
#[test]
fn other_prefixes_and_default_declarations_parse() {
    let header = b"<stream:stream xmlns:stream='http://etherx.jabber.org/streams' \
        xmlns='jabber:server' xmlns:dialback='jabber:server:dialback' version='1.0'>";
    let body = b"<dialback:result from='a.example' to='b.example'>abc</dialback:result>\
        <result xmlns='jabber:server:dialback' from='b.example' to='a.example' type='error'>\
        <error type='wait'><remote-server-timeout xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>\
        <text xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'>late</text></error></result>";
    let got = stanzas_after(header, body);
    let first = DialbackElement::parse(&got[0]).unwrap();
    assert_eq!(
        first.body(),
        &DbBody::Key(DialbackKey::parse("abc").unwrap())
    );
    let second = DialbackElement::parse(&got[1]).unwrap();
    assert_eq!(
        second.body(),
        &DbBody::Error(DialbackError {
            error_type: ErrorType::Wait,
            condition: DialbackCondition::RemoteServerTimeout,
            text: Some("late".into()),
        })
    );
}

fn parse(xml: &str) -> Result<DialbackElement, DialbackParseError> {
    DialbackElement::parse(&Element::parse(xml.as_bytes()).unwrap())
}

const DB: &str = "xmlns='jabber:server:dialback'";
const ERR: &str = "xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'";

#[test]
fn every_error_form_parses_with_its_condition_and_type() {
    for condition in all_conditions() {
        for (ty, error_type) in [
            ("auth", ErrorType::Auth),
            ("cancel", ErrorType::Cancel),
            ("continue", ErrorType::Continue),
            ("modify", ErrorType::Modify),
            ("wait", ErrorType::Wait),
        ] {
            let name = condition.name();
            let xml = format!(
                "<verify {DB} from='a.example' to='b.example' id='i' type='error'>\
                 <error xmlns='jabber:server' type='{ty}'><{name} {ERR}/></error></verify>"
            );
            let DialbackElement::Verify(v) = parse(&xml).unwrap() else {
                panic!("{xml}");
            };
            assert_eq!(
                v.body,
                DbBody::Error(DialbackError {
                    error_type,
                    condition: condition.clone(),
                    text: None,
                })
            );
        }
        // Without a type, the condition's usual one.
        let name = condition.name();
        let xml = format!(
            "<result {DB} from='a.example' to='b.example' type='error'>\
             <error xmlns='jabber:server'><{name} {ERR}/></error></result>"
        );
        assert_eq!(
            parse(&xml).unwrap().body(),
            &DbBody::Error(DialbackError::new(condition.clone()))
        );
    }
}

#[test]
fn refusals() {
    use DialbackParseError::*;
    let cases: Vec<(String, DialbackParseError)> = vec![
        ("<result xmlns='jabber:server' from='a.example' to='b.example'>k</result>".to_owned(), NotDialback),
        (format!("<features {DB}/>"), NotDialback),
        (format!("<result {DB} to='b.example'>k</result>"), MissingAttribute("from")),
        (format!("<result {DB} from='a.example'>k</result>"), MissingAttribute("to")),
        (format!("<verify {DB} from='a.example' to='b.example'>k</verify>"), MissingAttribute("id")),
        (format!("<verify {DB} from='a.example' to='b.example' id=''>k</verify>"), BadStreamId),
        (format!("<verify {DB} from='a.example' to='b.example' id='a b'>k</verify>"), BadStreamId),
        (format!("<result {DB} from='a.example' to='b.example' type='maybe'/>"), BadType),
        (format!("<result {DB} from='a.example' to='b.example'/>"), Key(KeyError::Empty)),
        (format!("<result {DB} from='a.example' to='b.example'>  </result>"), Key(KeyError::Empty)),
        (format!("<result {DB} from='a.example' to='b.example'>a b</result>"), Key(KeyError::BadCharacter)),
        (format!("<result {DB} from='a.example' to='b.example' type='error'/>"), MissingCondition),
        (
            format!("<result {DB} from='a.example' to='b.example' type='error'><error xmlns='jabber:server' type='cancel'/></result>"),
            MissingCondition,
        ),
        (
            format!("<result {DB} from='a.example' to='b.example' type='error'><error xmlns='jabber:server'><text {ERR}>only text</text></error></result>"),
            MissingCondition,
        ),
        (
            // The condition in the wrong namespace is no condition.
            format!("<result {DB} from='a.example' to='b.example' type='error'><error xmlns='jabber:server'><item-not-found/></error></result>"),
            MissingCondition,
        ),
        (
            // An <error/> in a foreign namespace is not the error child.
            format!("<result {DB} from='a.example' to='b.example' type='error'><error xmlns='urn:x'><forbidden {ERR}/></error></result>"),
            MissingCondition,
        ),
        (
            format!("<result {DB} from='a.example' to='b.example' type='error'><error xmlns='jabber:server' type='fatal'><forbidden {ERR}/></error></result>"),
            BadErrorType,
        ),
    ];
    for (xml, want) in cases {
        assert_eq!(parse(&xml), Err(want), "{xml}");
    }
    for bad in [
        "a@b.example",
        "b.example/res",
        "exa mple.org",
        "",
        "a..example",
    ] {
        let xml = format!("<result {DB} from='{bad}' to='b.example'>k</result>");
        assert!(
            matches!(
                parse(&xml),
                Err(BadDomain {
                    attribute: "from",
                    ..
                })
            ),
            "{xml}: {:?}",
            parse(&xml)
        );
        let xml = format!("<result {DB} from='a.example' to='{bad}' type='valid'/>");
        assert!(
            matches!(
                parse(&xml),
                Err(BadDomain {
                    attribute: "to",
                    ..
                })
            ),
            "{xml}"
        );
    }
}

#[test]
fn budgets_at_their_limits() {
    let at = "k".repeat(MAX_KEY_BYTES);
    let xml = format!("<result {DB} from='a.example' to='b.example'>{at}</result>");
    assert!(matches!(parse(&xml).unwrap().body(), DbBody::Key(k) if k.as_str() == at));
    let over = "k".repeat(MAX_KEY_BYTES + 1);
    let xml = format!("<result {DB} from='a.example' to='b.example'>{over}</result>");
    assert_eq!(
        parse(&xml),
        Err(DialbackParseError::Key(KeyError::TooLong {
            len: MAX_KEY_BYTES + 1
        }))
    );

    let id = "i".repeat(MAX_STREAM_ID_BYTES);
    let xml = format!("<verify {DB} from='a.example' to='b.example' id='{id}' type='valid'/>");
    assert!(matches!(parse(&xml), Ok(DialbackElement::Verify(v)) if v.id.as_str() == id));
    let id = "i".repeat(MAX_STREAM_ID_BYTES + 1);
    let xml = format!("<verify {DB} from='a.example' to='b.example' id='{id}' type='valid'/>");
    assert_eq!(parse(&xml), Err(DialbackParseError::BadStreamId));

    let text = "t".repeat(MAX_ERROR_TEXT_BYTES);
    let error = |text: &str| {
        format!(
            "<result {DB} from='a.example' to='b.example' type='error'><error xmlns='jabber:server' \
             type='cancel'><forbidden {ERR}/><text {ERR}>{text}</text></error></result>"
        )
    };
    assert!(matches!(
        parse(&error(&text)).unwrap().body(),
        DbBody::Error(e) if e.text.as_deref() == Some(text.as_str())
    ));
    let text = "t".repeat(MAX_ERROR_TEXT_BYTES + 1);
    assert_eq!(
        parse(&error(&text)),
        Err(DialbackParseError::ErrorTextTooLong)
    );

    // Domains are bounded by the JID rules (1023 bytes).
    let label = "a".repeat(63);
    assert!(DialbackDomain::parse(&format!("{label}.example")).is_ok());
    let huge = "a.".repeat(600) + "com";
    assert!(DialbackDomain::parse(&huge).is_err());
}

#[test]
fn domains_keep_their_wire_form_for_keys() {
    let d = DialbackDomain::parse("xn--bcher-kva.example").unwrap();
    assert_eq!(d.as_str(), "xn--bcher-kva.example");
    assert_eq!(d.jid().domain(), "bücher.example");
    let upper = DialbackDomain::parse("Capulet.Example").unwrap();
    assert_eq!(upper.as_str(), "Capulet.Example");
    assert_eq!(upper.jid().domain(), "capulet.example");
}
