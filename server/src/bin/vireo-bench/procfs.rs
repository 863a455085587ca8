//! What the benchmark reads from the operating system: the server's CPU time
//! and resident memory from `/proc/PID/{stat,status}`, the generator's own
//! RSS, and the open-file limit it raises at start.

use std::time::Instant;

/// Clock ticks per second for `/proc/PID/stat` times.
fn clock_ticks() -> u64 {
    // SAFETY: sysconf has no preconditions.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 {
        t as u64
    } else {
        100
    }
}

/// Total CPU time (user + system, all threads, in µs) of process `pid`,
/// from fields 14 and 15 of `/proc/PID/stat` (clock-tick resolution).
pub fn cpu_us(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) is in parentheses and may contain spaces.
    let after = &stat[stat.rfind(')')? + 1..];
    let mut fields = after.split_ascii_whitespace();
    // `after` starts at field 3 (state): utime is field 14, stime field 15.
    let utime: u64 = fields.nth(11)?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some((utime + stime) * 1_000_000 / clock_ticks())
}

/// `VmRSS` of process `pid`, in KiB.
pub fn rss_kib(pid: u32) -> Option<u64> {
    status_kib(&format!("/proc/{pid}/status"), "VmRSS:")
}

/// `VmHWM` of process `pid` (its highest RSS so far), in KiB.
pub fn peak_rss_kib(pid: u32) -> Option<u64> {
    status_kib(&format!("/proc/{pid}/status"), "VmHWM:")
}

/// This process's `VmRSS`, in KiB.
pub fn self_rss_kib() -> Option<u64> {
    status_kib("/proc/self/status", "VmRSS:")
}

fn status_kib(path: &str, key: &str) -> Option<u64> {
    let status = std::fs::read_to_string(path).ok()?;
    let line = status.lines().find(|l| l.starts_with(key))?;
    line[key.len()..]
        .split_ascii_whitespace()
        .next()?
        .parse()
        .ok()
}

/// The open-file limit after [`raise_nofile`]: `(soft, hard)`.
#[derive(Debug, Clone, Copy)]
pub struct NoFile {
    /// Soft limit in force.
    pub soft: u64,
    /// Hard limit.
    pub hard: u64,
}

/// Raise this process's open-file soft limit to the hard limit (each
/// session is a socket; thousands of idle sessions need it).
pub fn raise_nofile() -> NoFile {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `lim` is a valid, writable rlimit.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        return NoFile { soft: 0, hard: 0 };
    }
    if lim.rlim_cur < lim.rlim_max {
        let raised = libc::rlimit {
            rlim_cur: lim.rlim_max,
            rlim_max: lim.rlim_max,
        };
        // SAFETY: `raised` is a valid rlimit; failure leaves the old limit.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } == 0 {
            lim = raised;
        }
    }
    NoFile {
        soft: lim.rlim_cur,
        hard: lim.rlim_max,
    }
}

/// One observation of the server during a measured phase.
#[derive(Debug, Clone, Copy)]
pub struct Sample {
    /// When.
    pub at: Instant,
    /// The scenario's progress counter (messages delivered, ...).
    pub done: u64,
    /// Server CPU time so far, µs (`None` without `--server-pid`).
    pub cpu_us: Option<u64>,
}

impl Sample {
    /// Observe now.
    pub fn take(pid: Option<u32>, done: u64) -> Sample {
        Sample {
            at: Instant::now(),
            done,
            cpu_us: pid.and_then(cpu_us),
        }
    }
}

/// Rate and server CPU between two samples.
#[derive(Debug, Clone, Copy)]
pub struct Window {
    /// Seconds between the samples.
    pub secs: f64,
    /// Progress between the samples.
    pub done: u64,
    /// Server CPU between the samples, µs.
    pub cpu_us: Option<u64>,
}

impl Window {
    /// The window from `a` to `b`.
    pub fn between(a: &Sample, b: &Sample) -> Window {
        Window {
            secs: b.at.saturating_duration_since(a.at).as_secs_f64(),
            done: b.done.saturating_sub(a.done),
            cpu_us: match (a.cpu_us, b.cpu_us) {
                (Some(x), Some(y)) => Some(y.saturating_sub(x)),
                _ => None,
            },
        }
    }

    /// Progress per second.
    pub fn rate(&self) -> f64 {
        if self.secs > 0.0 {
            self.done as f64 / self.secs
        } else {
            0.0
        }
    }

    /// Server CPU µs per unit of progress.
    pub fn cpu_per_unit(&self) -> Option<f64> {
        let cpu = self.cpu_us?;
        (self.done > 0).then(|| cpu as f64 / self.done as f64)
    }

    /// Server CPU use as a fraction of one core.
    pub fn cpu_cores(&self) -> Option<f64> {
        let cpu = self.cpu_us?;
        (self.secs > 0.0).then(|| cpu as f64 / 1e6 / self.secs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_own_process() {
        assert!(self_rss_kib().is_some_and(|k| k > 0));
        assert!(cpu_us(std::process::id()).is_some());
    }
}
