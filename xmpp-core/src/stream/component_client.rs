//! The component's side of an external component stream (XEP-0114): the
//! program that serves a domain (a gateway, a bot platform, a push app
//! server) connecting to a server's component port.
//!
//! It opens the stream for its domain, proves the shared secret with
//! `<handshake>` (the SHA-1 of the server's stream id and the secret),
//! and once the server answers `<handshake/>` exchanges stanzas in
//! `jabber:component:accept`. Like the server's machines it never touches
//! the network: the driver feeds bytes and time and polls
//! [`ComponentOutput`]s, which are this machine's own (it shares nothing
//! with the c2s outputs but writing and closing).

use super::component::{handshake_digest, NS};
use super::error::StreamErrorCondition;
use super::header::STREAM_CLOSE;
use crate::ns;
use crate::time::Millis;
use crate::xml::{escape_attr, Element, Limits, StreamEvent, StreamParser};
use std::collections::VecDeque;

/// Settings of a component connection.
#[derive(Clone, PartialEq, Eq)]
pub struct ComponentClientConfig {
    /// The domain the component serves (`echo.example.org`).
    pub domain: String,
    /// The secret shared with the server.
    pub secret: String,
    /// Parser limits for what the server sends.
    pub limits: Limits,
    /// Give up when the server has not accepted the handshake after this
    /// many ms.
    pub handshake_timeout_ms: Millis,
    /// Whitespace keepalive after this long without output (RFC 6120
    /// §4.6.1), so a dead TCP peer surfaces; `None`: never.
    pub keepalive_ms: Option<Millis>,
}

impl ComponentClientConfig {
    /// A component serving `domain` with `secret`, default limits and
    /// timers.
    pub fn new(domain: impl Into<String>, secret: impl Into<String>) -> Self {
        ComponentClientConfig {
            domain: domain.into(),
            secret: secret.into(),
            limits: Limits::default(),
            handshake_timeout_ms: 30_000,
            keepalive_ms: Some(60_000),
        }
    }
}

impl std::fmt::Debug for ComponentClientConfig {
    /// The secret never reaches a log.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ComponentClientConfig")
            .field("domain", &self.domain)
            .field("handshake_timeout_ms", &self.handshake_timeout_ms)
            .field("keepalive_ms", &self.keepalive_ms)
            .finish_non_exhaustive()
    }
}

/// What the component machine asks its driver to do, in order.
#[derive(Debug, Clone, PartialEq)]
pub enum ComponentOutput {
    /// Bytes to write to the transport.
    Write(Vec<u8>),
    /// The server accepted the handshake: stanzas may flow.
    Connected,
    /// A stanza from the server, addressed to the component's domain.
    Stanza(Element),
    /// The stream ended: with the server's (or this side's) stream error
    /// condition, or gracefully. Close the transport after the writes.
    Closed(Option<StreamErrorCondition>),
}

/// Why a stanza could not be sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// The handshake has not been accepted yet, or the stream ended.
    #[error("the component stream is not connected")]
    NotConnected,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Phase {
    /// Our header is out; waiting for the server's (and its stream id).
    AwaitHeader,
    /// `<handshake>` sent; waiting for the server's `<handshake/>`.
    AwaitHandshake,
    Connected,
    Closed,
}

/// The component end of one XEP-0114 connection.
#[derive(Debug)]
pub struct ComponentClient {
    cfg: ComponentClientConfig,
    parser: StreamParser,
    out: VecDeque<ComponentOutput>,
    phase: Phase,
    handshake_deadline: Millis,
    /// When output was last queued (for keepalives).
    last_output: Millis,
}

impl ComponentClient {
    /// A connection starting now: the stream header for the domain is the
    /// first output.
    pub fn new(cfg: ComponentClientConfig, now: Millis) -> Self {
        let mut header = format!(
            "<?xml version='1.0'?><stream:stream xmlns='{NS}' xmlns:stream='{}' to='",
            ns::STREAM
        )
        .into_bytes();
        escape_attr(&cfg.domain, &mut header);
        header.extend_from_slice(b"'>");
        let mut c = ComponentClient {
            parser: StreamParser::new(cfg.limits),
            handshake_deadline: now.saturating_add(cfg.handshake_timeout_ms),
            cfg,
            out: VecDeque::new(),
            phase: Phase::AwaitHeader,
            last_output: now,
        };
        c.write(now, header);
        c
    }

