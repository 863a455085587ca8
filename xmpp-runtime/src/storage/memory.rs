//! An in-memory backend: for tests, examples and throwaway servers.
//!
//! A thread-safe wrapper around the core's pure [`MemoryStore`], so the
//! simulated world and the runtime share one implementation of the storage
//! semantics (checked against redb and sled by the shared conformance test).

use std::sync::{Mutex, MutexGuard, PoisonError};

use xmpp_core::storage::MemoryStore;
use xmpp_core::storage::{StorageRequest, StorageResult};

use super::{check_account, Backend, StorageError};

/// A [`Backend`] keeping all data in memory; nothing survives the process.
#[derive(Debug, Default)]
pub struct MemoryBackend {
    store: Mutex<MemoryStore>,
}

impl MemoryBackend {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// A panic elsewhere in a lock holder cannot leave the store half
    /// updated (each request completes under the lock), so keep serving.
    fn lock(&self) -> MutexGuard<'_, MemoryStore> {
        self.store.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Backend for MemoryBackend {
    fn execute(&self, req: StorageRequest) -> StorageResult {
        if let Some(Err(e)) = req.account().map(check_account) {
            tracing::warn!(error = %e, "storage request rejected");
            return StorageResult::Failed(e.to_string());
        }
        self.lock().execute(req)
    }

    fn flush(&self) -> Result<(), StorageError> {
        Ok(())
    }

    fn accounts(&self) -> Result<Vec<String>, StorageError> {
        Ok(self.lock().accounts())
    }

    fn ready(&self) -> Result<(), StorageError> {
        Ok(())
    }

    /// Nothing to close: the store is flushed, and sled recovers from its
    /// log either way.
    fn close(&self) {}

    fn service_owners(&self) -> Result<Vec<String>, StorageError> {
        Ok(self.lock().service_owners())
    }

    fn peek_offline(&self, account: &str) -> Result<Vec<String>, StorageError> {
        Ok(self.lock().offline(account).to_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conformance() {
        super::super::conformance::all_requests(&MemoryBackend::new());
    }

    #[test]
    fn a_filled_store_reads_back() {
        let b = MemoryBackend::new();
        super::super::conformance::fill_for_migration(&b);
        super::super::conformance::check_migrated(&b);
    }
}
