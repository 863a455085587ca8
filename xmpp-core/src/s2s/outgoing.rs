//! The initiating side of a server-to-server stream: we open it to a
//! remote domain, prove our domain with Server Dialback (XEP-0220), then
//! send stanzas from our domain to theirs.
//!
//! The stream plays two roles for us. As *Initiating Server* it sends our
//! key (`<db:result/>`, made with our secret over the peer's stream id,
//! XEP-0185) and waits for the peer's verdict: valid opens the domain pair
//! ([`OutgoingOutput::Ready`]: the driver sends what it queued), anything
//! else refuses it ([`OutgoingOutput::Refused`]: the driver bounces what
//! it queued). As *Receiving Server* for one of our incoming streams
//! (`incoming.rs`), it carries `<db:verify/>` to the peer as Authoritative
//! Server of the domain that stream claimed ([`OutgoingStream::verify`])
//! and hands back its answer ([`OutgoingOutput::VerifyAnswer`]).
//!
//! STARTTLS is used when the peer offers it, and required unless
//! `require_tls` is off (Prosody's `s2s_require_encryption`): a peer
//! without it refuses the pair with `policy-violation`. The handshake is
//! the driver's ([`OutgoingOutput::StartTls`], then
//! [`OutgoingStream::tls_established`]; verifying the peer's certificate
//! is its too), and the key goes out on the stream that follows.
//!
//! Over TLS, when our certificate proves our domain (`sasl_external`)
//! and the peer offers SASL EXTERNAL (RFC 6120 §6, XEP-0178), that is
//! used instead of dialback; a failure falls back to dialback.
//!
//! Sans-IO like the rest: bytes and time in, bytes and verdicts out.
//! XEP-0288 is later work.

use super::dialback::{
    DbBody, DbResult, DbVerify, DialbackCondition, DialbackDomain, DialbackElement, DialbackKey,
    DialbackSecret, StreamId,
};
use super::received::{receive, Received};
use crate::ns;
use crate::stream::header::{write_s2s_header, STREAM_CLOSE};
use crate::stream::output::{OutputQueue, Writes};
use crate::stream::StreamErrorCondition;
use crate::time::Millis;
use crate::xml::{Element, Limits, StreamEvent, StreamParser};
use std::collections::VecDeque;
use std::sync::Arc;

/// What the initiating side of an s2s stream asks its driver to do.
#[derive(Debug, Clone, PartialEq)]
pub enum OutgoingOutput {
    /// Bytes to write to the transport.
    Write(Vec<u8>),
    /// The peer said `<proceed/>`: run the TLS handshake as the client for
    /// the remote domain, then call [`OutgoingStream::tls_established`].
    StartTls,
    /// The peer accepted our domain: stanzas from `local` to `remote` may
    /// go ([`OutgoingStream::send_stanza`]).
    Ready,
    /// The peer did not accept our domain (`None`: it said invalid): the
    /// driver bounces what it queued for the pair.
    Refused(Option<DialbackCondition>),
    /// The peer's answer to a [`OutgoingStream::verify`] request: whether
    /// the key an incoming stream presented for `sender` (the peer's
    /// domain) to our `target` is the peer's (`None`: it could not say).
    VerifyAnswer {
        /// The domain the incoming stream claimed (the peer's).
        sender: String,
        /// Our domain it wanted to send to.
        target: String,
        /// The incoming stream's id.
        stream_id: String,
        /// The verdict.
        valid: Option<bool>,
    },
    /// XEP-0288: a stanza the peer sent back over this bidirectional
    /// stream, from its domain to ours, in `jabber:client`, for routing.
    Stanza(Element),
    /// Flush pending writes and close the transport.
    Close,
}

impl Writes for OutgoingOutput {
    fn write(bytes: Vec<u8>) -> Self {
        OutgoingOutput::Write(bytes)
    }

    fn written(&mut self) -> Option<&mut Vec<u8>> {
        match self {
            OutgoingOutput::Write(buf) => Some(buf),
            _ => None,
        }
    }
}

