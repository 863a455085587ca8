//! One BOSH session (XEP-0124, XEP-0206): the request window, held
//! requests, responses, pauses and inactivity — a pure machine between
//! HTTP requests on one side and the c2s stream's bytes on the other.
//!
//! The c2s session itself is the same [`ServerStream`](crate::stream::
//! ServerStream) as on TCP, in its bare framing: this machine hands it
//! bytes ([`BoshOutput::Deliver`]: a synthesized stream header at creation
//! and restart, the children of each request in `rid` order, the end tag
//! at terminate) and takes what it writes ([`BoshSession::push`]), which
//! goes out in the body of the oldest held request.
//!
//! Requests are processed strictly in `rid` order: one that arrives ahead
//! of a gap waits (at most `requests` of them), a repeated `rid` gets the
//! response it got before (the last `requests` responses are kept) or,
//! not answered yet, the one the first copy will get, and
//! anything outside the window ends the session with `item-not-found`
//! (§14.3). So every stanza reaches the stream exactly once and in order,
//! whatever the network does to the requests (`props_tests`).

use super::body::{self, BodyAttrs, XBOSH};
use super::BoshError;
use crate::ns;
use crate::time::Millis;
use crate::xml::Element;
use std::collections::{BTreeMap, VecDeque};

/// The driver's handle for one HTTP request awaiting its response.
pub type ReqId = u64;

/// What the server grants sessions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BoshConfig {
    /// Longest a request is held, in seconds (a client asking more gets
    /// this).
    pub max_wait_s: u64,
    /// Most requests held at once (`hold`); the client may have one more
    /// in flight (`requests`).
    pub max_hold: u32,
    /// Seconds without any request held before the session ends
    /// (`inactivity`); a broken-off session ends like a dropped TCP
    /// connection, so a resumable one hibernates.
    pub inactivity_s: u64,
    /// Longest pause a client may ask for (`maxpause`, §10).
    pub max_pause_s: u64,
    /// Shortest polling interval advertised (`polling`).
    pub polling_s: u64,
    /// Bytes the stream may have waiting for a request to carry them: over
    /// it [`BoshSession::has_room`] is false and the driver stops taking
    /// the stream's output, as a full socket buffer does on TCP.
    pub max_pending_bytes: usize,
}

impl Default for BoshConfig {
    /// Prosody's defaults.
    fn default() -> Self {
        BoshConfig {
            max_wait_s: 120,
            max_hold: 1,
            inactivity_s: 60,
            max_pause_s: 300,
            polling_s: 5,
            max_pending_bytes: 1 << 20,
        }
    }
}

/// What the machine asks its driver to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BoshOutput {
    /// Answer the request `req` (HTTP 200, `text/xml`) with `body`.
    Respond { req: ReqId, body: Vec<u8> },
    /// Bytes for the c2s stream's parser, in order.
    Deliver(Vec<u8>),
    /// The session is over. `clean`: the stream ended (the client
    /// terminated, or the server closed the stream); otherwise the client
    /// went away or broke the protocol, and the driver treats it as a
    /// transport that broke.
    End { clean: bool },
}

/// A processed request awaiting its response: the request and any
/// copies of it the client sent since (all get the same answer).
#[derive(Debug)]
struct Held {
    rid: u64,
    reqs: Vec<ReqId>,
    deadline: Millis,
}

