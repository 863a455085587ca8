//! XEP-0313 as a hub module: archiving what an account sends and receives,
//! answering the account's queries and its XEP-0441 preferences, and the
//! retention purge (§3.1) on a timer.

use super::{form, policy, results, MamQuery, MamRequest, ACCOUNT_FEATURES, NS, SID};
use crate::archive::{
    ArchiveId, ArchivePrefs, ArchiveQuery, ArchivedMessage, DefaultPref, IdSequence, PREFS_KEY,
};
use crate::hub::ConnId;
use crate::jid::Jid;
use crate::modules::{Addressed, Context, Flow, Module, ModuleId, Outgoing};
use crate::stanza::{iq_result, StanzaError};
use crate::storage::{Documents, RequestId, StorageRequest, StorageResult};
use crate::time::Millis;
use crate::xml::Element;
use std::collections::HashMap;

/// Its identity.
pub const ID: ModuleId = ModuleId::new("mam");

/// Deletions one purge request may make before handing the storage thread
/// back to other work.
pub const PURGE_BATCH: u64 = 10_000;

/// Archive settings (stack/06-storage/archiving.toml).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArchiveConfig {
    /// The preference of accounts that never set one (XEP-0441 default).
    pub default_pref: DefaultPref,
    /// Messages older than this are deleted; `None` keeps them forever.
    pub retention: Option<Millis>,
    /// Most results one query page returns, whatever `<max/>` asks.
    pub max_page: usize,
    /// Results per page when the query has no `<max/>`.
    pub default_page: usize,
    /// Time between two retention purges.
    pub purge_interval: Millis,
    /// The first purge runs this long after the hub starts, not in the
    /// middle of everyone reconnecting.
    pub first_purge_delay: Millis,
}

impl Default for ArchiveConfig {
    fn default() -> Self {
        ArchiveConfig {
            default_pref: DefaultPref::Always,
            retention: None,
            max_page: 250,
            default_page: 50,
            purge_interval: 3_600_000,
            first_purge_delay: 60_000,
        }
    }
}

/// What a storage request of this module was for.
#[derive(Debug, Clone)]
enum Waiting {
    /// A query whose results go to a session.
    Query {
        conn: ConnId,
        iq: Box<Element>,
        queryid: Option<String>,
        flip: bool,
    },
    /// A metadata request (§5).
    Metadata { conn: ConnId, iq: Box<Element> },
    /// A batch of the retention purge.
    Purge,
}

/// The retention purge's schedule.
#[derive(Debug, Clone, Default)]
struct Purge {
    next: Option<Millis>,
    /// Where the running purge continues (account order).
    cursor: Option<String>,
    running: bool,
}

/// XEP-0313 Message Archive Management for user archives.
#[derive(Debug, Clone)]
pub struct Archiving {
    cfg: ArchiveConfig,
    /// Archive ids, their random tails drawn from the hub's entropy.
    ids: IdSequence,
    waiting: HashMap<RequestId, Waiting>,
    purge: Purge,
}

impl Archiving {
    /// The module, archiving as `cfg` says.
    pub fn new(cfg: ArchiveConfig) -> Self {
        Archiving {
            cfg,
            ids: IdSequence::default(),
            waiting: HashMap::new(),
            purge: Purge::default(),
        }
    }

    /// Whether the account archives messages with `target`.
    fn archives_with(&self, cx: &Context<'_>, account: &str, target: &str) -> bool {
        let acc = cx.account(account);
        let in_roster = |bare: &str| {
            acc.and_then(|a| a.roster.get(bare))
                .is_some_and(|i| i.in_roster)
        };
        match cx.account_state_ref::<ArchivePrefs>(account) {
            Some(prefs) => prefs.allows(target, in_roster),
            None => ArchivePrefs::with_default(self.cfg.default_pref).allows(target, in_roster),
        }
    }

    /// Archive `stanza` (serialized once, here) for `account`.
    fn append(
        &mut self,
        cx: &mut Context<'_>,
        account: &str,
        with: &str,
        stanza: &Element,
    ) -> ArchiveId {
        let now = cx.now();
        let id = self.ids.next(now, cx.entropy());
        cx.write(StorageRequest::AppendArchive {
            account: account.to_owned(),
            message: ArchivedMessage {
                id,
                with: with.to_owned(),
                stanza: stanza.to_xml(),
            },
        });
        id
    }

