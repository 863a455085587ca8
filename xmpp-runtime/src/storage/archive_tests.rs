//! Archive requests against every backend: a fixed walk through the edge
//! cases, and a property test running random requests against the memory
//! store and each on-disk backend side by side, which must answer
//! identically.

use super::{Backend, MemoryBackend, RedbBackend, SledBackend};
use proptest::prelude::*;
use xmpp_core::archive::{
    ArchiveBounds, ArchiveFilter, ArchiveId, ArchivePage, ArchiveQuery, ArchivedMessage,
    IdGenerator, PageRequest, WithJid,
};
use xmpp_core::storage::{StorageRequest as Req, StorageResult as Res};
use xmpp_core::Entropy;

fn msg(id: ArchiveId, with: &str, body: &str) -> ArchivedMessage {
    ArchivedMessage {
        id,
        with: with.to_owned(),
        stanza: format!("<message xmlns='jabber:client'><body>{body}</body></message>"),
    }
}

fn query(filter: ArchiveFilter, max: usize) -> ArchiveQuery {
    ArchiveQuery {
        filter,
        page: PageRequest {
            max,
            after: None,
            before: None,
            backward: false,
        },
    }
}

fn page(b: &impl Backend, account: &str, q: ArchiveQuery) -> ArchivePage {
    match b.execute(Req::QueryArchive {
        account: account.into(),
        query: q,
    }) {
        Res::ArchivePage(p) => p,
        other => panic!("expected a page, got {other:?}"),
    }
}

fn ids(p: &ArchivePage) -> Vec<ArchiveId> {
    p.items.iter().map(|m| m.id).collect()
}