/// One session.
#[derive(Debug)]
pub struct BoshSession {
    cfg: BoshConfig,
    sid: String,
    /// The granted `wait`, in ms.
    wait_ms: Millis,
    hold: u32,
    /// The client reports acknowledgements: responses carry `ack` when
    /// they answer an earlier request than the latest (§9.1).
    acks: bool,
    /// The creation request's `to`, `xmpp:version` and `xml:lang`, for
    /// the header of each restart.
    to: Option<String>,
    version: Option<String>,
    lang: Option<String>,
    /// The `rid` expected next: every one below it has been processed.
    next_rid: u64,
    /// Requests that arrived ahead of a gap, by `rid`, with the copies of
    /// each that came since.
    early: BTreeMap<u64, (Vec<ReqId>, Element)>,
    /// Processed requests awaiting a response, oldest first.
    held: VecDeque<Held>,
    /// The last responses sent, by `rid`, for retransmission.
    sent: VecDeque<(u64, Vec<u8>)>,
    /// What the stream wrote that no response has carried yet.
    outbox: Vec<u8>,
    /// The first response carries the session's attributes (§7.1).
    created: bool,
    /// The stream ended: the next response terminates the session.
    stream_ended: bool,
    /// The stream wrote a stream error: its close follows.
    error_written: bool,
    ended: bool,
    /// When the session ends if no request comes (set while none is
    /// held).
    inactive_deadline: Option<Millis>,
    /// The latest `now` the driver passed in.
    clock: Millis,
    out: VecDeque<BoshOutput>,
}

impl BoshSession {
    /// A session from its creation request `req` (§7.1), under `sid` (an
    /// unguessable id the driver drew). The stream header goes to the
    /// stream at once; the request is held for the stream's features.
    pub fn create(
        cfg: BoshConfig,
        sid: String,
        now: Millis,
        req: ReqId,
        request: &Element,
    ) -> Result<BoshSession, BoshError> {
        let attrs = BodyAttrs::read(request)?;
        if attrs.sid.is_some() {
            return Err(BoshError::BadRequest("a creation request carries no sid"));
        }
        let wait_s = attrs.wait.unwrap_or(cfg.max_wait_s).min(cfg.max_wait_s);
        let hold = attrs.hold.unwrap_or(1).min(cfg.max_hold);
        let mut session = BoshSession {
            wait_ms: wait_s.saturating_mul(1000),
            hold,
            acks: attrs.ack == Some(1),
            to: attrs.to.clone(),
            version: attrs.version.clone(),
            lang: attrs.lang.clone(),
            next_rid: attrs.rid + 1,
            early: BTreeMap::new(),
            held: VecDeque::new(),
            sent: VecDeque::new(),
            outbox: Vec::new(),
            created: false,
            stream_ended: false,
            error_written: false,
            ended: false,
            inactive_deadline: None,
            clock: now,
            out: VecDeque::new(),
            cfg,
            sid,
        };
        session.deliver(body::stream_header(
            attrs.to.as_deref(),
            attrs.version.as_deref(),
            attrs.lang.as_deref(),
        ));
        session.hold_request(now, attrs.rid, vec![req]);
        Ok(session)
    }

    /// The session id.
    pub fn sid(&self) -> &str {
        &self.sid
    }

    /// Requests a client may have in flight at once (`requests`).
    pub fn requests(&self) -> u32 {
        self.hold + 1
    }

    /// Whether the session is over.
    pub fn is_ended(&self) -> bool {
        self.ended
    }

    /// Whether the stream's output may be taken: its bytes waiting for a
    /// request stay under [`BoshConfig::max_pending_bytes`].
    pub fn has_room(&self) -> bool {
        self.outbox.len() < self.cfg.max_pending_bytes
    }

    /// Next instruction for the driver.
    pub fn poll_output(&mut self) -> Option<BoshOutput> {
        self.out.pop_front()
    }

