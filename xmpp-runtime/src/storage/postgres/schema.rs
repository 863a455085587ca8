//! Schema migrations: the SQL files in `migrations/`, numbered, applied in
//! order at open (and by `vireo storage upgrade`), each in the transaction
//! that records it in `vireo_schema`.
//!
//! Several servers may start against one database at once (issue 17), so
//! the upgrade holds a transaction-scoped advisory lock: the first applies,
//! the others then find the schema current. A database whose schema is
//! newer than this build knows is refused ([`StorageError::NewerSchema`]):
//! an older server would misread or damage what a newer one wrote.

use sqlx::{Connection, PgConnection, Row};

use crate::storage::StorageError;

/// Every migration: version, name, SQL.
const MIGRATIONS: &[(i32, &str, &str)] =
    &[(1, "initial", include_str!("migrations/0001_initial.sql"))];

/// The schema version this build writes.
pub const CURRENT: i32 = MIGRATIONS[MIGRATIONS.len() - 1].0;

/// The advisory lock key of upgrades ("vireo" in ASCII).
const LOCK: i64 = 0x0076_6972_656f;

/// The schema version of the database; `None` when no Vireo schema is
/// there yet.
pub async fn version(conn: &mut PgConnection) -> Result<Option<i32>, sqlx::Error> {
    let exists: bool = sqlx::query_scalar("SELECT to_regclass('vireo_schema') IS NOT NULL")
        .fetch_one(&mut *conn)
        .await?;
    if !exists {
        return Ok(None);
    }
    sqlx::query_scalar("SELECT max(version) FROM vireo_schema")
        .fetch_one(&mut *conn)
        .await
}

/// What [`upgrade`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upgraded {
    /// The version found (`None`: an empty database).
    pub from: Option<i32>,
    /// The version now.
    pub to: i32,
}

/// Applies the migrations the database lacks.
pub async fn upgrade(conn: &mut PgConnection) -> Result<Upgraded, StorageError> {
    let mut tx = conn.begin().await?;
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(LOCK)
        .execute(&mut *tx)
        .await?;
    // Created once (IF NOT EXISTS would log a notice at every start).
    let exists: bool = sqlx::query_scalar("SELECT to_regclass('vireo_schema') IS NOT NULL")
        .fetch_one(&mut *tx)
        .await?;
    if !exists {
        sqlx::raw_sql(
            "CREATE TABLE vireo_schema (
                 version    INTEGER PRIMARY KEY,
                 name       TEXT NOT NULL,
                 applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
             )",
        )
        .execute(&mut *tx)
        .await?;
    }
    let found: Option<i32> = sqlx::query("SELECT max(version) AS v FROM vireo_schema")
        .fetch_one(&mut *tx)
        .await?
        .try_get("v")?;
    if let Some(found) = found.filter(|&v| v > CURRENT) {
        return Err(StorageError::NewerSchema {
            found,
            supported: CURRENT,
        });
    }
    for &(number, name, sql) in MIGRATIONS {
        if found.is_some_and(|v| v >= number) {
            continue;
        }
        sqlx::raw_sql(sql).execute(&mut *tx).await?;
        sqlx::query("INSERT INTO vireo_schema (version, name) VALUES ($1, $2)")
            .bind(number)
            .bind(name)
            .execute(&mut *tx)
            .await?;
        tracing::info!(
            version = number,
            name,
            "PostgreSQL schema migration applied"
        );
    }
    tx.commit().await?;
    Ok(Upgraded {
        from: found,
        to: CURRENT,
    })
}
