//! The client side of a c2s stream: STARTTLS, SCRAM (with channel binding
//! when the driver supplies it), resource binding, then stanzas both ways.
//!
//! Used by the examples, the interop tests' helpers and the benchmark tool.
//! For the benchmark tool it also speaks plain TCP even when STARTTLS is
//! offered ([`ClientConfig::starttls`]) and XEP-0077 in-band registration
//! ([`ClientConfig::register_only`]).

use super::error::StreamErrorCondition;
use super::header::{check_header, write_header, STREAM_CLOSE};
use super::output::{OutputQueue, Writes};
use super::sm as sm_ns;
use crate::entropy::Entropy;
use crate::jid::Jid;
use crate::ns;
use crate::sasl::{
    plain_message, ChannelBinding, ChannelBindingType, Mechanism, ScramClient, ScramClientKeys,
};
use crate::time::Millis;
use crate::xml::{Element, Limits, StreamEvent, StreamParser};
use base64::Engine as _;

/// XEP-0077 in-band registration.
const NS_REGISTER: &str = "jabber:iq:register";

/// How a client connects.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// The account, with the resource to request (a bare JID lets the server pick).
    pub jid: Jid,
    /// The password.
    pub password: String,
    /// Refuse to authenticate over an unencrypted stream.
    pub require_tls: bool,
    /// Mechanisms the client may use, in order of preference.
    pub mechanisms: Vec<Mechanism>,
    /// Parser limits for what the server sends.
    pub limits: Limits,
    /// Negotiate STARTTLS when the server offers it (the default). `false`
    /// keeps the stream on plain TCP even when STARTTLS is offered, for
    /// loopback benchmarks against servers where encryption is optional;
    /// it needs `require_tls == false` (else negotiation fails).
    pub starttls: bool,
    /// Allow SASL PLAIN on an unencrypted stream (default `false`; only for
    /// loopback benchmarks, where the password crosses no network).
    pub allow_plain_unencrypted: bool,
    /// XEP-0077: instead of logging in, register the account in-band
    /// (after STARTTLS, before SASL) and close the stream; the outcome is
    /// [`ClientStream::registration`].
    pub register_only: bool,
    /// SCRAM keys cached from an earlier login of this account with this
    /// password ([`ClientStream::scram_keys`]; RFC 5802 §5.1). Used when the
    /// server sends the same salt, iteration count and hash, which saves the
    /// client its PBKDF2 run; otherwise the keys are derived from
    /// `password` as usual. Default `None`.
    pub scram_cache: Option<ScramClientKeys>,
    /// Give up when the stream is not online (or registered) this many ms
    /// after it started.
    pub negotiation_timeout_ms: Millis,
    /// Whitespace keepalive after this long without traffic once online
    /// (RFC 6120 §4.6.1), so NATs keep the mapping and a dead server
    /// surfaces; `None`: never.
    pub keepalive_ms: Option<Millis>,
    /// XEP-0198: enable stream management (acknowledgements, no
    /// resumption) when the server offers it. While stanzas the server has
    /// not acknowledged are outstanding, ask for an acknowledgement this
    /// long after the last request. `None`: do not enable.
    pub ack_request_ms: Option<Millis>,
}

/// XEP-0198 on the client side: counts both ways.
#[derive(Debug, Default)]
struct ClientSm {
    /// Stanzas received from the server (the `h` we acknowledge).
    received: u32,
    /// Stanzas sent since stream management was enabled.
    sent: u32,
    /// The server's last acknowledged count.
    acked: u32,
    /// When we last asked for an acknowledgement.
    requested_at: Option<Millis>,
    /// `<enabled/>` arrived.
    enabled: bool,
}

/// What the client machine asks its driver to do, in order.
#[derive(Debug, Clone, PartialEq)]
pub enum ClientOutput {
    /// Bytes to write to the transport.
    Write(Vec<u8>),
    /// Flush the writes so far, then run the TLS handshake and call
    /// [`ClientStream::tls_established`] with the channel-binding data.
    StartTls,
    /// The stream is online as this full JID (bound).
    Online(Jid),
    /// A stanza from the server.
    Stanza(Element),
    /// Negotiation failed (the text says why); `Close` follows.
    Failed(String),
    /// Flush pending writes and close the transport.
    Close,
}