/// Every archive request kind and its edge cases.
pub fn archive_requests<B: Backend>(b: &B) {
    let alice = "alice@example.com";
    let create = |account: &str| Req::CreateAccount {
        account: account.into(),
        credentials: super::conformance::creds(1),
    };
    let mut gen = IdGenerator::new(Entropy::from_u64(9));
    let id0 = gen.next(1_000);
    assert_eq!(
        b.execute(Req::AppendArchive {
            account: alice.into(),
            message: msg(id0, "bob@x/r", "lost")
        }),
        Res::NotFound,
        "unknown account"
    );
    assert_eq!(b.execute(create(alice)), Res::Done);
    assert_eq!(b.execute(create("alice@example.co")), Res::Done);
    assert_eq!(
        b.execute(Req::ArchiveMetadata {
            account: alice.into()
        }),
        Res::ArchiveBounds(None)
    );
    // 10 messages at t=1000..1009: with bob (two resources), carol, self.
    let withs = ["bob@x/r1", "bob@x/r2", "carol@y", "alice@example.com/phone"];
    let mut all = Vec::new();
    for i in 0..10u64 {
        let id = gen.next(1_000 + i);
        let m = msg(id, withs[i as usize % withs.len()], &i.to_string());
        assert_eq!(
            b.execute(Req::AppendArchive {
                account: alice.into(),
                message: m.clone()
            }),
            Res::Done
        );
        all.push(m);
    }
    assert_eq!(
        b.execute(Req::AppendArchive {
            account: alice.into(),
            message: all[3].clone()
        }),
        Res::Conflict,
        "ids are never reused"
    );
    let all_ids: Vec<ArchiveId> = all.iter().map(|m| m.id).collect();
    // Everything, in order, with count and index.
    let p = page(b, alice, query(ArchiveFilter::default(), 100));
    assert_eq!(p.items, all);
    assert!(p.complete);
    assert_eq!((p.count, p.first_index), (Some(10), Some(0)));
    // The prefix account sees nothing of it.
    let p = page(b, "alice@example.co", query(ArchiveFilter::default(), 100));
    assert_eq!((p.items.len(), p.count), (0, Some(0)));
    // Forward paging by 4.
    let mut q = query(ArchiveFilter::default(), 4);
    let p1 = page(b, alice, q.clone());
    assert_eq!((ids(&p1), p1.complete), (all_ids[..4].to_vec(), false));
    q.page.after = Some(all_ids[3]);
    let p2 = page(b, alice, q.clone());
    assert_eq!(
        (ids(&p2), p2.complete, p2.first_index),
        (all_ids[4..8].to_vec(), false, None)
    );
    q.page.after = Some(all_ids[7]);
    let p3 = page(b, alice, q.clone());
    assert_eq!(
        (ids(&p3), p3.complete, p3.first_index),
        (all_ids[8..].to_vec(), true, Some(8))
    );
    // The last page, then backwards.
    let mut q = query(ArchiveFilter::default(), 4);
    q.page.backward = true;
    let p = page(b, alice, q.clone());
    assert_eq!(
        (ids(&p), p.complete, p.first_index),
        (all_ids[6..].to_vec(), false, Some(6))
    );
    q.page.before = Some(all_ids[6]);
    let p = page(b, alice, q.clone());
    assert_eq!((ids(&p), p.complete), (all_ids[2..6].to_vec(), false));
    q.page.before = Some(all_ids[2]);
    let p = page(b, alice, q);
    assert_eq!(
        (ids(&p), p.complete, p.first_index),
        (all_ids[..2].to_vec(), true, Some(0))
    );
    // with: bare matches both resources, full only one; counts.
    let with = |j: &str| ArchiveFilter {
        with: Some(WithJid::new(j)),
        ..ArchiveFilter::default()
    };
    let p = page(b, alice, query(with("bob@x"), 100));
    assert_eq!(
        ids(&p),
        vec![all_ids[0], all_ids[1], all_ids[4], all_ids[5], all_ids[8], all_ids[9]]
    );
    assert_eq!(p.count, Some(6));
    let p = page(b, alice, query(with("bob@x/r2"), 100));
    assert_eq!(
        (ids(&p), p.count),
        (vec![all_ids[1], all_ids[5], all_ids[9]], Some(3))
    );
    let p = page(b, alice, query(with("alice@example.com"), 100));
    assert_eq!(ids(&p), vec![all_ids[3], all_ids[7]]);
    // Time range [1002, 1005], then with ids.
    let range = ArchiveFilter {
        start: Some(1_002),
        end: Some(1_005),
        ..ArchiveFilter::default()
    };
    let p = page(b, alice, query(range.clone(), 100));
    assert_eq!((ids(&p), p.count), (all_ids[2..6].to_vec(), Some(4)));
    let between = ArchiveFilter {
        after_id: Some(all_ids[1]),
        before_id: Some(all_ids[4]),
        ..ArchiveFilter::default()
    };
    assert_eq!(
        ids(&page(b, alice, query(between, 100))),
        all_ids[2..4].to_vec()
    );
    let picked = ArchiveFilter {
        ids: Some(vec![all_ids[9], all_ids[2], all_ids[2], all_ids[5]]),
        ..range
    };
    let p = page(b, alice, query(picked, 1));
    assert_eq!(
        (ids(&p), p.count, p.complete),
        (vec![all_ids[2]], Some(2), false)
    );
    // Unknown ids anywhere: NotFound.
    let unknown = gen.next(5_000);
    let mut q = query(ArchiveFilter::default(), 10);
    q.page.after = Some(unknown);
    assert_eq!(
        b.execute(Req::QueryArchive {
            account: alice.into(),
            query: q
        }),
        Res::NotFound
    );
    let q = query(
        ArchiveFilter {
            ids: Some(vec![all_ids[0], unknown]),
            ..ArchiveFilter::default()
        },
        10,
    );
    assert_eq!(
        b.execute(Req::QueryArchive {
            account: alice.into(),
            query: q
        }),
        Res::NotFound
    );
    assert_eq!(
        b.execute(Req::ArchiveMetadata {
            account: alice.into()
        }),
        Res::ArchiveBounds(Some(ArchiveBounds {
            first: all_ids[0],
            last: all_ids[9]
        }))
    );
    // Retention: before t=1004, three at a time, then the rest.
    assert_eq!(
        b.execute(Req::PurgeArchive {
            before: 1_004,
            from: None,
            limit: 3
        }),
        Res::Purged {
            removed: 3,
            next: Some(alice.into())
        }
    );
    assert_eq!(
        b.execute(Req::PurgeArchive {
            before: 1_004,
            from: Some(alice.into()),
            limit: 3
        }),
        Res::Purged {
            removed: 1,
            next: None
        }
    );
    let p = page(b, alice, query(ArchiveFilter::default(), 100));
    assert_eq!((ids(&p), p.count), (all_ids[4..].to_vec(), Some(6)));
    assert_eq!(page(b, alice, query(with("bob@x"), 100)).count, Some(4));
    // Deleting the account deletes the archive; a new one starts empty.
    assert_eq!(
        b.execute(Req::DeleteAccount {
            account: alice.into()
        }),
        Res::Done
    );
    assert_eq!(b.execute(create(alice)), Res::Done);
    let p = page(b, alice, query(ArchiveFilter::default(), 100));
    assert_eq!((p.items.len(), p.count), (0, Some(0)));
    assert_eq!(page(b, alice, query(with("bob@x"), 100)).count, Some(0));
}

