//! `vireo check config`: load everything and report every problem, each with
//! its file:line (or variable) and a fix. Exit 0 only without errors;
//! warnings are printed but do not fail the check.
//!
//! Also the early dispatch of the configuration commands that must run
//! without (or despite) a valid configuration.

use crate::cli::{CheckAction, Command, ConfigAction};
use crate::config::diagnostics::Diagnostic;
use crate::config::Config;
use std::path::Path;
use std::process::ExitCode;
use xmpp_runtime::storage::postgres::schema;
use xmpp_runtime::storage::PostgresBackend;

/// Run the configuration commands that do not need a loaded configuration;
/// `None` for every other command.
pub fn early(command: &Command, config_path: Option<&Path>) -> Option<ExitCode> {
    let env = |k: &str| std::env::var(k).ok();
    let outcome = match command {
        Command::Check(c) => match &c.action {
            CheckAction::Config(_) => {
                let (text, ok) = run(config_path, &env);
                print!("{text}");
                return Some(if ok {
                    ExitCode::SUCCESS
                } else {
                    ExitCode::FAILURE
                });
            }
            // Needs no configuration: it looks at another domain's DNS.
            CheckAction::Dns(d) => return Some(super::check_dns::run(d, &env)),
            CheckAction::S2s(c) => return Some(super::check_s2s::run(c)),
            _ => return None,
        },
        Command::Config(c) => match &c.action {
            ConfigAction::Init(i) => super::config_init::run(
                &i.dir,
                i.domain.as_deref(),
                i.environment.as_deref(),
                i.force,
            )
            .map_err(|e| e.to_string()),
            ConfigAction::Show(s) => {
                super::config_show::run(config_path, &env, s.key.as_deref(), s.domain.as_deref())
            }
            ConfigAction::Reference(_) => Ok(crate::config::reference::markdown()),
            _ => return None,
        },
        _ => return None,
    };
    Some(match outcome {
        Ok(text) => {
            print!("{text}");
            if !text.ends_with('\n') {
                println!();
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("vireo: {e}");
            ExitCode::FAILURE
        }
    })
}

/// The check's report and whether it passed (no errors).
pub fn run(config_path: Option<&Path>, env: crate::config::EnvFn<'_>) -> (String, bool) {
    let mut report = Config::check(config_path, env);
    let mut out = String::new();
    let postgres = report
        .config
        .as_ref()
        .filter(|c| c.storage_driver == "postgresql");
    if let Some(cfg) = postgres.filter(|_| report.errors().next().is_none()) {
        let (line, errors) = storage_check(cfg);
        out.push_str(&line);
        report.diagnostics.extend(errors);
    }
    for d in &report.diagnostics {
        out.push_str(&d.to_string());
        out.push('\n');
    }
    let errors = report.errors().count();
    let warnings = report.warnings().count();
    let what = match &report.source {
        crate::config::Source::Defaults => "built-in defaults".to_owned(),
        crate::config::Source::File(p) => p.display().to_string(),
        crate::config::Source::Tree(p) => format!("{} (tree)", p.display()),
    };
    let summary = match (errors, warnings) {
        (0, 0) => format!("configuration OK: {what}"),
        (0, w) => format!("configuration OK with {w} warning{}: {what}", plural(w)),
        (e, w) => format!(
            "configuration has {e} error{} and {w} warning{}: {what}",
            plural(e),
            plural(w)
        ),
    };
    out.push_str(&summary);
    out.push('\n');
    (out, errors == 0)
}

/// With PostgreSQL: whether the database can be used, tried for real
/// (reachable, login accepted, database present, schema not newer than
/// this build): a line saying what was found, and the errors.
fn storage_check(cfg: &Config) -> (String, Vec<Diagnostic>) {
    let origin = cfg.origin("storage.sql_host");
    let at = format!(
        "storage: PostgreSQL {} as {}",
        cfg.sql.shown(),
        cfg.sql.user
    );
    match PostgresBackend::inspect(&cfg.sql) {
        Err(text) => (
            String::new(),
            vec![Diagnostic::error(origin, format!("storage: {text}")).with_fix(
                "check the storage.sql_* keys (VIREO_DB_HOST, VIREO_DB_PORT, VIREO_DB_NAME, \
                 VIREO_DB_USER, VIREO_DB_PASSWORD, VIREO_DB_TLS, VIREO_DB_TLS_CA) and that \
                 PostgreSQL runs",
            )],
        ),
        Ok(Some(v)) if v > schema::CURRENT => (
            String::new(),
            vec![Diagnostic::error(
                origin,
                format!(
                    "storage: the database's schema is version {v}, newer than this Vireo supports ({})",
                    schema::CURRENT
                ),
            )
            .with_fix("run the Vireo that upgraded it, or restore the database from before")],
        ),
        Ok(None) => (
            format!(
                "{at}: reachable; no Vireo schema yet (version {} is created at the first start)\n",
                schema::CURRENT
            ),
            Vec::new(),
        ),
        Ok(Some(v)) if v < schema::CURRENT => (
            format!(
                "{at}: reachable; schema version {v}, upgraded to {} at the next start\n",
                schema::CURRENT
            ),
            Vec::new(),
        ),
        Ok(Some(v)) => (format!("{at}: reachable; schema version {v}\n"), Vec::new()),
    }
}

fn plural(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}
