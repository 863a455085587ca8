//! The restricted XML stream parser (RFC 6120 §11) on top of rxml.
//!
//! rxml already refuses DTDs, entity declarations (so nothing is ever
//! expanded), processing instructions and, as configured here, comments, and it
//! checks namespace well-formedness. This layer adds what XMPP needs on top:
//! stanza framing below the stream root, the depth and size limits, and the
//! mapping of failures to stream error conditions.
//!
//! Depth is counted from the stream root, which is depth 0: a stanza is at
//! depth 1, its payload at depth 2, and so on. An element deeper than
//! [`Limits::max_depth`] is rejected. [`Element::parse`] treats its element as
//! depth 1, so a stored stanza gets exactly the allowance it had on the wire.
//!
//! Attributes come out ordered by (namespace, name), not in document order:
//! rxml hands them over in a sorted map. The order is deterministic, so a
//! serialize/parse round trip yields an equal tree.

use bytes::{Buf, BytesMut};
use rxml::{Event, Parse, WithOptions};

use super::element::{Attr, Element, Node};
use super::error::XmlError;
use super::header_scan::HeaderScan;
use super::namespace::Namespace;

/// Resource limits applied while parsing: budgets of what a stanza costs in
/// memory, not only of its bytes on the wire.
///
/// Bytes alone do not bound the tree: an empty `<a/>` is four bytes of input
/// but an element in memory, and attributes and text nodes are similar. So
/// the count of elements and text nodes, of children per element and of
/// attributes per element is limited too; namespaces are shared rather than
/// copied ([`Namespace`](super::Namespace)) and their length is capped. With
/// these limits a parsed stanza costs at most a small constant times its
/// bytes (the `xml_budget` property test measures the constant).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Maximum size in bytes of one top-level element (stanza or nonza) as
    /// received, markup included. Also bounds the stream header.
    pub max_stanza_bytes: usize,
    /// Maximum element depth, the stream root being depth 0 (a stanza is 1).
    pub max_depth: usize,
    /// Longest namespace name (URI) in bytes.
    pub max_namespace_bytes: usize,
    /// Most attributes on one element.
    pub max_attributes: usize,
    /// Most children (elements and text nodes) of one element.
    pub max_children: usize,
    /// Most elements and text nodes in one top-level element, itself included.
    pub max_nodes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_stanza_bytes: 256 * 1024,
            max_depth: 32,
            max_namespace_bytes: 1024,
            max_attributes: 64,
            max_children: 4096,
            max_nodes: 16_384,
        }
    }
}

/// Elements and text nodes a stanza may have before authentication: SASL,
/// STARTTLS and a registration form need a few dozen.
const UNAUTHENTICATED_MAX_NODES: usize = 256;

impl Limits {
    /// The limits before authentication: at most `max_stanza_bytes` per
    /// element and a few hundred nodes, so an anonymous connection costs
    /// little whatever it sends.
    pub fn unauthenticated(&self, max_stanza_bytes: usize) -> Limits {
        Limits {
            max_stanza_bytes: max_stanza_bytes.min(self.max_stanza_bytes),
            max_children: self.max_children.min(UNAUTHENTICATED_MAX_NODES),
            max_nodes: self.max_nodes.min(UNAUTHENTICATED_MAX_NODES),
            ..*self
        }
    }

    /// Limits for documents the server stored itself (offline messages,
    /// archives, private XML): they passed the stream's limits when they
    /// arrived, which may have been raised since, so only size and depth
    /// apply when they are read back.
    pub fn stored() -> Limits {
        Limits {
            max_namespace_bytes: usize::MAX,
            max_attributes: usize::MAX,
            max_children: usize::MAX,
            max_nodes: usize::MAX,
            ..Limits::default()
        }
    }
}

/// What the stream parser produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StreamEvent {
    /// The stream header (e.g. `<stream:stream>`) as an Element with no
    /// children: ns, name, attrs (unqualified + `xml:lang`; other namespaced
    /// attributes are kept too). Namespace declarations are not attributes.
    Open(Element),
    /// A complete top-level child of the stream root (a stanza or nonza), in
    /// its resolved namespace (e.g. "jabber:client" inherited from the root's
    /// default namespace declaration).
    Stanza(Element),
    /// The root closed (`</stream:stream>`).
    Close,
}

