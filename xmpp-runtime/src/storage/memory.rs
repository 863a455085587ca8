//! An in-memory backend: for tests, examples and throwaway servers.
//!
//! Same semantics as the sled backend (checked by the shared conformance
//! test), nothing survives the process.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Mutex, MutexGuard, PoisonError};

use xmpp_core::sasl::StoredCredentials;
use xmpp_core::storage::{AccountData, RosterItem, StorageRequest, StorageResult};

use super::{check_account, request_account, Backend, StorageError};

/// Everything stored for one account.
#[derive(Debug, Clone)]
struct Account {
    credentials: StoredCredentials,
    /// Keyed by contact JID so listing order matches sled's key order.
    roster: BTreeMap<String, RosterItem>,
    roster_version: u64,
    offline: Vec<String>,
}

/// A [`Backend`] keeping all data in a mutex-protected map.
#[derive(Debug, Default)]
pub struct MemoryBackend {
    accounts: Mutex<HashMap<String, Account>>,
}

impl MemoryBackend {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// Every operation completes under the lock without panicking, so a
    /// poisoned lock can only come from a panic elsewhere in the holder
    /// thread; the map is still consistent, so keep serving.
    fn lock(&self) -> MutexGuard<'_, HashMap<String, Account>> {
        self.accounts.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Backend for MemoryBackend {
    fn execute(&self, req: StorageRequest) -> StorageResult {
        if let Err(e) = check_account(request_account(&req)) {
            tracing::warn!(error = %e, "storage request rejected");
            return StorageResult::Failed(e.to_string());
        }
        let mut map = self.lock();
        match req {
            StorageRequest::LoadCredentials { account } => {
                StorageResult::Credentials(map.get(&account).map(|a| a.credentials.clone()))
            }
            StorageRequest::LoadAccount { account } => {
                StorageResult::Account(map.get(&account).map(|a| AccountData {
                    roster: a.roster.values().cloned().collect(),
                    roster_version: a.roster_version,
                }))
            }
            StorageRequest::PutRosterItem {
                account,
                item,
                version,
            } => match map.get_mut(&account) {
                Some(a) => {
                    a.roster.insert(item.jid.clone(), item);
                    a.roster_version = version;
                    StorageResult::Done
                }
                None => StorageResult::NotFound,
            },
            StorageRequest::RemoveRosterItem {
                account,
                jid,
                version,
            } => match map.get_mut(&account) {
                Some(a) => {
                    a.roster.remove(&jid);
                    a.roster_version = version;
                    StorageResult::Done
                }
                None => StorageResult::NotFound,
            },
            StorageRequest::PushOffline { account, stanza } => match map.get_mut(&account) {
                Some(a) => {
                    a.offline.push(stanza);
                    StorageResult::Done
                }
                None => StorageResult::NotFound,
            },
            StorageRequest::TakeOffline { account } => StorageResult::Offline(
                map.get_mut(&account)
                    .map(|a| std::mem::take(&mut a.offline))
                    .unwrap_or_default(),
            ),
            StorageRequest::CreateAccount {
                account,
                credentials,
            } => {
                if map.contains_key(&account) {
                    return StorageResult::Conflict;
                }
                map.insert(
                    account,
                    Account {
                        credentials,
                        roster: BTreeMap::new(),
                        roster_version: 0,
                        offline: Vec::new(),
                    },
                );
                StorageResult::Done
            }
            StorageRequest::SetCredentials {
                account,
                credentials,
            } => match map.get_mut(&account) {
                Some(a) => {
                    a.credentials = credentials;
                    StorageResult::Done
                }
                None => StorageResult::NotFound,
            },
            StorageRequest::DeleteAccount { account } => match map.remove(&account) {
                Some(_) => StorageResult::Done,
                None => StorageResult::NotFound,
            },
        }
    }

    fn flush(&self) -> Result<(), StorageError> {
        Ok(())
    }

    fn accounts(&self) -> Result<Vec<String>, StorageError> {
        let mut names: Vec<String> = self.lock().keys().cloned().collect();
        names.sort();
        Ok(names)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conformance() {
        super::super::conformance::all_requests(&MemoryBackend::new());
    }
}
