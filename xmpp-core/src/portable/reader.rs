//! The streaming reader of XEP-0227 files: bytes in, [`Record`]s out.
//!
//! A file may hold a million archived messages, so it is never a tree in
//! memory. The fixed outline of the format (server-data, host, user and
//! the containers inside a user: roster, offline messages, archive, private
//! storage, PEP) is walked as *scopes*, reported as [`Record::Open`] and
//! [`Record::Close`] and never kept; everything below a scope is a *unit*
//! (one roster item, one message, one vCard, one PEP item), built as an
//! [`Element`] under [`ReadLimits`] and handed out whole as
//! [`Record::Unit`]. Memory is therefore one unit plus a few bytes per
//! scope, whatever the file's size, and every budget breach names the line
//! and the place in the outline where it happened.

use bytes::{Buf, BytesMut};
use rxml::{Event, Parse, WithOptions};

use super::{NS_PIE, NS_PIEFXIS, NS_PIE_MAM, NS_VIREO};
use crate::xml::parser::{
    check_prolog, element_from_start, is_xml_whitespace, TreeBuilder, PROLOG_SNIFF,
};
use crate::xml::{Element, Limits, XmlError};

/// What one unit of a file may cost, and how long a tag may be. Units are
/// what a server keeps whole (a vCard, a message, a PEP item), so the
/// budget is a few times what Vireo accepts for any of them on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadLimits {
    /// Bytes of one unit as written, markup included.
    pub unit_bytes: usize,
    /// Nesting inside one unit (the unit itself is level 1).
    pub unit_depth: usize,
    /// Elements and text nodes in one unit.
    pub unit_nodes: usize,
    /// Attributes of one element.
    pub attributes: usize,
    /// Bytes of one tag outside units (a `<user>` start tag with its
    /// password), and of any single name or attribute value.
    pub tag_bytes: usize,
}

impl Default for ReadLimits {
    fn default() -> Self {
        ReadLimits {
            unit_bytes: 4 * 1024 * 1024,
            unit_depth: 32,
            unit_nodes: 262_144,
            attributes: 64,
            tag_bytes: 64 * 1024,
        }
    }
}

impl ReadLimits {
    fn xml(&self) -> Limits {
        Limits {
            max_stanza_bytes: self.unit_bytes,
            max_depth: self.unit_depth,
            max_namespace_bytes: 1024,
            max_attributes: self.attributes,
            max_children: self.unit_nodes,
            max_nodes: self.unit_nodes,
        }
    }
}

/// The places of the format's outline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// `<server-data>`, the document root.
    ServerData,
    /// `<host jid>`: a hosted domain (also the root of an ejabberd host file).
    Host,
    /// `<user name [password]>`: an account.
    User,
    /// `<query xmlns='jabber:iq:roster'>` of a user.
    Roster,
    /// `<offline-messages>` of a user.
    Offline,
    /// `<archive xmlns='urn:xmpp:pie:0#mam'>`: a message archive.
    Archive,
    /// `<query xmlns='jabber:iq:private'>`: XEP-0049 private storage.
    Private,
    /// `<pubsub xmlns='http://jabber.org/protocol/pubsub'>`: PEP items.
    Pubsub,
    /// `<items node>` inside [`Scope::Pubsub`]: one node's items.
    PepItems,
    /// `<pubsub xmlns='…#owner'>`: PEP node configurations, affiliations
    /// and subscriptions.
    PubsubOwner,
    /// `<documents xmlns='urn:vireo:pie:0'>`: Vireo's own account documents.
    Documents,
    /// `<service xmlns='urn:vireo:pie:0' jid>`: what a service (pubsub,
    /// a MUC room) owns.
    Service,
}

