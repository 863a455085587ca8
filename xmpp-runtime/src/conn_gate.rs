//! The connection limits per address: bookkeeping ([`ConnectionCounts`],
//! pure on `now`) and the shared gate every new c2s connection passes.

use crate::address_limits::AddressLimits;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use xmpp_core::throttle::{address_key, BoundedTable};
use xmpp_core::time::Millis;

/// Why a connection was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// The address holds its maximum of unauthenticated connections.
    #[error("too many unauthenticated connections from this address")]
    TooMany,
    /// The address opened its maximum of connections this second.
    #[error("too many new connections from this address")]
    TooFast,
}

#[derive(Debug, Clone, Copy)]
struct PerAddress {
    unauthenticated: u32,
    window_start: Millis,
    opened: u32,
}

/// Unauthenticated connections and recent openings per address key, for at
/// most `capacity` keys (the least recently seen are forgotten: an attacker
/// with more addresses than that can only make the gate forget some of its
/// own counts, never grow the table).
#[derive(Debug)]
pub struct ConnectionCounts {
    max_unauthenticated: u32,
    max_new_per_second: u32,
    table: BoundedTable<IpAddr, PerAddress>,
}

impl ConnectionCounts {
    /// Counts under `limits`.
    pub fn new(limits: &AddressLimits) -> Self {
        ConnectionCounts {
            max_unauthenticated: limits.max_unauthenticated,
            max_new_per_second: limits.max_new_per_second,
            table: BoundedTable::new(limits.max_tracked),
        }
    }

    /// Apply reloaded limits; the counts are kept.
    pub fn configure(&mut self, limits: &AddressLimits) {
        self.max_unauthenticated = limits.max_unauthenticated;
        self.max_new_per_second = limits.max_new_per_second;
        self.table.set_capacity(limits.max_tracked);
    }

    /// Addresses remembered.
    pub fn len(&self) -> usize {
        self.table.len()
    }

    /// No address remembered.
    pub fn is_empty(&self) -> bool {
        self.table.is_empty()
    }

    /// Unauthenticated connections of `key`.
    pub fn unauthenticated(&self, key: &IpAddr) -> u32 {
        self.table.get(key).map_or(0, |p| p.unauthenticated)
    }

    /// A connection from `key` opens at `now`: counted as unauthenticated,
    /// or refused. A refused attempt still counts as an opening.
    pub fn open(&mut self, key: &IpAddr, now: Millis) -> Result<(), Refusal> {
        let (max_unauth, max_rate) = (self.max_unauthenticated, self.max_new_per_second);
        let p = self.table.touch(key, || PerAddress {
            unauthenticated: 0,
            window_start: now,
            opened: 0,
        });
        if now.saturating_sub(p.window_start) >= 1_000 {
            p.window_start = now;
            p.opened = 0;
        }
        p.opened = p.opened.saturating_add(1);
        if max_rate > 0 && p.opened > max_rate {
            return Err(Refusal::TooFast);
        }
        if max_unauth > 0 && p.unauthenticated >= max_unauth {
            return Err(Refusal::TooMany);
        }
        p.unauthenticated += 1;
        Ok(())
    }

    /// An unauthenticated connection of `key` authenticated or closed.
    pub fn release(&mut self, key: &IpAddr) {
        if let Some(p) = self.table.get_mut(key) {
            p.unauthenticated = p.unauthenticated.saturating_sub(1);
        }
    }
}

/// The gate shared by the c2s listeners.
#[derive(Debug)]
pub(crate) struct ConnectionGate {
    state: Mutex<(ConnectionCounts, AddressLimits)>,
}

/// An unauthenticated connection's place in its address's count, given
/// back when dropped (at authentication or when the connection ends).
#[derive(Debug)]
pub(crate) struct UnauthenticatedSlot {
    gate: Arc<ConnectionGate>,
    key: IpAddr,
}

impl Drop for UnauthenticatedSlot {
    fn drop(&mut self) {
        self.gate.lock().0.release(&self.key);
    }
}

