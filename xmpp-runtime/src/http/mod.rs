//! The HTTP listeners (issue 14): plain and HTTPS, one task per connection
//! driving an [`HttpConnection`] from xmpp-core, and the endpoints its
//! requests are routed to (`endpoints.rs`).
//!
//! A connection counts against the server's connection limit and, per
//! address, against `max_per_address`; the machine bounds what one
//! request may cost (head, body, time). TLS uses the domains'
//! certificates, chosen by SNI, with ALPN `http/1.1`.

pub(crate) mod api;
mod bosh;
mod client_address;
mod conversejs;
mod endpoints;
mod host_meta;
mod status_page;
mod upload;
mod websocket;

use crate::accept::Admission;
use crate::clock::{now_ms, Alarm};
use crate::config::HttpConfig;
use crate::counts::Counts;
use crate::transport::Transport;
use event_listener::Event;
use futures_rustls::TlsAcceptor;
use smol::future::FutureExt;
use smol::io::AsyncWriteExt;
use smol::Async;
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use xmpp_core::http::{HttpConnection, HttpOutput, Response};

use crate::bosh_pipe::BoshRegistry;
use crate::connection::C2s;
use crate::counts::Counted;
use crate::upload_store::UploadStore;
use endpoints::Answer;
pub(crate) use endpoints::Endpoints;

/// What every HTTP connection shares.
pub(crate) struct Http {
    pub(crate) cfg: HttpConfig,
    pub(crate) endpoints: Endpoints,
    /// HTTPS: the domains' certificates with ALPN `http/1.1`.
    pub(crate) tls: Option<Arc<rustls::ServerConfig>>,
    /// Where WebSocket connections go once upgraded; `None` without c2s.
    pub(crate) c2s: Option<Arc<C2s>>,
    /// The live BOSH sessions.
    pub(crate) bosh: Arc<BoshRegistry>,
    /// Where BOSH sessions' connection tasks run.
    executor: Arc<smol::Executor<'static>>,
    /// The uploaded files (XEP-0363), when uploads are on.
    pub(crate) uploads: Option<Arc<UploadStore>>,
    /// The admin API, when it is on.
    pub(crate) api: Option<Arc<api::Api>>,
    per_address: Arc<Counts<IpAddr>>,
    /// The server is shutting down (health says 503).
    stopping: AtomicBool,
    /// Wakes connections when the server starts shutting down.
    stop: Event,
}

impl Http {
    pub(crate) fn new(
        cfg: HttpConfig,
        endpoints: Endpoints,
        tls: Option<Arc<rustls::ServerConfig>>,
        c2s: Option<Arc<C2s>>,
        executor: Arc<smol::Executor<'static>>,
        uploads: Option<Arc<UploadStore>>,
        api: Option<Arc<api::Api>>,
    ) -> Arc<Http> {
        let mut cfg = cfg;
        if let Some(upload) = &cfg.upload {
            // Upload bodies go to disk as they come, never whole into memory.
            cfg.limits.streamed_prefix = Some("upload");
            cfg.limits.max_streamed_bytes =
                usize::try_from(upload.max_file_size).unwrap_or(usize::MAX);
        }
        Arc::new(Http {
            uploads,
            api,
            cfg,
            endpoints,
            tls,
            c2s,
            bosh: Arc::default(),
            executor,
            per_address: Counts::new(),
            stopping: AtomicBool::new(false),
            stop: Event::new(),
        })
    }

    /// The server shuts down: `/health` says 503 from now on, idle
    /// connections close, busy ones after their answer.
    pub(crate) fn shut_down(&self) {
        self.stopping.store(true, Ordering::Release);
        self.stop.notify(usize::MAX);
    }
}

/// Accept HTTP (or, with `secure`, HTTPS) connections until the listener
/// fails.
pub(crate) async fn accept_loop(
    ex: Arc<smol::Executor<'static>>,
    listener: Async<TcpListener>,
    secure: bool,
    admission: Admission,
    http: Arc<Http>,
) {
    let limiters = admission.limiters.clone();
    let kind = if secure { "https" } else { "http" };
    crate::accept::accept_loop(ex, listener, admission, kind, move |tcp, peer| {
        let http = http.clone();
        let limiters = limiters.clone();
        async move {
            let Some(slot) = http.per_address.take(peer.ip(), http.cfg.max_per_address) else {
                limiters.refusals.refused(
                    Some(peer.ip()),
                    &format_args!("{kind}: too many connections from this address"),
                );
                return;
            };
            serve(tcp, peer, secure, http, slot).await
        }
    })
    .await
}

