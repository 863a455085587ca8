//! One task per client connection: it owns the socket and the connection's
//! `ServerStream`, and talks to hub partitions through channels.

use crate::clock::{entropy, instant_for, now_ms};
use crate::hub_task::HubMsg;
use crate::mailbox::Mailbox;
use crate::server::{ConnMsg, Shared};
use crate::tls::server_channel_bindings;
use crate::transport::Transport;
use futures_rustls::TlsAcceptor;
use smol::future::FutureExt;
use smol::io::AsyncWriteExt;
use smol::Async;
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use xmpp_core::hub::ConnId;
use xmpp_core::sasl::ChannelBinding;
use xmpp_core::stream::{ConnOutput, ServerStream};

/// Accept connections until the listener fails.
pub(crate) async fn accept_loop(
    ex: Arc<smol::Executor<'static>>,
    listener: Async<TcpListener>,
    direct_tls: bool,
    shared: Arc<Shared>,
) {
    loop {
        match listener.accept().await {
            Ok((stream, peer)) => {
                if shared.live.load(Ordering::Relaxed)
                    >= shared.max_connections.load(Ordering::Relaxed)
                {
                    tracing::warn!(%peer, "connection limit reached; refusing");
                    drop(stream);
                    continue;
                }
                let _ = stream.get_ref().set_nodelay(true);
                let shared2 = shared.clone();
                ex.spawn(async move {
                    shared2.live.fetch_add(1, Ordering::Relaxed);
                    run(stream, direct_tls, shared2.clone()).await;
                    shared2.live.fetch_sub(1, Ordering::Relaxed);
                })
                .detach();
            }
            Err(e) => {
                // EMFILE and friends: back off instead of spinning.
                tracing::warn!(error = %e, "accept failed");
                smol::Timer::after(Duration::from_millis(50)).await;
            }
        }
    }
}

enum Wake {
    Read(std::io::Result<usize>),
    Msgs(Vec<ConnMsg>),
    Timer,
}

async fn tls_accept(
    shared: &Shared,
    tcp: Async<TcpStream>,
) -> Option<(Transport, Vec<ChannelBinding>)> {
    // One snapshot for the handshake and the channel binding: a reload
    // swapping the certificate meanwhile must not mix the two.
    let tls = shared.tls()?;
    let acceptor = TlsAcceptor::from(tls.config.clone());
    let handshake = acceptor.accept(tcp);
    let timeout = async {
        smol::Timer::after(Duration::from_secs(30)).await;
        Err(std::io::Error::from(std::io::ErrorKind::TimedOut))
    };
    match handshake.or(timeout).await {
        Ok(s) => {
            let conn = s.get_ref().1;
            let bindings = server_channel_bindings(conn, tls.end_entity_for(conn.server_name()));
            Some((Transport::Tls(Box::new(s)), bindings))
        }
        Err(e) => {
            tracing::debug!(error = %e, "TLS handshake failed");
            None
        }
    }
}

