//! Giving memory back after a peak.
//!
//! glibc's malloc keeps what a burst freed inside its arenas: after 15,000
//! sessions logged in and all left, RSS stayed at 163 MiB (fresh: 10 MiB),
//! so a server that lived through one peak, or one attack, kept its worst
//! footprint for ever. `malloc_trim(0)` hands free pages of every arena back
//! to the kernel (measured: 163 → 58 MiB for that peak). It walks the heap
//! under the arenas' locks, so it runs on a blocking thread, only after
//! connections have gone away, and at most every [`CHECK_EVERY`].
//! (mimalloc was measured too: 57 MiB fresh and 415 MiB after the same
//! peak, so the system allocator stays.)

use crate::registry::ConnRegistry;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How often connection churn is looked at.
const CHECK_EVERY: Duration = Duration::from_secs(10);

/// Closed connections that make a trim worthwhile at the next check.
const TRIM_AFTER_CLOSED: u64 = 256;

/// A few closed connections still lead to a trim after this long.
const TRIM_AT_LEAST_EVERY: Duration = Duration::from_secs(300);

/// Trim the allocator whenever enough connections have closed; runs until
/// the executor stops.
pub(crate) async fn release_after_peaks(conns: Arc<ConnRegistry>) {
    let mut closed_at_trim = 0u64;
    let mut last_trim = Instant::now();
    loop {
        smol::Timer::after(CHECK_EVERY).await;
        let closed = conns.closed();
        let newly = closed.saturating_sub(closed_at_trim);
        let due =
            newly >= TRIM_AFTER_CLOSED || (newly > 0 && last_trim.elapsed() >= TRIM_AT_LEAST_EVERY);
        if !due {
            continue;
        }
        closed_at_trim = closed;
        last_trim = Instant::now();
        let released = smol::unblock(trim).await;
        let (in_use, free) = heap_usage();
        tracing::debug!(
            closed = newly,
            released,
            in_use,
            free,
            "returned free memory to the system"
        );
    }
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn trim() -> bool {
    // SAFETY: malloc_trim only inspects and releases the allocator's own
    // free lists; it is thread-safe (it takes each arena's lock).
    unsafe { libc::malloc_trim(0) == 1 }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn trim() -> bool {
    false
}

/// Bytes the allocator has handed out and bytes it holds free, over all
/// arenas: what is left after a trim is either still in use or free space
/// pinned between live chunks (fragmentation).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn heap_usage() -> (usize, usize) {
    // SAFETY: mallinfo2 only reads the arenas' statistics under their locks.
    let info = unsafe { libc::mallinfo2() };
    (info.uordblks + info.hblkhd, info.fordblks)
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn heap_usage() -> (usize, usize) {
    (0, 0)
}
