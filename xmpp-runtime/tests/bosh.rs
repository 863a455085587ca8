//! XMPP over BOSH (XEP-0124, XEP-0206) through a running server: session
//! creation, login with a stream restart, a held request answered by a
//! message from another session, terminate, unknown sessions, CORS, and a
//! session that goes quiet ending after `inactivity`.
//!
//! The client is written by hand on purpose; Converse.js drives the same
//! endpoint from a browser in the interop suite.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::Duration;
use xmpp_core::bosh::BoshConfig;
use xmpp_core::sasl::StoredCredentials;
use xmpp_core::storage::StorageRequest;
use xmpp_runtime::storage::{Backend, MemoryBackend};
use xmpp_runtime::{BoshHttpConfig, HttpConfig, RunningServer, RuntimeConfig};

const NS: &str = "xmlns='http://jabber.org/protocol/httpbind'";

fn start(session: BoshConfig) -> RunningServer {
    let backend: Arc<dyn Backend> = Arc::new(MemoryBackend::new());
    let credentials = StoredCredentials::derive("secret", b"bosh-salt", 4096).expect("derive");
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
            bosh: Some(BoshHttpConfig {
                session,
                origins: None,
                consider_secure: true,
            }),
            ..HttpConfig::default()
        }),
        ..RuntimeConfig::default()
    };
    xmpp_runtime::start(cfg, backend).expect("server starts")
}

/// POST `body` to /http-bind; the response's head and body.
fn post(addr: SocketAddr, body: &str) -> (String, String) {
    let mut tcp = TcpStream::connect(addr).expect("connect");
    tcp.set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    let request = format!(
        "POST /http-bind HTTP/1.1\r\nHost: localhost\r\nOrigin: https://web.example\r\n\
         Content-Type: text/xml; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    tcp.write_all(request.as_bytes()).expect("write");
    let mut answer = String::new();
    let _ = tcp.read_to_string(&mut answer);
    let (head, body) = answer.split_once("\r\n\r\n").unwrap_or((&answer, ""));
    (head.to_owned(), body.to_owned())
}

fn attr<'a>(text: &'a str, name: &str) -> Option<&'a str> {
    let start = text.find(&format!(" {name}='"))? + name.len() + 3;
    text[start..].split('\'').next()
}

struct Bosh {
    addr: SocketAddr,
    sid: String,
    rid: u64,
}

impl Bosh {
    /// Create a session; returns it and the creation response body.
    fn create(addr: SocketAddr) -> (Bosh, String) {
        let (head, body) = post(
            addr,
            &format!("<body {NS} rid='1000' to='localhost' wait='10' hold='1' ver='1.6' xmlns:xmpp='urn:xmpp:xbosh' xmpp:version='1.0'/>"),
        );
        assert!(head.starts_with("HTTP/1.1 200 "), "{head}");
        assert!(
            head.contains("Content-Type: text/xml; charset=utf-8"),
            "{head}"
        );
        assert!(head.contains("Access-Control-Allow-Origin: *"), "{head}");
        let sid = attr(&body, "sid").expect("a sid").to_owned();
        (
            Bosh {
                addr,
                sid,
                rid: 1000,
            },
            body,
        )
    }

    fn send(&mut self, extra: &str, children: &str) -> String {
        self.rid += 1;
        let (_, body) = post(
            self.addr,
            &format!(
                "<body {NS} sid='{}' rid='{}' {extra}>{children}</body>",
                self.sid, self.rid
            ),
        );
        body
    }

    /// Send, then poll with empty requests until a response contains
    /// `needle`.
    fn until(&mut self, extra: &str, children: &str, needle: &str) -> String {
        let mut body = self.send(extra, children);
        for _ in 0..20 {
            if body.contains(needle) {
                return body;
            }
            body = self.send("", "");
        }
        panic!("no {needle} in {body}");
    }

    fn login(&mut self, plain: &str, resource: &str) {
        self.until(
            "",
            &format!(
                "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>{plain}</auth>"
            ),
            "<success",
        );
        self.until(
            "xmlns:xmpp='urn:xmpp:xbosh' xmpp:restart='true' to='localhost'",
            "",
            "urn:ietf:params:xml:ns:xmpp-bind",
        );
        self.until(
            "",
            &format!("<iq xmlns='jabber:client' type='set' id='bind'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>{resource}</resource></bind></iq>"),
            "<jid>",
        );
    }
}

