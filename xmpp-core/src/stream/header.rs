//! Stream headers (RFC 6120 §4.7): writing ours, checking the peer's.

use super::error::StreamErrorCondition;
use crate::ns;
use crate::xml::escape_attr;
use crate::xml::{Element, XML_NS};

/// Write `<?xml?><stream:stream ...>` with the given attributes.
pub(crate) fn write_header(
    out: &mut Vec<u8>,
    content_ns: &str,
    from: Option<&str>,
    to: Option<&str>,
    id: Option<&str>,
) {
    write_header_declaring(out, content_ns, |_| {}, from, to, id);
}

/// Write an s2s stream header (`jabber:server`) that also declares the
/// `db:` prefix: XEP-0220 §2.4.1 announces dialback that way, and dialback
/// elements are written with that prefix
/// ([`DialbackElement::write_to`](crate::s2s::dialback::DialbackElement::write_to)).
pub(crate) fn write_s2s_header(
    out: &mut Vec<u8>,
    from: Option<&str>,
    to: Option<&str>,
    id: Option<&str>,
) {
    write_header_declaring(
        out,
        ns::SERVER,
        crate::s2s::dialback::write_stream_declaration,
        from,
        to,
        id,
    );
}

/// [`write_header`] with further namespace declarations written by
/// `declare`.
fn write_header_declaring(
    out: &mut Vec<u8>,
    content_ns: &str,
    declare: impl FnOnce(&mut Vec<u8>),
    from: Option<&str>,
    to: Option<&str>,
    id: Option<&str>,
) {
    out.extend_from_slice(b"<?xml version='1.0'?><stream:stream xmlns='");
    escape_attr(content_ns, out);
    out.extend_from_slice(b"' xmlns:stream='http://etherx.jabber.org/streams'");
    declare(out);
    for (name, value) in [("from", from), ("to", to), ("id", id)] {
        if let Some(v) = value {
            out.push(b' ');
            out.extend_from_slice(name.as_bytes());
            out.extend_from_slice(b"='");
            escape_attr(v, out);
            out.push(b'\'');
        }
    }
    out.extend_from_slice(b" version='1.0' xml:lang='en'>");
}

/// The closing tag of a stream.
pub(crate) const STREAM_CLOSE: &[u8] = b"</stream:stream>";

/// Check a received stream header: root name and namespace, and version 1.x.
pub(crate) fn check_header(header: &Element) -> Result<(), StreamErrorCondition> {
    if header.name != "stream" {
        return Err(StreamErrorCondition::BadFormat);
    }
    if header.ns != ns::STREAM {
        return Err(StreamErrorCondition::InvalidNamespace);
    }
    let major = header
        .attr("version")
        .and_then(|v| v.split('.').next())
        .and_then(|m| m.trim().parse::<u32>().ok());
    match major {
        Some(1) => Ok(()),
        _ => Err(StreamErrorCondition::UnsupportedVersion),
    }
}

/// The `xml:lang` of a header, if any (kept for future localisation).
#[allow(dead_code)]
pub(crate) fn lang(header: &Element) -> Option<&str> {
    header.attr_ns(XML_NS, "lang")
}