/// Settings of outgoing s2s streams.
#[derive(Debug, Clone)]
pub struct OutgoingConfig {
    /// The secret our dialback keys are made with (the same the incoming
    /// side answers `db:verify` with).
    pub secret: DialbackSecret,
    /// Parser limits.
    pub limits: Limits,
    /// Use STARTTLS when the peer offers it.
    pub starttls: bool,
    /// Refuse the pair (`policy-violation`) rather than use dialback over
    /// a plain stream.
    pub require_tls: bool,
    /// Our certificate proves our domain: authenticate with SASL EXTERNAL
    /// when the peer offers it.
    pub sasl_external: bool,
    /// The pair is refused (`remote-server-timeout`) when the peer has not
    /// given its verdict this long after the stream began.
    pub auth_timeout_ms: Millis,
    /// `db:verify` requests waiting for the stream to open; more are
    /// answered `None` at once.
    pub max_waiting_verifies: usize,
    /// Ask for a bidirectional stream (XEP-0288) when the peer offers one:
    /// its stanzas to us then come back over this connection.
    pub bidi: bool,
}

impl Default for OutgoingConfig {
    fn default() -> Self {
        OutgoingConfig {
            secret: DialbackSecret::new(b"change me"),
            limits: Limits::default(),
            starttls: true,
            require_tls: true,
            sasl_external: false,
            auth_timeout_ms: 60_000,
            max_waiting_verifies: 64,
            bidi: false,
        }
    }
}

#[derive(Debug)]
enum Phase {
    /// Our header is out; waiting for theirs.
    Header,
    /// Their header (with its id) is in; waiting for features.
    Features {
        id: String,
    },
    /// `<starttls/>` sent; waiting for `<proceed/>`.
    AwaitProceed,
    /// The driver runs the TLS handshake.
    AwaitTls,
    /// `<auth mechanism='EXTERNAL'>` sent; on failure, dialback for the
    /// stream `id`.
    AwaitSasl {
        id: String,
    },
    /// Our key is out; waiting for the verdict.
    Dialback,
    /// The pair is verified: stanzas flow.
    Ready,
    Closed,
}

/// A `db:verify` request, as the peer will echo it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct VerifyRequest {
    sender: DialbackDomain,
    target: DialbackDomain,
    stream_id: StreamId,
    key: DialbackKey,
}

/// The initiating end of one s2s connection, for one domain pair.
#[derive(Debug)]
pub struct OutgoingStream {
    cfg: Arc<OutgoingConfig>,
    local: DialbackDomain,
    remote: DialbackDomain,
    parser: StreamParser,
    out: OutputQueue<OutgoingOutput>,
    phase: Phase,
    /// `db:verify` requests to send once the stream is open.
    waiting: VecDeque<VerifyRequest>,
    /// Until the peer's verdict.
    auth_deadline: Option<Millis>,
    /// TLS is established on the transport.
    secure: bool,
    /// SASL EXTERNAL succeeded: the restarted stream is ready at once.
    authenticated: bool,
    /// We asked for a bidirectional stream (XEP-0288).
    bidi: bool,
}

impl OutgoingStream {
    /// A stream from `local` to `remote` on a fresh connection: our header
    /// goes out at once.
    pub fn new(
        cfg: Arc<OutgoingConfig>,
        local: DialbackDomain,
        remote: DialbackDomain,
        now: Millis,
    ) -> Self {
        let parser = StreamParser::new(cfg.limits);
        let auth_deadline = Some(now.saturating_add(cfg.auth_timeout_ms));
        let mut s = OutgoingStream {
            cfg,
            local,
            remote,
            parser,
            out: OutputQueue::default(),
            phase: Phase::Header,
            waiting: VecDeque::new(),
            auth_deadline,
            secure: false,
            authenticated: false,
            bidi: false,
        };
        s.open();
        s
    }

    /// [`new`](Self::new) on a connection that began with TLS (XEP-0368
    /// direct TLS): no STARTTLS is looked for.
    pub fn new_direct_tls(
        cfg: Arc<OutgoingConfig>,
        local: DialbackDomain,
        remote: DialbackDomain,
        now: Millis,
    ) -> Self {
        let mut s = OutgoingStream::new(cfg, local, remote, now);
        s.secure = true;
        s
    }

    /// Write our stream header.
    fn open(&mut self) {
        let mut buf = Vec::with_capacity(320);
        write_s2s_header(
            &mut buf,
            Some(self.local.as_str()),
            Some(self.remote.as_str()),
            None,
        );
        self.out.write(&buf);
    }

    /// Whether the stream runs over TLS.
    pub fn is_secure(&self) -> bool {
        self.secure
    }

    /// The TLS handshake the machine asked for finished: a new stream
    /// begins over it.
    pub fn tls_established(&mut self) {
        if !matches!(self.phase, Phase::AwaitTls) {
            return;
        }
        self.secure = true;
        self.parser.clear();
        self.phase = Phase::Header;
        self.open();
    }

