use super::*;
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use xmpp_core::storage::StorageRequest as Req;

use crate::storage::conformance::{creds, item};

fn open(dir: &Path) -> RedbBackend {
    match RedbBackend::open(dir) {
        Ok(b) => b,
        Err(e) => panic!("open failed: {e}"),
    }
}

#[test]
fn conformance() {
    let dir = tempfile::tempdir().unwrap();
    crate::storage::conformance::all_requests(&open(dir.path()));
}

#[test]
fn batch_applies_in_order_and_survives_reopen() {
    let dir = tempfile::tempdir().expect("tempdir");
    {
        let b = open(dir.path());
        let results = b.execute_batch(vec![
            Req::CreateAccount {
                account: "a@x".into(),
                credentials: creds(1),
            },
            Req::PushOffline {
                limit: None,
                account: "a@x".into(),
                stanza: "<m1/>".into(),
            },
            Req::PushOffline {
                limit: None,
                account: "nobody@x".into(),
                stanza: "<m/>".into(),
            },
            // A read inside a write batch sees the batch's earlier writes.
            Req::LoadCredentials {
                account: "a@x".into(),
            },
            Req::PushOffline {
                limit: None,
                account: "a@x".into(),
                stanza: "<m2/>".into(),
            },
            Req::CreateAccount {
                account: "bad\0name".into(),
                credentials: creds(1),
            },
        ]);
        assert_eq!(results[..5].to_vec(), {
            vec![
                StorageResult::Done,
                StorageResult::Done,
                StorageResult::NotFound,
                StorageResult::Credentials(Some(creds(1))),
                StorageResult::Done,
            ]
        });
        assert!(matches!(results[5], StorageResult::Failed(_)));
    }
    let b = open(dir.path());
    assert_eq!(
        b.execute(Req::TakeOffline {
            page: OfflinePage::ALL,
            account: "a@x".into()
        }),
        StorageResult::Offline(vec!["<m1/>".into(), "<m2/>".into()])
    );
}

#[test]
fn data_survives_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let account = "a@b".to_owned();
    {
        let b = open(dir.path());
        for req in [
            Req::CreateAccount {
                account: account.clone(),
                credentials: creds(1),
            },
            Req::PutRosterItem {
                account: account.clone(),
                item: item("c@d", true),
                version: 9,
            },
            Req::PushOffline {
                limit: None,
                account: account.clone(),
                stanza: "<m/>".into(),
            },
        ] {
            assert_eq!(b.execute(req), StorageResult::Done);
        }
    }
    let b = open(dir.path());
    assert_eq!(
        b.execute(Req::LoadCredentials {
            account: account.clone()
        }),
        StorageResult::Credentials(Some(creds(1)))
    );
    assert_eq!(
        b.execute(Req::LoadAccount {
            account: account.clone(),
            documents: crate::storage::conformance::LOADED.into(),
        }),
        StorageResult::Account(Some(AccountData {
            roster: vec![item("c@d", true)],
            roster_version: 9,
            ..AccountData::default()
        }))
    );
    assert_eq!(
        b.execute(Req::TakeOffline {
            page: OfflinePage::ALL,
            account
        }),
        StorageResult::Offline(vec!["<m/>".into()])
    );
}

/// Writes raw records straight into a table (corruption tests).
fn put_raw(b: &RedbBackend, def: Def, key: &[u8], value: &[u8]) {
    let db = b.open_db().unwrap();
    let tx = db.begin_write().unwrap();
    tx.open_table(def).unwrap().insert(key, value).unwrap();
    tx.commit().unwrap();
}

#[test]
fn corrupt_records_fail_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let b = open(dir.path());
    put_raw(&b, CREDENTIALS, b"x@y", b"\x01garbage");
    put_raw(&b, ROSTER, &account_key("x@y", "z@w"), &[1]);
    put_raw(&b, ROSTER_VERSION, b"x@y", &[1, 2]);
    put_raw(&b, OFFLINE, &offline_key("x@y", 0), &[0xff]);
    for req in [
        Req::LoadCredentials {
            account: "x@y".into(),
        },
        Req::LoadAccount {
            account: "x@y".into(),
            documents: crate::storage::conformance::LOADED.into(),
        },
        Req::TakeOffline {
            page: OfflinePage::ALL,
            account: "x@y".into(),
        },
    ] {
        assert!(matches!(b.execute(req), StorageResult::Failed(_)));
    }
}