impl Writes for ClientOutput {
    fn write(bytes: Vec<u8>) -> Self {
        ClientOutput::Write(bytes)
    }

    fn written(&mut self) -> Option<&mut Vec<u8>> {
        match self {
            ClientOutput::Write(buf) => Some(buf),
            _ => None,
        }
    }
}

/// The outcome of an in-band registration (XEP-0077).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Registration {
    /// The server created the account.
    Created,
    /// The server answered `<conflict/>`: the account already exists.
    AlreadyExists,
}

impl ClientConfig {
    /// Defaults: TLS required, every mechanism, strongest first.
    pub fn new(jid: Jid, password: impl Into<String>) -> Self {
        ClientConfig {
            jid,
            password: password.into(),
            require_tls: true,
            mechanisms: Mechanism::SERVER_PREFERENCE.to_vec(),
            // The client trusts its server's tree shapes (a roster or an
            // archive page may be large); only size and depth are bounded.
            limits: Limits {
                max_stanza_bytes: 16 * 1024 * 1024,
                ..Limits::stored()
            },
            starttls: true,
            allow_plain_unencrypted: false,
            register_only: false,
            scram_cache: None,
            negotiation_timeout_ms: 60_000,
            keepalive_ms: Some(60_000),
            ack_request_ms: None,
        }
    }
}

#[derive(Debug)]
enum Phase {
    Header,
    Features,
    AwaitProceed,
    AwaitTls,
    AwaitRegister,
    Sasl(Option<Box<ScramClient>>),
    AwaitBind,
    Online,
    /// Placeholder while an element is being handled (never observed outside).
    Dispatching,
    Closed,
}

/// The client end of one c2s connection.
#[derive(Debug)]
pub struct ClientStream {
    cfg: ClientConfig,
    parser: StreamParser,
    entropy: Entropy,
    out: OutputQueue<ClientOutput>,
    phase: Phase,
    /// Negotiation must be over by then.
    negotiation_deadline: Millis,
    /// When output was last queued (for keepalives).
    last_output: Millis,
    /// The server offered XEP-0198 after authentication.
    sm_offered: bool,
    /// XEP-0198 state once asked for.
    sm: Option<ClientSm>,
    secure: bool,
    bindings: Vec<ChannelBinding>,
    authenticated: bool,
    jid: Option<Jid>,
    registration: Option<Registration>,
    /// The SCRAM keys of the successful authentication.
    scram_keys: Option<ScramClientKeys>,
    /// That authentication used [`ClientConfig::scram_cache`].
    scram_cache_hit: bool,
}

impl ClientStream {
    /// Start a stream; `direct_tls` carries channel bindings when the
    /// transport is already TLS (XEP-0368).
    pub fn new(
        cfg: ClientConfig,
        entropy: Entropy,
        now: Millis,
        direct_tls: Option<Vec<ChannelBinding>>,
    ) -> Self {
        let parser = StreamParser::new(cfg.limits);
        let mut s = ClientStream {
            negotiation_deadline: now.saturating_add(cfg.negotiation_timeout_ms),
            last_output: now,
            sm_offered: false,
            sm: None,
            cfg,
            parser,
            entropy,
            out: OutputQueue::default(),
            phase: Phase::Header,
            secure: direct_tls.is_some(),
            bindings: direct_tls.unwrap_or_default(),
            authenticated: false,
            jid: None,
            registration: None,
            scram_keys: None,
            scram_cache_hit: false,
        };
        s.send_header();
        s
    }

    /// The bound JID once online.
    pub fn jid(&self) -> Option<&Jid> {
        self.jid.as_ref()
    }

