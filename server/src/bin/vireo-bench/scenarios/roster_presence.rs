//! `roster-presence`: U users whose rosters hold R contacts each, with
//! mutual (`both`) subscriptions among the U users: user i's contacts are
//! i±1 .. i±R/2 (mod U), so the relation is symmetric and every user has
//! the same number of contacts (R rounded up to even, at most U-1).
//!
//! Setup (not timed; idempotent, so a rerun finds everything in place):
//! every user logs in, fetches its roster, adds missing items (roster set),
//! sends initial presence; once all are online, each sends `subscribe` to
//! the contacts it is not yet subscribed to and answers every `subscribe`
//! from a contact with `subscribed`, until every roster shows `both`.
//!
//! Measured phase: all users log in (C at a time) and send initial presence;
//! each counts the available presences of its contacts until it has seen
//! all of them. Then the first half of the users send unavailable presence
//! and close; the second half count the unavailable presences of their
//! first-half contacts. Reported: presence stanzas from contacts delivered
//! per second over the whole phase, the time of each wave, and the server's
//! CPU per delivered presence.

use crate::cli::RosterPresenceCmd;
use crate::procfs::Window;
use crate::report::Report;
use crate::scenarios::secs;
use crate::session::{close_all, Ctx, Gate};
use crate::transport::Client;
use smol::future::FutureExt;
use smol::lock::Semaphore;
use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use xmpp_core::ns;
use xmpp_core::Element;

const SAMPLE_EVERY: Duration = Duration::from_millis(100);

/// Contacts of every user: offsets ±1..±ceil(R/2), symmetric by construction.
fn contact_sets(users: usize, contacts: usize) -> Vec<Vec<usize>> {
    let half = contacts.div_ceil(2);
    (0..users)
        .map(|i| {
            let mut set = BTreeSet::new();
            for k in 1..=half.min(users / 2) {
                set.insert((i + k) % users);
                set.insert((i + users - k) % users);
            }
            set.remove(&i);
            set.into_iter().collect()
        })
        .collect()
}

/// Progress and failures shared by the tasks of one phase.
#[derive(Default)]
struct Progress {
    /// Stanzas handled (for stall detection).
    events: AtomicU64,
    /// Contact presences delivered (measured phase).
    presences: AtomicU64,
    /// µs since the phase start when the login wave completed.
    login_wave_us: AtomicU64,
    /// µs since the phase start when the logout wave completed.
    logout_wave_us: AtomicU64,
    failure: Mutex<Option<String>>,
    /// Per user, what it still waits for (shown when a phase stalls).
    waiting: Mutex<std::collections::BTreeMap<usize, String>>,
}

impl Progress {
    fn fail(&self, why: String) {
        if let Ok(mut f) = self.failure.lock() {
            f.get_or_insert(why);
        }
    }
    fn failure(&self) -> Option<String> {
        self.failure.lock().ok().and_then(|f| f.clone())
    }
    fn waiting_for(&self, user: usize, what: Option<String>) {
        if let Ok(mut w) = self.waiting.lock() {
            match what {
                Some(what) => w.insert(user, what),
                None => w.remove(&user),
            };
        }
    }
    fn stall_report(&self) -> String {
        let Ok(w) = self.waiting.lock() else {
            return String::new();
        };
        let shown: Vec<String> = w
            .iter()
            .take(3)
            .map(|(u, s)| format!("user {u}: {s}"))
            .collect();
        format!("{} users waiting; {}", w.len(), shown.join("; "))
    }
}

/// Run the scenario.
pub async fn run(ctx: &Arc<Ctx>, cmd: &RosterPresenceCmd, r: &mut Report) -> Result<(), String> {
    let users = cmd.users;
    if users < 2 || cmd.contacts == 0 {
        return Err("--users must be at least 2 and --contacts at least 1".into());
    }
    let sets = Arc::new(contact_sets(users, cmd.contacts));
    let per_user = sets[0].len();
    r.int("users", users as u64)
        .int("contacts", per_user as u64)
        .int("concurrency", cmd.concurrency as u64);

    let t = Instant::now();
    let subscribes = setup(ctx, &sets).await?;
    r.num("setup_s", secs(t.elapsed()))
        .int("setup_subscribes_sent", subscribes);
    // Let the server finish the setup sessions' logouts and the storage
    // writes the setup caused, so the measured phase does not pay for them.
    smol::Timer::after(Duration::from_millis(500)).await;
    let settle = Instant::now();
    wait_until_quiet(ctx.server_pid).await;
    r.num("settle_s", secs(settle.elapsed()));

    measured(ctx, cmd, &sets, r).await
}

