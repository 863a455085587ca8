//! The server side of an external component stream (XEP-0114,
//! `jabber:component:accept`): header, `<handshake/>` proving the shared
//! secret, then stanzas in both directions.
//!
//! A component is a trusted peer serving its own domain (e.g.
//! `push.example.org`), much like a federated server without dialback:
//! once the handshake succeeds it may send from any address of its domain,
//! and the server routes every stanza for that domain to it. Like the c2s
//! machine, this one never touches the network: the driver feeds bytes and
//! time and polls [`AcceptOutput`]s (its own: a component stream has no
//! SASL, storage or stream management to speak of).
//!
//! One domain has at most one connection. The machine cannot know which
//! domains are taken, so after a valid handshake it emits
//! [`AcceptOutput::Claim`] with the domain and waits: the driver claims the
//! domain and answers [`ComponentStream::claimed`] (the component is told
//! `<handshake/>`) or closes the stream with `<conflict/>`.

use super::error::StreamErrorCondition;
use super::header::STREAM_CLOSE;
use super::output::{OutputQueue, Writes};
use crate::entropy::Entropy;
use crate::jid::Jid;
use crate::ns;
use crate::stanza::{error_reply, into_client_ns, is_error_or_result, Kind, StanzaError};
use crate::time::Millis;
use crate::xml::{escape_attr, Element, Limits, StreamEvent, StreamParser};
use sha1::{Digest, Sha1};
use std::sync::Arc;

/// XEP-0114 content namespace.
pub const NS: &str = "jabber:component:accept";

/// What the server side of a component stream asks its driver to do.
#[derive(Debug, Clone, PartialEq)]
pub enum AcceptOutput {
    /// Bytes to write to the transport.
    Write(Vec<u8>),
    /// The handshake proved the secret for this domain: the driver claims
    /// the domain (one connection per domain) and answers
    /// [`ComponentStream::claimed`], or closes with `<conflict/>`.
    Claim(Jid),
    /// A stanza from the component (`from` checked against its domain),
    /// for routing.
    Stanza(Element),
    /// Flush pending writes and close the transport.
    Close,
}

impl Writes for AcceptOutput {
    fn write(bytes: Vec<u8>) -> Self {
        AcceptOutput::Write(bytes)
    }

    fn written(&mut self) -> Option<&mut Vec<u8>> {
        match self {
            AcceptOutput::Write(buf) => Some(buf),
            _ => None,
        }
    }
}

/// One configured component: its domain and the secret it proves.
#[derive(Clone, PartialEq, Eq)]
pub struct ComponentSecret {
    /// The component's domain (a domain JID, normalized).
    pub domain: String,
    /// The shared secret of the handshake.
    pub secret: String,
}

impl std::fmt::Debug for ComponentSecret {
    /// The secret never reaches a log.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ComponentSecret")
            .field("domain", &self.domain)
            .finish_non_exhaustive()
    }
}

/// Settings for component streams on one listener.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ComponentStreamConfig {
    /// The components that may connect.
    pub components: Vec<ComponentSecret>,
    /// Parser limits (stanza size, depth).
    pub limits: Limits,
    /// Drop connections that have not completed the handshake after this
    /// many ms.
    pub handshake_timeout_ms: Millis,
    /// Whitespace keepalive after this long without output on an accepted
    /// stream (RFC 6120 §4.6.1), which also surfaces dead TCP peers.
    pub keepalive_ms: Option<Millis>,
}

impl Default for ComponentStreamConfig {
    fn default() -> Self {
        ComponentStreamConfig {
            components: Vec::new(),
            limits: Limits::default(),
            handshake_timeout_ms: 30_000,
            keepalive_ms: Some(60_000),
        }
    }
}

