//! How the c2s machine's XML travels: as one document over TCP (RFC 6120,
//! `<stream:stream>` … `</stream:stream>`) or as one element per WebSocket
//! text message (RFC 7395), the stream's ends being `<open/>` and
//! `<close/>`.
//!
//! Everything above this file is the same machine for both: SASL, binding,
//! stream management and resumption (also from a WebSocket to TCP and
//! back), CSI, and the hub never know which framing a session uses. The
//! WebSocket layer is pure too: frames in as bytes, frames out as bytes.
//!
//! Input: each text message is classified. `<open/>` becomes the stream
//! header it stands for, `<close/>` the end tag, and any other element is
//! passed on unchanged; all three go into the same streaming parser, in
//! order, so a message waits behind the ones before it exactly as bytes on
//! TCP do, and every parser limit applies as on TCP. The parser is told
//! the stream's default namespace by the header it is given; a client that
//! leaves `xmlns='jabber:client'` off a stanza (RFC 7395 §3.3.3 wants it)
//! is therefore understood.
//!
//! Output: the [`OutputQueue`](crate::stream::output::OutputQueue) writes
//! each element as its own text message; this file writes the ends, the
//! keepalive (a Ping: whitespace is not allowed between messages, §3.3.3)
//! and the WebSocket control frames.

use super::{ServerStream, StreamErrorCondition};
use crate::ns;
use crate::stream::header::{write_header, STREAM_CLOSE};
use crate::stream::output::ConnOutput;
use crate::websocket::{close, encode, FrameDecoder, FrameLimits, Message, WsError};
use crate::xml::{write_attr, Element, Limits, XML_NS};

/// Our `<close/>`, spelled exactly as Strophe.js (Converse's XMPP
/// library) compares it, character for character, to recognise the end
/// of the stream; any other spelling of the same XML it would not.
const CLOSE: &str = "<close xmlns=\"urn:ietf:params:xml:ns:xmpp-framing\" />";

/// The WebSocket side of a stream: the frame decoder and what was said
/// at the WebSocket level.
#[derive(Debug)]
pub(super) struct WebSocket {
    decoder: FrameDecoder,
    /// Our Close frame is written: nothing may follow it (RFC 6455 §5.5.1).
    close_sent: bool,
    /// The Close code for the end of the stream when it is not 1000: the
    /// client broke the WebSocket protocol.
    close_code: Option<u16>,
    /// RFC 7395 §3.6.1: clients are sent elsewhere.
    see_other: Option<String>,
}

impl WebSocket {
    /// A message holds one element, so the stream parser's stanza budget
    /// is the message budget: before authentication the small one.
    pub(super) fn new(parser: &Limits) -> Box<WebSocket> {
        Box::new(WebSocket {
            decoder: FrameDecoder::new(frame_limits(parser)),
            close_sent: false,
            close_code: None,
            see_other: None,
        })
    }
}

/// What a text message is, by its root element.
enum Framed {
    /// `<open/>`, with the header it stands for.
    Open(Vec<u8>),
    /// `<close/>`.
    Close,
    /// A stanza or nonza, passed on unchanged.
    Element,
    /// An `<open/>` or `<close/>` that is not in the framing namespace or
    /// not well-formed.
    Invalid(StreamErrorCondition, &'static str),
}

impl ServerStream {
    /// Bytes from a WebSocket connection: decode its frames and hand each
    /// message on.
    pub(super) fn handle_websocket_input(&mut self, bytes: &[u8]) {
        let mut input = bytes;
        loop {
            if self.is_closed() {
                return;
            }
            let Some(ws) = self.websocket.as_mut() else {
                return;
            };
            match ws.decoder.feed(&mut input) {
                Ok(None) => return,
                Ok(Some(Message::Text(text))) => self.handle_text_message(text),
                Ok(Some(Message::Binary(_))) => {
                    // §3.4 of RFC 7395 leaves binary undefined: refuse it.
                    self.fail_websocket(
                        close::UNSUPPORTED_DATA,
                        StreamErrorCondition::UnsupportedEncoding,
                        "binary WebSocket messages are not XMPP",
                    )
                }
                Ok(Some(Message::Ping(payload))) => {
                    let mut frame = Vec::with_capacity(payload.len() + 2);
                    encode::write_pong(&mut frame, &payload);
                    self.out.write(&frame);
                }
                Ok(Some(Message::Pong(_))) => {}
                Ok(Some(Message::Close(_))) => return self.websocket_closed_by_peer(),
                Err(e) => return self.websocket_protocol_error(&e),
            }
        }
    }