/// Wait (at most 60 s) until the server uses under 5% of a core over 200 ms.
pub(crate) async fn wait_until_quiet(pid: Option<u32>) {
    let Some(pid) = pid else { return };
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        let before = crate::procfs::cpu_us(pid);
        smol::Timer::after(Duration::from_millis(200)).await;
        match (before, crate::procfs::cpu_us(pid)) {
            (Some(a), Some(b)) if b.saturating_sub(a) < 10_000 => return,
            (Some(_), Some(_)) => continue,
            _ => return,
        }
    }
}

/// Wait for the tasks while watching for failures and stalls.
async fn supervise(
    ctx: &Ctx,
    progress: &Progress,
    finished: &Gate,
    what: &str,
) -> Result<(), String> {
    let mut last = (Instant::now(), u64::MAX);
    loop {
        let tick = async {
            smol::Timer::after(SAMPLE_EVERY).await;
            false
        };
        let all_done = async {
            finished.wait().await;
            true
        };
        let done = tick.or(all_done).await;
        if let Some(why) = progress.failure() {
            return Err(why);
        }
        if done {
            return Ok(());
        }
        let events = progress.events.load(Ordering::Acquire);
        if events != last.1 {
            last = (Instant::now(), events);
        } else if last.0.elapsed() > ctx.timeout {
            return Err(format!(
                "{what} stalled for {:?} ({} users finished; {})",
                ctx.timeout,
                finished.arrived(),
                progress.stall_report()
            ));
        }
    }
}

/// Read once, or wait until the gate opens; received stanzas are appended
/// to `out`. `Ok(true)` when the gate is open.
pub(crate) async fn read_or(
    c: &mut Client,
    gate: &Gate,
    out: &mut Vec<Element>,
) -> Result<bool, String> {
    let opened = async {
        gate.wait().await;
        Ok(true)
    };
    let read = async {
        c.read_some()
            .await
            .map(|_| false)
            .map_err(|e| e.to_string())
    };
    let opened = read.or(opened).await?;
    out.extend(c.take_received());
    Ok(opened)
}

pub(crate) fn bare_of(jid: &str) -> &str {
    jid.split_once('/').map_or(jid, |(b, _)| b)
}

pub(crate) fn push_attr(out: &mut Vec<u8>, v: &str) {
    xmpp_core::xml::escape_attr(v, out);
}

/// Answer what a server may ask a client (roster pushes, pings) so no
/// server waits on us.
pub(crate) fn answer_iq(c: &mut Client, el: &Element) {
    let Some(ty @ ("get" | "set")) = el.attr("type") else {
        return;
    };
    let id = el.attr("id").unwrap_or_default();
    let mut out = Vec::with_capacity(64);
    out.extend_from_slice(b"<iq type='");
    // Roster pushes and pings get a result; anything else is unsupported.
    let known = el.child(ns::ROSTER, "query").is_some() && ty == "set"
        || el.child(ns::PING, "ping").is_some();
    out.extend_from_slice(if known { b"result" } else { b"error" });
    out.extend_from_slice(b"' id='");
    push_attr(&mut out, id);
    if let Some(from) = el.attr("from") {
        out.extend_from_slice(b"' to='");
        push_attr(&mut out, from);
    }
    if known {
        out.extend_from_slice(b"'/>");
    } else {
        out.extend_from_slice(
            b"'><error type='cancel'><service-unavailable \
              xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>",
        );
    }
    c.queue_raw(&out);
}

/// Subscription state of one roster item, from `subscription` and `ask`.
#[derive(Debug, Clone, Copy, Default)]
struct Sub {
    to: bool,
    from: bool,
}

impl Sub {
    fn parse(item: &Element) -> Option<(String, Option<Sub>)> {
        let jid = item.attr("jid")?.to_owned();
        let sub = match item.attr("subscription").unwrap_or("none") {
            "remove" => None,
            "both" => Some(Sub {
                to: true,
                from: true,
            }),
            "to" => Some(Sub {
                to: true,
                from: false,
            }),
            "from" => Some(Sub {
                to: false,
                from: true,
            }),
            _ => Some(Sub::default()),
        };
        Some((jid, sub))
    }
}

