//! The per-address limit on in-band registrations (XEP-0077): an IPv6 /64
//! counts as one address. The operations it limits are in
//! `account_ops.rs`.

use crate::clock::now_ms;
use ipnet::IpNet;
use std::net::IpAddr;
use std::sync::Mutex;
use xmpp_core::modules::register::RegistrationThrottle;
use xmpp_core::throttle::address_key;

/// The limit on in-band registrations per client address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistrationLimit {
    /// Seconds between two accounts created from one address (0 = no
    /// limit): Prosody's `min_seconds_between_registrations`.
    pub min_seconds: u64,
    /// Addresses and networks the limit does not apply to (Prosody's
    /// `registration_whitelist`, loopback by default).
    pub exempt: Vec<IpNet>,
}

impl Default for RegistrationLimit {
    /// Five minutes between registrations; loopback exempt.
    fn default() -> Self {
        RegistrationLimit {
            min_seconds: 300,
            exempt: crate::address_limits::loopback(),
        }
    }
}

/// The limit and its bookkeeping, shared by all connections.
#[derive(Debug)]
pub(crate) struct Registrations {
    state: Mutex<(RegistrationThrottle<IpAddr>, Vec<IpNet>)>,
}

impl Registrations {
    pub(crate) fn new(limit: &RegistrationLimit) -> Self {
        Registrations {
            state: Mutex::new((
                RegistrationThrottle::new(limit.min_seconds.saturating_mul(1000)),
                limit.exempt.clone(),
            )),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, (RegistrationThrottle<IpAddr>, Vec<IpNet>)> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Apply a reloaded limit; `Some((old, new))` describes a change.
    pub(crate) fn set(&self, limit: &RegistrationLimit) -> Option<(String, String)> {
        let mut state = self.lock();
        let describe = |secs: u64, exempt: &[IpNet]| {
            let list: Vec<String> = exempt.iter().map(IpNet::to_string).collect();
            format!("{secs}s, exempt [{}]", list.join(" "))
        };
        let old = describe(state.0.interval() / 1000, &state.1);
        let new = describe(limit.min_seconds, &limit.exempt);
        state.0.set_interval(limit.min_seconds.saturating_mul(1000));
        state.1 = limit.exempt.clone();
        (old != new).then_some((old, new))
    }

    /// Reserve a registration for `peer` now; the time of the reservation,
    /// `Ok(None)` for an exempt or unknown address, `Err` when too soon.
    pub(crate) fn acquire(&self, peer: Option<IpAddr>) -> Result<Option<(IpAddr, u64)>, ()> {
        let Some(ip) = peer.map(|p| p.to_canonical()) else {
            return Ok(None);
        };
        let mut state = self.lock();
        if crate::address_limits::is_listed(&state.1, ip) {
            return Ok(None);
        }
        // One host usually owns a whole IPv6 /64.
        let ip = address_key(ip);
        let now = now_ms();
        state.0.try_acquire(&ip, now).map_err(|_| ())?;
        Ok(Some((ip, now)))
    }

    pub(crate) fn release(&self, reservation: Option<(IpAddr, u64)>) {
        if let Some((ip, at)) = reservation {
            self.lock().0.release(&ip, at);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv6_addresses_of_one_slash_64_share_the_limit() {
        let r = Registrations::new(&RegistrationLimit {
            min_seconds: 60,
            exempt: vec![],
        });
        let a: Option<IpAddr> = "2001:db8:0:1::a".parse().ok();
        let b: Option<IpAddr> = "2001:db8:0:1:ffff::b".parse().ok();
        let c: Option<IpAddr> = "2001:db8:0:2::a".parse().ok();
        assert!(matches!(r.acquire(a), Ok(Some(_))));
        assert!(r.acquire(b).is_err());
        assert!(matches!(r.acquire(c), Ok(Some(_))));
    }
}