    /// Whether stanzas may be sent.
    pub fn is_ready(&self) -> bool {
        matches!(self.phase, Phase::Ready)
    }

    /// True once the stream is closed.
    pub fn is_closed(&self) -> bool {
        matches!(self.phase, Phase::Closed)
    }

    /// Next instruction for the driver.
    pub fn poll_output(&mut self) -> Option<OutgoingOutput> {
        self.out.pop()
    }

    /// The next deadline at which [`handle_timeout`](Self::handle_timeout)
    /// must be called.
    pub fn poll_timeout(&self) -> Option<Millis> {
        self.auth_deadline.filter(|_| !self.is_closed())
    }

    /// Time passed: a verdict that did not come in time refuses the pair.
    pub fn handle_timeout(&mut self, now: Millis) {
        if self.is_closed() || self.auth_deadline.is_none_or(|d| now < d) {
            return;
        }
        self.auth_deadline = None;
        if !self.is_ready() {
            self.refuse(Some(DialbackCondition::RemoteServerTimeout));
            self.stream_error(
                StreamErrorCondition::ConnectionTimeout,
                Some("no dialback verdict in time"),
            );
        }
    }

    /// Bytes arrived from the transport.
    pub fn handle_input(&mut self, _now: Millis, bytes: &[u8]) {
        if self.is_closed() {
            return;
        }
        self.parser.feed(bytes);
        loop {
            if self.is_closed() {
                return;
            }
            match self.parser.next_event() {
                Ok(None) => return,
                Ok(Some(StreamEvent::Open(header))) => self.handle_header(&header),
                Ok(Some(StreamEvent::Close)) => {
                    self.refuse(Some(DialbackCondition::RemoteConnectionFailed));
                    self.close();
                }
                Ok(Some(StreamEvent::Stanza(el))) => self.handle_element(el),
                Err(e) => {
                    let cond = StreamErrorCondition::from_name(e.condition());
                    self.refuse(Some(DialbackCondition::RemoteConnectionFailed));
                    return self.stream_error(cond, Some(&e.to_string()));
                }
            }
        }
    }

    /// Send a stanza (`jabber:client`, as the hub has it) from our domain;
    /// false (nothing written) until the pair is verified.
    pub fn send_stanza(&mut self, stanza: &Element) -> bool {
        if !self.is_ready() {
            return false;
        }
        // Written with `jabber:client` as the parent's default namespace, a
        // stanza in it declares none and so is `jabber:server`, the stream's.
        self.out.write_element(stanza, ns::CLIENT);
        true
    }

    /// Ask the peer, as Authoritative Server of `sender`, whether `key` is
    /// its key for our incoming stream `stream_id` to `target`; the answer
    /// comes as [`OutgoingOutput::VerifyAnswer`].
    pub fn verify(
        &mut self,
        sender: DialbackDomain,
        target: DialbackDomain,
        stream_id: StreamId,
        key: DialbackKey,
    ) {
        let request = VerifyRequest {
            sender,
            target,
            stream_id,
            key,
        };
        match self.phase {
            Phase::Dialback | Phase::Ready => self.send_verify(&request),
            Phase::Closed => self.unanswered(&request),
            Phase::Header
            | Phase::Features { .. }
            | Phase::AwaitProceed
            | Phase::AwaitTls
            | Phase::AwaitSasl { .. } => {
                if self.waiting.len() >= self.cfg.max_waiting_verifies {
                    self.unanswered(&request);
                } else {
                    self.waiting.push_back(request);
                }
            }
        }
    }

    /// Close the stream gracefully.
    pub fn close(&mut self) {
        if self.is_closed() {
            return;
        }
        self.out.write(STREAM_CLOSE);
        self.end();
    }

    fn handle_header(&mut self, header: &Element) {
        if !matches!(self.phase, Phase::Header) {
            self.refuse(Some(DialbackCondition::RemoteConnectionFailed));
            return self.stream_error(StreamErrorCondition::BadFormat, Some("a second header"));
        }
        let Some(id) = header.attr("id").filter(|i| StreamId::parse(i).is_some()) else {
            // RFC 6120 §4.7.3: no id, no key to bind to it.
            self.refuse(Some(DialbackCondition::RemoteConnectionFailed));
            return self.stream_error(StreamErrorCondition::InvalidId, Some("no stream id"));
        };
        let id = id.to_owned();
        if header.attr("version").is_some_and(|v| v.starts_with("1.")) {
            self.phase = Phase::Features { id };
        } else {
            // A pre-1.0 peer sends no features: dialback at once.
            self.start_dialback(&id);
        }
    }

