//! The `vireo` binary: `vireo run` and the admin commands.

use vireo::{cli, commands, config};

use cli::{CertAction, Cli, Command};
use commands::users::Op;
use config::Config;
use std::io::IsTerminal;
use std::process::ExitCode;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{fmt, reload, EnvFilter};

/// Install the logger; the returned control lets `vireo reload` and SIGHUP
/// change the level.
fn init_logging(level: &str, json: bool, stdout: bool) -> commands::reload::LogControl {
    // Containers collect stdout; everywhere else logs go to stderr.
    let writer = || {
        if stdout {
            fmt::writer::BoxMakeWriter::new(std::io::stdout)
        } else {
            fmt::writer::BoxMakeWriter::new(std::io::stderr)
        }
    };
    let from_env = EnvFilter::try_from_env("RUST_LOG");
    let overridden = from_env.is_ok();
    let filter = from_env
        .or_else(|_| EnvFilter::try_new(level))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let (filter, handle) = reload::Layer::new(filter);
    let terminal = if stdout {
        std::io::stdout().is_terminal()
    } else {
        std::io::stderr().is_terminal()
    };
    let ansi = terminal && std::env::var_os("NO_COLOR").is_none();
    tracing_subscriber::registry()
        .with(filter)
        // Exactly one of the two is Some: readable text, or JSON lines.
        .with((!json).then(|| fmt::layer().with_ansi(ansi).with_writer(writer())))
        .with(json.then(|| fmt::layer().json().with_writer(writer())))
        .init();
    commands::reload::LogControl::new(handle, overridden)
}

fn main() -> ExitCode {
    let cli: Cli = cli::parse();
    if matches!(cli.command, Command::Run(_)) {
        vireo::allocator::tune_tcache();
    }
    let config_path = match &cli.command {
        Command::Run(r) => r.config.clone().or(cli.config.clone()),
        _ => cli.config.clone(),
    };
    if let Some(code) = commands::check_config::early(&cli.command, config_path.as_deref()) {
        return code;
    }
    let env = |k: &str| std::env::var(k).ok();
    let cfg = match Config::load(config_path.as_deref(), &env) {
        Ok(c) => c,
        Err(e) => {
            if let Command::Reload(r) = &cli.command {
                return commands::reload::without_config(r, &e);
            }
            if let Command::Config(c) = &cli.command {
                if let cli::ConfigAction::Test(_) = c.action {
                    return commands::config_test::without_config(&e);
                }
            }
            if let Command::Check(c) = &cli.command {
                if let cli::CheckAction::Certs(_) = c.action {
                    return commands::check_certs::without_config(config_path.as_deref(), &e);
                }
            }
            eprintln!("vireo: configuration error: {e}");
            return ExitCode::from(2);
        }
    };
    let is_run = matches!(cli.command, Command::Run(_));
    let log = init_logging(
        if is_run { &cfg.log_level } else { "warn" },
        is_run && cfg.log_format == "json",
        is_run && cfg.environment.as_deref() == Some("docker"),
    );
    let result = match cli.command {
        Command::Run(_) => {
            commands::run::run(&cfg, config_path.as_deref(), Some(log)).map(|()| None)
        }
        Command::Reload(c) => commands::reload::run(&cfg, &c).map(Some),
        Command::AddUser(c) => commands::users::run(&cfg, Op::Add, &c.jid).map(Some),
        Command::Passwd(c) => commands::users::run(&cfg, Op::Passwd, &c.jid).map(Some),
        Command::DelUser(c) => commands::users::run(&cfg, Op::Delete, &c.jid).map(Some),
        Command::ImportUsers(c) => commands::import::run(&cfg, &c.file, c.threads).map(Some),
        Command::Export(c) => commands::xep0227::export(&cfg, c.user.as_deref(), &c.file),
        Command::Import(c) => commands::xep0227::import(&cfg, &c.file, c.check).map(Some),
        Command::User(c) => match c.action {
            cli::UserAction::Export(e) => {
                commands::xep0227::export(&cfg, Some(&e.jid), e.file.as_deref().unwrap_or("-"))
            }
        },
        Command::Cert(c) => match c.action {
            CertAction::Generate(g) => {
                commands::cert::generate(&cfg, &g.domain, g.out).map(|()| None)
            }
            CertAction::Import(i) => commands::cert_import::run(&cfg, &i.domain, &i.cert, &i.key)
                .map(Some)
                .map_err(|e| e.to_string()),
        },
        Command::Config(c) => match c.action {
            cli::ConfigAction::Backup(b) => commands::backup::run(&cfg, &b.dest, b.data, b.gzip)
                .map(Some)
                .map_err(|e| e.to_string()),
            // Handled by commands::check_config::early.
            cli::ConfigAction::Init(_)
            | cli::ConfigAction::Show(_)
            | cli::ConfigAction::Reference(_) => Ok(None),
            cli::ConfigAction::Test(_) => commands::config_test::run(&cfg)
                .map(Some)
                .map_err(|e| e.to_string()),
        },
        Command::Check(c) => match c.action {
            // Handled by commands::check_config::early.
            cli::CheckAction::Config(_) | cli::CheckAction::Dns(_) | cli::CheckAction::S2s(_) => {
                Ok(None)
            }
            cli::CheckAction::Certs(_) => commands::check_certs::run(&cfg)
                .map(Some)
                .map_err(|e| e.to_string()),
        },
        Command::Module(c) => match c.action {
            cli::ModuleAction::List(_) => Ok(Some(commands::module_list::run(&cfg))),
        },
        Command::Token(t) => commands::token::run(&cfg, t.action).map(Some),
        Command::Storage(s) => commands::storage::run(&cfg, s.action).map(Some),
        Command::About(_) => Ok(Some(commands::about::run(&cfg))),
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