/// A service entity's archive (a room, `conference.example.com/room`)
/// exists without an account, apart from every account's.
pub fn service_archives<B: Backend>(b: &B) {
    let room = "conference.example.com/room";
    let mut gen = IdGenerator::new(Entropy::from_u64(3));
    let id = gen.next(5_000);
    let m = msg(id, "room@conference.example.com/alice", "hi");
    assert_eq!(
        b.execute(Req::AppendArchive {
            account: room.into(),
            message: m.clone()
        }),
        Res::Done
    );
    assert_eq!(
        page(b, room, query(ArchiveFilter::default(), 10)).items,
        vec![m]
    );
    assert!(page(
        b,
        "conference.example.com/other",
        query(ArchiveFilter::default(), 10)
    )
    .items
    .is_empty());
    assert_eq!(
        b.execute(Req::PurgeArchive {
            before: 6_000,
            from: None,
            limit: 10
        }),
        Res::Purged {
            removed: 1,
            next: None
        },
        "retention reaches room archives too"
    );
}

#[test]
fn service_archives_on_every_backend() {
    service_archives(&MemoryBackend::new());
    let sled = tempfile::tempdir().expect("tempdir");
    service_archives(&SledBackend::open(sled.path()).expect("sled"));
    let redb = tempfile::tempdir().expect("tempdir");
    service_archives(&RedbBackend::open(redb.path()).expect("redb"));
}

/// A retracted message becomes a tombstone in place: same id, time,
/// `with` (the with-index and counts unchanged), the new stanza served;
/// an unknown message or account is `NotFound`.
pub fn replaced_messages<B: Backend>(b: &B) {
    let room = "conference.example.com/room";
    let mut gen = IdGenerator::new(Entropy::from_u64(4));
    let (first, second) = (gen.next(5_000), gen.next(5_001));
    for (id, body) in [(first, "spam"), (second, "fine")] {
        let m = msg(id, "room@conference.example.com/bob", body);
        assert_eq!(
            b.execute(Req::AppendArchive {
                account: room.into(),
                message: m
            }),
            Res::Done
        );
    }
    let tombstone = "<message xmlns='jabber:client'><retracted/></message>".to_owned();
    assert_eq!(
        b.execute(Req::ReplaceArchived {
            account: room.into(),
            id: first,
            stanza: tombstone.clone()
        }),
        Res::Done
    );
    let by_bob = ArchiveFilter {
        with: Some(WithJid::new("room@conference.example.com")),
        ..ArchiveFilter::default()
    };
    let p = page(b, room, query(by_bob, 10));
    assert_eq!(p.count, Some(2));
    assert_eq!(
        p.items,
        vec![
            ArchivedMessage {
                id: first,
                with: "room@conference.example.com/bob".into(),
                stanza: tombstone.clone()
            },
            msg(second, "room@conference.example.com/bob", "fine")
        ]
    );
    let unknown = gen.next(5_002);
    for (account, id) in [(room, unknown), ("conference.example.com/none", first)] {
        assert_eq!(
            b.execute(Req::ReplaceArchived {
                account: account.into(),
                id,
                stanza: tombstone.clone()
            }),
            Res::NotFound
        );
    }
    assert_eq!(
        b.execute(Req::ReplaceArchived {
            account: "nobody@example.com".into(),
            id: first,
            stanza: tombstone
        }),
        Res::NotFound,
        "an unknown account"
    );
}

#[test]
fn replaced_messages_on_every_backend() {
    replaced_messages(&MemoryBackend::new());
    let sled = tempfile::tempdir().expect("tempdir");
    replaced_messages(&SledBackend::open(sled.path()).expect("sled"));
    let redb = tempfile::tempdir().expect("tempdir");
    replaced_messages(&RedbBackend::open(redb.path()).expect("redb"));
}

#[test]
fn memory_archive() {
    archive_requests(&MemoryBackend::new());
}

