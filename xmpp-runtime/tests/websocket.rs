//! XMPP over WebSocket (RFC 7395) through a running server: the upgrade on
//! the HTTP listener, a session on it that logs in, binds and exchanges
//! messages, the closing handshake, refusals, and a stream-management
//! session resumed on a new WebSocket after the first one broke.
//!
//! The client here is written by hand on purpose (every byte visible);
//! real clients (Converse.js, xmpp.js) are driven by the interop suite.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::Duration;
use xmpp_core::sasl::StoredCredentials;
use xmpp_core::storage::StorageRequest;
use xmpp_runtime::storage::{Backend, MemoryBackend};
use xmpp_runtime::{HttpConfig, RunningServer, RuntimeConfig, WebSocketConfig};

const OPEN: &str =
    "<open xmlns='urn:ietf:params:xml:ns:xmpp-framing' to='localhost' version='1.0'/>";
const CLOSE: &str = "<close xmlns='urn:ietf:params:xml:ns:xmpp-framing'/>";

fn start(origins: Option<Vec<String>>) -> RunningServer {
    let backend: Arc<dyn Backend> = Arc::new(MemoryBackend::new());
    let credentials = StoredCredentials::derive("secret", b"ws-salt", 4096).expect("derive");
    let requests = ["alice@localhost", "bob@localhost"]
        .into_iter()
        .map(|a| StorageRequest::CreateAccount {
            account: a.to_owned(),
            credentials: credentials.clone(),
        })
        .collect();
    backend.execute_batch(requests);
    let cfg = RuntimeConfig {
        threads: 2,
        partitions: 2,
        http: Some(HttpConfig {
            port: Some(0),
            websocket: Some(WebSocketConfig {
                origins,
                // Plain HTTP on loopback stands in for a TLS proxy.
                consider_secure: true,
                see_other_uri: None,
            }),
            ..HttpConfig::default()
        }),
        ..RuntimeConfig::default()
    };
    xmpp_runtime::start(cfg, backend).expect("server starts")
}

struct Ws {
    tcp: TcpStream,
}

