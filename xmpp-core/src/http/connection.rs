//! One HTTP/1.1 server connection as a Sans-IO machine: bytes and time in,
//! requests and bytes to write out, the driver answering each request with
//! [`HttpConnection::respond`] (or taking the connection over with
//! [`HttpConnection::upgrade`], for WebSocket).
//!
//! The request head is parsed by `httparse`; the framing around it is
//! ours, so that every cost is counted here: head bytes and header fields
//! (431), body bytes (`Content-Length` only; chunked request bodies get
//! 411, which no XMPP client sends), the time a head may take to arrive
//! (slow-loris clients get 408), keep-alive idleness, and bytes pipelined
//! behind a request waiting for its answer (one request at a time).

use super::message::{Request, Response};
use super::path::parse_target;
use crate::stream::output::{OutputQueue, Writes};
use crate::time::Millis;

/// What an HTTP connection may cost.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HttpLimits {
    /// Bytes of a request head (request line and header fields).
    pub max_head_bytes: usize,
    /// Header fields per request.
    pub max_headers: usize,
    /// Bytes of a request body.
    pub max_body_bytes: usize,
    /// From the first byte of a request to its last.
    pub request_timeout_ms: Millis,
    /// Between requests on a kept-alive connection.
    pub idle_timeout_ms: Millis,
    /// `PUT` bodies under this first path segment (`upload`) are not
    /// buffered but handed to the driver as they arrive
    /// ([`HttpOutput::BodyChunk`]), up to [`Self::max_streamed_bytes`]: a
    /// file goes to disk, never whole into memory.
    pub streamed_prefix: Option<&'static str>,
    /// Bytes of one streamed body.
    pub max_streamed_bytes: usize,
}

impl Default for HttpLimits {
    fn default() -> Self {
        HttpLimits {
            max_head_bytes: 8 * 1024,
            max_headers: 64,
            max_body_bytes: 1024 * 1024,
            request_timeout_ms: 10_000,
            idle_timeout_ms: 60_000,
            streamed_prefix: None,
            max_streamed_bytes: 0,
        }
    }
}

/// What the connection asks its driver to do.
#[derive(Debug, Clone, PartialEq)]
pub enum HttpOutput {
    /// Bytes to write.
    Write(Vec<u8>),
    /// A complete request: answer it with [`HttpConnection::respond`]. A
    /// streamed one ([`Request::streamed`] bytes) has no body yet: the
    /// chunks follow, and it may be answered before they all came (a
    /// refusal closes the connection).
    Request(Box<Request>),
    /// The next bytes of a streamed body.
    BodyChunk(Vec<u8>),
    /// The streamed body is complete: answer the request now.
    BodyEnd,
    /// Flush and close the transport.
    Close,
}

impl Writes for HttpOutput {
    fn write(bytes: Vec<u8>) -> Self {
        HttpOutput::Write(bytes)
    }

    fn written(&mut self) -> Option<&mut Vec<u8>> {
        match self {
            HttpOutput::Write(buf) => Some(buf),
            _ => None,
        }
    }
}

#[derive(Debug)]
enum Phase {
    /// Reading a head (and maybe a body), since `started` (the first byte,
    /// or the previous response for `idle`).
    Reading,
    /// A request was handed out; its answer is awaited.
    Answering { close: bool, head: bool },
    /// A streamed body is arriving: `left` bytes still to come; the last
    /// chunk came at `progress`.
    Streaming {
        left: usize,
        close: bool,
        progress: Millis,
    },
    /// A response head went out whose body the driver writes itself.
    SendingBody { close: bool },
    /// Upgraded or closed: no more HTTP.
    Done,
}