impl Scope {
    fn label(self) -> &'static str {
        match self {
            Scope::ServerData => "server-data",
            Scope::Host => "host",
            Scope::User => "user",
            Scope::Roster => "roster",
            Scope::Offline => "offline-messages",
            Scope::Archive => "archive",
            Scope::Private => "private",
            Scope::Pubsub => "pubsub",
            Scope::PepItems => "items",
            Scope::PubsubOwner => "pubsub#owner",
            Scope::Documents => "documents",
            Scope::Service => "service",
        }
    }

    /// The scope an element opens when it starts directly inside `self`
    /// (`None`: it is a unit).
    fn child(self, el: &Element) -> Option<Scope> {
        let ns = el.ns.as_str();
        let pie = ns == NS_PIE || ns == NS_PIEFXIS;
        Some(match (self, ns, el.name.as_str()) {
            (Scope::ServerData, _, "host") if pie => Scope::Host,
            (Scope::ServerData, NS_VIREO, "service") => Scope::Service,
            (Scope::Host, _, "user") if pie => Scope::User,
            (Scope::User, "jabber:iq:roster", "query") => Scope::Roster,
            (Scope::User, _, "offline-messages") if pie => Scope::Offline,
            (Scope::User | Scope::Service, NS_PIE_MAM, "archive") => Scope::Archive,
            (Scope::User, "jabber:iq:private", "query") => Scope::Private,
            (Scope::User, super::NS_PUBSUB, "pubsub") => Scope::Pubsub,
            (Scope::User, super::NS_PUBSUB_OWNER, "pubsub") => Scope::PubsubOwner,
            (Scope::User | Scope::Service, NS_VIREO, "documents") => Scope::Documents,
            (Scope::Pubsub, super::NS_PUBSUB, "items") => Scope::PepItems,
            _ => return None,
        })
    }
}

/// What the reader found, in document order.
#[derive(Debug, Clone, PartialEq)]
pub enum Record {
    /// A scope begins; `element` carries its name and attributes (no
    /// children).
    Open {
        /// Which scope.
        scope: Scope,
        /// The start tag.
        element: Element,
        /// The line the start tag ends on.
        line: u64,
    },
    /// A complete element inside `within`.
    Unit {
        /// The scope it appeared in.
        within: Scope,
        /// The element.
        element: Element,
        /// The line it began on.
        line: u64,
    },
    /// The innermost open scope ended.
    Close {
        /// Which scope.
        scope: Scope,
    },
}

/// Why a file could not be read: what went wrong, and where.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}, in {place}: {problem}")]
pub struct ReadError {
    /// The line the reader had reached (1-based).
    pub line: u64,
    /// Where in the outline: `server-data/host[example.org]/user[alice]/vCard`.
    pub place: String,
    /// What went wrong.
    pub problem: Problem,
}

/// The kinds of [`ReadError`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Problem {
    /// Broken or refused XML, or a unit over its budget.
    #[error("{0}")]
    Xml(#[from] XmlError),
    /// One tag outside units passed [`ReadLimits::tag_bytes`].
    #[error("a tag longer than {limit} bytes")]
    TagTooLong {
        /// The limit.
        limit: usize,
    },
    /// The root is not a XEP-0227 `<server-data>` (or `<host>`).
    #[error("not a XEP-0227 file: the root is <{0}>")]
    NotPie(String),
    /// Character data where the format has only elements.
    #[error("text outside any element that could hold it")]
    StrayText,
    /// The file ended before its root closed.
    #[error("the file ends inside <{0}>")]
    Truncated(String),
}

/// Bytes handed to rxml per call, at most.
const CHUNK: usize = 16 * 1024;

/// The streaming reader: [`feed`](Self::feed) bytes, pull
/// [`next_record`](Self::next_record) records until it answers `None`, feed more, and
/// call [`finish`](Self::finish) at the end of the input.
pub struct Reader {
    limits: ReadLimits,
    xml: Limits,
    parser: rxml::Parser,
    buf: BytesMut,
    /// Open scopes with their label for error messages.
    scopes: Vec<(Scope, String)>,
    /// The unit being built, its first line and bytes so far.
    unit: TreeBuilder,
    unit_line: u64,
    unit_bytes: usize,
    unit_name: String,
    /// Bytes rxml consumed that no event accounted for yet.
    pending: usize,
    /// Whether the root element has been seen, and has closed.
    rooted: bool,
    done: bool,
    line: u64,
    error: Option<ReadError>,
}

impl std::fmt::Debug for Reader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reader")
            .field("line", &self.line)
            .field("scopes", &self.scopes)
            .finish_non_exhaustive()
    }
}

