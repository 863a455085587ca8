//! A PEP fan-out does not hold up other routing (XEP-0163 at scale): one
//! publisher with 2,000 contacts (subscribed both ways, online, with
//! XEP-0115 caps advertising `tune+notify`) publishes items back to back,
//! 2,000 notifications each, while two other accounts exchange messages;
//! everything runs on one hub partition, the worst case. Every
//! notification and every message must arrive. The message latencies
//! before and during the fan-out are printed (`--nocapture`), not asserted:
//! timing depends on the machine.

use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use xmpp_core::hub::HubConfig;
use xmpp_core::jid::Jid;
use xmpp_core::modules::caps;
use xmpp_core::ns;
use xmpp_core::sasl::StoredCredentials;
use xmpp_core::storage::{RosterItem, StorageRequest, StorageResult, Subscription};
use xmpp_core::stream::{ClientConfig, ServerStreamConfig};
use xmpp_core::Element;
use xmpp_runtime::client::{Client, TlsMode};
use xmpp_runtime::storage::{Backend, MemoryBackend};
use xmpp_runtime::RuntimeConfig;

const CONTACTS: usize = 2000;
/// Items published back to back during the measured fan-out.
const ITEMS: usize = 10;
const NODE: &str = "http://jabber.org/protocol/tune";
const EVENT: &str = "http://jabber.org/protocol/pubsub#event";
const PASSWORD: &str = "fan-out-pw";
const LIMIT: Duration = Duration::from_secs(300);

fn jid(s: &str) -> Jid {
    Jid::parse(s).expect("test JID")
}

fn contact(i: usize) -> String {
    format!("c{i}@localhost")
}

/// The open-file soft limit raised to the hard one; how many contacts fit
/// (each is two sockets in this process: client and server side).
fn contacts_that_fit() -> usize {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `lim` is a valid, writable rlimit.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        return 100;
    }
    let raised = libc::rlimit {
        rlim_cur: lim.rlim_max,
        rlim_max: lim.rlim_max,
    };
    // SAFETY: `raised` is a valid rlimit; failure leaves the old limit.
    if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } == 0 {
        lim = raised;
    }
    let fit = (lim.rlim_cur as usize).saturating_sub(256) / 2;
    CONTACTS.min(fit)
}

fn both(with: &str) -> RosterItem {
    RosterItem {
        jid: with.to_owned(),
        name: None,
        subscription: Subscription {
            to: true,
            from: true,
            pending_out: false,
            pending_in: false,
        },
        groups: Vec::new(),
        in_roster: true,
    }
}

/// Accounts (one set of SCRAM credentials for all: one PBKDF2 here and
/// one in the clients) and the rosters, written straight to the store.
fn backend(contacts: usize) -> Arc<dyn Backend> {
    let backend: Arc<dyn Backend> = Arc::new(MemoryBackend::new());
    let credentials =
        StoredCredentials::derive(PASSWORD, b"pep-fan-out-salt", 4096).expect("credentials");
    let mut requests = Vec::new();
    for account in [
        "publisher@localhost",
        "sender@localhost",
        "receiver@localhost",
    ]
    .into_iter()
    .map(str::to_owned)
    .chain((0..contacts).map(contact))
    {
        requests.push(StorageRequest::CreateAccount {
            account,
            credentials: credentials.clone(),
        });
    }
    for i in 0..contacts {
        requests.push(StorageRequest::PutRosterItem {
            account: "publisher@localhost".to_owned(),
            item: both(&contact(i)),
            version: i as u64 + 1,
        });
        requests.push(StorageRequest::PutRosterItem {
            account: contact(i),
            item: both("publisher@localhost"),
            version: 1,
        });
    }
    for r in backend.execute_batch(requests) {
        assert_eq!(r, StorageResult::Done);
    }
    backend
}

