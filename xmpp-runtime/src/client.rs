//! An async client over real sockets, driving xmpp-core's `ClientStream`:
//! used by the examples, `vireo config test` and the benchmark tool
//! (`vireo-bench`), which also uses the plain-TCP mode ([`TlsMode::None`]),
//! batched reads and writes ([`Client::recv_batch`], [`Client::queue_raw`],
//! [`Client::flush`]) and XEP-0077 registration ([`register`]).
//!
//! [`Client::connect`] and friends accept any server certificate (servers
//! you run yourself, self-signed); [`Client::connect_verified`] checks it
//! against the roots an embedder trusts.

use crate::clock::{entropy, now_ms};
use crate::tls::{
    client_channel_bindings, insecure_client_config, verifying_client_config, TlsError,
};
use futures_rustls::client::TlsStream;
use futures_rustls::TlsConnector;
use rustls::pki_types::ServerName;
use rustls::RootCertStore;
use smol::io::{AsyncReadExt, AsyncWriteExt};
use smol::net::TcpStream;
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use xmpp_core::jid::Jid;
use xmpp_core::sasl::ScramClientKeys;
use xmpp_core::stream::client::Registration;
use xmpp_core::stream::{ClientConfig, ClientOutput, ClientStream};
use xmpp_core::Element;

/// Why a client operation failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// Socket error.
    #[error("I/O: {0}")]
    Io(#[from] std::io::Error),
    /// The TLS handshake failed: with [`Client::connect_verified`], a
    /// certificate the trusted roots do not vouch for, or not for the
    /// server's domain (`InvalidCertificate`).
    #[error("TLS: {0}")]
    Tls(#[source] rustls::Error),
    /// The TLS client configuration could not be built (no trusted root).
    #[error("TLS setup: {0}")]
    TlsSetup(#[from] TlsError),
    /// The stream negotiation failed (auth, bind, stream error).
    #[error("{0}")]
    Failed(String),
    /// The server closed the stream.
    #[error("stream closed by server")]
    Closed,
    /// Nothing arrived in time.
    #[error("timed out")]
    Timeout,
}

enum Io {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
    Gone,
}

impl Io {
    async fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Io::Plain(s) => s.read(buf).await,
            Io::Tls(s) => s.read(buf).await,
            Io::Gone => Ok(0),
        }
    }
    async fn write_all(&mut self, b: &[u8]) -> std::io::Result<()> {
        match self {
            Io::Plain(s) => s.write_all(b).await,
            Io::Tls(s) => {
                s.write_all(b).await?;
                s.flush().await
            }
            Io::Gone => Err(std::io::ErrorKind::NotConnected.into()),
        }
    }
}

/// How the client secures the TCP connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsMode {
    /// Plain TCP, never STARTTLS even when offered (loopback benchmarks).
    None,
    /// STARTTLS (RFC 6120 §5), required.
    StartTls,
    /// TLS from the first byte (XEP-0368).
    Direct,
}

impl TlsMode {
    /// The name used on command lines: `none`, `starttls`, `direct`.
    pub fn name(self) -> &'static str {
        match self {
            TlsMode::None => "none",
            TlsMode::StartTls => "starttls",
            TlsMode::Direct => "direct",
        }
    }

    /// Adjust a client configuration to this mode.
    pub fn apply(self, cfg: &mut ClientConfig) {
        match self {
            TlsMode::None => {
                cfg.starttls = false;
                cfg.require_tls = false;
            }
            TlsMode::StartTls | TlsMode::Direct => {
                cfg.starttls = true;
                cfg.require_tls = true;
            }
        }
    }
}

impl std::str::FromStr for TlsMode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "none" | "plain" => Ok(TlsMode::None),
            "starttls" => Ok(TlsMode::StartTls),
            "direct" => Ok(TlsMode::Direct),
            other => Err(format!("unknown TLS mode {other:?} (none|starttls|direct)")),
        }
    }
}

/// Bytes read from the socket at once: one read fills many stanzas.
const READ_BUF: usize = 32 * 1024;

/// A connected, authenticated and bound client.
pub struct Client {
    stream: ClientStream,
    io: Io,
    domain: String,
    inbox: VecDeque<Element>,
    /// Read buffer, allocated on the first read after [`Client::park`].
    buf: Vec<u8>,
    /// Bytes the machine asked to write, not yet written.
    pending: Vec<u8>,
    /// The machine asked for a TLS handshake (after `pending` is written).
    start_tls: bool,
    /// The machine asked to close (after `pending` is written).
    closing: bool,
    /// Why negotiation failed, if it did.
    failure: Option<String>,
    /// The rustls configuration for the handshake, kept for STARTTLS.
    tls: Arc<rustls::ClientConfig>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("jid", &self.stream.jid())
            .finish()
    }
}

