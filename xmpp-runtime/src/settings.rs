//! The settings a reload may change while serving, as one immutable value.
//!
//! A reload builds a whole new [`Settings`] and swaps it in one step, and a
//! connection takes one snapshot when it starts: so no connection ever sees
//! the new certificate with the old stream settings, or the new SCRAM
//! iteration count with the old decoy, as separately locked fields allowed.

use crate::config::RuntimeConfig;
use crate::rate_limit::RateLimit;
use crate::tls::ServerTls;
use std::sync::{Arc, RwLock};
use xmpp_core::stream::ServerStreamConfig;

/// What new connections are served with. (No `Debug`: it holds the key.)
#[derive(Clone)]
pub(crate) struct Settings {
    /// c2s stream settings (an `Arc`: every connection's stream keeps one).
    pub(crate) stream: Arc<ServerStreamConfig>,
    /// Certificate and key for TLS handshakes.
    pub(crate) tls: Option<Arc<ServerTls>>,
    /// Per-connection limit on received bytes.
    pub(crate) rate_limit: Option<RateLimit>,
    /// Refuse connections beyond this many.
    pub(crate) max_connections: usize,
    /// PBKDF2 iterations for passwords set in-band or by the admin socket.
    pub(crate) scram_iterations: u32,
}

impl Settings {
    /// The settings a server starts with.
    pub(crate) fn new(cfg: &RuntimeConfig) -> Self {
        let mut stream = cfg.stream.clone();
        // Fixed at start: the listeners offer STARTTLS only with a
        // certificate.
        stream.starttls_available = cfg.tls.is_some();
        Settings {
            stream: Arc::new(stream),
            tls: cfg.tls.clone(),
            rate_limit: cfg.c2s_rate_limit,
            max_connections: cfg.max_connections,
            scram_iterations: cfg.scram_iterations,
        }
    }
}

/// The current [`Settings`], swapped whole.
pub(crate) struct SettingsCell {
    current: RwLock<Arc<Settings>>,
}

impl SettingsCell {
    pub(crate) fn new(settings: Settings) -> Self {
        SettingsCell {
            current: RwLock::new(Arc::new(settings)),
        }
    }

    /// A snapshot of the settings in force.
    pub(crate) fn current(&self) -> Arc<Settings> {
        // A poisoned lock still holds a whole value: nothing is written in
        // place.
        self.current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Replace the settings with what `update` makes of the current ones,
    /// in one step; reloads run one at a time, so none is lost to another.
    pub(crate) fn update<R>(&self, update: impl FnOnce(&Settings) -> (Settings, R)) -> R {
        let mut current = self.current.write().unwrap_or_else(|e| e.into_inner());
        let (fresh, result) = update(&current);
        *current = Arc::new(fresh);
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_snapshot_survives_an_update() {
        let cell = SettingsCell::new(Settings::new(&RuntimeConfig::default()));
        let before = cell.current();
        let old_max = cell.update(|s| {
            let fresh = Settings {
                max_connections: 7,
                ..s.clone()
            };
            (fresh, s.max_connections)
        });
        assert_eq!(old_max, before.max_connections);
        assert_eq!(cell.current().max_connections, 7);
        assert_ne!(before.max_connections, 7, "the snapshot stays as it was");
        assert!(!cell.current().stream.starttls_available, "no certificate");
    }
}
