//! A client over XMPP-over-WebSocket: xmpp-core's client machine
//! (`ClientStream`) driven over a plain `ws://` connection, with the same
//! batched API as xmpp-runtime's TCP `Client` (queue, flush, read once,
//! take what arrived), so every scenario runs over either transport.
//!
//! Each socket read is decoded into messages, translated into stream bytes
//! ([`framing::translate_incoming`]) and fed to the machine in one call,
//! as a TCP read is; each flush cuts the machine's output into elements
//! ([`framing::Splitter`]) and writes them as masked text frames in one
//! write.

use super::frames::{self, FrameReader, Incoming, Masks};
use super::framing::{self, Piece, Splitter};
use super::upgrade::upgrade;
use smol::io::{AsyncReadExt, AsyncWriteExt};
use smol::net::TcpStream;
use std::collections::VecDeque;
use std::net::SocketAddr;
use xmpp_core::stream::client::Registration;
use xmpp_core::stream::{ClientConfig, ClientOutput, ClientStream};
use xmpp_core::Element;
use xmpp_runtime::client::ClientError;
use xmpp_runtime::clock::{entropy, instant_for, now_ms};

/// Bytes read from the socket at once, as the TCP client.
const READ_BUF: usize = 32 * 1024;

/// A WebSocket connection carrying one c2s stream.
pub struct WsClient {
    stream: ClientStream,
    tcp: TcpStream,
    domain: String,
    reader: FrameReader,
    splitter: Splitter,
    masks: Masks,
    inbox: VecDeque<Element>,
    /// Read buffer, allocated on the first read after [`WsClient::park`].
    buf: Vec<u8>,
    /// Stream bytes translated from one read's messages.
    xml: Vec<u8>,
    /// Frames to write.
    pending: Vec<u8>,
    /// The machine asked to close (after `pending` is written).
    closing: bool,
    /// The server sent its Close frame.
    peer_closed: bool,
    failure: Option<String>,
}

impl std::fmt::Debug for WsClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WsClient")
            .field("jid", &self.stream.jid())
            .finish()
    }
}

impl WsClient {
    /// Connect to `addr`, upgrade at `path`, negotiate and bind.
    pub async fn connect(
        addr: SocketAddr,
        path: &str,
        cfg: ClientConfig,
    ) -> Result<WsClient, ClientError> {
        let mut c = WsClient::open(addr, path, cfg).await?;
        while !c.stream.is_online() {
            c.step().await?;
        }
        Ok(c)
    }

    /// XEP-0077 registration over a WebSocket (`cfg.register_only`).
    pub async fn register(
        addr: SocketAddr,
        path: &str,
        cfg: ClientConfig,
    ) -> Result<Registration, ClientError> {
        let mut c = WsClient::open(addr, path, cfg).await?;
        loop {
            if let Some(r) = c.stream.registration() {
                let _ = c.flush().await;
                return Ok(r);
            }
            if let Err(e) = c.step().await {
                return c.stream.registration().ok_or(e);
            }
        }
    }

    async fn open(
        addr: SocketAddr,
        path: &str,
        mut cfg: ClientConfig,
    ) -> Result<WsClient, ClientError> {
        // ws:// only: no STARTTLS inside a WebSocket (RFC 7395 §3.6 leaves
        // security to the transport).
        cfg.starttls = false;
        cfg.require_tls = false;
        // The server keeps the connection alive with pings; whitespace
        // would be dropped anyway (§3.3.3).
        cfg.keepalive_ms = None;
        let domain = cfg.jid.domain().to_owned();
        let mut tcp = TcpStream::connect(addr).await?;
        tcp.set_nodelay(true)?;
        let mut rng = entropy();
        let mut key = [0u8; 16];
        rng.fill(&mut key);
        let mut seed = [0u8; 8];
        rng.fill(&mut seed);
        let early = upgrade(&mut tcp, &addr.to_string(), path, key)
            .await
            .map_err(ClientError::Failed)?;
        let stream = ClientStream::new(cfg, rng, now_ms(), None);
        let mut c = WsClient {
            stream,
            tcp,
            domain,
            reader: FrameReader::default(),
            splitter: Splitter::default(),
            masks: Masks::new(u64::from_ne_bytes(seed)),
            inbox: VecDeque::new(),
            buf: Vec::new(),
            xml: Vec::new(),
            pending: Vec::new(),
            closing: false,
            peer_closed: false,
            failure: None,
        };
        if !early.is_empty() {
            c.handle_bytes(&early);
        }
        Ok(c)
    }

    /// The SCRAM keys of this login (see the TCP client).
    pub fn scram_keys(&self) -> Option<&xmpp_core::sasl::ScramClientKeys> {
        self.stream.scram_keys()
    }

    /// Whether this login used cached SCRAM keys.
    pub fn used_scram_cache(&self) -> bool {
        self.stream.used_scram_cache()
    }

