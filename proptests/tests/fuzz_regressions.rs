//! Fuzz findings stay tests: every file under `fuzz/regressions/<target>/`
//! (an input that once crashed the target, copied there by
//! `fuzz/campaign.sh`) is replayed through the target's harness, on stable
//! Rust, on every `cargo test`. The harnesses themselves are checked on
//! seeded random inputs and on a script that reaches deep into the hub, so a
//! harness that rejects everything would fail here rather than pass
//! vacuously.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use vireo_proptests::harness::sm::{self, Count, Op, PrevId};
use vireo_proptests::harness::{self, hub, TARGETS};

fn regressions_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/regressions")
}

fn files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|rd| rd.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    files.retain(|p| p.is_file() && p.extension().is_none_or(|e| e != "md"));
    files.sort();
    files
}

/// Run a harness, turning a panic into a message naming the input.
fn replay(name: &str, what: &str, data: &[u8]) -> Option<String> {
    let harness = harness::harness(name)?;
    catch_unwind(AssertUnwindSafe(|| harness(data)))
        .err()
        .map(|e| {
            let msg = e
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| e.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                .unwrap_or_default();
            format!("{name} {what}: {msg}")
        })
}

#[test]
fn every_regression_input_passes_its_target() {
    let root = regressions_dir();
    for entry in std::fs::read_dir(&root).into_iter().flatten().flatten() {
        if entry.path().is_dir() {
            let name = entry.file_name().to_string_lossy().into_owned();
            assert!(
                harness::harness(&name).is_some(),
                "fuzz/regressions/{name} is not a fuzz target"
            );
        }
    }
    let mut failures = Vec::new();
    for (name, _) in TARGETS {
        for file in files(&root.join(name)) {
            let data = std::fs::read(&file).unwrap_or_default();
            failures.extend(replay(name, &file.display().to_string(), &data));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Every harness on a few hundred seeded random inputs: none may fail on
/// inputs the fuzzer would find in its first second.
#[test]
fn harnesses_hold_on_random_inputs() {
    let mut state = 0x2545_f491_4f6c_dd1d_u64;
    let mut failures = Vec::new();
    for (name, _) in TARGETS {
        let runs = if *name == "config" { 50 } else { 150 };
        for i in 0..runs {
            let len = (i * 7) % 300;
            let data: Vec<u8> = (0..len)
                .map(|_| {
                    state ^= state << 13;
                    state ^= state >> 7;
                    state ^= state << 17;
                    state as u8
                })
                .collect();
            failures.extend(replay(name, &format!("random input {i}"), &data));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The hub script reaches sessions, routing, presence, rosters and the
/// component: a message from alice reaches bob and the component answers.
#[test]
fn the_hub_script_reaches_delivery() {
    let mut script = hub::Script::recording();
    for line in [
        "a><presence/>",
        "b><presence/>",
        "a><message to='bob@localhost/laptop' type='chat'><body>hi</body></message>",
        "e><message from='bot@echo.localhost' to='alice@localhost/phone'><body>pong</body></message>",
        "a><iq type='get' id='r'><query xmlns='jabber:iq:roster'/></iq>",
        "a-",
        "~400000",
        "b><message to='alice@localhost' type='chat'><body>later</body></message>",
    ] {
        script.line(line.as_bytes());
    }
    let log = script.log();
    for expected in ["<body>hi</body>", "<body>pong</body>", "jabber:iq:roster"] {
        assert!(log.contains(expected), "{expected} not delivered in {log}");
    }
    script.finish();
}

/// The stream-management sequence reaches resumption: alice enables,
/// loses her transport with messages unacknowledged, resumes with the id
/// from `<enabled/>`, and every message arrives (the harness checks none is
/// lost).
#[test]
fn the_sm_sequence_reaches_resumption() {
    let outcome = sm::run_ops([
        Op::Enable {
            resume: true,
            max: None,
        },
        Op::AlicePresence,
        Op::BobSends {
            count: 3,
            full_jid: false,
        },
        Op::Drop,
        Op::BobSends {
            count: 2,
            full_jid: true,
        },
        Op::Resume {
            previd: PrevId::Last,
            h: Count::Under(0),
        },
        Op::Ack(Count::Honest),
        Op::Request,
    ]);
    assert_eq!(outcome.resumed, 1, "{outcome:?}");
    assert_eq!((outcome.sent, outcome.seen), (5, 5), "{outcome:?}");
}