    /// The handshake was accepted and the stream has not ended.
    pub fn is_connected(&self) -> bool {
        self.phase == Phase::Connected
    }

    /// The stream ended.
    pub fn is_closed(&self) -> bool {
        self.phase == Phase::Closed
    }

    /// Next instruction for the driver.
    pub fn poll_output(&mut self) -> Option<ComponentOutput> {
        self.out.pop_front()
    }

    /// When [`ComponentClient::handle_timeout`] is due: the handshake's
    /// deadline, then keepalives.
    pub fn poll_timeout(&self) -> Option<Millis> {
        match self.phase {
            Phase::AwaitHeader | Phase::AwaitHandshake => Some(self.handshake_deadline),
            Phase::Connected => self
                .cfg
                .keepalive_ms
                .map(|k| self.last_output.saturating_add(k)),
            Phase::Closed => None,
        }
    }

    /// Time passed: give up on a handshake the server never answered, or
    /// send a whitespace keepalive.
    pub fn handle_timeout(&mut self, now: Millis) {
        match self.phase {
            Phase::AwaitHeader | Phase::AwaitHandshake if now >= self.handshake_deadline => {
                self.end(now, Some(StreamErrorCondition::ConnectionTimeout));
            }
            Phase::Connected => {
                let due = self
                    .cfg
                    .keepalive_ms
                    .is_some_and(|k| now >= self.last_output.saturating_add(k));
                if due {
                    self.write(now, b" ".to_vec());
                }
            }
            _ => {}
        }
    }

    /// Bytes from the server.
    pub fn handle_input(&mut self, now: Millis, bytes: &[u8]) {
        if self.phase == Phase::Closed {
            return;
        }
        self.parser.feed(bytes);
        loop {
            match self.parser.next_event() {
                Ok(Some(event)) => self.event(now, event),
                Ok(None) => break,
                Err(e) => {
                    tracing::debug!(error = %e, "component stream: bad XML from the server");
                    self.fail(now, StreamErrorCondition::NotWellFormed);
                }
            }
            if self.phase == Phase::Closed {
                break;
            }
        }
    }

    /// Send a stanza (in `jabber:component:accept`; its `from` must be
    /// under the component's domain, which the server checks).
    pub fn send_stanza(&mut self, now: Millis, stanza: &Element) -> Result<(), SendError> {
        if self.phase != Phase::Connected {
            return Err(SendError::NotConnected);
        }
        let mut xml = Vec::new();
        stanza.write_to(&mut xml, NS);
        self.write(now, xml);
        Ok(())
    }

    /// End the stream gracefully.
    pub fn close(&mut self, now: Millis) {
        if self.phase != Phase::Closed {
            self.end(now, None);
        }
    }

    fn event(&mut self, now: Millis, event: StreamEvent) {
        match (event, &self.phase) {
            (StreamEvent::Open(header), Phase::AwaitHeader) => {
                let Some(id) = header.attr("id").filter(|id| !id.is_empty()) else {
                    return self.fail(now, StreamErrorCondition::InvalidXml);
                };
                let digest = handshake_digest(id, &self.cfg.secret);
                self.write(now, format!("<handshake>{digest}</handshake>").into_bytes());
                self.phase = Phase::AwaitHandshake;
            }
            (StreamEvent::Stanza(e), _) if e.is(ns::STREAM, "error") => {
                let condition = StreamErrorCondition::from_element(&e);
                tracing::info!(domain = %self.cfg.domain, %condition, "the server ended the component stream");
                self.end(now, Some(condition));
            }
            (StreamEvent::Stanza(e), Phase::AwaitHandshake) if e.is(NS, "handshake") => {
                self.phase = Phase::Connected;
                self.out.push_back(ComponentOutput::Connected);
            }
            (StreamEvent::Stanza(e), Phase::Connected) => {
                self.out.push_back(ComponentOutput::Stanza(e));
            }
            (StreamEvent::Close, _) => self.end(now, None),
            // A second header, or a stanza before the handshake is
            // accepted: the server is not speaking XEP-0114 to us.
            _ => self.fail(now, StreamErrorCondition::UnsupportedStanzaType),
        }
    }

