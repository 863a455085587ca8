//! The `<body/>` wrapper of XEP-0124 §4: a request's attributes read and
//! checked once, its children rewritten for the c2s stream, and the
//! response wrapper written around what the stream said.

use super::BoshError;
use crate::ns;
use crate::xml::{write_attr, Element, Node, XML_NS};

/// XEP-0124's namespace.
pub const NS: &str = "http://jabber.org/protocol/httpbind";
/// XEP-0206's attribute namespace (`xmpp:version`, `xmpp:restart`).
pub const XBOSH: &str = "urn:xmpp:xbosh";

/// What a request asks, its children apart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BodyAttrs {
    pub rid: u64,
    pub sid: Option<String>,
    /// Session creation: the domain.
    pub to: Option<String>,
    /// Session creation: seconds a request may be held.
    pub wait: Option<u64>,
    /// Session creation: requests the server may hold at once.
    pub hold: Option<u32>,
    /// Session creation: the client wants `ack` attributes (XEP-0124 §9.1).
    pub ack: Option<u64>,
    /// Session creation: `xmpp:version`.
    pub version: Option<String>,
    pub lang: Option<String>,
    /// `type='terminate'`.
    pub terminate: bool,
    /// `pause='N'` seconds (§10).
    pub pause: Option<u64>,
    /// `xmpp:restart='true'` (XEP-0206 §5).
    pub restart: bool,
}

/// Largest `rid` allowed: 2^53 - 1 (§7.1), so a client's arithmetic in
/// JavaScript never loses precision.
pub const MAX_RID: u64 = (1 << 53) - 1;

impl BodyAttrs {
    /// Read and check the attributes of a request body.
    pub fn read(body: &Element) -> Result<BodyAttrs, BoshError> {
        if body.name != "body" || body.ns != NS {
            return Err(BoshError::BadRequest("the root is not a BOSH <body/>"));
        }
        let number = |name: &str| -> Result<Option<u64>, BoshError> {
            body.attr(name)
                .map(|v| {
                    v.trim()
                        .parse::<u64>()
                        .map_err(|_| BoshError::BadRequest("a numeric attribute is not a number"))
                })
                .transpose()
        };
        let rid = number("rid")?.ok_or(BoshError::BadRequest("no rid"))?;
        if rid > MAX_RID {
            return Err(BoshError::BadRequest("rid larger than 2^53 - 1"));
        }
        Ok(BodyAttrs {
            rid,
            sid: body.attr("sid").map(str::to_owned),
            to: body.attr("to").map(str::to_owned),
            wait: number("wait")?,
            hold: number("hold")?.map(|h| h.min(u64::from(u32::MAX)) as u32),
            ack: number("ack")?,
            version: body.attr_ns(XBOSH, "version").map(str::to_owned),
            lang: body.attr_ns(XML_NS, "lang").map(str::to_owned),
            terminate: body.attr("type") == Some("terminate"),
            pause: number("pause")?,
            restart: matches!(body.attr_ns(XBOSH, "restart"), Some("true" | "1")),
        })
    }
}

/// The children of a request as bytes for the c2s stream's parser.
/// XEP-0206 §2 wants stanzas qualified by `jabber:client`; many clients
/// leave them unqualified, so they inherit the body's namespace: every
/// element in it is moved to `jabber:client`, which the stream's header
/// declares as its default.
pub fn stream_bytes(body: &Element) -> Vec<u8> {
    let mut out = Vec::new();
    for child in body.elements() {
        if child.ns == NS {
            let mut moved = child.clone();
            requalify(&mut moved);
            moved.write_to(&mut out, ns::CLIENT);
        } else {
            child.write_to(&mut out, ns::CLIENT);
        }
    }
    out
}

fn requalify(el: &mut Element) {
    if el.ns == NS {
        el.ns = ns::CLIENT.into();
    }
    for child in el.children.iter_mut() {
        if let Node::Element(c) = child {
            requalify(c);
        }
    }
}

/// The stream header a session creation or restart stands for.
pub fn stream_header(to: Option<&str>, version: Option<&str>, lang: Option<&str>) -> Vec<u8> {
    let mut h = Vec::with_capacity(256);
    h.extend_from_slice(b"<stream:stream xmlns='");
    h.extend_from_slice(ns::CLIENT.as_bytes());
    h.extend_from_slice(b"' xmlns:stream='");
    h.extend_from_slice(ns::STREAM.as_bytes());
    h.push(b'\'');
    for (name, value) in [("to", to), ("version", version), ("xml:lang", lang)] {
        if let Some(v) = value {
            write_attr(&mut h, name, v);
        }
    }
    h.push(b'>');
    h
}

/// A response `<body/>` with `attrs` around `payload` (serialized
/// elements, each declaring its namespace).
pub fn response(attrs: &[(&str, String)], payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload.len() + 128);
    out.extend_from_slice(b"<body xmlns='");
    out.extend_from_slice(NS.as_bytes());
    out.push(b'\'');
    for (name, value) in attrs {
        write_attr(&mut out, name, value);
    }
    if payload.is_empty() {
        out.extend_from_slice(b"/>");
    } else {
        out.push(b'>');
        out.extend_from_slice(payload);
        out.extend_from_slice(b"</body>");
    }
    out
}

/// The elements of bytes the c2s stream wrote in its bare framing (each
/// declaring its namespaces): what a BOSH session could not deliver.
/// Stored limits apply: these are our own bytes.
pub fn stanzas(bytes: &[u8]) -> Vec<Element> {
    if bytes.is_empty() {
        return Vec::new();
    }
    let mut doc = Vec::with_capacity(bytes.len() + 128);
    doc.extend_from_slice(b"<unsent xmlns='urn:vireo:internal' xmlns:stream='");
    doc.extend_from_slice(ns::STREAM.as_bytes());
    doc.extend_from_slice(b"'>");
    doc.extend_from_slice(bytes);
    doc.extend_from_slice(b"</unsent>");
    let limits = crate::xml::Limits {
        max_stanza_bytes: usize::MAX,
        max_depth: crate::xml::Limits::stored().max_depth + 1,
        ..crate::xml::Limits::stored()
    };
    match Element::parse_with_limits(&doc, &limits) {
        Ok(wrapper) => wrapper.elements().cloned().collect(),
        Err(e) => {
            tracing::warn!(error = %e, "unsent BOSH payload unreadable");
            Vec::new()
        }
    }
}
