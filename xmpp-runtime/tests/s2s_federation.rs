//! Two servers federating on loopback: a.localhost and b.localhost, each
//! with a self-signed certificate (so dialback authenticates them over
//! TLS), routed to each other by static routes. Users of each exchange
//! messages and iqs across; errors come back as RFC 6120 says.

mod support;

use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::time::Duration;
use support::dnsmasq::{host, srv, Dnsmasq};
use xmpp_core::hub::HubConfig;
use xmpp_core::jid::Jid;
use xmpp_core::sasl::StoredCredentials;
use xmpp_core::storage::{StorageRequest, StorageResult};
use xmpp_core::stream::{ClientConfig, ServerStreamConfig};
use xmpp_core::Element;
use xmpp_runtime::client::{Client, TlsMode};
use xmpp_runtime::s2s::{S2sConfig, S2sOverrides};
use xmpp_runtime::storage::{Backend, MemoryBackend};
use xmpp_runtime::tls::{generate_self_signed, server_tls};
use xmpp_runtime::{RunningServer, RuntimeConfig};

const PASSWORD: &str = "federation-pw";
const WAIT: Duration = Duration::from_secs(20);

fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

/// A server for `domain` with `users`, its s2s listener on `s2s_port`,
/// and static routes to the other servers.
fn server(
    domain: &str,
    users: &[&str],
    s2s_port: u16,
    routes: &[(&str, u16)],
    dir: &std::path::Path,
    tweak: impl FnOnce(&mut S2sConfig),
) -> RunningServer {
    let backend: Arc<dyn Backend> = Arc::new(MemoryBackend::new());
    let credentials = StoredCredentials::derive(PASSWORD, b"federation-salt", 4096).expect("kdf");
    let requests = users
        .iter()
        .map(|u| StorageRequest::CreateAccount {
            account: format!("{u}@{domain}"),
            credentials: credentials.clone(),
        })
        .collect();
    for r in backend.execute_batch(requests) {
        assert_eq!(r, StorageResult::Done);
    }
    let paths = generate_self_signed(&[domain.to_owned()], dir).expect("certificate");
    let tls = server_tls(&paths.cert, &paths.key).expect("tls");
    let mut overrides = S2sOverrides::new();
    for (d, port) in routes {
        overrides
            .insert(d, &format!("127.0.0.1:{port}"))
            .expect("route");
    }
    let mut s2s = S2sConfig {
        port: s2s_port,
        overrides,
        ..S2sConfig::default()
    };
    tweak(&mut s2s);
    let cfg = RuntimeConfig {
        stream: ServerStreamConfig {
            domains: vec![domain.to_owned()],
            require_encryption: false,
            ..ServerStreamConfig::default()
        },
        hub: HubConfig {
            domains: vec![domain.to_owned()],
            ..HubConfig::default()
        },
        tls: Some(Arc::new(tls)),
        threads: 2,
        partitions: 2,
        scram_iterations: 4096,
        s2s: Some(s2s),
        ..RuntimeConfig::default()
    };
    xmpp_runtime::start(cfg, backend).expect("server starts")
}

async fn login(addr: SocketAddr, account: &str) -> Client {
    let mut cfg = ClientConfig::new(Jid::parse(account).expect("jid"), PASSWORD);
    TlsMode::None.apply(&mut cfg);
    let mut c = Client::connect_with(addr, cfg, TlsMode::None)
        .await
        .unwrap_or_else(|e| panic!("{account}: login failed: {e}"));
    c.queue_raw(b"<presence/>");
    c.flush().await.expect("presence");
    c
}

fn message(to: &str, body: &str) -> Vec<u8> {
    format!("<message to='{to}' type='chat' id='{body}'><body>{body}</body></message>").into_bytes()
}

/// The next stanza named `name` (others skipped).
async fn next(c: &mut Client, name: &str) -> Element {
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        assert!(!left.is_zero(), "no <{name}/> within {WAIT:?}");
        match c.recv_timeout(left).await {
            Ok(el) if el.name == name => return el,
            Ok(_) => {}
            Err(e) => panic!("waiting for <{name}/>: {e}"),
        }
    }
}

fn body(el: &Element) -> Option<String> {
    el.child(xmpp_core::ns::CLIENT, "body").map(|b| b.text())
}

fn error_condition(el: &Element) -> Option<String> {
    let err = el.child(xmpp_core::ns::CLIENT, "error")?;
    err.elements().next().map(|c| c.name.clone())
}

