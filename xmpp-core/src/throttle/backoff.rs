//! Growing delays after failed attempts (authentication, registration),
//! per key: the first failure costs `base`, each further one doubles it up
//! to `max`; a success or `forget` ms without failures wipes the slate.

use super::table::BoundedTable;
use crate::time::Millis;
use std::hash::Hash;

/// How the delay grows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// Delay after the first failure, ms (0 = no delays, nothing tracked).
    pub base_ms: Millis,
    /// Longest delay, ms.
    pub max_ms: Millis,
    /// A key's failures are forgotten this long after its last one, ms.
    pub forget_ms: Millis,
}

impl Backoff {
    /// The delay owed after `failures` consecutive failures.
    pub fn delay(&self, failures: u32) -> Millis {
        if failures == 0 || self.base_ms == 0 {
            return 0;
        }
        let doublings = (failures - 1).min(40);
        self.base_ms
            .saturating_mul(1u64 << doublings)
            .min(self.max_ms.max(self.base_ms))
    }
}

#[derive(Debug, Clone, Copy)]
struct Record {
    failures: u32,
    last: Millis,
}

/// Failures per key, at most `capacity` keys (the least recently failed
/// are forgotten first).
#[derive(Debug, Clone)]
pub struct FailureBackoff<K> {
    policy: Backoff,
    table: BoundedTable<K, Record>,
}

impl<K: Hash + Eq + Clone> FailureBackoff<K> {
    /// No failures yet.
    pub fn new(policy: Backoff, capacity: usize) -> Self {
        FailureBackoff {
            policy,
            table: BoundedTable::new(capacity),
        }
    }

    /// The policy in force.
    pub fn policy(&self) -> Backoff {
        self.policy
    }

    /// Change the policy and capacity (a configuration reload); history is
    /// kept.
    pub fn configure(&mut self, policy: Backoff, capacity: usize) {
        self.policy = policy;
        self.table.set_capacity(capacity);
    }

    /// Keys with a failure on record.
    pub fn len(&self) -> usize {
        self.table.len()
    }

    /// No failures on record.
    pub fn is_empty(&self) -> bool {
        self.table.is_empty()
    }

    fn live(&self, key: &K, now: Millis) -> Option<Record> {
        self.table
            .get(key)
            .copied()
            .filter(|r| now < r.last.saturating_add(self.policy.forget_ms))
    }

    /// Consecutive failures of `key` still remembered at `now`.
    pub fn failures(&self, key: &K, now: Millis) -> u32 {
        self.live(key, now).map_or(0, |r| r.failures)
    }

    /// How long an attempt by `key` must wait at `now` (0 = go ahead).
    pub fn wait(&self, key: &K, now: Millis) -> Millis {
        self.live(key, now).map_or(0, |r| {
            r.last
                .saturating_add(self.policy.delay(r.failures))
                .saturating_sub(now)
        })
    }

    /// `key` failed at `now`; returns its consecutive failures.
    pub fn failed(&mut self, key: &K, now: Millis) -> u32 {
        if self.policy.base_ms == 0 {
            return 0;
        }
        let previous = self.failures(key, now);
        let record = self.table.touch(key, || Record {
            failures: 0,
            last: now,
        });
        record.failures = previous.saturating_add(1);
        record.last = now;
        record.failures
    }

    /// `key` succeeded: its failures are forgotten.
    pub fn succeeded(&mut self, key: &K) {
        self.table.remove(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const POLICY: Backoff = Backoff {
        base_ms: 250,
        max_ms: 2_000,
        forget_ms: 60_000,
    };

    #[test]
    fn delay_doubles_up_to_the_cap() {
        let d: Vec<Millis> = (0..7).map(|n| POLICY.delay(n)).collect();
        assert_eq!(d, [0, 250, 500, 1_000, 2_000, 2_000, 2_000]);
        assert_eq!(POLICY.delay(u32::MAX), 2_000);
        let off = Backoff {
            base_ms: 0,
            ..POLICY
        };
        assert_eq!(off.delay(5), 0);
    }

    #[test]
    fn waits_grow_and_success_forgets() {
        let mut b = FailureBackoff::new(POLICY, 16);
        assert_eq!(b.wait(&"a", 0), 0);
        assert_eq!(b.failed(&"a", 1_000), 1);
        assert_eq!(b.wait(&"a", 1_000), 250);
        assert_eq!(b.wait(&"a", 1_100), 150);
        assert_eq!(b.wait(&"a", 1_250), 0);
        assert_eq!(b.failed(&"a", 1_300), 2);
        assert_eq!(b.wait(&"a", 1_300), 500);
        assert_eq!(b.failed(&"a", 1_800), 3);
        assert_eq!(b.wait(&"a", 1_800), 1_000);
        // Other keys are not affected.
        assert_eq!(b.wait(&"b", 1_800), 0);
        b.succeeded(&"a");
        assert_eq!(b.wait(&"a", 1_800), 0);
        assert_eq!(b.failed(&"a", 1_900), 1);
    }

    #[test]
    fn failures_are_forgotten_after_a_quiet_period() {
        let mut b = FailureBackoff::new(POLICY, 16);
        for t in 0..5 {
            b.failed(&"a", t);
        }
        assert_eq!(b.failures(&"a", 10), 5);
        assert_eq!(b.failures(&"a", 60_004), 0);
        assert_eq!(b.wait(&"a", 60_004), 0);
        assert_eq!(b.failed(&"a", 60_004), 1);
    }

    #[test]
    fn many_keys_stay_bounded() {
        let mut b = FailureBackoff::new(POLICY, 1_000);
        for k in 0..50_000u32 {
            b.failed(&k, u64::from(k));
        }
        assert_eq!(b.len(), 1_000);
        assert_eq!(b.failures(&49_999, 50_000), 1);
        assert_eq!(b.failures(&0, 50_000), 0);
    }

    #[test]
    fn zero_base_tracks_nothing() {
        let mut b = FailureBackoff::new(
            Backoff {
                base_ms: 0,
                ..POLICY
            },
            16,
        );
        assert_eq!(b.failed(&"a", 0), 0);
        assert!(b.is_empty());
        assert_eq!(b.wait(&"a", 0), 0);
    }
}
