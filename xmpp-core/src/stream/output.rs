//! What the c2s server machine asks its driver to do, and the output queue
//! every machine shares. Each machine has its own output type (the client's
//! `ClientOutput`, a component stream's `AcceptOutput`, a component's
//! `ComponentOutput`), so a driver matches only what its machine can say;
//! they share writing and closing.

use crate::jid::Jid;
use crate::modules::register::AccountOp;
use crate::ns;
use crate::sasl::{Mechanism, SaslFailure};
use crate::storage::{RequestId, StorageRequest};
use crate::xml::escape_attr;
use crate::xml::Element;
use std::collections::VecDeque;

/// One instruction from the c2s server machine ([`ServerStream`](super::ServerStream))
/// to its driver, polled in order.
#[derive(Debug, Clone, PartialEq)]
pub enum ConnOutput {
    /// Bytes to write to the transport (already framed XML).
    Write(Vec<u8>),
    /// Flush the writes so far, then run the TLS handshake and call
    /// `tls_established` with the channel-binding data of the new session.
    StartTls,
    /// Perform a storage request and hand the result back with its id.
    Storage {
        id: RequestId,
        request: StorageRequest,
    },
    /// XEP-0077: create an account or replace its password the way the
    /// driver's account administration does (fresh salt, its PBKDF2
    /// iteration count), registrations subject to its per-address limit.
    /// Answer with [`ServerStream::handle_account`](super::ServerStream::handle_account).
    Account { id: RequestId, op: AccountOp },
    /// Server side: check a PLAIN password (one PBKDF2 run, deliberately
    /// slow: the driver runs it off its event loop) and answer with
    /// [`ServerStream::handle_password_check`](super::ServerStream::handle_password_check).
    CheckPassword {
        id: RequestId,
        check: super::PasswordCheck,
    },
    /// Server side: a SASL exchange for this account (bare JID) begins. A
    /// driver with a failure backoff may wait here before performing the
    /// outputs that follow (the credential lookup).
    AuthStarted {
        account: String,
        mechanism: Mechanism,
    },
    /// Server side: a SASL attempt failed (an abort is not a failure); the
    /// account and mechanism when the request got that far.
    AuthFailed {
        account: Option<String>,
        mechanism: Option<Mechanism>,
        failure: SaslFailure,
    },
    /// Server side: SASL succeeded for this account (bare JID).
    Authenticated {
        account: String,
        mechanism: Mechanism,
    },
    /// The stream authenticated and bound this full JID.
    Bound(Jid),
    /// A stanza from the client to the hub (`from` stamped and `to`
    /// normalized).
    Stanza(Element),
    /// Flush pending writes and close the transport: the session is over.
    Close,
    /// Server side, WebSocket: the client closed the WebSocket without
    /// `<close/>`. Flush (the answering Close frame), close the socket and
    /// call `ServerStream::transport_lost`, as for a TCP connection that
    /// broke: a resumable session hibernates.
    DropTransport,
    /// Server side: stream management with resumption is on under this
    /// SM-ID; the driver remembers which connection holds it.
    SmEnabled(String),
    /// Server side: the client asked to resume the session `previd`. The
    /// driver takes it from the stream holding it (see
    /// `ServerStream::take_suspended`) if it belongs to the same account,
    /// and answers with `ServerStream::resume`.
    Resume { previd: String },
    /// Server side: the session of this full JID continues on this stream.
    Resumed(Jid),
    /// Server side: stanzas the client never acknowledged (XEP-0198 §5),
    /// once the session has ended for good: messages go back to their
    /// account (`Hub::redeliver`), error replies to requests are routed
    /// (`sm::is_redelivery` tells which). Hand them over after the
    /// session's end has reached the hub.
    Undelivered(Vec<Element>),
    /// Server side: the client has everything sent before the last
    /// [`ServerStream::mark_page`](super::ServerStream::mark_page):
    /// acknowledged with XEP-0198, handed to the transport without. The
    /// driver tells the hub (`Hub::offline_page_delivered`).
    PageDelivered,
    /// Server side, XEP-0198: a durability fence. The driver passes it
    /// behind the stream's stanzas along their path (the hub partition,
    /// the partitions it routed them to, their storage) and answers
    /// `ServerStream::fence_done` with the same number once everything
    /// before it is durable; only then does the stream acknowledge them.
    Fence(u64),
}

/// What every machine's output type shares: bytes to write. (Each machine
/// has its own output type, so a driver matches only what its machine can
/// say.)
pub(crate) trait Writes: Sized {
    /// The output that writes `bytes`.
    fn write(bytes: Vec<u8>) -> Self;
    /// The bytes of a write output, to append to.
    fn written(&mut self) -> Option<&mut Vec<u8>>;
}

impl Writes for ConnOutput {
    fn write(bytes: Vec<u8>) -> Self {
        ConnOutput::Write(bytes)
    }

    fn written(&mut self) -> Option<&mut Vec<u8>> {
        match self {
            ConnOutput::Write(buf) => Some(buf),
            _ => None,
        }
    }
}

