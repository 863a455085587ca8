//! A test driver for modules that run against a real hub and the in-memory
//! store (the pubsub and MUC services' hub-driven tests).

use super::{Hub, HubOutput};
use crate::storage::MemoryStore;
use crate::xml::Element;

/// Run the hub until it is idle, answering storage at once and taking
/// notices between partitions here: the stanzas it routed.
pub(crate) fn drive(h: &mut Hub, store: &mut MemoryStore) -> Vec<Element> {
    let mut routed = Vec::new();
    loop {
        let outs: Vec<HubOutput> = std::iter::from_fn(|| h.poll_output()).collect();
        if outs.is_empty() {
            return routed;
        }
        for o in outs {
            match o {
                HubOutput::Storage { id, request } => {
                    let result = store.execute(request);
                    h.handle_storage(0, id, result);
                }
                HubOutput::Forward { notice, .. } => h.notice(0, notice),
                HubOutput::Route(e) => routed.push(e),
                _ => {}
            }
        }
    }
}