enum Wake {
    Read(std::io::Result<usize>),
    Timer,
    Stop,
}

/// Serve one connection: HTTP requests until it closes, or until it
/// becomes a WebSocket. `slot` is its place in its address's count of
/// HTTP connections; an XMPP session on a WebSocket counts as c2s
/// instead.
async fn serve(
    tcp: Async<TcpStream>,
    peer: SocketAddr,
    secure: bool,
    http: Arc<Http>,
    slot: Counted<IpAddr>,
) {
    let mut transport = if secure {
        let Some(tls) = http.tls.clone() else { return };
        let timeout = http.cfg.limits.request_timeout_ms;
        let accepted = async { TlsAcceptor::from(tls).accept(tcp).await.ok() }
            .or(async {
                smol::Timer::after(std::time::Duration::from_millis(timeout)).await;
                None
            })
            .await;
        match accepted {
            Some(s) => Transport::Tls(Box::new(s)),
            None => return,
        }
    } else {
        Transport::Plain(tcp)
    };
    let mut conn = HttpConnection::new(http.cfg.limits, secure, now_ms());
    let mut alarm = Alarm::default();
    // What the client sent after an upgrade request that was accepted.
    let mut upgraded = None;
    // An upload being received, and a download whose head is queued.
    let mut put: Option<upload::Put> = None;
    let mut download: Option<(std::path::PathBuf, u64, u64, bool)> = None;
    loop {
        while let Some(out) = conn.poll_output() {
            match out {
                HttpOutput::Write(bytes) => {
                    if transport.write_all(&bytes).await.is_err() {
                        return;
                    }
                }
                HttpOutput::Request(request) if is_upload(&http, &request) => {
                    let (Some(cfg), Some(store)) = (&http.cfg.upload, &http.uploads) else {
                        continue;
                    };
                    if request.method == "PUT" {
                        match Box::pin(upload::begin(cfg, store, &request)).await {
                            Ok(p) => put = Some(p),
                            Err(refusal) => conn.respond(now_ms(), &refusal),
                        }
                        continue;
                    }
                    match Box::pin(upload::download(store, &request)).await {
                        upload::Download::Respond(r) => conn.respond(now_ms(), &r),
                        upload::Download::File {
                            head,
                            path,
                            offset,
                            length,
                        } => {
                            conn.respond_streamed(&head, length);
                            download = Some((path, offset, length, request.method == "HEAD"));
                        }
                    }
                }
                HttpOutput::BodyChunk(chunk) => {
                    if let Some(p) = put.as_mut() {
                        p.write(chunk).await;
                    }
                }
                HttpOutput::BodyEnd => {
                    if let Some(p) = put.take() {
                        let response = p.finish().await;
                        conn.respond(now_ms(), &response);
                    }
                }
                HttpOutput::Request(request) => {
                    let trusted = &http.cfg.trusted_proxies;
                    let client = client_address::client_ip(peer.ip(), &request, trusted);
                    let answer = Box::pin(http.endpoints.answer(&request, client, secure, &http));
                    match answer.await {
                        Answer::Respond(response) => conn.respond(now_ms(), &response),
                        Answer::WebSocket(switch) => {
                            // Admitted before the 101, as a TCP connection
                            // is at accept: a refusal is an HTTP answer a
                            // browser understands, not a dropped socket.
                            let admitted = http
                                .c2s
                                .as_ref()
                                .and_then(|c2s| crate::connection::admit(c2s, Some(client)));
                            match admitted {
                                Some(slot) => {
                                    upgraded = Some((conn.upgrade(&switch), client, slot))
                                }
                                None => conn.respond(
                                    now_ms(),
                                    &Response::text(503, "too many connections from this address")
                                        .header("Retry-After", "10"),
                                ),
                            }
                        }
                        Answer::Converse => {
                            let Some(dir) = http.cfg.conversejs_dir.as_deref() else {
                                continue;
                            };
                            let domain =
                                http.endpoints.domains.first().cloned().unwrap_or_default();
                            let served = conversejs::answer(
                                dir,
                                &request,
                                secure,
                                http.cfg.external_url.as_deref(),
                                &domain,
                                http.cfg.websocket.is_some(),
                                http.cfg.bosh.is_some(),
                            );
                            match served {
                                conversejs::Served::Respond(r) => conn.respond(now_ms(), &r),
                                conversejs::Served::File { head, path, length } => {
                                    conn.respond_streamed(&head, length);
                                    download = Some((path, 0, length, request.method == "HEAD"));
                                }
                            }
                        }
                        Answer::Api => {
                            let Some(api) = http.api.clone() else {
                                continue;
                            };
                            // Boxed: only API calls pay for its size.
                            let response = Box::pin(api.answer(&request, client)).await;
                            conn.respond(now_ms(), &response)
                        }
                        Answer::Bosh(cfg) => {
                            let answer = bosh::answer(&http, &cfg, &request, client, secure);
                            // Boxed: only BOSH requests pay for its size.
                            let response = Box::pin(answer).await;
                            conn.respond(now_ms(), &response)
                        }
                    }
                }
                HttpOutput::Close => {
                    let _ = transport.flush().await;
                    let _ = transport.close().await;
                    return;
                }
            }
        }
        if transport.flush().await.is_err() {
            return;
        }
        if let Some((path, offset, length, head)) = download.take() {
            if !head
                && send_file(&mut transport, &path, offset, length)
                    .await
                    .is_err()
            {
                return;
            }
            conn.body_sent(now_ms());
            continue;
        }
        if let (Some((first, client, admitted)), Some(c2s)) = (upgraded.take(), http.c2s.clone()) {
            drop(slot);
            let consider_secure = http
                .cfg
                .websocket
                .as_ref()
                .is_some_and(|w| w.consider_secure);
            // Over HTTPS the stream is encrypted; its channel bindings
            // are not offered (no SCRAM-PLUS inside a WebSocket yet).
            let tls = (secure || consider_secure).then(Vec::new);
            let ip = Some(client);
            // Boxed: an HTTP connection's future stays small.
            let see_other = http
                .cfg
                .websocket
                .as_ref()
                .and_then(|w| w.see_other_uri.clone());
            let session = crate::connection::serve_websocket(
                transport, ip, tls, admitted, first, see_other, c2s,
            );
            return Box::pin(session).await;
        }
        if conn.is_done() {
            return;
        }
        let stop = http.stop.listen();
        if stopping(&http) {
            conn.drain(now_ms());
            if conn.is_done() {
                continue;
            }
        }
        alarm.want(conn.poll_timeout());
        let read = async {
            Wake::Read(
                transport
                    .read_with(|bytes| conn.handle_input(now_ms(), bytes))
                    .await,
            )
        };
        let tick = async {
            alarm.ring().await;
            Wake::Timer
        };
        let stopped = async {
            stop.await;
            Wake::Stop
        };
        match read.or(tick).or(stopped).await {
            Wake::Read(Ok(0)) | Wake::Read(Err(_)) => return,
            Wake::Read(Ok(_)) => {}
            Wake::Timer => conn.handle_timeout(now_ms()),
            Wake::Stop => conn.drain(now_ms()),
        }
    }
}

