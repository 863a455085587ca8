//! The server side of a c2s stream (RFC 6120): header, features, STARTTLS,
//! SASL, resource binding, then stanzas handed to the hub. This file holds
//! the machine's state, its inputs and the dispatch of what arrives; each
//! stage of negotiation is its own file (`negotiation`, `sasl`, `register`
//! for XEP-0077), and so is stream management (`management`).
//!
//! The machine never touches the network. The driver feeds received bytes,
//! TLS completion, storage results and time; it polls [`ConnOutput`]s.

use super::csi::{CsiQueue, Verdict};
use super::error::StreamErrorCondition;
use super::output::{ConnOutput, ElementFraming, OutputQueue};
use super::sm::{self, SmConfig, SmState};
use crate::entropy::Entropy;
use crate::jid::Jid;
use crate::ns;
use crate::sasl::{ChannelBinding, Mechanism, SaslFailure, ScramServer};
use crate::stanza::{error_reply, Kind, StanzaError};
use crate::storage::{RequestId, StorageResult};
use crate::time::Millis;
use crate::xml::{Element, Limits, StreamEvent, StreamParser};
use std::sync::Arc;

mod auth;
mod framing;
mod management;
mod negotiation;
mod register;
mod sasl;
pub use auth::{PasswordCheck, PasswordVerdict};
pub use register::RegistrationConfig;

/// Settings for c2s streams on one listener.
#[derive(Debug, Clone)]
pub struct ServerStreamConfig {
    /// Domains this server hosts; a header `to` outside them is `host-unknown`.
    pub domains: Vec<String>,
    /// Refuse authentication until the stream is encrypted.
    pub require_encryption: bool,
    /// Offer STARTTLS (the listener has a certificate).
    pub starttls_available: bool,
    /// Mechanisms the server allows, strongest first.
    pub mechanisms: Vec<Mechanism>,
    /// Drop connections that have not authenticated after this many ms.
    pub auth_timeout_ms: Millis,
    /// Drop authenticated connections that have not bound a resource (or
    /// resumed a session) this many ms after authenticating: until then
    /// they hold a connection slot without being a session.
    pub bind_timeout_ms: Millis,
    /// Close the stream after this many failed authentication attempts.
    pub max_auth_failures: u32,
    /// Parser limits (stanza size, depth, counts) once authenticated.
    pub limits: Limits,
    /// Stanza size limit before authentication: negotiation needs a few
    /// hundred bytes, so an anonymous connection gets a small budget
    /// ([`Limits::unauthenticated`]).
    pub unauthenticated_stanza_bytes: usize,
    /// Send a whitespace keepalive after this long without output on a bound
    /// session (RFC 6120 §4.6.1), which also surfaces dead TCP peers.
    pub keepalive_ms: Option<Millis>,
    /// For the driver: a write to the client that makes no progress for
    /// this long means the transport is broken (a half-open TCP connection
    /// would block it until TCP gives up, or forever while the peer's
    /// kernel answers window probes), so a resumable session hibernates
    /// and any other ends. `None` waits forever.
    pub send_timeout_ms: Option<Millis>,
    /// Most bytes of stanzas (`Element::approx_size`) waiting for the
    /// driver to hand them to this stream (its mailbox): a client that
    /// stops reading, flooded by another session, would otherwise grow the
    /// server without bound. Over it the session ends with
    /// `resource-constraint` and what waits is rerouted.
    pub max_mailbox_bytes: usize,
    /// Server-wide secret and iteration count for SCRAM decoys: an unknown
    /// user gets a stable, plausible salt, so probing cannot enumerate
    /// accounts. The embedder supplies random bytes at start.
    pub scram_decoy: Option<(Vec<u8>, u32)>,
    /// Extra stream features offered after authentication (e.g. roster
    /// versioning), contributed by modules.
    pub session_features: Vec<Element>,
    /// XEP-0198 stream management; `None` does not offer it.
    pub sm: Option<SmConfig>,
    /// XEP-0077 in-band registration and password change; `None` when the
    /// module is off.
    pub registration: Option<RegistrationConfig>,
}

