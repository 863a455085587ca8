//! Export → import → export is byte-identical, and hostile files are
//! refused with their line.

use super::export::{export, Selection};
use super::import::{import, ImportOptions};
use xmpp_core::archive::{ArchiveId, ArchivedMessage};
use xmpp_core::modules::pep::config::NodeConfig;
use xmpp_core::modules::pep::store::{node_key, Entry, Index, Node, INDEX_KEY};
use xmpp_core::portable::ReadLimits;
use xmpp_core::sasl::StoredCredentials;
use xmpp_core::storage::{RosterItem, StorageRequest as Req, StorageResult as Res, Subscription};
use xmpp_core::xml::Element;
use xmpp_runtime::storage::{Backend, MemoryBackend};

fn options() -> ImportOptions {
    ImportOptions {
        domains: vec!["example.org".into(), "other.example".into()],
        iterations: 4096,
        max_roster_items: 100,
        limits: ReadLimits::default(),
    }
}

fn ok(b: &MemoryBackend, reqs: Vec<Req>) {
    for r in b.execute_batch(reqs) {
        assert_eq!(r, Res::Done);
    }
}

fn item(jid: &str, to: bool, from: bool, out: bool, pin: bool, in_roster: bool) -> RosterItem {
    RosterItem {
        jid: jid.into(),
        name: in_roster.then(|| format!("Name <&> of {jid}")),
        subscription: Subscription {
            to,
            from,
            pending_out: out,
            pending_in: pin,
        },
        groups: if in_roster {
            vec!["Friends".into(), "Work & play".into()]
        } else {
            vec![]
        },
        in_roster,
    }
}

/// A store with something of every kind.
fn filled() -> MemoryBackend {
    let b = MemoryBackend::new();
    let alice = "alice@example.org".to_owned();
    let creds = StoredCredentials::derive("old password", b"0123456789abcdef", 4096).expect("d");
    let mut reqs = vec![
        Req::CreateAccount {
            account: alice.clone(),
            credentials: creds.clone(),
        },
        Req::CreateAccount {
            account: "bob@other.example".into(),
            credentials: StoredCredentials::imported(
                5000,
                b"salt".to_vec(),
                Some(creds.sha1.clone()),
                None,
            )
            .expect("sha1 only"),
        },
        Req::CreateAccount {
            account: "carol@example.org".into(),
            credentials: creds,
        },
    ];
    for (i, it) in [
        item("bob@other.example", true, true, false, false, true),
        item("dave@example.org", false, false, true, false, true),
        item("eve@example.org", false, false, false, true, false),
        item("frank@example.org", true, false, false, true, true),
    ]
    .into_iter()
    .enumerate()
    {
        reqs.push(Req::PutRosterItem {
            account: alice.clone(),
            item: it,
            version: 10 + i as u64,
        });
    }
    let blob = |account: &str, key: &str, value: &str| Req::StoreBlob {
        account: account.into(),
        key: key.into(),
        value: Some(value.into()),
        limit: None,
    };
    reqs.push(blob(
        &alice,
        "vcard",
        "<vCard xmlns='vcard-temp'><FN>Alice</FN><NOTE>a\r\nb &amp; c</NOTE></vCard>",
    ));
    reqs.push(blob(
        &alice,
        "private storage:bookmarks storage",
        "<storage xmlns='storage:bookmarks'><conference jid='r@conference.example.org'/></storage>",
    ));
    reqs.push(blob(
        &alice,
        "blocklist",
        "<blocklist xmlns='urn:vireo:blocking'><item jid='spam@x.example'/></blocklist>",
    ));
    reqs.push(blob(
        &alice,
        "avatar",
        "aaf4c61ddcc5e8a2dabede0f3b482cd9aea9434d",
    ));
    let mut node = Node::new(NodeConfig::default());
    node.config.max_items = xmpp_core::modules::pep::config::MaxItems::Max;
    for i in 0..3 {
        node.publish(
            format!("item{i}"),
            Element::new("urn:xmpp:bookmarks:1", "conference").with_attr("name", format!("r{i}")),
        );
    }
    node.subscribers.insert("bob@other.example".into());
    let mut index = Index::default();
    index
        .0
        .insert("urn:xmpp:bookmarks:1".into(), Entry::of(&node));
    reqs.push(blob(
        &alice,
        &node_key("urn:xmpp:bookmarks:1"),
        &node.document(),
    ));
    reqs.push(blob(&alice, INDEX_KEY, &index.document().expect("index")));
    for i in 0..3 {
        reqs.push(Req::PushOffline {
            account: alice.clone(),
            stanza: format!(
                "<message xmlns='jabber:client' from='bob@other.example/phone' to='alice@example.org' type='chat'><body>offline {i}</body><delay xmlns='urn:xmpp:delay' stamp='2024-01-01T00:00:0{i}Z'/></message>"
            ),
            limit: None,
        });
    }
    // More than one archive page.
    for i in 0..1203u64 {
        let mut id = [0u8; 16];
        id[..8].copy_from_slice(&(1_700_000_000_000 + i * 1000).to_be_bytes());
        id[15] = (i % 251) as u8;
        let (from, to) = if i % 2 == 0 {
            ("alice@example.org/pc", "bob@other.example")
        } else {
            ("bob@other.example/phone", "alice@example.org")
        };
        reqs.push(Req::AppendArchive {
            account: alice.clone(),
            message: ArchivedMessage {
                id: ArchiveId::from_bytes(id),
                with: if i % 2 == 0 { to.into() } else { from.into() },
                stanza: format!(
                    "<message xmlns='jabber:client' from='{from}' to='{to}' type='chat'><body>m{i}</body></message>"
                ),
            },
        });
    }
    // A service's node and a room's archive.
    reqs.push(blob(
        "pubsub.example.org",
        "n/news",
        "<node xmlns='urn:vireo:pubsub:0'/>",
    ));
    let mut id = [0u8; 16];
    id[..8].copy_from_slice(&1_700_000_000_000u64.to_be_bytes());
    reqs.push(Req::AppendArchive {
        account: "conference.example.org/lobby".into(),
        message: ArchivedMessage {
            id: ArchiveId::from_bytes(id),
            with: "conference.example.org/lobby/amy".into(),
            stanza: "<message xmlns='jabber:client' type='groupchat'><body>hi</body></message>"
                .into(),
        },
    });
    ok(&b, reqs);
    b
}