/// One server connection.
#[derive(Debug)]
pub struct HttpConnection {
    limits: HttpLimits,
    /// Over TLS (HSTS is sent).
    secure: bool,
    buf: Vec<u8>,
    phase: Phase,
    out: OutputQueue<HttpOutput>,
    /// When the current request's first byte came (None: idle).
    request_started: Option<Millis>,
    /// When the connection went idle (after a response, or at accept).
    idle_since: Millis,
    /// The server is stopping: the request in progress is the last.
    draining: bool,
    /// Requests answered on this connection.
    answered: u64,
    /// While draining, when a fresh connection that sent nothing closes.
    drain_deadline: Option<Millis>,
}

impl HttpConnection {
    /// A connection accepted at `now`.
    pub fn new(limits: HttpLimits, secure: bool, now: Millis) -> Self {
        HttpConnection {
            limits,
            secure,
            buf: Vec::new(),
            phase: Phase::Reading,
            out: OutputQueue::default(),
            request_started: None,
            idle_since: now,
            draining: false,
            answered: 0,
            drain_deadline: None,
        }
    }

    /// When an idle connection closes.
    fn idle_deadline(&self) -> Millis {
        let idle = self.idle_since.saturating_add(self.limits.idle_timeout_ms);
        self.drain_deadline.map_or(idle, |d| d.min(idle))
    }

    /// How long a connection accepted while the server stops has to send
    /// its request (a health probe, most likely).
    pub const DRAIN_GRACE_MS: Millis = 2_000;

    /// The server is stopping: a kept-alive idle connection closes now;
    /// one with a request in progress closes after answering it; a fresh
    /// one gets [`DRAIN_GRACE_MS`](Self::DRAIN_GRACE_MS) to send one
    /// (load balancers probe `/health` on new connections).
    pub fn drain(&mut self, now: Millis) {
        if self.is_done() || self.draining {
            return;
        }
        self.draining = true;
        if !matches!(self.phase, Phase::Reading) || !self.buf.is_empty() {
            return;
        }
        if self.answered > 0 {
            return self.finish();
        }
        self.drain_deadline = Some(now.saturating_add(Self::DRAIN_GRACE_MS));
    }

    /// Next instruction for the driver.
    pub fn poll_output(&mut self) -> Option<HttpOutput> {
        self.out.pop()
    }

    /// Whether the connection is over (closed or upgraded).
    pub fn is_done(&self) -> bool {
        matches!(self.phase, Phase::Done)
    }

    /// When [`handle_timeout`](Self::handle_timeout) must be called.
    pub fn poll_timeout(&self) -> Option<Millis> {
        match self.phase {
            Phase::Reading => Some(match self.request_started {
                Some(t) => t.saturating_add(self.limits.request_timeout_ms),
                None => self.idle_deadline(),
            }),
            // A body that stops coming gets 408 like a head that does.
            Phase::Streaming { progress, .. } => {
                Some(progress.saturating_add(self.limits.request_timeout_ms))
            }
            // The driver is answering: its own business how long.
            Phase::Answering { .. } | Phase::SendingBody { .. } | Phase::Done => None,
        }
    }

    /// Time passed: a request that did not arrive in time gets 408; an idle
    /// connection is closed.
    pub fn handle_timeout(&mut self, now: Millis) {
        if let Phase::Streaming { progress, .. } = self.phase {
            if now >= progress.saturating_add(self.limits.request_timeout_ms) {
                self.fail(408, "request body timeout");
            }
            return;
        }
        if !matches!(self.phase, Phase::Reading) {
            return;
        }
        match self.request_started {
            Some(t) if now >= t.saturating_add(self.limits.request_timeout_ms) => {
                self.fail(408, "request timeout");
            }
            None if now >= self.idle_deadline() => {
                self.finish();
            }
            _ => {}
        }
    }

    /// Bytes arrived.
    pub fn handle_input(&mut self, now: Millis, bytes: &[u8]) {
        if self.is_done() || bytes.is_empty() {
            return;
        }
        if let Phase::Streaming { .. } = self.phase {
            return self.stream(now, bytes);
        }
        if self.request_started.is_none() {
            self.request_started = Some(now);
        }
        // Pipelined bytes behind a request being answered wait, bounded
        // like a head: a client cannot queue more than one request ahead.
        let room = self.limits.max_head_bytes + self.limits.max_body_bytes;
        if self.buf.len() + bytes.len() > room {
            return self.fail(413, "request too large");
        }
        self.buf.extend_from_slice(bytes);
        self.parse();
    }

