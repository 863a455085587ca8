//! Reading a XEP-0227 file into the store.
//!
//! The file is parsed as it is read (`xmpp_core::portable::Reader`, one
//! bounded unit at a time) and turned into the storage requests the
//! server itself would send: `CreateAccount`, `PutRosterItem`,
//! `StoreBlob`, `PushOffline` (without a quota: these messages were
//! accepted once) and `AppendArchive`, grouped in batches so that a
//! million archived messages cost a few thousand commits, not a million.
//! What is held per account is what its quotas bound anyway: its roster
//! (pending-in requests may come before or after the items they belong
//! to) and its PEP nodes (configuration and items come in separate
//! elements and the final configuration decides which items stay).
//!
//! An import is not one transaction: a file that turns out broken half
//! way leaves what came before the error stored (and the account it
//! stopped in partly). `vireo import --check` reads and judges the whole
//! file first with nothing written ([`CheckOnly`]).
//!
//! Existing accounts are skipped whole, none of their data touched, and
//! named in the report. ejabberd's importer stops at the first account
//! that exists (leaving the file half imported) and Prosody's migrator
//! overwrites; skipping is the choice that can neither merge two people's
//! data nor leave an import half done.
//!
//! Passwords: a plaintext `password` derives both SCRAM hashes (the old
//! password works with every mechanism); `scram-credentials` keep the
//! keys as they are, and an account whose file has keys for one hash only
//! (Prosody's default, ejabberd's `auth_password_format: scram`) logs in
//! with that SCRAM mechanism and PLAIN until its next password change
//! (`StoredCredentials::imported`). An account with neither (SCRAM-SHA-512
//! keys, no password) is created locked and named in the report: `vireo
//! passwd` gives it a password.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

use xmpp_core::archive::ArchiveId;
use xmpp_core::jid::Jid;
use xmpp_core::modules::pep::store::{node_key, Entry, Index, Node, INDEX_KEY};
use xmpp_core::modules::pep::{ACCOUNT_BYTES_MAX, ITEM_BYTES_MAX, NODES_MAX};
use xmpp_core::portable::convert::{
    apply_pep_owner, apply_roster_item, archived_from_result, blocklist_from_privacy, contact_jid,
    credentials_from_scram, new_pep_node, new_roster_entry, parse_document, parse_scram,
    ScramRecord,
};
use xmpp_core::portable::{ReadLimits, Reader, Record, Scope, NS_PIE, NS_PIEFXIS, NS_XINCLUDE};
use xmpp_core::sasl::{ScramKeys, StoredCredentials};
use xmpp_core::storage::{RosterItem, StorageRequest as Req, StorageResult as Res};
use xmpp_core::xml::Element;
use xmpp_runtime::storage::Backend;

use super::{Counts, PortableError};

/// Requests sent to the store at once.
const BATCH: usize = 512;
/// Bytes of requests sent to the store at once.
const BATCH_BYTES: usize = 4 * 1024 * 1024;
/// Bytes read from the file at a time.
const READ_CHUNK: usize = 64 * 1024;
/// Distinct reasons kept for the report (each still counted).
const REASONS: usize = 32;

/// How an import runs.
#[derive(Debug, Clone)]
pub struct ImportOptions {
    /// The domains this server hosts: users of other hosts are skipped.
    pub domains: Vec<String>,
    /// PBKDF2 iterations for accounts with a plaintext password.
    pub iterations: u32,
    /// Most roster items per account (`services.max_roster_items`).
    pub max_roster_items: usize,
    /// The reader's budgets.
    pub limits: ReadLimits,
}

/// What an import did.
#[derive(Debug, Clone, Default)]
pub struct ImportReport {
    /// What was stored, by kind.
    pub stored: Counts,
    /// Accounts that existed already, left untouched.
    pub existing: Vec<String>,
    /// Accounts created without a usable password (locked until `vireo
    /// passwd`).
    pub locked: Vec<String>,
    /// Accounts whose credentials carry SCRAM-SHA-1 keys only.
    pub sha1_only: u64,
    /// Accounts whose credentials carry SCRAM-SHA-256 keys only.
    pub sha256_only: u64,
    /// Accounts whose password was derived from plaintext.
    pub from_plaintext: u64,
    /// What was left out: reason → count.
    pub skipped: BTreeMap<String, u64>,
}

