//! Live reload. `vireo reload` asks the running server, through the admin
//! socket, to re-read its configuration; SIGHUP on `vireo run` does the same.
//! Both end in [`Reloader::reload`]: the configuration is loaded exactly as
//! at start, checked completely (certificate and key included), and only
//! then applied: the certificate, limits, stream settings and the log level
//! change for new connections without dropping sessions; what needs a
//! restart (listeners, domains, data path and store, threads) is reported.
//! A configuration that does not load changes nothing.

use crate::cli::ReloadCmd;
use crate::commands::run::{certificate, runtime_config};
use crate::config::{Config, ConfigError, Origin};
use std::fmt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use tracing_subscriber::{reload, EnvFilter, Registry};
use xmpp_runtime::reload::{Change, ReloadReport};
use xmpp_runtime::tls::TlsError;
use xmpp_runtime::ServerHandle;

/// The log filter of `vireo run`, replaceable while running.
pub struct LogControl {
    handle: reload::Handle<EnvFilter, Registry>,
    /// `RUST_LOG` chose the filter, which then wins over the configuration.
    from_env: bool,
}

impl LogControl {
    /// Wrap the handle of the installed filter layer; `from_env` tells that
    /// the filter came from `RUST_LOG`.
    pub fn new(handle: reload::Handle<EnvFilter, Registry>, from_env: bool) -> Self {
        LogControl { handle, from_env }
    }
}

impl fmt::Debug for LogControl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LogControl")
            .field("from_env", &self.from_env)
            .finish_non_exhaustive()
    }
}

/// Why a reload was refused; the server keeps its running configuration.
#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    /// The configuration does not load (the message names file and line).
    #[error("{0}")]
    Config(#[from] ConfigError),
    /// The certificate or key cannot be used (the message names the file).
    #[error("certificate: {0}")]
    Certificate(#[from] TlsError),
    /// The log level is not a valid filter.
    #[error("{origin}: log_level: invalid filter {level:?}: {message}")]
    LogLevel {
        /// Where it was set.
        origin: Origin,
        /// The configured filter.
        level: String,
        /// The parser's reason.
        message: String,
    },
    /// The log filter could not be replaced (the logger is gone).
    #[error("cannot apply the log level: {0}")]
    LogApply(String),
}

/// What a reload did, as shown to the operator.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Summary {
    /// The runtime's report plus the log level and the data path.
    pub report: ReloadReport,
    /// Remarks that are neither applied nor fixed by a restart.
    pub notes: Vec<String>,
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.report)?;
        for n in &self.notes {
            write!(f, "; note: {n}")?;
        }
        Ok(())
    }
}

/// The configuration, loaded exactly as `vireo run` loads it at start.
fn load(path: Option<&Path>) -> Result<Config, ConfigError> {
    let env = |k: &str| std::env::var(k).ok();
    Config::load(path, &env)
}

/// What the last successful load set that only this module compares.
#[derive(Debug)]
struct Current {
    log_level: String,
}

/// Reloads a running server's configuration (SIGHUP and the admin socket).
pub struct Reloader {
    path: Option<PathBuf>,
    server: ServerHandle,
    log: Option<LogControl>,
    /// Fixed at start.
    data_path: PathBuf,
    /// Fixed at start.
    storage_driver: String,
    /// Fixed at start (the pool is made once).
    sql: xmpp_runtime::storage::PgOptions,
    /// Also serializes reloads (SIGHUP and `vireo reload` at once).
    current: Mutex<Current>,
}

impl fmt::Debug for Reloader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Reloader")
            .field("path", &self.path)
            .field("data_path", &self.data_path)
            .finish_non_exhaustive()
    }
}

impl Reloader {
    /// `path` is the configuration path `vireo run` was given (if any);
    /// `started` the configuration it started with.
    pub fn new(
        path: Option<PathBuf>,
        server: ServerHandle,
        log: Option<LogControl>,
        started: &Config,
    ) -> Self {
        Reloader {
            // Absolute, so that messages name the file unambiguously (the
            // working directory does not change while running).
            path: path.map(|p| std::path::absolute(&p).unwrap_or(p)),
            server,
            log,
            data_path: started.data_path.clone(),
            storage_driver: started.storage_driver.clone(),
            sql: started.sql.clone(),
            current: Mutex::new(Current {
                log_level: started.log_level.clone(),
            }),
        }
    }

