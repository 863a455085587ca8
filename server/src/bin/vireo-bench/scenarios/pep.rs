//! `pep`: one publisher (account 0) and N contacts (accounts 1..=N), each
//! contact in a mutual (`both`) presence subscription with the publisher
//! (set up first, untimed, by the roster-presence setup). The publisher
//! publishes M items to its PEP node `http://jabber.org/protocol/tune`
//! (XEP-0163, default `presence` access); every contact is online with
//! XEP-0115 caps advertising `tune+notify` and answers the server's caps
//! query, so every item is pushed to every contact: N×M notifications.
//!
//! Phases: the publisher comes online; the contacts come online with caps
//! (answering disco#info); warm-up items are published until every
//! contact got one (the server has learned the caps); then the measured
//! phase publishes M items with W publishes in flight. Reported:
//! notifications delivered per second (first publish sent to last
//! notification received), p50/p99 from a publish leaving the publisher to
//! its notification reaching a contact, server CPU per notification, and
//! exact accounting (a lost or duplicated notification fails the run).
//! With `--probe`, accounts N+1 and N+2 exchange a message every 5 ms
//! ([`Probe`]) and their latency at rest and during the fan-out is
//! reported: whether the fan-out holds up unrelated routing.

use crate::cli::PepCmd;
use crate::procfs::Window;
use crate::report::Report;
use crate::scenarios::probe::Probe;
use crate::scenarios::roster_presence::{answer_iq, push_attr, read_or, setup, wait_until_quiet};
use crate::scenarios::secs;
use crate::session::{close_all, Ctx, Gate};
use crate::stats::Latencies;
use crate::transport::Client;
use smol::lock::Semaphore;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use xmpp_core::modules::caps;
use xmpp_core::ns;
use xmpp_core::Element;

/// The node: a well-known PEP node every server treats like any other.
const NODE: &str = "http://jabber.org/protocol/tune";
const EVENT: &str = "http://jabber.org/protocol/pubsub#event";
const CAPS_NODE: &str = "https://vireo.invalid/bench";
/// How often the warm-up item is published again until all contacts have it.
const WARMUP_EVERY: Duration = Duration::from_secs(2);

/// Shared by the tasks of the run.
struct Shared {
    /// Stanzas handled by anyone (stall detection).
    events: AtomicU64,
    /// Measured notifications received (first copy of each).
    notifications: AtomicU64,
    /// Second copies of a measured notification.
    duplicates: AtomicU64,
    /// The first few of them: contact, item, µs after the first copy, `to`.
    duplicate_examples: Mutex<Vec<String>>,
    /// µs since `base` at which measured item k was sent (0: not yet).
    sent: Vec<AtomicU64>,
    base: Instant,
    /// This run's item id prefix (items of earlier runs are ignored).
    tag: String,
    failure: Mutex<Option<String>>,
    /// Opened on failure: every task stops.
    abort: Arc<Gate>,
    latencies: Mutex<Latencies>,
}

impl Shared {
    fn fail(&self, why: String) {
        if let Ok(mut f) = self.failure.lock() {
            f.get_or_insert(why);
        }
        // Opening the gate twice is harmless: it counts past its target.
        self.abort.arrive();
    }
    fn failure(&self) -> Option<String> {
        self.failure.lock().ok().and_then(|f| f.clone())
    }
    fn now_us(&self) -> u64 {
        u64::try_from(self.base.elapsed().as_micros()).unwrap_or(u64::MAX)
    }
}

/// The contacts' disco#info: what their caps hash stands for.
fn disco_info(node: Option<&str>) -> Element {
    let mut q = Element::new(ns::DISCO_INFO, "query");
    if let Some(node) = node {
        q.set_attr("node", node);
    }
    q.with_child(
        Element::new(ns::DISCO_INFO, "identity")
            .with_attr("category", "client")
            .with_attr("type", "pc")
            .with_attr("name", "vireo-bench"),
    )
    .with_child(Element::new(ns::DISCO_INFO, "feature").with_attr("var", ns::DISCO_INFO))
    .with_child(Element::new(ns::DISCO_INFO, "feature").with_attr("var", caps::NS))
    .with_child(Element::new(ns::DISCO_INFO, "feature").with_attr("var", format!("{NODE}+notify")))
}

