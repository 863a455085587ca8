//! `messages`: P sender/receiver pairs (accounts 2p and 2p+1), each sender
//! keeping W messages in flight; the receiver signals each delivery back
//! in-process, which releases the sender's window. M messages per pair,
//! optionally with N extra idle sessions online (accounts after the pairs).
//!
//! Every message id carries a per-run nonce, the sequence number and the
//! send time (µs since the phase started): the receiver checks the sender,
//! counts each (pair, seq) once and measures end-to-end latency. Messages
//! with another run's nonce (offline messages left by an aborted run) are
//! counted as `stale` and otherwise ignored. The rate and the server CPU per
//! message are taken over the steady part of the phase (10%..90% of the
//! deliveries); `*_total` figures cover the whole phase.

use crate::cli::MessagesCmd;
use crate::procfs::{rss_kib, Sample, Window};
use crate::report::Report;
use crate::session::{close_all, map_limited, Ctx};
use crate::stats::{steady_window, Latencies};
use crate::transport::Client;
use smol::channel::{Receiver, Sender};
use smol::future::FutureExt;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How often the coordinator samples progress and server CPU.
const SAMPLE_EVERY: Duration = Duration::from_millis(50);
/// How long a receiver keeps listening for duplicates after its last message.
const DRAIN: Duration = Duration::from_millis(300);
/// How long a sender waits for its outstanding acknowledgements at the end.
const ACK_WAIT: Duration = Duration::from_secs(30);

#[derive(Default)]
struct Shared {
    sent: AtomicU64,
    delivered: AtomicU64,
    duplicates: AtomicU64,
    /// Message errors bounced to senders or receivers.
    errors: AtomicU64,
    /// Messages from the wrong sender or with impossible sequence numbers.
    misrouted: AtomicU64,
    stale: AtomicU64,
    pairs_done: AtomicUsize,
    /// µs since the start when the last pair completed.
    last_delivery_us: AtomicU64,
    failure: Mutex<Option<String>>,
    /// XEP-0198 (`--ack-every`): from each <r/> to the <a/> covering it.
    ack_latency: Mutex<Latencies>,
}

impl Shared {
    fn fail(&self, why: String) {
        if let Ok(mut f) = self.failure.lock() {
            f.get_or_insert(why);
        }
    }
}

struct Pair {
    index: usize,
    count: usize,
    window: usize,
    run: u32,
    t0: Instant,
    shared: Arc<Shared>,
    /// Ask for an acknowledgement every this many messages (0: no SM).
    ack_every: usize,
}

