//! A per-connection token bucket on received bytes: over its budget, a
//! connection is simply read later (as Prosody's mod_limits does), so a
//! flooding client slows itself down without costing anyone else.

use std::time::{Duration, Instant};

/// Bytes per second a client may send, with a burst allowance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    /// Sustained rate.
    pub bytes_per_sec: u32,
    /// Bucket size: bytes that may arrive at once after a quiet period.
    pub burst: u32,
}

/// The bucket of one connection.
#[derive(Debug)]
pub(crate) struct Bucket {
    limit: RateLimit,
    tokens: f64,
    last: Instant,
}

impl Bucket {
    pub(crate) fn new(limit: RateLimit) -> Self {
        Bucket {
            limit,
            tokens: f64::from(limit.burst),
            last: Instant::now(),
        }
    }

    /// Account for `n` received bytes; how long to wait before reading again.
    pub(crate) fn take(&mut self, n: usize, now: Instant) -> Option<Duration> {
        let rate = f64::from(self.limit.bytes_per_sec.max(1));
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = now;
        self.tokens = (self.tokens + elapsed * rate).min(f64::from(self.limit.burst));
        self.tokens -= n as f64;
        (self.tokens < 0.0).then(|| Duration::from_secs_f64(-self.tokens / rate))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bursts_pass_and_floods_wait() {
        let t0 = Instant::now();
        let mut b = Bucket::new(RateLimit {
            bytes_per_sec: 1000,
            burst: 2000,
        });
        assert_eq!(b.take(1500, t0), None);
        // 500 left; 1500 more is 1000 over: one second at 1000 B/s.
        let wait = b.take(1500, t0).expect("over budget");
        assert!((wait.as_secs_f64() - 1.0).abs() < 1e-6);
        // After that second the debt is paid.
        assert_eq!(b.take(0, t0 + Duration::from_secs(1)), None);
    }
}
