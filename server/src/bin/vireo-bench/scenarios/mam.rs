//! `mam`: XEP-0313 page latency on a large archive.
//!
//! Filling an archive through XMPP costs a message round-trip per entry, so
//! `--fill-store DIR` takes the fast path instead: with the server stopped,
//! it opens the server's store (`data_path/store`) with the server's own
//! `open_store` (`--store-driver`, redb by default, which migrates a sled
//! store first) and appends `--messages` archive entries to
//! account 0 (which must exist: `vireo adduser` or `vireo import-users`) in
//! batches of 10,000 `AppendArchive` requests, one group commit each. The
//! entries are ordinary chat messages with `--contacts` correspondents,
//! alternating incoming and outgoing, spread evenly over the last `--days`
//! days, with ids from the core's generator, exactly as the server would
//! have archived them.
//!
//! Without `--fill-store` the scenario logs account 0 in to the running
//! server and times `--queries` queries of a `--page`-message page each (from
//! sending the iq to its `<fin/>`, all results received), walking like a
//! client that scrolls (each query continues from the previous page, so
//! every query reads messages no earlier one did) from five places: the
//! start of the archive (no cursor, then `<after/>`), the middle (`<after/>`
//! the first id at the middle time), the end (empty `<before/>`, then
//! `<before/>`), the middle of one correspondent's messages (`with` +
//! `<after/>`), and a catch-up query (`start` = the middle time, whose
//! `<count/>` is counted, not stored).

use crate::cli::MamCmd;
use crate::report::Report;
use crate::scenarios::secs;
use crate::session::Ctx;
use crate::stats::Latencies;
use crate::transport::Client;
use smol::future::FutureExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;
use xmpp_core::archive::{ArchivedMessage, IdGenerator};
use xmpp_core::storage::{StorageRequest, StorageResult};
use xmpp_core::time::{format_datetime, parse_datetime};
use xmpp_core::Element;

const MAM: &str = "urn:xmpp:mam:2";
const RSM: &str = "http://jabber.org/protocol/rsm";
/// Appends per group commit while filling.
const FILL_BATCH: u64 = 10_000;

/// Run the scenario.
pub async fn run(ctx: &Arc<Ctx>, cmd: &MamCmd, r: &mut Report) -> Result<(), String> {
    match &cmd.fill_store {
        Some(dir) => fill(ctx, cmd, dir.clone(), r).await,
        None => measure(ctx, cmd, r).await,
    }
}

async fn fill(ctx: &Arc<Ctx>, cmd: &MamCmd, dir: PathBuf, r: &mut Report) -> Result<(), String> {
    let account = ctx.bare(0);
    let domain = ctx.domain.clone();
    let (messages, days, contacts) = (cmd.messages, cmd.days, cmd.contacts.max(1));
    r.str("mode", "fill")
        .str("account", account.clone())
        .int("messages", messages)
        .int("days", days);
    let t = Instant::now();
    let store_dir = dir.clone();
    let driver = cmd.store_driver.clone();
    let accounts = cmd.accounts;
    let names: Vec<String> = (0..accounts).map(|i| ctx.bare(i as usize)).collect();
    let password = ctx.password.clone();
    smol::unblock(move || -> Result<(), String> {
        let store = open(&driver, &store_dir)?;
        fill_accounts(store.as_ref(), &names, &password, &domain)?;
        let now = xmpp_runtime::clock::now_ms();
        let span = days.saturating_mul(86_400_000).max(1);
        let start = now.saturating_sub(span);
        let mut ids = IdGenerator::new(xmpp_runtime::clock::entropy());
        let mut done = 0u64;
        while done < messages {
            let n = FILL_BATCH.min(messages - done);
            let batch: Vec<StorageRequest> = (done..done + n)
                .map(|i| {
                    let at = start + (u128::from(i) * u128::from(span) / u128::from(messages)) as u64;
                    let contact = format!("c{}@{domain}/r", i % contacts);
                    let mine = format!("{account}/bench");
                    let (from, to) = if i % 2 == 0 {
                        (contact.as_str(), mine.as_str())
                    } else {
                        (mine.as_str(), contact.as_str())
                    };
                    StorageRequest::AppendArchive {
                        account: account.clone(),
                        message: ArchivedMessage {
                            id: ids.next(at),
                            with: contact.clone(),
                            stanza: format!(
                                "<message xmlns='jabber:client' from='{from}' to='{to}' type='chat' \
                                 id='fill-{i}'><body>archived message number {i}, a line of an \
                                 ordinary conversation</body></message>"
                            ),
                        },
                    }
                })
                .collect();
            for result in store.execute_batch(batch) {
                match result {
                    StorageResult::Done => {}
                    StorageResult::NotFound => {
                        return Err(format!(
                            "{account} does not exist in {}: create it first \
                             (vireo adduser / import-users)",
                            store_dir.display()
                        ))
                    }
                    other => return Err(format!("append failed: {other:?}")),
                }
            }
            done += n;
        }
        store.flush().map_err(|e| e.to_string())
    })
    .await?;
    let took = t.elapsed();
    r.num("fill_s", secs(took))
        .num("fill_msgs_per_s", messages as f64 / secs(took).max(1e-9))
        .int("store_bytes", dir_size(&dir));
    Ok(())
}

