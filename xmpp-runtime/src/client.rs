//! An async client over real sockets, driving xmpp-core's `ClientStream`:
//! used by the examples, `vireo config test` and the benchmark tool.

use crate::clock::{entropy, now_ms};
use crate::tls::{client_channel_bindings, insecure_client_config};
use futures_rustls::client::TlsStream;
use futures_rustls::TlsConnector;
use rustls::pki_types::ServerName;
use smol::io::{AsyncReadExt, AsyncWriteExt};
use smol::net::TcpStream;
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::Duration;
use xmpp_core::jid::Jid;
use xmpp_core::stream::{ClientConfig, ClientStream, ConnOutput};
use xmpp_core::Element;

/// Why a client operation failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// Socket or TLS error.
    #[error("I/O: {0}")]
    Io(#[from] std::io::Error),
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

/// A connected, authenticated and bound client.
pub struct Client {
    stream: ClientStream,
    io: Io,
    domain: String,
    inbox: VecDeque<Element>,
    buf: Vec<u8>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("jid", &self.stream.jid())
            .finish()
    }
}

async fn tls_connect(
    tcp: TcpStream,
    domain: &str,
) -> Result<(Io, Vec<xmpp_core::sasl::ChannelBinding>), ClientError> {
    let connector = TlsConnector::from(insecure_client_config());
    let name = ServerName::try_from(domain.to_owned())
        .map_err(|e| ClientError::Failed(format!("bad server name {domain}: {e}")))?;
    let tls = connector.connect(name, tcp).await?;
    let bindings = client_channel_bindings(tls.get_ref().1);
    Ok((Io::Tls(Box::new(tls)), bindings))
}

impl Client {
    /// Connect, negotiate and bind. `direct_tls` selects XEP-0368 instead of
    /// STARTTLS. Server certificates are NOT verified: this client is for
    /// tests, examples and benchmarks against servers you run yourself.
    pub async fn connect(
        addr: SocketAddr,
        cfg: ClientConfig,
        direct_tls: bool,
    ) -> Result<Client, ClientError> {
        let domain = cfg.jid.domain().to_owned();
        let tcp = TcpStream::connect(addr).await?;
        tcp.set_nodelay(true)?;
        let (io, bindings) = if direct_tls {
            let (io, b) = tls_connect(tcp, &domain).await?;
            (io, Some(b))
        } else {
            (Io::Plain(tcp), None)
        };
        let stream = ClientStream::new(cfg, entropy(), now_ms(), bindings);
        let mut c = Client {
            stream,
            io,
            domain,
            inbox: VecDeque::new(),
            buf: vec![0u8; 16 * 1024],
        };
        while !c.stream.is_online() {
            c.step().await?;
        }
        Ok(c)
    }

    /// The bound JID.
    pub fn jid(&self) -> Option<&Jid> {
        self.stream.jid()
    }

    /// Perform pending outputs, then read once.
    async fn step(&mut self) -> Result<(), ClientError> {
        self.flush().await?;
        if self.stream.is_closed() {
            return Err(ClientError::Closed);
        }
        let n = self.io.read(&mut self.buf).await?;
        if n == 0 {
            return Err(ClientError::Closed);
        }
        self.stream.handle_input(now_ms(), &self.buf[..n]);
        self.flush().await
    }

    async fn flush(&mut self) -> Result<(), ClientError> {
        let mut failure = None;
        while let Some(out) = self.stream.poll_output() {
            match out {
                ConnOutput::Write(b) => self.io.write_all(&b).await?,
                ConnOutput::StartTls => {
                    let Io::Plain(tcp) = std::mem::replace(&mut self.io, Io::Gone) else {
                        return Err(ClientError::Failed("STARTTLS twice".into()));
                    };
                    let (io, b) = tls_connect(tcp, &self.domain).await?;
                    self.io = io;
                    self.stream.tls_established(now_ms(), b);
                }
                ConnOutput::Stanza(el) => self.inbox.push_back(el),
                ConnOutput::Failed(why) => failure = Some(why),
                ConnOutput::Close => {
                    return Err(failure
                        .map(ClientError::Failed)
                        .unwrap_or(ClientError::Closed))
                }
                ConnOutput::Bound(_) | ConnOutput::Storage { .. } => {}
            }
        }
        match failure {
            Some(f) => Err(ClientError::Failed(f)),
            None => Ok(()),
        }
    }

    /// Send a stanza.
    pub async fn send(&mut self, stanza: &Element) -> Result<(), ClientError> {
        self.stream.send_stanza(stanza);
        self.flush().await
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

    /// The next stanza, or `Timeout`.
    pub async fn recv_timeout(&mut self, t: Duration) -> Result<Element, ClientError> {
        use smol::future::FutureExt;
        let timeout = async {
            smol::Timer::after(t).await;
            Err(ClientError::Timeout)
        };
        self.recv().or(timeout).await
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
