//! Where connections' own storage requests run (the credential lookup of
//! each login, SM and registration checks): a few long-lived threads fed by
//! one queue, not smol's blocking pool.
//!
//! Why not `smol::unblock`: a login flood made the pool spawn a thread per
//! waiting lookup (up to 500), and each new thread took a glibc arena.
//! The store's page cache then lived in the arenas where connection
//! buffers come and go, and its few long-lived pages kept the peak's
//! freed pages resident (after 15,000 logins: 4.6 MB in use, 14.8 MiB of
//! anonymous RSS). Fixed threads started at boot keep the store's
//! allocations in arenas of their own and put a bound on the threads.

use std::sync::Arc;

use smol::channel::{Receiver, Sender};
use xmpp_core::storage::{StorageRequest, StorageResult};

use crate::storage::Backend;

type Job = (StorageRequest, Sender<StorageResult>);

/// The queue to the connection storage threads; they stop once it is
/// dropped and the queue is drained.
#[derive(Debug)]
pub(crate) struct ConnStorage {
    jobs: Sender<Job>,
}

impl ConnStorage {
    /// Start `threads` (at least one) threads executing on `backend`.
    pub(crate) fn start(backend: Arc<dyn Backend>, threads: usize) -> std::io::Result<Self> {
        let (jobs, rx) = smol::channel::unbounded::<Job>();
        for i in 0..threads.max(1) {
            let (rx, backend) = (rx.clone(), backend.clone());
            std::thread::Builder::new()
                .name(format!("vireo-conn-store-{i}"))
                .spawn(move || serve(&rx, backend.as_ref()))?;
        }
        Ok(ConnStorage { jobs })
    }

    /// Execute `request`; `None` when the threads are gone (shutdown).
    pub(crate) async fn execute(&self, request: StorageRequest) -> Option<StorageResult> {
        let (reply, answer) = smol::channel::bounded(1);
        self.jobs.send((request, reply)).await.ok()?;
        answer.recv().await.ok()
    }
}

fn serve(jobs: &Receiver<Job>, backend: &dyn Backend) {
    while let Ok((request, reply)) = jobs.recv_blocking() {
        // The connection may have closed meanwhile: nobody to answer.
        let _ = reply.send_blocking(backend.execute(request));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::MemoryBackend;

    #[test]
    fn requests_are_answered_from_any_thread_and_threads_stop_when_dropped() {
        let backend: Arc<dyn Backend> = Arc::new(MemoryBackend::default());
        let storage = ConnStorage::start(backend, 2).expect("threads start");
        smol::block_on(async {
            for _ in 0..4 {
                let lookup = StorageRequest::LoadCredentials {
                    account: "nobody@example.org".into(),
                };
                assert!(storage.execute(lookup).await.is_some());
            }
        });
        drop(storage);
    }
}
