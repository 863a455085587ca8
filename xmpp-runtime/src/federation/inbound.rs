//! Incoming s2s connections: the listeners (port 5269 with STARTTLS, and
//! direct TLS, XEP-0368) and one task per connection driving an
//! [`IncomingStream`].
//!
//! The machine decides what a peer may do; this task carries out what it
//! asks: the TLS handshake (asking for the peer's certificate, judged
//! afterwards for SASL EXTERNAL), dialback verifications (over a link to
//! the claimed domain, `federation.rs`), and routing what verified pairs
//! send. The policy is applied here: a refused domain, or one that must
//! prove itself with a certificate (`s2s_secure_auth`) and did not, is
//! refused before any verification costs a connection.

use super::{Federation, Pair};
use crate::accept::Admission;
use crate::clock::{entropy, now_ms, Alarm};
use crate::s2s::link_queue::{LinkQueue, VerifyRequest, VerifyVerdict};
use crate::tls::s2s::JudgedPeer;
use crate::transport::Transport;
use event_listener::EventListener;
use futures_rustls::TlsAcceptor;
use smol::future::FutureExt;
use smol::io::AsyncWriteExt;
use smol::Async;
use std::future::Future;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::time::Instant;
use tracing::Instrument;
use xmpp_core::s2s::dialback::DialbackCondition;
use xmpp_core::s2s::incoming::PeerCertificate;
use xmpp_core::s2s::{IncomingOutput, IncomingStream};
use xmpp_core::stream::StreamErrorCondition;
use xmpp_core::Element;

/// Accept s2s connections until the listener fails.
pub(crate) async fn accept_loop(
    ex: Arc<smol::Executor<'static>>,
    listener: Async<TcpListener>,
    direct_tls: bool,
    admission: Admission,
    fed: Arc<Federation>,
) {
    let refusals = admission.limiters.clone();
    crate::accept::accept_loop(ex, listener, admission, "s2s", move |tcp, peer| {
        let fed = fed.clone();
        let refusals = refusals.clone();
        async move {
            let Some(_slot) = fed.incoming_slot(peer.ip()) else {
                refusals.refusals.refused(
                    Some(peer.ip()),
                    &format_args!("s2s: too many connections from this address"),
                );
                return;
            };
            // Every log line of the connection (the machine's too) names
            // the peer's address.
            run(tcp, peer, direct_tls, fed)
                .instrument(tracing::info_span!("s2s_in", %peer))
                .await
        }
    })
    .await
}

enum Wake {
    Read(std::io::Result<usize>),
    Verdict(Option<VerifyVerdict>),
    /// Stanzas queued for a pair this stream carries back (XEP-0288).
    Queued,
    Timer,
    Idle,
    Shutdown,
}

async fn run(tcp: Async<TcpStream>, peer: SocketAddr, direct_tls: bool, fed: Arc<Federation>) {
    let Some(router) = fed.router() else { return };
    let (verdict_tx, verdict_rx) = smol::channel::unbounded();
    let now = now_ms();
    let (mut transport, mut stream, mut cert) = if direct_tls {
        match accept_tls(&fed, tcp, peer).await {
            Some((transport, cert)) => {
                let stream = IncomingStream::new_direct_tls(
                    fed.incoming.clone(),
                    entropy(),
                    now,
                    as_peer_cert(&fed, &cert),
                );
                (transport, stream, cert)
            }
            None => return,
        }
    } else {
        let stream = IncomingStream::new(fed.incoming.clone(), entropy(), now);
        (Transport::Plain(tcp), stream, None)
    };
    tracing::debug!(%peer, direct_tls, "s2s connection");
    let mut alarm = Alarm::default();
    let mut last_activity = Instant::now();
    // XEP-0288: pairs this stream carries back, with their queues.
    let mut adopted: Vec<(Pair, Arc<LinkQueue>)> = Vec::new();
    let mut unsent: Vec<Element> = Vec::new();
    'conn: loop {
        while let Some(out) = stream.poll_output() {
            match out {
                IncomingOutput::Write(bytes) => {
                    if transport.write_all(&bytes).await.is_err() {
                        break 'conn;
                    }
                }
                IncomingOutput::StartTls => {
                    if transport.flush().await.is_err() {
                        break 'conn;
                    }
                    let Transport::Plain(tcp) = transport else {
                        break 'conn;
                    };
                    let Some((secured, judged)) = accept_tls(&fed, tcp, peer).await else {
                        break 'conn;
                    };
                    transport = secured;
                    cert = judged;
                    stream.tls_established_with(as_peer_cert(&fed, &cert));
                }
                IncomingOutput::Verify {
                    sender,
                    target,
                    stream_id,
                    key,
                } => {
                    let refusal = refusal(&fed, sender.as_str(), cert.as_deref());
                    if let Some(condition) = refusal {
                        tracing::info!(%peer, sender = sender.as_str(), ?condition, "s2s: dialback refused by policy");
                        stream.verification_failed(sender.as_str(), target.as_str(), condition);
                        continue;
                    }
                    fed.verify(VerifyRequest {
                        sender,
                        target,
                        stream_id,
                        key,
                        reply: verdict_tx.clone(),
                    });
                }
                // Waits while the partition is behind, reading nothing
                // more meanwhile: TCP pushes back on the peer.
                IncomingOutput::Stanza(el) => {
                    last_activity = Instant::now();
                    fed.metrics.stanza_received("s2s", &el.name);
                    router.route_from_peer(el).await;
                }
                IncomingOutput::Bidi { local, remote } => {
                    let pair = (local, remote);
                    if let Some(queue) = fed.adopt_bidi(&pair) {
                        tracing::info!(%peer, local = %pair.0, remote = %pair.1, "s2s: bidirectional stream carries stanzas back");
                        adopted.push((pair, queue));
                    }
                }
                IncomingOutput::Close => {
                    let _ = transport.flush().await;
                    let _ = transport.close().await;
                    break 'conn;
                }
            }
        }
        if transport.flush().await.is_err() || stream.is_closed() {
            break;
        }
        let listeners: Vec<EventListener> = adopted.iter().map(|(_, q)| q.listen()).collect();
        let mut sent = false;
        for (_, queue) in &adopted {
            for stanza in queue.take(true).1 {
                sent = true;
                if !stream.send_stanza(&stanza) {
                    unsent.push(stanza);
                }
            }
        }
        if sent {
            last_activity = Instant::now();
            continue;
        }
        let closing = fed.closing();
        if fed.is_closing() {
            stream.close(Some(StreamErrorCondition::SystemShutdown));
            continue;
        }
        alarm.want(stream.poll_timeout());
        let idle_at = last_activity + fed.cfg.idle_timeout;
        let read = async {
            Wake::Read(
                transport
                    .read_with(|bytes| stream.handle_input(now_ms(), bytes))
                    .await,
            )
        };
        let verdict = async { Wake::Verdict(verdict_rx.recv().await.ok()) };
        let queued = async {
            any_of(listeners).await;
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
        match read
            .or(verdict)
            .or(queued)
            .or(tick)
            .or(idle)
            .or(shutdown)
            .await
        {
            Wake::Read(Ok(0)) | Wake::Read(Err(_)) => break,
            Wake::Read(Ok(_)) | Wake::Verdict(None) | Wake::Queued | Wake::Shutdown => {}
            Wake::Verdict(Some(v)) => match v.valid {
                Some(valid) => {
                    if valid {
                        tracing::info!(%peer, sender = %v.sender, target = %v.target, "s2s: dialback verified");
                    }
                    stream.verified(&v.sender, &v.target, valid);
                }
                None => stream.verification_failed(
                    &v.sender,
                    &v.target,
                    DialbackCondition::RemoteConnectionFailed,
                ),
            },
            Wake::Timer => stream.handle_timeout(now_ms()),
            Wake::Idle => {
                tracing::debug!(%peer, "s2s incoming stream idle; closing");
                stream.close(None);
            }
        }
    }
    tracing::debug!(%peer, "s2s connection closed");
    // What waited for this stream goes on outgoing links instead.
    for (pair, queue) in &adopted {
        unsent.extend(fed.bidi_ended(pair, queue));
    }
    for stanza in unsent {
        fed.send(stanza);
    }
}