struct Pair {
    a: RunningServer,
    b: RunningServer,
    _dirs: (tempfile::TempDir, tempfile::TempDir),
}

fn pair(extra_route: Option<(&str, u16)>) -> Pair {
    pair_with(extra_route, false)
}

fn pair_with(extra_route: Option<(&str, u16)>, bidi: bool) -> Pair {
    let (pa, pb) = (free_port(), free_port());
    let (da, db) = (
        tempfile::tempdir().expect("dir"),
        tempfile::tempdir().expect("dir"),
    );
    let mut routes_a = vec![("b.localhost", pb)];
    routes_a.extend(extra_route);
    let with_bidi = |s: &mut S2sConfig| {
        s.incoming.bidi = bidi;
        s.outgoing.bidi = bidi;
    };
    let a = server(
        "a.localhost",
        &["alice"],
        pa,
        &routes_a,
        da.path(),
        with_bidi,
    );
    let b = server(
        "b.localhost",
        &["bob"],
        pb,
        &[("a.localhost", pa)],
        db.path(),
        with_bidi,
    );
    Pair {
        a,
        b,
        _dirs: (da, db),
    }
}

#[test]
fn messages_and_iqs_cross_both_ways() {
    exchange(pair(None));
}

/// The same over bidirectional streams (XEP-0288): each server's
/// stanzas go back over the stream the other opened.
#[test]
fn messages_and_iqs_cross_both_ways_over_bidi() {
    let p = pair_with(None, true);
    let p = exchange(p);
    let pair = |a: &str, b: &str| (a.to_owned(), b.to_owned());
    assert_eq!(
        p.b.s2s_status().bidi,
        vec![pair("b.localhost", "a.localhost")]
    );
    assert_eq!(
        p.a.s2s_status().bidi,
        vec![pair("a.localhost", "b.localhost")]
    );
}

fn exchange(p: Pair) -> Pair {
    smol::block_on(async {
        let mut alice = login(p.a.c2s_addr, "alice@a.localhost").await;
        let mut bob = login(p.b.c2s_addr, "bob@b.localhost").await;

        alice.queue_raw(&message("bob@b.localhost", "hello-bob"));
        alice.flush().await.expect("send");
        let got = next(&mut bob, "message").await;
        assert_eq!(body(&got).as_deref(), Some("hello-bob"));
        assert!(
            got.attr("from")
                .is_some_and(|f| f.starts_with("alice@a.localhost/")),
            "from the sender's full JID: {got:?}"
        );

        // Back over the other direction's link, to the full JID.
        let to = got.attr("from").unwrap_or_default().to_owned();
        bob.queue_raw(&message(&to, "hello-alice"));
        bob.flush().await.expect("send");
        let got = next(&mut alice, "message").await;
        assert_eq!(body(&got).as_deref(), Some("hello-alice"));

        // An iq to the remote server itself, answered by it.
        alice.queue_raw(
            b"<iq type='get' to='b.localhost' id='v1'><query xmlns='jabber:iq:version'/></iq>",
        );
        alice.flush().await.expect("send");
        let got = next(&mut alice, "iq").await;
        assert_eq!(got.attr("type"), Some("result"), "{got:?}");
        assert_eq!(got.attr("from"), Some("b.localhost"));

        // A user the remote server does not have: its error comes back.
        alice.queue_raw(&message("nobody@b.localhost", "lost"));
        alice.flush().await.expect("send");
        let got = next(&mut alice, "message").await;
        assert_eq!(got.attr("type"), Some("error"), "{got:?}");
        assert_eq!(got.attr("from"), Some("nobody@b.localhost"));
    });
    p
}

#[test]
fn an_unreachable_domain_bounces_remote_server_not_found() {
    // c.localhost is routed to a port nobody listens on.
    let closed = free_port();
    let p = pair(Some(("c.localhost", closed)));
    smol::block_on(async {
        let mut alice = login(p.a.c2s_addr, "alice@a.localhost").await;
        for i in 0..3 {
            alice.queue_raw(&message("carol@c.localhost", &format!("m{i}")));
        }
        alice.flush().await.expect("send");
        for _ in 0..3 {
            let got = next(&mut alice, "message").await;
            assert_eq!(got.attr("type"), Some("error"), "{got:?}");
            assert_eq!(
                error_condition(&got).as_deref(),
                Some("remote-server-not-found")
            );
        }
    });
}