    /// One text message: an element (RFC 7395 §3.3.3).
    fn handle_text_message(&mut self, text: String) {
        match classify(&text, self.parser.limits()) {
            // Only where a header is expected: anywhere else the header it
            // stands for would open an element that swallows the stream.
            Framed::Open(_) if self.see_other().is_some() => return self.redirect(),
            Framed::Open(header) if self.expects_header() => self.parser.feed(&header),
            Framed::Open(_) => {
                return self.stream_error(
                    StreamErrorCondition::BadFormat,
                    Some("<open/> where no stream (re)start is expected"),
                )
            }
            Framed::Close => self.parser.feed(STREAM_CLOSE),
            Framed::Element => self.parser.feed(text.as_bytes()),
            Framed::Invalid(condition, why) => return self.stream_error(condition, Some(why)),
        }
        self.process();
    }

    /// Send every client that opens a stream to `uri` instead (RFC 7395
    /// §3.6.1: a server being moved or drained).
    pub fn see_other_uri(&mut self, uri: String) {
        if let Some(ws) = self.websocket.as_mut() {
            ws.see_other = Some(uri);
        }
    }

    fn see_other(&self) -> Option<&str> {
        self.websocket.as_ref()?.see_other.as_deref()
    }

    /// The answer to `<open/>` when clients are sent elsewhere: a
    /// `<close/>` naming where, then the WebSocket Close.
    fn redirect(&mut self) {
        let Some(uri) = self.see_other().map(str::to_owned) else {
            return;
        };
        let mut close = format!("<close xmlns='{}'", ns::FRAMING).into_bytes();
        write_attr(&mut close, "see-other-uri", &uri);
        close.extend_from_slice(b"/>");
        let mut frame = Vec::with_capacity(close.len() + 4);
        encode::write_text_utf8(&mut frame, &close);
        self.out.write(&frame);
        self.write_websocket_close(close::NORMAL);
        self.set_closed();
        self.out.push(ConnOutput::Close);
    }

    /// Whether the next element may be a stream header: at the start, and
    /// after authentication restarted the stream, with nothing of the
    /// client's waiting to be parsed.
    fn expects_header(&self) -> bool {
        matches!(self.phase, super::Phase::Header) && self.parser.pending_bytes() == 0
    }

    /// The client closed the WebSocket without `<close/>` (which would
    /// have ended the stream first): answer its Close and let the driver
    /// treat the connection as broken, so a resumable session hibernates
    /// as after a dropped TCP connection.
    fn websocket_closed_by_peer(&mut self) {
        self.write_websocket_close(close::NORMAL);
        self.out.push(ConnOutput::DropTransport);
    }

    /// A frame broke RFC 6455: a stream error the client can still read,
    /// then the Close code the error calls for.
    fn websocket_protocol_error(&mut self, e: &WsError) {
        let condition = match e {
            WsError::MessageTooBig { .. } | WsError::FrameTooBig { .. } => {
                StreamErrorCondition::PolicyViolation
            }
            _ => StreamErrorCondition::BadFormat,
        };
        self.fail_websocket(e.close_code(), condition, &e.to_string());
    }

    fn fail_websocket(&mut self, code: u16, condition: StreamErrorCondition, why: &str) {
        tracing::debug!(code, %why, "failing the WebSocket");
        if let Some(ws) = self.websocket.as_mut() {
            // The stream error's own close goes out with this code.
            ws.close_code = Some(code);
        }
        self.stream_error(condition, Some(why));
    }

    /// The parser's limits changed (authentication): messages get the
    /// same budget.
    pub(super) fn follow_parser_limits(&mut self) {
        let limits = frame_limits(self.parser.limits());
        if let Some(ws) = self.websocket.as_mut() {
            ws.decoder.set_limits(limits);
        }
    }

    /// Our stream header: `<stream:stream>` or `<open/>`.
    pub(super) fn write_open(&mut self, from: Option<&str>, id: Option<&str>) {
        if self.bare {
            return; // BOSH: the session's first response says it
        }
        let mut buf = Vec::with_capacity(256);
        if self.websocket.is_none() {
            write_header(&mut buf, ns::CLIENT, from, None, id);
            return self.out.write(&buf);
        }
        buf.extend_from_slice(b"<open xmlns='");
        buf.extend_from_slice(ns::FRAMING.as_bytes());
        buf.push(b'\'');
        for (name, value) in [("from", from), ("id", id)] {
            if let Some(v) = value {
                write_attr(&mut buf, name, v);
            }
        }
        buf.extend_from_slice(b" version='1.0' xml:lang='en'/>");
        let mut frame = Vec::with_capacity(buf.len() + 4);
        encode::write_text_utf8(&mut frame, &buf);
        self.out.write(&frame);
    }