/// Make every roster hold its contacts with `both`. Returns how many
/// `subscribe` requests were sent (0 on a rerun).
pub(crate) async fn setup(ctx: &Arc<Ctx>, sets: &Arc<Vec<Vec<usize>>>) -> Result<u64, String> {
    let users = sets.len();
    let progress = Arc::new(Progress::default());
    let online = Gate::new(users);
    let complete = Gate::new(users);
    let finished = Gate::new(users);
    let logins = Arc::new(Semaphore::new(ctx.setup_concurrency.max(1)));
    let subscribes = Arc::new(AtomicU64::new(0));
    let tasks: Vec<_> = (0..users)
        .map(|i| {
            let (ctx, sets, progress) = (ctx.clone(), sets.clone(), progress.clone());
            let (online, complete, finished) = (online.clone(), complete.clone(), finished.clone());
            let (logins, subscribes) = (logins.clone(), subscribes.clone());
            ctx.ex.clone().spawn(async move {
                let r = setup_user(
                    &ctx,
                    i,
                    &sets[i],
                    &online,
                    &complete,
                    &logins,
                    &subscribes,
                    &progress,
                )
                .await;
                let client = match r {
                    Ok(c) => Some(c),
                    Err(e) => {
                        progress.fail(e);
                        None
                    }
                };
                finished.arrive();
                client
            })
        })
        .collect();
    supervise(ctx, &progress, &finished, "roster setup").await?;
    let mut clients = Vec::with_capacity(users);
    for t in tasks {
        clients.extend(t.await);
    }
    if let Some(why) = progress.failure() {
        return Err(why);
    }
    close_all(&ctx.ex, clients, 256).await;
    Ok(subscribes.load(Ordering::Acquire))
}

