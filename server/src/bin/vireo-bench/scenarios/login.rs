//! `login`: N accounts log in (connect to resource bound) with C in
//! flight; each session is closed right after. Reports logins/s, p50/p99
//! latency and the server's CPU per login.
//!
//! With `--warm` (the default) every account first logs in once, untimed,
//! at the same concurrency, and the timed logins present the SCRAM keys
//! (salt, iteration count, ClientKey, ServerKey) cached from it, as real
//! clients do (RFC 5802 §5.1): the generator then spends only a few HMACs
//! per login instead of a PBKDF2 run (~10 ms of CPU at 4096 iterations),
//! which on a small machine would otherwise limit logins/s before the
//! server does. `--no-warm` times cold logins. PLAIN has no keys to cache,
//! so it is never warmed.

use crate::cli::LoginCmd;
use crate::procfs::{self, Window};
use crate::report::Report;
use crate::session::{map_limited, Ctx};
use crate::stats::Latencies;
use std::sync::Arc;
use std::time::{Duration, Instant};
use xmpp_core::sasl::{Mechanism, ScramClientKeys};

/// Pause between the warm-up and the timed phase, so that the server has
/// finished closing the warm-up sessions before its CPU is sampled.
const SETTLE: Duration = Duration::from_millis(250);

/// One successful login: its latency, the SCRAM keys it used, and whether
/// they came from the cache.
struct Login {
    latency: Duration,
    keys: Option<ScramClientKeys>,
    cache_hit: bool,
}

/// What one pass over the accounts measured.
struct Pass {
    lat: Latencies,
    /// Per account, the keys of its login (None after PLAIN or a failure).
    keys: Vec<Option<ScramClientKeys>>,
    cache_hits: u64,
    failures: Vec<String>,
    server: Window,
    /// The generator's own CPU time, when /proc tells.
    client_cpu_us: Option<u64>,
}

/// Run the scenario.
pub async fn run(ctx: &Arc<Ctx>, cmd: &LoginCmd, r: &mut Report) -> Result<(), String> {
    r.int("accounts", cmd.accounts as u64)
        .int("concurrency", cmd.concurrency as u64);
    if cmd.accounts == 0 {
        return Err("--accounts must be at least 1".into());
    }
    let warm = cmd.warm()? && ctx.mechanism != Mechanism::Plain;
    r.bool("warm_keys", warm);

    let cache = if warm {
        let p = pass(ctx, cmd, None).await?;
        r.num("warmup_s", p.server.secs)
            .num(
                "warmup_logins_per_s",
                p.lat.len() as f64 / p.server.secs.max(1e-9),
            )
            .opt_num(
                "warmup_server_cpu_us_per_login",
                p.server
                    .cpu_us
                    .map(|c| c as f64 / p.lat.len().max(1) as f64),
            );
        if let Some(first) = p.failures.first() {
            return Err(format!(
                "warm-up: {} of {} logins failed; first: {first}",
                p.failures.len(),
                cmd.accounts
            ));
        }
        smol::Timer::after(SETTLE).await;
        Some(Arc::new(p.keys))
    } else {
        None
    };

    let p = pass(ctx, cmd, cache).await?;
    let ok = p.lat.len() as u64;
    let w = p.server;
    let s = p.lat.summary();
    r.num("logins_per_s", ok as f64 / w.secs.max(1e-9))
        .num("p50_ms", s.pct_ms(50.0))
        .num("p99_ms", s.pct_ms(99.0))
        .num("max_ms", s.max_ms())
        .opt_num(
            "server_cpu_us_per_login",
            w.cpu_us.map(|c| c as f64 / ok.max(1) as f64),
        )
        .opt_num("server_cpu_cores", w.cpu_cores())
        .opt_num(
            "client_cpu_us_per_login",
            p.client_cpu_us.map(|c| c as f64 / ok.max(1) as f64),
        )
        .num("duration_s", w.secs)
        .int("logins", ok)
        .int("cached_key_logins", p.cache_hits)
        .int("failures", p.failures.len() as u64);
    match p.failures.first() {
        None => Ok(()),
        Some(first) => Err(format!(
            "{} of {} logins failed; first: {first}",
            p.failures.len(),
            cmd.accounts
        )),
    }
}

/// Log every account in once (closing each session right away), with
/// `cache[i]` offered to account `i`'s login when given.
async fn pass(
    ctx: &Arc<Ctx>,
    cmd: &LoginCmd,
    cache: Option<Arc<Vec<Option<ScramClientKeys>>>>,
) -> Result<Pass, String> {
    let me = std::process::id();
    let client_before = procfs::cpu_us(me);
    let before = ctx.sample(0);
    let c = ctx.clone();
    let results = map_limited(&ctx.ex, cmd.accounts, cmd.concurrency, move |i| {
        let c = c.clone();
        let keys = cache.as_ref().and_then(|k| k.get(i).cloned().flatten());
        async move {
            let t = Instant::now();
            let outcome = match c.login_with(i, keys).await {
                Ok(client) => {
                    let latency = t.elapsed();
                    let keys = client.scram_keys().cloned();
                    let cache_hit = client.used_scram_cache();
                    let _ = client.close().await;
                    Ok(Login {
                        latency,
                        keys,
                        cache_hit,
                    })
                }
                Err(e) => Err(e),
            };
            Ok(outcome)
        }
    })
    .await?;
    let after = ctx.sample(cmd.accounts as u64);
    let client_cpu_us = match (client_before, procfs::cpu_us(me)) {
        (Some(a), Some(b)) => Some(b.saturating_sub(a)),
        _ => None,
    };
    let mut p = Pass {
        lat: Latencies::with_capacity(results.len()),
        keys: Vec::with_capacity(results.len()),
        cache_hits: 0,
        failures: Vec::new(),
        server: Window::between(&before, &after),
        client_cpu_us,
    };
    for res in results {
        match res {
            Ok(l) => {
                p.lat.push(l.latency);
                p.keys.push(l.keys);
                p.cache_hits += u64::from(l.cache_hit);
            }
            Err(e) => {
                p.keys.push(None);
                p.failures.push(e);
            }
        }
    }
    Ok(p)
}
