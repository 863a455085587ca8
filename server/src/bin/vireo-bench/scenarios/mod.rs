//! The scenarios. Adding one: a subcommand struct in `cli.rs`, a module
//! here with `run(ctx, cmd, report)`, and one arm in each match below.

pub mod idle;
pub mod login;
pub mod mam;
pub mod messages;
pub mod muc;
pub mod pep;
pub mod probe;
pub mod roster_presence;

use crate::cli::ScenarioCmd;
use crate::report::Report;
use crate::session::Ctx;
use std::sync::Arc;

impl ScenarioCmd {
    /// The name in the JSON line.
    pub fn name(&self) -> &'static str {
        match self {
            ScenarioCmd::Login(_) => "login",
            ScenarioCmd::Idle(_) => "idle",
            ScenarioCmd::Messages(_) => "messages",
            ScenarioCmd::RosterPresence(_) => "roster-presence",
            ScenarioCmd::Mam(_) => "mam",
            ScenarioCmd::Pep(_) => "pep",
            ScenarioCmd::Muc(_) => "muc",
        }
    }

    /// How many accounts (`0..n`) the scenario uses, for `--register`.
    pub fn accounts(&self) -> usize {
        match self {
            ScenarioCmd::Login(c) => c.accounts,
            ScenarioCmd::Idle(c) => c.sessions,
            ScenarioCmd::Messages(c) => 2 * c.pairs + c.idle,
            ScenarioCmd::RosterPresence(c) => c.users,
            ScenarioCmd::Mam(_) => 1,
            ScenarioCmd::Pep(c) => c.contacts + if c.probe { 3 } else { 1 },
            ScenarioCmd::Muc(c) => c.rooms * c.occupants,
        }
    }
}

/// Run one scenario, adding its parameters and results to `report` as they
/// become known (so a failed run still reports what it had).
pub async fn run(ctx: Arc<Ctx>, cmd: &ScenarioCmd, report: &mut Report) -> Result<(), String> {
    match cmd {
        ScenarioCmd::Login(c) => login::run(&ctx, c, report).await,
        ScenarioCmd::Idle(c) => idle::run(&ctx, c, report).await,
        ScenarioCmd::Messages(c) => messages::run(&ctx, c, report).await,
        ScenarioCmd::RosterPresence(c) => roster_presence::run(&ctx, c, report).await,
        ScenarioCmd::Mam(c) => mam::run(&ctx, c, report).await,
        ScenarioCmd::Pep(c) => pep::run(&ctx, c, report).await,
        ScenarioCmd::Muc(c) => muc::run(&ctx, c, report).await,
    }
}

/// Seconds as a float.
pub fn secs(d: std::time::Duration) -> f64 {
    d.as_secs_f64()
}
