//! The `vireo` binary: `vireo run` and the admin commands.

mod cli;
mod commands;
mod config;
mod password;

use cli::{CertAction, Cli, Command};
use commands::users::Op;
use config::Config;
use std::io::IsTerminal;
use std::process::ExitCode;
use tracing_subscriber::EnvFilter;

fn init_logging(level: &str) {
    let filter = EnvFilter::try_from_env("RUST_LOG")
        .or_else(|_| EnvFilter::try_new(level))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let ansi = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(std::io::stderr)
        .init();
}

fn main() -> ExitCode {
    let cli: Cli = cli::parse();
    let config_path = match &cli.command {
        Command::Run(r) => r.config.clone().or(cli.config.clone()),
        _ => cli.config.clone(),
    };
    let env = |k: &str| std::env::var(k).ok();
    let cfg = match Config::load(config_path.as_deref(), &env) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("vireo: configuration error: {e}");
            return ExitCode::from(2);
        }
    };
    let is_run = matches!(cli.command, Command::Run(_));
    init_logging(if is_run { &cfg.log_level } else { "warn" });
    let result = match cli.command {
        Command::Run(_) => commands::run::run(&cfg).map(|()| None),
        Command::AddUser(c) => commands::users::run(&cfg, Op::Add, &c.jid).map(Some),
        Command::Passwd(c) => commands::users::run(&cfg, Op::Passwd, &c.jid).map(Some),
        Command::DelUser(c) => commands::users::run(&cfg, Op::Delete, &c.jid).map(Some),
        Command::ImportUsers(c) => commands::import::run(&cfg, &c.file, c.threads).map(Some),
        Command::Cert(c) => match c.action {
            CertAction::Generate(g) => {
                commands::cert::generate(&cfg, &g.domain, g.out).map(|()| None)
            }
        },
    };
    match result {
        Ok(Some(msg)) => {
            println!("{msg}");
            ExitCode::SUCCESS
        }
        Ok(None) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("vireo: {e}");
            ExitCode::FAILURE
        }
    }
}