/// The TLS handshake over `tcp`, naming `domain` (SNI, and the name a
/// verifying configuration checks the certificate against).
async fn tls_connect(
    tcp: TcpStream,
    domain: &str,
    config: Arc<rustls::ClientConfig>,
) -> Result<(Io, Vec<xmpp_core::sasl::ChannelBinding>), ClientError> {
    let connector = TlsConnector::from(config);
    let name = ServerName::try_from(domain.to_owned())
        .map_err(|e| ClientError::Failed(format!("bad server name {domain}: {e}")))?;
    let tls = connector.connect(name, tcp).await.map_err(|e| {
        let e = handshake_error(e);
        tracing::debug!(domain, error = %e, "TLS handshake failed");
        e
    })?;
    let bindings = client_channel_bindings(tls.get_ref().1);
    Ok((Io::Tls(Box::new(tls)), bindings))
}

/// futures-rustls reports a refused handshake as an I/O error wrapping the
/// rustls error: unwrap it so callers can tell a bad certificate from a
/// broken socket.
fn handshake_error(e: std::io::Error) -> ClientError {
    match e.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>()) {
        Some(tls) => ClientError::Tls(tls.clone()),
        None => ClientError::Io(e),
    }
}

/// Register `user@domain` with `password` by XEP-0077 in-band registration
/// (stream, STARTTLS unless `tls` is [`TlsMode::None`], then
/// `<iq type='set'><query xmlns='jabber:iq:register'>` before SASL), then
/// close. An account that already exists (`<conflict/>`) is
/// [`Registration::AlreadyExists`], not an error. Server certificates are
/// not verified.
pub async fn register(
    addr: SocketAddr,
    domain: &str,
    user: &str,
    password: &str,
    tls: TlsMode,
) -> Result<Registration, ClientError> {
    let jid = Jid::parse(&format!("{user}@{domain}"))
        .map_err(|e| ClientError::Failed(format!("bad account {user}@{domain}: {e}")))?;
    let mut cfg = ClientConfig::new(jid, password);
    cfg.register_only = true;
    let mut c = Client::open(addr, cfg, tls, insecure_client_config()).await?;
    loop {
        if let Some(r) = c.stream.registration() {
            let _ = c.flush().await;
            return Ok(r);
        }
        match c.step().await {
            Ok(()) => {}
            Err(e) => {
                return match c.stream.registration() {
                    Some(r) => Ok(r),
                    None => Err(e),
                }
            }
        }
    }
}

impl Client {
    /// Connect, negotiate and bind. `direct_tls` selects XEP-0368 instead of
    /// STARTTLS. Server certificates are NOT verified: this client is for
    /// tests, examples and benchmarks against servers you run yourself
    /// ([`Client::connect_verified`] checks them).
    pub async fn connect(
        addr: SocketAddr,
        cfg: ClientConfig,
        direct_tls: bool,
    ) -> Result<Client, ClientError> {
        Client::establish(addr, cfg, direct_tls, insecure_client_config()).await
    }

    /// [`Client::connect`] that verifies the server's certificate: it must
    /// chain to one of `roots` and name the JID's domain
    /// ([`verifying_client_config`]), or the handshake fails with
    /// [`ClientError::Tls`] before any credential is sent. TLS is required
    /// (`cfg.starttls` and `cfg.require_tls` are set), so a server that
    /// offers no STARTTLS cannot downgrade the connection to plain text.
    pub async fn connect_verified(
        addr: SocketAddr,
        mut cfg: ClientConfig,
        direct_tls: bool,
        roots: impl Into<Arc<RootCertStore>>,
    ) -> Result<Client, ClientError> {
        let tls = verifying_client_config(roots)?;
        cfg.starttls = true;
        cfg.require_tls = true;
        Client::establish(addr, cfg, direct_tls, tls).await
    }

    /// Open, negotiate and bind with the given TLS configuration.
    async fn establish(
        addr: SocketAddr,
        cfg: ClientConfig,
        direct_tls: bool,
        tls: Arc<rustls::ClientConfig>,
    ) -> Result<Client, ClientError> {
        let mut c = Client::open(addr, cfg, direct_tls, tls).await?;
        while !c.stream.is_online() {
            c.step().await?;
        }
        Ok(c)
    }