/// A user writing to many domains that never answer: 16 links at a time
/// are set up for them, stanzas needing more bounce at once with
/// resource-constraint, the rest bounce with remote-server-timeout when
/// the peer stays silent; every stanza gets its answer.
#[test]
fn one_sender_sets_up_a_bounded_number_of_links() {
    // Accepts connections (the kernel does) and never says a word.
    let silent = TcpListener::bind("127.0.0.1:0").expect("bind");
    let silent_port = silent.local_addr().expect("addr").port();
    let dir = tempfile::tempdir().expect("dir");
    let domains: Vec<String> = (0..40).map(|i| format!("d{i}.localhost")).collect();
    let routes: Vec<(&str, u16)> = domains.iter().map(|d| (d.as_str(), silent_port)).collect();
    let a = server(
        "a.localhost",
        &["alice"],
        free_port(),
        &routes,
        dir.path(),
        |s| s.outgoing.auth_timeout_ms = 1500,
    );
    smol::block_on(async {
        let mut alice = login(a.c2s_addr, "alice@a.localhost").await;
        for d in &domains {
            alice.queue_raw(&message(&format!("x@{d}"), "hi"));
        }
        alice.flush().await.expect("send");
        let mut conditions = std::collections::BTreeMap::<String, usize>::new();
        for _ in &domains {
            let got = next(&mut alice, "message").await;
            assert_eq!(got.attr("type"), Some("error"), "{got:?}");
            *conditions
                .entry(error_condition(&got).unwrap_or_default())
                .or_default() += 1;
        }
        assert_eq!(
            conditions.get("resource-constraint"),
            Some(&24),
            "{conditions:?}"
        );
        assert_eq!(
            conditions.get("remote-server-timeout"),
            Some(&16),
            "{conditions:?}"
        );
    });
    // Every link is gone: the sender may set up new ones.
    assert!(a.s2s_status().outgoing.is_empty());
    drop(silent);
}

/// DNS drives the links (XEP-0368): b.test is found by its
/// `_xmpps-server` record and reached with TLS from the first byte (its
/// direct-TLS listener), a.test by its `_xmpp-server` record (STARTTLS),
/// both asked of a real DNS server on loopback.
#[test]
fn srv_records_and_direct_tls() {
    let (a_s2s, b_s2s, b_tls) = (free_port(), free_port(), free_port());
    let zone = vec![
        srv("xmpps-server", "b.test", "tls.b.test", b_tls, 0, 0),
        host("tls.b.test", &["127.0.0.1"]),
        srv("xmpp-server", "a.test", "s2s.a.test", a_s2s, 0, 0),
        host("s2s.a.test", &["127.0.0.1"]),
    ];
    let Some(dns) = Dnsmasq::start("srv_records_and_direct_tls", &zone) else {
        return;
    };
    let (da, db) = (
        tempfile::tempdir().expect("dir"),
        tempfile::tempdir().expect("dir"),
    );
    let ns = dns.addr;
    let a = server("a.test", &["alice"], a_s2s, &[], da.path(), |s| {
        s.nameservers = vec![ns];
    });
    let b = server("b.test", &["bob"], b_s2s, &[], db.path(), |s| {
        s.nameservers = vec![ns];
        s.tls_port = Some(b_tls);
    });
    smol::block_on(async {
        let mut alice = login(a.c2s_addr, "alice@a.test").await;
        let mut bob = login(b.c2s_addr, "bob@b.test").await;
        alice.queue_raw(&message("bob@b.test", "over-direct-tls"));
        alice.flush().await.expect("send");
        let got = next(&mut bob, "message").await;
        assert_eq!(body(&got).as_deref(), Some("over-direct-tls"));
        bob.queue_raw(&message("alice@a.test", "over-starttls"));
        bob.flush().await.expect("send");
        let got = next(&mut alice, "message").await;
        assert_eq!(body(&got).as_deref(), Some("over-starttls"));
    });
    assert_eq!(b.s2s_tls_addr.map(|a| a.port()), Some(b_tls));
}