    /// True once bound.
    pub fn is_online(&self) -> bool {
        matches!(self.phase, Phase::Online)
    }

    /// The outcome of the in-band registration asked for with
    /// [`ClientConfig::register_only`], once the server answered.
    pub fn registration(&self) -> Option<Registration> {
        self.registration
    }

    /// The SCRAM keys (salt, iteration count, ClientKey, ServerKey) of a
    /// successful SCRAM authentication, once the server's signature checked
    /// out: pass them as [`ClientConfig::scram_cache`] to later logins of
    /// the same account and password. `None` before that or after PLAIN.
    pub fn scram_keys(&self) -> Option<&ScramClientKeys> {
        self.scram_keys.as_ref()
    }

    /// Whether the successful authentication used the keys from
    /// [`ClientConfig::scram_cache`] (so skipped PBKDF2).
    pub fn used_scram_cache(&self) -> bool {
        self.scram_cache_hit
    }

    /// True once closed.
    pub fn is_closed(&self) -> bool {
        matches!(self.phase, Phase::Closed)
    }

    /// Next instruction for the driver.
    pub fn poll_output(&mut self) -> Option<ClientOutput> {
        self.out.pop()
    }

    /// XEP-0198 is on (the server sent `<enabled/>`).
    pub fn sm_enabled(&self) -> bool {
        self.sm.as_ref().is_some_and(|s| s.enabled)
    }

    /// XEP-0198: stanzas sent that the server has not acknowledged yet.
    pub fn unacknowledged(&self) -> u32 {
        self.sm.as_ref().map_or(0, |s| s.sent.wrapping_sub(s.acked))
    }

    /// When [`ClientStream::handle_timeout`] is due: the negotiation
    /// deadline, then keepalives and acknowledgement requests once online.
    pub fn poll_timeout(&self) -> Option<Millis> {
        match self.phase {
            Phase::Closed => None,
            Phase::Online => {
                let keepalive = self
                    .cfg
                    .keepalive_ms
                    .map(|k| self.last_output.saturating_add(k));
                let ack = self.ack_due();
                keepalive.into_iter().chain(ack).min()
            }
            _ => Some(self.negotiation_deadline),
        }
    }

    /// When to ask for an acknowledgement, if stanzas are outstanding.
    fn ack_due(&self) -> Option<Millis> {
        let every = self.cfg.ack_request_ms?;
        let sm = self.sm.as_ref().filter(|s| s.enabled)?;
        if sm.sent == sm.acked {
            return None;
        }
        Some(
            sm.requested_at
                .unwrap_or(self.last_output)
                .saturating_add(every),
        )
    }

    /// Time passed: give up on a negotiation that took too long, or keep
    /// an idle stream alive with a space.
    pub fn handle_timeout(&mut self, now: Millis) {
        match self.phase {
            Phase::Closed => {}
            Phase::Online => {
                if self.ack_due().is_some_and(|at| now >= at) {
                    self.last_output = now;
                    if let Some(sm) = self.sm.as_mut() {
                        sm.requested_at = Some(now);
                    }
                    self.out
                        .write_element(&Element::new(sm_ns::NS, "r"), ns::CLIENT);
                }
                let due = self
                    .cfg
                    .keepalive_ms
                    .is_some_and(|k| now >= self.last_output.saturating_add(k));
                if due {
                    self.last_output = now;
                    self.out.write(b" ");
                }
            }
            _ if now >= self.negotiation_deadline => {
                self.fail("the server did not complete the negotiation in time")
            }
            _ => {}
        }
    }