/// A request that fails on a corrupt record writes nothing, and the other
/// requests of its batch are kept.
#[test]
fn a_failing_request_leaves_nothing_and_spares_its_batch() {
    let dir = tempfile::tempdir().unwrap();
    let b = open(dir.path());
    assert_eq!(
        b.execute(Req::CreateAccount {
            account: "a@x".into(),
            credentials: creds(1),
        }),
        StorageResult::Done
    );
    for i in 0..3 {
        assert_eq!(
            b.execute(Req::PushOffline {
                limit: None,
                account: "a@x".into(),
                stanza: format!("<m{i}/>"),
            }),
            StorageResult::Done
        );
    }
    // The third stanza becomes invalid UTF-8: taking the queue fails after
    // decoding two of them, and must not remove those two.
    put_raw(&b, OFFLINE, &offline_key("a@x", 2), &[0xff]);
    let results = b.execute_batch(vec![
        Req::TakeOffline {
            page: OfflinePage::ALL,
            account: "a@x".into(),
        },
        Req::StoreBlob {
            account: "a@x".into(),
            key: "vcard".into(),
            value: Some("<v/>".into()),
            limit: None,
        },
    ]);
    assert!(matches!(results[0], StorageResult::Failed(_)));
    assert_eq!(results[1], StorageResult::Done);
    assert_eq!(
        b.execute(Req::TakeOffline {
            page: OfflinePage {
                max: 2,
                max_bytes: 1000
            },
            account: "a@x".into(),
        }),
        StorageResult::Offline(vec!["<m0/>".into(), "<m1/>".into()])
    );
    assert_eq!(
        b.execute(Req::LoadBlob {
            account: "a@x".into(),
            key: "vcard".into(),
        }),
        StorageResult::Blob(Some("<v/>".into()))
    );
}

#[test]
fn open_on_a_regular_file_is_an_error() {
    let file = tempfile::NamedTempFile::new().unwrap();
    let err = RedbBackend::open(file.path()).unwrap_err();
    assert!(matches!(err, StorageError::Open { .. }), "{err}");
    assert!(err.to_string().contains(&file.path().display().to_string()));
}

#[test]
fn open_on_a_foreign_file_names_it() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join(FILE_NAME), b"not a redb file at all").unwrap();
    let err = RedbBackend::open(dir.path()).unwrap_err();
    assert!(matches!(err, StorageError::Open { .. }), "{err}");
    assert!(err.to_string().contains(FILE_NAME), "{err}");
}

#[test]
fn snapshot_is_a_complete_copy() {
    let dir = tempfile::tempdir().unwrap();
    let b = open(&dir.path().join("live"));
    crate::storage::conformance::all_requests(&b);
    let dest = dir.path().join("copy");
    b.snapshot(&dest).unwrap();
    assert!(b.snapshot(&dest).is_err(), "an existing destination");
    let copy = open(&dest);
    assert_eq!(copy.accounts().unwrap(), b.accounts().unwrap());
    for account in b.accounts().unwrap() {
        let load = || Req::LoadAccount {
            account: account.clone(),
            documents: crate::storage::conformance::LOADED.into(),
        };
        assert_eq!(copy.execute(load()), b.execute(load()));
        let take = || Req::TakeOffline {
            page: OfflinePage::ALL,
            account: account.clone(),
        };
        assert_eq!(copy.execute(take()), b.execute(take()));
    }
}

const CHILD_DIR: &str = "VIREO_REDB_CRASH_CHILD_DIR";
const CHILD_ACCOUNT: &str = "VIREO_REDB_CRASH_CHILD_ACCOUNT";

/// The child half of [`survives_sigkill_mid_write`]: a no-op unless the
/// parent re-executed this test binary with the environment set. Pushes
/// offline messages in batches forever, printing `ack N` once the first N
/// messages are durable.
#[test]
fn crash_child() {
    let (Some(dir), Some(account)) = (
        std::env::var_os(CHILD_DIR),
        std::env::var(CHILD_ACCOUNT).ok(),
    ) else {
        return;
    };
    let b = open(Path::new(&dir));
    let created = b.execute(Req::CreateAccount {
        account: account.clone(),
        credentials: creds(1),
    });
    assert!(matches!(
        created,
        StorageResult::Done | StorageResult::Conflict
    ));
    let mut out = std::io::stdout().lock();
    let mut i = 0u64;
    loop {
        let batch: Vec<Req> = (0..5)
            .map(|j| Req::PushOffline {
                limit: None,
                account: account.clone(),
                stanza: format!(
                    "<message id='{}'>{}</message>",
                    i + j,
                    "x".repeat(((i + j) % 500) as usize)
                ),
            })
            .collect();
        let results = b.execute_batch(batch);
        assert!(results.iter().all(|r| *r == StorageResult::Done));
        i += 5;
        writeln!(out, "ack {i}").unwrap();
        out.flush().unwrap();
    }
}