impl Default for ServerStreamConfig {
    fn default() -> Self {
        ServerStreamConfig {
            domains: vec!["localhost".into()],
            require_encryption: true,
            starttls_available: true,
            mechanisms: Mechanism::SERVER_PREFERENCE.to_vec(),
            auth_timeout_ms: 30_000,
            bind_timeout_ms: 30_000,
            max_auth_failures: 3,
            limits: Limits::default(),
            unauthenticated_stanza_bytes: 16 * 1024,
            scram_decoy: None,
            keepalive_ms: Some(60_000),
            send_timeout_ms: Some(60_000),
            max_mailbox_bytes: 4 * 1024 * 1024,
            session_features: vec![
                Element::new(ns::ROSTER_VER, "ver"),
                Element::new(super::csi::NS, "csi"),
            ],
            sm: Some(SmConfig::default()),
            registration: Some(RegistrationConfig::default()),
        }
    }
}

/// Where the negotiation stands.
#[derive(Debug)]
enum Phase {
    /// Waiting for the (next) stream header.
    Header,
    /// Header answered, features sent; waiting for the client's next step.
    Ready,
    /// `<proceed/>` sent: nothing may arrive until the TLS handshake is done.
    AwaitTls,
    /// Credentials requested from storage for this exchange.
    AwaitCredentials {
        req: RequestId,
        pending: PendingAuth,
    },
    /// A PLAIN password check is with the driver; `username` is the
    /// account's bare JID.
    AwaitPassword { req: RequestId, username: String },
    /// SCRAM server-first sent; waiting for the client's `<response/>`.
    AwaitResponse(Box<ScramServer>),
    /// `<resume/>` received; waiting for the driver to find the session.
    AwaitResume { h: Option<u32> },
    /// The session was found, but part of what it handled is not durable
    /// yet: `<resumed h=.../>` waits for the fence (XEP-0198 `h` is a
    /// promise), and stanzas for the client are only queued meanwhile.
    AwaitResumeFence,
    /// The transport broke under a resumable session: stanzas for the
    /// client are queued until it resumes or `deadline` passes.
    Hibernated { deadline: Millis },
    /// An XEP-0077 account operation is with the driver; `iq` is the
    /// request's envelope, for the answer.
    AwaitAccount { req: RequestId, iq: Box<Element> },
    /// Stream closed (by either side or by an error).
    Closed,
}

#[derive(Debug)]
enum PendingAuth {
    Scram(Box<ScramServer>, String),
    Plain { username: String, password: String },
}

/// The server end of one c2s connection.
#[derive(Debug)]
pub struct ServerStream {
    cfg: Arc<ServerStreamConfig>,
    parser: StreamParser,
    entropy: Entropy,
    out: OutputQueue,
    phase: Phase,
    /// TLS is up (STARTTLS done or direct TLS).
    secure: bool,
    bindings: Vec<ChannelBinding>,
    /// The hosted domain this stream is for, from the first header.
    domain: Option<String>,
    /// The authenticated account (bare JID).
    account: Option<Jid>,
    /// The bound full JID.
    jid: Option<Jid>,
    auth_deadline: Option<Millis>,
    /// XEP-0352: stanzas held while the client is inactive.
    csi: CsiQueue,
    /// XEP-0198 state once the client enabled stream management.
    sm: Option<SmState>,
    /// When the last byte was queued for the client (for keepalives).
    last_output: Millis,
    auth_failures: u32,
    /// Account name of the exchange in progress (bare JID string).
    pending_account: Option<String>,
    /// The SASL attempt in progress, for the driver's bookkeeping: its
    /// mechanism and (once known) account.
    attempt: Option<(Mechanism, Option<String>)>,
    /// The latest `now` the driver passed in.
    clock: Millis,
    next_request: RequestId,
    header_sent: bool,
    /// RFC 7395: the stream runs over a WebSocket; `None` on TCP.
    websocket: Option<Box<framing::WebSocket>>,
    /// XEP-0206: the stream runs over BOSH, which carries the stream's
    /// ends in its own attributes: no header, end tag or keepalive.
    bare: bool,
}

