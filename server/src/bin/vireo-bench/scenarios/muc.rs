//! `muc`: R rooms × O occupants (XEP-0045). Account `r·O + k` joins room
//! `r` as nick `o{k}`; every occupant then sends M groupchat messages with
//! W of its own in flight, a message leaving the window when the room
//! reflects it back to its sender (§7.4: the sender receives its own
//! message like every other occupant). A delivery is one groupchat message
//! reaching one occupant, reflections included: R·O·O·M in all.
//!
//! Setup is untimed: all logins, then per room the first occupant creates
//! the room (and accepts the default configuration when the service locks
//! a new room, status 201, §10.1.2 instant room), then the others join one
//! by one; each join waits for the occupant's own presence (status 110).
//! Joins ask for no history, so every message counted is one of this run.
//!
//! Every body carries a per-run nonce, the sender's index in the room, the
//! sequence number and the send time (µs since the phase started): each
//! occupant checks that the `from` nick matches the index, counts each
//! (sender, seq) once and measures end-to-end latency. Rate and server CPU
//! per delivery are taken over the steady part (10%..90% of deliveries).

use crate::cli::MucCmd;
use crate::procfs::{peak_rss_kib, rss_kib, Sample, Window};
use crate::report::Report;
use crate::session::{close_all, map_limited, Ctx};
use crate::stats::{steady_window, Latencies};
use crate::transport::Client;
use smol::future::FutureExt;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use xmpp_core::Element;

const MUC_NS: &str = "http://jabber.org/protocol/muc";
const MUC_USER_NS: &str = "http://jabber.org/protocol/muc#user";
/// How often the coordinator samples progress and server CPU.
const SAMPLE_EVERY: Duration = Duration::from_millis(50);
/// Rooms larger than this ask for `maxusers` explicitly at creation.
const LARGE_ROOM: usize = 100;
/// How long an occupant keeps listening for duplicates after its last delivery.
const DRAIN: Duration = Duration::from_millis(300);

#[derive(Default)]
struct Shared {
    sent: AtomicU64,
    delivered: AtomicU64,
    duplicates: AtomicU64,
    /// Message errors bounced by the room.
    errors: AtomicU64,
    /// Bodies of this run with a sender/nick mismatch or an impossible index.
    misrouted: AtomicU64,
    /// Groupchat messages with a body not of this run (history, other runs).
    stale: AtomicU64,
    occupants_done: AtomicUsize,
    /// µs since the start when the last occupant completed.
    last_delivery_us: AtomicU64,
    failure: Mutex<Option<String>>,
}

impl Shared {
    fn fail(&self, why: String) {
        if let Ok(mut f) = self.failure.lock() {
            f.get_or_insert(why);
        }
    }
}

/// What one occupant needs to know about the run.
struct Plan {
    room: String,
    /// Index in the room (nick `o{k}`).
    k: usize,
    occupants: usize,
    count: usize,
    window: usize,
    run: u32,
    body_pad: String,
    t0: Instant,
    shared: Arc<Shared>,
}

