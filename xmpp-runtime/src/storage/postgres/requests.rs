//! Each storage request as SQL: accounts, rosters, offline queues and
//! documents (the archive is in `archive.rs`).
//!
//! Every mutating request checks what it must (existence, limits) before it
//! writes, inside the batch's transaction, so `NotFound`, `Conflict` and
//! `Full` store nothing, as in the embedded stores.

use sqlx::postgres::PgRow;
use sqlx::{PgConnection, Row};
use xmpp_core::sasl::{ScramKeys, StoredCredentials};
use xmpp_core::storage::{
    is_service_owner, AccountData, KeyLimit, OfflinePage, RosterItem, StorageRequest,
    StorageResult, Subscription,
};

use super::archive;
use crate::storage::StoreSizes;

type Sql<T> = Result<T, sqlx::Error>;

/// Runs the requests of a batch, in order, on the batch's transaction; a
/// run of consecutive archive appends is one statement.
pub(super) async fn run_all(
    conn: &mut PgConnection,
    reqs: &[StorageRequest],
) -> Sql<Vec<StorageResult>> {
    let mut out = Vec::with_capacity(reqs.len());
    let mut i = 0;
    while i < reqs.len() {
        if matches!(reqs[i], StorageRequest::AppendArchive { .. }) {
            let run = reqs[i..]
                .iter()
                .take_while(|r| matches!(r, StorageRequest::AppendArchive { .. }))
                .count();
            out.extend(archive::append(conn, &reqs[i..i + run]).await?);
            i += run;
        } else {
            out.push(write(conn, &reqs[i]).await?);
            i += 1;
        }
    }
    Ok(out)
}

/// Answers a read-only request.
pub(super) async fn read(conn: &mut PgConnection, req: &StorageRequest) -> Sql<StorageResult> {
    match req {
        StorageRequest::LoadCredentials { account } => load_credentials(conn, account).await,
        StorageRequest::LoadAccount { account, documents } => {
            load_account(conn, account, documents).await
        }
        StorageRequest::LoadBlob { account, key } => {
            let value: Option<String> =
                sqlx::query_scalar("SELECT value FROM documents WHERE owner = $1 AND key = $2")
                    .bind(account)
                    .bind(key)
                    .fetch_optional(&mut *conn)
                    .await?;
            Ok(StorageResult::Blob(value))
        }
        StorageRequest::ListBlobs {
            account,
            prefix,
            after,
            max,
        } => list_blobs(conn, account, prefix, after.as_deref(), *max).await,
        StorageRequest::QueryArchive { account, query } => {
            archive::query(conn, account, query).await
        }
        StorageRequest::ArchiveMetadata { account } => archive::metadata(conn, account).await,
        other => Err(sqlx::Error::Protocol(format!(
            "internal: a write request among reads: {other:?}"
        ))),
    }
}