/// Run the scenario.
pub async fn run(ctx: &Arc<Ctx>, cmd: &MessagesCmd, r: &mut Report) -> Result<(), String> {
    let (pairs, window, count) = (cmd.pairs, cmd.window, cmd.count);
    r.int("pairs", pairs as u64)
        .int("window", window as u64)
        .int("count", count as u64)
        .int("idle", cmd.idle as u64)
        .int("body_bytes", cmd.body_bytes as u64)
        .int("ack_every", cmd.ack_every as u64);
    if pairs == 0 || window == 0 || count == 0 {
        return Err("--pairs, --window and --count must be at least 1".into());
    }
    let c = ctx.clone();
    let idle = map_limited(&ctx.ex, cmd.idle, ctx.setup_concurrency, move |i| {
        let c = c.clone();
        async move {
            let mut client = c.login_present(2 * pairs + i).await?;
            client.park();
            Ok(client)
        }
    })
    .await?;
    // Federation: receivers (odd accounts) on the other server.
    let rctx = match (cmd.to_port, &cmd.to_domain) {
        (Some(port), Some(domain)) => {
            r.str("to_domain", domain.clone());
            Arc::new(ctx.elsewhere(port, domain, cmd.to_server_pid))
        }
        (None, None) => ctx.clone(),
        _ => return Err("--to-port and --to-domain go together".into()),
    };
    let (c, rc) = (ctx.clone(), rctx.clone());
    let mut clients = map_limited(&ctx.ex, 2 * pairs, ctx.setup_concurrency, move |i| {
        let c = if i % 2 == 0 { c.clone() } else { rc.clone() };
        async move { c.login_present(i).await }
    })
    .await?
    .into_iter();
    let rss_before = ctx.server_pid.and_then(rss_kib);

    let shared = Arc::new(Shared::default());
    let run = run_nonce();
    let body = "x".repeat(cmd.body_bytes);
    let t0 = Instant::now();
    let mut samples = vec![ctx.sample(0)];
    let mut rsamples = vec![rctx.sample(0)];
    let mut tasks = Vec::with_capacity(2 * pairs);
    for p in 0..pairs {
        let (Some(sender), Some(receiver)) = (clients.next(), clients.next()) else {
            return Err("internal: missing pair clients".into());
        };
        let (tx, rx) = smol::channel::unbounded();
        let pair = || {
            Arc::new(Pair {
                index: p,
                count,
                window,
                run,
                t0,
                shared: shared.clone(),
                ack_every: cmd.ack_every,
            })
        };
        let to = rctx.bare(2 * p + 1);
        let from = ctx.bare(2 * p);
        let body = body.clone();
        tasks.push(ctx.ex.spawn(receive(pair(), receiver, from, tx)));
        tasks.push(ctx.ex.spawn(send(pair(), sender, to, body, rx)));
    }

    // Coordinate: sample, watch for stalls and failures.
    let total = (pairs * count) as u64;
    let mut last_progress = (Instant::now(), 0u64);
    let outcome = loop {
        smol::Timer::after(SAMPLE_EVERY).await;
        let delivered = shared.delivered.load(Ordering::Acquire);
        samples.push(ctx.sample(delivered));
        if cmd.to_server_pid.is_some() {
            rsamples.push(rctx.sample(delivered));
        }
        if let Some(why) = shared.failure.lock().ok().and_then(|f| f.clone()) {
            break Err(why);
        }
        if shared.pairs_done.load(Ordering::Acquire) == pairs {
            break Ok(());
        }
        if delivered != last_progress.1 {
            last_progress = (Instant::now(), delivered);
        } else if last_progress.0.elapsed() > ctx.timeout {
            break Err(format!(
                "stalled for {:?}: {} sent, {delivered} delivered of {total}",
                ctx.timeout,
                shared.sent.load(Ordering::Acquire)
            ));
        }
    };
    let mut lat = Latencies::with_capacity(pairs * count);
    let mut finished = Vec::with_capacity(2 * pairs);
    if outcome.is_ok() {
        for t in tasks {
            let (l, client) = t.await;
            lat.merge(l);
            finished.extend(client);
        }
    }
    let rss_after = ctx.server_pid.and_then(rss_kib);

    let get = |a: &AtomicU64| a.load(Ordering::Acquire);
    let (sent, delivered, dups) = (
        get(&shared.sent),
        get(&shared.delivered),
        get(&shared.duplicates),
    );
    let (errors, misrouted, stale) = (
        get(&shared.errors),
        get(&shared.misrouted),
        get(&shared.stale),
    );
    let steady = steady_window(&samples, total);
    let last_us = get(&shared.last_delivery_us);
    let whole = whole_phase(&samples, last_us, delivered);
    let s = lat.summary();
    if cmd.ack_every > 0 {
        let acks = shared
            .ack_latency
            .lock()
            .map(|mut l| std::mem::replace(&mut *l, Latencies::with_capacity(0)))
            .unwrap_or_else(|_| Latencies::with_capacity(0));
        r.int("acks", acks.len() as u64);
        let a = acks.summary();
        r.num("ack_p50_ms", a.pct_ms(50.0))
            .num("ack_p99_ms", a.pct_ms(99.0));
    }
    r.opt_num("msgs_per_s", steady.map(|w| w.rate()))
        .num("p50_ms", s.pct_ms(50.0))
        .num("p99_ms", s.pct_ms(99.0))
        .num("max_ms", s.max_ms())
        .opt_num(
            "server_cpu_us_per_msg",
            steady.and_then(|w| w.cpu_per_unit()),
        )
        .opt_num("server_cpu_cores", steady.and_then(|w| w.cpu_cores()))
        .opt_num(
            "to_server_cpu_us_per_msg",
            cmd.to_server_pid
                .and_then(|_| steady_window(&rsamples, total))
                .and_then(|w| w.cpu_per_unit()),
        )
        .opt_num("steady_s", steady.map(|w| w.secs))
        .num("msgs_per_s_total", whole.rate())
        .opt_num("server_cpu_us_per_msg_total", whole.cpu_per_unit())
        .num("duration_s", whole.secs)
        .int("sent", sent)
        .int("delivered", delivered)
        .int("duplicates", dups)
        .int("errors", errors)
        .int("misrouted", misrouted)
        .int("stale", stale)
        .opt_int("server_rss_before_kib", rss_before)
        .opt_int("server_rss_after_kib", rss_after);

    close_all(&ctx.ex, finished, 256).await;
    close_all(&ctx.ex, idle, 256).await;
    outcome?;
    if sent != total || delivered != total || dups != 0 || errors != 0 || misrouted != 0 {
        return Err(format!(
            "accounting failed: {total} expected, {sent} sent, {delivered} delivered, \
             {dups} duplicates, {errors} errors, {misrouted} misrouted"
        ));
    }
    Ok(())
}