    /// A request of the account's own session to its archive.
    fn command(
        &mut self,
        cx: &mut Context<'_>,
        account: &str,
        conn: ConnId,
        iq: &Element,
        req: MamRequest,
    ) {
        match req {
            MamRequest::Form => {
                let q = Element::new(NS, "query").with_child(form::blank_form());
                cx.deliver(conn, iq_result(iq).with_child(q));
            }
            MamRequest::GetPrefs => {
                let prefs = cx
                    .account_state_ref::<ArchivePrefs>(account)
                    .cloned()
                    .unwrap_or_else(|| ArchivePrefs::with_default(self.cfg.default_pref));
                cx.deliver(conn, iq_result(iq).with_child(prefs.to_element()));
            }
            MamRequest::SetPrefs(prefs) => {
                cx.commit(StorageRequest::StoreBlob {
                    account: account.to_owned(),
                    key: PREFS_KEY.to_owned(),
                    value: Some(prefs.to_document()),
                    limit: None,
                });
                let reply = iq_result(iq).with_child(prefs.to_element());
                if let Some(state) = cx.account_state::<ArchivePrefs>(account) {
                    *state = prefs;
                }
                cx.deliver(conn, reply);
            }
            MamRequest::Metadata => {
                let id = cx.request(StorageRequest::ArchiveMetadata {
                    account: account.to_owned(),
                });
                let iq = Box::new(iq.clone());
                self.waiting.insert(id, Waiting::Metadata { conn, iq });
            }
            MamRequest::Query(q) => self.query(cx, account, conn, iq, *q),
        }
    }

    fn query(
        &mut self,
        cx: &mut Context<'_>,
        account: &str,
        conn: ConnId,
        iq: &Element,
        q: MamQuery,
    ) {
        let page = q.page(self.cfg.default_page, self.cfg.max_page);
        let id = cx.request(StorageRequest::QueryArchive {
            account: account.to_owned(),
            query: ArchiveQuery {
                filter: q.filter,
                page,
            },
        });
        let waiting = Waiting::Query {
            conn,
            iq: Box::new(iq.clone()),
            queryid: q.queryid,
            flip: q.flip,
        };
        self.waiting.insert(id, waiting);
    }

    fn purged(&mut self, cx: &Context<'_>, result: StorageResult) {
        self.purge.running = false;
        let now = cx.now();
        match result {
            StorageResult::Purged { removed, next } => {
                if removed > 0 {
                    tracing::info!(removed, "expired archived messages deleted");
                }
                // A full batch continues at once; otherwise wait an interval.
                self.purge.next = Some(if next.is_some() {
                    now
                } else {
                    now.saturating_add(self.cfg.purge_interval)
                });
                self.purge.cursor = next;
            }
            other => {
                tracing::error!(?other, "archive purge failed");
                self.purge.next = Some(now.saturating_add(self.cfg.purge_interval));
            }
        }
    }
}

impl Module for Archiving {
    fn id(&self) -> ModuleId {
        ID
    }

    /// Archives a message once every other module has changed it (XEP-0280
    /// strips `<private/>` first), and acts on its own requests after the
    /// filters.
    fn priority(&self) -> i32 {
        -100
    }

