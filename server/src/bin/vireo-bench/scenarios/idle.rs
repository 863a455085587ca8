//! `idle`: hold N authenticated sessions with initial presence and report
//! the server's RSS before and after (`/proc/PID/status` VmRSS), hence KiB
//! per session; then close them all.

use crate::cli::IdleCmd;
use crate::procfs::{rss_kib, self_rss_kib};
use crate::report::Report;
use crate::scenarios::secs;
use crate::session::{close_all, map_limited, Ctx};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Run the scenario.
pub async fn run(ctx: &Arc<Ctx>, cmd: &IdleCmd, r: &mut Report) -> Result<(), String> {
    r.int("sessions", cmd.sessions as u64);
    let pid = ctx.server_pid;
    let before = pid.and_then(rss_kib);
    r.opt_int("server_rss_before_kib", before);
    let t = Instant::now();
    let c = ctx.clone();
    let clients = map_limited(&ctx.ex, cmd.sessions, ctx.setup_concurrency, move |i| {
        let c = c.clone();
        async move {
            let mut client = c.login_present(i).await?;
            client.park();
            Ok(client)
        }
    })
    .await?;
    let login_time = t.elapsed();
    smol::Timer::after(Duration::from_millis(cmd.settle_ms)).await;
    let after = pid.and_then(rss_kib);
    let per_session = match (before, after) {
        (Some(b), Some(a)) if cmd.sessions > 0 => Some((a as f64 - b as f64) / cmd.sessions as f64),
        _ => None,
    };
    r.opt_int("server_rss_after_kib", after)
        .opt_num("kib_per_session", per_session)
        .num("login_s", secs(login_time))
        .num(
            "logins_per_s",
            clients.len() as f64 / secs(login_time).max(1e-9),
        )
        .opt_int("bench_rss_kib", self_rss_kib());
    if cmd.hold > 0 {
        smol::Timer::after(Duration::from_secs(cmd.hold)).await;
    }
    let t = Instant::now();
    close_all(&ctx.ex, clients, 256).await;
    r.num("close_s", secs(t.elapsed()));
    Ok(())
}
