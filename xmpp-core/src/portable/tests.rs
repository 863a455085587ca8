//! The reader against well-formed files and hostile ones: every budget
//! trips with the line and place named, and memory stays one unit.

use super::*;

/// Feed `doc` in chunks of `chunk` bytes; all records or the error.
fn read_all(doc: &[u8], chunk: usize, limits: ReadLimits) -> Result<Vec<Record>, ReadError> {
    let mut r = Reader::new(limits);
    let mut out = Vec::new();
    for part in doc.chunks(chunk.max(1)) {
        r.feed(part);
        while let Some(rec) = r.next_record()? {
            out.push(rec);
        }
    }
    while let Some(rec) = r.finish()? {
        out.push(rec);
    }
    Ok(out)
}

const SMALL: &str = "<?xml version='1.0' encoding='UTF-8'?>\n\
<server-data xmlns='urn:xmpp:pie:0'>\n\
<host jid='example.org'>\n\
<user name='alice' password='pw'>\n\
<query xmlns='jabber:iq:roster'><item jid='bob@example.org' subscription='both'><group>G</group></item></query>\n\
<vCard xmlns='vcard-temp'><FN>Alice</FN></vCard>\n\
<pubsub xmlns='http://jabber.org/protocol/pubsub'><items node='n'><item id='1'><x xmlns='y'/></item></items></pubsub>\n\
</user>\n\
</host>\n\
</server-data>\n";

#[test]
fn outline_and_units_in_order_whatever_the_chunking() {
    let whole = read_all(SMALL.as_bytes(), usize::MAX, ReadLimits::default()).expect("reads");
    for chunk in [1, 2, 7, 64] {
        assert_eq!(
            read_all(SMALL.as_bytes(), chunk, ReadLimits::default()).expect("reads"),
            whole,
            "chunk {chunk}"
        );
    }
    let shape: Vec<String> = whole
        .iter()
        .map(|r| match r {
            Record::Open { scope, .. } => format!("open {scope:?}"),
            Record::Unit {
                within,
                element,
                line,
            } => {
                format!("{} in {within:?} at {line}", element.name)
            }
            Record::Close { scope } => format!("close {scope:?}"),
        })
        .collect();
    assert_eq!(
        shape,
        [
            "open ServerData",
            "open Host",
            "open User",
            "open Roster",
            "item in Roster at 5",
            "close Roster",
            "vCard in User at 6",
            "open Pubsub",
            "open PepItems",
            "item in PepItems at 7",
            "close PepItems",
            "close Pubsub",
            "close User",
            "close Host",
            "close ServerData"
        ]
    );
}

fn error_of(doc: &[u8], limits: ReadLimits) -> ReadError {
    match read_all(doc, 8192, limits) {
        Err(e) => e,
        Ok(r) => panic!("expected an error, read {} records", r.len()),
    }
}

#[test]
fn hostile_inputs_fail_with_line_and_place() {
    let limits = ReadLimits {
        unit_bytes: 64 * 1024,
        ..ReadLimits::default()
    };
    let head = "<server-data xmlns='urn:xmpp:pie:0'>\n<host jid='h'>\n<user name='u'>\n";
    // A unit larger than its budget.
    let big = format!(
        "{head}<vCard xmlns='vcard-temp'><PHOTO>{}</PHOTO></vCard>",
        "A".repeat(100_000)
    );
    let e = error_of(big.as_bytes(), limits);
    assert_eq!(
        (e.line, e.place.as_str()),
        (4, "server-data/host[h]/user[u]/vCard")
    );
    assert!(
        matches!(
            e.problem,
            Problem::Xml(crate::xml::XmlError::StanzaTooLarge { .. })
        ),
        "{e}"
    );
    // Nesting beyond the depth budget.
    let deep = format!("{head}{}", "<a>".repeat(100));
    let e = error_of(deep.as_bytes(), limits);
    assert!(
        matches!(
            e.problem,
            Problem::Xml(crate::xml::XmlError::TooDeep { .. })
        ),
        "{e}"
    );
    assert_eq!(e.place, "server-data/host[h]/user[u]/a");
    // A giant attribute outside any unit (a password of 1 MB).
    let attr = format!(
        "<server-data xmlns='urn:xmpp:pie:0'><host jid='h'><user name='u' password='{}'>",
        "p".repeat(1 << 20)
    );
    let e = error_of(attr.as_bytes(), limits);
    assert_eq!(e.place, "server-data/host[h]");
    // A start tag with 200,000 attributes inside a unit: refused at the
    // tag budget, before rxml has gathered them.
    let many: String = (0..200_000).map(|i| format!(" a{i}='x'")).collect();
    let e = error_of(
        format!("{head}<vCard xmlns='vcard-temp'><x{many}/></vCard>").as_bytes(),
        ReadLimits::default(),
    );
    assert!(matches!(e.problem, Problem::TagTooLong { .. }), "{e}");
    // Too many attributes.
    let attrs: String = (0..100).map(|i| format!(" a{i}='x'")).collect();
    let e = error_of(format!("{head}<x{attrs}/>").as_bytes(), limits);
    assert!(
        matches!(
            e.problem,
            Problem::Xml(crate::xml::XmlError::TooManyAttributes { .. })
        ),
        "{e}"
    );
    // Not a XEP-0227 file, a DTD, stray text, a truncated file.
    let e = error_of(b"<html><body/></html>", limits);
    assert_eq!(e.problem, Problem::NotPie("html".into()));
    let e = error_of(
        b"<!DOCTYPE x [<!ENTITY a 'b'>]><server-data xmlns='urn:xmpp:pie:0'/>",
        limits,
    );
    assert!(
        matches!(e.problem, Problem::Xml(crate::xml::XmlError::Restricted(_))),
        "{e}"
    );
    let e = error_of(format!("{head}hello").as_bytes(), limits);
    assert_eq!((e.problem, e.line), (Problem::StrayText, 4));
    let e = error_of(head.as_bytes(), limits);
    assert_eq!(e.problem, Problem::Truncated("user".into()));
}