    /// Bytes from the server.
    pub fn handle_input(&mut self, now: Millis, bytes: &[u8]) {
        // Traffic: an idle stream is one that neither reads nor writes.
        self.last_output = now;
        if matches!(self.phase, Phase::Closed | Phase::AwaitTls) {
            return;
        }
        self.parser.feed(bytes);
        loop {
            if matches!(self.phase, Phase::Closed | Phase::AwaitTls) {
                return;
            }
            match self.parser.next_event() {
                Ok(None) => return,
                Ok(Some(StreamEvent::Open(h))) => {
                    if let Err(c) = check_header(&h) {
                        return self.fail(&format!("bad stream header from server: {c}"));
                    }
                    self.phase = match self.phase {
                        Phase::Header => Phase::Features,
                        _ => return self.fail("unexpected stream header"),
                    };
                }
                Ok(Some(StreamEvent::Close)) => {
                    self.out.write(STREAM_CLOSE);
                    self.out.push(ClientOutput::Close);
                    self.phase = Phase::Closed;
                }
                Ok(Some(StreamEvent::Stanza(el))) => self.handle_element(el),
                Err(e) => {
                    let cond = StreamErrorCondition::from_name(e.condition());
                    self.out.write_element(&cond.to_element(None), ns::CLIENT);
                    return self.fail(&format!("server sent bad XML: {e}"));
                }
            }
        }
    }

    /// The TLS handshake the machine asked for is done.
    pub fn tls_established(&mut self, now: Millis, bindings: Vec<ChannelBinding>) {
        if !matches!(self.phase, Phase::AwaitTls) {
            return;
        }
        self.last_output = now;
        self.secure = true;
        self.bindings = bindings;
        self.parser.clear();
        self.phase = Phase::Header;
        self.send_header();
    }

    /// Send a stanza once online (`jabber:client` namespace).
    pub fn send_stanza(&mut self, now: Millis, stanza: &Element) {
        if self.is_online() {
            self.last_output = now;
            self.count_sent(1);
            self.out.write_element(stanza, ns::CLIENT);
        }
    }

    /// XEP-0198: `n` more stanzas went out.
    fn count_sent(&mut self, n: u32) {
        if let Some(sm) = self.sm.as_mut().filter(|s| s.enabled) {
            sm.sent = sm.sent.wrapping_add(n);
        }
    }

    /// Send stanza bytes the caller serialized itself, once online: for load
    /// generators that format millions of identical stanzas without building
    /// trees. The caller guarantees one or more complete, well-formed
    /// stanzas in the `jabber:client` namespace with escaped attribute values.
    /// Not counted for XEP-0198 (the machine cannot tell how many stanzas
    /// the bytes hold): use [`ClientStream::send_stanza`] on a stream with
    /// [`ClientConfig::ack_request_ms`].
    pub fn send_raw(&mut self, now: Millis, stanza: &[u8]) {
        if self.is_online() {
            self.last_output = now;
            self.out.write(stanza);
        }
    }

    /// Close the stream gracefully.
    pub fn close(&mut self) {
        if !self.is_closed() {
            self.out.write(STREAM_CLOSE);
            self.out.push(ClientOutput::Close);
            self.phase = Phase::Closed;
        }
    }

    fn send_header(&mut self) {
        let mut buf = Vec::with_capacity(256);
        let domain = self.cfg.jid.domain().to_owned();
        let from = self.cfg.jid.bare_str();
        write_header(&mut buf, ns::CLIENT, Some(&from), Some(&domain), None);
        self.out.write(&buf);
    }

    fn fail(&mut self, why: &str) {
        if self.is_closed() {
            return;
        }
        self.out.push(ClientOutput::Failed(why.to_owned()));
        self.out.write(STREAM_CLOSE);
        self.out.push(ClientOutput::Close);
        self.phase = Phase::Closed;
    }

