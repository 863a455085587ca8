//! Writing a store (or one account) as a XEP-0227 file.
//!
//! The store is walked through the storage contract only, in pages, so an
//! export costs one account's roster, documents and offline queue (each
//! bounded by a quota) plus one archive page, whatever the store holds:
//! accounts from [`Backend::accounts`], services from
//! [`Backend::service_owners`], documents by `ListBlobs`, archives by
//! `QueryArchive` pages, offline queues by [`Backend::peek_offline`]
//! (left in place). Everything comes out in a fixed order (accounts by
//! domain then name, documents by key, archives by id), so the same store
//! always gives the same bytes.

use std::io::Write;

use xmpp_core::archive::{ArchiveFilter, ArchiveId, ArchiveQuery, PageRequest};
use xmpp_core::modules::pep::store::Node;
use xmpp_core::portable::convert::{
    archive_result, document_element, pep_item_element, pep_owner_elements, roster_item_element,
    scram_elements, subscribe_request,
};
use xmpp_core::portable::writer::Writer;
use xmpp_core::portable::{NS_PIE, NS_PIE_MAM, NS_PUBSUB, NS_PUBSUB_OWNER, NS_VIREO};
use xmpp_core::storage::{StorageRequest as Req, StorageResult as Res};
use xmpp_core::xml::Element;
use xmpp_runtime::storage::Backend;

use super::{is_special_key, Counts, PortableError};

/// Documents read per `ListBlobs` page.
const DOCUMENT_PAGE: usize = 64;
/// Archived messages read per `QueryArchive` page.
const ARCHIVE_PAGE: usize = 500;
/// Bytes gathered before they go to the output.
const FLUSH_AT: usize = 256 * 1024;

/// What to export.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Selection {
    /// Every account and every service.
    All,
    /// One account (its bare JID), no services.
    User(String),
}

/// Write the selection to `out`; the counts of what was written.
pub fn export(
    backend: &dyn Backend,
    selection: &Selection,
    out: &mut dyn Write,
) -> Result<Counts, PortableError> {
    let mut ex = Exporter {
        backend,
        w: Writer::new(),
        out,
        counts: Counts::default(),
    };
    let mut accounts: Vec<(String, String)> = match selection {
        Selection::All => backend
            .accounts()
            .map_err(|e| PortableError::Store(e.to_string()))?,
        Selection::User(jid) => match backend.execute(Req::LoadCredentials {
            account: jid.clone(),
        }) {
            Res::Credentials(Some(_)) => vec![jid.clone()],
            Res::Credentials(None) => return Err(PortableError::NoSuchAccount(jid.clone())),
            other => return Err(PortableError::Store(format!("{other:?}"))),
        },
    }
    .into_iter()
    .filter_map(|a| {
        let (local, domain) = a.split_once('@')?;
        Some((domain.to_owned(), local.to_owned()))
    })
    .collect();
    accounts.sort();
    let mut host: Option<&str> = None;
    for (domain, local) in &accounts {
        if host != Some(domain.as_str()) {
            if host.is_some() {
                ex.w.close();
            }
            ex.w.open_tag(NS_PIE, "host", &[("jid", domain)]);
            host = Some(domain);
        }
        ex.user(local, domain)?;
    }
    if host.is_some() {
        ex.w.close();
    }
    if *selection == Selection::All {
        let services = backend
            .service_owners()
            .map_err(|e| PortableError::Store(e.to_string()))?;
        for owner in services {
            ex.w.open_tag(NS_VIREO, "service", &[("jid", &owner)]);
            ex.archive(&owner)?;
            ex.documents(&owner, |_| true)?;
            ex.w.close();
            ex.counts.services += 1;
            ex.drain(false)?;
        }
    }
    ex.w.finish();
    ex.drain(true)?;
    Ok(ex.counts)
}

struct Exporter<'a> {
    backend: &'a dyn Backend,
    w: Writer,
    out: &'a mut dyn Write,
    counts: Counts,
}