    fn handle_element(&mut self, el: Element) {
        if el.is(ns::STREAM, "error") {
            // The peer ends the stream: say why in our log, answer nothing.
            let text = el.child(ns::STREAM_ERRORS, "text").map(|t| t.text());
            tracing::warn!(
                remote = self.remote.as_str(),
                condition = %StreamErrorCondition::from_element(&el),
                text,
                "the s2s peer ended the stream with an error"
            );
            self.refuse(Some(DialbackCondition::RemoteConnectionFailed));
            return self.close();
        }
        if let Phase::Features { id } = &self.phase {
            let id = id.clone();
            if !el.is(ns::STREAM, "features") {
                self.refuse(Some(DialbackCondition::RemoteConnectionFailed));
                return self.stream_error(StreamErrorCondition::BadFormat, Some("features first"));
            }
            let offered = el.child(ns::TLS, "starttls");
            if !self.secure && self.cfg.starttls && offered.is_some() {
                self.out
                    .write(b"<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>");
                self.phase = Phase::AwaitProceed;
                return;
            }
            let tls_required = offered.is_some_and(|t| t.child(ns::TLS, "required").is_some());
            if !self.secure && (self.cfg.require_tls || tls_required) {
                tracing::info!(
                    remote = self.remote.as_str(),
                    "no TLS on this s2s stream, and one side requires it"
                );
                self.refuse(Some(DialbackCondition::PolicyViolation));
                return self.close();
            }
            if self.authenticated {
                return self.ready();
            }
            // XEP-0288 §2.2: asked for before SASL or dialback.
            if self.cfg.bidi && !self.bidi && el.child(ns::BIDI_FEATURE, "bidi").is_some() {
                self.out.write(b"<bidi xmlns='urn:xmpp:bidi'/>");
                self.bidi = true;
            }
            let external = el
                .child(ns::SASL, "mechanisms")
                .is_some_and(|m| m.elements().any(|x| x.text().trim() == "EXTERNAL"));
            if self.secure && self.cfg.sasl_external && external {
                use base64::Engine as _;
                let authzid = base64::engine::general_purpose::STANDARD.encode(self.local.as_str());
                self.out.write(
                    format!("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='EXTERNAL'>{authzid}</auth>")
                        .as_bytes(),
                );
                self.phase = Phase::AwaitSasl { id };
                return;
            }
            return self.start_dialback(&id);
        }
        if let Phase::AwaitSasl { id } = &self.phase {
            let id = id.clone();
            if el.is(ns::SASL, "success") {
                // RFC 6120 §6.4.6: a new stream, ready once it is open.
                self.authenticated = true;
                self.parser.restart();
                self.phase = Phase::Header;
                self.open();
            } else {
                tracing::info!(
                    remote = self.remote.as_str(),
                    "SASL EXTERNAL refused; dialback instead"
                );
                self.start_dialback(&id);
            }
            return;
        }
        if matches!(self.phase, Phase::AwaitProceed) {
            if el.is(ns::TLS, "proceed") {
                self.out.push(OutgoingOutput::StartTls);
                self.phase = Phase::AwaitTls;
            } else {
                tracing::info!(remote = self.remote.as_str(), "peer refused STARTTLS");
                self.refuse(Some(DialbackCondition::RemoteConnectionFailed));
                self.close();
            }
            return;
        }
        if el.ns == ns::SERVER && self.bidi && self.is_ready() {
            return self.handle_stanza(el);
        }
        if el.ns != ns::DIALBACK {
            // Nothing else travels back on a stream we opened.
            return tracing::debug!(name = %el.name, "element on an outgoing s2s stream ignored");
        }
        match DialbackElement::parse(&el) {
            Ok(DialbackElement::Result(r)) => self.handle_verdict(r),
            Ok(DialbackElement::Verify(v)) => self.handle_verify_answer(v),
            Err(e) => tracing::debug!(error = %e, "unusable dialback element ignored"),
        }
    }

    /// XEP-0288: a stanza back from the peer. Only from its domain to ours
    /// (the pair this stream proved, inverted): we connected to it by its
    /// domain's DNS records, the same trust dialback gives.
    fn handle_stanza(&mut self, el: Element) {
        let (local, remote) = (self.local.as_str(), self.remote.as_str());
        match receive(el, |from, to| from == remote && to == local) {
            Received::Route(el) | Received::Answer(el) => self.out.push(OutgoingOutput::Stanza(el)),
            Received::Drop => {}
            Received::Fail(condition, why) => self.stream_error(condition, Some(why)),
        }
    }

