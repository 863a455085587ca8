//! XEP-0313 in the hub: archiving what an account sends and receives,
//! answering the account's queries, its XEP-0441 preferences, and the
//! retention purge.

use super::{ConnId, Hub, Pending};
use crate::archive::{
    ArchiveId, ArchivePrefs, ArchivedMessage, DefaultPref, IdGenerator, PREFS_KEY,
};
use crate::entropy::Entropy;
use crate::jid::Jid;
use crate::modules::mam::{form, policy, results, MamQuery, MamRequest, NS};
use crate::stanza::{iq_result, StanzaError};
use crate::storage::{StorageRequest, StorageResult};
use crate::time::Millis;
use crate::xml::Element;

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

/// The hub's archive state: the id generator and the purge schedule.
#[derive(Debug)]
pub(crate) struct ArchiveState {
    ids: IdGenerator,
    /// This hub runs the retention purge (one partition of a server does).
    pub(super) purger: bool,
    pub(super) next_purge: Option<Millis>,
    /// Where the running purge continues (account order).
    pub(super) cursor: Option<String>,
    pub(super) purging: bool,
}

impl ArchiveState {
    pub(crate) fn new() -> Self {
        ArchiveState {
            ids: IdGenerator::new(Entropy::from_u64(0)),
            purger: true,
            next_purge: None,
            cursor: None,
            purging: false,
        }
    }
}

/// A query waiting for storage.
#[derive(Debug)]
pub(super) struct QueryPending {
    conn: ConnId,
    iq: Element,
    queryid: Option<String>,
    flip: bool,
}

impl Hub {
    /// Seed the archive id generator (the driver passes OS randomness; the
    /// default seed is fixed, for simulations).
    pub fn set_archive_entropy(&mut self, entropy: Entropy) {
        self.archive.ids = IdGenerator::new(entropy);
    }

    /// The account's preferences, or the configured default.
    fn archive_prefs(&self, account: &str) -> ArchivePrefs {
        self.account(account)
            .and_then(|a| a.archive_prefs.clone())
            .unwrap_or_else(|| ArchivePrefs::with_default(self.cfg.archive.default_pref))
    }

    /// Whether the account archives messages with `target` (asked for
    /// every message: the stored preferences are borrowed, not copied).
    fn archives_with(&self, account: &str, target: &str) -> bool {
        let acc = self.account(account);
        let in_roster = |bare: &str| {
            acc.and_then(|a| a.roster.get(bare))
                .is_some_and(|i| i.in_roster)
        };
        match acc.and_then(|a| a.archive_prefs.as_ref()) {
            Some(prefs) => prefs.allows(target, in_roster),
            None => {
                ArchivePrefs::with_default(self.cfg.archive.default_pref).allows(target, in_roster)
            }
        }
    }

    /// Archive `stanza` (serialized once, here) for `account`.
    fn append(&mut self, account: &str, with: &str, stanza: &Element) -> ArchiveId {
        let id = self.archive.ids.next(self.now);
        self.write(StorageRequest::AppendArchive {
            account: account.to_owned(),
            message: ArchivedMessage {
                id,
                with: with.to_owned(),
                stanza: stanza.to_xml(),
            },
        });
        id
    }

    /// A message one of the account's sessions sends; its archive id, if it
    /// was archived. Messages to the account itself are archived once, when
    /// they arrive.
    pub(super) fn archive_outgoing(
        &mut self,
        account: &str,
        stanza: &Element,
    ) -> Option<ArchiveId> {
        if !self.enabled("mam") || !policy::archivable(stanza) {
            return None;
        }
        let to = stanza.attr("to")?;
        if crate::archive::bare_of(to) == account || !self.archives_with(account, to) {
            return None;
        }
        let to = to.to_owned();
        if !policy::has_stanza_id(stanza, account) {
            return Some(self.append(account, &to, stanza));
        }
        let mut copy = stanza.clone();
        policy::strip_stanza_ids(&mut copy, account);
        Some(self.append(account, &to, &copy))
    }

