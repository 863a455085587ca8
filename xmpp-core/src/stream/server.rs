//! The server side of a c2s stream (RFC 6120): header, features, STARTTLS,
//! SASL, resource binding, then stanzas handed to the hub.
//!
//! The machine never touches the network. The driver feeds received bytes,
//! TLS completion, storage results and time; it polls [`ConnOutput`]s.

use super::csi::{CsiQueue, Verdict};
use super::error::StreamErrorCondition;
use super::header::{check_header, write_header, STREAM_CLOSE};
use super::output::{ConnOutput, OutputQueue};
use super::sm::{self, SmConfig, SmState, SuspendedSession};
use crate::entropy::Entropy;
use crate::jid::Jid;
use crate::ns;
use crate::sasl::{
    parse_plain, ChannelBinding, Mechanism, SaslFailure, ScramServer, StoredCredentials,
};
use crate::stanza::{error_reply, iq_result, Kind, StanzaError};
use crate::storage::{RequestId, StorageRequest, StorageResult};
use crate::time::Millis;
use crate::xml::{Element, Limits, StreamEvent, StreamParser};
use base64::Engine as _;
use std::sync::Arc;

mod auth;
mod register;
pub use auth::PasswordCheck;
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
        }
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
                    self.out.write(b" ");
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
                    check: PasswordCheck::new(credentials, password, known),
                });
                self.phase = Phase::AwaitPassword { req, username };
                return;
            }
        }
        self.process();
    }

    /// Credentials for an unknown account that cost what a real check
    /// costs: the configured decoy, or a fixed secret at the minimum
    /// iteration count.
    fn decoy_credentials(&self, username: &str) -> StoredCredentials {
        match &self.cfg.scram_decoy {
            Some((secret, iterations)) => StoredCredentials::decoy(secret, *iterations, username),
            None => StoredCredentials::decoy(b"vireo", crate::sasl::MIN_ITERATIONS, username),
        }
    }

    /// The driver's answer to [`ConnOutput::CheckPassword`]:
    /// [`PasswordCheck::run`]'s result.
    pub fn handle_password_check(&mut self, now: Millis, id: RequestId, ok: bool) {
        self.clock = now;
        let Phase::AwaitPassword { req, .. } = &self.phase else {
            return;
        };
        if *req != id {
            return;
        }
        let Phase::AwaitPassword { username, .. } =
            std::mem::replace(&mut self.phase, Phase::Ready)
        else {
            return;
        };
        if ok {
            self.pending_account = Some(username);
            self.sasl_success(&[]);
        } else {
            self.sasl_failure(SaslFailure::NotAuthorized);
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

    /// The hub delivered a page of offline messages: every stanza sent
    /// before this call. [`ConnOutput::PageDelivered`] comes out once the
    /// client has the page — at once without stream management (the
    /// driver performs the writes before it in order, so the page has gone
    /// to the socket), and with it once the client acknowledges the page's
    /// last stanza (asked for now with `<r/>`, since the page rarely ends on
    /// a multiple of the request interval). Pacing pages by
    /// acknowledgements keeps a login with thousands of messages waiting
    /// within the unacknowledged-queue limits.
    pub fn mark_page(&mut self) {
        if self.is_closed() {
            return;
        }
        // Not while hibernated or before <resumed/> went out.
        let writes = self.writes_stanzas();
        match self.sm.as_mut() {
            Some(sm) if !sm.unacked.is_empty() => {
                sm.page_end = Some(sm.unacked.sent());
                if writes {
                    self.request_ack();
                }
            }
            _ => self.out.push(ConnOutput::PageDelivered),
        }
    }

    /// After an acknowledgement: the page being delivered may be complete.
    fn check_page(&mut self) {
        let Some(sm) = self.sm.as_mut() else {
            return;
        };
        if sm.page_end.is_some_and(|end| sm.unacked.acknowledged(end)) {
            sm.page_end = None;
            self.out.push(ConnOutput::PageDelivered);
        }
    }

    /// The transport broke (EOF, reset, write failure) without a closing
    /// handshake. A resumable session hibernates until `resume_timeout`
    /// and the driver keeps feeding it stanzas and time; true means that.
    /// Otherwise the session ends now (XEP-0198 §5: unacknowledged stanzas
    /// come out as [`ConnOutput::Undelivered`]).
    pub fn transport_lost(&mut self, now: Millis) -> bool {
        if self.is_closed() || self.is_hibernated() {
            return self.is_hibernated();
        }
        let timeout = self
            .sm
            .as_ref()
            .filter(|s| s.id.is_some())
            .map_or(0, |s| s.resume_ms);
        if let Some(sm) = self.sm.as_mut() {
            // Requests of the old transport need no answer on a new one.
            sm.acks.forget_requests();
        }
        if self.jid.is_some() && timeout > 0 {
            self.parser.clear();
            self.phase = Phase::Hibernated {
                deadline: now.saturating_add(timeout),
            };
            tracing::debug!(jid = ?self.jid, "session hibernated");
            return true;
        }
        self.set_closed();
        self.out.push(ConnOutput::Close);
        false
    }

    /// Hand the session over to a stream that asked to resume it: the
    /// stream state leaves this machine, which closes (telling a still
    /// connected client `<conflict/>`, XEP-0198 §5: "the old stream SHOULD
    /// be terminated"). `None` when there is nothing resumable.
    pub fn take_suspended(&mut self) -> Option<SuspendedSession> {
        if self.is_closed() {
            return None;
        }
        let account = self.account.clone()?;
        let jid = self.jid.clone()?;
        self.sm_id()?;
        let state = self.sm.take()?;
        let held = self.csi.take_held();
        if self.is_hibernated() {
            self.phase = Phase::Closed;
            self.out.push(ConnOutput::Close);
        } else {
            self.stream_error(
                StreamErrorCondition::Conflict,
                Some("session resumed on another connection"),
            );
        }
        Some(SuspendedSession {
            account,
            jid,
            state,
            held,
        })
    }

    /// The driver's answer to [`ConnOutput::Resume`]: the session it found
    /// for the SM-ID (and took from its old stream), or `None`.
    pub fn resume(&mut self, now: Millis, found: Option<SuspendedSession>) {
        self.clock = now;
        let Phase::AwaitResume { h } = self.phase else {
            // Not asked for: nothing may be lost, so it ends here.
            if let Some(s) = found {
                self.abandon(s);
            }
            return;
        };
        self.phase = Phase::Ready;
        let Some(found) = found else {
            let f = sm::failed(StanzaError::ItemNotFound, None);
            self.out.write_element(&f, ns::CLIENT);
            return self.process();
        };
        if Some(&found.account) != self.account.as_ref() {
            // The driver looks sessions up by account; this is a guard.
            self.abandon(found);
            let f = sm::failed(StanzaError::ItemNotFound, None);
            self.out.write_element(&f, ns::CLIENT);
            return self.process();
        }
        let SuspendedSession {
            jid, state, held, ..
        } = found;
        self.jid = Some(jid.clone());
        self.auth_deadline = None;
        self.sm = Some(state);
        if let Some(h) = h {
            if let Err(e) = self.sm.as_mut().map_or(Ok(0), |s| s.unacked.ack(h)) {
                self.csi.restore_held(held);
                return self.stream_error_with(
                    StreamErrorCondition::UndefinedCondition,
                    Some(&e.to_string()),
                    Some(e.to_element()),
                );
            }
        }
        self.check_page();
        let Some(state) = self.sm.as_mut() else {
            return;
        };
        state.acks.forget_requests();
        if state.acks.durable != state.handled {
            // Stanzas of the old stream are still on their way to storage.
            self.csi.restore_held(held);
            self.phase = Phase::AwaitResumeFence;
            if state.acks.in_flight.is_none() {
                let seq = state.acks.start(state.handled);
                self.out.push(ConnOutput::Fence(seq));
            }
            return;
        }
        self.finish_resume(held);
    }

    /// `<resumed/>` with the durable count, then the replay.
    fn finish_resume(&mut self, held: Vec<Element>) {
        let Some(jid) = self.jid.clone() else {
            return;
        };
        let Some(state) = self.sm.as_ref() else {
            return;
        };
        let resumed = Element::new(sm::NS, "resumed")
            .with_attr("previd", state.id.clone().unwrap_or_default())
            .with_attr("h", state.acks.durable.to_string());
        self.out.write_element(&resumed, ns::CLIENT);
        // XEP-0198 §5: retransmit what the client has not handled; it was
        // counted when first sent, so it stays in the queue uncounted.
        let replay: Vec<Element> = state.unacked.iter().cloned().collect();
        for el in &replay {
            self.out.write_element(el, ns::CLIENT);
        }
        for el in held {
            self.emit(el);
        }
        if self.sm.as_ref().is_some_and(|s| !s.unacked.is_empty()) {
            self.request_ack();
        }
        tracing::debug!(%jid, replayed = replay.len(), "session resumed");
        self.out.push(ConnOutput::Resumed(jid));
        self.process();
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
                self.out.write(STREAM_CLOSE);
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
                self.out.write(STREAM_CLOSE);
                self.set_closed();
                self.out.push(ConnOutput::Close);
            }
            StreamEvent::Stanza(el) => self.handle_element(el),
        }
    }

    fn handle_header(&mut self, header: &Element) {
        if !matches!(self.phase, Phase::Header) {
            return self.stream_error(StreamErrorCondition::BadFormat, Some("unexpected header"));
        }
        // Answer with our header first: RFC 6120 §4.9.1.2 wants one before any error.
        let to = header.attr("to").and_then(|t| Jid::domain_jid(t).ok());
        let domain = match (&self.domain, to) {
            (Some(d), Some(t)) if t.domain() == d => Some(d.clone()),
            (Some(_), _) => None,
            (None, Some(t)) if self.cfg.domains.iter().any(|d| d == t.domain()) => {
                Some(t.domain().to_owned())
            }
            (None, _) => None,
        };
        let from_attr = domain.clone().or_else(|| self.cfg.domains.first().cloned());
        let id = self.entropy.hex_id(12);
        let mut buf = Vec::with_capacity(512);
        write_header(&mut buf, ns::CLIENT, from_attr.as_deref(), None, Some(&id));
        self.out.write(&buf);
        self.header_sent = true;
        if let Err(cond) = check_header(header) {
            return self.stream_error(cond, None);
        }
        let Some(domain) = domain else {
            return self.stream_error(StreamErrorCondition::HostUnknown, None);
        };
        self.domain = Some(domain);
        self.phase = Phase::Ready;
        let features = self.features();
        self.out.write_element(&features, ns::CLIENT);
    }

    /// The features for the current negotiation step (RFC 6120 §4.3.2).
    fn features(&self) -> Element {
        let mut f = Element::new(ns::STREAM, "features");
        if self.jid.is_some() || self.account.is_some() {
            f = f.with_child(Element::new(ns::BIND, "bind")).with_child(
                Element::new(ns::SESSION, "session")
                    .with_child(Element::new(ns::SESSION, "optional")),
            );
            for extra in &self.cfg.session_features {
                f = f.with_child(extra.clone());
            }
            if self.cfg.sm.is_some() {
                f = f.with_child(Element::new(sm::NS, "sm"));
            }
            return f;
        }
        if !self.secure && self.cfg.starttls_available {
            let mut tls = Element::new(ns::TLS, "starttls");
            if self.cfg.require_encryption {
                tls = tls.with_child(Element::new(ns::TLS, "required"));
            }
            f = f.with_child(tls);
        }
        if self.secure || !self.cfg.require_encryption {
            let mut mechs = Element::new(ns::SASL, "mechanisms");
            for m in self.offered_mechanisms() {
                mechs = mechs.with_child(Element::new(ns::SASL, "mechanism").with_text(m.name()));
            }
            f = f.with_child(mechs);
            if !self.bindings.is_empty() {
                let mut cb = Element::new(ns::SASL_CB, "sasl-channel-binding");
                for b in &self.bindings {
                    cb = cb.with_child(
                        Element::new(ns::SASL_CB, "channel-binding")
                            .with_attr("type", b.kind.name()),
                    );
                }
                f = f.with_child(cb);
            }
            if self
                .cfg
                .registration
                .as_ref()
                .is_some_and(|r| r.allow_registration)
            {
                f = f.with_child(crate::modules::register::stream_feature());
            }
        }
        f
    }

    /// Mechanisms usable on this stream right now: -PLUS only with channel
    /// binding data, PLAIN only over TLS.
    fn offered_mechanisms(&self) -> Vec<Mechanism> {
        self.cfg
            .mechanisms
            .iter()
            .copied()
            .filter(|m| {
                if m.is_plus() {
                    !self.bindings.is_empty()
                } else if *m == Mechanism::Plain {
                    self.secure
                } else {
                    true
                }
            })
            .collect()
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

    fn handle_starttls(&mut self, el: &Element) {
        if el.name != "starttls" || self.secure || self.account.is_some() {
            return self.stream_error(StreamErrorCondition::PolicyViolation, None);
        }
        if !self.cfg.starttls_available {
            self.out
                .write_element(&Element::new(ns::TLS, "failure"), ns::CLIENT);
            self.out.write(STREAM_CLOSE);
            self.set_closed();
            self.out.push(ConnOutput::Close);
            return;
        }
        if self.parser.pending_bytes() > 0 {
            // Bytes pipelined behind <starttls/> would be interpreted as if
            // they had arrived over TLS (CVE-2011-0411): refuse them.
            return self.stream_error(
                StreamErrorCondition::PolicyViolation,
                Some("data pipelined after <starttls/>"),
            );
        }
        self.out
            .write_element(&Element::new(ns::TLS, "proceed"), ns::CLIENT);
        self.out.push(ConnOutput::StartTls);
        self.phase = Phase::AwaitTls;
    }

    fn handle_sasl(&mut self, el: Element) {
        if self.account.is_some() {
            return self.stream_error(
                StreamErrorCondition::PolicyViolation,
                Some("already authenticated"),
            );
        }
        match el.name.as_str() {
            "auth" => self.handle_auth(&el),
            "response" => self.handle_response(&el),
            "abort" => {
                self.phase = Phase::Ready;
                self.sasl_failure(SaslFailure::Aborted);
            }
            _ => self.stream_error(StreamErrorCondition::UnsupportedStanzaType, None),
        }
    }

    fn handle_auth(&mut self, el: &Element) {
        if !matches!(self.phase, Phase::Ready) {
            return self.sasl_failure(SaslFailure::MalformedRequest);
        }
        if !self.secure && self.cfg.require_encryption {
            return self.sasl_failure(SaslFailure::EncryptionRequired);
        }
        let Some(mech) = el.attr("mechanism").and_then(Mechanism::from_name) else {
            return self.sasl_failure(SaslFailure::InvalidMechanism);
        };
        self.attempt = Some((mech, None));
        if !self.cfg.mechanisms.contains(&mech) {
            return self.sasl_failure(SaslFailure::MechanismTooWeak);
        }
        if mech == Mechanism::Plain && !self.secure {
            return self.sasl_failure(SaslFailure::EncryptionRequired);
        }
        if !self.offered_mechanisms().contains(&mech) {
            return self.sasl_failure(SaslFailure::InvalidMechanism);
        }
        let Ok(initial) = decode_sasl_payload(&el.text()) else {
            return self.sasl_failure(SaslFailure::IncorrectEncoding);
        };
        let domain = self.domain.clone().unwrap_or_default();
        let (pending, username) = match mech {
            Mechanism::Plain => match parse_plain(&initial) {
                Ok(p) => {
                    if p.authzid.as_deref().is_some_and(|a| {
                        Jid::parse(a)
                            .map(|j| j.local() != Some(p.username.as_str()))
                            .unwrap_or(true)
                    }) {
                        return self.sasl_failure(SaslFailure::InvalidAuthzid);
                    }
                    let u = p.username.clone();
                    (
                        PendingAuth::Plain {
                            username: p.username,
                            password: p.password,
                        },
                        u,
                    )
                }
                Err(f) => return self.sasl_failure(f),
            },
            _ => {
                let plus_advertised = self.offered_mechanisms().iter().any(|m| m.is_plus());
                match ScramServer::start(mech, &initial, &self.bindings, plus_advertised) {
                    Ok((mut scram, first)) => {
                        if let Some((secret, iterations)) = &self.cfg.scram_decoy {
                            scram = scram.with_decoy(secret, *iterations);
                        }
                        let u = first.username.clone();
                        (PendingAuth::Scram(Box::new(scram), first.username), u)
                    }
                    Err(f) => return self.sasl_failure(f),
                }
            }
        };
        let account = match Jid::new(Some(&username), &domain, None) {
            Ok(j) => j,
            Err(_) => return self.sasl_failure(SaslFailure::NotAuthorized),
        };
        let pending = match pending {
            PendingAuth::Scram(s, _) => PendingAuth::Scram(s, account.bare_str()),
            PendingAuth::Plain { password, .. } => PendingAuth::Plain {
                username: account.bare_str(),
                password,
            },
        };
        self.attempt = Some((mech, Some(account.bare_str())));
        self.out.push(ConnOutput::AuthStarted {
            account: account.bare_str(),
            mechanism: mech,
        });
        let req = self.next_request;
        self.next_request += 1;
        self.out.push(ConnOutput::Storage {
            id: req,
            request: StorageRequest::LoadCredentials {
                account: account.bare_str(),
            },
        });
        self.phase = Phase::AwaitCredentials { req, pending };
    }

    fn handle_response(&mut self, el: &Element) {
        let Phase::AwaitResponse(_) = &self.phase else {
            return self.sasl_failure(SaslFailure::MalformedRequest);
        };
        let Phase::AwaitResponse(mut scram) = std::mem::replace(&mut self.phase, Phase::Ready)
        else {
            return;
        };
        let Ok(payload) = decode_sasl_payload(&el.text()) else {
            return self.sasl_failure(SaslFailure::IncorrectEncoding);
        };
        match scram.finish(&payload) {
            Ok(server_final) => self.sasl_success(&server_final),
            Err(f) => self.sasl_failure(f),
        }
    }

    fn sasl_success(&mut self, additional: &[u8]) {
        let Some(account) = self
            .pending_account
            .take()
            .and_then(|a| Jid::parse(&a).ok())
        else {
            return self.sasl_failure(SaslFailure::TemporaryAuthFailure);
        };
        let mut success = Element::new(ns::SASL, "success");
        if !additional.is_empty() {
            success =
                success.with_text(base64::engine::general_purpose::STANDARD.encode(additional));
        }
        self.out.write_element(&success, ns::CLIENT);
        if let Some((mechanism, _)) = self.attempt.take() {
            self.out.push(ConnOutput::Authenticated {
                account: account.bare_str(),
                mechanism,
            });
        }
        self.account = Some(account);
        // Authenticated but not yet a session: binding has its own deadline.
        self.auth_deadline = Some(self.clock.saturating_add(self.cfg.bind_timeout_ms));
        // Channel bindings only matter for SASL; drop them for the session.
        self.bindings = Vec::new();
        self.parser.restart_with(self.cfg.limits);
        self.phase = Phase::Header;
    }

    fn sasl_failure(&mut self, failure: SaslFailure) {
        self.pending_account = None;
        if !matches!(self.phase, Phase::Closed) {
            self.phase = Phase::Ready;
        }
        // The driver hears of the failure (its backoff, its log) before
        // the client does.
        let attempt = self.attempt.take();
        if failure != SaslFailure::Aborted {
            self.auth_failures += 1;
            let (mechanism, account) = attempt.map_or((None, None), |(m, a)| (Some(m), a));
            self.out.push(ConnOutput::AuthFailed {
                account,
                mechanism,
                failure,
            });
        }
        let el = Element::new(ns::SASL, "failure")
            .with_child(Element::new(ns::SASL, failure.condition()));
        self.out.write_element(&el, ns::CLIENT);
        if self.auth_failures >= self.cfg.max_auth_failures {
            self.stream_error(
                StreamErrorCondition::PolicyViolation,
                Some("too many failed authentication attempts"),
            );
        }
    }

    fn send_sasl(&mut self, name: &str, payload: &[u8]) {
        let el = Element::new(ns::SASL, name)
            .with_text(base64::engine::general_purpose::STANDARD.encode(payload));
        self.out.write_element(&el, ns::CLIENT);
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

    /// Bind and session iqs are part of negotiation and answered here.
    fn handle_negotiation_iq(&mut self, iq: &Element) -> Option<Element> {
        if iq.attr("type") != Some("set") {
            return None;
        }
        let child = iq.first_element()?;
        let to_server = iq
            .attr("to")
            .is_none_or(|t| Some(t) == self.domain.as_deref());
        if child.is(ns::SESSION, "session") && to_server {
            let mut r = iq_result(iq);
            r.remove_attr("to");
            return Some(r);
        }
        if !child.is(ns::BIND, "bind") {
            return None;
        }
        let mut reply_to = iq.clone();
        reply_to.remove_attr("to");
        let domain = self.domain.clone().unwrap_or_default();
        if self.jid.is_some() {
            return Some(error_reply(&reply_to, StanzaError::NotAllowed, &domain));
        }
        let account = self.account.clone()?;
        let requested = child
            .child_text(ns::BIND, "resource")
            .map(|r| r.trim().to_owned())
            .filter(|r| !r.is_empty());
        let resource = requested.unwrap_or_else(|| format!("vireo-{}", self.entropy.hex_id(6)));
        let jid = match account.with_resource(&resource) {
            Ok(j) => j,
            Err(_) => return Some(error_reply(&reply_to, StanzaError::BadRequest, &domain)),
        };
        let mut r = Element::new(ns::CLIENT, "iq").with_attr("type", "result");
        if let Some(id) = iq.attr("id") {
            r.set_attr("id", id);
        }
        r = r.with_child(
            Element::new(ns::BIND, "bind")
                .with_child(Element::new(ns::BIND, "jid").with_text(jid.to_string())),
        );
        self.jid = Some(jid.clone());
        self.auth_deadline = None;
        self.out.push(ConnOutput::Bound(jid));
        Some(r)
    }

    fn ensure_header(&mut self) {
        if !self.header_sent {
            let mut buf = Vec::with_capacity(256);
            let from = self.cfg.domains.first().cloned();
            write_header(&mut buf, ns::CLIENT, from.as_deref(), None, None);
            self.out.write(&buf);
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
            self.out.write(STREAM_CLOSE);
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

    /// A suspended session nobody will resume (e.g. taken for a resuming
    /// connection that stopped waiting): its stanzas come out as
    /// [`ConnOutput::Undelivered`].
    pub fn abandon(&mut self, mut s: SuspendedSession) {
        let mut pending = s.state.unacked.drain();
        pending.extend(s.held);
        self.push_undelivered(pending, &s.account);
    }

    fn push_undelivered(&mut self, pending: Vec<Element>, account: &Jid) {
        let domain = account.domain().to_owned();
        let out: Vec<Element> = pending
            .into_iter()
            .filter_map(|s| sm::undeliverable(s, &domain))
            .collect();
        if !out.is_empty() {
            tracing::debug!(%account, count = out.len(), "unacknowledged stanzas rerouted");
            self.out.push(ConnOutput::Undelivered(out));
        }
    }

    /// Write one stanza to the client (after binding) and, with stream
    /// management, keep it until the client acknowledges it. A hibernated
    /// session only keeps it: it is sent when the client resumes.
    fn emit(&mut self, stanza: Element) {
        if self.writes_stanzas() {
            self.out.write_element(&stanza, ns::CLIENT);
        }
        if let Some(sm) = self.sm.as_mut() {
            sm.unacked.push(stanza);
            sm.since_request = sm.since_request.saturating_add(1);
        }
    }

    /// After a burst of stanzas: ask for an acknowledgement every
    /// `request_every` stanzas, and end a session whose client stopped
    /// acknowledging before its queue grows without bound.
    fn after_emit(&mut self) {
        let Some(cfg) = self.cfg.sm.clone() else {
            return;
        };
        let Some(state) = self.sm.as_ref() else {
            return;
        };
        if state.unacked.len() > cfg.max_unacked {
            return self.stream_error(
                StreamErrorCondition::ResourceConstraint,
                Some("too many unacknowledged stanzas"),
            );
        }
        if state.unacked.bytes() > cfg.max_unacked_bytes {
            tracing::info!(jid = ?self.jid, bytes = state.unacked.bytes(), "unacknowledged queue over its byte limit");
            return self.stream_error(
                StreamErrorCondition::ResourceConstraint,
                Some("too many unacknowledged bytes"),
            );
        }
        if state.since_request >= cfg.request_every && self.writes_stanzas() {
            self.request_ack();
        }
    }

    /// Stanzas go to the client now, rather than only into the SM queue
    /// (hibernated, or resumed but not yet told so).
    fn writes_stanzas(&self) -> bool {
        !matches!(
            self.phase,
            Phase::Hibernated { .. } | Phase::AwaitResumeFence
        )
    }

    /// The driver's answer to [`ConnOutput::Fence`]: everything the fence
    /// followed is durable. Owed acknowledgements go out with the count it
    /// covered; a waiting resumption completes.
    pub fn fence_done(&mut self, _now: Millis, seq: u64) {
        if self.is_closed() {
            return;
        }
        let Some(state) = self.sm.as_mut() else {
            return;
        };
        let Some(h) = state.acks.finish(seq) else {
            return;
        };
        let answer = std::mem::take(&mut state.acks.ack_when_back);
        let again = std::mem::take(&mut state.acks.ack_next);
        let resuming = matches!(self.phase, Phase::AwaitResumeFence);
        if (again || resuming) && state.acks.durable != state.handled {
            state.acks.ack_when_back = again;
            let seq = state.acks.start(state.handled);
            self.out.push(ConnOutput::Fence(seq));
        } else if again {
            // Nothing new since: the count just confirmed answers it too.
            self.write_ack(h);
        }
        if answer && !resuming {
            self.write_ack(h);
        }
        if resuming && self.sm.as_ref().is_some_and(|s| s.acks.in_flight.is_none()) {
            self.phase = Phase::Ready;
            let held = self.csi.take_held();
            self.finish_resume(held);
        }
    }

    fn write_ack(&mut self, h: u32) {
        if self.writes_stanzas() {
            let a = Element::new(sm::NS, "a").with_attr("h", h.to_string());
            self.out.write_element(&a, ns::CLIENT);
        }
    }

    fn request_ack(&mut self) {
        if let Some(sm) = self.sm.as_mut() {
            sm.since_request = 0;
            self.out
                .write_element(&Element::new(sm::NS, "r"), ns::CLIENT);
        }
    }

    /// `<enable/>`, `<r/>`, `<a/>` and `<resume/>` (XEP-0198).
    fn handle_sm(&mut self, el: &Element) {
        let Some(cfg) = self.cfg.sm.clone() else {
            if matches!(el.name.as_str(), "enable" | "resume") {
                let f = sm::failed(StanzaError::FeatureNotImplemented, None);
                return self.out.write_element(&f, ns::CLIENT);
            }
            return self.stream_error(StreamErrorCondition::UnsupportedStanzaType, None);
        };
        match el.name.as_str() {
            "enable" => {
                if self.jid.is_none() || self.sm.is_some() {
                    let f = sm::failed(StanzaError::UnexpectedRequest, None);
                    return self.out.write_element(&f, ns::CLIENT);
                }
                let wants_resume = matches!(el.attr("resume"), Some("true" | "1"));
                let resumable = wants_resume && cfg.resume_timeout_ms > 0;
                let mut enabled = Element::new(sm::NS, "enabled");
                let id = resumable.then(|| self.entropy.hex_id(16));
                // The client's preferred maximum only shortens ours.
                let ours = cfg.resume_timeout_ms / 1000;
                let max = el
                    .attr("max")
                    .and_then(|m| m.parse::<u64>().ok())
                    .filter(|m| *m > 0)
                    .map_or(ours, |m| m.min(ours));
                if let Some(id) = &id {
                    enabled = enabled
                        .with_attr("id", id.clone())
                        .with_attr("resume", "true")
                        .with_attr("max", max.to_string());
                }
                self.out.write_element(&enabled, ns::CLIENT);
                self.sm = Some(SmState::new(id.clone(), max.saturating_mul(1000)));
                if let Some(id) = id {
                    self.out.push(ConnOutput::SmEnabled(id));
                }
            }
            "r" => {
                let Some(state) = self.sm.as_mut() else {
                    return self.stream_error(StreamErrorCondition::UnsupportedStanzaType, None);
                };
                let acks = &mut state.acks;
                match acks.in_flight {
                    // Everything handled is known durable: answer now.
                    None if acks.durable == state.handled => {
                        let h = acks.durable;
                        self.write_ack(h);
                    }
                    None => {
                        acks.ack_when_back = true;
                        let seq = acks.start(state.handled);
                        self.out.push(ConnOutput::Fence(seq));
                    }
                    Some((_, covered)) if covered == state.handled => acks.ack_when_back = true,
                    Some(_) => acks.ack_next = true,
                }
            }
            "a" => {
                let Some(state) = self.sm.as_mut() else {
                    return self.stream_error(StreamErrorCondition::UnsupportedStanzaType, None);
                };
                let Some(h) = sm::parse_h(el) else {
                    return self.stream_error(StreamErrorCondition::BadFormat, Some("bad 'h'"));
                };
                if let Err(e) = state.unacked.ack(h) {
                    return self.stream_error_with(
                        StreamErrorCondition::UndefinedCondition,
                        Some(&e.to_string()),
                        Some(e.to_element()),
                    );
                }
                self.check_page();
            }
            "resume" => {
                if self.jid.is_some() || self.sm.is_some() || !matches!(self.phase, Phase::Ready) {
                    let f = sm::failed(StanzaError::UnexpectedRequest, None);
                    return self.out.write_element(&f, ns::CLIENT);
                }
                let previd = el.attr("previd").unwrap_or_default().to_owned();
                let h = sm::parse_h(el);
                if previd.is_empty() || (el.attr("h").is_some() && h.is_none()) {
                    let f = sm::failed(StanzaError::BadRequest, None);
                    return self.out.write_element(&f, ns::CLIENT);
                }
                self.phase = Phase::AwaitResume { h };
                self.out.push(ConnOutput::Resume { previd });
            }
            _ => self.stream_error(StreamErrorCondition::UnsupportedStanzaType, None),
        }
    }
}

/// RFC 6120 §6.4.2: the payload is base64, and a lone `=` means "empty".
fn decode_sasl_payload(text: &str) -> Result<Vec<u8>, base64::DecodeError> {
    let t = text.trim();
    if t.is_empty() || t == "=" {
        return Ok(Vec::new());
    }
    base64::engine::general_purpose::STANDARD.decode(t)
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
