use super::*;

fn record(account: &str, n: u64) -> Record {
    Record {
        account: account.to_owned(),
        message: ArchivedMessage {
            id: ArchiveId::first_at(1_000 + n),
            with: "romeo@montague.lit/phone".to_owned(),
            stanza: format!("<message xmlns='jabber:client'><body>{n}</body></message>"),
        },
    }
}

fn segment_files(dir: &Path) -> Vec<u64> {
    segments(dir).expect("list segments")
}

#[test]
fn records_come_back_in_order_after_a_crash() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (j, replay) = Journal::open(dir.path(), 0).expect("open");
    assert!(replay.records.is_empty());
    let written: Vec<Record> = (0..10).map(|n| record("juliet@capulet.lit", n)).collect();
    j.append(written[..4].to_vec()).expect("append");
    j.append(written[4..].to_vec()).expect("append");
    assert!(j.has_pending());
    drop(j); // a crash: nothing indexed
    let (_j, replay) = Journal::open(dir.path(), 0).expect("reopen");
    assert_eq!(replay.records, written);
    assert_eq!(replay.next_generation, 1);
}

#[test]
fn taken_records_are_retired_only_when_told() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (j, _) = Journal::open(dir.path(), 0).expect("open");
    j.append(vec![record("a@x", 1), record("b@x", 2)])
        .expect("append");
    let taken = j.take().expect("take").expect("something pending");
    assert_eq!(taken.records.len(), 2);
    assert_eq!(taken.next_generation, 1);
    assert!(!j.has_pending());
    assert!(j.take().expect("take").is_none(), "nothing pending");
    j.append(vec![record("a@x", 3)]).expect("append");
    // Not committed yet: a crash now replays segment 0 and segment 1.
    assert_eq!(segment_files(dir.path()), vec![0, 1]);
    drop(j);
    let (j, replay) = Journal::open(dir.path(), 0).expect("reopen");
    assert_eq!(replay.records.len(), 3);
    // The indexer committed generation 2: older segments go.
    j.retire(replay.next_generation);
    assert_eq!(segment_files(dir.path()), vec![2]);
    drop(j);
    let (_j, replay) = Journal::open(dir.path(), 2).expect("reopen");
    assert!(replay.records.is_empty());
}

#[test]
fn restored_records_stay_pending_in_front() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (j, _) = Journal::open(dir.path(), 0).expect("open");
    j.append(vec![record("a@x", 1)]).expect("append");
    let taken = j.take().expect("take").expect("pending");
    j.append(vec![record("a@x", 2)]).expect("append");
    j.restore(taken);
    assert!(j.is_pending("a@x", ArchiveId::first_at(1_001)));
    assert!(j.is_pending("a@x", ArchiveId::first_at(1_002)));
    assert!(!j.is_pending("a@x", ArchiveId::first_at(1_003)));
    assert!(!j.is_pending("b@x", ArchiveId::first_at(1_001)));
    let again = j.take().expect("take").expect("pending");
    let ids: Vec<ArchiveId> = again.records.iter().map(|r| r.message.id).collect();
    assert_eq!(
        ids,
        vec![ArchiveId::first_at(1_001), ArchiveId::first_at(1_002)]
    );
}

#[test]
fn a_torn_tail_ends_the_segment_and_loses_only_itself() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (j, _) = Journal::open(dir.path(), 0).expect("open");
    j.append(vec![record("a@x", 1), record("a@x", 2)])
        .expect("append");
    drop(j);
    let path = dir.path().join(segment_name(0));
    let len = std::fs::metadata(&path).expect("stat").len();
    // Cut the last record short, as a crash in the middle of its write
    // would (it was never answered).
    let f = OpenOptions::new().write(true).open(&path).expect("open");
    f.set_len(len - 5).expect("truncate");
    drop(f);
    let (_j, replay) = Journal::open(dir.path(), 0).expect("reopen");
    assert_eq!(replay.records, vec![record("a@x", 1)]);
}

#[test]
fn a_flipped_byte_is_caught_by_the_checksum() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (j, _) = Journal::open(dir.path(), 0).expect("open");
    j.append(vec![record("a@x", 1)]).expect("append");
    drop(j);
    let path = dir.path().join(segment_name(0));
    let mut raw = std::fs::read(&path).expect("read");
    let last = raw.len() - 3;
    raw[last] ^= 0x20;
    std::fs::write(&path, &raw).expect("write");
    let (_j, replay) = Journal::open(dir.path(), 0).expect("reopen");
    assert!(replay.records.is_empty());
}

#[test]
fn garbage_segments_never_panic() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join(segment_name(0)), b"VIRE").expect("write");
    let mut huge = MAGIC.to_vec();
    huge.extend_from_slice(&u32::MAX.to_le_bytes());
    huge.extend_from_slice(&[0; 12]);
    std::fs::write(dir.path().join(segment_name(1)), &huge).expect("write");
    std::fs::write(dir.path().join("notes.txt"), b"not a segment").expect("write");
    let (_j, replay) = Journal::open(dir.path(), 0).expect("open");
    assert!(replay.records.is_empty());
    assert_eq!(replay.next_generation, 2);
}

#[test]
fn concurrent_writers_share_syncs_and_lose_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (j, _) = Journal::open(dir.path(), 0).expect("open");
    let j = Arc::new(j);
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let j = j.clone();
            std::thread::spawn(move || {
                for n in 0..50 {
                    j.append(vec![record(&format!("u{t}@x"), n)])
                        .expect("append");
                    if n == 25 && t == 0 {
                        j.take().expect("take");
                    }
                }
            })
        })
        .collect();
    for t in threads {
        t.join().expect("writer");
    }
    drop(j);
    let (_j, replay) = Journal::open(dir.path(), 0).expect("reopen");
    assert_eq!(replay.records.len(), 200);
    for t in 0..4 {
        let account = format!("u{t}@x");
        let mine: Vec<ArchiveId> = replay
            .records
            .iter()
            .filter(|r| r.account == account)
            .map(|r| r.message.id)
            .collect();
        let expected: Vec<ArchiveId> = (0..50).map(|n| ArchiveId::first_at(1_000 + n)).collect();
        assert_eq!(mine, expected, "{account}: in order, each once");
    }
}