    /// Answer the request handed out. Then the next one (already buffered,
    /// perhaps) is read, unless the connection closes.
    pub fn respond(&mut self, now: Millis, response: &Response) {
        let (close, head) = match self.phase {
            Phase::Answering { close, head } => (close || self.draining, head),
            // Answered before its body came (a refusal): the rest of the
            // body is never read, so the connection cannot go on.
            Phase::Streaming { .. } => (true, false),
            _ => return,
        };
        self.answered += 1;
        self.out.write(&response.to_bytes(self.secure, close, head));
        if close {
            return self.finish();
        }
        self.next_request(now);
    }

    /// Answer with `response`'s head and a body of `length` bytes that
    /// the driver writes itself, right after the head (a file, never
    /// whole in memory); then it calls [`HttpConnection::body_sent`].
    pub fn respond_streamed(&mut self, response: &Response, length: u64) {
        let Phase::Answering { close, head } = self.phase else {
            return;
        };
        let close = close || self.draining;
        self.answered += 1;
        self.out
            .write(&response.head_bytes(self.secure, close, Some(length)));
        // A HEAD request gets the head only: nothing for the driver to
        // write, but it calls `body_sent` all the same.
        let _ = head;
        self.phase = Phase::SendingBody { close };
    }

    /// The driver wrote the body of [`HttpConnection::respond_streamed`]:
    /// the next request is read, unless the connection closes.
    pub fn body_sent(&mut self, now: Millis) {
        let Phase::SendingBody { close } = self.phase else {
            return;
        };
        if close {
            return self.finish();
        }
        self.next_request(now);
    }

    /// Back to reading: the next request, perhaps already buffered.
    fn next_request(&mut self, now: Millis) {
        self.phase = Phase::Reading;
        self.request_started = None;
        self.idle_since = now;
        if !self.buf.is_empty() {
            self.request_started = Some(now);
            self.parse();
        }
    }

    /// Answer the request handed out with a `101 Switching Protocols`
    /// response and hand the connection over: the bytes the client sent
    /// after the request come back (the first frames, perhaps).
    pub fn upgrade(&mut self, response: &Response) -> Vec<u8> {
        if !matches!(self.phase, Phase::Answering { .. }) {
            return Vec::new();
        }
        self.out
            .write(&response.to_bytes(self.secure, false, false));
        self.phase = Phase::Done;
        std::mem::take(&mut self.buf)
    }

