//! The PostgreSQL backend (issue 15): the same storage contract as the
//! embedded stores, for deployments that run their services on PostgreSQL
//! and for several nodes sharing one database (issue 17).
//!
//! The schema is in `migrations/` (versioned, applied at open by
//! [`schema::upgrade`]; a database whose schema is newer than this build is
//! refused). Tables are plain and readable: `accounts` (SCRAM keys, never a
//! password, and the roster version), `roster`, `offline`, `documents`
//! (owner, key: vCards, private XML, PEP items, rooms), `archive` and
//! `archive_totals` (XEP-0313).
//!
//! The driver is sqlx with its smol runtime: a query's socket I/O runs in
//! the future that sends it, so the storage thread that calls
//! [`Backend::execute_batch`] drives its own queries with
//! `smol::block_on` (the backend is synchronous like the embedded ones) and
//! no second executor does the work; only the pool's housekeeping tasks
//! (closing idle connections) run on smol's global executor. The pool
//! bounds the connections: a caller that finds none free waits for one
//! (back-pressure), up to the acquire timeout.
//!
//! Group commit: a batch is ONE transaction, committed (PostgreSQL's
//! `synchronous_commit`: the WAL is flushed) before any answer is returned,
//! so "answered" still means "durable". A run of archive appends in a batch
//! is one statement. Reads alone need no transaction. A request that fails
//! in SQL aborts PostgreSQL's transaction; the batch is then run again one
//! request per transaction, so only the failing request answers `Failed`
//! (the first attempt committed nothing).
//!
//! Faults: when PostgreSQL is unreachable (restarted, network down, pool
//! exhausted), a batch that failed *before* its commit was sent is retried
//! with back-off for up to [`PgOptions::retry_for`]: the partition's
//! requests wait rather than fail while the database restarts. A failure
//! during the commit itself is ambiguous (committed or not) and answers
//! `Failed`, never a guess; nothing was acknowledged for it.

mod archive;
mod requests;
pub mod schema;

use std::time::{Duration, Instant};

use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions, PgSslMode};
use sqlx::{Connection, PgConnection};
use xmpp_core::storage::{StorageRequest, StorageResult};

use super::{check_account, Backend, StorageError, StoreSizes};

/// How to reach the database, and the pool's bounds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PgOptions {
    /// Host name or address (or a Unix socket directory, starting with '/').
    pub host: String,
    /// TCP port.
    pub port: u16,
    /// Database name.
    pub database: String,
    /// User name.
    pub user: String,
    /// Password, if the server asks for one.
    pub password: Option<String>,
    /// TLS: "disable", "prefer" (libpq's default), "require",
    /// "verify-ca" or "verify-full".
    pub tls: String,
    /// PEM file of the certificate authorities that may sign the server's
    /// certificate (verify-ca, verify-full); `None`: the system's roots.
    pub tls_ca: Option<std::path::PathBuf>,
    /// Most connections open at once.
    pub pool_size: u32,
    /// How long a batch waits for a free connection before the attempt
    /// counts as failed (and is retried within `retry_for`).
    pub acquire_timeout: Duration,
    /// How long a batch is retried while the database cannot be reached,
    /// before its requests answer `Failed`.
    pub retry_for: Duration,
}

impl Default for PgOptions {
    fn default() -> Self {
        PgOptions {
            host: "localhost".into(),
            port: 5432,
            database: "vireo".into(),
            user: "vireo".into(),
            password: None,
            tls: "prefer".into(),
            tls_ca: None,
            pool_size: 16,
            acquire_timeout: Duration::from_secs(5),
            retry_for: Duration::from_secs(30),
        }
    }
}

impl PgOptions {
    /// `host:port/database`, for messages (never the password).
    pub fn shown(&self) -> String {
        format!("{}:{}/{}", self.host, self.port, self.database)
    }