/// An output queue that coalesces consecutive writes, so one read that yields
/// several replies becomes one `write` syscall.
#[derive(Debug)]
pub(crate) struct OutputQueue<O = ConnOutput> {
    queue: VecDeque<O>,
    /// How elements are written.
    framing: ElementFraming,
}

/// How a queue writes elements.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ElementFraming {
    /// Inside a stream document whose header declared the namespaces.
    Stream,
    /// One per WebSocket text message, each declaring its namespaces
    /// (RFC 7395 §3.3.3).
    WebSocket,
    /// Each declaring its namespaces, back to back: the payload of a BOSH
    /// `<body/>` (XEP-0206 §2).
    Bare,
}

impl<O> Default for OutputQueue<O> {
    fn default() -> Self {
        OutputQueue {
            queue: VecDeque::new(),
            framing: ElementFraming::Stream,
        }
    }
}

impl<O> OutputQueue<O> {
    /// A queue that writes elements as `framing` says.
    pub(crate) fn framed(framing: ElementFraming) -> Self {
        OutputQueue {
            queue: VecDeque::new(),
            framing,
        }
    }
}

impl<O: Writes> OutputQueue<O> {
    /// The write at the end of the queue, started if there is none.
    fn tail(&mut self, capacity: usize) -> &mut Vec<u8> {
        if self.queue.back_mut().and_then(O::written).is_none() {
            self.queue.push_back(O::write(Vec::with_capacity(capacity)));
        }
        match self.queue.back_mut().and_then(O::written) {
            Some(buf) => buf,
            None => unreachable!("a write was just pushed"),
        }
    }

    pub(crate) fn write(&mut self, bytes: &[u8]) {
        self.tail(bytes.len()).extend_from_slice(bytes);
    }

    /// Serialize an element (inside a stream whose default namespace is
    /// `default_ns`; over WebSocket, as a message of its own).
    pub(crate) fn write_element(&mut self, e: &Element, default_ns: &str) {
        match self.framing {
            ElementFraming::Stream => {}
            ElementFraming::WebSocket => return self.write_message(e),
            ElementFraming::Bare => return write_declaring(e, self.tail(256)),
        }
        let buf = self.tail(256);
        if e.ns == ns::STREAM {
            write_stream_prefixed(e, buf, default_ns, false);
        } else {
            e.write_to(buf, default_ns);
        }
    }

    /// One element as a WebSocket text message: no stream around it
    /// declares a namespace, so it declares its own (`stream:` too).
    fn write_message(&mut self, e: &Element) {
        let mut xml = Vec::with_capacity(256);
        write_declaring(e, &mut xml);
        crate::websocket::encode::write_text_utf8(self.tail(xml.len() + 10), &xml);
    }

    pub(crate) fn push(&mut self, o: O) {
        self.queue.push_back(o);
    }

    pub(crate) fn pop(&mut self) -> Option<O> {
        let next = self.queue.pop_front();
        if next.is_none() && self.queue.capacity() > 0 {
            // Drained: an idle connection keeps no queue storage (four
            // slots are ~700 bytes; re-allocating them per burst is cheap).
            self.queue = VecDeque::new();
        }
        next
    }
}

/// An element outside any stream document: it declares its namespaces
/// (`stream:` too) itself.
fn write_declaring(e: &Element, out: &mut Vec<u8>) {
    if e.ns == ns::STREAM {
        write_stream_prefixed(e, out, "", true);
    } else {
        e.write_to(out, "");
    }
}

/// Write `<stream:features>`/`<stream:error>` with the `stream:` prefix bound
/// by the stream header, as every client expects, rather than redeclaring the
/// default namespace. Without a stream header (WebSocket), `declare` binds
/// the prefix on the element itself, as RFC 7395 §3.4 shows.
fn write_stream_prefixed(e: &Element, out: &mut Vec<u8>, default_ns: &str, declare: bool) {
    out.extend_from_slice(b"<stream:");
    out.extend_from_slice(e.name.as_bytes());
    if declare {
        out.extend_from_slice(b" xmlns:stream='");
        out.extend_from_slice(ns::STREAM.as_bytes());
        out.push(b'\'');
    }
    for a in e.attrs.iter().filter(|a| a.ns.is_empty()) {
        out.push(b' ');
        out.extend_from_slice(a.name.as_bytes());
        out.extend_from_slice(b"='");
        escape_attr(&a.value, out);
        out.push(b'\'');
    }
    if e.children.is_empty() {
        out.extend_from_slice(b"/>");
        return;
    }
    out.push(b'>');
    for child in &e.children {
        match child {
            crate::xml::Node::Element(c) => c.write_to(out, default_ns),
            crate::xml::Node::Text(t) => crate::xml::escape_text(t, out),
        }
    }
    out.extend_from_slice(b"</stream:");
    out.extend_from_slice(e.name.as_bytes());
    out.push(b'>');
}