    fn handle_element(&mut self, el: Element) {
        if el.is(ns::STREAM, "error") {
            let cond = StreamErrorCondition::from_element(&el);
            return self.fail(&format!("stream error: {cond}"));
        }
        match std::mem::replace(&mut self.phase, Phase::Dispatching) {
            Phase::Features if el.is(ns::STREAM, "features") => self.handle_features(&el),
            Phase::AwaitProceed if el.is(ns::TLS, "proceed") => {
                self.out.push(ClientOutput::StartTls);
                self.phase = Phase::AwaitTls;
            }
            Phase::AwaitRegister if el.name == "iq" => self.handle_register(&el),
            Phase::Sasl(scram) if el.ns == ns::SASL => self.handle_sasl(scram, &el),
            Phase::AwaitBind if el.name == "iq" => self.handle_bind(&el),
            Phase::Online if el.ns == sm_ns::NS => {
                self.phase = Phase::Online;
                self.handle_sm(&el);
            }
            Phase::Online => {
                self.phase = Phase::Online;
                if let Some(sm) = self.sm.as_mut().filter(|s| s.enabled) {
                    sm.received = sm.received.wrapping_add(1);
                }
                self.out.push(ClientOutput::Stanza(el));
            }
            _ => self.fail(&format!("unexpected <{}/> from server", el.name)),
        }
    }

    /// XEP-0198 nonzas from the server.
    fn handle_sm(&mut self, el: &Element) {
        match el.name.as_str() {
            "enabled" => {
                if let Some(sm) = self.sm.as_mut() {
                    sm.enabled = true;
                }
            }
            // Not offered after all: carry on without.
            "failed" => self.sm = None,
            "r" => {
                let h = self.sm.as_ref().filter(|s| s.enabled).map(|s| s.received);
                if let Some(h) = h {
                    let a = Element::new(sm_ns::NS, "a").with_attr("h", h.to_string());
                    self.out.write_element(&a, ns::CLIENT);
                }
            }
            "a" => {
                let h = el.attr("h").and_then(|h| h.parse::<u32>().ok());
                if let (Some(h), Some(sm)) = (h, self.sm.as_mut()) {
                    // Only forward: an `h` beyond what was sent is the
                    // server's error (XEP-0198 §4), not a reason to count
                    // backwards.
                    if h.wrapping_sub(sm.acked) <= sm.sent.wrapping_sub(sm.acked) {
                        sm.acked = h;
                    }
                    sm.requested_at = None;
                }
            }
            _ => {}
        }
    }

