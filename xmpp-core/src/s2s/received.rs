//! A stanza a peer sent on an s2s stream, checked the one way whichever
//! side of the stream it came in on (the receiving side, or an initiating
//! stream made bidirectional by XEP-0288): addressed, from a domain pair
//! the stream verified, and well formed.

use crate::jid::Jid;
use crate::ns;
use crate::stanza::{error_reply, into_client_ns, is_error_or_result, Kind, StanzaError};
use crate::stream::StreamErrorCondition;
use crate::xml::Element;

/// What becomes of a received stanza.
#[derive(Debug)]
pub(crate) enum Received {
    /// Route it (in `jabber:client`, addresses normalized).
    Route(Element),
    /// Route this answer back to its sender instead (a malformed request
    /// gets `bad-request`, RFC 6120 §8.2.3).
    Answer(Element),
    /// Nobody's to answer (a malformed answer): drop it.
    Drop,
    /// End the stream with this error.
    Fail(StreamErrorCondition, &'static str),
}

/// Check `el` (in `jabber:server`) against `verified(from domain, to
/// domain)`, the pairs the stream may carry this way.
pub(crate) fn receive(mut el: Element, verified: impl Fn(&str, &str) -> bool) -> Received {
    into_client_ns(&mut el, ns::SERVER);
    if Kind::of(&el).is_none() {
        return Received::Fail(StreamErrorCondition::UnsupportedStanzaType, "not a stanza");
    }
    let from = el.attr("from").map(Jid::parse);
    let to = el.attr("to").map(Jid::parse);
    let (Some(from), Some(to)) = (from, to) else {
        return Received::Fail(
            StreamErrorCondition::ImproperAddressing,
            "a stanza needs from and to",
        );
    };
    let (Ok(from), Ok(to)) = (from, to) else {
        // An unparsable address cannot be shown to belong to a pair.
        return Received::Fail(StreamErrorCondition::InvalidFrom, "malformed address");
    };
    if !verified(from.domain(), to.domain()) {
        tracing::warn!(from = %from, to = %to, "s2s stanza from an unverified domain pair");
        return Received::Fail(
            StreamErrorCondition::InvalidFrom,
            "this domain pair is not verified on this stream",
        );
    }
    el.set_attr("from", from.to_string());
    el.set_attr("to", to.to_string());
    if Kind::of(&el) == Some(Kind::Iq) && !crate::stream::server::valid_iq(&el) {
        // RFC 6120 §8.2.3: a malformed request gets bad-request, routed
        // back to its sender like any answer; a malformed answer is
        // nobody's to answer.
        if !is_error_or_result(&el) {
            return Received::Answer(error_reply(&el, StanzaError::BadRequest, to.domain()));
        }
        tracing::debug!(from = %from, "malformed iq answer over s2s dropped");
        return Received::Drop;
    }
    Received::Route(el)
}
