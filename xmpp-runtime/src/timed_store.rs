//! A backend that times every call for `/metrics` (a histogram of store
//! latency: a slow disk shows before it becomes slow acknowledgements).

use crate::metrics::Metrics;
use crate::storage::{Backend, StorageError, StoreSizes};
use std::sync::Arc;
use std::time::Instant;
use xmpp_core::storage::{StorageRequest, StorageResult};

/// `inner`, timed.
pub(crate) struct Timed {
    inner: Arc<dyn Backend>,
    metrics: Arc<Metrics>,
}

impl Timed {
    pub(crate) fn new(inner: Arc<dyn Backend>, metrics: Arc<Metrics>) -> Self {
        Timed { inner, metrics }
    }
}

impl Backend for Timed {
    fn execute(&self, req: StorageRequest) -> StorageResult {
        let started = Instant::now();
        let result = self.inner.execute(req);
        self.metrics.storage_took(started.elapsed().as_secs_f64());
        result
    }

    fn execute_batch(&self, reqs: Vec<StorageRequest>) -> Vec<StorageResult> {
        let started = Instant::now();
        let results = self.inner.execute_batch(reqs);
        self.metrics.storage_took(started.elapsed().as_secs_f64());
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

    fn sizes(&self) -> Option<StoreSizes> {
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