/// XEP-0114 §3: the handshake is the lowercase hex SHA-1 of the stream id
/// followed by the secret.
pub fn handshake_digest(stream_id: &str, secret: &str) -> String {
    let mut h = Sha1::new();
    h.update(stream_id.as_bytes());
    h.update(secret.as_bytes());
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

#[derive(Debug)]
enum Phase {
    /// Waiting for the component's stream header.
    Header,
    /// Header answered; waiting for `<handshake>` for this component.
    AwaitHandshake {
        domain: String,
        stream_id: String,
    },
    /// The secret is proven; the driver decides whether the domain is free.
    AwaitClaim {
        domain: String,
    },
    /// `<handshake/>` sent: stanzas flow.
    Accepted {
        domain: String,
    },
    Closed,
}

/// The server end of one component connection.
#[derive(Debug)]
pub struct ComponentStream {
    cfg: Arc<ComponentStreamConfig>,
    parser: StreamParser,
    entropy: Entropy,
    out: OutputQueue<AcceptOutput>,
    phase: Phase,
    handshake_deadline: Option<Millis>,
    /// When output was last queued (for keepalives).
    last_output: Millis,
    header_sent: bool,
}

impl ComponentStream {
    /// A new stream on a fresh connection.
    pub fn new(cfg: Arc<ComponentStreamConfig>, entropy: Entropy, now: Millis) -> Self {
        let parser = StreamParser::new(cfg.limits);
        let handshake_deadline = Some(now.saturating_add(cfg.handshake_timeout_ms));
        ComponentStream {
            cfg,
            parser,
            entropy,
            out: OutputQueue::default(),
            phase: Phase::Header,
            handshake_deadline,
            last_output: now,
            header_sent: false,
        }
    }

    /// The component's domain once the handshake is accepted.
    pub fn domain(&self) -> Option<&str> {
        match &self.phase {
            Phase::Accepted { domain } => Some(domain),
            _ => None,
        }
    }

    /// True once the stream is closed; the driver closes the transport after
    /// flushing the remaining output.
    pub fn is_closed(&self) -> bool {
        matches!(self.phase, Phase::Closed)
    }

    /// Next instruction for the driver.
    pub fn poll_output(&mut self) -> Option<AcceptOutput> {
        self.out.pop()
    }

    /// The next deadline at which `handle_timeout` must be called.
    pub fn poll_timeout(&self) -> Option<Millis> {
        if self.is_closed() {
            return None;
        }
        let keepalive = self
            .cfg
            .keepalive_ms
            .filter(|_| self.domain().is_some())
            .map(|k| self.last_output.saturating_add(k));
        match (self.handshake_deadline, keepalive) {
            (Some(a), Some(k)) => Some(a.min(k)),
            (a, k) => a.or(k),
        }
    }

    /// Time passed: enforce the handshake timeout, send keepalives.
    pub fn handle_timeout(&mut self, now: Millis) {
        if self.is_closed() {
            return;
        }
        if self.handshake_deadline.is_some_and(|d| now >= d) {
            return self.stream_error(
                StreamErrorCondition::ConnectionTimeout,
                Some("handshake timed out"),
            );
        }
        if let Some(k) = self.cfg.keepalive_ms.filter(|_| self.domain().is_some()) {
            if now >= self.last_output.saturating_add(k) {
                self.out.write(b" ");
                self.last_output = now;
            }
        }
    }

    /// Bytes arrived from the transport.
    pub fn handle_input(&mut self, now: Millis, bytes: &[u8]) {
        if self.is_closed() {
            return;
        }
        self.last_output = now;
        self.parser.feed(bytes);
        self.process();
    }

    /// The driver claimed the domain for this connection: the component is
    /// told `<handshake/>` and stanzas flow. (When the domain is taken the
    /// driver calls [`close`](Self::close) with `Conflict` instead.)
    pub fn claimed(&mut self, now: Millis) {
        let Phase::AwaitClaim { domain } = &self.phase else {
            return;
        };
        let domain = domain.clone();
        tracing::debug!(%domain, "component accepted");
        self.out.write_element(&Element::new(NS, "handshake"), NS);
        self.phase = Phase::Accepted { domain };
        self.handshake_deadline = None;
        self.last_output = now;
        self.process();
    }

    /// Deliver a stanza to the component. The hub's stanzas are
    /// `jabber:client`; written with that as the parent default namespace
    /// they inherit the stream's `jabber:component:accept`.
    pub fn send_stanza_at(&mut self, now: Millis, stanza: &Element) {
        if self.domain().is_none() {
            return;
        }
        self.last_output = now;
        self.out.write_element(stanza, ns::CLIENT);
    }

    /// Close the stream: with a stream error (conflict, system-shutdown, ...)
    /// or, with `None`, by the normal closing handshake.
    pub fn close(&mut self, condition: Option<StreamErrorCondition>) {
        if self.is_closed() {
            return;
        }
        match condition {
            Some(c) => self.stream_error(c, None),
            None => {
                self.ensure_header(None, None);
                self.out.write(STREAM_CLOSE);
                self.out.push(AcceptOutput::Close);
                self.phase = Phase::Closed;
            }
        }
    }

    fn process(&mut self) {
        loop {
            if matches!(self.phase, Phase::Closed | Phase::AwaitClaim { .. }) {
                return;
            }
            match self.parser.next_event() {
                Ok(None) => return,
                Ok(Some(StreamEvent::Open(header))) => self.handle_header(&header),
                Ok(Some(StreamEvent::Close)) => self.close(None),
                Ok(Some(StreamEvent::Stanza(el))) => self.handle_element(el),
                Err(e) => {
                    let cond = StreamErrorCondition::from_name(e.condition());
                    return self.stream_error(cond, Some(&e.to_string()));
                }
            }
        }
    }

    fn handle_header(&mut self, header: &Element) {
        if !matches!(self.phase, Phase::Header) {
            return self.stream_error(StreamErrorCondition::BadFormat, Some("unexpected header"));
        }
        let to = header.attr("to").and_then(|t| Jid::domain_jid(t).ok());
        let known = to.as_ref().and_then(|t| {
            self.cfg
                .components
                .iter()
                .find(|c| c.domain == t.domain())
                .map(|c| c.domain.clone())
        });
        // RFC 6120 §4.9.1.2: our header goes out before any stream error.
        let stream_id = self.entropy.hex_id(16);
        let from = known.clone().or_else(|| to.map(|t| t.domain().to_owned()));
        self.ensure_header(from.as_deref(), Some(&stream_id));
        if header.name != "stream" {
            return self.stream_error(StreamErrorCondition::BadFormat, None);
        }
        if header.ns != ns::STREAM {
            return self.stream_error(StreamErrorCondition::InvalidNamespace, None);
        }
        let Some(domain) = known else {
            return self.stream_error(
                StreamErrorCondition::HostUnknown,
                Some("no component is configured for this name"),
            );
        };
        self.phase = Phase::AwaitHandshake { domain, stream_id };
    }

    fn handle_element(&mut self, el: Element) {
        match &self.phase {
            Phase::AwaitHandshake { .. } => self.handle_handshake(&el),
            Phase::Accepted { .. } => self.handle_stanza(el),
            _ => self.stream_error(StreamErrorCondition::BadFormat, Some("expected header")),
        }
    }

    fn handle_handshake(&mut self, el: &Element) {
        let Phase::AwaitHandshake { domain, stream_id } = &self.phase else {
            return;
        };
        if el.ns == ns::CLIENT {
            // The stream was opened with jabber:client as its content
            // namespace: a client on the component port.
            return self.stream_error(
                StreamErrorCondition::InvalidNamespace,
                Some("component streams are jabber:component:accept"),
            );
        }
        if !el.is(NS, "handshake") {
            // Nothing but the handshake before it succeeded (as RFC 6120
            // §6.4 has it for SASL).
            return self.stream_error(StreamErrorCondition::NotAuthorized, Some("handshake first"));
        }
        let secret = self
            .cfg
            .components
            .iter()
            .find(|c| c.domain == *domain)
            .map(|c| c.secret.as_str())
            .unwrap_or_default();
        let expected = handshake_digest(stream_id, secret);
        let given = el.text().trim().to_ascii_lowercase();
        if secret.is_empty() || !crate::sasl::ct_eq(expected.as_bytes(), given.as_bytes()) {
            tracing::info!(%domain, "component handshake failed");
            return self.stream_error(
                StreamErrorCondition::NotAuthorized,
                Some("the handshake does not match the secret"),
            );
        }
        let domain = domain.clone();
        match Jid::domain_jid(&domain) {
            Ok(jid) => {
                self.out.push(AcceptOutput::Claim(jid));
                self.phase = Phase::AwaitClaim { domain };
            }
            Err(_) => self.stream_error(StreamErrorCondition::InternalServerError, None),
        }
    }

    /// A stanza from an accepted component: `from` must be in its domain
    /// (stamped with the domain when missing), `to` must be there.
    fn handle_stanza(&mut self, mut el: Element) {
        let Phase::Accepted { domain } = &self.phase else {
            return;
        };
        let domain = domain.clone();
        if el.ns != NS && el.ns != ns::CLIENT {
            return self.stream_error(StreamErrorCondition::UnsupportedStanzaType, None);
        }
        into_client_ns(&mut el, NS);
        let Some(kind) = Kind::of(&el) else {
            return self.stream_error(StreamErrorCondition::UnsupportedStanzaType, None);
        };
        match el.attr("from").map(Jid::parse) {
            None => el.set_attr("from", domain.as_str()),
            Some(Ok(from)) if from.domain() == domain => el.set_attr("from", from.to_string()),
            // RFC 6120 §4.9.3.9: like a server sending for a domain it did
            // not authenticate (Prosody closes components the same way).
            Some(_) => {
                return self.stream_error(
                    StreamErrorCondition::InvalidFrom,
                    Some("the component may only send from its own domain"),
                )
            }
        }
        let reject = |this: &mut Self, el: &Element, cond: StanzaError| {
            if !is_error_or_result(el) {
                let reply = error_reply(el, cond, &domain);
                this.out.write_element(&reply, ns::CLIENT);
            }
        };
        match el.attr("to").map(Jid::parse) {
            // A component has no account to stand for "no `to`".
            None => return reject(self, &el, StanzaError::BadRequest),
            Some(Err(_)) => {
                el.remove_attr("to");
                return reject(self, &el, StanzaError::JidMalformed);
            }
            Some(Ok(to)) => el.set_attr("to", to.to_string()),
        }
        if kind == Kind::Iq && !super::server::valid_iq(&el) {
            return reject(self, &el, StanzaError::BadRequest);
        }
        self.out.push(AcceptOutput::Stanza(el));
    }

    /// Our stream header (once): XEP-0114 streams carry no version.
    fn ensure_header(&mut self, from: Option<&str>, id: Option<&str>) {
        if self.header_sent {
            return;
        }
        let mut buf = Vec::with_capacity(256);
        buf.extend_from_slice(b"<?xml version='1.0'?><stream:stream xmlns='");
        buf.extend_from_slice(NS.as_bytes());
        buf.extend_from_slice(b"' xmlns:stream='http://etherx.jabber.org/streams'");
        for (name, value) in [("from", from), ("id", id)] {
            if let Some(v) = value {
                buf.push(b' ');
                buf.extend_from_slice(name.as_bytes());
                buf.extend_from_slice(b"='");
                escape_attr(v, &mut buf);
                buf.push(b'\'');
            }
        }
        buf.push(b'>');
        self.out.write(&buf);
        self.header_sent = true;
    }

    /// Send a stream error and close (RFC 6120 §4.9.1.1).
    fn stream_error(&mut self, cond: StreamErrorCondition, text: Option<&str>) {
        if self.is_closed() {
            return;
        }
        tracing::debug!(condition = %cond, text, "component stream error");
        self.ensure_header(None, None);
        self.out.write_element(&cond.to_element(text), NS);
        self.out.write(STREAM_CLOSE);
        self.out.push(AcceptOutput::Close);
        self.phase = Phase::Closed;
    }
}

#[cfg(test)]
mod tests;