fn export_bytes(b: &MemoryBackend, sel: &Selection) -> Vec<u8> {
    let mut out = Vec::new();
    export(b, sel, &mut out).expect("export");
    out
}

fn import_bytes(b: &MemoryBackend, bytes: &[u8]) -> super::import::ImportReport {
    let dir = tempfile::tempdir().expect("tmp");
    let path = dir.path().join("in.xml");
    std::fs::write(&path, bytes).expect("write");
    import(b, &path, &options()).expect("import")
}

#[test]
fn export_import_export_is_byte_identical() {
    let first = filled();
    let one = export_bytes(&first, &Selection::All);
    assert_eq!(one, export_bytes(&first, &Selection::All), "deterministic");
    let second = MemoryBackend::new();
    let report = import_bytes(&second, &one);
    assert!(report.skipped.is_empty(), "{report}");
    assert_eq!(report.stored.accounts, 3);
    assert_eq!(report.stored.archived, 1204);
    assert_eq!(report.stored.offline, 3);
    assert_eq!(
        (
            report.stored.roster_items,
            report.stored.subscription_requests
        ),
        (3, 2)
    );
    assert_eq!((report.stored.pep_nodes, report.stored.pep_items), (1, 3));
    assert_eq!((report.sha1_only, report.existing.len()), (1, 0));
    let two = export_bytes(&second, &Selection::All);
    if one != two {
        let (a, b) = (String::from_utf8_lossy(&one), String::from_utf8_lossy(&two));
        for (x, y) in a.lines().zip(b.lines()) {
            assert_eq!(x, y);
        }
        panic!("lengths differ: {} vs {}", one.len(), two.len());
    }
    // Credentials, roster and archive ids are what the first store held.
    for account in ["alice@example.org", "bob@other.example"] {
        let creds = |b: &MemoryBackend| {
            b.execute(Req::LoadCredentials {
                account: account.into(),
            })
        };
        assert_eq!(creds(&first), creds(&second));
    }
    let text = String::from_utf8_lossy(&one);
    assert!(text.contains("<user name='bob'>\n<scram-credentials xmlns='urn:xmpp:pie:0#scram' mechanism='SCRAM-SHA-1'>"));
    assert!(!text.contains("<user name='bob'>\n<scram-credentials xmlns='urn:xmpp:pie:0#scram' mechanism='SCRAM-SHA-1'><iter-count>5000</iter-count><salt>c2FsdA==</salt><server-key>") || text.matches("SCRAM-SHA-256").count() == 2);
    // A check reads everything and writes nothing.
    let third = MemoryBackend::new();
    let dir = tempfile::tempdir().expect("tmp");
    std::fs::write(dir.path().join("one.xml"), &one).expect("write");
    let checked = import(
        &super::import::CheckOnly(&third),
        &dir.path().join("one.xml"),
        &options(),
    )
    .expect("check");
    assert_eq!(checked.stored, report.stored);
    assert_eq!(third.accounts().expect("accounts"), Vec::<String>::new());
    // Importing again skips every account, touching none.
    let again = import_bytes(&second, &one);
    assert_eq!(again.existing.len(), 5, "3 accounts, 2 services");
    assert_eq!(again.stored.archived, 0);
    assert_eq!(export_bytes(&second, &Selection::All), two);
}