    /// Whether the stream is bidirectional (XEP-0288).
    pub fn is_bidi(&self) -> bool {
        self.bidi
    }

    /// Send our key for the peer's stream `id`, and the waiting requests.
    fn start_dialback(&mut self, id: &str) {
        let key = self
            .cfg
            .secret
            .key(self.remote.as_str(), self.local.as_str(), id);
        self.send_dialback(&DialbackElement::Result(DbResult {
            from: self.local.clone(),
            to: self.remote.clone(),
            body: DbBody::Key(key),
        }));
        self.phase = Phase::Dialback;
        while let Some(request) = self.waiting.pop_front() {
            self.send_verify(&request);
        }
    }

    fn handle_verdict(&mut self, r: DbResult) {
        if !matches!(self.phase, Phase::Dialback) || r.from != self.remote || r.to != self.local {
            return tracing::debug!(?r, "a dialback verdict for nothing we asked");
        }
        match r.body {
            DbBody::Valid => self.ready(),
            DbBody::Invalid => {
                tracing::warn!(
                    remote = self.remote.as_str(),
                    "peer refused our dialback key"
                );
                self.refuse(None);
                self.close();
            }
            DbBody::Error(e) => {
                tracing::info!(
                    remote = self.remote.as_str(),
                    condition = e.condition.name(),
                    "dialback error"
                );
                self.refuse(Some(e.condition));
                self.close();
            }
            // A key sent to us on our own stream means nothing.
            DbBody::Key(_) => {}
        }
    }

    /// The pair is verified: stanzas (and waiting `db:verify`) may go.
    fn ready(&mut self) {
        tracing::info!(
            local = self.local.as_str(),
            remote = self.remote.as_str(),
            "s2s stream ready"
        );
        self.phase = Phase::Ready;
        self.auth_deadline = None;
        self.out.push(OutgoingOutput::Ready);
        while let Some(request) = self.waiting.pop_front() {
            self.send_verify(&request);
        }
    }

    fn handle_verify_answer(&mut self, v: DbVerify) {
        let valid = match v.body {
            DbBody::Valid => Some(true),
            DbBody::Invalid => Some(false),
            DbBody::Error(_) => None,
            DbBody::Key(_) => return,
        };
        // The answer swaps from and to: from the peer (the sender), to us.
        self.out.push(OutgoingOutput::VerifyAnswer {
            sender: v.from.as_str().to_owned(),
            target: v.to.as_str().to_owned(),
            stream_id: v.id.as_str().to_owned(),
            valid,
        });
    }

    fn send_verify(&mut self, r: &VerifyRequest) {
        self.send_dialback(&DialbackElement::Verify(DbVerify {
            from: r.target.clone(),
            to: r.sender.clone(),
            id: r.stream_id.clone(),
            body: DbBody::Key(r.key.clone()),
        }));
    }

    fn unanswered(&mut self, r: &VerifyRequest) {
        self.out.push(OutgoingOutput::VerifyAnswer {
            sender: r.sender.as_str().to_owned(),
            target: r.target.as_str().to_owned(),
            stream_id: r.stream_id.as_str().to_owned(),
            valid: None,
        });
    }

    /// The pair is refused, unless it was verified already.
    fn refuse(&mut self, why: Option<DialbackCondition>) {
        if !self.is_ready() && !self.is_closed() {
            self.out.push(OutgoingOutput::Refused(why));
        }
    }

    fn send_dialback(&mut self, db: &DialbackElement) {
        let mut buf = Vec::with_capacity(256);
        db.write_to(&mut buf);
        self.out.write(&buf);
    }

    fn stream_error(&mut self, cond: StreamErrorCondition, text: Option<&str>) {
        if self.is_closed() {
            return;
        }
        tracing::info!(remote = self.remote.as_str(), condition = %cond, text, "s2s stream error");
        self.out.write_element(&cond.to_element(text), ns::SERVER);
        self.out.write(STREAM_CLOSE);
        self.end();
    }

    /// The stream is over: requests still waiting get no answer.
    fn end(&mut self) {
        let waiting: Vec<VerifyRequest> = self.waiting.drain(..).collect();
        for r in &waiting {
            self.unanswered(r);
        }
        self.out.push(OutgoingOutput::Close);
        self.phase = Phase::Closed;
        self.auth_deadline = None;
    }
}

#[cfg(test)]
#[path = "outgoing_tests.rs"]
mod tests;
