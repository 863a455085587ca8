//! The PostgreSQL backend against the storage contract (the conformance
//! suite and the archive tests every backend passes), the schema's
//! versioning, the operator's error messages, and a database restart under
//! load. Each test has a fresh database in one throwaway cluster.

use std::sync::Arc;

use sqlx::Connection;
use xmpp_core::storage::{StorageRequest as Req, StorageResult as Res};

use super::cluster::Cluster;
use super::{schema, PgOptions, PostgresBackend};
use crate::storage::{Backend, StorageError};

/// A backend on a fresh database; `None` when PostgreSQL is not installed
/// (outside CI).
fn fresh() -> Option<PostgresBackend> {
    let cluster = Cluster::get()?;
    Some(PostgresBackend::open(cluster.fresh_database()).expect("open a fresh database"))
}

#[test]
fn every_request_kind() {
    let Some(b) = fresh() else { return };
    crate::storage::conformance::all_requests(&b);
}

#[test]
fn archives() {
    let Some(b) = fresh() else { return };
    crate::storage::archive_tests::archive_requests(&b);
}

#[test]
fn service_archives() {
    let Some(b) = fresh() else { return };
    crate::storage::archive_tests::service_archives(&b);
}

#[test]
fn replaced_messages() {
    let Some(b) = fresh() else { return };
    crate::storage::archive_tests::replaced_messages(&b);
}

#[test]
fn a_filled_store_reads_back() {
    let Some(b) = fresh() else { return };
    crate::storage::conformance::fill_for_migration(&b);
    crate::storage::conformance::check_migrated(&b);
}

#[test]
fn reopening_keeps_the_data_and_the_schema() {
    let Some(cluster) = Cluster::get() else {
        return;
    };
    let options = cluster.fresh_database();
    let b = PostgresBackend::open(options.clone()).expect("open");
    crate::storage::conformance::fill_for_migration(&b);
    drop(b);
    let again = PostgresBackend::open(options.clone()).expect("reopen");
    crate::storage::conformance::check_migrated(&again);
    assert_eq!(
        PostgresBackend::inspect(&options),
        Ok(Some(schema::CURRENT))
    );
}

#[test]
fn a_newer_schema_is_refused() {
    let Some(cluster) = Cluster::get() else {
        return;
    };
    let options = cluster.fresh_database();
    drop(PostgresBackend::open(options.clone()).expect("open"));
    smol::block_on(async {
        let mut conn =
            sqlx::PgConnection::connect_with(&options.connect_options().expect("options"))
                .await
                .expect("connect");
        sqlx::query("INSERT INTO vireo_schema (version, name) VALUES ($1, 'from the future')")
            .bind(schema::CURRENT + 1)
            .execute(&mut conn)
            .await
            .expect("insert");
    });
    match PostgresBackend::open(options) {
        Err(StorageError::NewerSchema { found, supported }) => {
            assert_eq!((found, supported), (schema::CURRENT + 1, schema::CURRENT));
        }
        other => panic!("expected NewerSchema, got {other:?}"),
    }
}

#[test]
fn an_empty_database_has_no_schema_until_opened() {
    let Some(cluster) = Cluster::get() else {
        return;
    };
    let options = cluster.fresh_database();
    assert_eq!(PostgresBackend::inspect(&options), Ok(None));
}