impl std::fmt::Display for ImportReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "imported: {}", self.stored)?;
        writeln!(
            f,
            "passwords: {} from plaintext (every mechanism), {} SCRAM-SHA-1 keys only, \
             {} SCRAM-SHA-256 keys only, {} locked",
            self.from_plaintext,
            self.sha1_only,
            self.sha256_only,
            self.locked.len()
        )?;
        let list = |v: &[String]| {
            let mut s = v.iter().take(20).cloned().collect::<Vec<_>>().join(", ");
            if v.len() > 20 {
                s.push_str(&format!(" and {} more", v.len() - 20));
            }
            s
        };
        if !self.existing.is_empty() {
            writeln!(
                f,
                "skipped {} existing accounts (left untouched): {}",
                self.existing.len(),
                list(&self.existing)
            )?;
        }
        if !self.locked.is_empty() {
            writeln!(
                f,
                "locked accounts (no usable password; set one with `vireo passwd`): {}",
                list(&self.locked)
            )?;
        }
        for (why, n) in &self.skipped {
            writeln!(f, "left out {n}: {why}")?;
        }
        Ok(())
    }
}

/// Import `path` into `backend`.
pub fn import(
    backend: &dyn Backend,
    path: &Path,
    options: &ImportOptions,
) -> Result<ImportReport, PortableError> {
    let mut im = Importer {
        backend,
        options,
        report: ImportReport::default(),
        batch: Vec::new(),
        batch_bytes: 0,
        host: None,
        user: None,
        service: None,
        pep_node: None,
    };
    im.file(path, 0)?;
    im.flush()?;
    backend
        .flush()
        .map_err(|e| PortableError::Store(e.to_string()))?;
    Ok(im.report)
}

/// One account being imported.
struct User {
    account: String,
    password: Option<String>,
    scram: Vec<ScramRecord>,
    /// Created (`Some(true)`), existing or refused (`Some(false)`: its
    /// data is skipped), not yet decided (`None`).
    state: Option<bool>,
    credentials: Option<StoredCredentials>,
    roster: BTreeMap<String, RosterItem>,
    roster_version: u64,
    pep: BTreeMap<String, PepNode>,
    pep_bytes: usize,
    last_archived: Option<ArchiveId>,
}

#[derive(Default)]
struct PepNode {
    owner: Vec<Element>,
    items: Vec<(String, Element)>,
}

struct Importer<'a> {
    backend: &'a dyn Backend,
    options: &'a ImportOptions,
    report: ImportReport,
    batch: Vec<Req>,
    batch_bytes: usize,
    /// The current `<host>`, `None` outside one or when it is not ours.
    host: Option<Result<String, String>>,
    user: Option<User>,
    /// The current `<service>` and its archive's last id.
    service: Option<(String, Option<ArchiveId>)>,
    pep_node: Option<String>,
}