/// Whether `request` is for the upload endpoint (`PUT`, `GET` or `HEAD`
/// of `/upload/<slot>/<name>`), when uploads are on.
fn is_upload(http: &Http, request: &xmpp_core::http::Request) -> bool {
    http.uploads.is_some()
        && request
            .target
            .segments
            .first()
            .is_some_and(|s| s == "upload")
        && matches!(request.method.as_str(), "PUT" | "GET" | "HEAD")
}

/// Write `length` bytes of the file at `path` from `offset`, a chunk at a
/// time: a download never sits whole in memory.
async fn send_file(
    transport: &mut Transport,
    path: &std::path::Path,
    offset: u64,
    length: u64,
) -> std::io::Result<()> {
    use smol::io::{AsyncReadExt, AsyncSeekExt};
    let mut file = smol::fs::File::open(path).await?;
    file.seek(std::io::SeekFrom::Start(offset)).await?;
    let mut left = length;
    let mut buf = vec![0u8; 64 * 1024];
    while left > 0 {
        let want = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
        let n = file.read(&mut buf[..want]).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        transport.write_all(&buf[..n]).await?;
        left -= n as u64;
    }
    transport.flush().await
}

/// Whether the server is stopping.
pub(crate) fn stopping(http: &Http) -> bool {
    http.stopping.load(Ordering::Acquire)
}