/// From the start to the last delivery (not to the sample after it).
fn whole_phase(samples: &[Sample], last_us: u64, delivered: u64) -> Window {
    let (Some(first), Some(last)) = (samples.first(), samples.last()) else {
        return Window {
            secs: 0.0,
            done: 0,
            cpu_us: None,
        };
    };
    let mut w = Window::between(first, last);
    if last_us > 0 {
        w.secs = last_us as f64 / 1e6;
    }
    w.done = delivered;
    w
}

fn run_nonce() -> u32 {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    (t.as_nanos() as u32) ^ std::process::id().rotate_left(16)
}

/// An XEP-0198 `<a h='N'/>` answers every request made after at most N
/// messages: record how long each waited.
fn take_ack(
    el: &xmpp_core::Element,
    asked: &mut std::collections::VecDeque<(usize, u64)>,
    acks: &mut Latencies,
    now: u64,
) {
    if el.name != "a" || el.ns != "urn:xmpp:sm:3" {
        return;
    }
    let h = el
        .attr("h")
        .and_then(|h| h.parse::<usize>().ok())
        .unwrap_or(0);
    while asked.front().is_some_and(|(n, _)| *n <= h) {
        if let Some((_, t)) = asked.pop_front() {
            acks.push_us(now.saturating_sub(t));
        }
    }
}

fn micros_since(t0: Instant) -> u64 {
    u64::try_from(t0.elapsed().as_micros()).unwrap_or(u64::MAX)
}

/// The sender: keep `window` messages in flight until `count` are sent and
/// all released. Returns its client (for a clean close) and no latencies.
async fn send(
    pair: Arc<Pair>,
    mut client: Client,
    to: String,
    body: String,
    released: Receiver<usize>,
) -> (Latencies, Option<Client>) {
    let mut head = Vec::with_capacity(64);
    head.extend_from_slice(b"<message type='chat' to='");
    xmpp_core::xml::escape_attr(&to, &mut head);
    head.extend_from_slice(b"' id='vb");
    let mut tail = Vec::with_capacity(body.len() + 32);
    tail.extend_from_slice(b"'><body>");
    xmpp_core::xml::escape_text(&body, &mut tail);
    tail.extend_from_slice(b"</body></message>");
    let mut stanza = Vec::with_capacity(head.len() + tail.len() + 40);
    let (mut sent, mut in_flight, mut done) = (0usize, 0usize, 0usize);
    let shared = &pair.shared;
    // XEP-0198: (messages sent when asked, when) for each <r/> unanswered.
    let mut asked: std::collections::VecDeque<(usize, u64)> = Default::default();
    let mut acks =
        Latencies::with_capacity(pair.count.checked_div(pair.ack_every).map_or(0, |n| n + 1));
    if pair.ack_every > 0 {
        client.queue_raw(b"<enable xmlns='urn:xmpp:sm:3'/>");
    }
    loop {
        let now = micros_since(pair.t0);
        let before = sent;
        while in_flight < pair.window && sent < pair.count {
            stanza.clear();
            stanza.extend_from_slice(&head);
            use std::io::Write as _;
            let _ = write!(stanza, "{:x}-{sent}-{now}", pair.run);
            stanza.extend_from_slice(&tail);
            client.queue_raw(&stanza);
            sent += 1;
            in_flight += 1;
            if pair.ack_every > 0 && sent % pair.ack_every == 0 {
                client.queue_raw(b"<r xmlns='urn:xmpp:sm:3'/>");
                asked.push_back((sent, now));
            }
        }
        if sent > before {
            shared
                .sent
                .fetch_add((sent - before) as u64, Ordering::AcqRel);
            if let Err(e) = client.flush().await {
                shared.fail(format!("pair {}: sender: {e}", pair.index));
                return (Latencies::default(), None);
            }
        }
        if done >= pair.count && asked.is_empty() {
            if let Ok(mut l) = shared.ack_latency.lock() {
                l.merge(acks);
            }
            return (Latencies::default(), Some(client));
        }
        enum Ev {
            Released(Option<usize>),
            Read(Result<usize, xmpp_runtime::client::ClientError>),
        }
        let ev = async { Ev::Released(released.recv().await.ok()) }
            .or(async { Ev::Read(client.read_some().await) })
            .await;
        match ev {
            Ev::Released(Some(mut k)) => {
                while let Ok(more) = released.try_recv() {
                    k += more;
                }
                in_flight = in_flight.saturating_sub(k);
                done += k;
            }
            // The receiver ended (failure reported by it, or its drain
            // after the last message is over).
            Ev::Released(None) => {
                // Acknowledgements wait for storage, which may lag behind
                // delivery (archiving): collect the outstanding ones.
                let deadline = Instant::now() + ACK_WAIT;
                while !asked.is_empty() && Instant::now() < deadline {
                    let read = async { Some(client.read_some().await) }
                        .or(async {
                            smol::Timer::at(deadline).await;
                            None
                        })
                        .await;
                    match read {
                        Some(Ok(_)) => {
                            let now = micros_since(pair.t0);
                            for el in client.take_received() {
                                take_ack(&el, &mut asked, &mut acks, now);
                            }
                        }
                        Some(Err(_)) | None => break,
                    }
                }
                if !asked.is_empty() {
                    shared.fail(format!(
                        "pair {}: {} acknowledgements missing",
                        pair.index,
                        asked.len()
                    ));
                }
                if let Ok(mut l) = shared.ack_latency.lock() {
                    l.merge(acks);
                }
                return (Latencies::default(), Some(client));
            }
            Ev::Read(Ok(_)) => {
                let now = micros_since(pair.t0);
                for el in client.take_received() {
                    if el.name == "message" && el.attr("type") == Some("error") {
                        shared.errors.fetch_add(1, Ordering::AcqRel);
                    }
                    take_ack(&el, &mut asked, &mut acks, now);
                }
            }
            Ev::Read(Err(e)) => {
                shared.fail(format!("pair {}: sender: {e}", pair.index));
                return (Latencies::default(), None);
            }
        }
    }
}