/// Wakes when any of `listeners` fires (never, with none).
async fn any_of(mut listeners: Vec<EventListener>) {
    std::future::poll_fn(|cx| {
        for l in &mut listeners {
            if std::pin::Pin::new(l).poll(cx).is_ready() {
                return std::task::Poll::Ready(());
            }
        }
        std::task::Poll::Pending
    })
    .await
}

/// The TLS handshake as the server; the peer's certificate, if it sent
/// one, kept for judging.
async fn accept_tls(
    fed: &Federation,
    tcp: Async<TcpStream>,
    peer: SocketAddr,
) -> Option<(Transport, Option<Arc<JudgedPeer>>)> {
    let tls = fed.tls.clone()?;
    let timeout = fed.cfg.connect_timeout;
    let accepted = async {
        TlsAcceptor::from(tls.server.clone())
            .accept(tcp)
            .await
            .map_err(|e| e.to_string())
    }
    .or(async {
        smol::Timer::after(timeout).await;
        Err("handshake timed out".to_owned())
    })
    .await;
    match accepted {
        Ok(stream) => {
            let chain = stream.get_ref().1.peer_certificates();
            let cert = JudgedPeer::new(chain, &tls.roots).map(Arc::new);
            Some((Transport::Tls(Box::new(stream)), cert))
        }
        Err(e) => {
            tracing::info!(%peer, error = %e, "s2s: TLS handshake failed");
            None
        }
    }
}

/// The certificate as the machine sees it for SASL EXTERNAL: it proves
/// only domains the policy allows.
fn as_peer_cert(
    fed: &Arc<Federation>,
    cert: &Option<Arc<JudgedPeer>>,
) -> Option<Arc<dyn PeerCertificate>> {
    let judged = cert.clone()?;
    Some(Arc::new(AllowedPeer {
        fed: fed.cfg.clone(),
        judged,
    }))
}

/// A judged certificate under the domain policy.
#[derive(Debug)]
struct AllowedPeer {
    fed: Arc<crate::s2s::S2sConfig>,
    judged: Arc<JudgedPeer>,
}

impl PeerCertificate for AllowedPeer {
    fn proves(&self, domain: &str) -> bool {
        self.fed.allows(domain) && self.judged.proves(domain)
    }
}

/// Why a dialback request from `sender` is refused without asking its
/// server, if it is.
fn refusal(fed: &Federation, sender: &str, cert: Option<&JudgedPeer>) -> Option<DialbackCondition> {
    if !fed.cfg.allows(sender) {
        return Some(DialbackCondition::Forbidden);
    }
    if fed.cfg.needs_secure_auth(sender) && !cert.is_some_and(|c| c.proves(sender)) {
        return Some(DialbackCondition::NotAuthorized);
    }
    None
}