impl ConnectionGate {
    pub(crate) fn new(limits: &AddressLimits) -> Self {
        ConnectionGate {
            state: Mutex::new((ConnectionCounts::new(limits), limits.clone())),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, (ConnectionCounts, AddressLimits)> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The TLS handshake deadline in force.
    pub(crate) fn tls_handshake_timeout(&self) -> std::time::Duration {
        self.lock().1.tls_handshake_timeout
    }

    /// Apply reloaded limits; `Some((old, new))` describes a change.
    pub(crate) fn set(&self, limits: &AddressLimits) -> Option<(String, String)> {
        let mut state = self.lock();
        let old = state.1.describe();
        state.0.configure(limits);
        state.1 = limits.clone();
        let new = limits.describe();
        (old != new).then_some((old, new))
    }

    /// Admit a connection from `peer` at `now`: its slot (`None` for an
    /// exempt or unknown address), or why it is refused.
    pub(crate) fn admit(
        self: &Arc<Self>,
        peer: Option<IpAddr>,
        now: Millis,
    ) -> Result<Option<UnauthenticatedSlot>, Refusal> {
        let Some(ip) = peer else {
            return Ok(None);
        };
        let mut state = self.lock();
        if state.1.is_exempt(ip) {
            return Ok(None);
        }
        let key = address_key(ip);
        state.0.open(&key, now)?;
        Ok(Some(UnauthenticatedSlot {
            gate: self.clone(),
            key,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(unauth: u32, rate: u32, tracked: usize) -> AddressLimits {
        AddressLimits {
            max_unauthenticated: unauth,
            max_new_per_second: rate,
            max_tracked: tracked,
            ..AddressLimits::default()
        }
    }

    fn ip(last: u8) -> IpAddr {
        IpAddr::from([192, 0, 2, last])
    }

    #[test]
    fn unauthenticated_connections_per_address_are_capped() {
        let mut c = ConnectionCounts::new(&limits(2, 0, 100));
        assert_eq!(c.open(&ip(1), 0), Ok(()));
        assert_eq!(c.open(&ip(1), 0), Ok(()));
        assert_eq!(c.open(&ip(1), 0), Err(Refusal::TooMany));
        // Another address is not affected.
        assert_eq!(c.open(&ip(2), 0), Ok(()));
        c.release(&ip(1));
        assert_eq!(c.open(&ip(1), 0), Ok(()));
        assert_eq!(c.unauthenticated(&ip(1)), 2);
    }

    #[test]
    fn new_connections_per_second_are_capped() {
        let mut c = ConnectionCounts::new(&limits(0, 3, 100));
        for _ in 0..3 {
            assert_eq!(c.open(&ip(1), 10), Ok(()));
        }
        assert_eq!(c.open(&ip(1), 999), Err(Refusal::TooFast));
        assert_eq!(c.open(&ip(2), 999), Ok(()));
        // The next second starts afresh.
        assert_eq!(c.open(&ip(1), 1_010), Ok(()));
    }

    #[test]
    fn many_addresses_stay_bounded() {
        let mut c = ConnectionCounts::new(&limits(1, 1, 1_000));
        for i in 0..100_000u32 {
            let key = IpAddr::from(i.to_be_bytes());
            let _ = c.open(&key, 0);
        }
        assert_eq!(c.len(), 1_000);
        // Releasing a forgotten address is harmless.
        c.release(&IpAddr::from(0u32.to_be_bytes()));
    }

    #[test]
    fn gate_exempts_listed_addresses_and_keys_ipv6_by_prefix() {
        let mut l = limits(1, 0, 100);
        l.exempt = vec![ip(9).into()];
        let gate = Arc::new(ConnectionGate::new(&l));
        for _ in 0..5 {
            assert!(matches!(gate.admit(Some(ip(9)), 0), Ok(None)));
        }
        let a: IpAddr = "2001:db8::1".parse().unwrap_or(ip(0));
        let b: IpAddr = "2001:db8::2:3".parse().unwrap_or(ip(0));
        let slot = gate.admit(Some(a), 0);
        assert!(matches!(slot, Ok(Some(_))));
        // Same /64: refused while the first is unauthenticated.
        assert_eq!(gate.admit(Some(b), 0).err(), Some(Refusal::TooMany));
        drop(slot);
        assert!(matches!(gate.admit(Some(b), 0), Ok(Some(_))));
    }
}