    /// [`Client::connect`] with an explicit [`TlsMode`] (which overrides
    /// `cfg.starttls` and `cfg.require_tls`). Certificates are not verified.
    pub async fn connect_with(
        addr: SocketAddr,
        mut cfg: ClientConfig,
        tls: TlsMode,
    ) -> Result<Client, ClientError> {
        tls.apply(&mut cfg);
        Client::connect(addr, cfg, tls == TlsMode::Direct).await
    }

    async fn open(
        addr: SocketAddr,
        mut cfg: ClientConfig,
        mode: impl Into<OpenMode>,
        tls: Arc<rustls::ClientConfig>,
    ) -> Result<Client, ClientError> {
        let direct_tls = match mode.into() {
            OpenMode::Direct(d) => d,
            OpenMode::Mode(m) => {
                m.apply(&mut cfg);
                m == TlsMode::Direct
            }
        };
        let domain = cfg.jid.domain().to_owned();
        let tcp = TcpStream::connect(addr).await?;
        tcp.set_nodelay(true)?;
        let (io, bindings) = if direct_tls {
            let (io, b) = tls_connect(tcp, &domain, tls.clone()).await?;
            (io, Some(b))
        } else {
            (Io::Plain(tcp), None)
        };
        let stream = ClientStream::new(cfg, entropy(), now_ms(), bindings);
        Ok(Client {
            stream,
            io,
            domain,
            inbox: VecDeque::new(),
            buf: Vec::new(),
            pending: Vec::new(),
            start_tls: false,
            closing: false,
            failure: None,
            tls,
        })
    }

    /// The bound JID.
    pub fn jid(&self) -> Option<&Jid> {
        self.stream.jid()
    }

    /// The SCRAM keys this login used (salt, iteration count, ClientKey,
    /// ServerKey; `None` after PLAIN): pass them as
    /// [`ClientConfig::scram_cache`] to later logins of the same account and
    /// password so that they skip PBKDF2 (RFC 5802 §5.1).
    pub fn scram_keys(&self) -> Option<&ScramClientKeys> {
        self.stream.scram_keys()
    }

    /// Whether this login used [`ClientConfig::scram_cache`] (PBKDF2 skipped).
    pub fn used_scram_cache(&self) -> bool {
        self.stream.used_scram_cache()
    }

    /// Perform pending outputs, then read once or run the machine's timer
    /// (negotiation deadline, keepalive), whichever comes first.
    async fn step(&mut self) -> Result<(), ClientError> {
        self.flush().await?;
        let deadline = self.stream.poll_timeout();
        let read = async { Some(self.read_some().await) };
        let timer = async {
            match deadline {
                Some(at) => {
                    smol::Timer::at(crate::clock::instant_for(at)).await;
                }
                None => std::future::pending::<()>().await,
            }
            None
        };
        match smol::future::or(read, timer).await {
            Some(read) => {
                read?;
            }
            None => {
                self.stream.handle_timeout(now_ms());
                self.pump();
            }
        }
        self.flush().await
    }

    /// Move the machine's outputs into the write buffer and the inbox, up to
    /// a TLS handshake request. Synchronous, so callers stay cancel-safe.
    fn pump(&mut self) {
        if self.start_tls {
            return;
        }
        while let Some(out) = self.stream.poll_output() {
            match out {
                ClientOutput::Write(b) => {
                    if self.pending.is_empty() {
                        self.pending = b;
                    } else {
                        self.pending.extend_from_slice(&b);
                    }
                }
                ClientOutput::StartTls => {
                    self.start_tls = true;
                    return;
                }
                ClientOutput::Stanza(el) => self.inbox.push_back(el),
                ClientOutput::Failed(why) => self.failure = Some(why),
                ClientOutput::Close => self.closing = true,
                // `ClientStream::is_online` says it too.
                ClientOutput::Online(_) => {}
            }
        }
    }

    /// Read once from the socket (one read may carry many stanzas) and feed
    /// the bytes to the machine; stanzas go to the inbox, replies wait for
    /// the next [`Client::flush`]. Cancel-safe: dropping the future loses
    /// nothing, so it can be raced against other events.
    pub async fn read_some(&mut self) -> Result<usize, ClientError> {
        if self.closing || self.stream.is_closed() {
            return Err(self.closed_error());
        }
        if self.buf.len() < READ_BUF {
            self.buf.resize(READ_BUF, 0);
        }
        let n = self.io.read(&mut self.buf).await?;
        if n == 0 {
            return Err(ClientError::Closed);
        }
        self.stream.handle_input(now_ms(), &self.buf[..n]);
        self.pump();
        Ok(n)
    }

