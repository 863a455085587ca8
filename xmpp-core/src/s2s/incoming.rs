//! The receiving side of a server-to-server stream (RFC 6120 s2s, port
//! 5269): the peer opens it, proves the domains it sends from with Server
//! Dialback (XEP-0220), and sends stanzas.
//!
//! On one stream the peer plays two roles. As *Initiating Server* it asks
//! to send from a Sender Domain to one of our domains (`<db:result/>` with
//! a key): the machine asks its driver to check the key with the Sender
//! Domain's *Authoritative Server* ([`IncomingOutput::Verify`], which the
//! driver carries out over an outgoing stream) and, once told
//! ([`IncomingStream::verified`]), accepts stanzas for that domain pair.
//! As *Receiving Server* of its own (`<db:verify/>`), it asks us whether a
//! key we gave it is ours: we recompute it with our secret and answer.
//!
//! The rule this machine exists to keep: nothing is routed from a domain
//! pair that is not verified on this stream. A stanza whose `from` domain
//! and `to` domain are not a verified pair ends the stream with
//! `<invalid-from/>` (RFC 6120 §4.9.3.9); one before any pair is verified
//! with `<not-authorized/>`; one without `from` or `to` with
//! `<improper-addressing/>` (§4.9.3.7).
//!
//! STARTTLS is offered when the listener has a certificate, and required
//! when `require_tls` says so (Prosody's `s2s_require_encryption`): then
//! a dialback request before TLS is refused with `policy-violation`. The
//! handshake itself is the driver's ([`IncomingOutput::StartTls`], then
//! [`IncomingStream::tls_established`]); the stream restarts with a new id,
//! which the keys are bound to.
//!
//! Over TLS, a peer whose client certificate proves its domain (the
//! driver judges it: [`PeerCertificate`]) may authenticate with SASL
//! EXTERNAL instead (RFC 6120 §6, XEP-0178): the pair (its domain, the
//! stream's `to`) is then verified without a dialback round trip.
//!
//! Like every machine here it never touches the network: bytes, time and
//! verification verdicts come in; bytes, verification requests and
//! stanzas for routing come out.

use super::dialback::{
    DbBody, DbResult, DbVerify, DialbackCondition, DialbackDomain, DialbackElement, DialbackError,
    DialbackKey, DialbackSecret, StreamId,
};
use super::received::{receive, Received};
use crate::entropy::Entropy;
use crate::jid::Jid;
use crate::ns;
use crate::stream::header::{check_header, write_s2s_header, STREAM_CLOSE};
use crate::stream::output::{OutputQueue, Writes};
use crate::stream::StreamErrorCondition;
use crate::time::Millis;
use crate::xml::{Element, Limits, StreamEvent, StreamParser};
use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

/// The peer's TLS client certificate as the driver judged it: a trusted
/// chain, and the domains it proves (RFC 6125), for SASL EXTERNAL.
pub trait PeerCertificate: std::fmt::Debug + Send + Sync {
    /// Whether the certificate proves `domain` for s2s.
    fn proves(&self, domain: &str) -> bool;
}

/// What the receiving side of an s2s stream asks its driver to do.
#[derive(Debug, Clone, PartialEq)]
pub enum IncomingOutput {
    /// Bytes to write to the transport.
    Write(Vec<u8>),
    /// `<proceed/>` is written: flush it, then run the TLS handshake as
    /// the server and call [`IncomingStream::tls_established`].
    StartTls,
    /// Ask the Authoritative Server of `sender` whether `key` is its key
    /// for (`target`, `sender`, `stream_id`) (XEP-0220 §2.1.2, `db:verify`);
    /// answer with [`IncomingStream::verified`] or
    /// [`IncomingStream::verification_failed`].
    Verify {
        /// The Sender Domain the peer claims.
        sender: DialbackDomain,
        /// Our domain it wants to send to.
        target: DialbackDomain,
        /// This stream's id, which the key is bound to.
        stream_id: StreamId,
        /// The key to check.
        key: DialbackKey,
    },
    /// A stanza from a verified domain pair, in `jabber:client` (the hub's
    /// namespace), for routing.
    Stanza(Element),
    /// XEP-0288: the peer made the stream bidirectional and the pair
    /// (`remote`, `local`) is verified: stanzas from our `local` to its
    /// `remote` may go back over this stream ([`IncomingStream::send_stanza`]).
    Bidi {
        /// Our domain (the pair's Target Domain).
        local: String,
        /// The peer's (the pair's Sender Domain).
        remote: String,
    },
    /// Flush pending writes and close the transport.
    Close,
}