    /// Re-read the configuration and apply it. On error nothing changed.
    pub fn reload(&self) -> Result<Summary, ReloadError> {
        let mut current = self.current.lock().unwrap_or_else(|e| e.into_inner());
        // Everything that can fail comes first, side effects last.
        let cfg = load(self.path.as_deref())?;
        let mut notes: Vec<String> = cfg
            .warnings
            .iter()
            .map(|w| w.to_string().replace('\n', " "))
            .collect();
        let level_changed = cfg.log_level != current.log_level;
        let filter = match &self.log {
            Some(log) if level_changed && !log.from_env => Some(
                EnvFilter::try_new(&cfg.log_level).map_err(|e| ReloadError::LogLevel {
                    origin: cfg.origin("log_level"),
                    level: cfg.log_level.clone(),
                    message: e.to_string(),
                })?,
            ),
            Some(log) if level_changed && log.from_env => {
                notes.push(format!(
                    "log_level {:?} not applied: RUST_LOG is set and takes precedence",
                    cfg.log_level
                ));
                None
            }
            _ => None,
        };
        // A changed data path only takes effect after a restart: a generated
        // certificate is still looked for (and made) in the running one.
        let tls = if cfg.data_path == self.data_path {
            certificate(&cfg)?
        } else {
            let mut running = cfg.clone();
            running.data_path = self.data_path.clone();
            certificate(&running)?
        };
        if let (Some(log), Some(filter)) = (&self.log, filter) {
            log.handle
                .reload(filter)
                .map_err(|e| ReloadError::LogApply(e.to_string()))?;
        }

        let mut report = self
            .server
            .reload(&runtime_config(&cfg, Some(Arc::new(tls))));
        if level_changed {
            if self.log.as_ref().is_some_and(|l| !l.from_env) {
                report
                    .applied
                    .push(Change::new("log_level", &current.log_level, &cfg.log_level));
            }
            current.log_level = cfg.log_level.clone();
        }
        if cfg.data_path != self.data_path {
            // The store and the admin socket live there.
            report.needs_restart.retain(|c| c.setting != "admin_socket");
            report.needs_restart.push(Change::new(
                "data_path",
                self.data_path.display(),
                cfg.data_path.display(),
            ));
        }
        if cfg.storage_driver != self.storage_driver {
            report.needs_restart.push(Change::new(
                "storage.driver",
                &self.storage_driver,
                &cfg.storage_driver,
            ));
        }
        if cfg.storage_driver == "postgresql" && cfg.sql != self.sql {
            // Only what can be shown: never the password.
            let shown = |o: &xmpp_runtime::storage::PgOptions| {
                format!(
                    "{} as {} (tls {}, pool {}, retry {} s)",
                    o.shown(),
                    o.user,
                    o.tls,
                    o.pool_size,
                    o.retry_for.as_secs()
                )
            };
            report.needs_restart.push(Change::new(
                "storage.sql_*",
                shown(&self.sql),
                shown(&cfg.sql),
            ));
        }
        Ok(Summary { report, notes })
    }

    /// Reload for SIGHUP: the outcome goes to the log.
    pub fn reload_and_log(&self) {
        match self.reload() {
            Ok(summary) if summary.report.needs_restart.is_empty() => {
                tracing::info!("{summary}")
            }
            Ok(summary) => tracing::warn!("{summary}"),
            Err(e) => {
                tracing::error!("reload failed, still running with the previous configuration: {e}")
            }
        }
    }
}

/// Why `vireo reload` did not get a report.
#[derive(Debug, thiserror::Error)]
pub enum AskError {
    /// Nothing listens on the admin socket.
    #[error("no running server answers on {} (start it with `vireo run`)", .0.display())]
    NoServer(PathBuf),
    /// The server refused the new configuration (its message, possibly
    /// several lines, names the file and line).
    #[error("reload failed, the server keeps running with its previous configuration:\n{0}")]
    Refused(String),
    /// The admin socket failed.
    #[error("admin socket {}: {source}", path.display())]
    Socket {
        /// The socket.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
}

/// Ask the server at `socket` to reload.
fn ask(socket: &Path) -> Result<String, AskError> {
    match xmpp_runtime::admin::reload(socket) {
        Ok(Some(Ok(report))) => Ok(report),
        Ok(Some(Err(message))) => Err(AskError::Refused(message)),
        Ok(None) => Err(AskError::NoServer(socket.to_owned())),
        Err(source) => Err(AskError::Socket {
            path: socket.to_owned(),
            source,
        }),
    }
}

/// `vireo reload`: the server's report, or why it refused.
pub fn run(cfg: &Config, cmd: &ReloadCmd) -> Result<String, String> {
    let socket = cmd.socket.clone().unwrap_or_else(|| cfg.admin_socket());
    ask(&socket).map_err(|e| e.to_string())
}

/// `vireo reload` when this command could not load the configuration
/// itself: the running server may still be reachable (through `--socket`
/// or `VIREO_DATA_PATH`), and its answer is what counts. Without a server
/// the local error is reported.
pub fn without_config(cmd: &ReloadCmd, error: &ConfigError) -> ExitCode {
    let socket = cmd.socket.clone().or_else(|| {
        std::env::var_os("VIREO_DATA_PATH")
            .filter(|v| !v.is_empty())
            .map(|d| PathBuf::from(d).join("admin.sock"))
    });
    let Some(socket) = socket else {
        eprintln!("vireo: configuration error: {error}");
        return ExitCode::from(2);
    };
    match ask(&socket) {
        Ok(report) => {
            eprintln!(
                "vireo: note: this command cannot read the configuration itself ({error}); \
                 the server at {} reloaded its own",
                socket.display()
            );
            println!("{report}");
            ExitCode::SUCCESS
        }
        Err(e @ (AskError::NoServer(_) | AskError::Socket { .. })) => {
            eprintln!("vireo: configuration error: {error}");
            eprintln!("vireo: {e}");
            ExitCode::from(2)
        }
        Err(e) => {
            eprintln!("vireo: {e}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_lists_notes_after_the_report() {
        let summary = Summary {
            report: ReloadReport {
                applied: vec![Change::new("log_level", "info", "debug")],
                needs_restart: Vec::new(),
            },
            notes: vec!["something to know".to_owned()],
        };
        assert_eq!(
            summary.to_string(),
            "reloaded: log_level (info -> debug); needs restart: nothing; \
             note: something to know"
        );
    }

    #[test]
    fn refusal_keeps_the_servers_lines() {
        let e = AskError::Refused("vireo.toml:3: bad\n  | detail".to_owned());
        assert_eq!(
            e.to_string(),
            "reload failed, the server keeps running with its previous configuration:\n\
             vireo.toml:3: bad\n  | detail"
        );
    }
}
