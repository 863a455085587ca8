//! Arbitrary bytes as a XEP-0227 file (`vireo import`), read in chunks
//! whose sizes the first byte decides, each unit also converted the way
//! the importer converts it. Properties: nothing panics; the records and
//! the error (if any) do not depend on how the input was split; a unit
//! never exceeds the unit budget.

use xmpp_core::portable::convert;
use xmpp_core::portable::reader::{ReadLimits, Reader, Record};

/// Small budgets, so that the fuzzer reaches them.
fn limits() -> ReadLimits {
    ReadLimits {
        unit_bytes: 4096,
        unit_depth: 8,
        unit_nodes: 256,
        attributes: 8,
        tag_bytes: 1024,
    }
}

/// Every record (as text) and the error, reading `pieces` in order.
fn read(pieces: &[&[u8]]) -> (Vec<String>, Option<String>) {
    let mut reader = Reader::new(limits());
    let mut out = Vec::new();
    let take = |r: Record, out: &mut Vec<String>| {
        if let Record::Unit { element, .. } = &r {
            assert!(
                element.approx_size() <= 8 * limits().unit_bytes,
                "unit over budget"
            );
            // The importer's conversions must not panic on any unit.
            let _ = convert::parse_scram(element);
            let _ = convert::parse_document(element);
            let mut entry = convert::new_roster_entry("a@b".into());
            let _ = convert::apply_roster_item(element, &mut entry);
            let _ = convert::archived_from_result("a@b", element, None);
            let mut node = convert::new_pep_node();
            let _ = convert::apply_pep_owner(element, &mut node);
        }
        out.push(format!("{r:?}"));
    };
    for piece in pieces {
        reader.feed(piece);
        loop {
            match reader.next_record() {
                Ok(Some(r)) => take(r, &mut out),
                Ok(None) => break,
                Err(e) => return (out, Some(e.to_string())),
            }
        }
    }
    loop {
        match reader.finish() {
            Ok(Some(r)) => take(r, &mut out),
            Ok(None) => return (out, None),
            Err(e) => return (out, Some(e.to_string())),
        }
    }
}

/// Run one input.
pub fn run(data: &[u8]) {
    let Some((&seed, rest)) = data.split_first() else {
        return;
    };
    let whole = read(&[rest]);
    let split = read(&super::chunks(seed, rest));
    assert_eq!(
        whole, split,
        "the records depend on how the input was split"
    );
}