impl ServerStream {
    /// A new stream on a fresh connection. `direct_tls` carries the channel
    /// bindings when the connection is already TLS (XEP-0368).
    pub fn new(
        cfg: Arc<ServerStreamConfig>,
        entropy: Entropy,
        now: Millis,
        direct_tls: Option<Vec<ChannelBinding>>,
    ) -> Self {
        let auth_deadline = Some(now.saturating_add(cfg.auth_timeout_ms));
        let parser =
            StreamParser::new(cfg.limits.unauthenticated(cfg.unauthenticated_stanza_bytes));
        let secure = direct_tls.is_some();
        ServerStream {
            cfg,
            parser,
            entropy,
            out: OutputQueue::default(),
            phase: Phase::Header,
            secure,
            bindings: direct_tls.unwrap_or_default(),
            domain: None,
            account: None,
            jid: None,
            auth_deadline,
            last_output: now,
            csi: CsiQueue::default(),
            sm: None,
            auth_failures: 0,
            pending_account: None,
            attempt: None,
            clock: now,
            next_request: 1,
            header_sent: false,
            websocket: None,
            bare: false,
        }
    }

    /// A new stream on a connection just upgraded to a WebSocket with the
    /// `xmpp` subprotocol (RFC 7395). `tls` carries the channel bindings
    /// of the HTTPS connection underneath (empty when they are unknown,
    /// `None` over plain HTTP). Feed it the bytes read after the upgrade
    /// response with [`ServerStream::handle_input`], as on TCP: the
    /// machine decodes the frames, and its writes are frames. A message
    /// may be as large as a stanza may be at that point of the stream.
    pub fn new_websocket(
        cfg: Arc<ServerStreamConfig>,
        entropy: Entropy,
        now: Millis,
        tls: Option<Vec<ChannelBinding>>,
    ) -> Self {
        let mut stream = ServerStream::new(cfg, entropy, now, tls);
        stream.out = OutputQueue::framed(ElementFraming::WebSocket);
        stream.websocket = Some(framing::WebSocket::new(stream.parser.limits()));
        stream
    }

    /// A new stream behind a BOSH session (XEP-0206): fed the session's
    /// bytes (a synthesized header, the children of each request, the end
    /// tag), it writes bare elements for the session to put in its
    /// response bodies. `tls` as for [`ServerStream::new_websocket`].
    pub fn new_bosh(
        cfg: Arc<ServerStreamConfig>,
        entropy: Entropy,
        now: Millis,
        tls: Option<Vec<ChannelBinding>>,
    ) -> Self {
        let mut stream = ServerStream::new(cfg, entropy, now, tls);
        stream.out = OutputQueue::framed(ElementFraming::Bare);
        stream.bare = true;
        stream
    }

    /// Whether the stream runs over a WebSocket.
    pub fn is_websocket(&self) -> bool {
        self.websocket.is_some()
    }

    /// The bound full JID, once resource binding succeeded.
    pub fn jid(&self) -> Option<&Jid> {
        self.jid.as_ref()
    }

    /// The authenticated account (bare JID), once SASL succeeded.
    pub fn account(&self) -> Option<&Jid> {
        self.account.as_ref()
    }

    /// True once the stream is closed; the driver closes the transport after
    /// flushing the remaining output.
    pub fn is_closed(&self) -> bool {
        matches!(self.phase, Phase::Closed)
    }

    /// True while the session waits, without a transport, to be resumed.
    pub fn is_hibernated(&self) -> bool {
        matches!(self.phase, Phase::Hibernated { .. })
    }

    /// Messages sent to the client and not acknowledged yet (XEP-0198):
    /// what a hibernating session's user has not seen.
    pub fn unacked_messages(&self) -> Vec<Element> {
        self.sm
            .iter()
            .flat_map(|s| s.unacked.iter())
            .filter(|e| e.name == "message")
            .cloned()
            .collect()
    }

    /// The SM-ID, when stream management with resumption is enabled.
    pub fn sm_id(&self) -> Option<&str> {
        self.sm.as_ref().and_then(|s| s.id.as_deref())
    }

    /// True when the stream is encrypted.
    pub fn is_secure(&self) -> bool {
        self.secure
    }

    /// Next instruction for the driver.
    pub fn poll_output(&mut self) -> Option<ConnOutput> {
        self.out.pop()
    }

