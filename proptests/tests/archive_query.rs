//! The archive query algorithm against a naive model: paging forwards
//! (RSM `<after/>`) or backwards (`<before/>`) through any selection visits
//! exactly the messages a plain filter selects, in order, once each; the
//! last page and only it is `complete`; `<count/>` and `<first index/>`,
//! when given, are the model's.

use proptest::prelude::*;
use xmpp_core::archive::{
    ArchiveFilter, ArchiveId, ArchivePage, ArchiveQuery, ArchivedMessage, IdGenerator, PageRequest,
    WithJid,
};
use xmpp_core::sim::MemoryStore;
use xmpp_core::storage::{StorageRequest, StorageResult};
use xmpp_core::Entropy;

const ACCOUNT: &str = "me@x";
const WITHS: [&str; 5] = ["a@x/1", "a@x/2", "a@x", "b@y/1", "me@x/phone"];
const FILTERS: [&str; 6] = ["a@x", "a@x/1", "b@y", "b@y/1", "me@x", "z@z"];

fn store(times: &[(u64, usize)]) -> (MemoryStore, Vec<ArchivedMessage>) {
    let mut s = MemoryStore::new();
    assert_eq!(s.add_user(ACCOUNT, "pw", 4096), StorageResult::Done);
    let mut gen = IdGenerator::new(Entropy::from_u64(1));
    let mut clock = 0;
    let mut all = Vec::new();
    for (advance, with) in times {
        clock += advance;
        let m = ArchivedMessage {
            id: gen.next(clock),
            with: WITHS[*with].to_owned(),
            stanza: String::new(),
        };
        assert_eq!(
            s.execute(StorageRequest::AppendArchive {
                account: ACCOUNT.into(),
                message: m.clone(),
            }),
            StorageResult::Done
        );
        all.push(m);
    }
    (s, all)
}

fn model(all: &[ArchivedMessage], f: &ArchiveFilter) -> Vec<ArchiveId> {
    all.iter()
        .filter(|m| f.with.as_ref().is_none_or(|w| w.matches(&m.with)))
        .filter(|m| f.start.is_none_or(|s| m.id.millis() >= s))
        .filter(|m| f.end.is_none_or(|e| m.id.millis() <= e))
        .filter(|m| f.after_id.is_none_or(|a| m.id > a))
        .filter(|m| f.before_id.is_none_or(|b| m.id < b))
        .filter(|m| f.ids.as_ref().is_none_or(|ids| ids.contains(&m.id)))
        .map(|m| m.id)
        .collect()
}

fn run(s: &mut MemoryStore, filter: &ArchiveFilter, page: PageRequest) -> ArchivePage {
    match s.execute(StorageRequest::QueryArchive {
        account: ACCOUNT.into(),
        query: ArchiveQuery {
            filter: filter.clone(),
            page,
        },
    }) {
        StorageResult::ArchivePage(p) => p,
        other => panic!("{other:?}"),
    }
}

fn check_page(p: &ArchivePage, expected: &[ArchiveId]) -> Result<(), TestCaseError> {
    if let Some(c) = p.count {
        prop_assert_eq!(c, expected.len() as u64);
    }
    if let (Some(i), Some(first)) = (p.first_index, p.items.first()) {
        prop_assert_eq!(expected.get(i as usize), Some(&first.id));
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn paging_visits_the_selection_once_in_order(
        times in proptest::collection::vec((0u64..3, 0usize..5), 0..40),
        with in proptest::option::of(0usize..6),
        start in proptest::option::weighted(0.3, 0u64..30),
        end in proptest::option::weighted(0.3, 0u64..30),
        after_id in proptest::option::weighted(0.2, 0usize..40),
        before_id in proptest::option::weighted(0.2, 0usize..40),
        ids in proptest::option::weighted(0.2, proptest::collection::vec(0usize..40, 0..8)),
        max in 1usize..7,
    ) {
        let (mut s, all) = store(&times);
        let known = |i: usize| all.get(i).map(|m| m.id);
        // Ids the archive does not have are the error path, tested elsewhere.
        let filter = ArchiveFilter {
            with: with.map(|w| WithJid::new(FILTERS[w])),
            start,
            end,
            after_id: after_id.and_then(known),
            before_id: before_id.and_then(known),
            ids: ids.map(|v| v.into_iter().filter_map(known).collect()),
        };
        let expected = model(&all, &filter);

        // Forwards.
        let mut seen = Vec::new();
        let mut after = None;
        for _ in 0..=all.len() + 1 {
            let p = run(&mut s, &filter, PageRequest { max, after, before: None, backward: false });
            check_page(&p, &expected)?;
            prop_assert!(p.items.len() <= max);
            seen.extend(p.items.iter().map(|m| m.id));
            if p.complete {
                break;
            }
            prop_assert_eq!(p.items.len(), max, "an incomplete page is full");
            after = p.items.last().map(|m| m.id);
        }
        prop_assert_eq!(&seen, &expected);

        // Backwards from the last page.
        let mut pages: Vec<Vec<ArchiveId>> = Vec::new();
        let mut before = None;
        for _ in 0..=all.len() + 1 {
            let p = run(&mut s, &filter, PageRequest { max, after: None, before, backward: true });
            check_page(&p, &expected)?;
            pages.push(p.items.iter().map(|m| m.id).collect());
            if p.complete {
                break;
            }
            before = p.items.first().map(|m| m.id);
        }
        let seen: Vec<ArchiveId> = pages.into_iter().rev().flatten().collect();
        prop_assert_eq!(&seen, &expected);

        // max 0 counts without items.
        let p = run(&mut s, &filter, PageRequest { max: 0, after: None, before: None, backward: false });
        prop_assert!(p.items.is_empty());
        prop_assert_eq!(p.complete, expected.is_empty());
        check_page(&p, &expected)?;
        if expected.len() as u64 <= xmpp_core::archive::COUNT_SCAN_LIMIT {
            prop_assert_eq!(p.count, Some(expected.len() as u64));
        }
    }
}
