//! Where PBKDF2 runs: PLAIN password checks and new passwords (in-band
//! registration and password change, `vireo adduser`/`passwd` through the
//! admin socket). Each run takes milliseconds of CPU on purpose, so it must
//! not stall an executor thread (every connection and hub partition on it
//! would wait); and at most `permits` run at once, so a flood of logins
//! queues instead of spawning blocking threads without bound.

use smol::lock::Semaphore;

/// A bounded set of blocking threads for key derivation.
#[derive(Debug)]
pub(crate) struct KdfPool {
    permits: Semaphore,
}

impl KdfPool {
    /// At most `permits` derivations at once (at least one).
    pub(crate) fn new(permits: usize) -> Self {
        KdfPool {
            permits: Semaphore::new(permits.max(1)),
        }
    }

    /// Run `f` on a blocking thread once a permit is free.
    pub(crate) async fn run<T: Send + 'static>(&self, f: impl FnOnce() -> T + Send + 'static) -> T {
        let _permit = self.permits.acquire().await;
        smol::unblock(f).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    use std::time::Duration;

    #[test]
    fn never_more_than_permits_at_once() {
        let pool = Arc::new(KdfPool::new(2));
        let running = Arc::new(AtomicUsize::new(0));
        let peak = Arc::new(AtomicUsize::new(0));
        smol::block_on(async {
            let tasks: Vec<_> = (0..8)
                .map(|_| {
                    let (pool, running, peak) = (pool.clone(), running.clone(), peak.clone());
                    smol::spawn(async move {
                        pool.run(move || {
                            let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                            peak.fetch_max(now, Ordering::SeqCst);
                            std::thread::sleep(Duration::from_millis(20));
                            running.fetch_sub(1, Ordering::SeqCst);
                        })
                        .await
                    })
                })
                .collect();
            for t in tasks {
                t.await;
            }
        });
        assert_eq!(peak.load(Ordering::SeqCst), 2);
    }
}