    fn connect_options(&self) -> Result<PgConnectOptions, StorageError> {
        let mode = match self.tls.as_str() {
            "disable" => PgSslMode::Disable,
            "prefer" => PgSslMode::Prefer,
            "require" => PgSslMode::Require,
            "verify-ca" => PgSslMode::VerifyCa,
            "verify-full" => PgSslMode::VerifyFull,
            other => {
                return Err(StorageError::Unavailable(format!(
                    "unknown TLS mode {other:?} (disable, prefer, require, verify-ca, verify-full)"
                )))
            }
        };
        let mut options = PgConnectOptions::new_without_pgpass()
            .host(&self.host)
            .port(self.port)
            .database(&self.database)
            .username(&self.user)
            .ssl_mode(mode)
            .application_name("vireo");
        if let Some(password) = &self.password {
            options = options.password(password);
        }
        if let Some(ca) = &self.tls_ca {
            // Read here, so that a missing file is named at once rather
            // than as a failed handshake.
            if let Err(e) = std::fs::metadata(ca) {
                return Err(StorageError::Unavailable(format!(
                    "cannot read the PostgreSQL CA file {} (storage.sql_tls_ca): {e}",
                    ca.display()
                )));
            }
            options = options.ssl_root_cert(ca);
        }
        Ok(options)
    }
}

/// What went wrong reaching or using the database, in words an operator
/// can act on (`vireo check config`, startup errors).
pub fn describe(e: &sqlx::Error, options: &PgOptions) -> String {
    let at = options.shown();
    if let Some(db) = e.as_database_error() {
        let code = db.code().unwrap_or_default();
        return match code.as_ref() {
            "28P01" | "28000" => format!(
                "PostgreSQL at {at} refused the login of user {:?}: {}",
                options.user,
                db.message()
            ),
            "3D000" => format!(
                "database {:?} does not exist on PostgreSQL at {}:{} (create it: createdb -O {} {})",
                options.database, options.host, options.port, options.user, options.database
            ),
            "42501" => format!(
                "user {:?} lacks a privilege on {at}: {} (the user must own the database or be granted CREATE on its schema)",
                options.user,
                db.message()
            ),
            _ => format!("PostgreSQL at {at}: {} (SQLSTATE {code})", db.message()),
        };
    }
    match e {
        sqlx::Error::Io(io) if refused_certificate(io) => {
            let trusted = match &options.tls_ca {
                Some(ca) => format!("the authorities in {} (storage.sql_tls_ca)", ca.display()),
                None => {
                    "the system's trusted roots (set storage.sql_tls_ca for a private authority)"
                        .to_owned()
                }
            };
            let name = if options.tls == "verify-full" {
                format!(", issued for {:?}", options.host)
            } else {
                String::new()
            };
            format!(
                "TLS to PostgreSQL at {at} failed: its certificate was refused ({io}); with sql_tls = {:?} it must come from {trusted}{name}",
                options.tls
            )
        }
        sqlx::Error::Io(io) => format!("cannot reach PostgreSQL at {at}: {io}"),
        sqlx::Error::PoolTimedOut => {
            format!("cannot reach PostgreSQL at {at}: no connection within the acquire timeout")
        }
        sqlx::Error::Tls(tls) => format!("TLS to PostgreSQL at {at} failed: {tls}"),
        other => format!("PostgreSQL at {at}: {other}"),
    }
}

/// Whether an I/O error is rustls refusing the server's certificate.
fn refused_certificate(io: &std::io::Error) -> bool {
    io.get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
        .is_some_and(|e| {
            matches!(
                e,
                rustls::Error::InvalidCertificate(_) | rustls::Error::NoCertificatesPresented
            )
        })
}

/// Whether an error means the database could not be reached (so a batch
/// that failed before its commit can be retried), not that a statement was
/// wrong.
fn is_unreachable(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Io(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed
        | sqlx::Error::Tls(_)
        | sqlx::Error::Protocol(_) => true,
        sqlx::Error::Database(db) => db.code().is_some_and(|c| {
            // Class 08: connection exception; 57P01-57P03: the server is
            // shutting down or starting up.
            c.starts_with("08") || matches!(c.as_ref(), "57P01" | "57P02" | "57P03")
        }),
        _ => false,
    }
}

/// A [`Backend`] on a PostgreSQL database.
pub struct PostgresBackend {
    pool: PgPool,
    options: PgOptions,
}

impl std::fmt::Debug for PostgresBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresBackend")
            .field("at", &self.options.shown())
            .finish_non_exhaustive()
    }
}