    fn parse(&mut self) {
        if !matches!(self.phase, Phase::Reading) {
            return;
        }
        let mut fields = vec![httparse::EMPTY_HEADER; self.limits.max_headers];
        let mut req = httparse::Request::new(&mut fields);
        let head_len = match req.parse(&self.buf) {
            Ok(httparse::Status::Complete(n)) => n,
            Ok(httparse::Status::Partial) => {
                if self.buf.len() > self.limits.max_head_bytes {
                    return self.fail(431, "request head too large");
                }
                return;
            }
            Err(httparse::Error::TooManyHeaders) => {
                return self.fail(431, "too many header fields")
            }
            Err(_) => return self.fail(400, "malformed request"),
        };
        if head_len > self.limits.max_head_bytes {
            return self.fail(431, "request head too large");
        }
        let (Some(method), Some(raw_target), Some(minor)) = (req.method, req.path, req.version)
        else {
            return self.fail(400, "malformed request");
        };
        let mut headers = Vec::with_capacity(req.headers.len());
        for h in req.headers.iter() {
            let Ok(value) = std::str::from_utf8(h.value) else {
                return self.fail(400, "header field not UTF-8");
            };
            headers.push((h.name.to_ascii_lowercase(), value.trim().to_owned()));
        }
        let method = method.to_owned();
        let target = match parse_target(raw_target) {
            Ok(t) => t,
            Err(e) => return self.fail(400, &e.to_string()),
        };
        if minor > 1 {
            return self.fail(505, "HTTP/1.0 and 1.1 only");
        }
        if headers.iter().any(|(n, _)| n == "transfer-encoding") {
            return self.fail(411, "send a Content-Length");
        }
        let mut lengths = headers.iter().filter(|(n, _)| n == "content-length");
        let length = match (lengths.next(), lengths.next()) {
            (None, _) => 0,
            (Some((_, v)), None) => match v.parse::<usize>() {
                Ok(n) => n,
                Err(_) => return self.fail(400, "bad Content-Length"),
            },
            // Two lengths: a smuggling attempt or a broken proxy.
            (Some(_), Some(_)) => return self.fail(400, "more than one Content-Length"),
        };
        let streamed = method == "PUT"
            && self
                .limits
                .streamed_prefix
                .is_some_and(|p| target.segments.first().is_some_and(|s| s == p));
        if streamed {
            if length > self.limits.max_streamed_bytes {
                return self.fail(413, "request body too large");
            }
            self.buf.drain(..head_len);
            let request = Request {
                method,
                target,
                minor_version: minor,
                headers,
                body: Vec::new(),
                streamed: length,
            };
            self.phase = Phase::Streaming {
                left: length,
                close: request.wants_close(),
                progress: self.request_started.unwrap_or_default(),
            };
            self.out.push(HttpOutput::Request(Box::new(request)));
            // Body bytes that came with the head.
            let early = std::mem::take(&mut self.buf);
            let now = self.request_started.unwrap_or_default();
            return self.stream(now, &early);
        }
        if length > self.limits.max_body_bytes {
            return self.fail(413, "request body too large");
        }
        if self.buf.len() < head_len + length {
            return; // the rest of the body is on its way
        }
        let body = self.buf[head_len..head_len + length].to_vec();
        self.buf.drain(..head_len + length);
        let request = Request {
            method,
            target,
            minor_version: minor,
            headers,
            body,
            streamed: 0,
        };
        self.phase = Phase::Answering {
            close: request.wants_close(),
            head: request.method == "HEAD",
        };
        self.out.push(HttpOutput::Request(Box::new(request)));
    }

    /// Bytes of a streamed body: up to what is left goes out as a chunk;
    /// what follows it is the next request, kept.
    fn stream(&mut self, now: Millis, bytes: &[u8]) {
        let Phase::Streaming { left, close, .. } = self.phase else {
            return;
        };
        let take = left.min(bytes.len());
        if take > 0 {
            self.out.push(HttpOutput::BodyChunk(bytes[..take].to_vec()));
        }
        let left = left - take;
        let rest = &bytes[take..];
        if !rest.is_empty() {
            let room = self.limits.max_head_bytes + self.limits.max_body_bytes;
            if self.buf.len() + rest.len() > room {
                return self.fail(413, "request too large");
            }
            self.buf.extend_from_slice(rest);
        }
        if left == 0 {
            self.out.push(HttpOutput::BodyEnd);
            self.phase = Phase::Answering { close, head: false };
        } else {
            self.phase = Phase::Streaming {
                left,
                close,
                progress: now,
            };
        }
    }

    /// Refuse with `status` and close.
    fn fail(&mut self, status: u16, why: &str) {
        tracing::debug!(status, why, "http request refused");
        self.out
            .write(&Response::text(status, why).to_bytes(self.secure, true, false));
        self.finish();
    }

    fn finish(&mut self) {
        self.phase = Phase::Done;
        self.buf = Vec::new();
        self.out.push(HttpOutput::Close);
    }
}

#[cfg(test)]
#[path = "connection_tests.rs"]
mod tests;
