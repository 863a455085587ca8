//! The HTTP listeners of a running server (issue 14): `/health` over HTTP
//! and HTTPS, refusals, the per-address cap, and 503 while shutting down.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::Duration;
use xmpp_runtime::storage::{Backend, MemoryBackend};
use xmpp_runtime::tls::{generate_self_signed, insecure_client_config, server_tls};
use xmpp_runtime::{HttpConfig, RunningServer, RuntimeConfig};

fn start(dir: &std::path::Path, max_per_address: usize) -> RunningServer {
    let paths = generate_self_signed(&["localhost".to_owned()], dir).expect("certificate");
    let tls = server_tls(&paths.cert, &paths.key).expect("tls");
    let backend: Arc<dyn Backend> = Arc::new(MemoryBackend::new());
    let cfg = RuntimeConfig {
        tls: Some(Arc::new(tls)),
        threads: 2,
        partitions: 2,
        http: Some(HttpConfig {
            port: Some(0),
            tls_port: Some(0),
            max_per_address,
            ..HttpConfig::default()
        }),
        ..RuntimeConfig::default()
    };
    xmpp_runtime::start(cfg, backend).expect("server starts")
}

/// Send `request` on a fresh connection and read until the server closes.
fn exchange(server: &RunningServer, request: &str) -> String {
    let addr = server.http_addr.expect("http listener");
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    s.write_all(request.as_bytes()).expect("write");
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out
}

#[test]
fn health_and_refusals_over_http() {
    let dir = tempfile::tempdir().expect("dir");
    let server = start(dir.path(), 64);
    let ok = exchange(
        &server,
        "GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    assert!(ok.starts_with("HTTP/1.1 200 OK\r\n"), "{ok}");
    assert!(ok.contains("\"status\":\"ok\""), "{ok}");
    assert!(ok.contains("X-Content-Type-Options: nosniff"), "{ok}");
    assert!(
        !ok.contains("Strict-Transport-Security"),
        "no HSTS over plain HTTP"
    );
    for (request, status) in [
        ("GET /nothing HTTP/1.1\r\nConnection: close\r\n\r\n", "404"),
        ("POST /health HTTP/1.1\r\nConnection: close\r\n\r\n", "405"),
        ("GET /health/%2e%2e/api HTTP/1.1\r\n\r\n", "400"),
        ("GET /health;x HTTP/1.1\r\n\r\n", "400"),
        ("BREW /health HTCPCP/1.0\r\n\r\n", "400"),
    ] {
        let got = exchange(&server, request);
        assert!(
            got.starts_with(&format!("HTTP/1.1 {status} ")),
            "{request:?}: {got}"
        );
    }
    server.shutdown(Duration::from_secs(2));
}

#[test]
fn health_over_https_carries_hsts() {
    let dir = tempfile::tempdir().expect("dir");
    let server = start(dir.path(), 64);
    let addr = server.https_addr.expect("https listener");
    let got = smol::block_on(async {
        let tcp = smol::net::TcpStream::connect(addr).await.expect("connect");
        let name = rustls::pki_types::ServerName::try_from("localhost").expect("name");
        let mut tls = futures_rustls::TlsConnector::from(insecure_client_config())
            .connect(name, tcp)
            .await
            .expect("handshake");
        use smol::io::{AsyncReadExt, AsyncWriteExt};
        tls.write_all(b"GET /health HTTP/1.1\r\nConnection: close\r\n\r\n")
            .await
            .expect("write");
        let mut out = String::new();
        let _ = tls.read_to_string(&mut out).await;
        out
    });
    assert!(got.starts_with("HTTP/1.1 200 OK\r\n"), "{got}");
    assert!(got.contains("Strict-Transport-Security: max-age="), "{got}");
    server.shutdown(Duration::from_secs(2));
}

#[test]
fn one_address_holds_at_most_its_share() {
    let dir = tempfile::tempdir().expect("dir");
    let server = start(dir.path(), 3);
    let addr = server.http_addr.expect("http listener");
    let held: Vec<TcpStream> = (0..3)
        .map(|_| TcpStream::connect(addr).expect("connect"))
        .collect();
    std::thread::sleep(Duration::from_millis(200));
    let mut extra = TcpStream::connect(addr).expect("connect");
    extra
        .set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    let _ = extra.write_all(b"GET /health HTTP/1.1\r\n\r\n");
    let mut buf = [0u8; 64];
    let n = extra.read(&mut buf).unwrap_or(0);
    assert_eq!(n, 0, "the fourth connection is closed unanswered");
    drop(held);
    std::thread::sleep(Duration::from_millis(200));
    let ok = exchange(&server, "GET /health HTTP/1.1\r\nConnection: close\r\n\r\n");
    assert!(ok.starts_with("HTTP/1.1 200"), "slots come back: {ok}");
    server.shutdown(Duration::from_secs(2));
}

/// While the server shuts down, `/health` says 503 (a load balancer stops
/// sending clients), and a request in progress is answered, then closed.
#[test]
fn health_is_503_while_shutting_down() {
    let dir = tempfile::tempdir().expect("dir");
    let server = start(dir.path(), 64);
    let addr = server.http_addr.expect("http listener");
    // A request in progress holds the shutdown open (it is answered).
    let mut busy = TcpStream::connect(addr).expect("connect");
    busy.write_all(b"GET /health HTTP/1.1\r\n").expect("write");
    std::thread::sleep(Duration::from_millis(100));
    let stopper = std::thread::spawn(move || {
        let started = std::time::Instant::now();
        server.shutdown(Duration::from_secs(5));
        started.elapsed()
    });
    std::thread::sleep(Duration::from_millis(200));
    let mut probe = TcpStream::connect(addr).expect("connect");
    probe
        .set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    probe
        .write_all(b"GET /health HTTP/1.1\r\n\r\n")
        .expect("write");
    let mut out = String::new();
    let _ = probe.read_to_string(&mut out);
    assert!(out.starts_with("HTTP/1.1 503 "), "{out}");
    assert!(out.contains("\"status\":\"stopping\""), "{out}");
    assert!(out.contains("Connection: close"), "{out}");
    busy.write_all(b"\r\n").expect("finish the request");
    busy.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    let mut answer = String::new();
    let _ = busy.read_to_string(&mut answer);
    assert!(answer.starts_with("HTTP/1.1 503 "), "{answer}");
    let took = stopper.join().expect("shutdown");
    assert!(took < Duration::from_secs(5), "shutdown took {took:?}");
}