/// The item ids a notification carries, if it is one for [`NODE`].
fn notified_ids(el: &Element) -> Vec<String> {
    if el.name != "message" {
        return Vec::new();
    }
    el.child(EVENT, "event")
        .and_then(|e| e.child(EVENT, "items"))
        .filter(|i| i.attr("node") == Some(NODE))
        .map(|items| {
            items
                .elements()
                .filter(|i| i.name == "item")
                .filter_map(|i| i.attr("id").map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

fn publish(id: &str, n: usize) -> Vec<u8> {
    let mut iq = Vec::with_capacity(256);
    iq.extend_from_slice(b"<iq type='set' id='vb-pub-");
    push_attr(&mut iq, id);
    iq.extend_from_slice(b"'><pubsub xmlns='http://jabber.org/protocol/pubsub'><publish node='");
    iq.extend_from_slice(NODE.as_bytes());
    iq.extend_from_slice(b"'><item id='");
    push_attr(&mut iq, id);
    iq.extend_from_slice(b"'><tune xmlns='http://jabber.org/protocol/tune'><title>");
    iq.extend_from_slice(n.to_string().as_bytes());
    iq.extend_from_slice(b"</title><length>300</length></tune></item></publish></pubsub></iq>");
    iq
}

/// Run the scenario.
pub async fn run(ctx: &Arc<Ctx>, cmd: &PepCmd, r: &mut Report) -> Result<(), String> {
    let (n, m) = (cmd.contacts, cmd.items);
    if n == 0 || m == 0 || cmd.window == 0 {
        return Err("--contacts, --items and --window must be at least 1".into());
    }
    r.int("contacts", n as u64)
        .int("items", m as u64)
        .int("window", cmd.window as u64)
        .int("notifications_expected", (n * m) as u64);

    // Untimed: the publisher and every contact subscribed both ways.
    let sets: Vec<Vec<usize>> = (0..=n)
        .map(|i| if i == 0 { (1..=n).collect() } else { vec![0] })
        .collect();
    let t = Instant::now();
    let subscribes = setup(ctx, &Arc::new(sets)).await?;
    r.num("setup_s", secs(t.elapsed()))
        .int("setup_subscribes_sent", subscribes);
    smol::Timer::after(Duration::from_millis(500)).await;
    wait_until_quiet(ctx.server_pid).await;

    let shared = Arc::new(Shared {
        events: AtomicU64::new(0),
        notifications: AtomicU64::new(0),
        duplicates: AtomicU64::new(0),
        duplicate_examples: Mutex::new(Vec::new()),
        sent: (0..m).map(|_| AtomicU64::new(0)).collect(),
        base: Instant::now(),
        tag: format!(
            "{:x}",
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_micros())
        ),
        failure: Mutex::new(None),
        abort: Gate::new(1),
        latencies: Mutex::new(Latencies::with_capacity(n * m)),
    });

    // The publisher first, so the contacts' presences reach its account.
    let mut publisher = ctx.login_present(0).await?;

    // The contacts, with caps.
    let online = Gate::new(n);
    let ready = Gate::new(n);
    let done = Gate::new(n);
    let logins = Arc::new(Semaphore::new(ctx.setup_concurrency.max(1)));
    let t = Instant::now();
    let tasks: Vec<_> = (1..=n)
        .map(|i| {
            let (ctx, shared, logins) = (ctx.clone(), shared.clone(), logins.clone());
            let (online, ready, done) = (online.clone(), ready.clone(), done.clone());
            ctx.ex.clone().spawn(async move {
                let r = contact(&ctx, i, m, &shared, &online, &ready, &logins).await;
                done.arrive();
                match r {
                    Ok(c) => Some(c),
                    Err(e) => {
                        shared.fail(e);
                        None
                    }
                }
            })
        })
        .collect();
    let mut clients = Vec::with_capacity(n + 1);
    let outcome = async {
        wait_gate(ctx, &shared, &online, "contacts online").await?;
        r.num("contacts_online_s", secs(t.elapsed()));

        // Warm-up: until every contact got a warm-up item.
        let t = Instant::now();
        let mut round = 0usize;
        loop {
            let id = format!("w-{}-{round}", shared.tag);
            publisher.queue_raw(&publish(&id, round));
            publisher
                .flush()
                .await
                .map_err(|e| format!("publisher: {e}"))?;
            let deadline = Instant::now() + WARMUP_EVERY;
            let mut got = Vec::new();
            while Instant::now() < deadline && ready.arrived() < n {
                let wait = async {
                    smol::Timer::after(Duration::from_millis(50)).await;
                    Ok(false)
                };
                let read = read_or(&mut publisher, &shared.abort, &mut got);
                let _ = smol::future::or(read, wait).await?;
                for el in got.drain(..) {
                    if el.name == "iq" {
                        if el.attr("type") == Some("error") {
                            return Err(format!("publisher: publish refused: {}", el.to_xml()));
                        }
                        answer_iq(&mut publisher, &el);
                    }
                }
                if let Some(why) = shared.failure() {
                    return Err(why);
                }
            }
            if ready.arrived() >= n {
                break;
            }
            if t.elapsed() > ctx.timeout {
                return Err(format!(
                    "warm-up: only {} of {n} contacts were notified within {:?}",
                    ready.arrived(),
                    ctx.timeout
                ));
            }
            round += 1;
        }
        r.num("warmup_s", secs(t.elapsed()))
            .int("warmup_items", round as u64 + 1);
        wait_until_quiet(ctx.server_pid).await;
        // The probe: its messages before (at rest) and during the fan-out.
        let probe = if cmd.probe {
            let p = Probe::start(ctx, n + 1, n + 2).await?;
            smol::Timer::after(Duration::from_millis(300)).await;
            Some(p)
        } else {
            None
        };
        let rest_mark = probe.as_ref().map_or(0, Probe::mark);

        // Measured.
        let before = ctx.sample(0);
        let t0 = Instant::now();
        let (mut next, mut answered) = (0usize, 0usize);
        let mut got = Vec::new();
        while answered < m {
            while next < m && next - answered < cmd.window {
                shared.sent[next].store(shared.now_us().max(1), Ordering::Release);
                publisher.queue_raw(&publish(&format!("m-{}-{next}", shared.tag), next));
                next += 1;
            }
            publisher
                .flush()
                .await
                .map_err(|e| format!("publisher: {e}"))?;
            if read_or(&mut publisher, &shared.abort, &mut got).await? {
                return Err(shared.failure().unwrap_or_default());
            }
            for el in got.drain(..) {
                shared.events.fetch_add(1, Ordering::Relaxed);
                if el.name != "iq" {
                    continue;
                }
                let ours = el.attr("id").is_some_and(|id| id.starts_with("vb-pub-m-"));
                match el.attr("type") {
                    Some("result") if ours => answered += 1,
                    Some("error") if ours => {
                        return Err(format!("publisher: publish refused: {}", el.to_xml()))
                    }
                    _ => answer_iq(&mut publisher, &el),
                }
            }
        }
        let published_s = secs(t0.elapsed());
        wait_gate(ctx, &shared, &done, "notifications").await?;
        let elapsed = secs(t0.elapsed());
        if let Some(p) = probe {
            let end_mark = p.mark();
            let [rest, during, _] = p.finish((rest_mark, end_mark), ctx.timeout).await?;
            let (rest, during) = (rest.summary(), during.summary());
            r.int("probe_rest_messages", rest_mark as u64)
                .num("probe_rest_p50_ms", rest.pct_ms(50.0))
                .num("probe_rest_max_ms", rest.max_ms())
                .int("probe_messages", end_mark.saturating_sub(rest_mark) as u64)
                .num("probe_p50_ms", during.pct_ms(50.0))
                .num("probe_p99_ms", during.pct_ms(99.0))
                .num("probe_max_ms", during.max_ms());
        }
        let delivered = shared.notifications.load(Ordering::Acquire);
        let after = ctx.sample(delivered);
        let w = Window {
            secs: elapsed,
            ..Window::between(&before, &after)
        };
        let lat = shared
            .latencies
            .lock()
            .map(|mut l| std::mem::take(&mut *l))
            .unwrap_or_default();
        let lat = lat.summary();
        r.num("notifications_per_s", delivered as f64 / elapsed.max(1e-9))
            .opt_num("server_cpu_us_per_notification", w.cpu_per_unit())
            .opt_num("server_cpu_cores", w.cpu_cores())
            .int("notifications_delivered", delivered)
            .int(
                "notifications_duplicated",
                shared.duplicates.load(Ordering::Acquire),
            )
            .num("publish_s", published_s)
            .num("duration_s", elapsed)
            .num("p50_ms", lat.pct_ms(50.0))
            .num("p99_ms", lat.pct_ms(99.0))
            .num("max_ms", lat.max_ms());
        Ok::<(), String>(())
    }
    .await;
    if let Err(e) = &outcome {
        shared.fail(e.clone());
    }
    for t in tasks {
        clients.extend(t.await);
    }
    clients.push(publisher);
    close_all(&ctx.ex, clients, 256).await;
    outcome?;
    let dups = shared.duplicates.load(Ordering::Acquire);
    if let Ok(ex) = shared.duplicate_examples.lock() {
        if !ex.is_empty() {
            r.str("duplicate_examples", ex.join("; "));
        }
    }
    let delivered = shared.notifications.load(Ordering::Acquire);
    if delivered != (n * m) as u64 || dups > 0 {
        return Err(format!(
            "{delivered} of {} notifications delivered, {dups} duplicated",
            n * m
        ));
    }
    Ok(())
}

/// Wait for `gate`, failing on a task's failure or when nothing happens
/// for the run's timeout.
async fn wait_gate(ctx: &Ctx, shared: &Shared, gate: &Gate, what: &str) -> Result<(), String> {
    let mut last = (Instant::now(), u64::MAX);
    loop {
        let tick = async {
            smol::Timer::after(Duration::from_millis(100)).await;
            false
        };
        let open = async {
            gate.wait().await;
            true
        };
        let open = smol::future::or(tick, open).await;
        if let Some(why) = shared.failure() {
            return Err(why);
        }
        if open {
            return Ok(());
        }
        let events = shared.events.load(Ordering::Acquire);
        if events != last.1 {
            last = (Instant::now(), events);
        } else if last.0.elapsed() > ctx.timeout {
            return Err(format!(
                "{what} stalled for {:?} ({} arrived; {} notifications)",
                ctx.timeout,
                gate.arrived(),
                shared.notifications.load(Ordering::Acquire)
            ));
        }
    }
}

/// One contact: online with caps, answering the caps query, counting the
/// measured notifications until it has all `m`.
async fn contact(
    ctx: &Ctx,
    i: usize,
    m: usize,
    shared: &Shared,
    online: &Gate,
    ready: &Gate,
    logins: &Semaphore,
) -> Result<Client, String> {
    let mut c = {
        let _permit = logins.acquire().await;
        ctx.login(i).await?
    };
    let me = ctx.bare(i);
    let ver = caps::ver(&disco_info(None));
    let mut presence = Vec::with_capacity(192);
    presence.extend_from_slice(
        b"<presence><c xmlns='http://jabber.org/protocol/caps' hash='sha-1' node='",
    );
    presence.extend_from_slice(CAPS_NODE.as_bytes());
    presence.extend_from_slice(b"' ver='");
    push_attr(&mut presence, &ver);
    presence.extend_from_slice(b"'/></presence>");
    c.queue_raw(&presence);
    c.flush().await.map_err(|e| format!("{me}: {e}"))?;
    online.arrive();

    let warm = format!("w-{}-", shared.tag);
    let measured = format!("m-{}-", shared.tag);
    let mut is_ready = false;
    // When each measured item arrived (µs since `base`; 0: not yet).
    let mut seen = vec![0u64; m];
    let mut count = 0usize;
    let mut stanzas = Vec::new();
    let mut lat = Latencies::with_capacity(m);
    while count < m {
        if read_or(&mut c, &shared.abort, &mut stanzas)
            .await
            .map_err(|e| format!("{me}: {e}"))?
        {
            return Ok(c);
        }
        let mut fresh = 0u64;
        for el in stanzas.drain(..) {
            shared.events.fetch_add(1, Ordering::Relaxed);
            if el.name == "iq" {
                let query = el.child(ns::DISCO_INFO, "query");
                match query {
                    Some(q) if el.attr("type") == Some("get") => {
                        let mut reply = Element::new(ns::CLIENT, "iq")
                            .with_attr("type", "result")
                            .with_attr("id", el.attr("id").unwrap_or_default())
                            .with_child(disco_info(q.attr("node")));
                        if let Some(from) = el.attr("from") {
                            reply.set_attr("to", from);
                        }
                        c.queue(&reply);
                    }
                    _ => answer_iq(&mut c, &el),
                }
                continue;
            }
            for id in notified_ids(&el) {
                if !is_ready && id.starts_with(&warm) {
                    is_ready = true;
                    ready.arrive();
                }
                let Some(k) = id
                    .strip_prefix(&measured)
                    .and_then(|k| k.parse::<usize>().ok())
                    .filter(|&k| k < m)
                else {
                    continue;
                };
                if seen[k] != 0 {
                    shared.duplicates.fetch_add(1, Ordering::Relaxed);
                    if let Ok(mut ex) = shared.duplicate_examples.lock() {
                        if ex.len() < 5 {
                            let after = shared.now_us().saturating_sub(seen[k]);
                            let to = el.attr("to").unwrap_or_default();
                            ex.push(format!("{me} item {k} again {after} µs later (to {to})"));
                        }
                    }
                    continue;
                }
                seen[k] = shared.now_us().max(1);
                let sent = shared.sent[k].load(Ordering::Acquire);
                lat.push_us(shared.now_us().saturating_sub(sent));
                count += 1;
                fresh += 1;
            }
        }
        shared.notifications.fetch_add(fresh, Ordering::Relaxed);
        c.flush().await.map_err(|e| format!("{me}: {e}"))?;
    }
    if let Ok(mut all) = shared.latencies.lock() {
        all.merge(lat);
    }
    Ok(c)
}