#[test]
fn sled_archive() {
    let dir = tempfile::tempdir().expect("tempdir");
    let b = SledBackend::open(dir.path()).expect("open");
    archive_requests(&b);
}

#[test]
fn redb_archive() {
    let dir = tempfile::tempdir().expect("tempdir");
    let b = RedbBackend::open(dir.path()).expect("open");
    archive_requests(&b);
}

#[test]
fn sled_archive_survives_reopen() {
    archive_survives_reopen(|p| SledBackend::open(p).expect("open"));
}

#[test]
fn redb_archive_survives_reopen() {
    archive_survives_reopen(|p| RedbBackend::open(p).expect("open"));
}

/// The archive survives a reopen, and its counts with it.
fn archive_survives_reopen<B: Backend>(open: impl Fn(&std::path::Path) -> B) {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut gen = IdGenerator::new(Entropy::from_u64(1));
    let account = "a@x";
    let stored: Vec<ArchivedMessage> = (0..50)
        .map(|i| msg(gen.next(10 + i), "b@x/r", &i.to_string()))
        .collect();
    {
        let b = open(dir.path());
        let mut reqs = vec![Req::CreateAccount {
            account: account.into(),
            credentials: super::conformance::creds(1),
        }];
        reqs.extend(stored.iter().map(|m| Req::AppendArchive {
            account: account.into(),
            message: m.clone(),
        }));
        assert!(b.execute_batch(reqs).iter().all(|r| *r == Res::Done));
    }
    let b = open(dir.path());
    let p = page(&b, account, query(ArchiveFilter::default(), 100));
    assert_eq!((p.items, p.count), (stored, Some(50)));
}

// ------------------------------------------------------------ the property

/// One random request, with ids and times as indexes into what the run
/// has produced so far.
#[derive(Debug, Clone)]
enum Op {
    Append {
        account: usize,
        with: usize,
        advance: u64,
    },
    Query {
        account: usize,
        with: Option<usize>,
        start: Option<u64>,
        end: Option<u64>,
        after_id: Option<usize>,
        before_id: Option<usize>,
        ids: Option<Vec<usize>>,
        max: usize,
        after: Option<usize>,
        before: Option<usize>,
        backward: bool,
    },
    Metadata(usize),
    Purge {
        before: u64,
        from: Option<usize>,
        limit: u64,
    },
    Recreate(usize),
    /// A message made a tombstone (account, id index as for queries).
    Replace(usize, usize),
    /// Appends of several accounts in one group commit (`execute_batch`):
    /// (account, with, kind) with [`AppendKind`] as `kind`.
    Batch(Vec<(usize, usize, u8)>),
}

/// Which id a batched append uses: the sled backend remembers each
/// account's newest id between batches, and these are the cases where
/// that must not change the answer.
#[derive(Debug, Clone, Copy)]
enum AppendKind {
    /// A new id, above everything archived so far.
    Fresh,
    /// An id the run already produced (archived, purged or never stored).
    Replay,
    /// A new id from before the account's newest (a clock set back).
    Late,
}

impl AppendKind {
    fn of(k: u8) -> Self {
        match k % 4 {
            0 | 1 => AppendKind::Fresh,
            2 => AppendKind::Replay,
            _ => AppendKind::Late,
        }
    }
}

const ACCOUNTS: [&str; 3] = ["a@x", "a@x.y", "b@x"];
const WITHS: [&str; 6] = ["c@x/1", "c@x/2", "c@x", "d@y/1", "a@x/me", "e@z"];

fn op() -> impl Strategy<Value = Op> {
    // Mostly absent, so that queries often reach the count and paging
    // logic instead of failing on an id.
    let idx = || proptest::option::weighted(0.25, 0usize..64);
    let time = || proptest::option::weighted(0.3, 0u64..40);
    prop_oneof![
        6 => (0usize..3, 0usize..6, 0u64..3).prop_map(|(account, with, advance)| Op::Append { account, with, advance }),
        6 => (
            (0usize..3, proptest::option::of(0usize..8), time(), time()),
            (idx(), idx(), proptest::option::weighted(0.15, proptest::collection::vec(0usize..64, 0..4))),
            (0usize..6, idx(), idx(), any::<bool>()),
        )
            .prop_map(|((account, with, start, end), (after_id, before_id, ids), (max, after, before, backward))| Op::Query {
                account, with, start, end, after_id, before_id, ids, max, after, before, backward,
            }),
        1 => (0usize..3).prop_map(Op::Metadata),
        1 => (0u64..40, proptest::option::of(0usize..3), 1u64..5).prop_map(|(before, from, limit)| Op::Purge { before, from, limit }),
        1 => (0usize..3).prop_map(Op::Recreate),
        2 => (0usize..3, 0usize..64).prop_map(|(account, id)| Op::Replace(account, id)),
        3 => proptest::collection::vec((0usize..3, 0usize..6, any::<u8>()), 1..12).prop_map(Op::Batch),
    ]
}

