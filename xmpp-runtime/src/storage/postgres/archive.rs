//! Message archives in PostgreSQL (XEP-0313): table `archive` keyed by
//! (owner, id), an index on (owner, with_bare, id) for `with` queries, and
//! `archive_totals` for `<count/>` (with_bare '' is the whole archive).
//!
//! Appends are batched: a run of `AppendArchive` requests in a group commit
//! is one statement that inserts the messages and adds to their totals, so
//! archiving a burst costs one round trip, not two per message.
//!
//! Queries use the algorithm the embedded stores share
//! ([`xmpp_core::archive::run_query`]), which is synchronous: its scans
//! read chunk by chunk, each read blocking this storage thread
//! (`smol::block_on` inside the batch's own `block_on`, which async-io
//! allows) — the thread was waiting for the database anyway.

use std::cell::RefCell;
use std::collections::HashMap;

use sqlx::{PgConnection, Row};
use xmpp_core::archive::{
    self, bare_of, ArchiveId, ArchiveView, ArchivedMessage, QueryError, Scan,
};
use xmpp_core::storage::{is_service_owner, StorageRequest, StorageResult};

use super::requests::exists;

type Sql<T> = Result<T, sqlx::Error>;

/// Rows a scan reads at first; later reads take more (a page is usually
/// its size plus one).
const FIRST_CHUNK: i64 = 64;
/// Most rows one read of a scan takes.
const MAX_CHUNK: i64 = 1024;

fn id_of(raw: &[u8]) -> Sql<ArchiveId> {
    let bytes: [u8; 16] = raw
        .try_into()
        .map_err(|_| sqlx::Error::Decode("an archive id is not 16 bytes".into()))?;
    Ok(ArchiveId::from_bytes(bytes))
}

/// Appends messages: `Done` for each stored, `Conflict` for an id already
/// archived (or twice in the run), `NotFound` for an unknown account.
pub(super) async fn append(
    conn: &mut PgConnection,
    run: &[StorageRequest],
) -> Sql<Vec<StorageResult>> {
    let (mut owners, mut ids, mut withs, mut bares, mut stanzas) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for req in run {
        if let StorageRequest::AppendArchive { account, message } = req {
            owners.push(account.as_str());
            ids.push(message.id.as_bytes().to_vec());
            withs.push(message.with.as_str());
            bares.push(message.with_bare());
            stanzas.push(message.stanza.as_str());
        }
    }
    // A service entity's archive (a room) exists without an account.
    let stored: Vec<(String, Vec<u8>)> = sqlx::query_as(
        "WITH stored AS ( \
           INSERT INTO archive (owner, id, with_jid, with_bare, stanza) \
           SELECT m.owner, m.id, m.with_jid, m.with_bare, m.stanza \
           FROM unnest($1::text[], $2::bytea[], $3::text[], $4::text[], $5::text[]) \
             AS m(owner, id, with_jid, with_bare, stanza) \
           WHERE position('@' IN m.owner) = 0 \
              OR EXISTS (SELECT 1 FROM accounts a WHERE a.account = m.owner) \
           ON CONFLICT DO NOTHING \
           RETURNING owner, id, with_bare), \
         counted AS ( \
           INSERT INTO archive_totals (owner, with_bare, n) \
           SELECT owner, with_bare, count(*) FROM stored GROUP BY owner, with_bare \
           UNION ALL \
           SELECT owner, '', count(*) FROM stored GROUP BY owner \
           ON CONFLICT (owner, with_bare) DO UPDATE SET n = archive_totals.n + EXCLUDED.n) \
         SELECT owner, id FROM stored",
    )
    .bind(&owners)
    .bind(&ids)
    .bind(&withs)
    .bind(&bares)
    .bind(&stanzas)
    .fetch_all(&mut *conn)
    .await?;
    let mut fresh: HashMap<(&str, &[u8]), ()> = stored
        .iter()
        .map(|(owner, id)| ((owner.as_str(), id.as_slice()), ()))
        .collect();
    let mut out = Vec::with_capacity(run.len());
    for (owner, id) in owners.iter().zip(&ids) {
        if fresh.remove(&(*owner, id.as_slice())).is_some() {
            out.push(StorageResult::Done);
        } else if is_service_owner(owner) || exists(conn, owner).await? {
            out.push(StorageResult::Conflict);
        } else {
            out.push(StorageResult::NotFound);
        }
    }
    Ok(out)
}