    /// The next deadline at which `handle_timeout` must be called.
    pub fn poll_timeout(&self) -> Option<Millis> {
        if self.is_closed() {
            return None;
        }
        if let Phase::Hibernated { deadline } = self.phase {
            return Some(deadline);
        }
        if matches!(self.phase, Phase::AwaitResumeFence) {
            return None;
        }
        let keepalive = self
            .cfg
            .keepalive_ms
            .filter(|_| self.jid.is_some())
            .map(|k| self.last_output.saturating_add(k));
        match (self.auth_deadline, keepalive) {
            (Some(a), Some(k)) => Some(a.min(k)),
            (a, k) => a.or(k),
        }
    }

    /// Time passed: enforce the authentication timeout, send keepalives.
    pub fn handle_timeout(&mut self, now: Millis) {
        if self.is_closed() {
            return;
        }
        self.clock = now;
        if let Phase::Hibernated { deadline } = self.phase {
            if now >= deadline {
                tracing::debug!(jid = ?self.jid, "resumption timed out");
                self.set_closed();
                self.out.push(ConnOutput::Close);
            }
            return;
        }
        if matches!(self.phase, Phase::AwaitResumeFence) {
            return; // nothing may be written before <resumed/>
        }
        if let Some(deadline) = self.auth_deadline {
            if now >= deadline {
                let why = if self.account.is_some() {
                    "resource binding timed out"
                } else {
                    "authentication timed out"
                };
                return self.stream_error(StreamErrorCondition::ConnectionTimeout, Some(why));
            }
        }
        if let Some(k) = self.cfg.keepalive_ms.filter(|_| self.jid.is_some()) {
            if now >= self.last_output.saturating_add(k) {
                // With stanzas unacknowledged, the keepalive asks for the
                // acknowledgement that trims the queue.
                if self.sm.as_ref().is_some_and(|s| !s.unacked.is_empty()) {
                    self.request_ack();
                } else {
                    self.write_keepalive();
                }
                self.last_output = now;
            }
        }
    }

    /// Bytes arrived from the transport (after TLS decryption).
    pub fn handle_input(&mut self, now: Millis, bytes: &[u8]) {
        if self.is_closed() {
            return;
        }
        // Replies to input count as output for the keepalive clock.
        self.last_output = now;
        self.clock = now;
        if matches!(self.phase, Phase::AwaitTls) {
            // Plaintext after <proceed/> must never reach the TLS layer or the
            // parser (the CVE-2011-0411 class).
            self.stream_error(
                StreamErrorCondition::PolicyViolation,
                Some("data received after STARTTLS proceed"),
            );
            return;
        }
        if self.websocket.is_some() {
            return self.handle_websocket_input(bytes);
        }
        self.parser.feed(bytes);
        self.process();
    }

    /// The TLS handshake finished; `bindings` are the channel-binding values
    /// the driver could compute for it (RFC 9266, RFC 5929).
    pub fn tls_established(&mut self, now: Millis, bindings: Vec<ChannelBinding>) {
        self.clock = now;
        if !matches!(self.phase, Phase::AwaitTls) {
            return;
        }
        self.secure = true;
        self.bindings = bindings;
        self.parser.clear();
        self.phase = Phase::Header;
    }

    /// A storage result for a request this machine emitted.
    pub fn handle_storage(&mut self, now: Millis, id: RequestId, result: StorageResult) {
        self.clock = now;
        let Phase::AwaitCredentials { req, .. } = &self.phase else {
            return;
        };
        if *req != id {
            return;
        }
        let Phase::AwaitCredentials { pending, .. } =
            std::mem::replace(&mut self.phase, Phase::Ready)
        else {
            return;
        };
        let creds = match result {
            StorageResult::Credentials(c) => c,
            other => {
                tracing::warn!(?other, "credential lookup failed");
                self.sasl_failure(SaslFailure::TemporaryAuthFailure);
                self.process();
                return;
            }
        };
        match pending {
            PendingAuth::Scram(mut scram, username) => {
                let nonce = self.entropy.bytes(24);
                let challenge = scram.server_first(creds.as_ref(), &nonce);
                self.phase = Phase::AwaitResponse(scram);
                self.pending_account = Some(username);
                self.send_sasl("challenge", &challenge);
            }
            PendingAuth::Plain { username, password } => {
                let known = creds.is_some();
                let credentials = creds.unwrap_or_else(|| self.decoy_credentials(&username));
                let req = self.next_request;
                self.next_request += 1;
                self.out.push(ConnOutput::CheckPassword {
                    id: req,
                    check: PasswordCheck::new(username.clone(), credentials, password, known),
                });
                self.phase = Phase::AwaitPassword { req, username };
                return;
            }
        }
        self.process();
    }