    fn closed_error(&mut self) -> ClientError {
        self.failure
            .take()
            .map(ClientError::Failed)
            .unwrap_or(ClientError::Closed)
    }

    /// Write everything queued (stanzas from [`Client::queue`] and
    /// [`Client::queue_raw`], protocol replies) in one write, running a TLS
    /// handshake when the machine asks for one.
    pub async fn flush(&mut self) -> Result<(), ClientError> {
        loop {
            self.pump();
            if !self.pending.is_empty() {
                let r = self.io.write_all(&self.pending).await;
                self.pending.clear();
                r?;
            }
            if self.closing {
                return Err(self.closed_error());
            }
            if !self.start_tls {
                break;
            }
            self.start_tls = false;
            let Io::Plain(tcp) = std::mem::replace(&mut self.io, Io::Gone) else {
                return Err(ClientError::Failed("STARTTLS twice".into()));
            };
            let (io, b) = tls_connect(tcp, &self.domain, self.tls.clone()).await?;
            self.io = io;
            self.stream.tls_established(now_ms(), b);
        }
        match self.failure.take() {
            Some(f) => Err(ClientError::Failed(f)),
            None => Ok(()),
        }
    }

    /// Send a stanza.
    pub async fn send(&mut self, stanza: &Element) -> Result<(), ClientError> {
        self.stream.send_stanza(now_ms(), stanza);
        self.flush().await
    }

    /// Queue a stanza without writing it: [`Client::flush`] writes all
    /// queued stanzas at once.
    pub fn queue(&mut self, stanza: &Element) {
        self.stream.send_stanza(now_ms(), stanza);
    }

    /// Queue stanza bytes serialized by the caller (complete, well-formed
    /// `jabber:client` stanzas with escaped values) without building trees;
    /// [`Client::flush`] writes them.
    pub fn queue_raw(&mut self, stanza: &[u8]) {
        self.stream.send_raw(now_ms(), stanza);
    }

    /// The next stanza from the server.
    pub async fn recv(&mut self) -> Result<Element, ClientError> {
        loop {
            if let Some(e) = self.inbox.pop_front() {
                return Ok(e);
            }
            self.step().await?;
        }
    }

    /// Append every stanza already received to `out`, reading (once, or
    /// more until at least one stanza is complete) when none is waiting.
    /// Returns how many were appended.
    pub async fn recv_batch(&mut self, out: &mut Vec<Element>) -> Result<usize, ClientError> {
        while self.inbox.is_empty() {
            self.step().await?;
        }
        let n = self.inbox.len();
        out.extend(self.inbox.drain(..));
        Ok(n)
    }

    /// Stanzas received and not yet taken, without reading.
    pub fn take_received(&mut self) -> impl Iterator<Item = Element> + '_ {
        self.inbox.drain(..)
    }

    /// The next stanza, or `Timeout`.
    pub async fn recv_timeout(&mut self, t: Duration) -> Result<Element, ClientError> {
        use smol::future::FutureExt;
        let timeout = async {
            smol::Timer::after(t).await;
            Err(ClientError::Timeout)
        };
        self.recv().or(timeout).await
    }

    /// Release the read buffer and spare queue capacity while the session
    /// only needs to stay open (a load generator holding thousands of idle
    /// sessions); the next read allocates again.
    pub fn park(&mut self) {
        self.buf = Vec::new();
        self.pending = Vec::new();
        self.inbox.shrink_to_fit();
    }

    /// Close the stream gracefully.
    pub async fn close(mut self) -> Result<(), ClientError> {
        self.stream.close();
        match self.flush().await {
            Ok(()) | Err(ClientError::Closed) => Ok(()),
            Err(e) => Err(e),
        }
    }
}

/// `Client::open` takes the old `direct_tls` flag or a [`TlsMode`].
enum OpenMode {
    Direct(bool),
    Mode(TlsMode),
}

impl From<bool> for OpenMode {
    fn from(d: bool) -> Self {
        OpenMode::Direct(d)
    }
}

impl From<TlsMode> for OpenMode {
    fn from(m: TlsMode) -> Self {
        OpenMode::Mode(m)
    }
}
