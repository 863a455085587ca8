//! `login`: N accounts log in (TCP connect to resource bound) with C in
//! flight; each session is closed right after. Reports logins/s, p50/p99
//! latency and the server's CPU per login.

use crate::cli::LoginCmd;
use crate::procfs::Window;
use crate::report::Report;
use crate::session::{map_limited, Ctx};
use crate::stats::Latencies;
use std::sync::Arc;
use std::time::Instant;

/// Run the scenario.
pub async fn run(ctx: &Arc<Ctx>, cmd: &LoginCmd, r: &mut Report) -> Result<(), String> {
    r.int("accounts", cmd.accounts as u64)
        .int("concurrency", cmd.concurrency as u64);
    if cmd.accounts == 0 {
        return Err("--accounts must be at least 1".into());
    }
    let before = ctx.sample(0);
    let c = ctx.clone();
    let results = map_limited(&ctx.ex, cmd.accounts, cmd.concurrency, move |i| {
        let c = c.clone();
        async move {
            let t = Instant::now();
            let outcome = match c.login(i).await {
                Ok(client) => {
                    let latency = t.elapsed();
                    let _ = client.close().await;
                    Ok(latency)
                }
                Err(e) => Err(e),
            };
            Ok(outcome)
        }
    })
    .await?;
    let after = ctx.sample(cmd.accounts as u64);
    let mut lat = Latencies::with_capacity(results.len());
    let mut failures = Vec::new();
    for res in results {
        match res {
            Ok(d) => lat.push(d),
            Err(e) => failures.push(e),
        }
    }
    let ok = lat.len() as u64;
    let w = Window::between(&before, &after);
    let s = lat.summary();
    r.num("logins_per_s", ok as f64 / w.secs.max(1e-9))
        .num("p50_ms", s.pct_ms(50.0))
        .num("p99_ms", s.pct_ms(99.0))
        .num("max_ms", s.max_ms())
        .opt_num(
            "server_cpu_us_per_login",
            w.cpu_us.map(|c| c as f64 / ok.max(1) as f64),
        )
        .opt_num("server_cpu_cores", w.cpu_cores())
        .num("duration_s", w.secs)
        .int("logins", ok)
        .int("failures", failures.len() as u64);
    match failures.first() {
        None => Ok(()),
        Some(first) => Err(format!(
            "{} of {} logins failed; first: {first}",
            failures.len(),
            cmd.accounts
        )),
    }
}