    /// A message accepted for delivery to the account (to a session or to
    /// offline storage): forged stanza-ids of this archive are removed, and
    /// an archived message carries its id to the recipient (XEP-0359).
    pub(super) fn archive_incoming(&mut self, account: &str, stanza: &mut Element) {
        if !self.enabled("mam") || stanza.name != "message" || self.redelivering {
            return;
        }
        policy::strip_stanza_ids(stanza, account);
        if !policy::archivable(stanza) {
            return;
        }
        let Some(from) = stanza.attr("from").map(str::to_owned) else {
            return;
        };
        if !self.archives_with(account, &from) {
            return;
        }
        let id = self.append(account, &from, stanza);
        policy::add_stanza_id(stanza, id, account);
    }

    /// A request of the account's own session to its archive.
    pub(super) fn mam_iq(&mut self, account: &str, conn: ConnId, iq: &Element, req: MamRequest) {
        match req {
            MamRequest::Form => {
                let q = Element::new(NS, "query").with_child(form::blank_form());
                self.deliver(conn, iq_result(iq).with_child(q));
            }
            MamRequest::GetPrefs => {
                let prefs = self.archive_prefs(account);
                self.deliver(conn, iq_result(iq).with_child(prefs.to_element()));
            }
            MamRequest::SetPrefs(prefs) => {
                self.commit(StorageRequest::StoreBlob {
                    account: account.to_owned(),
                    key: PREFS_KEY.to_owned(),
                    value: Some(prefs.to_document()),
                    limit: None,
                });
                let reply = iq_result(iq).with_child(prefs.to_element());
                if let Some(acc) = self.account_mut(account) {
                    acc.archive_prefs = Some(prefs);
                }
                self.deliver(conn, reply);
            }
            MamRequest::Metadata => self.request(
                StorageRequest::ArchiveMetadata {
                    account: account.to_owned(),
                },
                Pending::MamMetadata(conn, Box::new(iq.clone())),
            ),
            MamRequest::Query(q) => self.mam_query(account, conn, iq, *q),
        }
    }

    fn mam_query(&mut self, account: &str, conn: ConnId, iq: &Element, q: MamQuery) {
        let cfg = &self.cfg.archive;
        let page = q.page(cfg.default_page, cfg.max_page);
        let request = StorageRequest::QueryArchive {
            account: account.to_owned(),
            query: crate::archive::ArchiveQuery {
                filter: q.filter,
                page,
            },
        };
        let pending = QueryPending {
            conn,
            iq: iq.clone(),
            queryid: q.queryid,
            flip: q.flip,
        };
        self.request(request, Pending::MamQuery(Box::new(pending)));
    }

    pub(super) fn mam_query_done(&mut self, p: QueryPending, result: StorageResult) {
        let mut page = match result {
            StorageResult::ArchivePage(page) => page,
            StorageResult::NotFound => return self.bounce(&p.iq, StanzaError::ItemNotFound),
            other => {
                tracing::error!(?other, "archive query failed");
                return self.bounce(&p.iq, StanzaError::InternalServerError);
            }
        };
        let to = p.iq.attr("from").unwrap_or_default().to_owned();
        let from = p.iq.attr("to").map(str::to_owned);
        let fin = results::fin(&p.iq, &page);
        if p.flip {
            page.items.reverse();
        }
        for m in &page.items {
            let msg = results::result_message(&to, from.as_deref(), p.queryid.as_deref(), m);
            self.deliver(p.conn, msg);
        }
        self.deliver(p.conn, fin);
    }

    pub(super) fn mam_metadata_done(&mut self, conn: ConnId, iq: &Element, result: StorageResult) {
        match result {
            StorageResult::ArchiveBounds(bounds) => {
                self.deliver(conn, results::metadata(iq, bounds))
            }
            other => {
                tracing::error!(?other, "archive metadata failed");
                self.bounce(iq, StanzaError::InternalServerError);
            }
        }
    }

    /// The archive of `account` is only its own (XEP-0313 §9.1).
    pub(super) fn mam_foreign(&mut self, iq: &Element) -> bool {
        if self.enabled("mam") && MamRequest::parse(iq).is_some() {
            self.bounce(iq, StanzaError::Forbidden);
            return true;
        }
        false
    }
}

/// Whether `iq` is addressed to the account's own archive.
pub(super) fn own_archive(account: &str, to: Option<&Jid>) -> bool {
    to.is_none_or(|t| t.is_bare() && t.bare_str() == account)
}