impl Writes for IncomingOutput {
    fn write(bytes: Vec<u8>) -> Self {
        IncomingOutput::Write(bytes)
    }

    fn written(&mut self) -> Option<&mut Vec<u8>> {
        match self {
            IncomingOutput::Write(buf) => Some(buf),
            _ => None,
        }
    }
}

/// Settings of the receiving side of s2s streams on one listener.
#[derive(Debug, Clone)]
pub struct IncomingConfig {
    /// Our domains: the Target Domains a peer may ask for.
    pub domains: Vec<String>,
    /// The dialback secret our keys are made with, to answer `db:verify`.
    pub secret: DialbackSecret,
    /// Parser limits (stanza size, depth).
    pub limits: Limits,
    /// STARTTLS is offered (the listener has a certificate).
    pub starttls_available: bool,
    /// Nothing but STARTTLS before TLS: dialback on a plain stream is
    /// refused (`policy-violation`).
    pub require_tls: bool,
    /// A stream with no verified domain pair this long after its header is
    /// closed (`connection-timeout`): it holds a socket and proves nothing.
    pub auth_timeout_ms: Millis,
    /// A verification the driver has not answered in this long fails
    /// (`remote-server-timeout` to the peer).
    pub verify_timeout_ms: Millis,
    /// Verifications in flight per stream; more get `resource-constraint`
    /// (each costs an outgoing connection).
    pub max_pending: usize,
    /// Verified domain pairs per stream (XEP-0220 §2.4 multiplexing); more
    /// get `resource-constraint`.
    pub max_pairs: usize,
    /// Offer bidirectional streams (XEP-0288).
    pub bidi: bool,
}

impl Default for IncomingConfig {
    fn default() -> Self {
        IncomingConfig {
            domains: vec!["localhost".into()],
            secret: DialbackSecret::new(b"change me"),
            limits: Limits::default(),
            starttls_available: true,
            require_tls: true,
            auth_timeout_ms: 60_000,
            verify_timeout_ms: 30_000,
            max_pending: 16,
            max_pairs: 256,
            bidi: false,
        }
    }
}

/// A domain pair: (Sender Domain, Target Domain).
type Pair = (String, String);

#[derive(Debug)]
enum Phase {
    /// Waiting for the peer's stream header.
    Header,
    /// Header answered: dialback and stanzas.
    Open {
        stream_id: StreamId,
    },
    /// `<proceed/>` sent: the driver runs the TLS handshake.
    AwaitTls,
    Closed,
}

/// The receiving end of one s2s connection.
#[derive(Debug)]
pub struct IncomingStream {
    cfg: Arc<IncomingConfig>,
    parser: StreamParser,
    entropy: Entropy,
    out: OutputQueue<IncomingOutput>,
    phase: Phase,
    /// Pairs verified on this stream: the only ones stanzas may use.
    verified: HashSet<Pair>,
    /// Pairs being verified, with their deadline.
    pending: BTreeMap<Pair, Millis>,
    /// Until a first pair is verified.
    auth_deadline: Option<Millis>,
    header_sent: bool,
    /// TLS is established on the transport.
    secure: bool,
    /// The peer's certificate, when it presented one the driver trusts.
    peer_cert: Option<Arc<dyn PeerCertificate>>,
    /// The `from` of the peer's current stream header.
    header_from: Option<String>,
    /// The domain SASL EXTERNAL authenticated; its pair is verified when
    /// the restarted stream names our domain.
    sasl_domain: Option<String>,
    /// The peer asked for a bidirectional stream (XEP-0288).
    bidi: bool,
}

impl IncomingStream {
    /// A new stream on a fresh connection.
    pub fn new(cfg: Arc<IncomingConfig>, entropy: Entropy, now: Millis) -> Self {
        let parser = StreamParser::new(cfg.limits);
        let auth_deadline = Some(now.saturating_add(cfg.auth_timeout_ms));
        IncomingStream {
            cfg,
            parser,
            entropy,
            out: OutputQueue::default(),
            phase: Phase::Header,
            verified: HashSet::new(),
            pending: BTreeMap::new(),
            auth_deadline,
            header_sent: false,
            secure: false,
            peer_cert: None,
            header_from: None,
            sasl_domain: None,
            bidi: false,
        }
    }