impl Importer<'_> {
    fn skip(&mut self, why: impl Into<String>) {
        let why = why.into();
        let known = self.report.skipped.len();
        match self.report.skipped.get_mut(&why) {
            Some(n) => *n += 1,
            None if known < REASONS => {
                self.report.skipped.insert(why, 1);
            }
            None => {
                *self
                    .report
                    .skipped
                    .entry("other reasons".into())
                    .or_default() += 1
            }
        }
    }

    fn file(&mut self, path: &Path, depth: u8) -> Result<(), PortableError> {
        let shown = path.display().to_string();
        let mut file = File::open(path).map_err(|source| PortableError::Read {
            path: shown.clone(),
            source,
        })?;
        let mut reader = Reader::new(self.options.limits);
        let mut chunk = vec![0u8; READ_CHUNK];
        loop {
            let n = file
                .read(&mut chunk)
                .map_err(|source| PortableError::Read {
                    path: shown.clone(),
                    source,
                })?;
            let at_end = n == 0;
            reader.feed(&chunk[..n]);
            loop {
                let next = if at_end {
                    reader.finish()
                } else {
                    reader.next_record()
                };
                let record = next.map_err(|source| PortableError::Format {
                    path: shown.clone(),
                    source,
                })?;
                let Some(record) = record else { break };
                self.record(record, path, depth)?;
            }
            if at_end {
                return Ok(());
            }
        }
    }

    fn record(&mut self, record: Record, path: &Path, depth: u8) -> Result<(), PortableError> {
        match record {
            Record::Open {
                scope,
                element,
                line,
            } => self.open(scope, &element, path, line),
            Record::Close { scope } => self.close(scope),
            Record::Unit {
                within,
                element,
                line,
            } => self.unit(within, element, path, line, depth),
        }
    }

    fn open(
        &mut self,
        scope: Scope,
        e: &Element,
        path: &Path,
        line: u64,
    ) -> Result<(), PortableError> {
        match scope {
            Scope::Host => {
                let jid = e.attr("jid").unwrap_or_default();
                self.host = Some(match Jid::parse(jid) {
                    Ok(j) if self.options.domains.iter().any(|d| d == j.domain()) => {
                        Ok(j.domain().to_owned())
                    }
                    _ => Err(jid.to_owned()),
                });
            }
            Scope::User => {
                let name = e.attr("name").unwrap_or_default();
                let account = match &self.host {
                    Some(Ok(host)) => match Jid::new(Some(name), host, None) {
                        Ok(j) => Some(j.bare_str()),
                        Err(_) => {
                            self.skip(format!(
                                "users with an invalid name (first at {}:{line})",
                                path.display()
                            ));
                            None
                        }
                    },
                    Some(Err(host)) => {
                        self.skip(format!(
                            "users of {host:?}, a domain this server does not host"
                        ));
                        None
                    }
                    None => None,
                };
                self.user = Some(User {
                    account: account.clone().unwrap_or_default(),
                    password: e.attr("password").map(str::to_owned),
                    scram: Vec::new(),
                    state: account.is_none().then_some(false),
                    credentials: None,
                    roster: BTreeMap::new(),
                    roster_version: 0,
                    pep: BTreeMap::new(),
                    pep_bytes: 0,
                    last_archived: None,
                });
            }
            Scope::Service => {
                let jid = e.attr("jid").unwrap_or_default();
                let ours = self.options.domains.iter().any(|d| {
                    let domain = jid.split('/').next().unwrap_or_default();
                    domain.ends_with(&format!(".{d}"))
                });
                if ours && !jid.contains('@') {
                    // Like accounts: a service that holds anything already
                    // is left alone whole.
                    if self.service_is_empty(jid)? {
                        self.service = Some((jid.to_owned(), None));
                    } else {
                        self.report.existing.push(jid.to_owned());
                    }
                } else {
                    self.skip(format!(
                        "services of domains this server does not host ({jid})"
                    ));
                }
            }
            Scope::Roster => {
                if let Some(u) = self.live_user()? {
                    u.roster_version = e
                        .attr("ver")
                        .or_else(|| e.attr("version"))
                        .and_then(|v| v.parse().ok())
                        .unwrap_or(0);
                }
            }
            Scope::PepItems => self.pep_node = e.attr("node").map(str::to_owned),
            Scope::Offline
            | Scope::Archive
            | Scope::Private
            | Scope::Pubsub
            | Scope::PubsubOwner
            | Scope::Documents => {
                // Data follows: the account must exist by now.
                self.live_user()?;
            }
            Scope::ServerData => {}
        }
        Ok(())
    }

    fn close(&mut self, scope: Scope) -> Result<(), PortableError> {
        match scope {
            Scope::User => {
                self.live_user()?;
                if let Some(u) = self.user.take() {
                    if u.state == Some(true) {
                        self.finish_user(u)?;
                    }
                }
            }
            Scope::Host => self.host = None,
            Scope::Service if self.service.take().is_some() => {
                self.report.stored.services += 1;
            }
            Scope::PepItems => self.pep_node = None,
            _ => {}
        }
        Ok(())
    }

    fn service_is_empty(&mut self, owner: &str) -> Result<bool, PortableError> {
        self.flush()?;
        let archive = self.backend.execute(Req::ArchiveMetadata {
            account: owner.to_owned(),
        });
        let documents = self.backend.execute(Req::ListBlobs {
            account: owner.to_owned(),
            prefix: String::new(),
            after: None,
            max: 1,
        });
        match (archive, documents) {
            (Res::ArchiveBounds(bounds), Res::Documents { items, .. }) => {
                Ok(bounds.is_none() && items.is_empty())
            }
            other => Err(PortableError::Store(format!("reading {owner}: {other:?}"))),
        }
    }

    /// The current account, created if this is its first data; `None`
    /// when its data is skipped (existing, refused) or outside a user.
    fn live_user(&mut self) -> Result<Option<&mut User>, PortableError> {
        let Some(u) = self.user.as_mut() else {
            return Ok(None);
        };
        if u.state.is_none() {
            let account = u.account.clone();
            let (creds, note) = self.credentials()?;
            let result = self.backend.execute(Req::CreateAccount {
                account: account.clone(),
                credentials: creds.clone(),
            });
            let state = match result {
                Res::Done => {
                    self.report.stored.accounts += 1;
                    match note {
                        Note::Plain => self.report.from_plaintext += 1,
                        Note::Sha1 => self.report.sha1_only += 1,
                        Note::Sha256 => self.report.sha256_only += 1,
                        Note::Both => {}
                        Note::Locked => self.report.locked.push(account.clone()),
                    }
                    true
                }
                Res::Conflict => {
                    self.report.existing.push(account.clone());
                    false
                }
                other => {
                    return Err(PortableError::Store(format!(
                        "creating {account}: {other:?}"
                    )))
                }
            };
            if let Some(u) = self.user.as_mut() {
                u.state = Some(state);
                u.credentials = Some(creds);
            }
        }
        Ok(self.user.as_mut().filter(|u| u.state == Some(true)))
    }

    /// The credentials of the current user, from its SCRAM records or its
    /// password.
    fn credentials(&mut self) -> Result<(StoredCredentials, Note), PortableError> {
        let Some(u) = self.user.as_ref() else {
            return Err(PortableError::Store("no user".into()));
        };
        let (scram, password) = (u.scram.clone(), u.password.clone());
        if !scram.is_empty() {
            match credentials_from_scram(&scram) {
                Ok((c, note)) => {
                    if let Some(n) = note {
                        self.skip(n.0);
                    }
                    let kind = match (c.sha1.is_present(), c.sha256.is_present()) {
                        (true, true) => Note::Both,
                        (true, false) => Note::Sha1,
                        _ => Note::Sha256,
                    };
                    return Ok((c, kind));
                }
                Err(why) => self.skip(format!("credentials: {why}")),
            }
        }
        let salt = random_salt()?;
        if let Some(p) = password.filter(|p| !p.is_empty() && !p.starts_with("scram:")) {
            match StoredCredentials::derive(&p, &salt, self.options.iterations) {
                Ok(c) => return Ok((c, Note::Plain)),
                Err(_) => self.skip("passwords that PRECIS refuses (account locked)"),
            }
        }
        Ok((
            StoredCredentials {
                iterations: self.options.iterations,
                salt,
                sha1: ScramKeys::default(),
                sha256: ScramKeys::default(),
            },
            Note::Locked,
        ))
    }

    fn unit(
        &mut self,
        within: Scope,
        e: Element,
        path: &Path,
        line: u64,
        depth: u8,
    ) -> Result<(), PortableError> {
        match within {
            Scope::ServerData if e.is(NS_XINCLUDE, "include") => {
                self.include(&e, path, line, depth)
            }
            Scope::User if e.name == "scram-credentials" => {
                match parse_scram(&e) {
                    Ok(r) => {
                        if let Some(u) = self.user.as_mut() {
                            u.scram.push(r);
                            if u.state == Some(true) {
                                // Keys after the account's data: replace
                                // the credentials made without them.
                                if let Ok((c, _)) = credentials_from_scram(&u.scram) {
                                    let account = u.account.clone();
                                    self.push(Req::SetCredentials {
                                        account,
                                        credentials: c,
                                    })?;
                                }
                            }
                        }
                    }
                    Err(why) => self.skip(format!("credentials: {why}")),
                }
                Ok(())
            }
            Scope::User => self.user_unit(e),
            Scope::Roster => self.roster_item(&e),
            Scope::Offline => {
                let Some(u) = self.live_user()? else {
                    return Ok(());
                };
                let account = u.account.clone();
                if e.name != "message" {
                    self.skip(format!("<{}> among offline messages", e.name));
                    return Ok(());
                }
                self.report.stored.offline += 1;
                self.push(Req::PushOffline {
                    account,
                    stanza: e.to_xml(),
                    limit: None,
                })
            }
            Scope::Archive => self.archived(&e),
            Scope::Private => {
                let Some(u) = self.live_user()? else {
                    return Ok(());
                };
                let account = u.account.clone();
                if e.ns.starts_with("jabber:") || e.ns.is_empty() {
                    self.skip("private XML in a reserved namespace");
                    return Ok(());
                }
                let key = format!(
                    "{}{} {}",
                    xmpp_core::modules::stored_xml::PRIVATE_KEY_PREFIX,
                    e.ns,
                    e.name
                );
                self.report.stored.private += 1;
                self.push(Req::StoreBlob {
                    account,
                    key,
                    value: Some(e.to_xml()),
                    limit: None,
                })
            }
            Scope::PubsubOwner => {
                let Some(u) = self.live_user()? else {
                    return Ok(());
                };
                let Some(node) = e.attr("node").map(str::to_owned) else {
                    self.skip("PEP configuration without a node");
                    return Ok(());
                };
                if !u.pep.contains_key(&node) && u.pep.len() >= NODES_MAX {
                    self.skip(format!("PEP nodes beyond {NODES_MAX} per account"));
                    return Ok(());
                }
                u.pep.entry(node).or_default().owner.push(e);
                Ok(())
            }
            Scope::PepItems => self.pep_item(e),
            Scope::Documents => {
                let owner = if let Some((jid, _)) = &self.service {
                    jid.clone()
                } else {
                    match self.live_user()? {
                        Some(u) => u.account.clone(),
                        None => return Ok(()),
                    }
                };
                match parse_document(&e) {
                    Ok((key, value)) => {
                        self.report.stored.documents += 1;
                        self.push(Req::StoreBlob {
                            account: owner,
                            key,
                            value: Some(value),
                            limit: None,
                        })
                    }
                    Err(why) => {
                        self.skip(why.0);
                        Ok(())
                    }
                }
            }
            Scope::Pubsub => {
                self.skip(format!("<{}> in PEP items", e.name));
                Ok(())
            }
            Scope::ServerData | Scope::Host | Scope::Service => {
                self.skip(format!("<{}> (not part of what Vireo imports)", e.name));
                Ok(())
            }
        }
    }

    fn user_unit(&mut self, e: Element) -> Result<(), PortableError> {
        let max = self.options.max_roster_items;
        let Some(u) = self.live_user()? else {
            return Ok(());
        };
        let account = u.account.clone();
        match (e.ns.as_str(), e.name.as_str()) {
            ("vcard-temp", "vCard") => {
                self.report.stored.vcards += 1;
                self.push(Req::StoreBlob {
                    account,
                    key: xmpp_core::modules::stored_xml::VCARD_KEY.into(),
                    value: Some(e.to_xml()),
                    limit: None,
                })
            }
            // Prosody 0.12 writes these without a namespace of their own
            // (so in XEP-0227's): accepted either way.
            ("jabber:client" | NS_PIE | NS_PIEFXIS, "presence")
                if e.attr("type") == Some("subscribe") =>
            {
                match e.attr("from").and_then(contact_jid) {
                    Some(jid) if jid != account => {
                        if !u.roster.contains_key(&jid) && u.roster.len() >= max {
                            self.skip(format!("roster entries beyond {max} per account"));
                            return Ok(());
                        }
                        u.roster
                            .entry(jid.clone())
                            .or_insert_with(|| new_roster_entry(jid))
                            .subscription
                            .pending_in = true;
                    }
                    _ => self.skip("subscription requests without a valid sender"),
                }
                Ok(())
            }
            ("jabber:iq:privacy", "query") => {
                let (jids, left_out) = blocklist_from_privacy(&e);
                for _ in 0..left_out {
                    self.skip(
                        "privacy list items other than the default list's \"deny a JID everything\" \
                         (XEP-0016; Vireo keeps a blocklist, XEP-0191)",
                    );
                }
                if jids.is_empty() {
                    return Ok(());
                }
                self.report.stored.blocked += jids.len() as u64;
                self.push(Req::StoreBlob {
                    account,
                    key: xmpp_core::modules::blocking::BLOCKLIST_KEY.into(),
                    value: Some(xmpp_core::modules::blocking::blocklist_document(&jids)),
                    limit: None,
                })
            }
            (_, name) => {
                self.skip(format!("<{name} xmlns='{}'> of accounts", e.ns));
                Ok(())
            }
        }
    }

    fn roster_item(&mut self, e: &Element) -> Result<(), PortableError> {
        let max = self.options.max_roster_items;
        let Some(u) = self.live_user()? else {
            return Ok(());
        };
        let Some(jid) = e.attr("jid").and_then(contact_jid) else {
            self.skip("roster items without a valid JID");
            return Ok(());
        };
        if jid == u.account {
            self.skip("roster items for the account itself");
            return Ok(());
        }
        if !u.roster.contains_key(&jid) && u.roster.len() >= max {
            self.skip(format!("roster entries beyond {max} per account"));
            return Ok(());
        }
        let entry = u
            .roster
            .entry(jid.clone())
            .or_insert_with(|| new_roster_entry(jid));
        if let Err(why) = apply_roster_item(e, entry) {
            self.skip(why.0);
        }
        Ok(())
    }

    fn archived(&mut self, e: &Element) -> Result<(), PortableError> {
        let (owner, previous) = match &self.service {
            Some((jid, last)) => (jid.clone(), *last),
            None => match self.live_user()? {
                Some(u) => (u.account.clone(), u.last_archived),
                None => return Ok(()),
            },
        };
        match archived_from_result(&owner, e, previous) {
            Ok(message) => {
                let id = message.id;
                match (&mut self.service, self.user.as_mut()) {
                    (Some((_, last)), _) => *last = Some(id),
                    (None, Some(u)) => u.last_archived = Some(id),
                    (None, None) => {}
                }
                self.report.stored.archived += 1;
                self.push(Req::AppendArchive {
                    account: owner,
                    message,
                })
            }
            Err(why) => {
                self.skip(format!("archived messages: {why}"));
                Ok(())
            }
        }
    }

    fn pep_item(&mut self, e: Element) -> Result<(), PortableError> {
        let node = self.pep_node.clone();
        let Some(u) = self.live_user()? else {
            return Ok(());
        };
        let Some(node) = node else {
            self.skip("PEP items without a node");
            return Ok(());
        };
        let (Some(id), Some(payload)) = (e.attr("id"), e.first_element()) else {
            self.skip("PEP items without an id or payload");
            return Ok(());
        };
        let bytes = payload.to_xml().len();
        if bytes > ITEM_BYTES_MAX {
            self.skip(format!("PEP items over {ITEM_BYTES_MAX} bytes"));
            return Ok(());
        }
        if u.pep_bytes.saturating_add(bytes) > ACCOUNT_BYTES_MAX {
            self.skip(format!(
                "PEP items beyond {ACCOUNT_BYTES_MAX} bytes per account"
            ));
            return Ok(());
        }
        if !u.pep.contains_key(&node) && u.pep.len() >= NODES_MAX {
            self.skip(format!("PEP nodes beyond {NODES_MAX} per account"));
            return Ok(());
        }
        u.pep_bytes += bytes;
        let (id, payload) = (id.to_owned(), payload.clone());
        u.pep.entry(node).or_default().items.push((id, payload));
        Ok(())
    }

    /// The roster and PEP of a finished account.
    fn finish_user(&mut self, u: User) -> Result<(), PortableError> {
        let account = u.account;
        for (_, item) in u.roster {
            if item.in_roster {
                self.report.stored.roster_items += 1;
            }
            if item.subscription.pending_in {
                self.report.stored.subscription_requests += 1;
            }
            self.push(Req::PutRosterItem {
                account: account.clone(),
                item,
                version: u.roster_version,
            })?;
        }
        let mut index = Index::default();
        for (name, parts) in u.pep {
            let mut node: Node = new_pep_node();
            for e in &parts.owner {
                if let Err(why) = apply_pep_owner(e, &mut node) {
                    self.skip(why.0);
                }
            }
            for (id, payload) in parts.items {
                node.publish(id, payload);
            }
            self.report.stored.pep_nodes += 1;
            self.report.stored.pep_items += node.items.len() as u64;
            index.0.insert(name.clone(), Entry::of(&node));
            self.push(Req::StoreBlob {
                account: account.clone(),
                key: node_key(&name),
                value: Some(node.document()),
                limit: None,
            })?;
        }
        if let Some(doc) = index.document() {
            self.push(Req::StoreBlob {
                account,
                key: INDEX_KEY.into(),
                value: Some(doc),
                limit: None,
            })?;
        }
        Ok(())
    }

    fn include(
        &mut self,
        e: &Element,
        path: &Path,
        line: u64,
        depth: u8,
    ) -> Result<(), PortableError> {
        let fail = |why: &str| PortableError::Include {
            path: path.display().to_string(),
            line,
            why: why.to_owned(),
        };
        if depth > 0 {
            return Err(fail("an xi:include inside an included file"));
        }
        let href = e
            .attr("href")
            .ok_or_else(|| fail("xi:include without href"))?;
        // Only a file next to this one: an export names its host files
        // so, and a path elsewhere is not something to follow blindly.
        if href.is_empty() || href.contains('/') || href.contains('\\') || href.starts_with('.') {
            return Err(fail(
                "xi:include of a file that is not in the same directory",
            ));
        }
        let dir = path.parent().map_or_else(PathBuf::new, Path::to_path_buf);
        self.file(&dir.join(href), depth + 1)
    }

    fn push(&mut self, req: Req) -> Result<(), PortableError> {
        self.batch_bytes += req.approx_bytes();
        self.batch.push(req);
        if self.batch.len() >= BATCH || self.batch_bytes >= BATCH_BYTES {
            self.flush()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<(), PortableError> {
        if self.batch.is_empty() {
            return Ok(());
        }
        let batch = std::mem::take(&mut self.batch);
        self.batch_bytes = 0;
        let what: Vec<(&'static str, String)> = batch
            .iter()
            .map(|r| (request_kind(r), r.account().unwrap_or_default().to_owned()))
            .collect();
        for (r, (kind, account)) in self.backend.execute_batch(batch).into_iter().zip(what) {
            if r != Res::Done {
                return Err(PortableError::Store(format!(
                    "{kind} for {account} answered {r:?}"
                )));
            }
        }
        Ok(())
    }
}

/// How an account's password came in.
enum Note {
    Plain,
    Both,
    Sha1,
    Sha256,
    Locked,
}

fn random_salt() -> Result<Vec<u8>, PortableError> {
    let mut salt = vec![0u8; 16];
    getrandom::getrandom(&mut salt)
        .map_err(|e| PortableError::Store(format!("no randomness for a salt: {e}")))?;
    Ok(salt)
}

/// A request's name, for errors.
fn request_kind(r: &Req) -> &'static str {
    match r {
        Req::PutRosterItem { .. } => "storing a roster item",
        Req::PushOffline { .. } => "storing an offline message",
        Req::StoreBlob { .. } => "storing a document",
        Req::AppendArchive { .. } => "archiving a message",
        Req::SetCredentials { .. } => "setting credentials",
        _ => "a request",
    }
}

/// The store as `vireo import --check` sees it: reads go to the real
/// store (so existing accounts are found), writes are answered `Done` and
/// dropped. The whole file is read and judged with nothing written, at
/// the cost of one unit of memory like a real import.
pub struct CheckOnly<'a>(pub &'a dyn Backend);

