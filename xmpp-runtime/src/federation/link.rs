//! One outgoing link: the task that resolves the remote domain, connects,
//! secures the stream, proves our domain and then carries stanzas and
//! dialback verifications for one domain pair, driving an
//! [`OutgoingStream`].
//!
//! Stanzas wait in the link's queue until the pair is verified; if it
//! never is, they bounce with `remote-server-not-found` (the peer cannot
//! be reached or refused us) or `remote-server-timeout` (it did not answer
//! in time). A link that carried nothing for the idle timeout closes;
//! whatever is queued in the meantime goes out on a new one.

use super::{Federation, Pair, Setup};
use crate::clock::{now_ms, Alarm};
use crate::s2s::connect::{connect, ConnectError};
use crate::s2s::link_queue::{LinkQueue, VerifyRequest};
use crate::tls::s2s::judge;
use crate::transport::Transport;
use futures_rustls::TlsConnector;
use rustls::pki_types::ServerName;
use smol::future::FutureExt;
use smol::io::AsyncWriteExt;
use smol::Async;
use std::collections::HashMap;
use std::net::TcpStream;
use std::sync::Arc;
use std::time::Instant;
use xmpp_core::s2s::dialback::{DialbackCondition, DialbackDomain};
use xmpp_core::s2s::{OutgoingOutput, OutgoingStream};
use xmpp_core::stanza::StanzaError;
use xmpp_core::Element;

/// How a link ended.
#[derive(Debug)]
enum Ended {
    /// The pair was never verified: what waits bounces with this.
    Failed(StanzaError),
    /// It was verified and then closed: what waits goes on a new link.
    Closed,
}

enum Wake {
    Read(std::io::Result<usize>),
    Queued,
    Timer,
    Idle,
    Shutdown,
}

/// Run the link for `pair` until it ends, then hand back what waits.
pub(crate) async fn run(
    fed: Arc<Federation>,
    pair: Pair,
    queue: Arc<LinkQueue>,
    setup: Option<Setup>,
) {
    let mut link = Link {
        setup,
        fed: fed.clone(),
        local: pair.0.clone(),
        remote: pair.1.clone(),
        queue: queue.clone(),
        asked: HashMap::new(),
        unsent: Vec::new(),
        ready: false,
    };
    let ended = link.serve().await;
    let (verifies, mut stanzas) = fed.link_ended(&pair, &queue);
    for request in verifies.iter().chain(link.asked.values()) {
        request.answer(None);
    }
    stanzas.splice(0..0, std::mem::take(&mut link.unsent));
    match ended {
        Ended::Failed(condition) => {
            if !stanzas.is_empty() {
                tracing::info!(local = %pair.0, remote = %pair.1, bounced = stanzas.len(), ?condition, "s2s link failed");
            }
            for stanza in &stanzas {
                fed.bounce(stanza, condition);
            }
        }
        Ended::Closed => {
            for stanza in stanzas {
                fed.send(stanza);
            }
        }
    }
}

struct Link {
    /// Counted against the sender that opened the link until it is ready.
    setup: Option<Setup>,
    fed: Arc<Federation>,
    local: String,
    remote: String,
    queue: Arc<LinkQueue>,
    /// Verifications sent to the peer, by (sender, target, stream id).
    asked: HashMap<(String, String, String), VerifyRequest>,
    /// Stanzas taken but not written (the stream closed under them).
    unsent: Vec<Element>,
    /// The pair was verified (the stream may have closed since).
    ready: bool,
}