/// Run the scenario.
pub async fn run(ctx: &Arc<Ctx>, cmd: &MucCmd, r: &mut Report) -> Result<(), String> {
    let (rooms, occupants, window, count) = (cmd.rooms, cmd.occupants, cmd.window, cmd.count);
    let service = cmd
        .service
        .clone()
        .unwrap_or_else(|| format!("conference.{}", ctx.domain));
    r.int("rooms", rooms as u64)
        .int("occupants", occupants as u64)
        .int("window", window as u64)
        .int("count", count as u64)
        .int("body_bytes", cmd.body_bytes as u64)
        .str("service", &service);
    if rooms == 0 || occupants == 0 || window == 0 || count == 0 {
        return Err("--rooms, --occupants, --window and --count must be at least 1".into());
    }
    let run = run_nonce();

    // Untimed setup: log everyone in, then fill the rooms (in parallel).
    let t_setup = Instant::now();
    let c = ctx.clone();
    let mut clients = map_limited(
        &ctx.ex,
        rooms * occupants,
        ctx.setup_concurrency,
        move |i| {
            let c = c.clone();
            async move { c.login_present(i).await }
        },
    )
    .await?
    .into_iter();
    let mut joins = Vec::with_capacity(rooms);
    for room in 0..rooms {
        let members: Vec<Client> = clients.by_ref().take(occupants).collect();
        let jid = format!("vb{run:x}-r{room}@{service}");
        let limit = ctx.timeout;
        joins.push(ctx.ex.spawn(fill_room(jid, members, limit)));
    }
    let mut seated = Vec::with_capacity(rooms);
    let mut setup_error = None;
    for j in joins {
        match j.await {
            Ok(room) => seated.push(room),
            Err(e) => {
                setup_error.get_or_insert(e);
            }
        }
    }
    if let Some(e) = setup_error {
        for (_, members) in seated {
            close_all(&ctx.ex, members, 256).await;
        }
        return Err(e);
    }
    r.num("setup_s", t_setup.elapsed().as_secs_f64());
    let rss_before = ctx.server_pid.and_then(rss_kib);

    // The measured phase.
    let shared = Arc::new(Shared::default());
    let body_pad = "x".repeat(cmd.body_bytes);
    let t0 = Instant::now();
    let mut samples = vec![ctx.sample(0)];
    let mut tasks = Vec::with_capacity(rooms * occupants);
    for (room, members) in seated {
        for (k, client) in members.into_iter().enumerate() {
            let plan = Arc::new(Plan {
                room: room.clone(),
                k,
                occupants,
                count,
                window,
                run,
                body_pad: body_pad.clone(),
                t0,
                shared: shared.clone(),
            });
            tasks.push(ctx.ex.spawn(occupant(plan, client)));
        }
    }

    let total = (rooms * occupants * occupants * count) as u64;
    let mut last_progress = (Instant::now(), 0u64);
    let outcome = loop {
        smol::Timer::after(SAMPLE_EVERY).await;
        let delivered = shared.delivered.load(Ordering::Acquire);
        samples.push(ctx.sample(delivered));
        if let Some(why) = shared.failure.lock().ok().and_then(|f| f.clone()) {
            break Err(why);
        }
        if shared.occupants_done.load(Ordering::Acquire) == rooms * occupants {
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
    let mut lat = Latencies::with_capacity(total as usize);
    let mut finished = Vec::with_capacity(rooms * occupants);
    if outcome.is_ok() {
        for t in tasks {
            let (l, client) = t.await;
            lat.merge(l);
            finished.extend(client);
        }
    }
    let rss_after = ctx.server_pid.and_then(rss_kib);
    // The high-water mark: what the fan-out cost at its worst, which the
    // RSS after (memory the allocator kept or gave back) does not tell.
    let rss_peak = ctx.server_pid.and_then(peak_rss_kib);

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
    let whole = whole_phase(&samples, get(&shared.last_delivery_us), delivered);
    let s = lat.summary();
    r.opt_num("deliveries_per_s", steady.map(|w| w.rate()))
        .num("p50_ms", s.pct_ms(50.0))
        .num("p99_ms", s.pct_ms(99.0))
        .num("max_ms", s.max_ms())
        .opt_num(
            "server_cpu_us_per_delivery",
            steady.and_then(|w| w.cpu_per_unit()),
        )
        .opt_num("server_cpu_cores", steady.and_then(|w| w.cpu_cores()))
        .opt_num("steady_s", steady.map(|w| w.secs))
        .num("deliveries_per_s_total", whole.rate())
        .opt_num("server_cpu_us_per_delivery_total", whole.cpu_per_unit())
        .num("duration_s", whole.secs)
        .int("sent", sent)
        .int("expected_deliveries", total)
        .int("delivered", delivered)
        .int("duplicates", dups)
        .int("errors", errors)
        .int("misrouted", misrouted)
        .int("stale", stale)
        .opt_int("server_rss_before_kib", rss_before)
        .opt_int("server_rss_after_kib", rss_after)
        .opt_int("server_rss_peak_kib", rss_peak);

    close_all(&ctx.ex, finished, 256).await;
    // Everyone leaving is up to O·(O−1)/2 "left the room" presences: the
    // high-water mark once the server has dealt with them.
    super::roster_presence::wait_until_quiet(ctx.server_pid).await;
    r.opt_int(
        "server_rss_peak_after_leaving_kib",
        ctx.server_pid.and_then(peak_rss_kib),
    );
    outcome?;
    let want_sent = (rooms * occupants * count) as u64;
    if sent != want_sent || delivered != total || dups != 0 || errors != 0 || misrouted != 0 {
        return Err(format!(
            "accounting failed: {want_sent} to send, {sent} sent; {total} deliveries expected, \
             {delivered} delivered, {dups} duplicates, {errors} errors, {misrouted} misrouted"
        ));
    }
    Ok(())
}

/// Seat `members` in `room`: the first creates it, the others join one by
/// one. Returns the room's JID and the clients, in nick order.
async fn fill_room(
    room: String,
    mut members: Vec<Client>,
    limit: Duration,
) -> Result<(String, Vec<Client>), String> {
    let occupants = members.len();
    for (k, client) in members.iter_mut().enumerate() {
        let nick = format!("o{k}");
        let mut join = Vec::with_capacity(160);
        join.extend_from_slice(b"<presence to='");
        xmpp_core::xml::escape_attr(&format!("{room}/{nick}"), &mut join);
        join.extend_from_slice(b"'><x xmlns='");
        join.extend_from_slice(MUC_NS.as_bytes());
        join.extend_from_slice(b"'><history maxstanzas='0'/></x></presence>");
        client.queue_raw(&join);
        let codes = bounded(limit, self_presence(client, &room, &nick))
            .await
            .map_err(|e| format!("{room}: join as {nick}: {e}"))?;
        if codes.iter().any(|c| c == "201") {
            // A locked new room: accept the default configuration (§10.1.2),
            // with room for everyone when that is more than the services'
            // usual default maximum (§10.2 muc#roomconfig_maxusers).
            let mut iq = Vec::with_capacity(400);
            iq.extend_from_slice(b"<iq type='set' id='vb-instant' to='");
            xmpp_core::xml::escape_attr(&room, &mut iq);
            iq.extend_from_slice(
                b"'><query xmlns='http://jabber.org/protocol/muc#owner'>\
                  <x xmlns='jabber:x:data' type='submit'>",
            );
            if occupants > LARGE_ROOM {
                use std::io::Write as _;
                let _ = write!(
                    iq,
                    "<field var='FORM_TYPE'><value>http://jabber.org/protocol/muc#roomconfig</value></field>\
                     <field var='muc#roomconfig_maxusers'><value>{occupants}</value></field>"
                );
            }
            iq.extend_from_slice(b"</x></query></iq>");
            client.queue_raw(&iq);
            bounded(limit, iq_result(client, "vb-instant"))
                .await
                .map_err(|e| format!("{room}: instant room configuration: {e}"))?;
        }
    }
    Ok((room, members))
}

async fn bounded<T>(
    limit: Duration,
    f: impl std::future::Future<Output = Result<T, String>>,
) -> Result<T, String> {
    f.or(async {
        smol::Timer::after(limit).await;
        Err(format!("no answer within {limit:?}"))
    })
    .await
}

/// Wait for the occupant's own presence from `room/nick` (status 110, or
/// the nick as a fallback for services that omit it); its status codes.
async fn self_presence(c: &mut Client, room: &str, nick: &str) -> Result<Vec<String>, String> {
    let me = format!("{room}/{nick}");
    c.flush().await.map_err(|e| e.to_string())?;
    loop {
        for el in c.take_received() {
            if el.name != "presence" || el.attr("from") != Some(me.as_str()) {
                continue;
            }
            if el.attr("type") == Some("error") {
                return Err(format!("presence error: {}", error_condition(&el)));
            }
            let codes: Vec<String> = el
                .child(MUC_USER_NS, "x")
                .map(|x| {
                    x.elements()
                        .filter(|s| s.name == "status")
                        .filter_map(|s| s.attr("code").map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default();
            return Ok(codes);
        }
        c.read_some().await.map_err(|e| e.to_string())?;
    }
}

async fn iq_result(c: &mut Client, id: &str) -> Result<(), String> {
    c.flush().await.map_err(|e| e.to_string())?;
    loop {
        for el in c.take_received() {
            if el.name == "iq" && el.attr("id") == Some(id) {
                return match el.attr("type") {
                    Some("result") => Ok(()),
                    _ => Err(format!("iq error: {}", error_condition(&el))),
                };
            }
        }
        c.read_some().await.map_err(|e| e.to_string())?;
    }
}

fn error_condition(el: &Element) -> String {
    el.elements()
        .find(|e| e.name == "error")
        .and_then(|e| e.first_element().map(|c| c.name.clone()))
        .unwrap_or_else(|| "(no condition)".into())
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

/// `{sender}-{seq}-{µs}-{padding}` after the run's nonce.
fn parse_body(rest: &str) -> Option<(usize, usize, u64)> {
    let mut parts = rest.splitn(4, '-');
    let k = parts.next()?.parse::<usize>().ok()?;
    let seq = parts.next()?.parse::<usize>().ok()?;
    let ts = parts.next()?.parse::<u64>().ok()?;
    Some((k, seq, ts))
}

fn micros_since(t0: Instant) -> u64 {
    u64::try_from(t0.elapsed().as_micros()).unwrap_or(u64::MAX)
}

/// One occupant: send with the window, count every delivery once, release
/// the window on its own reflections; then listen a little longer for
/// duplicates.
async fn occupant(plan: Arc<Plan>, mut client: Client) -> (Latencies, Option<Client>) {
    let shared = &plan.shared;
    let expect = plan.occupants * plan.count;
    let mut lat = Latencies::with_capacity(expect);
    let mut seen = vec![false; expect];
    let mut head = Vec::with_capacity(96);
    head.extend_from_slice(b"<message type='groupchat' to='");
    xmpp_core::xml::escape_attr(&plan.room, &mut head);
    head.extend_from_slice(b"'><body>");
    let prefix = format!("{:x}-", plan.run);
    let nick_prefix = format!("{}/o", plan.room);
    let mut stanza = Vec::with_capacity(head.len() + plan.body_pad.len() + 64);
    let (mut sent, mut in_flight, mut got) = (0usize, 0usize, 0usize);
    let mut drain_until: Option<Instant> = None;
    loop {
        if drain_until.is_none() && in_flight < plan.window && sent < plan.count {
            let now = micros_since(plan.t0);
            let before = sent;
            while in_flight < plan.window && sent < plan.count {
                use std::io::Write as _;
                stanza.clear();
                stanza.extend_from_slice(&head);
                let _ = write!(stanza, "{}{}-{sent}-{now}-", prefix, plan.k);
                stanza.extend_from_slice(plan.body_pad.as_bytes());
                stanza.extend_from_slice(b"</body></message>");
                client.queue_raw(&stanza);
                sent += 1;
                in_flight += 1;
            }
            shared
                .sent
                .fetch_add((sent - before) as u64, Ordering::AcqRel);
            if let Err(e) = client.flush().await {
                shared.fail(format!("{}/o{}: send: {e}", plan.room, plan.k));
                return (lat, None);
            }
        }
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
                shared.fail(format!("{}/o{}: read: {e}", plan.room, plan.k));
                return (lat, None);
            }
        }
        let now = micros_since(plan.t0);
        let mut fresh = 0usize;
        for el in client.take_received() {
            if el.name != "message" {
                continue;
            }
            if el.attr("type") == Some("error") {
                shared.errors.fetch_add(1, Ordering::AcqRel);
                continue;
            }
            // Subject and other bodiless room messages are not deliveries.
            let Some(body) = el.child_text("jabber:client", "body") else {
                continue;
            };
            let Some(rest) = body.strip_prefix(prefix.as_str()) else {
                shared.stale.fetch_add(1, Ordering::AcqRel);
                continue;
            };
            let parsed = parse_body(rest);
            let nick_ok = |k: usize| {
                el.attr("from")
                    .and_then(|f| f.strip_prefix(nick_prefix.as_str()))
                    .is_some_and(|n| n.parse::<usize>().ok() == Some(k))
            };
            let Some((k, seq, sent_us)) = parsed
                .filter(|(k, seq, _)| *k < plan.occupants && *seq < plan.count && nick_ok(*k))
            else {
                shared.misrouted.fetch_add(1, Ordering::AcqRel);
                continue;
            };
            if std::mem::replace(&mut seen[k * plan.count + seq], true) {
                shared.duplicates.fetch_add(1, Ordering::AcqRel);
                continue;
            }
            if k == plan.k {
                in_flight = in_flight.saturating_sub(1);
            }
            lat.push_us(now.saturating_sub(sent_us));
            fresh += 1;
        }
        if fresh > 0 {
            got += fresh;
            shared.delivered.fetch_add(fresh as u64, Ordering::AcqRel);
            if got == expect && drain_until.is_none() {
                shared.last_delivery_us.fetch_max(now, Ordering::AcqRel);
                shared.occupants_done.fetch_add(1, Ordering::AcqRel);
                drain_until = Some(Instant::now() + DRAIN);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::parse_body;

    #[test]
    fn bodies_parse_or_count_as_misrouted() {
        assert_eq!(parse_body("3-17-12345-xxxx"), Some((3, 17, 12345)));
        assert_eq!(parse_body("3-17-12345-"), Some((3, 17, 12345)));
        assert_eq!(parse_body("3-17-12345"), Some((3, 17, 12345)));
        assert_eq!(parse_body("a-17-12345-x"), None);
        assert_eq!(parse_body("3-17"), None);
        assert_eq!(parse_body(""), None);
    }
}