#[test]
fn one_user_export_holds_that_user_only() {
    let b = filled();
    let one = export_bytes(&b, &Selection::User("alice@example.org".into()));
    let text = String::from_utf8_lossy(&one);
    assert_eq!(text.matches("<user ").count(), 1);
    assert!(!text.contains("<service"));
    assert!(text.contains("<archive xmlns='urn:xmpp:pie:0#mam'>"));
    let mut out = Vec::new();
    assert!(export(&b, &Selection::User("nobody@example.org".into()), &mut out).is_err());
}

#[test]
fn hostile_files_are_refused_with_their_line() {
    let b = MemoryBackend::new();
    let dir = tempfile::tempdir().expect("tmp");
    let path = dir.path().join("bad.xml");
    let head = "<server-data xmlns='urn:xmpp:pie:0'>\n<host jid='example.org'>\n<user name='u' password='pw'>\n";
    let cases: Vec<(String, &str)> = vec![
        (format!("{head}<vCard xmlns='vcard-temp'>{}", "<a>".repeat(1000)), "line 4, in server-data/host[example.org]/user[u]/vCard: element nesting exceeds"),
        (format!("<server-data xmlns='urn:xmpp:pie:0'>\n<host jid='{}'>", "h".repeat(200_000)), "line 2, in server-data: a tag longer than"),
        (format!("{head}<offline-messages>\n<message>{}</message>", "x".repeat(5 << 20)), "line 5, in server-data/host[example.org]/user[u]/offline-messages/message: element exceeds the limit of 4194304 bytes"),
        ("<?xml version='1.0'?><!DOCTYPE lol [<!ENTITY lol 'lol'>]><server-data xmlns='urn:xmpp:pie:0'/>".into(), "restricted XML"),
        ("<server-data xmlns='urn:xmpp:pie:0'><xi:include xmlns:xi='http://www.w3.org/2001/XInclude' href='../etc/passwd'/></server-data>".into(), "not in the same directory"),
    ];
    for (doc, want) in cases {
        std::fs::write(&path, doc).expect("write");
        let err = import(&b, &path, &options())
            .expect_err("refused")
            .to_string();
        assert!(err.contains(want), "{err}\n  wanted: {want}");
    }
    // Entries beyond a budget are left out and counted, not kept.
    let mut doc = head.to_owned();
    doc.push_str("<query xmlns='jabber:iq:roster'>\n");
    for i in 0..5000 {
        doc.push_str(&format!(
            "<item jid='c{i}@example.org' subscription='both'/>\n"
        ));
    }
    doc.push_str("</query>\n</user>\n</host>\n</server-data>\n");
    std::fs::write(&path, doc).expect("write");
    let report = import(&MemoryBackend::new(), &path, &options()).expect("import");
    assert_eq!(report.stored.roster_items, 100);
    assert_eq!(
        report.skipped.get("roster entries beyond 100 per account"),
        Some(&4900)
    );
}

/// Files the real tools wrote (server/tests/interop/test_xep0227.py made
/// them: Prosody 0.12's `prosody-migrator` to its xep0227 driver, ejabberd
/// 23.01's `export_piefxis`, which splits hosts into included files).
#[test]
fn prosody_and_ejabberd_files_import() {
    let fixtures = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/xep0227");
    let opts = ImportOptions {
        domains: vec!["x227p.localhost".into(), "x227e.localhost".into()],
        ..options()
    };
    let b = MemoryBackend::new();
    let r = import(&b, &fixtures.join("prosody-0.12-alice.xml"), &opts).expect("prosody");
    assert_eq!((r.stored.accounts, r.sha1_only), (1, 1), "{r}");
    assert_eq!(
        (r.stored.roster_items, r.stored.subscription_requests),
        (1, 1),
        "{r}"
    );
    assert_eq!(
        (r.stored.vcards, r.stored.private, r.stored.archived),
        (1, 1, 3),
        "{r}"
    );
    assert!(r.skipped.is_empty(), "{r}");
    let Res::Credentials(Some(c)) = b.execute(Req::LoadCredentials {
        account: "alice@x227p.localhost".into(),
    }) else {
        panic!("no credentials");
    };
    assert!(c.verify_password("alice on prosody"));
    assert!(c.sha1.is_present() && !c.sha256.is_present());

    let r = import(&b, &fixtures.join("ejabberd-23.01.xml"), &opts).expect("ejabberd");
    assert_eq!((r.stored.accounts, r.from_plaintext), (2, 2), "{r}");
    assert_eq!(
        (r.stored.offline, r.stored.vcards, r.stored.private),
        (1, 1, 1),
        "{r}"
    );
    assert_eq!(
        (r.stored.roster_items, r.stored.subscription_requests),
        (2, 1),
        "{r}"
    );
}
