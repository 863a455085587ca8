//! Memory of the on-disk backends under a long archive fill: 500,000
//! archive appends of ~500 bytes through `execute_batch` in group commits
//! of 256, printing the process's RSS as it goes. Ignored (minutes, and RSS
//! is per process): run one backend per process, in release, e.g.
//!
//! ```text
//! cargo test --release -p xmpp-runtime --lib storage::rss_bench::redb -- --ignored --exact --nocapture
//! cargo test --release -p xmpp-runtime --lib storage::rss_bench::sled -- --ignored --exact --nocapture
//! ```
//!
//! `VIREO_RSS_BENCH_MESSAGES` changes the count; `VIREO_RSS_BENCH_QUICK_REPAIR=1`
//! turns on redb's quick repair.

use std::time::Instant;

use xmpp_core::archive::{ArchivedMessage, IdGenerator};
use xmpp_core::storage::{StorageRequest as Req, StorageResult as Res};
use xmpp_core::Entropy;

use super::{Backend, RedbBackend, SledBackend};

const BATCH: usize = 256;

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

fn dir_bytes(dir: &std::path::Path) -> u64 {
    let mut total = 0;
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            match e.metadata() {
                Ok(m) if m.is_dir() => total += dir_bytes(&e.path()),
                Ok(m) => total += m.len(),
                Err(_) => {}
            }
        }
    }
    total
}

fn fill<B: Backend>(name: &str, b: &B, dir: &std::path::Path) {
    let total: usize = std::env::var("VIREO_RSS_BENCH_MESSAGES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(500_000);
    assert_eq!(
        b.execute(Req::CreateAccount {
            account: "a@x".into(),
            credentials: super::conformance::creds(1),
        }),
        Res::Done
    );
    let mut gen = IdGenerator::new(Entropy::from_u64(1));
    let body = "x".repeat(400);
    let start = Instant::now();
    println!("{name}: start rss {} KiB", rss_kib());
    let mut done = 0;
    let mut next_report = 50_000;
    while done < total {
        let n = BATCH.min(total - done);
        let reqs: Vec<Req> = (0..n)
            .map(|i| {
                let k = done + i;
                Req::AppendArchive {
                    account: "a@x".into(),
                    message: ArchivedMessage {
                        id: gen.next(1_000_000 + k as u64 / 4),
                        with: format!("c{}@y/r", k % 10),
                        stanza: format!(
                            "<message xmlns='jabber:client' id='{k}'><body>{body}</body></message>"
                        ),
                    },
                }
            })
            .collect();
        assert!(b.execute_batch(reqs).iter().all(|r| *r == Res::Done));
        done += n;
        if done >= next_report || done == total {
            next_report += 50_000;
            println!(
                "{name}: {done:>7} messages  rss {:>7} KiB  disk {:>5} MiB  {:>6.1} s",
                rss_kib(),
                dir_bytes(dir) / (1024 * 1024),
                start.elapsed().as_secs_f64()
            );
        }
    }
    // A page at the front and one at the end, as a sanity check.
    let t = Instant::now();
    let r = b.execute(Req::ArchiveMetadata {
        account: "a@x".into(),
    });
    assert!(matches!(r, Res::ArchiveBounds(Some(_))), "{r:?}");
    println!(
        "{name}: metadata in {:?}, final rss {} KiB",
        t.elapsed(),
        rss_kib()
    );
}

#[test]
#[ignore = "minutes; one backend per process"]
fn redb() {
    let dir = tempfile::tempdir().expect("tempdir");
    let quick = std::env::var("VIREO_RSS_BENCH_QUICK_REPAIR").as_deref() == Ok("1");
    let b = RedbBackend::open(dir.path())
        .expect("open")
        .with_quick_repair(quick);
    fill(
        if quick { "redb+quick-repair" } else { "redb" },
        &b,
        dir.path(),
    );
}

#[test]
#[ignore = "minutes; one backend per process"]
fn sled() {
    let dir = tempfile::tempdir().expect("tempdir");
    let b = SledBackend::open(dir.path()).expect("open");
    fill("sled", &b, dir.path());
}
