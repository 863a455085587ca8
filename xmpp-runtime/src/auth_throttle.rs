//! The failure backoff for authentication and registration, per address
//! (an IPv6 /64) and per account, and the log line for fail2ban.
//!
//! An attempt waits until its address's and its account's delays are over
//! (they grow with each failure, up to a cap); a success forgets the
//! account's failures. The address's failures are forgotten only after a
//! quiet period: otherwise an attacker holding one valid account could wipe
//! its address's record between guesses.

use crate::address_limits::AddressLimits;
use std::net::IpAddr;
use std::sync::Mutex;
use xmpp_core::sasl::{Mechanism, SaslFailure};
use xmpp_core::throttle::{address_key, FailureBackoff};
use xmpp_core::time::Millis;

/// The `tracing` target of the failure log line (fail2ban's filter matches
/// it; see spec/security.md).
pub const AUTH_LOG_TARGET: &str = "vireo::auth";

#[derive(Debug)]
struct State {
    by_address: FailureBackoff<IpAddr>,
    by_account: FailureBackoff<String>,
    limits: AddressLimits,
}

/// Shared by every connection.
#[derive(Debug)]
pub(crate) struct AuthThrottle {
    state: Mutex<State>,
}

impl AuthThrottle {
    pub(crate) fn new(limits: &AddressLimits) -> Self {
        AuthThrottle {
            state: Mutex::new(State {
                by_address: FailureBackoff::new(limits.auth_backoff, limits.max_tracked),
                by_account: FailureBackoff::new(limits.auth_backoff, limits.max_tracked),
                limits: limits.clone(),
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Apply reloaded limits; failures on record are kept.
    pub(crate) fn set(&self, limits: &AddressLimits) {
        let mut s = self.lock();
        s.by_address
            .configure(limits.auth_backoff, limits.max_tracked);
        s.by_account
            .configure(limits.auth_backoff, limits.max_tracked);
        s.limits = limits.clone();
    }

    /// The per-address key of `peer`, unless it is exempt.
    fn key(s: &State, peer: Option<IpAddr>) -> Option<IpAddr> {
        peer.filter(|ip| !s.limits.is_exempt(*ip)).map(address_key)
    }

    /// How long an attempt by `peer` (on `account`, if known) must wait at
    /// `now`, ms.
    pub(crate) fn wait(&self, peer: Option<IpAddr>, account: Option<&str>, now: Millis) -> Millis {
        let s = self.lock();
        let by_address = Self::key(&s, peer).map_or(0, |k| s.by_address.wait(&k, now));
        let by_account = account.map_or(0, |a| s.by_account.wait(&a.to_owned(), now));
        by_address.max(by_account)
    }

    /// An attempt failed: count it for the address and, if `counted` names
    /// it, the account; log it (one line per failure, with the address, for
    /// fail2ban) under `account`.
    fn failed(
        &self,
        peer: Option<IpAddr>,
        counted: Option<&str>,
        account: Option<&str>,
        what: &str,
        reason: &str,
        now: Millis,
    ) {
        let (address_failures, account_failures) = {
            let mut s = self.lock();
            let by_address = Self::key(&s, peer).map_or(0, |k| s.by_address.failed(&k, now));
            let by_account = counted.map_or(0, |a| s.by_account.failed(&a.to_owned(), now));
            (by_address, by_account)
        };
        let address = peer.map_or_else(|| "unknown".to_owned(), |p| p.to_canonical().to_string());
        tracing::warn!(
            target: AUTH_LOG_TARGET,
            address = %address,
            account = %account.unwrap_or("-"),
            mechanism = %what,
            reason = %reason,
            address_failures,
            account_failures,
            "authentication failed"
        );
    }

    /// A SASL attempt failed.
    pub(crate) fn sasl_failed(
        &self,
        peer: Option<IpAddr>,
        account: Option<&str>,
        mechanism: Option<Mechanism>,
        failure: SaslFailure,
        now: Millis,
    ) {
        let what = mechanism.as_ref().map_or("-", Mechanism::name);
        self.failed(peer, account, account, what, failure.condition(), now);
    }

    /// An in-band registration of `account` was refused (`reason`): it
    /// counts for the address only (someone else's taken name must not slow
    /// down its owner's logins), and is logged like a failed login.
    pub(crate) fn registration_failed(
        &self,
        peer: Option<IpAddr>,
        account: &str,
        reason: &str,
        now: Millis,
    ) {
        self.failed(peer, None, Some(account), "register", reason, now);
    }

    /// `account` authenticated: its failures are forgotten.
    pub(crate) fn succeeded(&self, account: &str) {
        self.lock().by_account.succeeded(&account.to_owned());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use xmpp_core::throttle::Backoff;

    fn throttle(exempt: Vec<IpAddr>) -> AuthThrottle {
        AuthThrottle::new(&AddressLimits {
            exempt: exempt.into_iter().map(ipnet::IpNet::from).collect(),
            auth_backoff: Backoff {
                base_ms: 100,
                max_ms: 1_000,
                forget_ms: 60_000,
            },
            ..AddressLimits::default()
        })
    }

    const A: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 1));
    const B: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 2));

    #[test]
    fn address_and_account_back_off_separately() {
        let t = throttle(vec![]);
        t.sasl_failed(
            Some(A),
            Some("alice@x"),
            Some(Mechanism::Plain),
            SaslFailure::NotAuthorized,
            0,
        );
        t.sasl_failed(
            Some(A),
            Some("alice@x"),
            Some(Mechanism::Plain),
            SaslFailure::NotAuthorized,
            0,
        );
        assert_eq!(t.wait(Some(A), None, 0), 200);
        // Another address on the same account waits for the account.
        assert_eq!(t.wait(Some(B), Some("alice@x"), 0), 200);
        assert_eq!(t.wait(Some(B), Some("bob@x"), 0), 0);
        // Success forgets the account, not the address.
        t.succeeded("alice@x");
        assert_eq!(t.wait(Some(B), Some("alice@x"), 0), 0);
        assert_eq!(t.wait(Some(A), Some("alice@x"), 0), 200);
    }

    #[test]
    fn exempt_addresses_still_count_per_account() {
        let t = throttle(vec![A]);
        for _ in 0..3 {
            t.sasl_failed(
                Some(A),
                Some("alice@x"),
                Some(Mechanism::Plain),
                SaslFailure::NotAuthorized,
                0,
            );
        }
        assert_eq!(t.wait(Some(A), None, 0), 0);
        assert_eq!(t.wait(Some(A), Some("alice@x"), 0), 400);
    }

    #[test]
    fn refused_registrations_count_for_the_address_only() {
        let t = throttle(vec![]);
        t.registration_failed(Some(A), "alice@x", "conflict", 0);
        t.registration_failed(Some(A), "alice@x", "conflict", 0);
        assert_eq!(t.wait(Some(A), None, 0), 200);
        assert_eq!(t.wait(Some(B), Some("alice@x"), 0), 0);
    }
}