/// Applies one request inside the batch's transaction.
async fn write(conn: &mut PgConnection, req: &StorageRequest) -> Sql<StorageResult> {
    match req {
        StorageRequest::CreateAccount {
            account,
            credentials: c,
        } => {
            let done = sqlx::query(
                "INSERT INTO accounts (account, iterations, salt, sha1_stored_key, \
                 sha1_server_key, sha256_stored_key, sha256_server_key) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING",
            )
            .bind(account)
            .bind(iterations(c.iterations))
            .bind(&c.salt)
            .bind(&c.sha1.stored_key)
            .bind(&c.sha1.server_key)
            .bind(&c.sha256.stored_key)
            .bind(&c.sha256.server_key)
            .execute(&mut *conn)
            .await?;
            Ok(if done.rows_affected() == 1 {
                StorageResult::Done
            } else {
                StorageResult::Conflict
            })
        }
        StorageRequest::SetCredentials {
            account,
            credentials: c,
        } => {
            let done = sqlx::query(
                "UPDATE accounts SET iterations = $2, salt = $3, sha1_stored_key = $4, \
                 sha1_server_key = $5, sha256_stored_key = $6, sha256_server_key = $7 \
                 WHERE account = $1",
            )
            .bind(account)
            .bind(iterations(c.iterations))
            .bind(&c.salt)
            .bind(&c.sha1.stored_key)
            .bind(&c.sha1.server_key)
            .bind(&c.sha256.stored_key)
            .bind(&c.sha256.server_key)
            .execute(&mut *conn)
            .await?;
            Ok(done_or_not_found(done.rows_affected()))
        }
        StorageRequest::PutRosterItem {
            account,
            item,
            version,
        } => {
            if !set_roster_version(conn, account, *version).await? {
                return Ok(StorageResult::NotFound);
            }
            let s = item.subscription;
            sqlx::query(
                "INSERT INTO roster (account, contact, name, sub_to, sub_from, pending_out, \
                 pending_in, groups, in_roster) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
                 ON CONFLICT (account, contact) DO UPDATE SET name = EXCLUDED.name, \
                 sub_to = EXCLUDED.sub_to, sub_from = EXCLUDED.sub_from, \
                 pending_out = EXCLUDED.pending_out, pending_in = EXCLUDED.pending_in, \
                 groups = EXCLUDED.groups, in_roster = EXCLUDED.in_roster",
            )
            .bind(account)
            .bind(&item.jid)
            .bind(&item.name)
            .bind(s.to)
            .bind(s.from)
            .bind(s.pending_out)
            .bind(s.pending_in)
            .bind(&item.groups)
            .bind(item.in_roster)
            .execute(&mut *conn)
            .await?;
            Ok(StorageResult::Done)
        }
        StorageRequest::RemoveRosterItem {
            account,
            jid,
            version,
        } => {
            if !set_roster_version(conn, account, *version).await? {
                return Ok(StorageResult::NotFound);
            }
            sqlx::query("DELETE FROM roster WHERE account = $1 AND contact = $2")
                .bind(account)
                .bind(jid)
                .execute(&mut *conn)
                .await?;
            Ok(StorageResult::Done)
        }
        StorageRequest::PushOffline {
            account,
            stanza,
            limit,
        } => push_offline(conn, account, stanza, *limit).await,
        StorageRequest::TakeOffline { account, page } => take_offline(conn, account, *page).await,
        StorageRequest::DeleteAccount { account } => {
            // Roster and offline rows go with the account (ON DELETE
            // CASCADE); documents and the archive have no foreign key.
            let done = sqlx::query("DELETE FROM accounts WHERE account = $1")
                .bind(account)
                .execute(&mut *conn)
                .await?;
            if done.rows_affected() == 0 {
                return Ok(StorageResult::NotFound);
            }
            sqlx::query("DELETE FROM documents WHERE owner = $1")
                .bind(account)
                .execute(&mut *conn)
                .await?;
            archive::clear(conn, account).await?;
            Ok(StorageResult::Done)
        }
        StorageRequest::StoreBlob {
            account,
            key,
            value,
            limit,
        } => store_blob(conn, account, key, value.as_deref(), limit.as_ref()).await,
        StorageRequest::AppendArchive { .. } => {
            let mut one = archive::append(conn, std::slice::from_ref(req)).await?;
            Ok(one
                .pop()
                .unwrap_or(StorageResult::Failed("internal: no answer".into())))
        }
        StorageRequest::ReplaceArchived {
            account,
            id,
            stanza,
        } => archive::replace(conn, account, *id, stanza).await,
        StorageRequest::PurgeArchive {
            before,
            from,
            limit,
        } => archive::purge(conn, *before, from.as_deref(), *limit).await,
        StorageRequest::LoadCredentials { .. }
        | StorageRequest::LoadAccount { .. }
        | StorageRequest::LoadBlob { .. }
        | StorageRequest::ListBlobs { .. }
        | StorageRequest::QueryArchive { .. }
        | StorageRequest::ArchiveMetadata { .. } => read(conn, req).await,
    }
}