/// How many bytes rxml gets per call at most, so that a single call cannot
/// swallow a large buffer before the size limit is checked.
const CHUNK: usize = 8 * 1024;

/// The smallest token limit handed to rxml; tiny stanza limits in tests must
/// still let names through so that the size check, not rxml, reports.
pub(super) const MIN_TOKEN: usize = 64;

/// The longest single token (name or attribute value; text is chunked)
/// rxml buffers. rxml reserves this much per connection while it parses, so
/// it is kept well below the stanza limit; XMPP attribute values are short.
pub(super) const MAX_TOKEN: usize = 32 * 1024;

fn rxml_parser(limits: &Limits) -> rxml::Parser {
    let opts = rxml::Options {
        // A token can never be longer than the element holding it either.
        max_token_length: limits.max_stanza_bytes.clamp(MIN_TOKEN, MAX_TOKEN),
        ..rxml::Options::default()
    };
    rxml::Parser::with_options(opts)
}

pub(crate) fn is_xml_whitespace(s: &str) -> bool {
    s.bytes().all(|b| matches!(b, b' ' | b'\t' | b'\n' | b'\r'))
}

/// Turn rxml's start event into an element, sharing its namespaces and
/// enforcing the per-element limits before anything is built.
pub(crate) fn element_from_start(
    qname: rxml::QName,
    attrs: rxml::AttrMap,
    limits: &Limits,
) -> Result<Element, XmlError> {
    let (ns, name) = qname;
    if attrs.len() > limits.max_attributes {
        return Err(XmlError::TooManyAttributes {
            limit: limits.max_attributes,
        });
    }
    let ns = shared_namespace(ns, limits)?;
    let mut out = Vec::with_capacity(attrs.len());
    for ((ans, aname), value) in attrs {
        out.push(Attr {
            ns: shared_namespace(ans, limits)?,
            name: aname.as_str().to_owned(),
            value,
        });
    }
    Ok(Element {
        ns,
        name: name.as_str().to_owned(),
        attrs: out,
        children: Vec::new(),
    })
}

fn shared_namespace(ns: rxml::Namespace<'static>, limits: &Limits) -> Result<Namespace, XmlError> {
    if ns.len() > limits.max_namespace_bytes {
        return Err(XmlError::NamespaceTooLong {
            limit: limits.max_namespace_bytes,
        });
    }
    Ok(Namespace::from_rxml(ns))
}

/// Builds the tree of one top-level element from rxml events (also the
/// units of a XEP-0227 file, `crate::portable`).
#[derive(Debug, Default)]
pub(crate) struct TreeBuilder {
    /// Open elements, outermost first.
    stack: Vec<Element>,
    /// Elements and text nodes of the current top-level element so far.
    nodes: usize,
}

impl TreeBuilder {
    pub(crate) fn is_empty(&self) -> bool {
        self.stack.is_empty()
    }

    /// Count one more node under the innermost open element, refusing it
    /// when it would pass the per-parent or per-stanza limit.
    fn admit_node(&mut self, limits: &Limits) -> Result<(), XmlError> {
        if let Some(parent) = self.stack.last() {
            if parent.children.len() >= limits.max_children {
                return Err(XmlError::TooManyChildren {
                    limit: limits.max_children,
                });
            }
        }
        if self.nodes >= limits.max_nodes {
            return Err(XmlError::TooManyNodes {
                limit: limits.max_nodes,
            });
        }
        self.nodes += 1;
        Ok(())
    }

    /// Open an element; `base_depth` is the depth of the builder's outermost
    /// element.
    pub(crate) fn start(
        &mut self,
        el: Element,
        base_depth: usize,
        limits: &Limits,
    ) -> Result<(), XmlError> {
        if base_depth + self.stack.len() > limits.max_depth {
            return Err(XmlError::TooDeep {
                limit: limits.max_depth,
            });
        }
        self.admit_node(limits)?;
        self.stack.push(el);
        Ok(())
    }

