use super::*;
use xmpp_core::archive::{
    ArchiveBounds, ArchiveFilter, ArchiveId, ArchiveQuery, ArchivedMessage, PageRequest,
};
use xmpp_core::sasl::{ScramKeys, StoredCredentials};
use xmpp_core::storage::{
    OfflinePage, RosterItem, StorageRequest as Req, StorageResult as Res, Subscription,
};

fn creds(n: u8) -> StoredCredentials {
    StoredCredentials {
        iterations: 4096,
        salt: vec![n; 16],
        sha1: ScramKeys {
            stored_key: vec![n; 20],
            server_key: vec![n; 20],
        },
        sha256: ScramKeys {
            stored_key: vec![n; 32],
            server_key: vec![n; 32],
        },
    }
}

fn item(jid: &str) -> RosterItem {
    RosterItem {
        jid: jid.into(),
        name: Some("Bob".into()),
        subscription: Subscription {
            to: true,
            from: true,
            pending_out: false,
            pending_in: false,
        },
        groups: vec!["friends".into()],
        in_roster: true,
    }
}

fn archived(n: u8) -> ArchivedMessage {
    let mut id = [0u8; 16];
    id[6] = 1;
    id[7] = n;
    ArchivedMessage {
        id: ArchiveId::from_bytes(id),
        with: "bob@example.com/phone".into(),
        stanza: format!("<message xmlns='jabber:client'><body>{n}</body></message>"),
    }
}

fn fill(b: &dyn Backend) {
    let mut reqs = Vec::new();
    for (n, name) in ["alice@example.com", "bob@example.com", "carol@example.com"]
        .into_iter()
        .enumerate()
    {
        reqs.push(Req::CreateAccount {
            account: name.into(),
            credentials: creds(n as u8 + 1),
        });
    }
    reqs.push(Req::PutRosterItem {
        account: "alice@example.com".into(),
        item: item("bob@example.com"),
        version: 3,
    });
    for body in ["one", "two"] {
        reqs.push(Req::PushOffline {
            account: "bob@example.com".into(),
            stanza: format!("<message><body>{body}</body></message>"),
            limit: None,
        });
    }
    reqs.push(Req::StoreBlob {
        account: "alice@example.com".into(),
        key: "vcard".into(),
        value: Some("<vCard xmlns='vcard-temp'><FN>Alice</FN></vCard>".into()),
        limit: None,
    });
    for n in 1..=20 {
        reqs.push(Req::AppendArchive {
            account: "alice@example.com".into(),
            message: archived(n),
        });
    }
    let results = b.execute_batch(reqs);
    assert!(results.iter().all(|r| *r == Res::Done), "{results:?}");
    b.flush().expect("flush");
}

fn check(b: &dyn Backend) {
    let mut accounts = b.accounts().expect("accounts");
    accounts.sort();
    assert_eq!(
        accounts,
        ["alice@example.com", "bob@example.com", "carol@example.com"]
    );
    assert_eq!(
        b.execute(Req::LoadCredentials {
            account: "carol@example.com".into()
        }),
        Res::Credentials(Some(creds(3)))
    );
    match b.execute(Req::LoadAccount {
        account: "alice@example.com".into(),
        documents: Default::default(),
    }) {
        Res::Account(Some(data)) => {
            assert_eq!(data.roster, vec![item("bob@example.com")]);
            assert_eq!(data.roster_version, 3);
        }
        other => panic!("alice: {other:?}"),
    }
    assert_eq!(
        b.execute(Req::LoadBlob {
            account: "alice@example.com".into(),
            key: "vcard".into()
        }),
        Res::Blob(Some(
            "<vCard xmlns='vcard-temp'><FN>Alice</FN></vCard>".into()
        ))
    );
    let query = ArchiveQuery {
        filter: ArchiveFilter::default(),
        page: PageRequest {
            max: 5,
            after: None,
            before: None,
            backward: true,
        },
    };
    match b.execute(Req::QueryArchive {
        account: "alice@example.com".into(),
        query,
    }) {
        Res::ArchivePage(page) => {
            let expected: Vec<_> = (16..=20).map(archived).collect();
            assert_eq!(page.items, expected);
            assert_eq!(page.count, Some(20));
        }
        other => panic!("archive: {other:?}"),
    }
    assert_eq!(
        b.execute(Req::ArchiveMetadata {
            account: "alice@example.com".into()
        }),
        Res::ArchiveBounds(Some(ArchiveBounds {
            first: archived(1).id,
            last: archived(20).id,
        }))
    );
    assert_eq!(
        b.execute(Req::TakeOffline {
            account: "bob@example.com".into(),
            page: OfflinePage::ALL,
        }),
        Res::Offline(vec![
            "<message><body>one</body></message>".into(),
            "<message><body>two</body></message>".into(),
        ])
    );
}

const CACHE: u64 = 1 << 20;

#[test]
fn a_sled_store_is_migrated_to_redb_and_moved_aside() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = dir.path().join("store");
    {
        let sled = open_store_at("sled", &store, CACHE).expect("sled");
        fill(sled.as_ref());
    }
    assert!(holds_sled(&store));
    let b = open_store_at("redb", &store, CACHE).expect("migrated");
    check(b.as_ref());
    assert!(store.join("vireo.redb").is_file());
    assert!(
        !holds_sled(&store),
        "sled files left in {}",
        store.display()
    );
    assert!(!store.join(MIGRATION_DIR).exists());
    let aside: Vec<PathBuf> = std::fs::read_dir(&store)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("sled-migrated-"))
        })
        .collect();
    assert_eq!(aside.len(), 1, "{aside:?}");
    assert!(holds_sled(&aside[0]));
    drop(b);
    // The kept sled files are still a readable store.
    check(
        open_store_at("sled", &aside[0], CACHE)
            .expect("kept")
            .as_ref(),
    );
    // Reopening does not migrate again.
    let again = open_store_at("redb", &store, CACHE).expect("reopen");
    assert_eq!(again.accounts().expect("accounts").len(), 3);
}

#[test]
fn a_failed_migration_leaves_the_sled_store_untouched() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = dir.path().join("store");
    {
        let sled = open_store_at("sled", &store, CACHE).expect("sled");
        fill(sled.as_ref());
    }
    let before: Vec<PathBuf> = sled_entries(&store);
    // The redb file cannot be built: the place of its directory is taken
    // by a file.
    std::fs::write(store.join(MIGRATION_DIR), b"in the way").unwrap();
    let err = match open_store_at("redb", &store, CACHE) {
        Ok(_) => panic!("the migration should fail"),
        Err(e) => e,
    };
    assert!(err.contains(&store.display().to_string()), "{err}");
    assert!(
        err.contains("migrating the sled store to redb failed"),
        "{err}"
    );
    assert!(holds_sled(&store));
    assert_eq!(sled_entries(&store), before);
    assert!(!store.join("vireo.redb").exists());
    check(open_store_at("sled", &store, CACHE).expect("sled").as_ref());
}

#[test]
fn a_fresh_store_is_redb_and_unknown_drivers_are_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = dir.path().join("store");
    fill(open_store_at("redb", &store, CACHE).expect("redb").as_ref());
    assert!(store.join("vireo.redb").is_file());
    assert!(!holds_sled(&store));
    check(
        open_store_at("redb", &store, CACHE)
            .expect("reopen")
            .as_ref(),
    );
    let err = match open_store_at("postgresql", &store, CACHE) {
        Ok(_) => panic!("unknown driver accepted"),
        Err(e) => e,
    };
    assert!(err.contains("unknown embedded storage.driver"), "{err}");
}