impl Ws {
    /// Upgrade a fresh connection; the server's answer head comes back on
    /// refusal.
    fn connect(addr: SocketAddr, extra: &str) -> Result<Ws, String> {
        let mut tcp = TcpStream::connect(addr).map_err(|e| e.to_string())?;
        tcp.set_read_timeout(Some(Duration::from_secs(10)))
            .map_err(|e| e.to_string())?;
        let request = format!(
            "GET /xmpp-websocket HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\n\
             Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
             Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: xmpp\r\n{extra}\r\n"
        );
        tcp.write_all(request.as_bytes())
            .map_err(|e| e.to_string())?;
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            if tcp.read(&mut byte).map_err(|e| e.to_string())? == 0 {
                break;
            }
            head.push(byte[0]);
        }
        let head = String::from_utf8_lossy(&head).into_owned();
        if !head.starts_with("HTTP/1.1 101 ") {
            return Err(head);
        }
        // RFC 6455 §1.3's example key and its accept value.
        assert!(
            head.contains("Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"),
            "{head}"
        );
        assert!(head.contains("Sec-WebSocket-Protocol: xmpp\r\n"), "{head}");
        Ok(Ws { tcp })
    }

    fn send(&mut self, text: &str) {
        self.frame(1, text.as_bytes());
    }

    fn frame(&mut self, opcode: u8, payload: &[u8]) {
        let mask = [9u8, 8, 7, 6];
        let mut out = vec![0x80 | opcode];
        match payload.len() {
            n @ 0..=125 => out.push(0x80 | n as u8),
            n @ 126..=0xffff => {
                out.push(0x80 | 126);
                out.extend_from_slice(&(n as u16).to_be_bytes());
            }
            n => {
                out.push(0x80 | 127);
                out.extend_from_slice(&(n as u64).to_be_bytes());
            }
        }
        out.extend_from_slice(&mask);
        out.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
        self.tcp.write_all(&out).expect("write frame");
    }

    /// The next frame: opcode and payload; `None` when the server closed
    /// the TCP connection.
    fn read(&mut self) -> Option<(u8, Vec<u8>)> {
        let mut head = [0u8; 2];
        self.tcp.read_exact(&mut head).ok()?;
        assert_eq!(head[1] & 0x80, 0, "a server never masks");
        let len = match head[1] & 0x7f {
            126 => {
                let mut l = [0u8; 2];
                self.tcp.read_exact(&mut l).ok()?;
                u16::from_be_bytes(l) as usize
            }
            127 => {
                let mut l = [0u8; 8];
                self.tcp.read_exact(&mut l).ok()?;
                u64::from_be_bytes(l) as usize
            }
            n => n as usize,
        };
        let mut payload = vec![0u8; len];
        self.tcp.read_exact(&mut payload).ok()?;
        Some((head[0] & 0x0f, payload))
    }

    /// The next text message, skipping pings.
    fn text(&mut self) -> String {
        loop {
            let (opcode, payload) = self.read().expect("a frame");
            match opcode {
                1 => return String::from_utf8(payload).expect("UTF-8"),
                9 => continue,
                other => panic!("expected text, got opcode {other}: {payload:?}"),
            }
        }
    }

    /// Text messages until one contains `needle`.
    fn until(&mut self, needle: &str) -> String {
        loop {
            let t = self.text();
            if t.contains(needle) {
                return t;
            }
        }
    }

    /// Open, authenticate with PLAIN and bind `resource`.
    fn login(&mut self, plain: &str, resource: &str) {
        self.send(OPEN);
        assert!(self.text().starts_with("<open "));
        assert!(self.until("<stream:features").contains("PLAIN"));
        self.send(&format!(
            "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>{plain}</auth>"
        ));
        assert!(self.text().starts_with("<success"));
        self.send(OPEN);
        self.until("<stream:features");
        self.send(&format!(
            "<iq xmlns='jabber:client' type='set' id='bind'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>{resource}</resource></bind></iq>"
        ));
        assert!(self.until("id='bind'").contains("type='result'"));
    }
}

const ALICE: &str = "AGFsaWNlAHNlY3JldA==";
const BOB: &str = "AGJvYgBzZWNyZXQ=";

#[test]
fn two_websocket_sessions_exchange_a_message_and_close_cleanly() {
    let server = start(None);
    let addr = server.http_addr.expect("http listener");
    let mut alice = Ws::connect(addr, "Origin: https://web.example\r\n").expect("upgrade");
    let mut bob = Ws::connect(addr, "").expect("upgrade");
    alice.login(ALICE, "web");
    bob.login(BOB, "web");
    alice.send("<presence xmlns='jabber:client'/>");
    bob.send("<presence xmlns='jabber:client'/>");
    alice.send(
        "<message xmlns='jabber:client' to='bob@localhost/web' type='chat' id='m1'><body>over the web</body></message>",
    );
    let got = bob.until("over the web");
    assert!(got.starts_with("<message xmlns='jabber:client'"), "{got}");
    assert!(got.contains("from='alice@localhost/web'"), "{got}");

    bob.send(CLOSE);
    assert_eq!(
        bob.until("<close"),
        "<close xmlns=\"urn:ietf:params:xml:ns:xmpp-framing\" />",
        "spelled as Strophe.js matches it"
    );
    let (opcode, payload) = bob.read().expect("the WebSocket close");
    assert_eq!((opcode, &payload[..2]), (8, &1000u16.to_be_bytes()[..]));
    assert!(bob.read().is_none(), "the server closes the connection");
}