#[test]
fn two_bosh_sessions_log_in_exchange_a_message_and_terminate() {
    let server = start(BoshConfig::default());
    let addr = server.http_addr.expect("http listener");
    let (mut alice, created) = Bosh::create(addr);
    for expected in [
        "wait='10'",
        "hold='1'",
        "requests='2'",
        "xmpp:version='1.0'",
    ] {
        assert!(created.contains(expected), "{expected} in {created}");
    }
    assert!(
        created.contains("<mechanism>PLAIN</mechanism>"),
        "{created}"
    );
    alice.login("AGFsaWNlAHNlY3JldA==", "web");
    let (mut bob, _) = Bosh::create(addr);
    bob.login("AGJvYgBzZWNyZXQ=", "web");
    alice.send("", "<presence xmlns='jabber:client'/>");
    bob.send("", "<presence xmlns='jabber:client'/>");

    // Bob's request is held until Alice's message arrives.
    let waiting = std::thread::spawn(move || {
        let got = bob.until("", "", "over bosh");
        (bob, got)
    });
    std::thread::sleep(Duration::from_millis(200));
    alice.send(
        "",
        "<message xmlns='jabber:client' to='bob@localhost/web' type='chat'><body>over bosh</body></message>",
    );
    let (mut bob, got) = waiting.join().expect("bob's poller");
    assert!(got.contains("from='alice@localhost/web'"), "{got}");
    assert!(got.contains("<message xmlns='jabber:client'"), "{got}");

    let end = bob.send(
        "type='terminate'",
        "<presence xmlns='jabber:client' type='unavailable'/>",
    );
    assert!(end.contains("type='terminate'"), "{end}");
    let after = bob.send("", "");
    assert!(after.contains("condition='item-not-found'"), "{after}");
}

#[test]
fn unknown_sessions_bad_bodies_and_preflights() {
    let server = start(BoshConfig::default());
    let addr = server.http_addr.expect("http listener");
    let (_, body) = post(addr, &format!("<body {NS} sid='nope' rid='5'/>"));
    assert!(
        body.contains("type='terminate'") && body.contains("condition='item-not-found'"),
        "{body}"
    );
    let (_, body) = post(addr, &format!("<body {NS} sid='nope'/>"));
    assert!(body.contains("condition='bad-request'"), "no rid: {body}");
    let (head, _) = post(addr, "this is not XML");
    assert!(head.starts_with("HTTP/1.1 400 "), "{head}");

    let mut tcp = TcpStream::connect(addr).expect("connect");
    tcp.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    tcp.write_all(
        b"OPTIONS /http-bind HTTP/1.1\r\nHost: x\r\nOrigin: https://web.example\r\n\
          Access-Control-Request-Method: POST\r\nConnection: close\r\n\r\n",
    )
    .expect("write");
    let mut answer = String::new();
    let _ = tcp.read_to_string(&mut answer);
    assert!(answer.starts_with("HTTP/1.1 200 "), "{answer}");
    assert!(
        answer.contains("Access-Control-Allow-Methods: POST, OPTIONS\r\n"),
        "{answer}"
    );
    assert!(
        answer.contains("Access-Control-Allow-Headers: Content-Type\r\n"),
        "{answer}"
    );
}

#[test]
fn a_session_without_requests_ends_after_inactivity() {
    let server = start(BoshConfig {
        max_wait_s: 1,
        inactivity_s: 1,
        ..BoshConfig::default()
    });
    let addr = server.http_addr.expect("http listener");
    let (mut alice, _) = Bosh::create(addr);
    alice.login("AGFsaWNlAHNlY3JldA==", "quiet");
    // The held request comes back after `wait`, then nothing for longer
    // than `inactivity`.
    let _ = alice.send("", "");
    std::thread::sleep(Duration::from_millis(2_500));
    let after = alice.send("", "");
    assert!(after.contains("condition='item-not-found'"), "{after}");
}

#[test]
fn what_a_vanished_session_never_fetched_goes_to_offline_storage() {
    let server = start(BoshConfig {
        max_wait_s: 1,
        inactivity_s: 1,
        ..BoshConfig::default()
    });
    let addr = server.http_addr.expect("http listener");
    let (mut alice, _) = Bosh::create(addr);
    alice.login("AGFsaWNlAHNlY3JldA==", "gone");
    alice.until("", "<presence xmlns='jabber:client'/>", "<presence");
    // Alice's last request comes back after `wait`; she sends no other.
    let _ = alice.send("", "");
    let (mut bob, _) = Bosh::create(addr);
    bob.login("AGJvYgBzZWNyZXQ=", "desk");
    bob.send(
        "",
        "<message xmlns='jabber:client' to='alice@localhost' type='chat'><body>did you get this?</body></message>",
    );
    // Alice's session ends after `inactivity` with the message unsent.
    std::thread::sleep(Duration::from_millis(2_500));
    let (mut again, _) = Bosh::create(addr);
    again.login("AGFsaWNlAHNlY3JldA==", "back");
    let got = again.until("", "<presence xmlns='jabber:client'/>", "did you get this?");
    assert!(got.contains("<delay"), "from offline storage: {got}");
}
