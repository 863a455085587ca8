//! Refused connections in the log, without the refusals flooding it.
//!
//! A refusal (per-address limits, the server's connection limit) is what an
//! operator wants to see, and what fail2ban can act on; but an attacker at
//! the limit makes thousands a second, and one line each would turn the
//! limit into a disk-filling attack. So the first refusal after a quiet
//! interval is logged at once, with its address, and the rest of the
//! interval is summed up in one line when the next refusal comes after it:
//! how many, and the address that made the most.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long refusals are summed up before they are logged again.
pub(crate) const INTERVAL: Duration = Duration::from_secs(60);

/// Distinct addresses remembered per interval; refusals from more are
/// counted but not attributed.
const MAX_ADDRESSES: usize = 1024;

/// What to log for one refusal.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Line {
    /// Nothing: summed up for later.
    None,
    /// This refusal, the first after a quiet interval.
    First,
    /// The interval before this refusal: `refused` in all, `top` the
    /// address with the most (and its count); then this one, logged as the
    /// first of a new interval.
    Summary {
        refused: u64,
        top: Option<(IpAddr, u64)>,
    },
}

/// The refusals of the current interval.
#[derive(Debug, Default)]
struct Interval {
    started: Option<Instant>,
    refused: u64,
    by_address: HashMap<IpAddr, u64>,
}

impl Interval {
    /// Count a refusal at `now`; what to log for it.
    fn record(&mut self, peer: Option<IpAddr>, now: Instant) -> Line {
        let line = match self.started {
            Some(at) if now.saturating_duration_since(at) < INTERVAL => {
                self.refused += 1;
                if let Some(ip) = peer {
                    if self.by_address.len() < MAX_ADDRESSES || self.by_address.contains_key(&ip) {
                        *self.by_address.entry(ip).or_default() += 1;
                    }
                }
                return Line::None;
            }
            Some(_) if self.refused > 0 => Line::Summary {
                refused: self.refused,
                top: self
                    .by_address
                    .iter()
                    .max_by_key(|(_, n)| **n)
                    .map(|(ip, n)| (*ip, *n)),
            },
            _ => Line::First,
        };
        *self = Interval {
            started: Some(now),
            ..Interval::default()
        };
        line
    }
}

/// The server's refusal log, shared by its accept loops and connections.
#[derive(Debug, Default)]
pub(crate) struct RefusalLog {
    interval: Mutex<Interval>,
}

impl RefusalLog {
    /// A connection from `peer` was refused for `reason`.
    pub(crate) fn refused(&self, peer: Option<IpAddr>, reason: &dyn std::fmt::Display) {
        let line = self
            .interval
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .record(peer, Instant::now());
        if let Line::Summary { refused, top } = &line {
            match top {
                Some((ip, n)) => tracing::warn!(
                    refused,
                    seconds = INTERVAL.as_secs(),
                    top_address = %ip,
                    top_refused = n,
                    "connections refused in the last interval"
                ),
                None => tracing::warn!(
                    refused,
                    seconds = INTERVAL.as_secs(),
                    "connections refused in the last interval"
                ),
            }
        }
        if line != Line::None {
            match peer {
                Some(ip) => tracing::warn!(address = %ip, %reason, "connection refused"),
                None => tracing::warn!(%reason, "connection refused"),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(n: u8) -> Option<IpAddr> {
        Some(IpAddr::from([192, 0, 2, n]))
    }

    #[test]
    fn a_flood_is_one_line_then_one_summary_per_interval() {
        let mut i = Interval::default();
        let t0 = Instant::now();
        assert_eq!(i.record(ip(1), t0), Line::First);
        for k in 0..10_000u32 {
            let at = t0 + Duration::from_millis(u64::from(k % 59_000));
            let who = if k % 10 == 0 { ip(2) } else { ip(1) };
            assert_eq!(i.record(who, at), Line::None);
        }
        assert_eq!(
            i.record(ip(3), t0 + INTERVAL),
            Line::Summary {
                refused: 10_000,
                top: Some((IpAddr::from([192, 0, 2, 1]), 9_000))
            }
        );
        // The one that ended the interval started the next.
        assert_eq!(i.record(ip(3), t0 + INTERVAL), Line::None);
    }

    #[test]
    fn after_a_quiet_interval_a_refusal_is_logged_at_once() {
        let mut i = Interval::default();
        let t0 = Instant::now();
        assert_eq!(i.record(ip(1), t0), Line::First);
        assert_eq!(i.record(ip(1), t0 + 2 * INTERVAL), Line::First);
    }

    #[test]
    fn addresses_beyond_the_cap_are_counted_not_remembered() {
        let mut i = Interval::default();
        let t0 = Instant::now();
        i.record(None, t0);
        for k in 0..(MAX_ADDRESSES as u32 + 500) {
            let a = IpAddr::from(k.to_be_bytes());
            i.record(Some(a), t0);
        }
        assert!(i.by_address.len() <= MAX_ADDRESSES);
        assert_eq!(i.refused, MAX_ADDRESSES as u64 + 500);
    }
}
