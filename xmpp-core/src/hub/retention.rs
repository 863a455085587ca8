//! Archive retention (XEP-0313 §3.1): the hub's timer, which deletes the
//! messages older than the configured retention, oldest first, in bounded
//! batches that continue while full.

use super::{Hub, Pending};
use crate::storage::{StorageRequest, StorageResult};
use crate::time::Millis;

/// Deletions one purge request may make before handing the storage thread
/// back to other work.
pub(crate) const PURGE_BATCH: u64 = 10_000;

impl Hub {
    /// Whether this hub runs the retention purge. A server with several
    /// partitions sharing one store lets one of them do it.
    pub fn set_archive_purger(&mut self, purger: bool) {
        self.archive.purger = purger;
    }

    /// When the hub next wants [`Hub::handle_timeout`] (the retention
    /// purge), if ever.
    pub fn poll_timeout(&self) -> Option<Millis> {
        let a = &self.archive;
        let on = self.enabled("mam") && self.cfg.archive.retention.is_some() && a.purger;
        if !on || a.purging {
            return None;
        }
        let started = self.started?;
        Some(
            a.next_purge
                .unwrap_or(started.saturating_add(self.cfg.archive.first_purge_delay)),
        )
    }

    /// Time has reached [`Hub::poll_timeout`]: start (or continue) a purge.
    pub fn handle_timeout(&mut self, now: Millis) {
        self.tick(now);
        let (Some(due), Some(retention)) = (self.poll_timeout(), self.cfg.archive.retention) else {
            return;
        };
        if now < due {
            return;
        }
        self.archive.purging = true;
        let request = StorageRequest::PurgeArchive {
            before: now.saturating_sub(retention),
            from: self.archive.cursor.take(),
            limit: PURGE_BATCH,
        };
        self.request(request, Pending::Purge);
    }

    pub(super) fn purge_done(&mut self, result: StorageResult) {
        self.archive.purging = false;
        match result {
            StorageResult::Purged { removed, next } => {
                if removed > 0 {
                    tracing::info!(removed, "expired archived messages deleted");
                }
                // A full batch continues at once; otherwise wait an interval.
                self.archive.next_purge = Some(if next.is_some() {
                    self.now
                } else {
                    self.now.saturating_add(self.cfg.archive.purge_interval)
                });
                self.archive.cursor = next;
            }
            other => {
                tracing::error!(?other, "archive purge failed");
                self.archive.next_purge =
                    Some(self.now.saturating_add(self.cfg.archive.purge_interval));
            }
        }
    }
}