impl Exporter<'_> {
    fn drain(&mut self, all: bool) -> Result<(), PortableError> {
        if all || self.w.out.len() >= FLUSH_AT {
            let bytes = self.w.take();
            self.out.write_all(&bytes).map_err(PortableError::Write)?;
            if all {
                self.out.flush().map_err(PortableError::Write)?;
            }
        }
        Ok(())
    }

    fn ask(&self, req: Req) -> Result<Res, PortableError> {
        match self.backend.execute(req) {
            Res::Failed(e) => Err(PortableError::Store(e)),
            other => Ok(other),
        }
    }

    fn user(&mut self, local: &str, domain: &str) -> Result<(), PortableError> {
        let account = format!("{local}@{domain}");
        self.w.open_tag(NS_PIE, "user", &[("name", local)]);
        self.counts.accounts += 1;
        if let Res::Credentials(Some(c)) = self.ask(Req::LoadCredentials {
            account: account.clone(),
        })? {
            for e in scram_elements(&c) {
                self.w.unit(&e);
            }
        }
        if let Res::Account(Some(data)) = self.ask(Req::LoadAccount {
            account: account.clone(),
            documents: std::sync::Arc::from([]),
        })? {
            let items: Vec<Element> = data.roster.iter().filter_map(roster_item_element).collect();
            if !items.is_empty() {
                let ver = data.roster_version.to_string();
                self.w
                    .open_tag("jabber:iq:roster", "query", &[("ver", &ver)]);
                for e in &items {
                    self.w.unit(e);
                }
                self.w.close();
                self.counts.roster_items += items.len() as u64;
            }
            for e in data
                .roster
                .iter()
                .filter_map(|i| subscribe_request(i, &account))
            {
                self.w.unit(&e);
                self.counts.subscription_requests += 1;
            }
        }
        if let Res::Blob(Some(v)) = self.ask(Req::LoadBlob {
            account: account.clone(),
            key: xmpp_core::modules::stored_xml::VCARD_KEY.into(),
        })? {
            match Element::parse(v.as_bytes()) {
                Ok(e) => {
                    self.w.unit(&e);
                    self.counts.vcards += 1;
                }
                Err(_) => self.counts.unreadable += 1,
            }
        }
        self.private(&account)?;
        self.offline(&account)?;
        self.pep(&account)?;
        self.archive(&account)?;
        self.documents(&account, |k| !is_special_key(k))?;
        self.w.close();
        self.drain(false)
    }

    /// Every document of `owner` under `prefix`, in key order, page by page.
    fn each_document(
        &mut self,
        owner: &str,
        prefix: &str,
        mut f: impl FnMut(&mut Self, String, String) -> Result<(), PortableError>,
    ) -> Result<(), PortableError> {
        let mut after = None;
        loop {
            let Res::Documents { items, more } = self.ask(Req::ListBlobs {
                account: owner.to_owned(),
                prefix: prefix.to_owned(),
                after: after.clone(),
                max: DOCUMENT_PAGE,
            })?
            else {
                return Ok(());
            };
            let last = items.last().map(|(k, _)| k.clone());
            for (k, v) in items {
                f(self, k, v)?;
            }
            match (more, last) {
                (true, Some(last)) => after = Some(last),
                _ => return Ok(()),
            }
        }
    }

    fn private(&mut self, account: &str) -> Result<(), PortableError> {
        let prefix = xmpp_core::modules::stored_xml::PRIVATE_KEY_PREFIX;
        let mut opened = false;
        self.each_document(account, prefix, |ex, _, v| {
            let Ok(e) = Element::parse(v.as_bytes()) else {
                ex.counts.unreadable += 1;
                return Ok(());
            };
            if !opened {
                ex.w.open_tag("jabber:iq:private", "query", &[]);
                opened = true;
            }
            ex.w.unit(&e);
            ex.counts.private += 1;
            Ok(())
        })?;
        if opened {
            self.w.close();
        }
        Ok(())
    }

    fn offline(&mut self, account: &str) -> Result<(), PortableError> {
        let queue = self
            .backend
            .peek_offline(account)
            .map_err(|e| PortableError::Store(e.to_string()))?;
        if queue.is_empty() {
            return Ok(());
        }
        self.w.open_tag(NS_PIE, "offline-messages", &[]);
        for s in queue {
            match Element::parse(s.as_bytes()) {
                Ok(e) => {
                    self.w.unit(&e);
                    self.counts.offline += 1;
                }
                Err(_) => self.counts.unreadable += 1,
            }
        }
        self.w.close();
        self.drain(false)
    }

    fn pep(&mut self, account: &str) -> Result<(), PortableError> {
        let prefix = "pep/";
        let mut nodes: Vec<(String, Node)> = Vec::new();
        // PEP is bounded per account (100 nodes, 4 MiB), so one account's
        // nodes are held while both of their elements are written.
        self.each_document(account, prefix, |ex, k, v| {
            match Node::parse(&v) {
                Some(node) => nodes.push((k[prefix.len()..].to_owned(), node)),
                None => ex.counts.unreadable += 1,
            }
            Ok(())
        })?;
        if nodes.is_empty() {
            return Ok(());
        }
        self.w.open_tag(NS_PUBSUB_OWNER, "pubsub", &[]);
        for (name, node) in &nodes {
            for e in pep_owner_elements(name, node) {
                self.w.unit(&e);
            }
        }
        self.w.close();
        self.w.open_tag(NS_PUBSUB, "pubsub", &[]);
        for (name, node) in &nodes {
            self.w.open_tag(NS_PUBSUB, "items", &[("node", name)]);
            for (id, payload) in &node.items {
                self.w.unit(&pep_item_element(id, payload));
                self.counts.pep_items += 1;
            }
            self.w.close();
            self.counts.pep_nodes += 1;
        }
        self.w.close();
        Ok(())
    }

    fn archive(&mut self, owner: &str) -> Result<(), PortableError> {
        let mut after: Option<ArchiveId> = None;
        let mut opened = false;
        while let Res::ArchivePage(page) = self.ask(Req::QueryArchive {
            account: owner.to_owned(),
            query: ArchiveQuery {
                filter: ArchiveFilter::default(),
                page: PageRequest {
                    max: ARCHIVE_PAGE,
                    after,
                    before: None,
                    backward: false,
                },
            },
        })? {
            if page.items.is_empty() {
                break;
            }
            if !opened {
                self.w.open_tag(NS_PIE_MAM, "archive", &[]);
                opened = true;
            }
            after = page.items.last().map(|m| m.id);
            for m in &page.items {
                match archive_result(owner, m) {
                    Some(e) => {
                        self.w.unit(&e);
                        self.counts.archived += 1;
                    }
                    None => self.counts.unreadable += 1,
                }
            }
            self.drain(false)?;
            if page.complete {
                break;
            }
        }
        if opened {
            self.w.close();
        }
        Ok(())
    }

    fn documents(&mut self, owner: &str, keep: impl Fn(&str) -> bool) -> Result<(), PortableError> {
        let mut opened = false;
        self.each_document(owner, "", |ex, k, v| {
            if !keep(&k) {
                return Ok(());
            }
            if !opened {
                ex.w.open_tag(NS_VIREO, "documents", &[]);
                opened = true;
            }
            ex.w.unit(&document_element(&k, &v));
            ex.counts.documents += 1;
            Ok(())
        })?;
        if opened {
            self.w.close();
        }
        Ok(())
    }
}