    /// XEP-0359: the server adds stanza-ids (the archives themselves are
    /// advertised on the accounts' bare JIDs, XEP-0313 §6).
    fn server_features(&self) -> &'static [&'static str] {
        &[SID]
    }

    fn account_features(&self) -> &'static [&'static str] {
        ACCOUNT_FEATURES
    }

    fn account_documents(&self) -> &'static [&'static str] {
        &[PREFS_KEY]
    }

    fn account_loaded(&mut self, cx: &mut Context<'_>, account: &str, documents: &Documents) {
        if let Some(prefs) = documents
            .get(PREFS_KEY)
            .and_then(ArchivePrefs::from_document)
        {
            if let Some(state) = cx.account_state::<ArchivePrefs>(account) {
                *state = prefs;
            }
        }
    }

    fn outbound(
        &mut self,
        cx: &mut Context<'_>,
        account: &str,
        conn: ConnId,
        stanza: &Element,
    ) -> Flow {
        if stanza.name != "iq" {
            return Flow::Pass;
        }
        let to = stanza.attr("to").and_then(|t| Jid::parse(t).ok());
        let own_archive = to.is_none_or(|t| t.is_bare() && t.bare_str() == account);
        if !own_archive {
            return Flow::Pass;
        }
        match MamRequest::parse(stanza) {
            Some(Ok(req)) => self.command(cx, account, conn, stanza, req),
            Some(Err(e)) => cx.bounce(stanza, e),
            None => return Flow::Pass,
        }
        Flow::Handled
    }

    /// The archive of `account` is only its own (§9.1); its own requests
    /// were taken on the way out.
    fn iq(&mut self, cx: &mut Context<'_>, to: Addressed<'_>, iq: &Element) -> Flow {
        match to {
            Addressed::Account { own: false, .. } if MamRequest::parse(iq).is_some() => {
                cx.bounce(iq, StanzaError::Forbidden);
                Flow::Handled
            }
            _ => Flow::Pass,
        }
    }

    /// A message one of the account's sessions sends. Messages to the
    /// account itself are archived once, when they arrive.
    fn sending(
        &mut self,
        cx: &mut Context<'_>,
        account: &str,
        _conn: ConnId,
        message: &mut Outgoing<'_>,
    ) {
        if !policy::archivable(message.stanza) {
            return;
        }
        let Some(to) = message.stanza.attr("to") else {
            return;
        };
        if crate::archive::bare_of(to) == account || !self.archives_with(cx, account, to) {
            return;
        }
        let to = to.to_owned();
        let id = if policy::has_stanza_id(message.stanza, account) {
            let mut copy = message.stanza.clone();
            policy::strip_stanza_ids(&mut copy, account);
            self.append(cx, account, &to, &copy)
        } else {
            self.append(cx, account, &to, message.stanza)
        };
        message.archive_id = Some(id);
    }

    /// A message accepted for the account: forged stanza-ids of this
    /// archive are removed, and an archived message carries its id to the
    /// recipient (XEP-0359).
    fn accepting(&mut self, cx: &mut Context<'_>, account: &str, stanza: &mut Element) {
        if stanza.name != "message" {
            return;
        }
        policy::strip_stanza_ids(stanza, account);
        if !policy::archivable(stanza) {
            return;
        }
        let Some(from) = stanza.attr("from").map(str::to_owned) else {
            return;
        };
        if !self.archives_with(cx, account, &from) {
            return;
        }
        let id = self.append(cx, account, &from, stanza);
        policy::add_stanza_id(stanza, id, account);
    }

    fn storage_answer(&mut self, cx: &mut Context<'_>, id: RequestId, result: StorageResult) {
        match self.waiting.remove(&id) {
            Some(Waiting::Query {
                conn,
                iq,
                queryid,
                flip,
            }) => {
                let mut page = match result {
                    StorageResult::ArchivePage(page) => page,
                    StorageResult::NotFound => return cx.bounce(&iq, StanzaError::ItemNotFound),
                    other => {
                        tracing::error!(?other, "archive query failed");
                        return cx.bounce(&iq, StanzaError::InternalServerError);
                    }
                };
                let to = iq.attr("from").unwrap_or_default().to_owned();
                let from = iq.attr("to").map(str::to_owned);
                let fin = results::fin(&iq, &page);
                if flip {
                    page.items.reverse();
                }
                for m in &page.items {
                    let msg = results::result_message(&to, from.as_deref(), queryid.as_deref(), m);
                    cx.deliver(conn, msg);
                }
                cx.deliver(conn, fin);
            }
            Some(Waiting::Metadata { conn, iq }) => match result {
                StorageResult::ArchiveBounds(bounds) => {
                    cx.deliver(conn, results::metadata(&iq, bounds))
                }
                other => {
                    tracing::error!(?other, "archive metadata failed");
                    cx.bounce(&iq, StanzaError::InternalServerError);
                }
            },
            Some(Waiting::Purge) => self.purged(cx, result),
            None => {}
        }
    }

    /// The retention purge runs in the first partition only (the store is
    /// shared), one batch at a time.
    fn poll_timeout(&self, started: Millis, partition: usize) -> Option<Millis> {
        if self.cfg.retention.is_none() || partition != 0 || self.purge.running {
            return None;
        }
        Some(
            self.purge
                .next
                .unwrap_or(started.saturating_add(self.cfg.first_purge_delay)),
        )
    }

    fn timeout(&mut self, cx: &mut Context<'_>) {
        let Some(retention) = self.cfg.retention else {
            return;
        };
        self.purge.running = true;
        let id = cx.request(StorageRequest::PurgeArchive {
            before: cx.now().saturating_sub(retention),
            from: self.purge.cursor.take(),
            limit: PURGE_BATCH,
        });
        self.waiting.insert(id, Waiting::Purge);
    }
}
