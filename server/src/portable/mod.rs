//! XEP-0227 export and import: the drivers between a store and a file.
//!
//! The format itself (reading, writing, the mapping of stored data to
//! elements) is the pure `xmpp_core::portable`; these modules only walk
//! the store ([`export`]) or send it storage requests ([`import`]), and
//! own the files. `vireo export`, `vireo import` and `vireo user export`
//! (`commands/xep0227.rs`) are thin wrappers around them.

pub mod export;
pub mod import;

#[cfg(test)]
mod tests;

use std::fmt;

/// Whether a document key is written by the standard parts of an export
/// (vCard, private XML, PEP) rather than among Vireo's own documents.
pub fn is_special_key(key: &str) -> bool {
    key == xmpp_core::modules::stored_xml::VCARD_KEY
        || key.starts_with(xmpp_core::modules::stored_xml::PRIVATE_KEY_PREFIX)
        || key == xmpp_core::modules::pep::store::INDEX_KEY
        || key.starts_with("pep/")
}

/// What an export wrote or an import stored, by kind.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counts {
    /// Accounts.
    pub accounts: u64,
    /// Roster items (in the roster).
    pub roster_items: u64,
    /// Subscription requests waiting for the user.
    pub subscription_requests: u64,
    /// vCards (vcard-temp).
    pub vcards: u64,
    /// XEP-0049 private XML documents.
    pub private: u64,
    /// Offline messages.
    pub offline: u64,
    /// Archived messages (accounts and services).
    pub archived: u64,
    /// PEP nodes.
    pub pep_nodes: u64,
    /// PEP items.
    pub pep_items: u64,
    /// Blocked JIDs from other servers' privacy lists (XEP-0016).
    pub blocked: u64,
    /// Vireo's own documents (blocklist, preferences, services' nodes, ...).
    pub documents: u64,
    /// Services (pubsub, rooms).
    pub services: u64,
    /// Stored values that did not parse and were left out.
    pub unreadable: u64,
}

impl fmt::Display for Counts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts = [
            (self.accounts, "accounts"),
            (self.roster_items, "roster items"),
            (self.subscription_requests, "subscription requests"),
            (self.vcards, "vCards"),
            (self.private, "private XML documents"),
            (self.offline, "offline messages"),
            (self.archived, "archived messages"),
            (self.pep_nodes, "PEP nodes"),
            (self.pep_items, "PEP items"),
            (self.blocked, "blocked JIDs"),
            (self.documents, "Vireo documents"),
            (self.services, "services"),
        ];
        // Only imports from privacy lists count blocked JIDs (Vireo's own
        // blocklists travel as documents): said when there are some.
        let shown: Vec<String> = parts
            .iter()
            .filter(|(n, what)| *n > 0 || *what != "blocked JIDs")
            .map(|(n, what)| format!("{n} {what}"))
            .collect();
        write!(f, "{}", shown.join(", "))?;
        if self.unreadable > 0 {
            write!(f, "; {} unreadable stored values left out", self.unreadable)?;
        }
        Ok(())
    }
}

/// Why an export or import stopped.
#[derive(Debug, thiserror::Error)]
pub enum PortableError {
    /// The store failed.
    #[error("store: {0}")]
    Store(String),
    /// The account to export does not exist.
    #[error("no account {0}")]
    NoSuchAccount(String),
    /// Writing the export failed.
    #[error("writing the export: {0}")]
    Write(#[source] std::io::Error),
    /// Reading a file failed.
    #[error("{path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// What failed.
        #[source]
        source: std::io::Error,
    },
    /// The file is not a readable XEP-0227 document (line and place in
    /// the message).
    #[error("{path}: {source}")]
    Format {
        /// The file.
        path: String,
        /// What is wrong, and where.
        #[source]
        source: xmpp_core::portable::ReadError,
    },
    /// An `xi:include` that cannot be followed.
    #[error("{path}: line {line}: {why}")]
    Include {
        /// The including file.
        path: String,
        /// Its line.
        line: u64,
        /// Why.
        why: String,
    },
}