/// Replaces an archived message's stanza (a tombstone), keeping its `with`.
pub(super) async fn replace(
    conn: &mut PgConnection,
    owner: &str,
    id: ArchiveId,
    stanza: &str,
) -> Sql<StorageResult> {
    let done = sqlx::query("UPDATE archive SET stanza = $3 WHERE owner = $1 AND id = $2")
        .bind(owner)
        .bind(id.as_bytes().as_slice())
        .bind(stanza)
        .execute(&mut *conn)
        .await?;
    Ok(if done.rows_affected() == 0 {
        StorageResult::NotFound
    } else {
        StorageResult::Done
    })
}

/// Removes an owner's whole archive.
pub(super) async fn clear(conn: &mut PgConnection, owner: &str) -> Sql<()> {
    sqlx::query("DELETE FROM archive WHERE owner = $1")
        .bind(owner)
        .execute(&mut *conn)
        .await?;
    sqlx::query("DELETE FROM archive_totals WHERE owner = $1")
        .bind(owner)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Retention: messages archived before `before`, archive by archive in
/// owner order from `from`, at most `limit` of them, with their totals.
pub(super) async fn purge(
    conn: &mut PgConnection,
    before: u64,
    from: Option<&str>,
    limit: u64,
) -> Sql<StorageResult> {
    let cutoff = ArchiveId::first_at(before);
    let mut removed = 0u64;
    let mut owner: Option<String> = match from {
        Some(from) => {
            sqlx::query_scalar("SELECT owner FROM archive WHERE owner >= $1 ORDER BY owner LIMIT 1")
                .bind(from)
                .fetch_optional(&mut *conn)
                .await?
        }
        None => {
            sqlx::query_scalar("SELECT owner FROM archive ORDER BY owner LIMIT 1")
                .fetch_optional(&mut *conn)
                .await?
        }
    };
    while let Some(current) = owner {
        let want = i64::try_from(limit - removed).unwrap_or(i64::MAX);
        let gone: Vec<String> = sqlx::query_scalar(
            "DELETE FROM archive WHERE owner = $1 AND id IN \
             (SELECT id FROM archive WHERE owner = $1 AND id < $2 ORDER BY id LIMIT $3) \
             RETURNING with_bare",
        )
        .bind(&current)
        .bind(cutoff.as_bytes().as_slice())
        .bind(want)
        .fetch_all(&mut *conn)
        .await?;
        if !gone.is_empty() {
            let mut per_with: HashMap<&str, i64> = HashMap::new();
            for bare in &gone {
                *per_with.entry(bare.as_str()).or_insert(0) += 1;
            }
            per_with.insert("", i64::try_from(gone.len()).unwrap_or(i64::MAX));
            let (withs, counts): (Vec<&str>, Vec<i64>) = per_with.into_iter().unzip();
            sqlx::query(
                "UPDATE archive_totals t SET n = t.n - d.n \
                 FROM unnest($2::text[], $3::bigint[]) AS d(with_bare, n) \
                 WHERE t.owner = $1 AND t.with_bare = d.with_bare",
            )
            .bind(&current)
            .bind(&withs)
            .bind(&counts)
            .execute(&mut *conn)
            .await?;
            sqlx::query("DELETE FROM archive_totals WHERE owner = $1 AND n <= 0")
                .bind(&current)
                .execute(&mut *conn)
                .await?;
            removed += gone.len() as u64;
        }
        if removed >= limit {
            return Ok(StorageResult::Purged {
                removed,
                next: Some(current),
            });
        }
        owner =
            sqlx::query_scalar("SELECT owner FROM archive WHERE owner > $1 ORDER BY owner LIMIT 1")
                .bind(&current)
                .fetch_optional(&mut *conn)
                .await?;
    }
    Ok(StorageResult::Purged {
        removed,
        next: None,
    })
}

/// One owner's archive, read through the shared query algorithm.
struct View<'c> {
    conn: RefCell<&'c mut PgConnection>,
    owner: &'c str,
}