    /// A new stream on a connection that began with TLS (XEP-0368 direct
    /// TLS), the peer having presented `cert` if it is trusted.
    pub fn new_direct_tls(
        cfg: Arc<IncomingConfig>,
        entropy: Entropy,
        now: Millis,
        cert: Option<Arc<dyn PeerCertificate>>,
    ) -> Self {
        let mut s = IncomingStream::new(cfg, entropy, now);
        s.secure = true;
        s.peer_cert = cert;
        s
    }

    /// Whether the stream runs over TLS.
    pub fn is_secure(&self) -> bool {
        self.secure
    }

    /// The TLS handshake the machine asked for finished: the peer opens a
    /// new stream over it.
    pub fn tls_established(&mut self) {
        self.tls_established_with(None);
    }

    /// [`tls_established`](Self::tls_established), the peer having
    /// presented `cert` (a trusted client certificate): SASL EXTERNAL is
    /// offered.
    pub fn tls_established_with(&mut self, cert: Option<Arc<dyn PeerCertificate>>) {
        if !matches!(self.phase, Phase::AwaitTls) {
            return;
        }
        self.peer_cert = cert;
        self.secure = true;
        self.parser.clear();
        self.header_sent = false;
        self.phase = Phase::Header;
    }

    /// Whether stanzas from `sender` to `target` are accepted on this stream.
    pub fn is_verified(&self, sender: &str, target: &str) -> bool {
        self.verified
            .contains(&(sender.to_owned(), target.to_owned()))
    }

    /// The stream's id, once its header is answered.
    pub fn stream_id(&self) -> Option<&StreamId> {
        match &self.phase {
            Phase::Open { stream_id } => Some(stream_id),
            _ => None,
        }
    }

    /// True once the stream is closed; the driver closes the transport
    /// after flushing the remaining output.
    pub fn is_closed(&self) -> bool {
        matches!(self.phase, Phase::Closed)
    }

    /// Next instruction for the driver.
    pub fn poll_output(&mut self) -> Option<IncomingOutput> {
        self.out.pop()
    }

    /// The next deadline at which [`handle_timeout`](Self::handle_timeout)
    /// must be called.
    pub fn poll_timeout(&self) -> Option<Millis> {
        if self.is_closed() {
            return None;
        }
        let first_pending = self.pending.values().min().copied();
        match (self.auth_deadline, first_pending) {
            (Some(a), Some(p)) => Some(a.min(p)),
            (a, p) => a.or(p),
        }
    }

    /// Time passed: verifications not answered in time fail, and a stream
    /// that verified nothing in time is closed.
    pub fn handle_timeout(&mut self, now: Millis) {
        if self.is_closed() {
            return;
        }
        let expired: Vec<Pair> = self
            .pending
            .iter()
            .filter(|(_, deadline)| now >= **deadline)
            .map(|(pair, _)| pair.clone())
            .collect();
        for (sender, target) in expired {
            self.verification_failed(&sender, &target, DialbackCondition::RemoteServerTimeout);
        }
        if self.auth_deadline.is_some_and(|d| now >= d) && self.pending.is_empty() {
            self.stream_error(
                StreamErrorCondition::ConnectionTimeout,
                Some("no domain was verified in time"),
            );
        }
    }

    /// Bytes arrived from the transport.
    pub fn handle_input(&mut self, now: Millis, bytes: &[u8]) {
        if self.is_closed() {
            return;
        }
        self.parser.feed(bytes);
        self.process(now);
    }

    /// The Authoritative Server of `sender` answered the verification of
    /// the key for (`sender`, `target`): `valid` or not. An answer for a
    /// pair not being verified on this stream is dropped (XEP-0220 §2.1.2).
    pub fn verified(&mut self, sender: &str, target: &str, valid: bool) {
        let pair = (sender.to_owned(), target.to_owned());
        if self.is_closed() || self.pending.remove(&pair).is_none() {
            return;
        }
        let (Ok(from), Ok(to)) = (DialbackDomain::parse(target), DialbackDomain::parse(sender))
        else {
            return;
        };
        if valid {
            tracing::info!(sender, target, "s2s domain pair verified by dialback");
            self.send_dialback(DialbackElement::Result(DbResult {
                from,
                to,
                body: DbBody::Valid,
            }));
            return self.pair_verified(pair);
        }
        tracing::warn!(
            sender,
            target,
            "dialback key refused by the authoritative server"
        );
        if self.verified.is_empty() {
            // XEP-0220 §2.2.1: the first attempt failing ends the stream.
            self.send_dialback(DialbackElement::Result(DbResult {
                from,
                to,
                body: DbBody::Invalid,
            }));
            return self.close(None);
        }
        // Other pairs stand: refuse this one without losing them.
        self.send_dialback(DialbackElement::Result(DbResult {
            from,
            to,
            body: DbBody::Error(DialbackError::new(DialbackCondition::Forbidden)),
        }));
    }

