//! How sessions reach the server: XMPP over TCP (RFC 6120, xmpp-runtime's
//! client) or over WebSocket (RFC 7395, [`websocket`]). Both drive
//! xmpp-core's client machine, so a scenario does the same protocol work
//! over either; [`Client`] gives the scenarios one type with the batched
//! API they use (queue, flush, read once, take what arrived).

mod websocket;

use std::net::SocketAddr;
use websocket::WsClient;
use xmpp_core::sasl::ScramClientKeys;
use xmpp_core::stream::client::Registration;
use xmpp_core::stream::ClientConfig;
use xmpp_core::Element;
use xmpp_runtime::client::{self as tcp, ClientError, TlsMode};

/// The transport of every session of a run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Transport {
    /// The c2s port, with `--tls` as given.
    Tcp,
    /// `ws://host:port{path}` (the server's HTTP port).
    WebSocket {
        /// The endpoint, e.g. `/xmpp-websocket`.
        path: String,
    },
}

impl Transport {
    /// The name in the JSON line: `tcp` or `ws`.
    pub fn name(&self) -> &'static str {
        match self {
            Transport::Tcp => "tcp",
            Transport::WebSocket { .. } => "ws",
        }
    }

    /// Connect, negotiate and bind (certificates are not verified).
    pub async fn connect(
        &self,
        addr: SocketAddr,
        cfg: ClientConfig,
        tls: TlsMode,
    ) -> Result<Client, ClientError> {
        match self {
            Transport::Tcp => Ok(Client::Tcp(
                tcp::Client::connect_with(addr, cfg, tls).await?,
            )),
            Transport::WebSocket { path } => {
                Ok(Client::Ws(WsClient::connect(addr, path, cfg).await?))
            }
        }
    }

    /// XEP-0077 registration of `user@domain`.
    pub async fn register(
        &self,
        addr: SocketAddr,
        domain: &str,
        user: &str,
        password: &str,
        tls: TlsMode,
    ) -> Result<Registration, ClientError> {
        match self {
            Transport::Tcp => tcp::register(addr, domain, user, password, tls).await,
            Transport::WebSocket { path } => {
                let jid = xmpp_core::Jid::parse(&format!("{user}@{domain}")).map_err(|e| {
                    ClientError::Failed(format!("bad account {user}@{domain}: {e}"))
                })?;
                let mut cfg = ClientConfig::new(jid, password);
                cfg.register_only = true;
                WsClient::register(addr, path, cfg).await
            }
        }
    }
}

/// One session, over either transport.
#[derive(Debug)]
pub enum Client {
    /// XMPP over TCP.
    Tcp(tcp::Client),
    /// XMPP over WebSocket.
    Ws(WsClient),
}

/// The same call on either transport.
macro_rules! each {
    ($self:expr, $c:ident => $e:expr) => {
        match $self {
            Client::Tcp($c) => $e,
            Client::Ws($c) => $e,
        }
    };
}

impl Client {
    /// The SCRAM keys this login used.
    pub fn scram_keys(&self) -> Option<&ScramClientKeys> {
        each!(self, c => c.scram_keys())
    }

    /// Whether this login used cached SCRAM keys.
    pub fn used_scram_cache(&self) -> bool {
        each!(self, c => c.used_scram_cache())
    }

    /// Read once and feed the machine. Cancel-safe.
    pub async fn read_some(&mut self) -> Result<usize, ClientError> {
        each!(self, c => c.read_some().await)
    }

    /// Write everything queued.
    pub async fn flush(&mut self) -> Result<(), ClientError> {
        each!(self, c => c.flush().await)
    }

    /// Queue a stanza.
    pub fn queue(&mut self, stanza: &Element) {
        each!(self, c => c.queue(stanza))
    }

    /// Queue serialized stanzas.
    pub fn queue_raw(&mut self, stanza: &[u8]) {
        each!(self, c => c.queue_raw(stanza))
    }

    /// Every stanza received, reading when none is waiting.
    pub async fn recv_batch(&mut self, out: &mut Vec<Element>) -> Result<usize, ClientError> {
        each!(self, c => c.recv_batch(out).await)
    }

    /// Stanzas received and not yet taken, without reading.
    pub fn take_received(&mut self) -> impl Iterator<Item = Element> + '_ {
        match self {
            Client::Tcp(c) => Either::Left(c.take_received()),
            Client::Ws(c) => Either::Right(c.take_received()),
        }
    }

    /// Release buffers while idle.
    pub fn park(&mut self) {
        each!(self, c => c.park())
    }

    /// Close the stream gracefully.
    pub async fn close(self) -> Result<(), ClientError> {
        match self {
            Client::Tcp(c) => c.close().await,
            Client::Ws(c) => c.close().await,
        }
    }
}

/// One of two iterators: [`Client::take_received`] without a box (it runs
/// once per read in the measured loops).
enum Either<A, B> {
    Left(A),
    Right(B),
}

impl<A: Iterator<Item = Element>, B: Iterator<Item = Element>> Iterator for Either<A, B> {
    type Item = Element;

    fn next(&mut self) -> Option<Element> {
        match self {
            Either::Left(a) => a.next(),
            Either::Right(b) => b.next(),
        }
    }
}