impl Backend for CheckOnly<'_> {
    fn execute(&self, req: Req) -> Res {
        match req {
            Req::CreateAccount { account, .. } => {
                match self.0.execute(Req::LoadCredentials { account }) {
                    Res::Credentials(Some(_)) => Res::Conflict,
                    Res::Credentials(None) => Res::Done,
                    other => other,
                }
            }
            r @ (Req::ArchiveMetadata { .. } | Req::ListBlobs { .. }) => self.0.execute(r),
            _ => Res::Done,
        }
    }
    fn flush(&self) -> Result<(), xmpp_runtime::storage::StorageError> {
        Ok(())
    }
    fn accounts(&self) -> Result<Vec<String>, xmpp_runtime::storage::StorageError> {
        self.0.accounts()
    }
    fn ready(&self) -> Result<(), xmpp_runtime::storage::StorageError> {
        self.0.ready()
    }
    /// The real store is the caller's to close.
    fn close(&self) {}
    fn service_owners(&self) -> Result<Vec<String>, xmpp_runtime::storage::StorageError> {
        self.0.service_owners()
    }
    fn peek_offline(
        &self,
        account: &str,
    ) -> Result<Vec<String>, xmpp_runtime::storage::StorageError> {
        self.0.peek_offline(account)
    }
}