impl View<'_> {
    /// Up to `n` messages with `lo <= id <= hi`, in order.
    fn read(
        &self,
        lo: ArchiveId,
        hi: ArchiveId,
        with_bare: Option<&str>,
        rev: bool,
        n: i64,
    ) -> Sql<Vec<ArchivedMessage>> {
        let sql = match (with_bare.is_some(), rev) {
            (false, false) => {
                "SELECT id, with_jid, stanza FROM archive WHERE owner = $1 \
                 AND id BETWEEN $2 AND $3 ORDER BY id LIMIT $4"
            }
            (false, true) => {
                "SELECT id, with_jid, stanza FROM archive WHERE owner = $1 \
                 AND id BETWEEN $2 AND $3 ORDER BY id DESC LIMIT $4"
            }
            (true, false) => {
                "SELECT id, with_jid, stanza FROM archive WHERE owner = $1 \
                 AND id BETWEEN $2 AND $3 AND with_bare = $5 ORDER BY id LIMIT $4"
            }
            (true, true) => {
                "SELECT id, with_jid, stanza FROM archive WHERE owner = $1 \
                 AND id BETWEEN $2 AND $3 AND with_bare = $5 ORDER BY id DESC LIMIT $4"
            }
        };
        let mut conn = self.conn.borrow_mut();
        let mut query = sqlx::query(sql)
            .bind(self.owner)
            .bind(lo.as_bytes().as_slice())
            .bind(hi.as_bytes().as_slice())
            .bind(n);
        if let Some(bare) = with_bare {
            query = query.bind(bare);
        }
        let rows = smol::block_on(query.fetch_all(&mut **conn))?;
        rows.iter()
            .map(|row| {
                let id: Vec<u8> = row.try_get(0)?;
                Ok(ArchivedMessage {
                    id: id_of(&id)?,
                    with: row.try_get(1)?,
                    stanza: row.try_get(2)?,
                })
            })
            .collect()
    }
}

impl ArchiveView for View<'_> {
    type Error = sqlx::Error;

    fn scan(
        &self,
        lo: ArchiveId,
        hi: ArchiveId,
        with_bare: Option<&str>,
        rev: bool,
    ) -> Scan<'_, sqlx::Error> {
        let with_bare = with_bare.map(str::to_owned);
        let (mut lo, mut hi) = (Some(lo), Some(hi));
        let mut chunk = FIRST_CHUNK;
        let mut buffered = std::collections::VecDeque::new();
        Box::new(std::iter::from_fn(move || {
            if buffered.is_empty() {
                let (l, h) = (lo?, hi?);
                if l > h {
                    return None;
                }
                match self.read(l, h, with_bare.as_deref(), rev, chunk) {
                    Err(e) => {
                        // Stop after reporting the failure.
                        lo = None;
                        return Some(Err(e));
                    }
                    Ok(rows) => {
                        let full = rows.len() as i64 == chunk;
                        if let Some(last) = rows.last() {
                            if rev {
                                hi = last.id.prev();
                            } else {
                                lo = last.id.next();
                            }
                        }
                        if !full {
                            lo = None;
                        }
                        chunk = (chunk * 4).min(MAX_CHUNK);
                        buffered.extend(rows);
                    }
                }
            }
            buffered.pop_front().map(Ok)
        }))
    }

    fn get(&self, id: ArchiveId) -> Result<Option<ArchivedMessage>, sqlx::Error> {
        let mut conn = self.conn.borrow_mut();
        let row: Option<(String, String)> = smol::block_on(
            sqlx::query_as("SELECT with_jid, stanza FROM archive WHERE owner = $1 AND id = $2")
                .bind(self.owner)
                .bind(id.as_bytes().as_slice())
                .fetch_optional(&mut **conn),
        )?;
        Ok(row.map(|(with, stanza)| ArchivedMessage { id, with, stanza }))
    }

    fn count(&self, with_bare: Option<&str>) -> Result<u64, sqlx::Error> {
        let mut conn = self.conn.borrow_mut();
        let n: Option<i64> = smol::block_on(
            sqlx::query_scalar("SELECT n FROM archive_totals WHERE owner = $1 AND with_bare = $2")
                .bind(self.owner)
                .bind(with_bare.map_or("", bare_of))
                .fetch_optional(&mut **conn),
        )?;
        Ok(n.map_or(0, |n| u64::try_from(n).unwrap_or(0)))
    }
}

pub(super) async fn query(
    conn: &mut PgConnection,
    owner: &str,
    query: &archive::ArchiveQuery,
) -> Sql<StorageResult> {
    let view = View {
        conn: RefCell::new(conn),
        owner,
    };
    match archive::run_query(&view, query) {
        Ok(page) => Ok(StorageResult::ArchivePage(page)),
        Err(QueryError::UnknownId(_)) => Ok(StorageResult::NotFound),
        Err(QueryError::Backend(e)) => Err(e),
    }
}

pub(super) async fn metadata(conn: &mut PgConnection, owner: &str) -> Sql<StorageResult> {
    let view = View {
        conn: RefCell::new(conn),
        owner,
    };
    archive::metadata(&view).map(StorageResult::ArchiveBounds)
}