/// The with filters queries use: every stored `with`, plus their bare JIDs.
fn with_filter(i: usize) -> WithJid {
    const FILTERS: [&str; 8] = [
        "c@x", "c@x/1", "c@x/2", "d@y", "d@y/1", "a@x", "e@z", "nobody@n",
    ];
    WithJid::new(FILTERS[i % FILTERS.len()])
}

/// An id the run produced (`known`), or now and then one it never did.
fn pick(known: &[ArchiveId], unknown: ArchiveId, i: usize) -> ArchiveId {
    if known.is_empty() || i >= 60 {
        unknown
    } else {
        known[i % known.len()]
    }
}

/// Where ids come from: `gen` moves with the clock, `late` lags behind it.
struct Ids {
    gen: IdGenerator,
    late: IdGenerator,
    clock: u64,
}

/// The requests of one [`Op::Batch`].
fn batch(appends: &[(usize, usize, u8)], known: &[ArchiveId], ids: &mut Ids) -> Vec<Req> {
    appends
        .iter()
        .map(|&(account, with, kind)| {
            let id = match AppendKind::of(kind) {
                AppendKind::Fresh => {
                    ids.clock += u64::from(kind % 3);
                    ids.gen.next(1_000 + ids.clock)
                }
                AppendKind::Replay => pick(known, ids.gen.next(1_000 + ids.clock), kind as usize),
                AppendKind::Late => ids
                    .late
                    .next(1_000 + ids.clock.saturating_sub(u64::from(kind % 7))),
            };
            Req::AppendArchive {
                account: ACCOUNTS[account].into(),
                message: msg(id, WITHS[with], "x"),
            }
        })
        .collect()
}

fn request(
    op: &Op,
    known: &[ArchiveId],
    unknown: ArchiveId,
    gen: &mut IdGenerator,
    clock: &mut u64,
) -> Req {
    let base = 1_000;
    match op {
        Op::Batch(_) => unreachable!("batches go through `batch`"),
        Op::Append {
            account,
            with,
            advance,
        } => {
            *clock += advance;
            Req::AppendArchive {
                account: ACCOUNTS[*account].into(),
                message: msg(gen.next(base + *clock), WITHS[*with], "x"),
            }
        }
        Op::Query {
            account,
            with,
            start,
            end,
            after_id,
            before_id,
            ids,
            max,
            after,
            before,
            backward,
        } => {
            let id = |i: &usize| pick(known, unknown, *i);
            Req::QueryArchive {
                account: ACCOUNTS[*account].into(),
                query: ArchiveQuery {
                    filter: ArchiveFilter {
                        with: with.map(with_filter),
                        start: start.map(|s| base + s),
                        end: end.map(|e| base + e),
                        after_id: after_id.as_ref().map(id),
                        before_id: before_id.as_ref().map(id),
                        ids: ids.as_ref().map(|v| v.iter().map(id).collect()),
                    },
                    page: PageRequest {
                        max: *max,
                        after: after.as_ref().map(id),
                        before: before.as_ref().map(id),
                        backward: *backward || before.is_some(),
                    },
                },
            }
        }
        Op::Metadata(a) => Req::ArchiveMetadata {
            account: ACCOUNTS[*a].into(),
        },
        Op::Purge {
            before,
            from,
            limit,
        } => Req::PurgeArchive {
            before: base + before,
            from: from.map(|f| ACCOUNTS[f].to_owned()),
            limit: *limit,
        },
        Op::Recreate(a) => Req::DeleteAccount {
            account: ACCOUNTS[*a].into(),
        },
        Op::Replace(a, i) => Req::ReplaceArchived {
            account: ACCOUNTS[*a].into(),
            id: pick(known, unknown, *i),
            stanza: format!("<message xmlns='jabber:client'><retracted n='{i}'/></message>"),
        },
    }
}