/// Why a batch attempt failed.
enum Attempt {
    /// The database could not be reached before the commit was sent:
    /// nothing of the batch happened, so it may run again.
    Unreachable(sqlx::Error),
    /// A statement failed: the transaction was rolled back, nothing of the
    /// batch happened; running the requests one by one isolates the bad one.
    Statement(sqlx::Error),
    /// The commit failed: whether it happened is unknown.
    Commit(sqlx::Error),
}

impl PostgresBackend {
    /// Connects (one connection, to report what is wrong at once), brings
    /// the schema up to date and returns the backend with its pool.
    pub fn open(options: PgOptions) -> Result<Self, StorageError> {
        let connect = options.connect_options()?;
        let pool = smol::block_on(async {
            let mut conn = PgConnection::connect_with(&connect).await?;
            schema::upgrade(&mut conn).await?;
            conn.close().await.ok();
            Ok::<_, StorageError>(
                PgPoolOptions::new()
                    .max_connections(options.pool_size.max(1))
                    .min_connections(0)
                    .acquire_timeout(options.acquire_timeout)
                    .idle_timeout(Some(Duration::from_secs(300)))
                    // A broken connection shows itself at its first query,
                    // and the batch is then retried: a ping before every
                    // batch would cost a round trip each.
                    .test_before_acquire(false)
                    .connect_lazy_with(connect),
            )
        })
        .map_err(|e| match e {
            StorageError::Sql(e) => StorageError::Unavailable(describe(&e, &options)),
            other => other,
        })?;
        tracing::info!(at = %options.shown(), pool = options.pool_size, "PostgreSQL store opened");
        Ok(PostgresBackend { pool, options })
    }

    /// What the database's schema version is, without changing anything:
    /// for `vireo check config`. `Ok(None)` for an empty database.
    pub fn inspect(options: &PgOptions) -> Result<Option<i32>, String> {
        let connect = options
            .connect_options()
            .map_err(|e| format!("storage: {e}"))?;
        smol::block_on(async {
            let mut conn = PgConnection::connect_with(&connect)
                .await
                .map_err(|e| describe(&e, options))?;
            let version = schema::version(&mut conn)
                .await
                .map_err(|e| describe(&e, options))?;
            conn.close().await.ok();
            Ok(version)
        })
    }

    /// Where the database is (for messages).
    pub fn options(&self) -> &PgOptions {
        &self.options
    }

    /// One attempt at a batch: reads alone on a connection, anything else
    /// in one transaction.
    fn attempt(&self, reqs: &[StorageRequest]) -> Result<Vec<StorageResult>, Attempt> {
        smol::block_on(async {
            let mut conn = self.pool.acquire().await.map_err(Attempt::Unreachable)?;
            if reqs.iter().all(StorageRequest::is_read) {
                let mut out = Vec::with_capacity(reqs.len());
                for req in reqs {
                    out.push(requests::read(&mut conn, req).await.map_err(classify)?);
                }
                return Ok(out);
            }
            let mut tx = conn.begin().await.map_err(Attempt::Unreachable)?;
            let out = requests::run_all(&mut tx, reqs).await.map_err(classify)?;
            tx.commit().await.map_err(Attempt::Commit)?;
            Ok(out)
        })
    }

    /// Runs a batch, retrying while the database is unreachable.
    fn run(&self, reqs: &[StorageRequest]) -> Result<Vec<StorageResult>, Attempt> {
        let deadline = Instant::now() + self.options.retry_for;
        let mut pause = Duration::from_millis(50);
        let mut warned = false;
        loop {
            match self.attempt(reqs) {
                Err(Attempt::Unreachable(e)) if Instant::now() < deadline => {
                    if !warned {
                        tracing::warn!(
                            error = %describe(&e, &self.options),
                            requests = reqs.len(),
                            "PostgreSQL unreachable: the requests wait and are retried"
                        );
                        warned = true;
                    }
                    std::thread::sleep(pause);
                    pause = (pause * 2).min(Duration::from_secs(1));
                }
                other => {
                    if warned && other.is_ok() {
                        tracing::info!(at = %self.options.shown(), "PostgreSQL reachable again");
                    }
                    return other;
                }
            }
        }
    }