fn open_error(options: PgOptions) -> String {
    match PostgresBackend::open(options) {
        Ok(_) => panic!("opening should fail"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn errors_say_what_is_wrong() {
    let Some(cluster) = Cluster::get() else {
        return;
    };
    let missing = cluster.options("no_such_database");
    let text = open_error(missing.clone());
    assert!(
        text.contains("database \"no_such_database\" does not exist") && text.contains("createdb"),
        "{text}"
    );
    assert_eq!(PostgresBackend::inspect(&missing).err(), Some(text));

    let nobody = PgOptions {
        user: "nobody_here".into(),
        ..cluster.options("postgres")
    };
    let text = open_error(nobody);
    assert!(
        text.contains("refused the login of user \"nobody_here\""),
        "{text}"
    );

    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = closed.local_addr().expect("addr").port();
    drop(closed);
    let text = open_error(PgOptions {
        port,
        ..cluster.options("postgres")
    });
    assert!(
        text.contains("cannot reach PostgreSQL at 127.0.0.1:"),
        "{text}"
    );

    let text = open_error(PgOptions {
        tls: "sometimes".into(),
        ..cluster.options("postgres")
    });
    assert!(text.contains("unknown TLS mode"), "{text}");
}

/// A write issued while PostgreSQL restarts waits and then succeeds; the
/// health probe says "not ready" while it is down.
#[test]
fn a_database_restart_delays_requests_and_loses_nothing() {
    // Its own cluster: the restart must not disturb the other tests.
    let Some(cluster) = Cluster::own() else {
        return;
    };
    let b = Arc::new(PostgresBackend::open(cluster.fresh_database()).expect("open"));
    assert_eq!(
        b.execute(Req::CreateAccount {
            account: "alice@example.com".into(),
            credentials: crate::storage::conformance::creds(1),
        }),
        Res::Done
    );
    assert!(b.ready().is_ok());
    let writer = {
        let b = b.clone();
        std::thread::spawn(move || {
            let mut answers = Vec::new();
            for i in 0..200 {
                answers.push(b.execute(Req::PushOffline {
                    account: "alice@example.com".into(),
                    stanza: format!("<message id='{i}'/>"),
                    limit: None,
                }));
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
            answers
        })
    };
    std::thread::sleep(std::time::Duration::from_millis(200));
    cluster.restart();
    let answers = writer.join().expect("writer");
    let done: Vec<usize> = answers
        .iter()
        .enumerate()
        .filter(|(_, a)| **a == Res::Done)
        .map(|(i, _)| i)
        .collect();
    // A write in flight when the server went away may fail (its commit's
    // outcome unknown); everything answered Done is stored.
    assert!(done.len() >= 195, "{} of 200 done: {answers:?}", done.len());
    let stored = match b.execute(Req::TakeOffline {
        account: "alice@example.com".into(),
        page: xmpp_core::storage::OfflinePage::ALL,
    }) {
        Res::Offline(all) => all,
        other => panic!("{other:?}"),
    };
    for i in done {
        let wanted = format!("<message id='{i}'/>");
        assert!(stored.contains(&wanted), "acknowledged {wanted} is stored");
    }
    assert!(b.ready().is_ok());
}

/// More callers than connections: they wait for one (back-pressure), and
/// every write is done.
#[test]
fn an_exhausted_pool_makes_callers_wait() {
    let Some(cluster) = Cluster::get() else {
        return;
    };
    let options = PgOptions {
        pool_size: 1,
        ..cluster.fresh_database()
    };
    let b = Arc::new(PostgresBackend::open(options).expect("open"));
    assert_eq!(
        b.execute(Req::CreateAccount {
            account: "alice@example.com".into(),
            credentials: crate::storage::conformance::creds(1),
        }),
        Res::Done
    );
    let writers: Vec<_> = (0..8)
        .map(|t| {
            let b = b.clone();
            std::thread::spawn(move || {
                (0..25)
                    .map(|i| {
                        b.execute_batch(vec![Req::PushOffline {
                            account: "alice@example.com".into(),
                            stanza: format!("<message id='{t}-{i}'/>"),
                            limit: None,
                        }])
                    })
                    .filter(|answers| answers == &vec![Res::Done])
                    .count()
            })
        })
        .collect();
    let done: usize = writers.into_iter().map(|w| w.join().expect("writer")).sum();
    assert_eq!(done, 200);
    assert_eq!(
        b.peek_offline("alice@example.com").expect("peek").len(),
        200
    );
}

/// Round-trip cost of one read through the backend (not a test of
/// behaviour: `cargo test -p xmpp-runtime --lib postgres::tests::read_latency -- --ignored --nocapture`).
#[test]
#[ignore]
fn read_latency() {
    let Some(b) = fresh() else { return };
    crate::storage::conformance::fill_for_migration(&b);
    let req = || Req::LoadBlob {
        account: "alice@example.com".into(),
        key: "vcard".into(),
    };
    for _ in 0..100 {
        b.execute(req());
    }
    let started = std::time::Instant::now();
    for _ in 0..2000 {
        b.execute(req());
    }
    eprintln!(
        "one read: {:.1} us",
        started.elapsed().as_secs_f64() * 1e6 / 2000.0
    );
    let started = std::time::Instant::now();
    smol::block_on(async {
        let mut conn = b.pool.acquire().await.expect("conn");
        for _ in 0..2000 {
            sqlx::query("SELECT 1")
                .execute(&mut *conn)
                .await
                .expect("q");
        }
    });
    eprintln!(
        "SELECT 1 on one connection: {:.1} us",
        started.elapsed().as_secs_f64() * 1e6 / 2000.0
    );
}

/// Whether the backend's connections are encrypted, as the server sees it.
fn encrypted(b: &PostgresBackend) -> bool {
    smol::block_on(
        sqlx::query_scalar::<_, bool>("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
            .fetch_one(&b.pool),
    )
    .expect("pg_stat_ssl")
}

/// `sql_tls` as libpq's sslmode, against a server with a certificate for
/// "localhost" from a private authority: "require" encrypts without
/// checking the certificate; "verify-full" accepts it only with the
/// authority in `sql_tls_ca` and for the name it was issued for, and says
/// why when it refuses; "disable" stays in clear.
#[test]
fn tls_modes_encrypt_and_verify_as_libpq_does() {
    // Its own cluster: TLS needs a restart.
    let Some(cluster) = Cluster::own() else {
        return;
    };
    let ca = cluster.enable_tls();
    let base = cluster.options("postgres");

    let require = PostgresBackend::open(PgOptions {
        tls: "require".into(),
        ..base.clone()
    })
    .expect("require");
    assert!(encrypted(&require), "require encrypts");

    let verified = PostgresBackend::open(PgOptions {
        host: "localhost".into(),
        tls: "verify-full".into(),
        tls_ca: Some(ca.clone()),
        ..base.clone()
    })
    .expect("verify-full with the authority");
    assert!(encrypted(&verified));
    let mut results = verified.execute_batch(vec![Req::LoadCredentials {
        account: "nobody@example.com".into(),
    }]);
    assert_eq!(results.pop(), Some(Res::Credentials(None)));

    let text = open_error(PgOptions {
        host: "localhost".into(),
        tls: "verify-full".into(),
        ..base.clone()
    });
    assert!(
        text.contains("TLS to PostgreSQL at localhost:")
            && text.contains("certificate was refused")
            && text.contains("set storage.sql_tls_ca"),
        "the system's roots do not know the private authority: {text}"
    );

    let text = open_error(PgOptions {
        tls: "verify-full".into(),
        tls_ca: Some(ca.clone()),
        ..base.clone()
    });
    assert!(
        text.contains("TLS to PostgreSQL at 127.0.0.1:")
            && text.contains("issued for \"127.0.0.1\""),
        "a certificate for localhost is not one for 127.0.0.1: {text}"
    );

    let ca_only = PostgresBackend::open(PgOptions {
        tls: "verify-ca".into(),
        tls_ca: Some(ca.clone()),
        ..base.clone()
    })
    .expect("verify-ca does not check the name");
    assert!(encrypted(&ca_only));

    let text = open_error(PgOptions {
        tls: "verify-full".into(),
        tls_ca: Some(cluster_missing_file()),
        ..base.clone()
    });
    assert!(text.contains("sql_tls_ca"), "{text}");

    let clear = PostgresBackend::open(PgOptions {
        tls: "disable".into(),
        ..base
    })
    .expect("disable");
    assert!(!encrypted(&clear), "disable stays in clear");
}

fn cluster_missing_file() -> std::path::PathBuf {
    std::env::temp_dir().join("vireo-no-such-ca.pem")
}