/// A million small units stream through without the reader growing: the
/// records are counted, not kept.
#[test]
fn many_units_cost_one_unit() {
    let mut r = Reader::new(ReadLimits::default());
    r.feed(b"<server-data xmlns='urn:xmpp:pie:0'><host jid='h'><user name='u'><offline-messages>");
    let msg = b"<message xmlns='jabber:client' from='a@b' to='u@h'><body>hi</body></message>\n";
    let mut units = 0u64;
    let mut batch = Vec::with_capacity(msg.len() * 1000);
    for _ in 0..1000 {
        batch.extend_from_slice(msg);
    }
    for _ in 0..200 {
        r.feed(&batch);
        while let Some(rec) = r.next_record().expect("reads") {
            if matches!(rec, Record::Unit { .. }) {
                units += 1;
            }
        }
        assert!(r.buffered() < 64 * 1024);
    }
    assert_eq!(units, 200_000);
    assert_eq!(r.line(), 200_001);
}

/// ejabberd 23.01 writes SCRAM salt and keys base64-encoded twice (its
/// stored base64 text, encoded again): they are read as the bytes they
/// stand for; keys encoded once, as Prosody and Vireo write them, are read
/// as they are.
#[test]
fn scram_keys_encoded_twice_by_ejabberd_are_read_once_decoded() {
    use base64::Engine as _;
    let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
    let (salt, stored, server) = (b"some salt".to_vec(), vec![7u8; 20], vec![9u8; 20]);
    let element = |salt: &str, stored: &str, server: &str| {
        crate::xml::Element::parse(
            format!(
                "<scram-credentials xmlns='urn:xmpp:pie:0#scram' mechanism='SCRAM-SHA-1'>\
                 <iter-count>4096</iter-count><salt>{salt}</salt>\
                 <server-key>{server}</server-key><stored-key>{stored}</stored-key>\
                 </scram-credentials>"
            )
            .as_bytes(),
        )
        .expect("element")
    };
    for e in [
        element(&b64(&salt), &b64(&stored), &b64(&server)),
        element(
            &b64(b64(&salt).as_bytes()),
            &b64(b64(&stored).as_bytes()),
            &b64(b64(&server).as_bytes()),
        ),
    ] {
        let r = convert::parse_scram(&e).expect("parsed");
        assert_eq!(r.salt, salt);
        assert_eq!(r.keys.stored_key, stored);
        assert_eq!(r.keys.server_key, server);
    }
    // Neither once nor twice a hash long: refused later, as before.
    let short = element(&b64(&salt), &b64(&[1; 5]), &b64(&[2; 5]));
    let r = convert::parse_scram(&short).expect("parsed");
    assert!(convert::credentials_from_scram(&[r]).is_err());
}

/// ejabberd's privacy lists become the blocklist: the default list's
/// "deny this JID everything" items; what a blocklist cannot say is
/// counted, not guessed.
#[test]
fn privacy_lists_become_the_blocklist() {
    let query = crate::xml::Element::parse(
        b"<query xmlns='jabber:iq:privacy'><default name='Blocked contacts'/>\
          <list name='Blocked contacts'>\
            <item type='jid' value='spam@x.example' action='deny' order='0'/>\
            <item type='jid' value='Troll@Y.example/phone' action='deny' order='1'>\
              <iq/><message/><presence-in/><presence-out/></item>\
            <item type='jid' value='chatty@x.example' action='deny' order='2'><message/></item>\
            <item type='group' value='Work' action='deny' order='3'/>\
            <item type='jid' value='friend@x.example' action='allow' order='4'/>\
          </list>\
          <list name='other'><item type='jid' value='other@x.example' action='deny' order='0'/></list>\
          </query>",
    )
    .expect("query");
    let (jids, left_out) = convert::blocklist_from_privacy(&query);
    assert_eq!(jids, vec!["spam@x.example", "troll@y.example"]);
    assert_eq!(left_out, 4);
    let none = crate::xml::Element::parse(b"<query xmlns='jabber:iq:privacy'/>").expect("q");
    assert_eq!(convert::blocklist_from_privacy(&none), (vec![], 0));
}