/// PBKDF2 iteration counts are small; a count beyond `i32` (never made by
/// this server) is stored as the largest.
fn iterations(n: u32) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

fn done_or_not_found(rows: u64) -> StorageResult {
    if rows == 0 {
        StorageResult::NotFound
    } else {
        StorageResult::Done
    }
}

/// Whether the account exists.
pub(super) async fn exists(conn: &mut PgConnection, account: &str) -> Sql<bool> {
    sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM accounts WHERE account = $1)")
        .bind(account)
        .fetch_one(&mut *conn)
        .await
}

/// Stores the roster version; `false` for an unknown account.
async fn set_roster_version(conn: &mut PgConnection, account: &str, version: u64) -> Sql<bool> {
    let done = sqlx::query("UPDATE accounts SET roster_version = $2 WHERE account = $1")
        .bind(account)
        .bind(i64::try_from(version).unwrap_or(i64::MAX))
        .execute(&mut *conn)
        .await?;
    Ok(done.rows_affected() == 1)
}

async fn load_credentials(conn: &mut PgConnection, account: &str) -> Sql<StorageResult> {
    let row = sqlx::query(
        "SELECT iterations, salt, sha1_stored_key, sha1_server_key, sha256_stored_key, \
         sha256_server_key FROM accounts WHERE account = $1",
    )
    .bind(account)
    .fetch_optional(&mut *conn)
    .await?;
    let Some(row) = row else {
        return Ok(StorageResult::Credentials(None));
    };
    let iterations: i32 = row.try_get(0)?;
    Ok(StorageResult::Credentials(Some(StoredCredentials {
        iterations: u32::try_from(iterations).unwrap_or(0),
        salt: row.try_get(1)?,
        sha1: ScramKeys {
            stored_key: row.try_get(2)?,
            server_key: row.try_get(3)?,
        },
        sha256: ScramKeys {
            stored_key: row.try_get(4)?,
            server_key: row.try_get(5)?,
        },
    })))
}

fn roster_item(row: &PgRow) -> Sql<RosterItem> {
    Ok(RosterItem {
        jid: row.try_get(0)?,
        name: row.try_get(1)?,
        subscription: Subscription {
            to: row.try_get(2)?,
            from: row.try_get(3)?,
            pending_out: row.try_get(4)?,
            pending_in: row.try_get(5)?,
        },
        groups: row.try_get(6)?,
        in_roster: row.try_get(7)?,
    })
}