/// The store to fill: an embedded one in `dir`, or PostgreSQL from the
/// environment (as the server reads VIREO_DB_*).
fn open(driver: &str, dir: &Path) -> Result<Arc<dyn xmpp_runtime::storage::Backend>, String> {
    if driver != "postgresql" {
        return vireo::store::open_store_at(
            driver,
            dir,
            xmpp_runtime::storage::redb::DEFAULT_CACHE_BYTES,
        );
    }
    let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    let defaults = xmpp_runtime::storage::PgOptions::default();
    let options = xmpp_runtime::storage::PgOptions {
        host: env("VIREO_DB_HOST").unwrap_or(defaults.host.clone()),
        port: env("VIREO_DB_PORT")
            .and_then(|p| p.parse().ok())
            .unwrap_or(defaults.port),
        database: env("VIREO_DB_NAME").unwrap_or(defaults.database.clone()),
        user: env("VIREO_DB_USER").unwrap_or(defaults.user.clone()),
        password: env("VIREO_DB_PASSWORD"),
        ..defaults
    };
    xmpp_runtime::storage::PostgresBackend::open(options)
        .map(|b| Arc::new(b) as Arc<dyn xmpp_runtime::storage::Backend>)
        .map_err(|e| e.to_string())
}

/// Creates `names` (existing ones are kept) with a little of every kind
/// of account data, in batches of 1,000 accounts per group commit.
fn fill_accounts(
    store: &dyn xmpp_runtime::storage::Backend,
    names: &[String],
    password: &str,
    domain: &str,
) -> Result<(), String> {
    use xmpp_core::storage::{RosterItem, Subscription};
    if names.is_empty() {
        return Ok(());
    }
    // One derivation for all: the cost of a real import is PBKDF2, which
    // is not what this measures.
    let credentials =
        xmpp_core::sasl::StoredCredentials::derive(password, b"vireo-bench-fill-salt", 4096)
            .map_err(|e| format!("credentials: {e:?}"))?;
    for chunk in names.chunks(1000) {
        let mut batch = Vec::new();
        for (n, name) in chunk.iter().enumerate() {
            batch.push(StorageRequest::CreateAccount {
                account: name.clone(),
                credentials: credentials.clone(),
            });
            for k in 1..=2 {
                batch.push(StorageRequest::PutRosterItem {
                    account: name.clone(),
                    item: RosterItem {
                        jid: format!("friend{}-{k}@{domain}", n),
                        name: Some(format!("Friend {k}")),
                        subscription: Subscription {
                            to: true,
                            from: true,
                            ..Subscription::default()
                        },
                        groups: vec!["Friends".into()],
                        in_roster: true,
                    },
                    version: k,
                });
            }
            batch.push(StorageRequest::StoreBlob {
                account: name.clone(),
                key: "vcard".into(),
                value: Some(format!("<vCard xmlns='vcard-temp'><FN>{name}</FN></vCard>")),
                limit: None,
            });
            batch.push(StorageRequest::StoreBlob {
                account: name.clone(),
                key: "private storage:bookmarks storage".into(),
                value: Some("<storage xmlns='storage:bookmarks'/>".into()),
                limit: None,
            });
            batch.push(StorageRequest::PushOffline {
                account: name.clone(),
                stanza: format!(
                    "<message xmlns='jabber:client' to='{name}' type='chat'><body>while you were away</body></message>"
                ),
                limit: None,
            });
        }
        for result in store.execute_batch(batch) {
            if !matches!(result, StorageResult::Done | StorageResult::Conflict) {
                return Err(format!("filling accounts: {result:?}"));
            }
        }
    }
    Ok(())
}

fn dir_size(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .map(|e| match e.metadata() {
                    Ok(m) if m.is_dir() => dir_size(&e.path()),
                    Ok(m) => m.len(),
                    Err(_) => 0,
                })
                .sum()
        })
        .unwrap_or(0)
}

/// Send a query (`inner` is the `<query/>` content) and wait for its end:
/// the number of results and the `<fin/>`.
async fn query(
    ctx: &Ctx,
    c: &mut Client,
    id: &str,
    inner: &str,
) -> Result<(Vec<String>, Element), String> {
    let iq = format!(
        "<iq type='set' id='{id}'><query xmlns='{MAM}' queryid='{id}'>{inner}</query></iq>"
    );
    c.queue_raw(iq.as_bytes());
    c.flush().await.map_err(|e| e.to_string())?;
    let limit = ctx.timeout;
    let wait = async {
        let mut results = Vec::new();
        loop {
            for el in c.take_received() {
                if let Some(res) = el.child(MAM, "result") {
                    if res.attr("queryid") == Some(id) {
                        results.push(res.attr("id").unwrap_or_default().to_owned());
                    }
                } else if el.name == "iq" && el.attr("id") == Some(id) {
                    return match el.child(MAM, "fin") {
                        Some(fin) => Ok((results, fin.clone())),
                        None => Err(format!("query {id} failed: {}", el.to_xml())),
                    };
                }
            }
            c.read_some().await.map_err(|e| e.to_string())?;
        }
    };
    wait.or(async {
        smol::Timer::after(limit).await;
        Err(format!("no answer to query {id} within {limit:?}"))
    })
    .await
}