    /// When [`handle_timeout`](Self::handle_timeout) is due.
    pub fn poll_timeout(&self) -> Option<Millis> {
        if self.ended {
            return None;
        }
        let held = self.held.iter().map(|h| h.deadline).min();
        match (held, self.inactive_deadline) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// A request for this session (its `sid` matched); `request` is the
    /// parsed body.
    pub fn handle_request(&mut self, now: Millis, req: ReqId, request: Element) {
        self.clock = now;
        if self.ended {
            return self.respond_raw(req, terminate("item-not-found", &[]));
        }
        let attrs = match BodyAttrs::read(&request) {
            Ok(a) => a,
            Err(e) => return self.fail(&[req], &e),
        };
        let window = u64::from(self.requests());
        if attrs.rid < self.next_rid {
            return self.repeated(req, attrs.rid);
        }
        if attrs.rid >= self.next_rid + window {
            return self.fail(&[req], &BoshError::ItemNotFound("rid outside the window"));
        }
        if attrs.rid > self.next_rid {
            if let Some((copies, _)) = self.early.get_mut(&attrs.rid) {
                // A copy: it gets the answer the first one gets.
                copies.push(req);
                return;
            }
            if self.held.len() + self.early.len() + 1 > window as usize {
                return self.fail(&[req], &BoshError::PolicyViolation("too many requests"));
            }
            self.early.insert(attrs.rid, (vec![req], request));
            return;
        }
        self.process(now, vec![req], attrs, &request);
        while let Some((reqs, request)) = self.early.remove(&self.next_rid) {
            if self.ended {
                for req in reqs {
                    self.respond_raw(req, terminate("item-not-found", &[]));
                }
                continue;
            }
            match BodyAttrs::read(&request) {
                Ok(attrs) => self.process(now, reqs, attrs, &request),
                Err(e) => self.fail(&reqs, &e),
            }
        }
    }

    /// Bytes the stream wrote; they go out at the next
    /// [`flush`](Self::flush), so a burst shares one response.
    pub fn push(&mut self, now: Millis, bytes: &[u8]) {
        self.clock = now;
        if self.ended || self.stream_ended {
            return;
        }
        // A stream error is the stream's last word: it waits for the
        // close, so both go out as one `terminate` (XEP-0206 §7). The
        // bytes are our own serialization, where `<` in text is always
        // escaped: the match is an element.
        self.error_written |= contains(bytes, b"<stream:error");
        self.outbox.extend_from_slice(bytes);
    }

    /// The stream is done writing for now: what it wrote goes out with the
    /// oldest held request.
    pub fn flush(&mut self, now: Millis) {
        self.clock = now;
        if self.ended || self.stream_ended || self.error_written || self.outbox.is_empty() {
            return;
        }
        if let Some(oldest) = self.held.pop_front() {
            self.answer(oldest);
        }
    }

    /// The stream is over (the client's terminate reached it, or the
    /// server closed it, perhaps after a stream error): the next response
    /// says `terminate`, with what the stream wrote last.
    pub fn stream_closed(&mut self, now: Millis) {
        self.clock = now;
        if self.ended || self.stream_ended {
            return;
        }
        self.stream_ended = true;
        match self.held.pop_front() {
            Some(oldest) => self.answer(oldest),
            // The client's next request collects the end, if it comes.
            None => self.inactive_deadline = Some(now.saturating_add(self.inactivity_ms())),
        }
    }

    /// Time passed: held requests past `wait` are answered (empty, or
    /// with what waits), and a session without requests for `inactivity`
    /// ends.
    pub fn handle_timeout(&mut self, now: Millis) {
        self.clock = now;
        if self.ended {
            return;
        }
        while let Some(i) = self.held.iter().position(|h| h.deadline <= now) {
            if let Some(h) = self.held.remove(i) {
                self.answer(h);
            }
        }
        if self.held.is_empty() {
            if self.inactive_deadline.is_none() {
                self.inactive_deadline = Some(now.saturating_add(self.inactivity_ms()));
            }
        } else {
            self.inactive_deadline = None;
        }
        if self.inactive_deadline.is_some_and(|d| now >= d) {
            tracing::debug!(sid = %self.sid, "BOSH session inactive");
            self.end(self.stream_ended);
        }
    }

    fn inactivity_ms(&self) -> Millis {
        self.cfg.inactivity_s.saturating_mul(1000)
    }

    /// The next request in order.
    fn process(&mut self, now: Millis, reqs: Vec<ReqId>, attrs: BodyAttrs, request: &Element) {
        self.next_rid = attrs.rid + 1;
        if self.stream_ended {
            // The end is waiting: this request carries it.
            self.hold_request(now, attrs.rid, reqs);
            return;
        }
        let children = body::stream_bytes(request);
        if attrs.terminate {
            // §13: the payload first (an unavailable presence), then the end.
            if !children.is_empty() {
                self.deliver(children);
            }
            self.deliver(crate::stream::header::STREAM_CLOSE.to_vec());
            while let Some(h) = self.held.pop_front() {
                self.respond(&h.reqs, h.rid, &[], &[]);
            }
            let payload = std::mem::take(&mut self.outbox);
            self.respond(&reqs, attrs.rid, &[("type", "terminate".into())], &payload);
            return self.end(true);
        }
        if let Some(pause) = attrs.pause {
            if pause > self.cfg.max_pause_s {
                return self.fail(
                    &reqs,
                    &BoshError::PolicyViolation("pause longer than maxpause"),
                );
            }
            // §10: every held request is answered; the session waits
            // `pause` seconds for the next.
            if !children.is_empty() {
                self.deliver(children);
            }
            while let Some(h) = self.held.pop_front() {
                self.answer(h);
            }
            let payload = std::mem::take(&mut self.outbox);
            self.respond(&reqs, attrs.rid, &[], &payload);
            self.inactive_deadline = Some(now.saturating_add(pause.saturating_mul(1000)));
            return;
        }
        if attrs.restart {
            let header = body::stream_header(
                self.to.as_deref(),
                self.version.as_deref(),
                self.lang.as_deref(),
            );
            self.deliver(header);
        } else if !children.is_empty() {
            self.deliver(children);
        }
        self.hold_request(now, attrs.rid, reqs);
    }

    /// Hold a request; answer the oldest while more than `hold` are held
    /// or while something waits to go out.
    fn hold_request(&mut self, now: Millis, rid: u64, reqs: Vec<ReqId>) {
        self.inactive_deadline = None;
        self.held.push_back(Held {
            rid,
            reqs,
            deadline: now.saturating_add(self.wait_ms),
        });
        while self.held.len() > self.hold as usize
            || (!self.held.is_empty()
                && ((!self.outbox.is_empty() && !self.error_written) || self.stream_ended))
        {
            let Some(oldest) = self.held.pop_front() else {
                break;
            };
            self.answer(oldest);
        }
    }

    /// Answer a held request with everything waiting.
    fn answer(&mut self, h: Held) {
        let payload = std::mem::take(&mut self.outbox);
        if self.stream_ended {
            let mut attrs = vec![("type", "terminate".to_owned())];
            // Our own serialization: `<` never appears escaped-out, so
            // this finds exactly a stream error element.
            if contains(&payload, b"<stream:error") {
                attrs.push(("condition", "remote-stream-error".to_owned()));
                attrs.push(("xmlns:stream", ns::STREAM.to_owned()));
            }
            self.respond(&h.reqs, h.rid, &attrs, &payload);
            while let Some(other) = self.held.pop_front() {
                self.respond(&other.reqs, other.rid, &[("type", "terminate".into())], &[]);
            }
            return self.end(true);
        }
        self.respond(&h.reqs, h.rid, &[], &payload);
        if self.held.is_empty() {
            self.inactive_deadline = Some(self.clock.saturating_add(self.inactivity_ms()));
        }
    }

    /// A `rid` already processed: the response it got, if kept (§14.3).
    fn repeated(&mut self, req: ReqId, rid: u64) {
        if let Some((_, body)) = self.sent.iter().find(|(r, _)| *r == rid) {
            let body = body.clone();
            return self.respond_raw(req, body);
        }
        if let Some(h) = self.held.iter_mut().find(|h| h.rid == rid) {
            // A copy of a held request: it gets the same answer.
            h.reqs.push(req);
            return;
        }
        self.fail(
            &[req],
            &BoshError::ItemNotFound("rid already answered and forgotten"),
        )
    }

    /// Answer `reqs` (a request and its copies) for `rid`.
    fn respond(&mut self, reqs: &[ReqId], rid: u64, extra: &[(&str, String)], payload: &[u8]) {
        let mut attrs: Vec<(&str, String)> = Vec::new();
        if !self.created {
            self.created = true;
            attrs.extend(self.creation_attrs());
        }
        if self.acks && rid + 1 != self.next_rid {
            attrs.push(("ack", (self.next_rid - 1).to_string()));
        }
        attrs.extend(extra.iter().cloned());
        let body = body::response(&attrs, payload);
        self.sent.push_back((rid, body.clone()));
        while self.sent.len() > self.requests() as usize {
            self.sent.pop_front();
        }
        for req in reqs {
            self.respond_raw(*req, body.clone());
        }
    }

    /// The session's attributes, in the first response (§7.1, XEP-0206
    /// §3).
    fn creation_attrs(&self) -> Vec<(&'static str, String)> {
        let mut attrs = vec![
            ("sid", self.sid.clone()),
            ("wait", (self.wait_ms / 1000).to_string()),
            ("hold", self.hold.to_string()),
            ("requests", self.requests().to_string()),
            ("inactivity", self.cfg.inactivity_s.to_string()),
            ("maxpause", self.cfg.max_pause_s.to_string()),
            ("polling", self.cfg.polling_s.to_string()),
            ("ver", "1.11".to_owned()),
            ("xmlns:xmpp", XBOSH.to_owned()),
            ("xmpp:version", "1.0".to_owned()),
            ("xmpp:restartlogic", "true".to_owned()),
            ("xmlns:stream", ns::STREAM.to_owned()),
        ];
        if let Some(to) = &self.to {
            attrs.push(("from", to.clone()));
        }
        attrs
    }

    fn respond_raw(&mut self, req: ReqId, body: Vec<u8>) {
        self.out.push_back(BoshOutput::Respond { req, body });
    }

    fn deliver(&mut self, bytes: Vec<u8>) {
        self.out.push_back(BoshOutput::Deliver(bytes));
    }

    /// A terminal binding error (§17.2): this request gets it, every
    /// other open one an empty terminate, and the session ends.
    fn fail(&mut self, reqs: &[ReqId], e: &BoshError) {
        tracing::debug!(sid = %self.sid, error = %e, "BOSH session terminated");
        let held = std::mem::take(&mut self.held)
            .into_iter()
            .flat_map(|h| h.reqs);
        let early = std::mem::take(&mut self.early)
            .into_values()
            .flat_map(|(r, _)| r);
        let all: Vec<ReqId> = reqs.iter().copied().chain(held).chain(early).collect();
        for req in all {
            self.respond_raw(req, terminate(e.condition(), &[]));
        }
        self.end(false);
    }

    fn end(&mut self, clean: bool) {
        if self.ended {
            return;
        }
        self.ended = true;
        let held = std::mem::take(&mut self.held)
            .into_iter()
            .flat_map(|h| h.reqs);
        let early = std::mem::take(&mut self.early)
            .into_values()
            .flat_map(|(r, _)| r);
        let open: Vec<ReqId> = held.chain(early).collect();
        for req in open {
            self.respond_raw(req, terminate("item-not-found", &[]));
        }
        if clean {
            self.outbox = Vec::new();
        }
        self.out.push_back(BoshOutput::End { clean });
    }

    /// What the stream wrote that no response carried, once the session
    /// ended without a clean end (the client went away): the driver hands
    /// its messages back like any ended session's undelivered stanzas
    /// ([`body::stanzas`] reads them).
    pub fn take_unsent(&mut self) -> Vec<u8> {
        if !self.ended {
            return Vec::new();
        }
        std::mem::take(&mut self.outbox)
    }
}

/// A terminal response with `condition`.
pub fn terminate(condition: &str, payload: &[u8]) -> Vec<u8> {
    body::response(
        &[
            ("type", "terminate".into()),
            ("condition", condition.into()),
        ],
        payload,
    )
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}