/// Runs `ops` against the memory store and `disk` side by side.
fn answer_alike<B: Backend>(disk: &B, ops: &[Op]) -> Result<(), TestCaseError> {
    let memory = MemoryBackend::new();
    for a in ACCOUNTS {
        let create = || Req::CreateAccount {
            account: a.into(),
            credentials: super::conformance::creds(1),
        };
        prop_assert_eq!(memory.execute(create()), Res::Done);
        prop_assert_eq!(disk.execute(create()), Res::Done);
    }
    let mut ids = Ids {
        gen: IdGenerator::new(Entropy::from_u64(5)),
        late: IdGenerator::new(Entropy::from_u64(7)),
        clock: 0,
    };
    let unknown = IdGenerator::new(Entropy::from_u64(6)).next(1_010);
    let mut known: Vec<ArchiveId> = Vec::new();
    for op in ops {
        if let Op::Batch(appends) = op {
            let reqs = batch(appends, &known, &mut ids);
            for r in &reqs {
                if let Req::AppendArchive { message, .. } = r {
                    known.push(message.id);
                }
            }
            let m = memory.execute_batch(reqs.clone());
            let s = disk.execute_batch(reqs.clone());
            prop_assert_eq!(&m, &s, "batch {:?}", reqs);
            continue;
        }
        let req = request(op, &known, unknown, &mut ids.gen, &mut ids.clock);
        if let Req::AppendArchive { message, .. } = &req {
            known.push(message.id);
        }
        let (m, s) = (memory.execute(req.clone()), disk.execute(req.clone()));
        prop_assert_eq!(&m, &s, "request {:?}", req);
        if let Op::Recreate(a) = op {
            let create = || Req::CreateAccount {
                account: ACCOUNTS[*a].into(),
                credentials: super::conformance::creds(2),
            };
            prop_assert_eq!(memory.execute(create()), disk.execute(create()));
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn memory_and_sled_answer_alike(ops in proptest::collection::vec(op(), 1..80)) {
        let dir = tempfile::tempdir().expect("tempdir");
        answer_alike(&SledBackend::open(dir.path()).expect("open"), &ops)?;
    }

    #[test]
    fn memory_and_redb_answer_alike(ops in proptest::collection::vec(op(), 1..80)) {
        let dir = tempfile::tempdir().expect("tempdir");
        answer_alike(&RedbBackend::open(dir.path()).expect("open"), &ops)?;
    }
}

proptest! {
    // Fewer cases: each makes a database.
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn memory_and_postgres_answer_alike(ops in proptest::collection::vec(op(), 1..80)) {
        if let Some(cluster) = super::postgres::cluster::Cluster::get() {
            let b = super::PostgresBackend::open(cluster.fresh_database()).expect("open");
            answer_alike(&b, &ops)?;
        }
    }
}

// ---------------------------------------------------------- crash safety

const CHILD_DIR: &str = "VIREO_ARCHIVE_CRASH_CHILD_DIR";
/// `redb` to run the child on redb, sled otherwise.
const CHILD_BACKEND: &str = "VIREO_ARCHIVE_CRASH_CHILD_BACKEND";
/// With the backend `postgres`: "PORT DATABASE" of the test cluster.
const CHILD_PG: &str = "VIREO_ARCHIVE_CRASH_CHILD_PG";

/// The child half of [`archive_survives_sigkill`]: a no-op unless the
/// parent re-executed this test binary with the environment set. Appends
/// archive messages (alternating correspondents) one group commit at a
/// time, printing `ack N` once message N is durable.
#[test]
fn archive_crash_child() {
    let Some(dir) = std::env::var_os(CHILD_DIR) else {
        return;
    };
    let dir = std::path::Path::new(&dir);
    let backend = std::env::var(CHILD_BACKEND).unwrap_or_default();
    if backend == "redb" {
        append_until_killed(&RedbBackend::open(dir).expect("open"));
    } else if backend == "postgres" {
        let target = std::env::var(CHILD_PG).expect("cluster");
        let (port, database) = target.split_once(' ').expect("PORT DATABASE");
        let options = super::PgOptions {
            host: "127.0.0.1".into(),
            port: port.parse().expect("port"),
            database: database.into(),
            user: "postgres".into(),
            tls: "disable".into(),
            ..super::PgOptions::default()
        };
        append_until_killed(&super::PostgresBackend::open(options).expect("open"));
    } else {
        append_until_killed(&SledBackend::open(dir).expect("open"));
    }
}

fn append_until_killed<B: Backend>(b: &B) {
    use std::io::Write;
    let created = b.execute(Req::CreateAccount {
        account: "a@x".into(),
        credentials: super::conformance::creds(1),
    });
    assert!(matches!(created, Res::Done | Res::Conflict));
    let mut gen = IdGenerator::new(Entropy::from_u64(std::process::id().into()));
    let mut out = std::io::stdout().lock();
    for i in 0u64.. {
        let batch: Vec<Req> = (0..7)
            .map(|j| Req::AppendArchive {
                account: "a@x".into(),
                message: msg(
                    gen.next(1_000 + i),
                    WITHS[[0, 3, 4][j % 3]],
                    &"x".repeat(j * 40),
                ),
            })
            .collect();
        assert!(b.execute_batch(batch).iter().all(|r| *r == Res::Done));
        writeln!(out, "ack {}", (i + 1) * 7).expect("stdout");
        out.flush().expect("stdout");
    }
}

/// After a SIGKILL in the middle of appends, every acknowledged message is
/// there, and the totals and the with-index agree with the messages: no
/// append is half-written.
#[test]
fn archive_survives_sigkill() {
    archive_survives_sigkill_on("sled", None, |p| {
        SledBackend::open(p).expect("reopen after SIGKILL")
    });
}

#[test]
fn redb_archive_survives_sigkill() {
    archive_survives_sigkill_on("redb", None, |p| {
        RedbBackend::open(p).expect("reopen after SIGKILL")
    });
}

#[test]
fn postgres_archive_survives_sigkill() {
    let Some(cluster) = super::postgres::cluster::Cluster::get() else {
        return;
    };
    let options = cluster.fresh_database();
    let target = format!("{} {}", options.port, options.database);
    archive_survives_sigkill_on("postgres", Some(target), |_| {
        super::PostgresBackend::open(options.clone()).expect("reopen after SIGKILL")
    });
}

/// With `postgres`, `pg` is "PORT DATABASE" of the test cluster.
fn archive_survives_sigkill_on<B: Backend>(
    backend: &str,
    pg: Option<String>,
    open: impl Fn(&std::path::Path) -> B,
) {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};
    let dir = tempfile::tempdir().expect("tempdir");
    let exe = std::env::current_exe().expect("exe");
    for round in 0..3u64 {
        let mut child = Command::new(&exe)
            .args([
                "--exact",
                "storage::archive_tests::archive_crash_child",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_DIR, dir.path())
            .env(CHILD_BACKEND, backend)
            .env(CHILD_PG, pg.clone().unwrap_or_default())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn");
        let stdout = child.stdout.take().expect("stdout");
        let mut acked = 0;
        for line in BufReader::new(stdout).lines() {
            let line = line.expect("line");
            if let Some(n) = line.strip_prefix("ack ") {
                acked = n.trim().parse().expect("number");
                if acked >= 200 + round * 150 {
                    child.kill().expect("kill");
                    break;
                }
            }
        }
        let _ = child.wait();
        let b = open(dir.path());
        let all = page(&b, "a@x", query(ArchiveFilter::default(), usize::MAX));
        let stored = all.items.len() as u64;
        assert!(
            stored >= acked,
            "round {round}: {stored} stored < {acked} acknowledged"
        );
        assert_eq!(all.count, Some(stored), "the total matches the messages");
        let mut by_with = 0;
        for w in ["c@x", "d@y", "a@x"] {
            let filter = ArchiveFilter {
                with: Some(WithJid::new(w)),
                ..ArchiveFilter::default()
            };
            let p = page(&b, "a@x", query(filter, usize::MAX));
            let expected: Vec<ArchiveId> = all
                .items
                .iter()
                .filter(|m| m.with_bare() == w)
                .map(|m| m.id)
                .collect();
            assert_eq!(
                ids(&p),
                expected,
                "the with-index of {w} matches the messages"
            );
            assert_eq!(p.count, Some(expected.len() as u64));
            by_with += expected.len();
        }
        assert_eq!(by_with as u64, stored);
    }
}

/// Every page of every account's archive, with and without each `with`
/// filter, both ways, answered alike by `a` and `b`: how many messages
/// the pages held.
fn pages_alike(a: &dyn Backend, b: &dyn Backend, accounts: &[&str]) -> usize {
    let mut seen = 0;
    let filters = [None, Some("c@x"), Some("c@x/1"), Some("d@y"), Some("e@z")];
    for account in accounts {
        let meta = Req::ArchiveMetadata {
            account: (*account).into(),
        };
        assert_eq!(a.execute(meta.clone()), b.execute(meta), "{account}");
        for with in filters {
            for backward in [false, true] {
                let mut cursor = None;
                loop {
                    let q = Req::QueryArchive {
                        account: (*account).into(),
                        query: ArchiveQuery {
                            filter: ArchiveFilter {
                                with: with.map(WithJid::new),
                                ..ArchiveFilter::default()
                            },
                            page: PageRequest {
                                max: 7,
                                after: cursor.filter(|_| !backward),
                                before: cursor.filter(|_| backward),
                                backward,
                            },
                        },
                    };
                    let (ra, rb) = (a.execute(q.clone()), b.execute(q.clone()));
                    assert_eq!(ra, rb, "{q:?}");
                    let Res::ArchivePage(page) = ra else {
                        panic!("{ra:?}");
                    };
                    seen += page.items.len();
                    let next = if backward {
                        page.items.first()
                    } else {
                        page.items.last()
                    };
                    match next {
                        Some(m) if !page.complete => cursor = Some(m.id),
                        _ => break,
                    }
                }
            }
        }
    }
    seen
}

/// A redb store whose archive was written in the layout before chunks (a
/// sled store's trees, imported, as the server's migration from sled does)
/// is converted, and answers every page as the sled store does; and so
/// after more appends (out of order too), a retraction and a purge.
#[test]
fn redb_converts_the_old_archive_layout() {
    let dir = tempfile::tempdir().expect("tempdir");
    let sled = SledBackend::open(&dir.path().join("sled")).expect("sled");
    let accounts = ["a@x", "b@x"];
    for a in accounts {
        let create = Req::CreateAccount {
            account: a.into(),
            credentials: super::conformance::creds(1),
        };
        assert_eq!(sled.execute(create), Res::Done);
    }
    let (mut gen, mut late) = (
        IdGenerator::new(Entropy::from_u64(9)),
        IdGenerator::new(Entropy::from_u64(10)),
    );
    let mut make = |n: u64| {
        // Every seventh message after the first 150 is late: archived now
        // with a time among the stored ones (an import), so it lands
        // inside existing chunks.
        let id = if n >= 150 && n.is_multiple_of(7) {
            late.next(1_000 + (n - 150) / 3)
        } else {
            gen.next(1_000 + n / 3)
        };
        Req::AppendArchive {
            account: if n.is_multiple_of(10) { "b@x" } else { "a@x" }.into(),
            message: msg(id, WITHS[n as usize % WITHS.len()], &n.to_string()),
        }
    };
    for n in 0..150u64 {
        assert_eq!(sled.execute(make(n)), Res::Done);
    }
    let redb = RedbBackend::open(&dir.path().join("redb")).expect("redb");
    redb.import_sled(&sled).expect("import");
    assert_eq!(
        redb.old_layout_keys().expect("scan"),
        0,
        "every message moved into chunks"
    );
    // 150 messages, each met without a filter both ways, and with the
    // filters that match it.
    let seen = pages_alike(&sled, &redb, &accounts);
    assert_eq!(seen, 600);
    let more: Vec<Req> = (150..260u64).map(&mut make).collect();
    assert_eq!(sled.execute_batch(more.clone()), redb.execute_batch(more));
    let replace = Req::ReplaceArchived {
        account: "a@x".into(),
        id: match sled.execute(Req::ArchiveMetadata {
            account: "a@x".into(),
        }) {
            Res::ArchiveBounds(Some(ArchiveBounds { first, .. })) => first,
            other => panic!("{other:?}"),
        },
        stanza: "<message xmlns='jabber:client'><retracted/></message>".into(),
    };
    assert_eq!(sled.execute(replace.clone()), redb.execute(replace));
    pages_alike(&sled, &redb, &accounts);
    let purge = Req::PurgeArchive {
        before: 1_030,
        from: None,
        limit: 70,
    };
    assert_eq!(sled.execute(purge.clone()), redb.execute(purge));
    pages_alike(&sled, &redb, &accounts);
    drop(redb);
    let reopened = RedbBackend::open(&dir.path().join("redb")).expect("reopen");
    assert!(pages_alike(&sled, &reopened, &accounts) > 600);
}