impl Reader {
    /// A reader at the start of a file.
    pub fn new(limits: ReadLimits) -> Self {
        let opts = rxml::Options {
            max_token_length: limits.tag_bytes.max(64),
            comments: rxml::parser::CommentMode::Discard,
            ..rxml::Options::default()
        };
        Reader {
            xml: limits.xml(),
            limits,
            parser: rxml::Parser::with_options(opts),
            buf: BytesMut::new(),
            scopes: Vec::new(),
            unit: TreeBuilder::default(),
            unit_line: 0,
            unit_bytes: 0,
            unit_name: String::new(),
            pending: 0,
            rooted: false,
            done: false,
            line: 1,
            error: None,
        }
    }

    /// Append input. Nothing is parsed until [`next_record`](Self::next_record).
    pub fn feed(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// Bytes fed and not yet parsed: feed more only when this is small.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// The line reached so far.
    pub fn line(&self) -> u64 {
        self.line
    }

    /// The next record; `Ok(None)` when more input is needed (or the
    /// document is complete). After an error every call returns it again.
    pub fn next_record(&mut self) -> Result<Option<Record>, ReadError> {
        if let Some(e) = &self.error {
            return Err(e.clone());
        }
        match self.step(false) {
            Ok(r) => Ok(r),
            Err(problem) => Err(self.fail(problem)),
        }
    }

    /// The input ended: the remaining records, one per call, then
    /// `Ok(None)`; an error if the document is incomplete.
    pub fn finish(&mut self) -> Result<Option<Record>, ReadError> {
        if let Some(e) = &self.error {
            return Err(e.clone());
        }
        match self.step(true) {
            Ok(Some(r)) => Ok(Some(r)),
            Ok(None) if self.done => Ok(None),
            Ok(None) => {
                let p = self.truncated();
                Err(self.fail(p))
            }
            Err(problem) => Err(self.fail(problem)),
        }
    }

    fn truncated(&self) -> Problem {
        Problem::Truncated(
            self.scopes
                .last()
                .map_or_else(|| "server-data".to_owned(), |(s, _)| s.label().to_owned()),
        )
    }

    fn fail(&mut self, problem: Problem) -> ReadError {
        let mut place: Vec<&str> = self.scopes.iter().map(|(_, l)| l.as_str()).collect();
        if !self.unit.is_empty() {
            place.push(&self.unit_name);
        }
        if place.is_empty() {
            place.push("the document");
        }
        let e = ReadError {
            line: self.line,
            place: place.join("/"),
            problem,
        };
        self.error = Some(e.clone());
        e
    }

    /// Bytes the current token may still take before a budget trips. One
    /// event is never more than a tag (rxml cuts text into chunks of at
    /// most a token), so a start tag with a million attributes inside a
    /// unit trips the tag budget before rxml has gathered them all.
    fn allowance(&self) -> usize {
        let tag = self.limits.tag_bytes.saturating_sub(self.pending);
        if self.unit.is_empty() {
            tag
        } else {
            tag.min(
                self.limits
                    .unit_bytes
                    .saturating_sub(self.unit_bytes.saturating_add(self.pending)),
            )
        }
    }

    fn over_budget(&self) -> Option<Problem> {
        if !self.unit.is_empty()
            && self.unit_bytes.saturating_add(self.pending) > self.limits.unit_bytes
        {
            return Some(Problem::Xml(XmlError::StanzaTooLarge {
                limit: self.limits.unit_bytes,
            }));
        }
        // Text arrives in chunks of at most a token, so only a tag can
        // leave this many bytes without an event.
        (self.pending > self.limits.tag_bytes.saturating_add(4)).then_some(Problem::TagTooLong {
            limit: self.limits.tag_bytes,
        })
    }

    fn step(&mut self, at_eof: bool) -> Result<Option<Record>, Problem> {
        if !self.rooted && self.pending == 0 {
            if self.buf.len() < PROLOG_SNIFF && !at_eof {
                return Ok(None);
            }
            check_prolog(&self.buf)?;
        }
        loop {
            if self.done {
                return Ok(None);
            }
            let len = self
                .buf
                .len()
                .min(CHUNK)
                .min(self.allowance().saturating_add(1));
            let mut slice = &self.buf[..len];
            let res = self
                .parser
                .parse(&mut slice, at_eof && len == self.buf.len());
            let used = len - slice.len();
            self.line += self.buf[..used].iter().filter(|&&b| b == b'\n').count() as u64;
            self.buf.advance(used);
            self.pending = self.pending.saturating_add(used);
            match res {
                Err(rxml::error::EndOrError::NeedMoreData) => {
                    if let Some(p) = self.over_budget() {
                        return Err(p);
                    }
                    if self.buf.is_empty() || used == 0 {
                        return Ok(None);
                    }
                }
                Ok(None) => {
                    // rxml saw the end of the document.
                    self.done = self.rooted && self.scopes.is_empty();
                    return Ok(None);
                }
                Err(rxml::error::EndOrError::Error(e)) => {
                    if let Some(p) = self.over_budget() {
                        return Err(p);
                    }
                    if at_eof && e.to_string().contains("eof") {
                        return Err(self.truncated());
                    }
                    return Err(XmlError::from_rxml(e).into());
                }
                Ok(Some(ev)) => {
                    let m = ev.metrics().len();
                    self.pending = self.pending.saturating_sub(m);
                    if !self.unit.is_empty() {
                        self.unit_bytes = self.unit_bytes.saturating_add(m);
                    }
                    if let Some(p) = self.over_budget() {
                        return Err(p);
                    }
                    if let Some(r) = self.handle(ev, m)? {
                        return Ok(Some(r));
                    }
                }
            }
        }
    }

    fn handle(&mut self, ev: Event, bytes: usize) -> Result<Option<Record>, Problem> {
        match ev {
            Event::XmlDeclaration(..) => Ok(None),
            Event::StartElement(_, qname, attrs) => {
                let el = element_from_start(qname, attrs, &self.xml)?;
                if !self.unit.is_empty() {
                    self.unit.start(el, 1, &self.xml)?;
                    return Ok(None);
                }
                let Some(&(current, _)) = self.scopes.last() else {
                    if self.rooted {
                        return Err(XmlError::NotWellFormed("a second root".into()).into());
                    }
                    let pie = el.ns == NS_PIE || el.ns == NS_PIEFXIS;
                    let scope = match el.name.as_str() {
                        "server-data" if pie => Scope::ServerData,
                        "host" if pie => Scope::Host,
                        _ => return Err(Problem::NotPie(el.name.clone())),
                    };
                    self.rooted = true;
                    return Ok(Some(self.open(scope, el)));
                };
                match current.child(&el) {
                    Some(scope) => Ok(Some(self.open(scope, el))),
                    None => {
                        self.unit_line = self.line;
                        self.unit_bytes = bytes;
                        self.unit_name = clip(&el.name);
                        self.unit.start(el, 1, &self.xml)?;
                        Ok(None)
                    }
                }
            }
            Event::EndElement(_) => {
                if !self.unit.is_empty() {
                    let Some(element) = self.unit.end() else {
                        return Ok(None);
                    };
                    self.unit_bytes = 0;
                    let within = self.scopes.last().map_or(Scope::ServerData, |(s, _)| *s);
                    return Ok(Some(Record::Unit {
                        within,
                        element,
                        line: self.unit_line,
                    }));
                }
                let Some((scope, _)) = self.scopes.pop() else {
                    return Err(XmlError::NotWellFormed("end tag outside the root".into()).into());
                };
                if self.scopes.is_empty() {
                    self.done = true;
                }
                Ok(Some(Record::Close { scope }))
            }
            Event::Text(_, text) => {
                if !self.unit.is_empty() {
                    self.unit.text(text, &self.xml)?;
                } else if !is_xml_whitespace(&text) {
                    return Err(Problem::StrayText);
                }
                Ok(None)
            }
        }
    }

    fn open(&mut self, scope: Scope, element: Element) -> Record {
        let label = match scope {
            Scope::Host | Scope::Service => element
                .attr("jid")
                .map(|j| format!("{}[{}]", scope.label(), clip(j))),
            Scope::User => element.attr("name").map(|n| format!("user[{}]", clip(n))),
            Scope::PepItems => element.attr("node").map(|n| format!("items[{}]", clip(n))),
            _ => None,
        }
        .unwrap_or_else(|| scope.label().to_owned());
        self.scopes.push((scope, label));
        Record::Open {
            scope,
            element,
            line: self.line,
        }
    }
}

/// A name as shown in an error: at most 64 characters of it.
fn clip(s: &str) -> String {
    match s.char_indices().nth(64) {
        Some((at, _)) => format!("{}…", &s[..at]),
        None => s.to_owned(),
    }
}