    /// The verification for (`sender`, `target`) could not be made (no
    /// route to the Authoritative Server, or it did not answer): the peer
    /// is told, and the stream stays (XEP-0220 §2.4.2).
    pub fn verification_failed(&mut self, sender: &str, target: &str, why: DialbackCondition) {
        let pair = (sender.to_owned(), target.to_owned());
        if self.is_closed() || self.pending.remove(&pair).is_none() {
            return;
        }
        tracing::info!(
            sender,
            target,
            condition = why.name(),
            "dialback verification failed"
        );
        if let (Ok(from), Ok(to)) = (DialbackDomain::parse(target), DialbackDomain::parse(sender)) {
            self.send_dialback(DialbackElement::Result(DbResult {
                from,
                to,
                body: DbBody::Error(DialbackError::new(why)),
            }));
        }
    }

    /// Close the stream: with a stream error, or with `None` by the normal
    /// closing handshake.
    pub fn close(&mut self, condition: Option<StreamErrorCondition>) {
        if self.is_closed() {
            return;
        }
        match condition {
            Some(c) => self.stream_error(c, None),
            None => {
                self.ensure_header(None, None);
                self.out.write(STREAM_CLOSE);
                self.out.push(IncomingOutput::Close);
                self.phase = Phase::Closed;
            }
        }
    }

    fn process(&mut self, now: Millis) {
        loop {
            if self.is_closed() {
                return;
            }
            match self.parser.next_event() {
                Ok(None) => return,
                Ok(Some(StreamEvent::Open(header))) => self.handle_header(&header),
                Ok(Some(StreamEvent::Close)) => self.close(None),
                Ok(Some(StreamEvent::Stanza(el))) => self.handle_element(now, el),
                Err(e) => {
                    let cond = StreamErrorCondition::from_name(e.condition());
                    return self.stream_error(cond, Some(&e.to_string()));
                }
            }
        }
    }

    fn is_local(&self, domain: &str) -> bool {
        self.cfg.domains.iter().any(|d| d == domain)
    }

    fn handle_header(&mut self, header: &Element) {
        if !matches!(self.phase, Phase::Header) {
            return self.stream_error(StreamErrorCondition::BadFormat, Some("unexpected header"));
        }
        let to = header
            .attr("to")
            .and_then(|t| Jid::domain_jid(t).ok())
            .map(|j| j.domain().to_owned());
        let local = to.filter(|t| self.is_local(t));
        self.header_from = header
            .attr("from")
            .and_then(|f| Jid::domain_jid(f).ok())
            .map(|j| j.domain().to_owned());
        // RFC 6120 §4.9.1.2: our header goes out before any stream error.
        let stream_id = StreamId::parse(&self.entropy.hex_id(16));
        self.ensure_header(local.as_deref(), stream_id.as_ref().map(StreamId::as_str));
        if let Err(cond) = check_header(header) {
            return self.stream_error(cond, None);
        }
        if local.is_none() {
            return self.stream_error(
                StreamErrorCondition::HostUnknown,
                Some("no such domain is served here"),
            );
        }
        let Some(stream_id) = stream_id else {
            return self.stream_error(StreamErrorCondition::InternalServerError, None);
        };
        if let (Some(authenticated), Some(target)) = (&self.sasl_domain, &local) {
            // The stream after SASL EXTERNAL: its pair is proven if it is
            // the authenticated domain's (RFC 6120 §6.4.6).
            if self.header_from.as_ref() == Some(authenticated) {
                tracing::info!(sender = %authenticated, target = %target, "s2s domain pair verified by SASL EXTERNAL");
                self.pair_verified((authenticated.clone(), target.clone()));
            }
        }
        // XEP-0220 §2.4.1: we support dialback with error handling.
        let mut features = b"<stream:features>".to_vec();
        // SASL EXTERNAL is offered only when the certificate proves the
        // domain the header claims, as Prosody and ejabberd do: otherwise
        // the peer tries it, fails, and falls back to dialback a round trip
        // later (ejabberd logging a warning each time).
        let proves_from = self.peer_cert.as_ref().is_some_and(|c| {
            self.header_from
                .as_deref()
                .is_some_and(|from| c.proves(from))
        });
        if self.secure && proves_from && self.sasl_domain.is_none() {
            features.extend_from_slice(
                b"<mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><mechanism>EXTERNAL</mechanism></mechanisms>",
            );
        }
        if !self.secure && self.cfg.starttls_available {
            features.extend_from_slice(if self.cfg.require_tls {
                b"<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'><required/></starttls>"
            } else {
                b"<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>"
            });
        }
        if self.cfg.bidi {
            features.extend_from_slice(b"<bidi xmlns='urn:xmpp:features:bidi'/>");
        }
        features.extend_from_slice(
            b"<dialback xmlns='urn:xmpp:features:dialback'><errors/></dialback></stream:features>",
        );
        self.out.write(&features);
        self.phase = Phase::Open { stream_id };
    }