    /// End with a stream error of ours.
    fn fail(&mut self, now: Millis, condition: StreamErrorCondition) {
        if self.phase == Phase::Closed {
            return;
        }
        let mut xml = Vec::new();
        condition.to_element(None).write_to(&mut xml, NS);
        self.write(now, xml);
        self.end(now, Some(condition));
    }

    fn end(&mut self, now: Millis, condition: Option<StreamErrorCondition>) {
        self.write(now, STREAM_CLOSE.to_vec());
        self.phase = Phase::Closed;
        self.out.push_back(ComponentOutput::Closed(condition));
    }

    fn write(&mut self, now: Millis, bytes: Vec<u8>) {
        self.last_output = now;
        self.out.push_back(ComponentOutput::Write(bytes));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stream::{AcceptOutput, ComponentSecret, ComponentStream, ComponentStreamConfig};
    use crate::Entropy;
    use std::sync::Arc;

    fn writes(c: &mut ComponentClient) -> (Vec<u8>, Vec<ComponentOutput>) {
        let (mut bytes, mut rest) = (Vec::new(), Vec::new());
        while let Some(o) = c.poll_output() {
            match o {
                ComponentOutput::Write(b) => bytes.extend(b),
                other => rest.push(other),
            }
        }
        (bytes, rest)
    }

    /// The component machine against the server's: handshake, then a
    /// stanza each way.
    #[test]
    fn handshake_with_the_server_machine_then_stanzas_flow() {
        let cfg = ComponentStreamConfig {
            components: vec![ComponentSecret {
                domain: "echo.localhost".into(),
                secret: "s3cret".into(),
            }],
            ..ComponentStreamConfig::default()
        };
        let mut server = ComponentStream::new(Arc::new(cfg), Entropy::from_u64(1), 0);
        let mut client =
            ComponentClient::new(ComponentClientConfig::new("echo.localhost", "s3cret"), 0);
        let mut connected = false;
        for round in 0..6 {
            let (bytes, events) = writes(&mut client);
            connected |= events.contains(&ComponentOutput::Connected);
            server.handle_input(round, &bytes);
            let mut to_client = Vec::new();
            while let Some(o) = server.poll_output() {
                match o {
                    AcceptOutput::Write(b) => to_client.extend(b),
                    AcceptOutput::Claim(_) => server.claimed(round),
                    _ => {}
                }
            }
            client.handle_input(round, &to_client);
        }
        let (_, events) = writes(&mut client);
        connected |= events.contains(&ComponentOutput::Connected);
        assert!(connected && client.is_connected());
        let reply = Element::new(NS, "message")
            .with_attr("from", "echo.localhost")
            .with_attr("to", "alice@localhost/desk");
        assert_eq!(client.send_stanza(7, &reply), Ok(()));
        let (bytes, _) = writes(&mut client);
        server.handle_input(7, &bytes);
        let routed = std::iter::from_fn(|| server.poll_output()).any(
            |o| matches!(o, AcceptOutput::Stanza(s) if s.attr("to") == Some("alice@localhost/desk")),
        );
        assert!(routed, "the server takes the component's stanza");
    }

    #[test]
    fn a_refused_secret_and_a_silent_server_end_the_stream() {
        let mut c = ComponentClient::new(ComponentClientConfig::new("echo.localhost", "x"), 0);
        assert_eq!(
            c.send_stanza(0, &Element::new(NS, "message")),
            Err(SendError::NotConnected)
        );
        let _ = writes(&mut c);
        c.handle_input(
            1,
            b"<stream:stream xmlns='jabber:component:accept' \
              xmlns:stream='http://etherx.jabber.org/streams' id='abc'>\
              <stream:error><not-authorized xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error>",
        );
        let (_, events) = writes(&mut c);
        assert_eq!(
            events,
            vec![ComponentOutput::Closed(Some(
                StreamErrorCondition::NotAuthorized
            ))]
        );
        let mut silent = ComponentClient::new(ComponentClientConfig::new("echo.localhost", "x"), 0);
        assert_eq!(silent.poll_timeout(), Some(30_000));
        silent.handle_timeout(30_000);
        let (_, events) = writes(&mut silent);
        assert_eq!(
            events,
            vec![ComponentOutput::Closed(Some(
                StreamErrorCondition::ConnectionTimeout
            ))]
        );
        assert_eq!(silent.poll_timeout(), None);
    }
}
