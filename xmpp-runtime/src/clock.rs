//! The runtime's clock and randomness: the only places the core's `now` and
//! seeds come from.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use xmpp_core::time::Millis;
use xmpp_core::Entropy;

/// Wall-clock milliseconds since the Unix epoch.
pub fn now_ms() -> Millis {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as Millis)
        .unwrap_or(0)
}

/// The monotonic instant at which a core deadline (in wall-clock ms) falls.
pub fn instant_for(deadline: Millis) -> Instant {
    let now = now_ms();
    Instant::now() + Duration::from_millis(deadline.saturating_sub(now))
}

/// A fresh entropy source seeded from the operating system.
pub fn entropy() -> Entropy {
    Entropy::new(random_seed())
}

/// 32 random bytes from the OS. If the OS refuses (it practically never
/// does), fall back to time and address bits rather than refusing service;
/// the failure is logged.
pub fn random_seed() -> [u8; 32] {
    let mut seed = [0u8; 32];
    if let Err(e) = getrandom::getrandom(&mut seed) {
        tracing::error!(error = %e, "OS randomness unavailable; using a weak seed");
        let t = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        seed[..16].copy_from_slice(&t.to_le_bytes());
        let addr = &seed as *const _ as usize;
        seed[16..24].copy_from_slice(&addr.to_le_bytes());
    }
    seed
}

/// The timer of a task driving a machine's `poll_timeout`. It is re-armed
/// only when the machine wants an earlier wake-up: a busy connection's
/// deadline keeps moving later, and touching the reactor's timer set on
/// every wake costs more the more sessions are online. A timer that fires
/// early is simply re-armed.
#[derive(Debug)]
pub(crate) struct Alarm {
    timer: smol::Timer,
    armed: Option<Millis>,
}

impl Default for Alarm {
    fn default() -> Self {
        Alarm {
            timer: smol::Timer::never(),
            armed: None,
        }
    }
}

impl Alarm {
    /// The machine wants to be woken at `deadline` (if any).
    pub(crate) fn want(&mut self, deadline: Option<Millis>) {
        if let Some(want) = deadline {
            if self.armed.is_none_or(|a| want < a) {
                self.timer.set_at(instant_for(want));
                self.armed = Some(want);
            }
        }
    }

    /// Wait until the alarm goes off.
    pub(crate) async fn ring(&mut self) {
        (&mut self.timer).await;
        self.armed = None;
    }
}