/// The contacts' disco#info: what their caps stand for.
fn disco_info(node: Option<&str>) -> Element {
    let mut q = Element::new(ns::DISCO_INFO, "query");
    if let Some(node) = node {
        q.set_attr("node", node);
    }
    q.with_child(
        Element::new(ns::DISCO_INFO, "identity")
            .with_attr("category", "client")
            .with_attr("type", "pc"),
    )
    .with_child(Element::new(ns::DISCO_INFO, "feature").with_attr("var", format!("{NODE}+notify")))
}

fn publish(id: &str) -> Vec<u8> {
    format!(
        "<iq type='set' id='pub-{id}'><pubsub xmlns='http://jabber.org/protocol/pubsub'>\
         <publish node='{NODE}'><item id='{id}'><tune xmlns='{NODE}'><title>{id}</title></tune>\
         </item></publish></pubsub></iq>"
    )
    .into_bytes()
}

/// The item ids of a notification of [`NODE`].
fn notified(el: &Element) -> Vec<String> {
    el.child(EVENT, "event")
        .and_then(|e| e.child(EVENT, "items"))
        .filter(|i| i.attr("node") == Some(NODE))
        .map(|items| {
            items
                .elements()
                .filter_map(|i| i.attr("id").map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

#[derive(Default)]
struct Counts {
    online: AtomicUsize,
    /// Contacts that got a warm-up item.
    ready: AtomicUsize,
    /// Measured notifications received (distinct per contact).
    notifications: AtomicUsize,
    failures: Mutex<Vec<String>>,
}

async fn login(addr: std::net::SocketAddr, account: &str, cache: Option<&Client>) -> Client {
    let mut cfg = ClientConfig::new(jid(account), PASSWORD);
    TlsMode::None.apply(&mut cfg);
    cfg.scram_cache = cache.and_then(|c| c.scram_keys().cloned());
    Client::connect_with(addr, cfg, TlsMode::None)
        .await
        .unwrap_or_else(|e| panic!("{account}: login failed: {e}"))
}

/// One contact: online with caps, answering caps queries, counting items.
async fn run_contact(mut c: Client, me: String, counts: Arc<Counts>) {
    let ver = caps::ver(&disco_info(None));
    c.queue_raw(
        format!(
            "<presence><c xmlns='{}' hash='sha-1' node='urn:test:fan-out' ver='{ver}'/></presence>",
            caps::NS
        )
        .as_bytes(),
    );
    if let Err(e) = c.flush().await {
        counts
            .failures
            .lock()
            .expect("lock")
            .push(format!("{me}: {e}"));
        return;
    }
    counts.online.fetch_add(1, Ordering::AcqRel);
    let (mut ready, mut seen) = (false, HashSet::new());
    let mut got = Vec::new();
    while seen.len() < ITEMS {
        if let Err(e) = c.recv_batch(&mut got).await {
            counts
                .failures
                .lock()
                .expect("lock")
                .push(format!("{me}: {e}"));
            return;
        }
        for el in got.drain(..) {
            if el.name == "iq" && el.attr("type") == Some("get") {
                if let Some(q) = el.child(ns::DISCO_INFO, "query") {
                    let mut reply = Element::new(ns::CLIENT, "iq")
                        .with_attr("type", "result")
                        .with_attr("id", el.attr("id").unwrap_or_default())
                        .with_child(disco_info(q.attr("node")));
                    if let Some(from) = el.attr("from") {
                        reply.set_attr("to", from);
                    }
                    c.queue(&reply);
                }
                continue;
            }
            for id in notified(&el) {
                if !ready && id.starts_with("warm-") {
                    ready = true;
                    counts.ready.fetch_add(1, Ordering::AcqRel);
                }
                if id.starts_with("item-") && seen.insert(id) {
                    counts.notifications.fetch_add(1, Ordering::AcqRel);
                }
            }
        }
        if let Err(e) = c.flush().await {
            counts
                .failures
                .lock()
                .expect("lock")
                .push(format!("{me}: {e}"));
            return;
        }
    }
    let _ = c.close().await;
}

/// Until `done()` or [`LIMIT`].
async fn until(what: &str, counts: &Counts, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        let failures = counts.failures.lock().expect("lock").clone();
        assert!(failures.is_empty(), "{what}: {failures:?}");
        assert!(start.elapsed() < LIMIT, "{what}: timed out");
        smol::Timer::after(Duration::from_millis(20)).await;
    }
}

/// The receiver: the latency of every message, from the time in its body.
async fn run_receiver(mut c: Client, base: Instant, latencies: Arc<Mutex<Vec<(usize, u64)>>>) {
    let mut got = Vec::new();
    loop {
        if c.recv_batch(&mut got).await.is_err() {
            return;
        }
        let now = base.elapsed().as_micros() as u64;
        for el in got.drain(..) {
            let Some(body) = el.child_text(ns::CLIENT, "body") else {
                continue;
            };
            if let Some((seq, sent)) = body.split_once(':') {
                if let (Ok(seq), Ok(sent)) = (seq.parse::<usize>(), sent.parse::<u64>()) {
                    latencies
                        .lock()
                        .expect("lock")
                        .push((seq, now.saturating_sub(sent)));
                }
            }
        }
    }
}

fn summary(mut us: Vec<u64>) -> String {
    us.sort_unstable();
    let pct = |p: f64| {
        us.get(((p * us.len() as f64).ceil() as usize).clamp(1, us.len().max(1)) - 1)
            .map_or(0.0, |v| *v as f64 / 1000.0)
    };
    format!(
        "{} messages, p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        us.len(),
        pct(0.5),
        pct(0.99),
        us.last().map_or(0.0, |v| *v as f64 / 1000.0)
    )
}

#[test]
fn a_pep_fan_out_to_many_contacts_does_not_hold_up_other_messages() {
    let contacts = contacts_that_fit();
    let cfg = RuntimeConfig {
        stream: ServerStreamConfig {
            require_encryption: false,
            ..ServerStreamConfig::default()
        },
        hub: HubConfig::default(),
        threads: 2,
        partitions: 1,
        scram_iterations: 4096,
        ..RuntimeConfig::default()
    };
    let server = xmpp_runtime::start(cfg, backend(contacts)).expect("server starts");
    let addr = server.c2s_addr;
    let ex = Arc::new(smol::Executor::new());
    let counts = Arc::new(Counts::default());
    let latencies = Arc::new(Mutex::new(Vec::new()));
    let base = Instant::now();
    smol::block_on(ex.run(async {
        // The publisher first, so the contacts' presences reach it.
        let mut publisher = login(addr, "publisher@localhost", None).await;
        publisher.queue_raw(b"<presence/>");
        publisher.flush().await.expect("publisher presence");
        let t = Instant::now();
        let logins = Arc::new(smol::lock::Semaphore::new(64));
        for i in 0..contacts {
            let (counts, logins) = (counts.clone(), logins.clone());
            let keys = publisher.scram_keys().cloned();
            ex.spawn(async move {
                let c = {
                    let _permit = logins.acquire().await;
                    let mut cfg = ClientConfig::new(jid(&contact(i)), PASSWORD);
                    TlsMode::None.apply(&mut cfg);
                    cfg.scram_cache = keys;
                    Client::connect_with(addr, cfg, TlsMode::None).await
                };
                match c {
                    Ok(c) => run_contact(c, contact(i), counts).await,
                    Err(e) => counts
                        .failures
                        .lock()
                        .expect("lock")
                        .push(format!("{}: login failed: {e}", contact(i))),
                }
            })
            .detach();
        }
        until("contacts online", &counts, || {
            counts.online.load(Ordering::Acquire) == contacts
        })
        .await;
        eprintln!("{contacts} contacts online in {:?}", t.elapsed());

        let mut sender = login(addr, "sender@localhost", Some(&publisher)).await;
        let mut receiver = login(addr, "receiver@localhost", Some(&publisher)).await;
        // Available, so chat messages to the bare JID reach it (not offline).
        receiver.queue_raw(b"<presence/>");
        receiver.flush().await.expect("receiver presence");
        // The two others on threads of their own, so the contacts' work in
        // this process does not delay them: what is measured is the server.
        let lat = latencies.clone();
        std::thread::spawn(move || smol::block_on(run_receiver(receiver, base, lat)));

        // Warm-up: until every contact's caps are known and it got an item.
        let t = Instant::now();
        let mut round = 0;
        loop {
            publisher.queue_raw(&publish(&format!("warm-{round}")));
            publisher.flush().await.expect("publish");
            let deadline = Instant::now() + Duration::from_secs(5);
            while Instant::now() < deadline && counts.ready.load(Ordering::Acquire) < contacts {
                smol::Timer::after(Duration::from_millis(20)).await;
            }
            if counts.ready.load(Ordering::Acquire) == contacts {
                break;
            }
            round += 1;
            assert!(t.elapsed() < LIMIT, "warm-up timed out");
        }
        eprintln!("warm-up: {} items, {:?}", round + 1, t.elapsed());

        // The sender: a message every 5 ms until `stop`.
        let stop = Arc::new(AtomicUsize::new(0));
        let sent_count = Arc::new(AtomicUsize::new(0));
        let sending = {
            let (stop, sent_count) = (stop.clone(), sent_count.clone());
            std::thread::spawn(move || {
                smol::block_on(async {
                    let mut seq = 0usize;
                    while stop.load(Ordering::Acquire) == 0 {
                        let sent = base.elapsed().as_micros() as u64;
                        sender.queue_raw(
                            format!(
                                "<message to='receiver@localhost' type='chat'>\
                                 <body>{seq}:{sent}</body></message>"
                            )
                            .as_bytes(),
                        );
                        sender.flush().await.expect("send");
                        seq += 1;
                        sent_count.store(seq, Ordering::Release);
                        smol::Timer::after(Duration::from_millis(5)).await;
                    }
                    let _ = sender.close().await;
                })
            })
        };
        // Baseline: messages while nothing else happens.
        smol::Timer::after(Duration::from_millis(300)).await;
        let baseline_count = sent_count.load(Ordering::Acquire);

        // The fan-out: ITEMS × contacts notifications, with messages
        // between the two others meanwhile.
        let t = Instant::now();
        for k in 0..ITEMS {
            publisher.queue_raw(&publish(&format!("item-{k}")));
        }
        publisher.flush().await.expect("publish");
        let expected = ITEMS * contacts;
        while counts.notifications.load(Ordering::Acquire) < expected {
            smol::Timer::after(Duration::from_millis(5)).await;
            let failures = counts.failures.lock().expect("lock").clone();
            assert!(failures.is_empty(), "fan-out: {failures:?}");
            assert!(t.elapsed() < LIMIT, "fan-out timed out");
        }
        let fan_out = t.elapsed();
        stop.store(1, Ordering::Release);
        sending.join().expect("sender thread");
        let seq = sent_count.load(Ordering::Acquire);
        // Every message arrives.
        let t = Instant::now();
        while latencies.lock().expect("lock").len() < seq {
            assert!(
                t.elapsed() < Duration::from_secs(30),
                "{} of {seq} messages arrived",
                latencies.lock().expect("lock").len()
            );
            smol::Timer::after(Duration::from_millis(20)).await;
        }
        let all = latencies.lock().expect("lock").clone();
        let (before, during): (Vec<_>, Vec<_>) =
            all.into_iter().partition(|(s, _)| *s < baseline_count);
        eprintln!(
            "fan-out: {expected} notifications in {fan_out:?} ({:.0}/s)",
            expected as f64 / fan_out.as_secs_f64()
        );
        eprintln!(
            "messages before: {}",
            summary(before.into_iter().map(|(_, l)| l).collect())
        );
        eprintln!(
            "messages during the fan-out: {}",
            summary(during.into_iter().map(|(_, l)| l).collect())
        );
        let _ = publisher.close().await;
    }));
    server.shutdown(Duration::from_secs(5));
}