    /// The end of our stream: `</stream:stream>`, or `<close/>` followed by
    /// the WebSocket Close (RFC 7395 §3.6).
    pub(super) fn write_stream_end(&mut self) {
        if self.bare {
            return; // BOSH: the session's `type='terminate'`
        }
        let Some(ws) = self.websocket.as_mut() else {
            return self.out.write(STREAM_CLOSE);
        };
        if ws.close_sent {
            return;
        }
        let code = ws.close_code.take().unwrap_or(close::NORMAL);
        let mut frame = Vec::with_capacity(64);
        encode::write_text_utf8(&mut frame, CLOSE.as_bytes());
        self.out.write(&frame);
        self.write_websocket_close(code);
    }

    fn write_websocket_close(&mut self, code: u16) {
        let Some(ws) = self.websocket.as_mut() else {
            return;
        };
        if std::mem::replace(&mut ws.close_sent, true) {
            return;
        }
        let mut frame = Vec::with_capacity(4);
        encode::write_close(&mut frame, code, "");
        self.out.write(&frame);
    }

    /// Keep an idle session's transport alive: a space between elements
    /// on TCP, a Ping on a WebSocket (which answers with a Pong, so a dead
    /// peer shows as a write that never completes, as on TCP).
    pub(super) fn write_keepalive(&mut self) {
        if self.bare {
            return; // BOSH: the client's requests keep the session
        }
        if self.websocket.is_none() {
            return self.out.write(b" ");
        }
        let mut frame = Vec::with_capacity(2);
        encode::write_ping(&mut frame, &[]);
        self.out.write(&frame);
    }

    /// Whether STARTTLS may be offered: never inside a WebSocket or BOSH,
    /// whose encryption is the HTTPS connection's.
    pub(super) fn starttls_available(&self) -> bool {
        self.cfg.starttls_available && self.websocket.is_none() && !self.bare
    }
}

fn frame_limits(parser: &Limits) -> FrameLimits {
    FrameLimits {
        max_message_bytes: parser.max_stanza_bytes,
        max_frame_bytes: parser.max_stanza_bytes,
    }
}

/// What a text message is. Only a message whose root is named `open` or
/// `close` is parsed here (a few hundred bytes at most); every other one
/// goes to the stream's parser as it is.
fn classify(text: &str, limits: &Limits) -> Framed {
    let trimmed = text.trim_start_matches([' ', '\t', '\r', '\n']);
    let is_root = |name: &str| {
        trimmed
            .strip_prefix('<')
            .and_then(|r| r.strip_prefix(name))
            .and_then(|r| r.chars().next())
            .is_some_and(|c| matches!(c, ' ' | '\t' | '\r' | '\n' | '/' | '>'))
    };
    if is_root("stream:stream") || trimmed.starts_with("</stream:stream") {
        // A TCP stream's framing inside a WebSocket: its header would be
        // an element swallowing what follows.
        return Framed::Invalid(
            StreamErrorCondition::BadFormat,
            "a WebSocket stream opens with <open/> and ends with <close/>",
        );
    }
    if !is_root("open") && !is_root("close") {
        return Framed::Element;
    }
    let element = match Element::parse_with_limits(text.as_bytes(), limits) {
        Ok(e) => e,
        Err(_) => {
            return Framed::Invalid(
                StreamErrorCondition::BadFormat,
                "malformed <open/> or <close/>",
            )
        }
    };
    if element.ns != ns::FRAMING {
        return Framed::Invalid(
            StreamErrorCondition::InvalidNamespace,
            "<open/> and <close/> belong to urn:ietf:params:xml:ns:xmpp-framing",
        );
    }
    match element.name.as_str() {
        "close" => Framed::Close,
        _ => Framed::Open(header_for(&element)),
    }
}

/// The stream header an `<open/>` stands for: its `to`, `version` and
/// `xml:lang`, with `jabber:client` as the default namespace.
fn header_for(open: &Element) -> Vec<u8> {
    let mut header = Vec::with_capacity(256);
    header.extend_from_slice(b"<stream:stream xmlns='");
    header.extend_from_slice(ns::CLIENT.as_bytes());
    header.extend_from_slice(b"' xmlns:stream='");
    header.extend_from_slice(ns::STREAM.as_bytes());
    header.push(b'\'');
    for name in ["to", "version"] {
        if let Some(v) = open.attr(name) {
            write_attr(&mut header, name, v);
        }
    }
    if let Some(lang) = open.attr_ns(XML_NS, "lang") {
        write_attr(&mut header, "xml:lang", lang);
    }
    header.push(b'>');
    header
}