    fn handle_element(&mut self, now: Millis, el: Element) {
        if el.is(ns::STREAM, "error") {
            // The peer ends the stream: say why in our log, answer nothing.
            let text = el.child(ns::STREAM_ERRORS, "text").map(|t| t.text());
            tracing::warn!(
                peer = self.header_from.as_deref(),
                condition = %StreamErrorCondition::from_element(&el),
                text,
                "the s2s peer ended the stream with an error"
            );
            return self.close(None);
        }
        let Phase::Open { stream_id } = &self.phase else {
            return self.stream_error(StreamErrorCondition::BadFormat, Some("expected a header"));
        };
        let stream_id = stream_id.clone();
        if el.ns == ns::DIALBACK {
            return match DialbackElement::parse(&el) {
                Ok(db) => self.handle_dialback(now, &stream_id, db),
                Err(e) => {
                    tracing::debug!(error = %e, "unusable dialback element");
                    self.stream_error(StreamErrorCondition::BadFormat, Some(&e.to_string()))
                }
            };
        }
        if el.ns == ns::CLIENT || el.ns.is_empty() {
            // A client on the s2s port, or a stream without jabber:server.
            return self.stream_error(
                StreamErrorCondition::InvalidNamespace,
                Some("s2s streams are jabber:server"),
            );
        }
        if el.is(ns::TLS, "starttls") {
            return self.handle_starttls();
        }
        if el.is(ns::SASL, "auth") {
            return self.handle_auth(&el);
        }
        if el.is(ns::BIDI, "bidi") {
            return self.handle_bidi();
        }
        if el.ns != ns::SERVER {
            // SASL and the rest are not offered on this stream.
            return self.stream_error(
                StreamErrorCondition::UnsupportedStanzaType,
                Some("only dialback and stanzas are accepted here"),
            );
        }
        self.handle_stanza(el);
    }

    /// `<auth mechanism='EXTERNAL'>` (RFC 6120 §6.4, XEP-0178): the
    /// authorization identity is the header's `from` (empty or `=`) or
    /// must equal it, and the certificate must prove it.
    fn handle_auth(&mut self, el: &Element) {
        let failure = |this: &mut Self, condition: &str| {
            this.out.write(
                format!(
                    "<failure xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><{condition}/></failure>"
                )
                .as_bytes(),
            );
        };
        let cert = self
            .peer_cert
            .clone()
            .filter(|_| self.secure && self.sasl_domain.is_none());
        let (Some(cert), Some("EXTERNAL")) = (cert, el.attr("mechanism")) else {
            return failure(self, "invalid-mechanism");
        };
        let text = el.text();
        let text = text.trim();
        let authzid = if text.is_empty() || text == "=" {
            self.header_from.clone()
        } else {
            use base64::Engine as _;
            base64::engine::general_purpose::STANDARD
                .decode(text)
                .ok()
                .and_then(|b| String::from_utf8(b).ok())
                .and_then(|d| Jid::domain_jid(&d).ok())
                .map(|j| j.domain().to_owned())
        };
        let Some(domain) = authzid.filter(|d| self.header_from.as_ref() == Some(d)) else {
            return failure(self, "invalid-authzid");
        };
        if !cert.proves(&domain) {
            tracing::info!(%domain, "SASL EXTERNAL: the certificate does not prove the domain");
            return failure(self, "not-authorized");
        }
        self.out
            .write(b"<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>");
        self.sasl_domain = Some(domain);
        // The peer restarts the stream (RFC 6120 §6.4.6).
        self.parser.restart();
        self.header_sent = false;
        self.phase = Phase::Header;
    }

