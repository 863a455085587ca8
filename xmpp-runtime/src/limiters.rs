//! The per-address defences every listener shares. Each keeps counts per
//! address (and per account), so a reload reconfigures them in place
//! instead of replacing them with the settings (`settings.rs`).

use crate::address_limits::AddressLimits;
use crate::auth_throttle::AuthThrottle;
use crate::conn_gate::ConnectionGate;
use crate::refusal_log::RefusalLog;
use crate::registration::{RegistrationLimit, Registrations};
use std::sync::Arc;

/// The per-address limiters.
#[derive(Debug)]
pub(crate) struct Limiters {
    /// Unauthenticated connections and openings per client address.
    pub(crate) conn_gate: Arc<ConnectionGate>,
    /// Failed authentications per address and per account.
    pub(crate) auth_throttle: AuthThrottle,
    /// In-band registrations per client address (XEP-0077).
    pub(crate) registrations: Registrations,
    /// Refused connections, summed up in the log (`refusal_log.rs`).
    pub(crate) refusals: RefusalLog,
}

impl Limiters {
    pub(crate) fn new(addresses: &AddressLimits, registrations: &RegistrationLimit) -> Self {
        Limiters {
            conn_gate: Arc::new(ConnectionGate::new(addresses)),
            auth_throttle: AuthThrottle::new(addresses),
            registrations: Registrations::new(registrations),
            refusals: RefusalLog::default(),
        }
    }
}
