//! The per-address limit on in-band registrations: at most one new account
//! per address per interval, as Prosody's `min_seconds_between_registrations`
//! and ejabberd's `registration_timeout` do.
//!
//! Pure bookkeeping on `now` values; the driver owns one, keyed by peer IP,
//! and decides which addresses are exempt.

use crate::spare::ReleaseSpare;
use crate::time::Millis;
use std::collections::HashMap;
use std::hash::Hash;

/// When each address last registered an account.
#[derive(Debug, Clone)]
pub struct RegistrationThrottle<K> {
    interval: Millis,
    last: HashMap<K, Millis>,
}

impl<K: Hash + Eq + Clone> RegistrationThrottle<K> {
    /// One registration per address per `interval` ms (0 = unlimited).
    pub fn new(interval: Millis) -> Self {
        RegistrationThrottle {
            interval,
            last: HashMap::new(),
        }
    }

    /// The interval, ms.
    pub fn interval(&self) -> Millis {
        self.interval
    }

    /// Change the interval (a configuration reload); history is kept.
    pub fn set_interval(&mut self, interval: Millis) {
        self.interval = interval;
    }

    /// Reserve a registration for `key` at `now`: `Ok` when allowed (it
    /// counts from now on, so two concurrent attempts cannot both pass), or
    /// `Err(ms)` with how long the address must still wait.
    pub fn try_acquire(&mut self, key: &K, now: Millis) -> Result<(), Millis> {
        if self.interval == 0 {
            return Ok(());
        }
        if let Some(&at) = self.last.get(key) {
            let until = at.saturating_add(self.interval);
            if now < until {
                return Err(until - now);
            }
        }
        // Forget addresses whose interval is over: the map holds only the
        // registrations of the last interval.
        let interval = self.interval;
        self.last.retain(|_, at| now < at.saturating_add(interval));
        self.last.release_spare();
        self.last.insert(key.clone(), now);
        Ok(())
    }

    /// Give back the reservation made at `at` when no account was created
    /// (taken username, store failure): only creations count.
    pub fn release(&mut self, key: &K, at: Millis) {
        if self.last.get(key) == Some(&at) {
            self.last.remove(key);
        }
    }

    /// Addresses currently limited.
    pub fn len(&self) -> usize {
        self.last.len()
    }

    /// No address is limited.
    pub fn is_empty(&self) -> bool {
        self.last.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_registration_per_interval_per_address() {
        let mut t = RegistrationThrottle::new(60_000);
        assert_eq!(t.try_acquire(&"a", 1_000), Ok(()));
        assert_eq!(t.try_acquire(&"a", 31_000), Err(30_000));
        assert_eq!(t.try_acquire(&"b", 31_000), Ok(()));
        assert_eq!(t.try_acquire(&"a", 61_000), Ok(()));
        // Expired entries are forgotten on the next reservation.
        assert_eq!(t.try_acquire(&"c", 200_000), Ok(()));
        assert_eq!(t.len(), 1);
    }

    #[test]
    fn released_reservations_do_not_count() {
        let mut t = RegistrationThrottle::new(60_000);
        assert_eq!(t.try_acquire(&"a", 1_000), Ok(()));
        t.release(&"a", 1_000);
        assert_eq!(t.try_acquire(&"a", 2_000), Ok(()));
        // A stale release (someone reserved since) changes nothing.
        t.release(&"a", 1_000);
        assert_eq!(t.try_acquire(&"a", 3_000), Err(59_000));
    }

    #[test]
    fn zero_interval_is_unlimited() {
        let mut t = RegistrationThrottle::new(0);
        for now in 0..10 {
            assert_eq!(t.try_acquire(&"a", now), Ok(()));
        }
        assert!(t.is_empty());
        t.set_interval(5);
        assert_eq!(t.interval(), 5);
        assert_eq!(t.try_acquire(&"a", 10), Ok(()));
        assert_eq!(t.try_acquire(&"a", 12), Err(3));
    }
}