/// The archive's first and last timestamps (XEP-0313 metadata).
async fn bounds(ctx: &Ctx, c: &mut Client) -> Result<(i64, i64), String> {
    c.queue_raw(format!("<iq type='get' id='md'><metadata xmlns='{MAM}'/></iq>").as_bytes());
    c.flush().await.map_err(|e| e.to_string())?;
    let limit = ctx.timeout;
    let wait = async {
        loop {
            for el in c.take_received() {
                if el.name != "iq" || el.attr("id") != Some("md") {
                    continue;
                }
                let md = el.child(MAM, "metadata");
                let stamp = |name: &str| {
                    md.and_then(|m| m.child(MAM, name))
                        .and_then(|e| e.attr("timestamp"))
                        .and_then(parse_datetime)
                        .map(|d| d.millis)
                };
                return match (stamp("start"), stamp("end")) {
                    (Some(a), Some(b)) => Ok((a, b)),
                    _ => Err(format!(
                        "the archive is empty or has no metadata: {} (fill it with \
                         mam --fill-store while the server is stopped)",
                        el.to_xml()
                    )),
                };
            }
            c.read_some().await.map_err(|e| e.to_string())?;
        }
    };
    wait.or(async {
        smol::Timer::after(limit).await;
        Err(format!("no metadata within {limit:?}"))
    })
    .await
}

async fn measure(ctx: &Arc<Ctx>, cmd: &MamCmd, r: &mut Report) -> Result<(), String> {
    r.str("mode", "query")
        .str("account", ctx.bare(0))
        .int("page", cmd.page as u64)
        .int("queries", cmd.queries as u64);
    let mut c = ctx.login(0).await?;
    let (first, last) = bounds(ctx, &mut c).await?;
    let (_, fin) = query(
        ctx,
        &mut c,
        "count",
        "<set xmlns='http://jabber.org/protocol/rsm'><max>0</max></set>",
    )
    .await?;
    let count = fin
        .child(RSM, "set")
        .and_then(|s| s.child_text(RSM, "count"))
        .unwrap_or_default();
    r.str("archive_count", count)
        .str(
            "archive_first",
            format_datetime(u64::try_from(first).unwrap_or(0)),
        )
        .str(
            "archive_last",
            format_datetime(u64::try_from(last).unwrap_or(0)),
        );
    let middle_time = format_datetime(u64::try_from(first + (last - first) / 2).unwrap_or(0));
    let (mid, _) = query(
        ctx,
        &mut c,
        "mid",
        &format!(
            "<x xmlns='jabber:x:data' type='submit'><field var='start'><value>{middle_time}</value></field></x>\
             <set xmlns='{RSM}'><max>1</max></set>"
        ),
    )
    .await?;
    let mid = mid
        .first()
        .cloned()
        .ok_or("no message at the middle time")?;
    let with = format!("c0@{}", ctx.domain);
    let with_form = format!(
        "<x xmlns='jabber:x:data' type='submit'><field var='with'><value>{with}</value></field></x>"
    );
    let since_form = format!(
        "<x xmlns='jabber:x:data' type='submit'><field var='start'><value>{middle_time}</value></field></x>"
    );
    // Each position is walked like a client scrolling: every query pages on
    // from the previous one, so no two queries read the same messages.
    let positions = [
        ("start", String::new(), None, false),
        ("middle", String::new(), Some(mid.clone()), false),
        ("end", String::new(), None, true),
        ("with_middle", with_form, Some(mid.clone()), false),
        ("since_middle", since_form, None, false),
    ];
    let page = cmd.page;
    for (name, form, anchor, backward) in positions {
        let mut lat = Latencies::with_capacity(cmd.queries);
        let mut short = 0u64;
        let mut cursor = anchor;
        for q in 0..cmd.queries {
            let rsm = match (&cursor, backward) {
                (None, false) => String::new(),
                (None, true) => "<before/>".to_owned(),
                (Some(id), false) => format!("<after>{id}</after>"),
                (Some(id), true) => format!("<before>{id}</before>"),
            };
            let inner = format!("{form}<set xmlns='{RSM}'><max>{page}</max>{rsm}</set>");
            let t = Instant::now();
            let (results, _) = query(ctx, &mut c, &format!("{name}{q}"), &inner).await?;
            lat.push(t.elapsed());
            if results.len() < page {
                short += 1;
            }
            let next = if backward {
                results.first()
            } else {
                results.last()
            };
            cursor = next.cloned().or(cursor);
        }
        let s = lat.summary();
        r.num(&format!("{name}_p50_ms"), s.pct_ms(50.0))
            .num(&format!("{name}_p99_ms"), s.pct_ms(99.0))
            .int(&format!("{name}_short_pages"), short);
    }
    let _ = c.close().await;
    Ok(())
}