    /// `<bidi/>` (XEP-0288 §2.2): from now on, verified pairs carry
    /// stanzas back too. Only when offered, and over TLS when TLS is to be
    /// had (§2.1: STARTTLS comes first).
    fn handle_bidi(&mut self) {
        if !self.cfg.bidi || (!self.secure && self.cfg.starttls_available) {
            return self.stream_error(
                StreamErrorCondition::UnsupportedStanzaType,
                Some("bidirectional streams are not offered here"),
            );
        }
        if self.bidi {
            return;
        }
        self.bidi = true;
        let pairs: Vec<Pair> = self.verified.iter().cloned().collect();
        for (remote, local) in pairs {
            self.out.push(IncomingOutput::Bidi { local, remote });
        }
    }

    /// A pair is verified: stanzas may use it, and on a bidirectional
    /// stream its inverse may carry ours.
    fn pair_verified(&mut self, pair: Pair) {
        self.auth_deadline = None;
        if self.bidi && !self.verified.contains(&pair) {
            self.out.push(IncomingOutput::Bidi {
                local: pair.1.clone(),
                remote: pair.0.clone(),
            });
        }
        self.verified.insert(pair);
    }

    /// `<starttls/>` (RFC 6120 §5.4.2.1).
    fn handle_starttls(&mut self) {
        if self.secure || !self.cfg.starttls_available {
            self.out
                .write(b"<failure xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>");
            return self.close(None);
        }
        if self.parser.pending_bytes() > 0 {
            // Bytes pipelined behind <starttls/> would count as arrived over
            // TLS (CVE-2011-0411): refuse them.
            return self.stream_error(
                StreamErrorCondition::PolicyViolation,
                Some("data pipelined after <starttls/>"),
            );
        }
        self.out
            .write(b"<proceed xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>");
        self.out.push(IncomingOutput::StartTls);
        self.phase = Phase::AwaitTls;
    }

    fn handle_dialback(&mut self, now: Millis, stream_id: &StreamId, db: DialbackElement) {
        match db {
            DialbackElement::Result(DbResult {
                from,
                to,
                body: DbBody::Key(key),
            }) => self.ask(now, stream_id, from, to, key),
            DialbackElement::Verify(DbVerify {
                from,
                to,
                id,
                body: DbBody::Key(key),
            }) => self.answer_verify(from, to, id, &key),
            // Verdicts come on streams we opened; on an inbound one they
            // mean nothing without XEP-0288 (XEP-0220 §2.2).
            other => tracing::debug!(?other, "dialback verdict on an inbound stream ignored"),
        }
    }

    /// `<db:result/>` with a key: the peer wants to send from `sender` to
    /// our `target`.
    fn ask(
        &mut self,
        now: Millis,
        stream_id: &StreamId,
        sender: DialbackDomain,
        target: DialbackDomain,
        key: DialbackKey,
    ) {
        let refuse = |this: &mut Self, why: DialbackCondition| {
            this.send_dialback(DialbackElement::Result(DbResult {
                from: target.clone(),
                to: sender.clone(),
                body: DbBody::Error(DialbackError::new(why)),
            }));
        };
        if !self.is_local(target.as_str()) {
            return refuse(self, DialbackCondition::ItemNotFound);
        }
        if self.cfg.require_tls && !self.secure {
            // XEP-0220 §2.4.2: TLS first.
            return refuse(self, DialbackCondition::PolicyViolation);
        }
        let pair = (sender.as_str().to_owned(), target.as_str().to_owned());
        if self.verified.contains(&pair) {
            // Already proven on this stream: say so again.
            return self.send_dialback(DialbackElement::Result(DbResult {
                from: target,
                to: sender,
                body: DbBody::Valid,
            }));
        }
        if self.pending.contains_key(&pair) {
            return;
        }
        if self.pending.len() >= self.cfg.max_pending
            || self.verified.len() + self.pending.len() >= self.cfg.max_pairs
        {
            return refuse(self, DialbackCondition::ResourceConstraint);
        }
        self.pending
            .insert(pair, now.saturating_add(self.cfg.verify_timeout_ms));
        self.out.push(IncomingOutput::Verify {
            sender,
            target,
            stream_id: stream_id.clone(),
            key,
        });
    }