async fn load_account(
    conn: &mut PgConnection,
    account: &str,
    documents: &[&'static str],
) -> Sql<StorageResult> {
    let version: Option<i64> =
        sqlx::query_scalar("SELECT roster_version FROM accounts WHERE account = $1")
            .bind(account)
            .fetch_optional(&mut *conn)
            .await?;
    let Some(version) = version else {
        return Ok(StorageResult::Account(None));
    };
    let rows = sqlx::query(
        "SELECT contact, name, sub_to, sub_from, pending_out, pending_in, groups, in_roster \
         FROM roster WHERE account = $1 ORDER BY contact",
    )
    .bind(account)
    .fetch_all(&mut *conn)
    .await?;
    let roster = rows.iter().map(roster_item).collect::<Sql<Vec<_>>>()?;
    let keys: Vec<&str> = documents.to_vec();
    let found: Vec<(String, String)> =
        sqlx::query_as("SELECT key, value FROM documents WHERE owner = $1 AND key = ANY($2)")
            .bind(account)
            .bind(&keys)
            .fetch_all(&mut *conn)
            .await?;
    // In the order the hub asked for them, under its own static keys.
    let loaded = documents
        .iter()
        .filter_map(|&key| {
            found
                .iter()
                .find(|(k, _)| k == key)
                .map(|(_, doc)| (key, doc.clone()))
        })
        .collect();
    Ok(StorageResult::Account(Some(AccountData {
        roster,
        roster_version: u64::try_from(version).unwrap_or(0),
        documents: loaded,
    })))
}

async fn push_offline(
    conn: &mut PgConnection,
    account: &str,
    stanza: &str,
    limit: Option<u64>,
) -> Sql<StorageResult> {
    // Counting stops at the limit: a full queue costs `limit` index reads.
    let cap = limit.map_or(0, |l| i64::try_from(l).unwrap_or(i64::MAX));
    let (exists, queued): (bool, i64) = sqlx::query_as(
        "SELECT EXISTS (SELECT 1 FROM accounts WHERE account = $1), \
         (SELECT count(*) FROM (SELECT 1 FROM offline WHERE account = $1 LIMIT $2) q)",
    )
    .bind(account)
    .bind(cap)
    .fetch_one(&mut *conn)
    .await?;
    if !exists {
        return Ok(StorageResult::NotFound);
    }
    if limit.is_some() && queued >= cap {
        return Ok(StorageResult::Full);
    }
    sqlx::query("INSERT INTO offline (account, stanza) VALUES ($1, $2)")
        .bind(account)
        .bind(stanza)
        .execute(&mut *conn)
        .await?;
    Ok(StorageResult::Done)
}

/// Takes the front page of the queue: the sizes decide how many (without
/// reading stanzas the page will not take), then those rows are deleted
/// and returned.
async fn take_offline(
    conn: &mut PgConnection,
    account: &str,
    page: OfflinePage,
) -> Sql<StorageResult> {
    let most = i64::try_from(page.max).unwrap_or(i64::MAX);
    let sizes: Vec<(i64, i32)> = sqlx::query_as(
        "SELECT seq, octet_length(stanza) FROM offline WHERE account = $1 ORDER BY seq LIMIT $2",
    )
    .bind(account)
    .bind(most)
    .fetch_all(&mut *conn)
    .await?;
    let n = page.count(
        sizes
            .iter()
            .map(|&(_, len)| usize::try_from(len).unwrap_or(usize::MAX)),
    );
    let Some(&(last, _)) = n.checked_sub(1).and_then(|i| sizes.get(i)) else {
        return Ok(StorageResult::Offline(Vec::new()));
    };
    let mut taken: Vec<(i64, String)> = sqlx::query_as(
        "DELETE FROM offline WHERE account = $1 AND seq <= $2 RETURNING seq, stanza",
    )
    .bind(account)
    .bind(last)
    .fetch_all(&mut *conn)
    .await?;
    taken.sort_unstable_by_key(|(seq, _)| *seq);
    Ok(StorageResult::Offline(
        taken.into_iter().map(|(_, stanza)| stanza).collect(),
    ))
}

/// `prefix` as a LIKE pattern matching every key that starts with it.
fn like_prefix(prefix: &str) -> String {
    let mut pattern = String::with_capacity(prefix.len() + 1);
    for c in prefix.chars() {
        if matches!(c, '\\' | '%' | '_') {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    pattern.push('%');
    pattern
}

async fn store_blob(
    conn: &mut PgConnection,
    account: &str,
    key: &str,
    value: Option<&str>,
    limit: Option<&KeyLimit>,
) -> Sql<StorageResult> {
    // A service domain's documents need no account.
    if !is_service_owner(account) && !exists(conn, account).await? {
        return Ok(StorageResult::NotFound);
    }
    let Some(value) = value else {
        sqlx::query("DELETE FROM documents WHERE owner = $1 AND key = $2")
            .bind(account)
            .bind(key)
            .execute(&mut *conn)
            .await?;
        return Ok(StorageResult::Done);
    };
    if let Some(limit) = limit {
        let cap = i64::try_from(limit.max).unwrap_or(i64::MAX);
        let (replaces, existing): (bool, i64) = sqlx::query_as(
            "SELECT EXISTS (SELECT 1 FROM documents WHERE owner = $1 AND key = $2), \
             (SELECT count(*) FROM (SELECT 1 FROM documents WHERE owner = $1 \
              AND key LIKE $3 LIMIT $4) q)",
        )
        .bind(account)
        .bind(key)
        .bind(like_prefix(&limit.prefix))
        .bind(cap)
        .fetch_one(&mut *conn)
        .await?;
        if limit.refuses(u64::try_from(existing).unwrap_or(0), replaces) {
            return Ok(StorageResult::Full);
        }
    }
    sqlx::query(
        "INSERT INTO documents (owner, key, value) VALUES ($1, $2, $3) \
         ON CONFLICT (owner, key) DO UPDATE SET value = EXCLUDED.value",
    )
    .bind(account)
    .bind(key)
    .bind(value)
    .execute(&mut *conn)
    .await?;
    Ok(StorageResult::Done)
}

async fn list_blobs(
    conn: &mut PgConnection,
    account: &str,
    prefix: &str,
    after: Option<&str>,
    max: usize,
) -> Sql<StorageResult> {
    // One more than the page shows whether more follow.
    let fetch = i64::try_from(max).unwrap_or(i64::MAX - 1).saturating_add(1);
    let mut items: Vec<(String, String)> = sqlx::query_as(
        "SELECT key, value FROM documents WHERE owner = $1 AND key LIKE $2 \
         AND ($3::text IS NULL OR key > $3) ORDER BY key LIMIT $4",
    )
    .bind(account)
    .bind(like_prefix(prefix))
    .bind(after)
    .bind(fetch)
    .fetch_all(&mut *conn)
    .await?;
    let more = items.len() > max;
    items.truncate(max);
    Ok(StorageResult::Documents { items, more })
}

/// Every account, in name order.
pub(super) async fn accounts(conn: &mut PgConnection) -> Sql<Vec<String>> {
    sqlx::query_scalar("SELECT account FROM accounts ORDER BY account")
        .fetch_all(&mut *conn)
        .await
}

/// Owners of documents or archives that are not accounts, in order.
pub(super) async fn service_owners(conn: &mut PgConnection) -> Sql<Vec<String>> {
    sqlx::query_scalar(
        "SELECT owner FROM (SELECT DISTINCT owner FROM documents \
         UNION SELECT DISTINCT owner FROM archive_totals) o \
         WHERE position('@' IN owner) = 0 ORDER BY owner",
    )
    .fetch_all(&mut *conn)
    .await
}

/// An account's offline queue, oldest first, left in place.
pub(super) async fn peek_offline(conn: &mut PgConnection, account: &str) -> Sql<Vec<String>> {
    sqlx::query_scalar("SELECT stanza FROM offline WHERE account = $1 ORDER BY seq")
        .bind(account)
        .fetch_all(&mut *conn)
        .await
}

/// Offline messages and archived messages over all accounts.
pub(super) async fn sizes(conn: &mut PgConnection) -> Sql<StoreSizes> {
    let (offline, archived): (i64, i64) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM offline), \
         (SELECT coalesce(sum(n), 0)::bigint FROM archive_totals WHERE with_bare = '')",
    )
    .fetch_one(&mut *conn)
    .await?;
    Ok(StoreSizes {
        offline: u64::try_from(offline).unwrap_or(0),
        archived: u64::try_from(archived).unwrap_or(0),
    })
}

#[cfg(test)]
mod tests {
    use super::like_prefix;

    #[test]
    fn like_patterns_escape_wildcards() {
        assert_eq!(like_prefix("pep/"), "pep/%");
        assert_eq!(like_prefix(""), "%");
        assert_eq!(like_prefix("a_b%c\\"), "a\\_b\\%c\\\\%");
    }
}
