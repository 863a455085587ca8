//! What a query sends back: one `<message/>` per archived message
//! (XEP-0313 §4.2), then the iq result with `<fin/>` (§4.3).

use super::rsm::page_set;
use super::NS;
use crate::archive::{ArchiveBounds, ArchivePage, ArchivedMessage};
use crate::stanza::iq_result;
use crate::time::format_datetime;
use crate::xml::{Element, Node};

/// XEP-0297 namespace.
const FORWARD: &str = "urn:xmpp:forward:0";

/// The result message for one archived message, to the querying session
/// (`to`), from the archive's address when the query named it (`from`). A
/// stored stanza that no longer parses is left out of `<forwarded/>`, which
/// §3.2 allows, keeping the id and time so paging stays consistent.
pub fn result_message(
    to: &str,
    from: Option<&str>,
    queryid: Option<&str>,
    m: &ArchivedMessage,
) -> Element {
    let mut forwarded = Element::new(FORWARD, "forwarded").with_child(
        Element::new(crate::ns::DELAY, "delay").with_attr("stamp", format_datetime(m.id.millis())),
    );
    match Element::parse(m.stanza.as_bytes()) {
        Ok(stanza) => forwarded.children.push(Node::Element(stanza)),
        Err(e) => tracing::error!(id = %m.id, error = %e, "unreadable archived message"),
    }
    let mut result = Element::new(NS, "result").with_attr("id", m.id.to_string());
    if let Some(q) = queryid {
        result.set_attr("queryid", q);
    }
    let mut msg = Element::new(crate::ns::CLIENT, "message")
        .with_attr("to", to)
        .with_child(result.with_child(forwarded));
    if let Some(f) = from {
        msg.set_attr("from", f);
    }
    msg
}

/// The iq result ending a query: `<fin/>` with `complete` and the RSM
/// summary of the page.
pub fn fin(iq: &Element, page: &ArchivePage) -> Element {
    let first = page.items.first().map(|m| m.id.to_string());
    let last = page.items.last().map(|m| m.id.to_string());
    let set = page_set(
        first.as_deref().map(|f| (f, page.first_index)),
        last.as_deref(),
        page.count,
    );
    let mut fin = Element::new(NS, "fin").with_child(set);
    if page.complete {
        fin.set_attr("complete", "true");
    }
    iq_result(iq).with_child(fin)
}

/// The metadata result (§5): first and last message, or empty.
pub fn metadata(iq: &Element, bounds: Option<ArchiveBounds>) -> Element {
    let mut md = Element::new(NS, "metadata");
    if let Some(b) = bounds {
        for (name, id) in [("start", b.first), ("end", b.last)] {
            md = md.with_child(
                Element::new(NS, name)
                    .with_attr("id", id.to_string())
                    .with_attr("timestamp", format_datetime(id.millis())),
            );
        }
    }
    iq_result(iq).with_child(md)
}