    /// Flush, then read once or run the machine's timer.
    async fn step(&mut self) -> Result<(), ClientError> {
        self.flush().await?;
        let deadline = self.stream.poll_timeout();
        let read = async { Some(self.read_some().await) };
        let timer = async {
            match deadline {
                Some(at) => {
                    smol::Timer::at(instant_for(at)).await;
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

    /// Move the machine's outputs into frames and the inbox. Synchronous,
    /// so callers stay cancel-safe.
    fn pump(&mut self) {
        while let Some(out) = self.stream.poll_output() {
            match out {
                ClientOutput::Write(b) => {
                    let (pending, masks, domain) =
                        (&mut self.pending, &mut self.masks, &self.domain);
                    let split = self.splitter.push(&b, |piece| match piece {
                        Piece::Open => {
                            frames::write_text(pending, &[&framing::open_message(domain)], masks)
                        }
                        Piece::Close => {
                            frames::write_text(pending, &[&framing::close_message()], masks)
                        }
                        Piece::Element(a, b, c) => frames::write_text(pending, &[a, b, c], masks),
                    });
                    if let Err(e) = split {
                        self.failure.get_or_insert(e);
                        self.closing = true;
                    }
                }
                ClientOutput::StartTls => {
                    self.failure
                        .get_or_insert_with(|| "STARTTLS asked inside a WebSocket".into());
                    self.closing = true;
                }
                ClientOutput::Stanza(el) => self.inbox.push_back(el),
                ClientOutput::Failed(why) => self.failure = Some(why),
                ClientOutput::Close => {
                    // RFC 6455 §5.5.1: a Close after our `<close/>`, unless
                    // the server's came first (then it was answered).
                    if !self.closing && !self.peer_closed {
                        frames::write_close(&mut self.pending, 1000, &mut self.masks);
                    }
                    self.closing = true;
                }
                ClientOutput::Online(_) => {}
            }
        }
    }

    /// Decode one read's frames and feed the stream bytes they carry to
    /// the machine.
    fn handle_bytes(&mut self, bytes: &[u8]) {
        self.xml.clear();
        let (xml, pending, masks) = (&mut self.xml, &mut self.pending, &mut self.masks);
        let mut peer_closed = false;
        let mut bad = None;
        let decoded = self.reader.feed(bytes, |m| match m {
            Incoming::Text(t) => {
                if let Err(e) = framing::translate_incoming(t, xml) {
                    bad.get_or_insert(e);
                }
            }
            Incoming::Ping(p) => frames::write_pong(pending, p, masks),
            Incoming::Close(_) => peer_closed = true,
        });
        if let Some(e) = decoded.err().or(bad) {
            self.failure.get_or_insert(e);
            self.closing = true;
        }
        if !self.xml.is_empty() {
            self.stream.handle_input(now_ms(), &self.xml);
        }
        if peer_closed && !self.peer_closed {
            self.peer_closed = true;
            if !self.closing {
                // Answer the server's Close (§5.5.1).
                frames::write_close(&mut self.pending, 1000, &mut self.masks);
            }
        }
        self.pump();
    }

    /// Read once (one read may carry many messages) and feed them to the
    /// machine; stanzas go to the inbox, replies wait for the next
    /// [`WsClient::flush`]. Cancel-safe.
    pub async fn read_some(&mut self) -> Result<usize, ClientError> {
        if self.closing || self.stream.is_closed() {
            return Err(self.closed_error());
        }
        if self.peer_closed {
            return Err(ClientError::Closed);
        }
        if self.buf.len() < READ_BUF {
            self.buf.resize(READ_BUF, 0);
        }
        let n = self.tcp.read(&mut self.buf).await?;
        if n == 0 {
            return Err(ClientError::Closed);
        }
        let buf = std::mem::take(&mut self.buf);
        self.handle_bytes(&buf[..n]);
        self.buf = buf;
        Ok(n)
    }

    fn closed_error(&mut self) -> ClientError {
        self.failure
            .take()
            .map(ClientError::Failed)
            .unwrap_or(ClientError::Closed)
    }

    /// Write everything queued in one write.
    pub async fn flush(&mut self) -> Result<(), ClientError> {
        self.pump();
        if !self.pending.is_empty() {
            let r = self.tcp.write_all(&self.pending).await;
            self.pending.clear();
            r?;
        }
        if self.closing {
            return Err(self.closed_error());
        }
        match self.failure.take() {
            Some(f) => Err(ClientError::Failed(f)),
            None => Ok(()),
        }
    }

    /// Queue a stanza without writing it.
    pub fn queue(&mut self, stanza: &Element) {
        self.stream.send_stanza(now_ms(), stanza);
    }

    /// Queue stanza bytes serialized by the caller (see the TCP client):
    /// each complete element becomes one message.
    pub fn queue_raw(&mut self, stanza: &[u8]) {
        self.stream.send_raw(now_ms(), stanza);
    }

    /// Append every stanza already received to `out`, reading when none is
    /// waiting; how many were appended.
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

    /// Release buffers while the session only needs to stay open.
    pub fn park(&mut self) {
        self.buf = Vec::new();
        self.xml = Vec::new();
        self.pending = Vec::new();
        self.inbox.shrink_to_fit();
    }

    /// Close the stream: `<close/>`, then the WebSocket Close.
    pub async fn close(mut self) -> Result<(), ClientError> {
        self.stream.close();
        match self.flush().await {
            Ok(()) | Err(ClientError::Closed) => Ok(()),
            Err(e) => Err(e),
        }
    }
}