    fn failed(&self, e: &sqlx::Error) -> StorageResult {
        let text = describe(e, &self.options);
        tracing::error!(error = %text, "storage request failed");
        StorageResult::Failed(text)
    }
}

/// A statement's error, as an attempt's outcome.
fn classify(e: sqlx::Error) -> Attempt {
    if is_unreachable(&e) {
        Attempt::Unreachable(e)
    } else {
        Attempt::Statement(e)
    }
}

impl Backend for PostgresBackend {
    fn execute(&self, req: StorageRequest) -> StorageResult {
        self.execute_batch(vec![req]).pop().unwrap_or_else(|| {
            StorageResult::Failed("internal: a batch of one gave no answer".into())
        })
    }

    fn execute_batch(&self, reqs: Vec<StorageRequest>) -> Vec<StorageResult> {
        // Names that break no key here still break the embedded stores'
        // keys; refusing them alike keeps the backends interchangeable.
        let invalid: Vec<Option<StorageError>> = reqs
            .iter()
            .map(|r| r.account().and_then(|a| check_account(a).err()))
            .collect();
        if invalid.iter().any(Option::is_some) {
            return reqs
                .into_iter()
                .zip(invalid)
                .map(|(req, bad)| match bad {
                    Some(e) => StorageResult::Failed(e.to_string()),
                    None => self.execute(req),
                })
                .collect();
        }
        match self.run(&reqs) {
            Ok(results) => results,
            Err(Attempt::Statement(e)) if reqs.len() > 1 => {
                tracing::debug!(error = %e, "a request failed: running its batch one by one");
                reqs.iter()
                    .map(|req| match self.run(std::slice::from_ref(req)) {
                        Ok(mut one) => one
                            .pop()
                            .unwrap_or_else(|| StorageResult::Failed("internal: no answer".into())),
                        Err(Attempt::Statement(e) | Attempt::Unreachable(e)) => self.failed(&e),
                        Err(Attempt::Commit(e)) => self.failed(&e),
                    })
                    .collect()
            }
            Err(Attempt::Statement(e) | Attempt::Unreachable(e) | Attempt::Commit(e)) => {
                let answer = self.failed(&e);
                vec![answer; reqs.len()]
            }
        }
    }

    fn flush(&self) -> Result<(), StorageError> {
        // Every answered write was committed; nothing is buffered here.
        Ok(())
    }

    /// Closes the pool's connections (the server sees clean disconnects).
    fn close(&self) {
        smol::block_on(self.pool.close());
    }

    fn accounts(&self) -> Result<Vec<String>, StorageError> {
        smol::block_on(async {
            let mut conn = self.pool.acquire().await?;
            requests::accounts(&mut conn).await
        })
        .map_err(|e| StorageError::Unavailable(describe(&e, &self.options)))
    }

    fn sizes(&self) -> Option<StoreSizes> {
        smol::block_on(async {
            let mut conn = self.pool.acquire().await?;
            requests::sizes(&mut conn).await
        })
        .ok()
    }

    fn service_owners(&self) -> Result<Vec<String>, StorageError> {
        smol::block_on(async {
            let mut conn = self.pool.acquire().await?;
            requests::service_owners(&mut conn).await
        })
        .map_err(|e| StorageError::Unavailable(describe(&e, &self.options)))
    }

    fn peek_offline(&self, account: &str) -> Result<Vec<String>, StorageError> {
        smol::block_on(async {
            let mut conn = self.pool.acquire().await?;
            requests::peek_offline(&mut conn, account).await
        })
        .map_err(|e| StorageError::Unavailable(describe(&e, &self.options)))
    }

    fn ready(&self) -> Result<(), StorageError> {
        smol::block_on(async {
            let mut conn = self.pool.acquire().await?;
            sqlx::query("SELECT 1").execute(&mut *conn).await?;
            Ok::<_, sqlx::Error>(())
        })
        .map_err(|e| StorageError::Unavailable(describe(&e, &self.options)))
    }
}

#[cfg(test)]
pub(crate) mod cluster;
#[cfg(test)]
mod tests;