    /// Close the innermost element; returns the outermost one when it closes.
    pub(crate) fn end(&mut self) -> Option<Element> {
        let mut el = self.stack.pop()?;
        // A vector grows to at least four slots and by doubling; a finished
        // element keeps exactly its children (stanzas wait in queues).
        el.children.shrink_to_fit();
        match self.stack.last_mut() {
            Some(parent) => {
                parent.children.push(Node::Element(el));
                None
            }
            None => {
                self.nodes = 0;
                Some(el)
            }
        }
    }

    /// Append character data, merging it with a preceding text node because
    /// rxml may split one run of text into several events.
    pub(crate) fn text(&mut self, s: String, limits: &Limits) -> Result<(), XmlError> {
        if s.is_empty() {
            return Ok(());
        }
        let merges = match self.stack.last() {
            None => return Ok(()),
            Some(parent) => matches!(parent.children.last(), Some(Node::Text(_))),
        };
        if !merges {
            self.admit_node(limits)?;
        }
        let Some(parent) = self.stack.last_mut() else {
            return Ok(());
        };
        match parent.children.last_mut() {
            Some(Node::Text(t)) => t.push_str(&s),
            _ => parent.children.push(Node::Text(s)),
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Before the stream header.
    Prolog,
    /// Inside the stream root.
    Open,
    /// After the stream root closed.
    Closed,
}

/// Buffer capacity kept by an idle parser; more is released.
const IDLE_BUFFER: usize = 1024;

/// Incremental parser for one XMPP stream: feed bytes as they arrive, pull
/// [`StreamEvent`]s.
#[derive(Debug)]
pub struct StreamParser {
    limits: Limits,
    buf: BytesMut,
    parser: rxml::Parser,
    phase: Phase,
    tree: TreeBuilder,
    /// Bytes attributed (by rxml's event metrics) to the current top-level
    /// element, or to the stream header while in the prolog.
    cur_bytes: usize,
    /// Bytes rxml consumed that no event has accounted for yet: the part of
    /// a token still being received.
    unattributed: usize,
    error: Option<XmlError>,
    /// Namespace declarations of the stream header.
    header: HeaderScan,
}

impl StreamParser {
    /// A parser waiting for a stream header.
    pub fn new(limits: Limits) -> Self {
        StreamParser {
            limits,
            buf: BytesMut::new(),
            parser: rxml_parser(&limits),
            phase: Phase::Prolog,
            tree: TreeBuilder::default(),
            cur_bytes: 0,
            unattributed: 0,
            error: None,
            header: HeaderScan::new(&limits),
        }
    }

    /// The limits this parser enforces.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Append received bytes. Nothing is parsed until
    /// [`next_event`](Self::next_event).
    pub fn feed(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// Bytes fed but not yet consumed by the parser. Checked after
    /// `<starttls/>`: anything the peer pipelined behind it was sent in
    /// plaintext and must not be carried into the TLS session.
    pub fn pending_bytes(&self) -> usize {
        self.buf.len()
    }

    /// A new stream begins on the same transport (after SASL success): fresh
    /// rxml state, unconsumed bytes kept. A failed parser stays failed.
    pub fn restart(&mut self) {
        self.parser = rxml_parser(&self.limits);
        self.phase = Phase::Prolog;
        self.tree = TreeBuilder::default();
        self.cur_bytes = 0;
        self.unattributed = 0;
        self.header = HeaderScan::new(&self.limits);
    }

    /// The prefix the current stream's header declared for `ns`, e.g.
    /// `Some("db")` for `jabber:server:dialback`: XEP-0220 §2.4.1 announces
    /// dialback support that way. Known once [`StreamEvent::Open`] has been
    /// returned; declarations beyond `max_attributes` are not kept.
    pub fn header_prefix(&self, ns: &str) -> Option<&str> {
        self.header.prefix_for(ns)
    }

    /// [`restart`](Self::restart) under new limits: authentication lifts the
    /// smaller budget an anonymous stream gets.
    pub fn restart_with(&mut self, limits: Limits) {
        self.limits = limits;
        self.restart();
    }

    /// Like [`restart`](Self::restart), but also drops unconsumed bytes (after
    /// STARTTLS, where they came in plaintext).
    pub fn clear(&mut self) {
        self.restart();
        self.buf.clear();
    }

    /// True once the stream root has closed.
    pub fn is_closed(&self) -> bool {
        self.phase == Phase::Closed
    }

    /// The next event, `Ok(None)` when more bytes are needed. After an error
    /// every further call returns the same error.
    pub fn next_event(&mut self) -> Result<Option<StreamEvent>, XmlError> {
        if let Some(e) = &self.error {
            return Err(e.clone());
        }
        match self.step() {
            Ok(ev) => Ok(ev),
            Err(e) => {
                self.error = Some(e.clone());
                Err(e)
            }
        }
    }

    /// Between stanzas with nothing buffered, give back the memory a burst
    /// of input grew: an idle session should cost next to nothing.
    fn release_if_idle(&mut self) {
        if self.buf.is_empty() && self.tree.is_empty() && self.phase == Phase::Open {
            if self.buf.capacity() > IDLE_BUFFER {
                self.buf = BytesMut::new();
            }
            self.parser.release_temporaries();
        }
    }

    fn too_large(&self) -> bool {
        self.phase != Phase::Closed
            && self.cur_bytes.saturating_add(self.unattributed) > self.limits.max_stanza_bytes
    }

    fn size_error(&self) -> XmlError {
        XmlError::StanzaTooLarge {
            limit: self.limits.max_stanza_bytes,
        }
    }

    fn step(&mut self) -> Result<Option<StreamEvent>, XmlError> {
        if self.phase == Phase::Prolog && self.cur_bytes == 0 && self.unattributed == 0 {
            // The first bytes decide the encoding and whether `<?xml` is a
            // declaration or a PI; wait until there are enough of them.
            if self.buf.len() < PROLOG_SNIFF {
                return Ok(None);
            }
            check_prolog(&self.buf)?;
        }
        loop {
            // Never hand rxml more than one byte past the budget: the limit
            // trips as soon as the element outgrows it.
            let used_so_far = self.cur_bytes.saturating_add(self.unattributed);
            let budget = self
                .limits
                .max_stanza_bytes
                .saturating_sub(used_so_far)
                .saturating_add(1);
            let len = self.buf.len().min(CHUNK).min(budget);
            let mut slice = &self.buf[..len];
            let res = self.parser.parse(&mut slice, false);
            let used = len - slice.len();
            if self.phase == Phase::Prolog {
                self.header.feed(&self.buf[..used]);
            }
            self.buf.advance(used);
            self.unattributed = self.unattributed.saturating_add(used);
            match res {
                Err(rxml::error::EndOrError::NeedMoreData) | Ok(None) => {
                    if self.too_large() {
                        return Err(self.size_error());
                    }
                    if self.buf.is_empty() || used == 0 {
                        self.release_if_idle();
                        return Ok(None);
                    }
                }
                Err(rxml::error::EndOrError::Error(e)) => {
                    if self.too_large() {
                        return Err(self.size_error());
                    }
                    return Err(XmlError::from_rxml(e));
                }
                Ok(Some(ev)) => {
                    let m = ev.metrics().len();
                    self.unattributed = self.unattributed.saturating_sub(m);
                    self.cur_bytes = self.cur_bytes.saturating_add(m);
                    if self.too_large() {
                        return Err(self.size_error());
                    }
                    if let Some(out) = self.handle(ev)? {
                        return Ok(Some(out));
                    }
                }
            }
        }
    }

    fn handle(&mut self, ev: Event) -> Result<Option<StreamEvent>, XmlError> {
        match ev {
            Event::XmlDeclaration(..) => Ok(None),
            Event::StartElement(_, qname, attrs) => {
                let el = element_from_start(qname, attrs, &self.limits)?;
                match self.phase {
                    Phase::Prolog => {
                        self.phase = Phase::Open;
                        self.cur_bytes = 0;
                        Ok(Some(StreamEvent::Open(el)))
                    }
                    Phase::Open => {
                        self.tree.start(el, 1, &self.limits)?;
                        Ok(None)
                    }
                    // rxml rejects a second root itself; be defensive.
                    Phase::Closed => Err(XmlError::NotWellFormed(
                        "element after the stream root closed".to_owned(),
                    )),
                }
            }
            Event::EndElement(_) => {
                if self.tree.is_empty() {
                    self.phase = Phase::Closed;
                    self.cur_bytes = 0;
                    return Ok(Some(StreamEvent::Close));
                }
                match self.tree.end() {
                    Some(el) => {
                        self.cur_bytes = 0;
                        Ok(Some(StreamEvent::Stanza(el)))
                    }
                    None => Ok(None),
                }
            }
            Event::Text(_, text) => {
                if self.tree.is_empty() {
                    // Whitespace between stanzas (keepalives) is not part of
                    // any stanza; it must not count towards the next one.
                    if !is_xml_whitespace(&text) {
                        return Err(XmlError::TextAtStreamLevel);
                    }
                    self.cur_bytes = 0;
                } else {
                    self.tree.text(text, &self.limits)?;
                }
                Ok(None)
            }
        }
    }
}

/// Bytes needed to classify the start of a document (`<?xml` plus one).
pub(crate) const PROLOG_SNIFF: usize = 6;

/// Classify the first bytes of a document before rxml sees them: UTF-16 (with
/// or without BOM) is an encoding problem, and `<?xml-stylesheet` and the like
/// are processing instructions. rxml would report both as plain syntax
/// errors, hiding the stream error condition that applies.
pub(crate) fn check_prolog(buf: &[u8]) -> Result<(), XmlError> {
    match buf {
        [0xFE, 0xFF, ..] | [0xFF, 0xFE, ..] | [0x00, b'<', ..] | [b'<', 0x00, ..] => Err(
            XmlError::UnsupportedEncoding("UTF-16 input; only UTF-8 is allowed".to_owned()),
        ),
        [b'<', b'?', b'x', b'm', b'l', c, ..] if !matches!(c, b' ' | b'\t' | b'\r' | b'\n') => {
            Err(XmlError::Restricted("processing instructions".to_owned()))
        }
        _ => Ok(()),
    }
}

impl Element {
    /// Parse one standalone element (stored offline stanzas, archives,
    /// tests) under [`Limits::stored`]; the element counts as depth 1, like a
    /// stanza. An XML declaration and surrounding whitespace are allowed.
    pub fn parse(bytes: &[u8]) -> Result<Element, XmlError> {
        Element::parse_with_limits(bytes, &Limits::stored())
    }

    /// [`Element::parse`] with explicit limits.
    pub fn parse_with_limits(bytes: &[u8], limits: &Limits) -> Result<Element, XmlError> {
        if bytes.len() > limits.max_stanza_bytes {
            return Err(XmlError::StanzaTooLarge {
                limit: limits.max_stanza_bytes,
            });
        }
        check_prolog(bytes)?;
        let mut parser = rxml_parser(limits);
        let mut input = bytes;
        let mut tree = TreeBuilder::default();
        let mut root: Option<Element> = None;
        loop {
            match parser.parse(&mut input, true) {
                Ok(None) => break,
                Ok(Some(ev)) => match ev {
                    Event::XmlDeclaration(..) => {}
                    Event::StartElement(_, qname, attrs) => {
                        tree.start(element_from_start(qname, attrs, limits)?, 1, limits)?;
                    }
                    Event::EndElement(_) => {
                        if let Some(el) = tree.end() {
                            root = Some(el);
                        }
                    }
                    Event::Text(_, text) => tree.text(text, limits)?,
                },
                Err(rxml::error::EndOrError::Error(e)) => return Err(XmlError::from_rxml(e)),
                Err(rxml::error::EndOrError::NeedMoreData) => return Err(XmlError::Incomplete),
            }
        }
        root.ok_or(XmlError::Incomplete)
    }
}