async fn run(tcp: Async<TcpStream>, direct_tls: bool, shared: Arc<Shared>) {
    let peer = tcp.get_ref().peer_addr().ok();
    let conn_id: ConnId = shared.next_conn.fetch_add(1, Ordering::Relaxed);
    let (mut transport, bindings) = if direct_tls {
        match Box::pin(tls_accept(&shared, tcp)).await {
            Some((t, b)) => (t, Some(b)),
            None => return,
        }
    } else {
        (Transport::Plain(tcp), None)
    };
    tracing::debug!(conn = conn_id, ?peer, direct_tls, "connected");
    let mailbox = Arc::new(Mailbox::default());
    shared.conns().insert(conn_id, mailbox.clone());
    let mut stream = ServerStream::new(shared.stream_cfg(), entropy(), now_ms(), bindings);
    let mut partition: Option<usize> = None;
    let mut bucket = shared
        .rate_limit
        .read()
        .unwrap_or_else(|e| e.into_inner())
        .map(crate::rate_limit::Bucket::new);
    let mut timer = smol::Timer::never();
    let mut armed: Option<xmpp_core::time::Millis> = None;

    'conn: loop {
        // Perform everything the machine asked for.
        while let Some(out) = stream.poll_output() {
            match out {
                ConnOutput::Write(bytes) => {
                    if transport.write_all(&bytes).await.is_err() {
                        break 'conn;
                    }
                }
                ConnOutput::StartTls => {
                    if transport.flush().await.is_err() {
                        break 'conn;
                    }
                    let Transport::Plain(tcp) =
                        std::mem::replace(&mut transport, Transport::Upgrading)
                    else {
                        break 'conn;
                    };
                    match Box::pin(tls_accept(&shared, tcp)).await {
                        Some((t, b)) => {
                            transport = t;
                            stream.tls_established(now_ms(), b);
                        }
                        None => break 'conn,
                    }
                }
                ConnOutput::Storage { id, request } => {
                    let backend = shared.backend.clone();
                    let result = smol::unblock(move || backend.execute(request)).await;
                    stream.handle_storage(now_ms(), id, result);
                }
                ConnOutput::Account { id, op } => {
                    let peer_ip = peer.map(|p| p.ip());
                    let result = crate::registration::perform(&shared, peer_ip, op).await;
                    stream.handle_account(now_ms(), id, result);
                }
                ConnOutput::Bound(jid) => {
                    let p = shared.router.partition(&jid.bare_str());
                    partition = Some(p);
                    shared.router.send(
                        p,
                        HubMsg::Bound {
                            conn: conn_id,
                            jid,
                            mailbox: mailbox.clone(),
                        },
                    );
                }
                ConnOutput::Stanza(el) => {
                    if let Some(p) = partition {
                        shared.router.send(p, HubMsg::FromSession(conn_id, el));
                    }
                }
                ConnOutput::Close => {
                    let _ = transport.flush().await;
                    let _ = transport.close().await;
                    break 'conn;
                }
                ConnOutput::Failed(_) => {}
            }
        }
        if transport.flush().await.is_err() {
            break;
        }
        if stream.is_closed() {
            break;
        }
        // Re-arm only when the machine wants an earlier wake-up: a busy
        // connection's deadline keeps moving later, and touching the
        // reactor's timer set on every wake costs more the more sessions
        // are online. A timer that fires early is simply re-armed.
        if let Some(want) = stream.poll_timeout() {
            if armed.is_none_or(|a| want < a) {
                timer.set_at(instant_for(want));
                armed = Some(want);
            }
        }
        let read = async {
            Wake::Read(
                transport
                    .read_with(|bytes| stream.handle_input(now_ms(), bytes))
                    .await,
            )
        };
        let msg = async { Wake::Msgs(mailbox.recv_all().await) };
        let tick = async {
            (&mut timer).await;
            Wake::Timer
        };
        match read.or(msg).or(tick).await {
            Wake::Read(Ok(0)) | Wake::Read(Err(_)) => break,
            Wake::Read(Ok(n)) => {
                // Already handed to the stream; over its budget, the client
                // is read again only once it has paid for these bytes.
                if let Some(wait) = bucket
                    .as_mut()
                    .and_then(|b| b.take(n, std::time::Instant::now()))
                {
                    smol::Timer::after(wait).await;
                }
            }
            Wake::Msgs(msgs) => {
                // A burst becomes one write.
                let now = now_ms();
                for msg in msgs {
                    match msg {
                        ConnMsg::Deliver(el) => stream.send_stanza_at(now, &el),
                        ConnMsg::Close(cond) => stream.close(cond),
                    }
                }
            }
            Wake::Timer => {
                armed = None;
                stream.handle_timeout(now_ms());
            }
        }
    }
    mailbox.close();
    shared.conns().remove(&conn_id);
    if let Some(p) = partition {
        shared.router.send(p, HubMsg::Closed(conn_id));
    }
    tracing::debug!(conn = conn_id, "disconnected");
}