impl Link {
    async fn serve(&mut self) -> Ended {
        let (local, remote) = (self.local.clone(), self.remote.clone());
        let (Ok(local_domain), Ok(remote_domain)) = (
            DialbackDomain::parse(&local),
            DialbackDomain::parse(&remote),
        ) else {
            return Ended::Failed(StanzaError::RemoteServerNotFound);
        };
        let resolution = match self
            .fed
            .resolver
            .resolve(&remote, u64::from_le_bytes(seed()))
            .await
        {
            Ok(r) => r,
            Err(e) => {
                tracing::info!(%local, %remote, error = %e, "s2s: cannot resolve");
                return Ended::Failed(StanzaError::RemoteServerNotFound);
            }
        };
        let cfg = self.fed.cfg.clone();
        let connected = connect(
            &self.fed.executor,
            &resolution.candidates,
            cfg.connect_timeout,
        )
        .await;
        let (tcp, candidate) = match connected {
            Ok(c) => c,
            Err(e) => {
                tracing::info!(%local, %remote, error = %e, "s2s: cannot connect");
                return Ended::Failed(match e {
                    ConnectError::TimedOut => StanzaError::RemoteServerTimeout,
                    ConnectError::NoCandidates | ConnectError::Failed(_) => {
                        StanzaError::RemoteServerNotFound
                    }
                });
            }
        };
        tracing::debug!(%local, %remote, addr = %candidate.addr, direct_tls = candidate.direct_tls, "s2s connected");
        let stream_cfg = self.fed.outgoing_for(&local);
        let now = now_ms();
        let (mut transport, mut stream) = if candidate.direct_tls {
            match self.secure(tcp).await {
                Ok(t) => (
                    t,
                    OutgoingStream::new_direct_tls(stream_cfg, local_domain, remote_domain, now),
                ),
                Err(e) => return e,
            }
        } else {
            (
                Transport::Plain(tcp),
                OutgoingStream::new(stream_cfg, local_domain, remote_domain, now),
            )
        };
        let mut alarm = Alarm::default();
        let mut refused: Option<StanzaError> = None;
        let mut last_activity = Instant::now();
        loop {
            while let Some(out) = stream.poll_output() {
                match out {
                    OutgoingOutput::Write(bytes) => {
                        if transport.write_all(&bytes).await.is_err() {
                            return self.end(&stream, refused);
                        }
                    }
                    OutgoingOutput::StartTls => {
                        if transport.flush().await.is_err() {
                            return self.end(&stream, refused);
                        }
                        let Transport::Plain(tcp) = transport else {
                            return Ended::Failed(StanzaError::RemoteServerNotFound);
                        };
                        transport = match self.secure(tcp).await {
                            Ok(t) => t,
                            Err(e) => return e,
                        };
                        stream.tls_established();
                    }
                    OutgoingOutput::Ready => {
                        self.ready = true;
                        self.setup = None;
                        tracing::info!(%local, %remote, secure = stream.is_secure(), "s2s link ready");
                    }
                    OutgoingOutput::Refused(condition) => {
                        tracing::warn!(%local, %remote, ?condition, "s2s: the peer refused our domain");
                        refused = Some(match condition {
                            Some(DialbackCondition::RemoteServerTimeout) => {
                                StanzaError::RemoteServerTimeout
                            }
                            _ => StanzaError::RemoteServerNotFound,
                        });
                    }
                    OutgoingOutput::VerifyAnswer {
                        sender,
                        target,
                        stream_id,
                        valid,
                    } => {
                        if let Some(request) = self.asked.remove(&(sender, target, stream_id)) {
                            request.answer(valid);
                        }
                    }
                    // XEP-0288: the peer's stanzas back over our stream.
                    // Waits while the partition is behind, reading nothing
                    // more meanwhile: TCP pushes back on the peer.
                    OutgoingOutput::Stanza(el) => {
                        last_activity = Instant::now();
                        self.fed.metrics.stanza_received("s2s", &el.name);
                        if let Some(router) = self.fed.router() {
                            router.route_from_peer(el).await;
                        }
                    }
                    OutgoingOutput::Close => {
                        let _ = transport.flush().await;
                        let _ = transport.close().await;
                        return self.end(&stream, refused);
                    }
                }
            }
            if transport.flush().await.is_err() || stream.is_closed() {
                return self.end(&stream, refused);
            }
            let listener = self.queue.listen();
            let closing = self.fed.closing();
            if self.fed.is_closing() {
                stream.close();
                continue;
            }
            if self.take_work(&mut stream) {
                last_activity = Instant::now();
                continue;
            }
            alarm.want(stream.poll_timeout());
            let idle_at = last_activity + cfg.idle_timeout;
            let read = async {
                Wake::Read(
                    transport
                        .read_with(|bytes| stream.handle_input(now_ms(), bytes))
                        .await,
                )
            };
            let queued = async {
                listener.await;
                Wake::Queued
            };
            let tick = async {
                alarm.ring().await;
                Wake::Timer
            };
            let idle = async {
                smol::Timer::at(idle_at).await;
                Wake::Idle
            };
            let shutdown = async {
                closing.await;
                Wake::Shutdown
            };
            match read.or(queued).or(tick).or(idle).or(shutdown).await {
                Wake::Read(Ok(0)) | Wake::Read(Err(_)) => return self.end(&stream, refused),
                Wake::Read(Ok(_)) | Wake::Queued | Wake::Shutdown => {}
                Wake::Timer => stream.handle_timeout(now_ms()),
                Wake::Idle => {
                    if self.asked.is_empty() && !self.queue.has_work(true) {
                        tracing::debug!(%local, %remote, "s2s link idle; closing");
                        stream.close();
                    } else {
                        last_activity = Instant::now();
                    }
                }
            }
        }
    }