/// Every message acknowledged before a SIGKILL must be there after
/// reopening, in order. Several rounds so that the repair after a crash
/// also runs on a store that was itself repaired.
#[test]
fn survives_sigkill_mid_write() {
    let dir = tempfile::tempdir().unwrap();
    let exe = std::env::current_exe().unwrap();
    let mut acked: Vec<(String, u64)> = Vec::new();
    for round in 0..4u64 {
        let account = format!("user{round}@example.com");
        let mut child = Command::new(&exe)
            .args([
                "--exact",
                "storage::redb::tests::crash_child",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_DIR, dir.path())
            .env(CHILD_ACCOUNT, &account)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let target = 40 + round * 73;
        let mut last_ack = None;
        let stdout = child.stdout.take().unwrap();
        for line in BufReader::new(stdout).lines() {
            let line = line.unwrap();
            if let Some(n) = line.strip_prefix("ack ") {
                let n: u64 = n.trim().parse().unwrap();
                last_ack = Some(n);
                if n >= target {
                    child.kill().unwrap();
                    break;
                }
            }
        }
        let status = child.wait().unwrap();
        assert!(!status.success(), "child exited on its own: {status}");
        let Some(n) = last_ack else {
            panic!("child acknowledged nothing in round {round}");
        };
        acked.push((account, n));
        let b = match RedbBackend::open(dir.path()) {
            Ok(b) => b,
            Err(e) => panic!("reopen after SIGKILL failed in round {round}: {e}"),
        };
        let db = b.open_db().unwrap();
        let tx = db.begin_read().unwrap();
        let offline = tx.open_table(OFFLINE).unwrap();
        for (account, n) in &acked {
            let (p, end) = (prefix(account), prefix_end(account));
            let stored: Vec<String> = offline
                .range(p.as_slice()..end.as_slice())
                .unwrap()
                .map(|e| String::from_utf8(e.unwrap().1.value().to_vec()).unwrap())
                .collect();
            assert!(
                stored.len() as u64 >= *n,
                "{account}: {} stored < {n} acknowledged",
                stored.len()
            );
            for (i, s) in stored.iter().enumerate() {
                assert!(
                    s.starts_with(&format!("<message id='{i}'>")),
                    "{account}: message {i} out of order: {s}"
                );
            }
        }
    }
}

#[test]
fn import_sled_copies_every_tree() {
    let dir = tempfile::tempdir().expect("tempdir");
    let sled_dir = dir.path().join("sled");
    let sled = crate::storage::SledBackend::open(&sled_dir).expect("sled");
    crate::storage::conformance::fill_for_migration(&sled);
    let redb = open(&dir.path().join("redb"));
    let report = redb.import_sled(&sled).expect("import");
    assert_eq!(report.accounts, 2);
    assert_eq!(report.tables.len(), 6);
    assert!(report.tables.iter().all(|&(_, n)| n > 0), "{report:?}");
    crate::storage::conformance::check_migrated(&redb);
    // Committed in many small transactions, the copy is the same.
    let chunked = open(&dir.path().join("chunked"));
    assert_eq!(
        chunked.import_sled_in_chunks(&sled, 64).expect("import"),
        report
    );
    crate::storage::conformance::check_migrated(&chunked);
}

/// After `close` (the end of a graceful shutdown) requests fail with a
/// message saying so, and the file reopens with everything in it.
#[test]
fn a_closed_store_refuses_requests_and_reopens() {
    let dir = tempfile::tempdir().expect("tempdir");
    let b = RedbBackend::open(dir.path()).expect("open");
    crate::storage::conformance::fill_for_migration(&b);
    b.close();
    match b.execute(Req::LoadCredentials {
        account: "alice@example.com".into(),
    }) {
        StorageResult::Failed(text) => assert!(text.contains("is closed"), "{text}"),
        other => panic!("{other:?}"),
    }
    drop(b);
    let again = RedbBackend::open(dir.path()).expect("reopen");
    crate::storage::conformance::check_migrated(&again);
}