#[test]
fn upgrades_without_xmpp_or_from_other_origins_are_refused() {
    let server = start(Some(vec!["https://chat.example".to_owned()]));
    let addr = server.http_addr.expect("http listener");
    let refused = Ws::connect(addr, "Origin: https://evil.example\r\n")
        .err()
        .expect("refused");
    assert!(refused.starts_with("HTTP/1.1 403 "), "{refused}");
    assert!(Ws::connect(addr, "Origin: https://chat.example\r\n").is_ok());

    let mut tcp = TcpStream::connect(addr).expect("connect");
    tcp.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    tcp.write_all(
        b"GET /xmpp-websocket HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
          Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\
          Sec-WebSocket-Protocol: chat\r\nConnection: close\r\n\r\n",
    )
    .expect("write");
    let mut answer = String::new();
    let _ = tcp.read_to_string(&mut answer);
    assert!(answer.starts_with("HTTP/1.1 400 "), "{answer}");
    assert!(answer.contains("xmpp subprotocol"), "{answer}");
}

#[test]
fn a_session_resumes_on_a_new_websocket_after_the_first_broke() {
    let server = start(None);
    let addr = server.http_addr.expect("http listener");
    let mut alice = Ws::connect(addr, "").expect("upgrade");
    alice.login(ALICE, "phone");
    alice.send("<enable xmlns='urn:xmpp:sm:3' resume='true'/>");
    let enabled = alice.until("<enabled");
    let id = enabled
        .split("id='")
        .nth(1)
        .and_then(|r| r.split('\'').next())
        .expect("an SM-ID")
        .to_owned();
    alice.send("<presence xmlns='jabber:client'/>");
    alice.until("<presence");
    // The browser tab loses its network: no <close/>, no Close frame.
    alice.tcp.shutdown(std::net::Shutdown::Both).expect("drop");
    drop(alice);

    let mut bob = Ws::connect(addr, "").expect("upgrade");
    bob.login(BOB, "desk");
    bob.send(
        "<message xmlns='jabber:client' to='alice@localhost/phone' type='chat'><body>while you were away</body></message>",
    );

    let mut again = Ws::connect(addr, "").expect("upgrade");
    again.send(OPEN);
    again.until("<stream:features");
    again.send(&format!(
        "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>{ALICE}</auth>"
    ));
    assert!(again.text().starts_with("<success"));
    again.send(OPEN);
    again.until("<stream:features");
    again.send(&format!(
        "<resume xmlns='urn:xmpp:sm:3' previd='{id}' h='0'/>"
    ));
    assert!(again.until("<resumed").contains(&id));
    let missed = again.until("while you were away");
    assert!(missed.contains("to='alice@localhost/phone'"), "{missed}");
}

#[test]
fn host_meta_advertises_the_websocket_to_any_origin() {
    let server = start(None);
    let addr = server.http_addr.expect("http listener");
    for (doc, expected) in [
        (
            "host-meta.json",
            format!("\"href\":\"ws://{addr}/xmpp-websocket\"}},{{\"rel\":\"urn:xmpp:alt-connections:xbosh\",\"href\":\"http://{addr}/http-bind\""),
        ),
        (
            "host-meta",
            format!("rel='urn:xmpp:alt-connections:websocket' href='ws://{addr}/xmpp-websocket'"),
        ),
    ] {
        let mut tcp = TcpStream::connect(addr).expect("connect");
        tcp.set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        let request = format!(
            "GET /.well-known/{doc} HTTP/1.1\r\nHost: {addr}\r\nOrigin: https://web.example\r\nConnection: close\r\n\r\n"
        );
        tcp.write_all(request.as_bytes()).expect("write");
        let mut answer = String::new();
        let _ = tcp.read_to_string(&mut answer);
        assert!(answer.starts_with("HTTP/1.1 200 "), "{answer}");
        assert!(
            answer.contains("Access-Control-Allow-Origin: *\r\n"),
            "{answer}"
        );
        assert!(answer.contains(&expected), "{answer}");
    }
}