    /// Deliver a stanza from the hub to the client. `now` only feeds the
    /// keepalive clock.
    pub fn send_stanza_at(&mut self, now: Millis, stanza: &Element) {
        self.last_output = now;
        self.send_stanza(stanza);
    }

    /// Deliver a stanza from the hub to the client (queued for it while the
    /// session is hibernated).
    pub fn send_stanza(&mut self, stanza: &Element) {
        if self.jid.is_none() || self.is_closed() {
            return;
        }
        if matches!(self.phase, Phase::AwaitResumeFence) {
            // Behind the old stream's held stanzas, sent after <resumed/>.
            return self.csi.hold(stanza.clone());
        }
        match self.csi.offer(stanza) {
            Verdict::Send(s) => self.emit(s),
            Verdict::Flush(all) => {
                for s in all {
                    self.emit(s);
                }
            }
            Verdict::Held => {}
        }
        self.after_emit();
    }

    /// Close the stream: with a stream error (conflict, system-shutdown, ...)
    /// or, with `None`, by the normal closing handshake.
    pub fn close(&mut self, condition: Option<StreamErrorCondition>) {
        if self.is_closed() {
            return;
        }
        if self.is_hibernated() {
            // Kicked or shut down while waiting for a resume.
            self.set_closed();
            self.out.push(ConnOutput::Close);
            return;
        }
        match condition {
            Some(c) => self.stream_error(c, None),
            None => {
                self.ensure_header();
                self.write_stream_end();
                self.set_closed();
                self.out.push(ConnOutput::Close);
            }
        }
    }

    /// Pull parser events while the phase allows it.
    fn process(&mut self) {
        loop {
            if matches!(
                self.phase,
                Phase::Closed
                    | Phase::AwaitTls
                    | Phase::AwaitCredentials { .. }
                    | Phase::AwaitPassword { .. }
                    | Phase::AwaitResume { .. }
                    | Phase::AwaitResumeFence
                    | Phase::Hibernated { .. }
                    | Phase::AwaitAccount { .. }
            ) {
                return;
            }
            match self.parser.next_event() {
                Ok(None) => return,
                Ok(Some(ev)) => self.handle_event(ev),
                Err(e) => {
                    let cond = StreamErrorCondition::from_name(e.condition());
                    self.stream_error(cond, Some(&e.to_string()));
                    return;
                }
            }
        }
    }

    fn handle_event(&mut self, ev: StreamEvent) {
        match ev {
            StreamEvent::Open(header) => self.handle_header(&header),
            StreamEvent::Close => {
                // A clean close ends the session (XEP-0198 §7): no hibernation.
                self.ensure_header();
                self.write_stream_end();
                self.set_closed();
                self.out.push(ConnOutput::Close);
            }
            StreamEvent::Stanza(el) => self.handle_element(el),
        }
    }

    fn handle_element(&mut self, el: Element) {
        if matches!(self.phase, Phase::Header) {
            return self.stream_error(StreamErrorCondition::BadFormat, Some("expected header"));
        }
        if el.ns == ns::TLS {
            return self.handle_starttls(&el);
        }
        if el.ns == ns::SASL {
            return self.handle_sasl(el);
        }
        if self.account.is_none() {
            if self.register_before_auth(&el) {
                return;
            }
            // RFC 6120 §6.4: nothing but negotiation (and XEP-0077) before
            // authentication.
            return self.stream_error(StreamErrorCondition::NotAuthorized, None);
        }
        let csi_offered = self
            .cfg
            .session_features
            .iter()
            .any(|f| f.ns == super::csi::NS);
        if el.ns == super::csi::NS && self.jid.is_some() && csi_offered {
            let active = match el.name.as_str() {
                "active" => true,
                "inactive" => false,
                _ => return self.stream_error(StreamErrorCondition::UnsupportedStanzaType, None),
            };
            for s in self.csi.set_active(active) {
                self.emit(s);
            }
            self.after_emit();
            return;
        }
        if el.ns == sm::NS {
            return self.handle_sm(&el);
        }
        match Kind::of(&el) {
            Some(kind) => {
                // Every stanza counts as handled, also one answered with an
                // error: the client must not resend it after a resume.
                if let Some(sm) = self.sm.as_mut() {
                    sm.handled = sm.handled.wrapping_add(1);
                }
                self.handle_stanza(kind, el);
                self.after_emit();
            }
            None if el.ns == ns::CLIENT => {
                self.stream_error(StreamErrorCondition::UnsupportedStanzaType, None)
            }
            None if el.ns.is_empty() => {
                self.stream_error(StreamErrorCondition::InvalidNamespace, None)
            }
            None => self.stream_error(StreamErrorCondition::UnsupportedStanzaType, None),
        }
    }