/// A link that carried nothing for the idle timeout closes; the next
/// stanza opens a new one.
#[test]
fn idle_links_close_and_reopen() {
    let (pa, pb) = (free_port(), free_port());
    let (da, db) = (
        tempfile::tempdir().expect("dir"),
        tempfile::tempdir().expect("dir"),
    );
    let quick = |s: &mut S2sConfig| s.idle_timeout = Duration::from_millis(500);
    let a = server(
        "a.localhost",
        &["alice"],
        pa,
        &[("b.localhost", pb)],
        da.path(),
        quick,
    );
    let b = server(
        "b.localhost",
        &["bob"],
        pb,
        &[("a.localhost", pa)],
        db.path(),
        quick,
    );
    smol::block_on(async {
        let mut alice = login(a.c2s_addr, "alice@a.localhost").await;
        let mut bob = login(b.c2s_addr, "bob@b.localhost").await;
        alice.queue_raw(&message("bob@b.localhost", "first"));
        alice.flush().await.expect("send");
        assert_eq!(
            body(&next(&mut bob, "message").await).as_deref(),
            Some("first")
        );
        assert!(!a.s2s_status().outgoing.is_empty());
        let deadline = std::time::Instant::now() + WAIT;
        while !a.s2s_status().outgoing.is_empty() {
            assert!(
                std::time::Instant::now() < deadline,
                "the idle link never closed"
            );
            smol::Timer::after(Duration::from_millis(50)).await;
        }
        alice.queue_raw(&message("bob@b.localhost", "second"));
        alice.flush().await.expect("send");
        assert_eq!(
            body(&next(&mut bob, "message").await).as_deref(),
            Some("second")
        );
    });
}

/// Policy: a denied domain gets nothing (not-allowed, no connection); a
/// server requiring secure authentication refuses a peer whose
/// certificate does not verify (self-signed here), and the sender hears
/// remote-server-not-found rather than silence.
#[test]
fn denied_domains_and_secure_auth() {
    let (pa, pb) = (free_port(), free_port());
    let (da, db) = (
        tempfile::tempdir().expect("dir"),
        tempfile::tempdir().expect("dir"),
    );
    let a = server(
        "a.localhost",
        &["alice"],
        pa,
        &[("b.localhost", pb), ("c.localhost", pb)],
        da.path(),
        |s| s.blocked_domains = vec!["c.localhost".into()],
    );
    let b = server(
        "b.localhost",
        &["bob"],
        pb,
        &[("a.localhost", pa)],
        db.path(),
        |s| s.secure_auth = true,
    );
    smol::block_on(async {
        let mut alice = login(a.c2s_addr, "alice@a.localhost").await;
        alice.queue_raw(&message("carol@c.localhost", "denied"));
        alice.flush().await.expect("send");
        let got = next(&mut alice, "message").await;
        assert_eq!(
            error_condition(&got).as_deref(),
            Some("not-allowed"),
            "{got:?}"
        );
        assert!(
            a.s2s_status().outgoing.is_empty(),
            "no link for a denied domain"
        );

        // b.localhost wants a verified certificate; a's is self-signed.
        alice.queue_raw(&message("bob@b.localhost", "insecure"));
        alice.flush().await.expect("send");
        let got = next(&mut alice, "message").await;
        assert_eq!(got.attr("type"), Some("error"), "{got:?}");
        assert_eq!(
            error_condition(&got).as_deref(),
            Some("remote-server-not-found"),
            "{got:?}"
        );
    });
    drop(b);
}

/// Shutting down closes the s2s streams both ways at once (the incoming
/// ones with system-shutdown) instead of waiting out the grace period for
/// them, and the peer notices: its link is gone.
#[test]
fn shutdown_closes_s2s_streams() {
    let p = pair(None);
    smol::block_on(async {
        let mut alice = login(p.a.c2s_addr, "alice@a.localhost").await;
        let mut bob = login(p.b.c2s_addr, "bob@b.localhost").await;
        alice.queue_raw(&message("bob@b.localhost", "before"));
        alice.flush().await.expect("send");
        assert_eq!(
            body(&next(&mut bob, "message").await).as_deref(),
            Some("before")
        );
        bob.queue_raw(&message("alice@a.localhost", "back"));
        bob.flush().await.expect("send");
        assert_eq!(
            body(&next(&mut alice, "message").await).as_deref(),
            Some("back")
        );
    });
    assert!(!p.b.s2s_status().outgoing.is_empty());
    let Pair { a, b, _dirs } = p;
    let started = std::time::Instant::now();
    a.shutdown(Duration::from_secs(20));
    let took = started.elapsed();
    assert!(took < Duration::from_secs(5), "shutdown took {took:?}");
    let deadline = std::time::Instant::now() + WAIT;
    while !b.s2s_status().outgoing.is_empty() {
        assert!(
            std::time::Instant::now() < deadline,
            "b's link to a outlived a"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}