    /// `<db:verify/>` with a key: the peer, as Receiving Server, asks
    /// whether `key` is the one we (as Authoritative Server for `ours`)
    /// gave it on its stream `id` (XEP-0220 §2.2.2).
    fn answer_verify(
        &mut self,
        receiving: DialbackDomain,
        ours: DialbackDomain,
        id: StreamId,
        key: &DialbackKey,
    ) {
        let body = if !self.is_local(ours.as_str()) {
            DbBody::Error(DialbackError::new(DialbackCondition::ItemNotFound))
        } else if self
            .cfg
            .secret
            .verify(receiving.as_str(), ours.as_str(), id.as_str(), key)
        {
            DbBody::Valid
        } else {
            tracing::info!(
                receiving = receiving.as_str(),
                ours = ours.as_str(),
                "db:verify of a key that is not ours"
            );
            DbBody::Invalid
        };
        self.send_dialback(DialbackElement::Verify(DbVerify {
            from: ours,
            to: receiving,
            id,
            body,
        }));
    }

    /// A stanza: routed only from a pair verified on this stream.
    fn handle_stanza(&mut self, el: Element) {
        if self.verified.is_empty() {
            // RFC 6120 §4.9.3.12: stanzas before the peer is authenticated.
            return self.stream_error(
                StreamErrorCondition::NotAuthorized,
                Some("no domain is verified on this stream"),
            );
        }
        match receive(el, |from, to| self.is_verified(from, to)) {
            Received::Route(el) | Received::Answer(el) => self.out.push(IncomingOutput::Stanza(el)),
            Received::Drop => {}
            Received::Fail(condition, why) => self.stream_error(condition, Some(why)),
        }
    }

    /// XEP-0288: send a stanza from our domain back over this stream. Only
    /// once the peer asked for a bidirectional stream, and only for the
    /// inverse of a verified pair (from its Target Domain to its Sender
    /// Domain); false (nothing written) otherwise.
    pub fn send_stanza(&mut self, stanza: &Element) -> bool {
        if !self.bidi || self.is_closed() || !matches!(self.phase, Phase::Open { .. }) {
            return false;
        }
        let domain = |a: &str| stanza.attr(a).and_then(|j| Jid::parse(j).ok());
        let (Some(from), Some(to)) = (domain("from"), domain("to")) else {
            return false;
        };
        if !self.is_verified(to.domain(), from.domain()) {
            return false;
        }
        // Written with `jabber:client` as the parent's default namespace, a
        // stanza in it declares none and so is `jabber:server`, the stream's.
        self.out.write_element(stanza, ns::CLIENT);
        true
    }

    /// Whether the peer made this stream bidirectional (XEP-0288).
    pub fn is_bidi(&self) -> bool {
        self.bidi
    }

    fn send_dialback(&mut self, db: DialbackElement) {
        let mut buf = Vec::with_capacity(256);
        db.write_to(&mut buf);
        self.out.write(&buf);
    }

    /// Our stream header (once), declaring the dialback prefix.
    fn ensure_header(&mut self, from: Option<&str>, id: Option<&str>) {
        if self.header_sent {
            return;
        }
        let mut buf = Vec::with_capacity(320);
        // RFC 6120 §4.7.2: `to` is the domain the peer said it is, if any.
        let to = self.header_from.clone();
        write_s2s_header(&mut buf, from, to.as_deref(), id);
        self.out.write(&buf);
        self.header_sent = true;
    }

    /// Send a stream error and close (RFC 6120 §4.9.1.1).
    fn stream_error(&mut self, cond: StreamErrorCondition, text: Option<&str>) {
        if self.is_closed() {
            return;
        }
        tracing::info!(peer = self.header_from.as_deref(), condition = %cond, text, "s2s stream error");
        self.ensure_header(None, None);
        self.out.write_element(&cond.to_element(text), ns::SERVER);
        self.out.write(STREAM_CLOSE);
        self.out.push(IncomingOutput::Close);
        self.phase = Phase::Closed;
    }
}

#[cfg(test)]
#[path = "incoming_tests.rs"]
mod tests;