    fn handle_stanza(&mut self, kind: Kind, mut el: Element) {
        if kind == Kind::Iq {
            if let Some(reply) = self.handle_negotiation_iq(&el) {
                self.emit(reply);
                return;
            }
        }
        let Some(jid) = self.jid.clone() else {
            // Authenticated but unbound: only bind and session are allowed.
            return self.stream_error(StreamErrorCondition::NotAuthorized, Some("bind first"));
        };
        el.set_attr("from", jid.to_string());
        match el.attr("to").map(Jid::parse) {
            None => {}
            Some(Ok(to)) => el.set_attr("to", to.to_string()),
            Some(Err(_)) => {
                if !crate::stanza::is_error_or_result(&el) {
                    el.remove_attr("to");
                    let domain = self.domain.clone().unwrap_or_default();
                    let reply = error_reply(&el, StanzaError::JidMalformed, &domain);
                    self.emit(reply);
                }
                return;
            }
        }
        if kind == Kind::Iq && !valid_iq(&el) {
            if !crate::stanza::is_error_or_result(&el) {
                let domain = self.domain.clone().unwrap_or_default();
                let reply = error_reply(&el, StanzaError::BadRequest, &domain);
                self.emit(reply);
            }
            return;
        }
        let Some(el) = (match kind {
            Kind::Iq => self.register_in_session(el),
            _ => Some(el),
        }) else {
            return;
        };
        self.out.push(ConnOutput::Stanza(el));
    }

    fn ensure_header(&mut self) {
        if !self.header_sent {
            let from = self.cfg.domains.first().cloned();
            self.write_open(from.as_deref(), None);
            self.header_sent = true;
        }
    }

    /// Send a stream error and close (RFC 6120 §4.9.1.1).
    fn stream_error(&mut self, cond: StreamErrorCondition, text: Option<&str>) {
        self.stream_error_with(cond, text, None);
    }

    /// A stream error with an application-specific condition element.
    fn stream_error_with(
        &mut self,
        cond: StreamErrorCondition,
        text: Option<&str>,
        app: Option<Element>,
    ) {
        if self.is_closed() {
            return;
        }
        tracing::debug!(condition = %cond, text, "stream error");
        if !self.is_hibernated() {
            let mut error = cond.to_element(text);
            if let Some(app) = app {
                error = error.with_child(app);
            }
            self.ensure_header();
            self.out.write_element(&error, ns::CLIENT);
            self.write_stream_end();
        }
        self.set_closed();
        self.out.push(ConnOutput::Close);
    }

    /// The stream is over. A session that had stream management enabled
    /// hands its unacknowledged stanzas out as undeliverable (XEP-0198 §5),
    /// so nothing it was sent is lost with the connection.
    fn set_closed(&mut self) {
        self.phase = Phase::Closed;
        let (Some(mut state), Some(account)) = (self.sm.take(), self.account.clone()) else {
            return;
        };
        let mut pending = state.unacked.drain();
        pending.extend(self.csi.take_held());
        self.push_undelivered(pending, &account);
    }
}

/// RFC 6120 §8.2.3: an iq needs an id and a known type; get/set carry exactly one child.
pub(crate) fn valid_iq(iq: &Element) -> bool {
    if iq.attr("id").is_none() {
        return false;
    }
    match iq.attr("type") {
        Some("get") | Some("set") => iq.elements().count() == 1,
        Some("result") | Some("error") => true,
        _ => false,
    }
}