    fn handle_features(&mut self, f: &Element) {
        if self.authenticated {
            self.sm_offered = f.child(sm_ns::NS, "sm").is_some();
            if f.child(ns::BIND, "bind").is_none() {
                return self.fail("server offers no resource binding");
            }
            let mut bind = Element::new(ns::BIND, "bind");
            if let Some(r) = self.cfg.jid.resource() {
                bind = bind.with_child(Element::new(ns::BIND, "resource").with_text(r));
            }
            let iq = Element::new(ns::CLIENT, "iq")
                .with_attr("type", "set")
                .with_attr("id", "bind")
                .with_child(bind);
            self.out.write_element(&iq, ns::CLIENT);
            self.phase = Phase::AwaitBind;
            return;
        }
        if !self.secure && self.cfg.starttls && f.child(ns::TLS, "starttls").is_some() {
            self.out
                .write_element(&Element::new(ns::TLS, "starttls"), ns::CLIENT);
            self.phase = Phase::AwaitProceed;
            return;
        }
        if !self.secure && self.cfg.require_tls {
            return self.fail(if self.cfg.starttls {
                "server offers no TLS and the client requires it"
            } else {
                "STARTTLS is disabled but the client requires TLS"
            });
        }
        if self.cfg.register_only {
            return self.send_registration();
        }
        let offered: Vec<String> = f
            .child(ns::SASL, "mechanisms")
            .map(|m| m.elements().map(Element::text).collect())
            .unwrap_or_default();
        let cb_types: Vec<String> = f
            .child(ns::SASL_CB, "sasl-channel-binding")
            .map(|c| {
                c.elements()
                    .filter_map(|e| e.attr("type").map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default();
        let binding = self.choose_binding(&cb_types);
        let mech = self.cfg.mechanisms.iter().copied().find(|m| {
            offered.iter().any(|o| o == m.name())
                && (!m.is_plus() || binding.is_some())
                && (*m != Mechanism::Plain || self.secure || self.cfg.allow_plain_unencrypted)
        });
        let Some(mech) = mech else {
            return self.fail("no common SASL mechanism");
        };
        let username = self.cfg.jid.local().unwrap_or_default().to_owned();
        let (payload, scram) = if mech == Mechanism::Plain {
            (plain_message(None, &username, &self.cfg.password), None)
        } else {
            let nonce = self.entropy.bytes(24);
            let b = if mech.is_plus() { binding } else { None };
            match ScramClient::new(
                mech,
                &username,
                &self.cfg.password,
                &nonce,
                b,
                // "y" (RFC 5802 §6) only when this client would have used a
                // -PLUS mechanism; a client configured without them sends
                // "n", or a server offering -PLUS would see a downgrade.
                !self.bindings.is_empty() && self.cfg.mechanisms.iter().any(|m| m.is_plus()),
            ) {
                Ok((c, first)) => {
                    let c = match self.cfg.scram_cache.clone() {
                        Some(keys) => c.with_cached_keys(keys),
                        None => c,
                    };
                    (first, Some(Box::new(c)))
                }
                Err(e) => return self.fail(&format!("SASL: {e}")),
            }
        };
        let auth = Element::new(ns::SASL, "auth")
            .with_attr("mechanism", mech.name())
            .with_text(b64(&payload));
        self.out.write_element(&auth, ns::CLIENT);
        self.phase = Phase::Sasl(scram);
    }

    /// XEP-0077 §3.1: `<query xmlns='jabber:iq:register'>` with the
    /// username and password, straight away (no form fetch first).
    fn send_registration(&mut self) {
        let Some(user) = self.cfg.jid.local().map(str::to_owned) else {
            return self.fail("registration needs a JID with a localpart");
        };
        let query = Element::new(NS_REGISTER, "query")
            .with_child(Element::new(NS_REGISTER, "username").with_text(user))
            .with_child(Element::new(NS_REGISTER, "password").with_text(self.cfg.password.clone()));
        let iq = Element::new(ns::CLIENT, "iq")
            .with_attr("type", "set")
            .with_attr("id", "reg1")
            .with_child(query);
        self.out.write_element(&iq, ns::CLIENT);
        self.phase = Phase::AwaitRegister;
    }

    fn handle_register(&mut self, iq: &Element) {
        match iq.attr("type") {
            Some("result") => self.registration = Some(Registration::Created),
            Some("error") => {
                let cond = iq
                    .child(ns::CLIENT, "error")
                    .or_else(|| iq.elements().find(|e| e.name == "error"))
                    .and_then(|e| e.elements().find(|c| c.ns == ns::STANZA_ERRORS))
                    .map(|c| c.name.clone())
                    .unwrap_or_else(|| "undefined-condition".into());
                if cond != "conflict" {
                    return self.fail(&format!("registration refused: {cond}"));
                }
                self.registration = Some(Registration::AlreadyExists);
            }
            _ => return self.fail("unexpected answer to the registration request"),
        }
        self.close();
    }

    /// The channel binding to use: a type the server advertised (XEP-0440),
    /// else tls-exporter, else tls-server-end-point.
    fn choose_binding(&self, advertised: &[String]) -> Option<ChannelBinding> {
        let pick = |kind: ChannelBindingType| self.bindings.iter().find(|b| b.kind == kind);
        if !advertised.is_empty() {
            return self
                .bindings
                .iter()
                .find(|b| advertised.iter().any(|a| a == b.kind.name()))
                .cloned();
        }
        pick(ChannelBindingType::TlsExporter)
            .or_else(|| pick(ChannelBindingType::TlsServerEndPoint))
            .cloned()
    }

    fn handle_sasl(&mut self, mut scram: Option<Box<ScramClient>>, el: &Element) {
        let payload = match decode(&el.text()) {
            Ok(p) => p,
            Err(_) => return self.fail("server sent bad base64"),
        };
        match el.name.as_str() {
            "challenge" => {
                let Some(client) = scram.as_mut() else {
                    return self.fail("unexpected SASL challenge");
                };
                match client.handle_server_first(&payload) {
                    Ok(fin) => {
                        let r = Element::new(ns::SASL, "response").with_text(b64(&fin));
                        self.out.write_element(&r, ns::CLIENT);
                        self.phase = Phase::Sasl(scram);
                    }
                    Err(e) => self.fail(&format!("SASL: {e}")),
                }
            }
            "success" => {
                if let Some(client) = &scram {
                    if let Err(e) = client.verify_server_final(&payload) {
                        return self.fail(&format!("server signature invalid: {e}"));
                    }
                    self.scram_keys = client.keys().cloned();
                    self.scram_cache_hit = client.used_cached_keys();
                }
                self.authenticated = true;
                self.parser.restart();
                self.phase = Phase::Header;
                self.send_header();
            }
            "failure" => {
                let cond = el
                    .first_element()
                    .map(|c| c.name.clone())
                    .unwrap_or_else(|| "unknown".into());
                self.fail(&format!("authentication failed: {cond}"));
            }
            other => self.fail(&format!("unexpected SASL element {other}")),
        }
    }

    fn handle_bind(&mut self, iq: &Element) {
        if iq.attr("type") != Some("result") {
            return self.fail("resource binding refused");
        }
        let jid = iq
            .child(ns::BIND, "bind")
            .and_then(|b| b.child_text(ns::BIND, "jid"))
            .and_then(|j| Jid::parse(&j).ok());
        match jid {
            Some(j) => {
                self.jid = Some(j.clone());
                self.phase = Phase::Online;
                self.out.push(ClientOutput::Online(j));
                if self.sm_offered && self.cfg.ack_request_ms.is_some() {
                    self.sm = Some(ClientSm::default());
                    self.out
                        .write_element(&Element::new(sm_ns::NS, "enable"), ns::CLIENT);
                }
            }
            None => self.fail("bind result without a valid JID"),
        }
    }
}

fn b64(data: &[u8]) -> String {
    if data.is_empty() {
        "=".to_owned()
    } else {
        base64::engine::general_purpose::STANDARD.encode(data)
    }
}

fn decode(text: &str) -> Result<Vec<u8>, base64::DecodeError> {
    let t = text.trim();
    if t.is_empty() || t == "=" {
        Ok(Vec::new())
    } else {
        base64::engine::general_purpose::STANDARD.decode(t)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hub::HubConfig;
    use crate::sim::{ClientEvent, World};
    use crate::stream::ServerStreamConfig;

    fn login(w: &mut World, cfg: ClientConfig) -> (bool, Option<ScramClientKeys>, bool) {
        let id = w.connect_client(cfg);
        let online = w
            .client_events(id)
            .iter()
            .any(|e| matches!(e, ClientEvent::Online(_)));
        let c = w.client(id).expect("client");
        let out = (online, c.scram_keys().cloned(), c.used_scram_cache());
        w.close_client(id);
        out
    }

    #[test]
    fn scram_keys_are_exposed_and_reused() {
        let mut w = World::new(ServerStreamConfig::default(), HubConfig::default());
        assert!(w.add_user("alice@localhost", "alice-pw"));
        let jid = Jid::parse("alice@localhost").expect("jid");
        for mech in [Mechanism::ScramSha256Plus, Mechanism::ScramSha1] {
            let mut cfg = ClientConfig::new(jid.clone(), "alice-pw");
            cfg.mechanisms = vec![mech];
            let (online, keys, hit) = login(&mut w, cfg.clone());
            assert!(online && !hit, "{mech}");
            let keys = keys.expect("keys after SCRAM");

            // Cached keys log in even with a password that would not.
            cfg.password = "not-the-password".into();
            cfg.scram_cache = Some(keys.clone());
            let (online, again, hit) = login(&mut w, cfg.clone());
            assert!(online && hit, "{mech}");
            assert_eq!(again, Some(keys.clone()));

            // Keys for another salt are ignored: the password decides.
            let mut stale = keys;
            stale.salt.push(0);
            cfg.scram_cache = Some(stale);
            let (online, _, hit) = login(&mut w, cfg.clone());
            assert!(!online && !hit, "{mech}");
            cfg.password = "alice-pw".into();
            let (online, _, hit) = login(&mut w, cfg);
            assert!(online && !hit, "{mech}");
        }
    }

    /// Negotiation has a deadline; online, an idle stream sends a space.
    #[test]
    fn a_stalled_negotiation_fails_and_an_idle_stream_keeps_alive() {
        let jid = Jid::parse("alice@localhost").expect("jid");
        let mut stalled = ClientStream::new(
            ClientConfig::new(jid.clone(), "pw"),
            Entropy::from_u64(1),
            1_000,
            None,
        );
        while stalled.poll_output().is_some() {}
        assert_eq!(stalled.poll_timeout(), Some(61_000));
        stalled.handle_timeout(60_999);
        assert!(stalled.poll_output().is_none(), "not yet");
        stalled.handle_timeout(61_000);
        let out: Vec<ClientOutput> = std::iter::from_fn(|| stalled.poll_output()).collect();
        assert!(
            matches!(out.first(), Some(ClientOutput::Failed(_))),
            "{out:?}"
        );
        assert_eq!(out.last(), Some(&ClientOutput::Close));
        assert_eq!(stalled.poll_timeout(), None);

        let mut w = World::new(ServerStreamConfig::default(), HubConfig::default());
        assert!(w.add_user("alice@localhost", "alice-pw"));
        let id = w.connect_client(ClientConfig::new(jid, "alice-pw"));
        let c = w.client_mut(id).expect("client");
        assert!(c.is_online());
        let due = c.poll_timeout().expect("a keepalive timer");
        c.send_stanza(due - 1, &Element::new(ns::CLIENT, "presence"));
        while c.poll_output().is_some() {}
        assert_eq!(c.poll_timeout(), Some(due - 1 + 60_000), "output moves it");
        c.handle_timeout(due - 1 + 60_000);
        assert_eq!(c.poll_output(), Some(ClientOutput::Write(b" ".to_vec())));
    }

    /// XEP-0198 on the client: enabled when offered, the server's `<r/>`
    /// answered with what was received, outstanding stanzas asked about
    /// on the timer, the server's `<a/>` counted.
    #[test]
    fn stream_management_counts_and_asks_for_acknowledgements() {
        let mut w = World::new(ServerStreamConfig::default(), HubConfig::default());
        assert!(w.add_user("alice@localhost", "alice-pw"));
        let mut cfg = ClientConfig::new(Jid::parse("alice@localhost/a").expect("jid"), "alice-pw");
        cfg.ack_request_ms = Some(30_000);
        let id = w.connect_client(cfg);
        w.pump();
        assert!(w.client(id).is_some_and(ClientStream::sm_enabled));
        let note = Element::new(ns::CLIENT, "message")
            .with_attr("to", "alice@localhost")
            .with_child(Element::new(ns::CLIENT, "body").with_text("note to self"));
        w.client_send_stanza(id, &note);
        w.pump();
        let c = w.client_mut(id).expect("client");
        assert_eq!(c.unacknowledged(), 1, "sent, not acknowledged yet");
        let due = c.poll_timeout().expect("an acknowledgement request is due");
        c.handle_timeout(due);
        w.pump();
        assert_eq!(
            w.client(id).map(ClientStream::unacknowledged),
            Some(0),
            "the server's <a/> answered the <r/>"
        );
    }

    #[test]
    fn plain_has_no_scram_keys() {
        let mut w = World::new(ServerStreamConfig::default(), HubConfig::default());
        assert!(w.add_user("alice@localhost", "alice-pw"));
        let mut cfg = ClientConfig::new(Jid::parse("alice@localhost").expect("jid"), "alice-pw");
        cfg.mechanisms = vec![Mechanism::Plain];
        let (online, keys, hit) = login(&mut w, cfg);
        assert!(online && keys.is_none() && !hit);
    }
}
