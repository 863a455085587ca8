//! Latency percentiles and the steady-state window of a measured phase.

use crate::procfs::{Sample, Window};

/// Latencies in µs, collected per task and merged at the end.
#[derive(Debug, Default, Clone)]
pub struct Latencies {
    us: Vec<u32>,
}

impl Latencies {
    /// Room for `n` observations.
    pub fn with_capacity(n: usize) -> Self {
        Latencies {
            us: Vec::with_capacity(n),
        }
    }

    /// Record one latency in µs.
    pub fn push_us(&mut self, us: u64) {
        self.us.push(u32::try_from(us).unwrap_or(u32::MAX));
    }

    /// Record one duration.
    pub fn push(&mut self, d: std::time::Duration) {
        self.push_us(u64::try_from(d.as_micros()).unwrap_or(u64::MAX));
    }

    /// Take another set's observations.
    pub fn merge(&mut self, other: Latencies) {
        self.us.extend(other.us);
    }

    /// How many.
    pub fn len(&self) -> usize {
        self.us.len()
    }

    /// Sort once, then read percentiles.
    pub fn summary(mut self) -> Summary {
        self.us.sort_unstable();
        Summary { sorted: self.us }
    }
}

/// Sorted latencies.
#[derive(Debug)]
pub struct Summary {
    sorted: Vec<u32>,
}

impl Summary {
    /// The `p`-th percentile (0–100) in milliseconds (nearest rank).
    pub fn pct_ms(&self, p: f64) -> f64 {
        if self.sorted.is_empty() {
            return 0.0;
        }
        let rank = ((p / 100.0) * self.sorted.len() as f64).ceil() as usize;
        let i = rank.clamp(1, self.sorted.len()) - 1;
        f64::from(self.sorted[i]) / 1000.0
    }

    /// The largest, in milliseconds.
    pub fn max_ms(&self) -> f64 {
        self.sorted.last().map_or(0.0, |&v| f64::from(v) / 1000.0)
    }
}

/// The steady part of a phase sampled at regular intervals: from the first
/// sample at or past 10% of `total` to the last one at or below 90%, so
/// neither the start-up burst nor the tail of the slowest pairs counts.
/// Falls back to the whole phase when the run is too short for that.
pub fn steady_window(samples: &[Sample], total: u64) -> Option<Window> {
    let (first, last) = (samples.first()?, samples.last()?);
    let lo = total / 10;
    let hi = total - total / 10;
    let a = samples.iter().find(|s| s.done >= lo);
    let b = samples.iter().rev().find(|s| s.done <= hi);
    if let (Some(a), Some(b)) = (a, b) {
        let w = Window::between(a, b);
        // At least 0.5 s and a quarter of the work, else the tick-resolution
        // CPU figures are noise.
        if w.secs >= 0.5 && w.done >= total / 4 {
            return Some(w);
        }
    }
    Some(Window::between(first, last))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles() {
        let mut l = Latencies::default();
        for v in 1..=100u64 {
            l.push_us(v * 1000);
        }
        let s = l.summary();
        assert_eq!(s.pct_ms(50.0), 50.0);
        assert_eq!(s.pct_ms(99.0), 99.0);
        assert_eq!(s.max_ms(), 100.0);
    }
}