/// The receiver: count each sequence number once, measure latency, release
/// the sender's window; then listen a little longer for duplicates.
async fn receive(
    pair: Arc<Pair>,
    mut client: Client,
    from: String,
    release: Sender<usize>,
) -> (Latencies, Option<Client>) {
    let shared = &pair.shared;
    let mut lat = Latencies::with_capacity(pair.count);
    let mut seen = vec![false; pair.count];
    let mut got = 0usize;
    let prefix = format!("vb{:x}-", pair.run);
    let mut drain_until: Option<Instant> = None;
    loop {
        let read = match drain_until {
            None => client.read_some().await.map(Some),
            Some(deadline) => {
                async { client.read_some().await.map(Some) }
                    .or(async {
                        smol::Timer::at(deadline).await;
                        Ok(None)
                    })
                    .await
            }
        };
        match read {
            Ok(Some(_)) => {}
            Ok(None) => return (lat, Some(client)),
            Err(e) => {
                shared.fail(format!("pair {}: receiver: {e}", pair.index));
                return (lat, None);
            }
        }
        let now = micros_since(pair.t0);
        let mut fresh = 0usize;
        for el in client.take_received() {
            if el.name != "message" {
                continue;
            }
            if el.attr("type") == Some("error") {
                shared.errors.fetch_add(1, Ordering::AcqRel);
                continue;
            }
            let Some(rest) = el
                .attr("id")
                .and_then(|id| id.strip_prefix(prefix.as_str()))
            else {
                shared.stale.fetch_add(1, Ordering::AcqRel);
                continue;
            };
            let parsed = rest
                .split_once('-')
                .and_then(|(seq, ts)| Some((seq.parse::<usize>().ok()?, ts.parse::<u64>().ok()?)));
            let from_ok = el.attr("from").is_some_and(|f| {
                f.strip_prefix(from.as_str())
                    .is_some_and(|r| r.is_empty() || r.starts_with('/'))
            });
            let Some((seq, sent_us)) = parsed.filter(|(s, _)| *s < pair.count && from_ok) else {
                shared.misrouted.fetch_add(1, Ordering::AcqRel);
                continue;
            };
            if std::mem::replace(&mut seen[seq], true) {
                shared.duplicates.fetch_add(1, Ordering::AcqRel);
                continue;
            }
            lat.push_us(now.saturating_sub(sent_us));
            fresh += 1;
        }
        if fresh > 0 {
            got += fresh;
            shared.delivered.fetch_add(fresh as u64, Ordering::AcqRel);
            let _ = release.try_send(fresh);
            if got == pair.count && drain_until.is_none() {
                shared.last_delivery_us.fetch_max(now, Ordering::AcqRel);
                shared.pairs_done.fetch_add(1, Ordering::AcqRel);
                drain_until = Some(Instant::now() + DRAIN);
            }
        }
    }
}
