//! `vireo-bench`: a load generator for XMPP servers, built on xmpp-core's
//! client stream (through xmpp-runtime's `Client`), in the spirit of
//! pgbench and redis-benchmark. It measures Vireo, Prosody and ejabberd the
//! same way.
//!
//! Scenarios (`scenarios/`): `login`, `idle`, `messages`,
//! `roster-presence`, `mam`, `pep`. Each run prints exactly one JSON line on stdout and a
//! table on stderr, and exits non-zero when a login fails or a message is
//! lost or duplicated (the JSON line then has `"ok":false` and `"error"`).
//!
//! Sessions use TCP (the default) or, with `--transport ws`, XMPP over
//! WebSocket (RFC 7395) on the server's HTTP port (`transport/`); both
//! drive the same client machine, so the figures compare like for like.
//!
//! The generator runs on a smol executor with `--threads` threads (default
//! 1, so that on a 2-core machine the other core is left to the server).
//! Server CPU and memory come from `/proc/PID` with `--server-pid`. The
//! open-file soft limit is raised to the hard limit at start (reported as
//! `nofile_soft`/`nofile_hard`).

mod cli;
mod procfs;
mod report;
mod scenarios;
mod session;
mod stats;
mod transport;

use cli::Args;
use report::Report;
use session::Ctx;
use std::net::ToSocketAddrs;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

fn main() -> ExitCode {
    let args: Args = argh::from_env();
    let nofile = procfs::raise_nofile();
    let mut report = Report::default();
    report
        .str("scenario", args.scenario.name())
        .set(
            "label",
            args.label
                .clone()
                .map_or(report::Value::Null, report::Value::Str),
        )
        .str(
            "transport",
            args.transport()
                .map_or_else(|_| args.transport.clone(), |t| t.name().to_owned()),
        )
        .str("tls", args.tls.name())
        .str("mechanism", args.mechanism.name())
        .str("host", args.host.clone())
        .int("port", args.port)
        .str("domain", args.domain.clone())
        .int("threads", args.threads as u64)
        .opt_int("server_pid", args.server_pid.map(u64::from))
        .int("nofile_soft", nofile.soft)
        .int("nofile_hard", nofile.hard);
    let started = Instant::now();
    let result = run(&args, &mut report);
    report.num("wall_s", started.elapsed().as_secs_f64());
    let code = match &result {
        Ok(()) => {
            report.bool("ok", true);
            ExitCode::SUCCESS
        }
        Err(e) => {
            report.bool("ok", false).str("error", e.clone());
            ExitCode::FAILURE
        }
    };
    eprintln!("vireo-bench {}:", args.scenario.name());
    eprint!("{}", report.table());
    if let Err(e) = &result {
        eprintln!("vireo-bench: FAILED: {e}");
    }
    println!("{}", report.json());
    code
}

fn run(args: &Args, report: &mut Report) -> Result<(), String> {
    if args.threads == 0 {
        return Err("--threads must be at least 1".into());
    }
    let addr = (args.host.as_str(), args.port)
        .to_socket_addrs()
        .map_err(|e| format!("{}:{}: {e}", args.host, args.port))?
        .next()
        .ok_or_else(|| format!("{}:{}: no address", args.host, args.port))?;
    let transport = args.transport()?;
    let ex = Arc::new(smol::Executor::new());
    let ctx = Arc::new(Ctx {
        ex: ex.clone(),
        addr,
        transport,
        domain: args.domain.clone(),
        tls: args.tls,
        prefix: args.user_prefix.clone(),
        password: args.password.clone(),
        mechanism: args.mechanism,
        server_pid: args.server_pid,
        timeout: Duration::from_secs(args.timeout.max(1)),
        setup_concurrency: args.setup_concurrency.max(1),
    });
    // The calling thread is executor thread 1; the others run until `stop`
    // is dropped.
    let (stop, stopped) = smol::channel::bounded::<()>(1);
    let helpers: Vec<_> = (1..args.threads)
        .map(|n| {
            let (ex, stopped) = (ex.clone(), stopped.clone());
            std::thread::Builder::new()
                .name(format!("bench-{n}"))
                .spawn(move || smol::block_on(ex.run(stopped.recv())))
        })
        .collect::<Result<_, _>>()
        .map_err(|e| format!("cannot start executor threads: {e}"))?;
    let result = smol::block_on(ex.run(async {
        if args.register {
            let t = Instant::now();
            let (created, existing) = session::register_all(&ctx, args.scenario.accounts()).await?;
            report
                .int("registered", created as u64)
                .int("already_registered", existing as u64)
                .num("register_s", t.elapsed().as_secs_f64());
        }
        scenarios::run(ctx.clone(), &args.scenario, report).await
    }));
    drop(stop);
    for h in helpers {
        let _ = h.join();
    }
    result
}