#[allow(clippy::too_many_arguments)]
async fn setup_user(
    ctx: &Ctx,
    i: usize,
    contacts: &[usize],
    online: &Gate,
    complete: &Gate,
    logins: &Semaphore,
    subscribes: &AtomicU64,
    progress: &Progress,
) -> Result<Client, String> {
    let mut c = {
        let _permit = logins.acquire().await;
        ctx.login(i).await?
    };
    let me = ctx.bare(i);
    let wanted: HashSet<String> = contacts.iter().map(|&j| ctx.bare(j)).collect();
    c.queue_raw(b"<iq type='get' id='vb-roster'><query xmlns='jabber:iq:roster'/></iq>");
    c.flush().await.map_err(|e| format!("{me}: {e}"))?;
    let mut roster: HashMap<String, Sub> = HashMap::new();
    let mut early = Vec::new();
    'fetch: loop {
        c.read_some().await.map_err(|e| format!("{me}: {e}"))?;
        let got: Vec<Element> = c.take_received().collect();
        let mut got = got.into_iter();
        while let Some(el) = got.next() {
            if el.name == "iq" && el.attr("id") == Some("vb-roster") {
                if el.attr("type") != Some("result") {
                    return Err(format!("{me}: roster get refused"));
                }
                let items = el.child(ns::ROSTER, "query").into_iter();
                for item in items.flat_map(|q| q.elements()) {
                    if let Some((jid, Some(sub))) = Sub::parse(item) {
                        roster.insert(jid, sub);
                    }
                }
                early.extend(got);
                break 'fetch;
            }
            early.push(el);
        }
    }
    // Missing items, then initial presence.
    let mut n = 0u64;
    for jid in &wanted {
        if !roster.contains_key(jid) {
            let mut iq = Vec::with_capacity(128);
            iq.extend_from_slice(b"<iq type='set' id='vb-rs");
            iq.extend_from_slice(n.to_string().as_bytes());
            iq.extend_from_slice(b"'><query xmlns='jabber:iq:roster'><item jid='");
            push_attr(&mut iq, jid);
            iq.extend_from_slice(b"'/></query></iq>");
            c.queue_raw(&iq);
            n += 1;
        }
    }
    c.queue_raw(b"<presence/>");
    c.flush().await.map_err(|e| format!("{me}: {e}"))?;
    online.arrive();

    let mut subscribed_sent = false;
    let mut is_complete = false;
    let mut all_online = false;
    let mut stanzas = early;
    loop {
        for el in stanzas.drain(..) {
            progress.events.fetch_add(1, Ordering::Relaxed);
            match el.name.as_str() {
                "presence" if el.attr("type") == Some("subscribe") => {
                    let from = bare_of(el.attr("from").unwrap_or_default()).to_owned();
                    if wanted.contains(&from) {
                        let mut p = Vec::with_capacity(96);
                        p.extend_from_slice(b"<presence type='subscribed' to='");
                        push_attr(&mut p, &from);
                        p.extend_from_slice(b"'/>");
                        c.queue_raw(&p);
                    }
                }
                "iq" => {
                    if el.attr("type") == Some("set") {
                        for item in el
                            .child(ns::ROSTER, "query")
                            .into_iter()
                            .flat_map(|q| q.elements())
                        {
                            match Sub::parse(item) {
                                Some((jid, Some(sub))) => {
                                    roster.insert(jid, sub);
                                }
                                Some((jid, None)) => {
                                    roster.remove(&jid);
                                }
                                None => {}
                            }
                        }
                    } else if el.attr("type") == Some("error")
                        && el.attr("id").is_some_and(|id| id.starts_with("vb-rs"))
                    {
                        return Err(format!("{me}: roster set refused"));
                    }
                    answer_iq(&mut c, &el);
                }
                _ => {}
            }
        }
        if all_online && !subscribed_sent {
            subscribed_sent = true;
            for jid in &wanted {
                if !roster.get(jid).is_some_and(|s| s.to) {
                    let mut p = Vec::with_capacity(96);
                    p.extend_from_slice(b"<presence type='subscribe' to='");
                    push_attr(&mut p, jid);
                    p.extend_from_slice(b"'/>");
                    c.queue_raw(&p);
                    subscribes.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
        c.flush().await.map_err(|e| format!("{me}: {e}"))?;
        let missing: Vec<String> = wanted
            .iter()
            .filter(|j| !roster.get(*j).is_some_and(|s| s.to && s.from))
            .take(3)
            .map(|j| format!("{j}={:?}", roster.get(j)))
            .collect();
        progress.waiting_for(
            i,
            (!missing.is_empty() || !subscribed_sent).then(|| {
                format!(
                    "online gate {}, subscriptions missing: {}",
                    if all_online { "open" } else { "closed" },
                    missing.join(", ")
                )
            }),
        );
        if !is_complete
            && subscribed_sent
            && wanted
                .iter()
                .all(|j| roster.get(j).is_some_and(|s| s.to && s.from))
        {
            is_complete = true;
            complete.arrive();
        }
        let gate = if all_online { complete } else { online };
        if read_or(&mut c, gate, &mut stanzas)
            .await
            .map_err(|e| format!("{me}: {e}"))?
        {
            if all_online {
                return Ok(c);
            }
            all_online = true;
        }
    }
}

/// The timed phase: login wave, then logout wave.
async fn measured(
    ctx: &Arc<Ctx>,
    cmd: &RosterPresenceCmd,
    sets: &Arc<Vec<Vec<usize>>>,
    r: &mut Report,
) -> Result<(), String> {
    let users = sets.len();
    let first_half = users / 2;
    let progress = Arc::new(Progress::default());
    let available = Gate::new(users);
    let unavailable = Gate::new(users - first_half);
    let finished = Gate::new(users);
    let logins = Arc::new(Semaphore::new(cmd.concurrency.max(1)));
    let t0 = Instant::now();
    let before = ctx.sample(0);
    let tasks: Vec<_> = (0..users)
        .map(|i| {
            let (ctx, sets, progress) = (ctx.clone(), sets.clone(), progress.clone());
            let (available, unavailable, finished) =
                (available.clone(), unavailable.clone(), finished.clone());
            let logins = logins.clone();
            ctx.ex.clone().spawn(async move {
                let leaves = i < first_half;
                let r = measured_user(
                    &ctx,
                    i,
                    &sets[i],
                    first_half,
                    leaves,
                    t0,
                    &available,
                    &unavailable,
                    &logins,
                    &progress,
                )
                .await;
                let client = match r {
                    Ok(c) => c,
                    Err(e) => {
                        progress.fail(e);
                        None
                    }
                };
                finished.arrive();
                client
            })
        })
        .collect();
    let outcome = supervise(ctx, &progress, &finished, "roster-presence").await;
    let after = ctx.sample(progress.presences.load(Ordering::Acquire));
    let mut clients = Vec::new();
    if outcome.is_ok() {
        for t in tasks {
            clients.extend(t.await);
        }
    }
    let presences = progress.presences.load(Ordering::Acquire);
    let login_us = progress.login_wave_us.load(Ordering::Acquire);
    let logout_us = progress.logout_wave_us.load(Ordering::Acquire);
    let secs_total = if logout_us > 0 {
        logout_us as f64 / 1e6
    } else {
        t0.elapsed().as_secs_f64()
    };
    let w = Window {
        secs: secs_total,
        ..Window::between(&before, &after)
    };
    let expected_unavailable: usize = (first_half..users)
        .map(|i| sets[i].iter().filter(|&&j| j < first_half).count())
        .sum();
    let expected = (users * sets[0].len() + expected_unavailable) as u64;
    r.num("presence_per_s", presences as f64 / secs_total.max(1e-9))
        .opt_num(
            "server_cpu_us_per_presence",
            w.cpu_us.map(|c| c as f64 / presences.max(1) as f64),
        )
        .opt_num("server_cpu_cores", w.cpu_cores())
        .int("presence_delivered", presences)
        .int("presence_expected", expected)
        .num("login_wave_s", login_us as f64 / 1e6)
        .num(
            "logout_wave_s",
            logout_us.saturating_sub(login_us) as f64 / 1e6,
        )
        .num("duration_s", secs_total);
    close_all(&ctx.ex, clients, 256).await;
    outcome
}

#[allow(clippy::too_many_arguments)]
async fn measured_user(
    ctx: &Ctx,
    i: usize,
    contacts: &[usize],
    first_half: usize,
    leaves: bool,
    t0: Instant,
    available: &Gate,
    unavailable: &Gate,
    logins: &Semaphore,
    progress: &Progress,
) -> Result<Option<Client>, String> {
    let mut c = {
        let _permit = logins.acquire().await;
        ctx.login(i).await?
    };
    let me = ctx.bare(i);
    let index: HashMap<String, usize> = contacts.iter().map(|&j| (ctx.bare(j), j)).collect();
    c.queue_raw(b"<presence/>");
    c.flush().await.map_err(|e| format!("{me}: {e}"))?;
    progress.events.fetch_add(1, Ordering::Relaxed);

    // Login wave: every contact's available presence; then the logout
    // wave: the unavailable presence of every first-half contact (which
    // may arrive before this task sees the login gate open).
    let expect: HashSet<usize> = contacts
        .iter()
        .copied()
        .filter(|&j| j < first_half)
        .collect();
    let mut seen_available = HashSet::with_capacity(contacts.len());
    let mut seen_gone = HashSet::with_capacity(expect.len());
    let mut stanzas: Vec<Element> = Vec::new();
    let (mut avail_done, mut gone_done, mut login_gate_open) = (false, false, false);
    loop {
        let mut count = 0u64;
        for el in stanzas.drain(..) {
            progress.events.fetch_add(1, Ordering::Relaxed);
            if el.name == "iq" {
                answer_iq(&mut c, &el);
                continue;
            }
            if el.name != "presence" {
                continue;
            }
            let Some(&j) = el.attr("from").and_then(|f| index.get(bare_of(f))) else {
                continue;
            };
            match el.attr("type") {
                None if !avail_done => {
                    count += 1;
                    seen_available.insert(j);
                }
                Some("unavailable") if !leaves && !gone_done && expect.contains(&j) => {
                    count += 1;
                    seen_gone.insert(j);
                }
                _ => {}
            }
        }
        progress.presences.fetch_add(count, Ordering::Relaxed);
        c.flush().await.map_err(|e| format!("{me}: {e}"))?;
        if !avail_done && seen_available.len() == contacts.len() {
            avail_done = true;
            if available.arrive() {
                let us = u64::try_from(t0.elapsed().as_micros()).unwrap_or(u64::MAX);
                progress.login_wave_us.store(us, Ordering::Release);
            }
        }
        if avail_done && !leaves && !gone_done && seen_gone.len() == expect.len() {
            gone_done = true;
            if unavailable.arrive() {
                let us = u64::try_from(t0.elapsed().as_micros()).unwrap_or(u64::MAX);
                progress.logout_wave_us.store(us, Ordering::Release);
            }
        }
        let waiting = if !avail_done {
            let missing: Vec<String> = contacts
                .iter()
                .filter(|j| !seen_available.contains(*j))
                .take(3)
                .map(|j| ctx.bare(*j))
                .collect();
            Some(format!(
                "available presence of {} contacts, e.g. {}",
                contacts.len() - seen_available.len(),
                missing.join(", ")
            ))
        } else if !leaves && !gone_done {
            Some(format!(
                "unavailable presence of {} contacts",
                expect.len() - seen_gone.len()
            ))
        } else {
            None
        };
        progress.waiting_for(i, waiting);
        let gate = if login_gate_open {
            unavailable
        } else {
            available
        };
        let open = read_or(&mut c, gate, &mut stanzas)
            .await
            .map_err(|e| format!("{me}: {e}"))?;
        if !open {
            continue;
        }
        if !login_gate_open {
            login_gate_open = true;
            if leaves {
                c.queue_raw(b"<presence type='unavailable'/>");
                let _ = c.close().await;
                return Ok(None);
            }
        } else if gone_done {
            return Ok(Some(c));
        }
    }
}
