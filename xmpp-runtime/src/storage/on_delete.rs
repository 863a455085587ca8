//! A backend that tells others when an account is deleted: what is kept
//! outside the store for an account (uploaded files) goes with it,
//! whichever path deleted it (`vireo deluser`, XEP-0077 cancellation, the
//! admin API).

use super::{Backend, StorageError};
use std::sync::Arc;
use xmpp_core::storage::{StorageRequest, StorageResult};

/// Called with the bare JID of each deleted account, after the deletion is
/// durable.
pub type OnDelete = Arc<dyn Fn(&str) + Send + Sync>;

/// `inner`, calling `hook` after each account deletion it performed.
pub struct DeletionHook {
    inner: Arc<dyn Backend>,
    hook: OnDelete,
}

impl DeletionHook {
    /// Wrap `inner`.
    pub fn new(inner: Arc<dyn Backend>, hook: OnDelete) -> Self {
        DeletionHook { inner, hook }
    }

    fn deleted(&self, req: &StorageRequest, result: &StorageResult) {
        if let (StorageRequest::DeleteAccount { account }, StorageResult::Done) = (req, result) {
            (self.hook)(account);
        }
    }
}

impl Backend for DeletionHook {
    fn execute(&self, req: StorageRequest) -> StorageResult {
        let account = matches!(req, StorageRequest::DeleteAccount { .. }).then(|| req.clone());
        let result = self.inner.execute(req);
        if let Some(req) = account {
            self.deleted(&req, &result);
        }
        result
    }

    fn execute_batch(&self, reqs: Vec<StorageRequest>) -> Vec<StorageResult> {
        let deletions: Vec<(usize, StorageRequest)> = reqs
            .iter()
            .enumerate()
            .filter(|(_, r)| matches!(r, StorageRequest::DeleteAccount { .. }))
            .map(|(i, r)| (i, r.clone()))
            .collect();
        let results = self.inner.execute_batch(reqs);
        for (i, req) in deletions {
            if let Some(result) = results.get(i) {
                self.deleted(&req, result);
            }
        }
        results
    }

    fn flush(&self) -> Result<(), StorageError> {
        self.inner.flush()
    }

    fn accounts(&self) -> Result<Vec<String>, StorageError> {
        self.inner.accounts()
    }

    fn snapshot(&self, dest: &std::path::Path) -> Result<(), StorageError> {
        self.inner.snapshot(dest)
    }

    fn sizes(&self) -> Option<super::StoreSizes> {
        self.inner.sizes()
    }
    fn ready(&self) -> Result<(), StorageError> {
        self.inner.ready()
    }

    fn close(&self) {
        self.inner.close()
    }

    fn service_owners(&self) -> Result<Vec<String>, StorageError> {
        self.inner.service_owners()
    }

    fn peek_offline(&self, account: &str) -> Result<Vec<String>, StorageError> {
        self.inner.peek_offline(account)
    }
}