    /// Hand what waits to the stream: verifications always, stanzas once
    /// the pair is verified. Whether there was anything.
    fn take_work(&mut self, stream: &mut OutgoingStream) -> bool {
        let (verifies, stanzas) = self.queue.take(stream.is_ready());
        let any = !verifies.is_empty() || !stanzas.is_empty();
        for request in verifies {
            stream.verify(
                request.sender.clone(),
                request.target.clone(),
                request.stream_id.clone(),
                request.key.clone(),
            );
            let key = (
                request.sender.as_str().to_owned(),
                request.target.as_str().to_owned(),
                request.stream_id.as_str().to_owned(),
            );
            self.asked.insert(key, request);
        }
        for stanza in stanzas {
            if !stream.send_stanza(&stanza) {
                self.unsent.push(stanza);
            }
        }
        any
    }

    /// How the link ended, from the stream's state.
    fn end(&self, stream: &OutgoingStream, refused: Option<StanzaError>) -> Ended {
        match refused {
            Some(condition) => Ended::Failed(condition),
            None if self.ready || stream.is_ready() => Ended::Closed,
            None => Ended::Failed(StanzaError::RemoteServerNotFound),
        }
    }

    /// The TLS handshake as the client for the remote domain, our
    /// certificate presented; the peer's judged against the policy.
    async fn secure(&self, tcp: Async<TcpStream>) -> Result<Transport, Ended> {
        let (local, remote) = (&self.local, &self.remote);
        let failed = |why: &dyn std::fmt::Display| {
            tracing::info!(%local, %remote, error = %why, "s2s: TLS failed");
            Ended::Failed(StanzaError::RemoteServerNotFound)
        };
        let Some(tls) = self.fed.tls.clone() else {
            return Err(failed(&"no certificate of ours for TLS"));
        };
        let config = tls.client_config(local).map_err(|e| failed(&e))?;
        let name = ServerName::try_from(remote.clone()).map_err(|e| failed(&e))?;
        let timeout = self.fed.cfg.connect_timeout;
        let handshake = async {
            TlsConnector::from(config)
                .connect(name, tcp)
                .await
                .map_err(|e| e.to_string())
        }
        .or(async {
            smol::Timer::after(timeout).await;
            Err("handshake timed out".to_owned())
        })
        .await;
        let stream = handshake.map_err(|e| failed(&e))?;
        let chain = stream.get_ref().1.peer_certificates().map(<[_]>::to_vec);
        let verdict = chain.as_deref().and_then(|c| judge(remote, c, &tls.roots));
        let trusted = verdict.as_ref().is_some_and(|v| v.trusted());
        if !trusted && self.fed.cfg.needs_secure_auth(remote) {
            let why = verdict
                .map(|v| format!("{:?} / {:?}", v.chain.err(), v.identity.err()))
                .unwrap_or_else(|| "no certificate".to_owned());
            tracing::warn!(%local, %remote, %why, "s2s: the peer's certificate is not trusted and secure auth is required");
            return Err(Ended::Failed(StanzaError::RemoteServerNotFound));
        }
        tracing::debug!(%local, %remote, trusted, "s2s TLS established");
        Ok(Transport::TlsClient(Box::new(stream)))
    }
}

/// A fresh random value for the SRV weights.
fn seed() -> [u8; 8] {
    let full = crate::clock::random_seed();
    let mut out = [0u8; 8];
    out.copy_from_slice(&full[..8]);
    out
}
