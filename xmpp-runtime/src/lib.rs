//! The smol driver for xmpp-core: sockets, TLS, timers and storage backends.
//!
//! The core decides; this crate performs. Each client connection is a task
//! that owns its socket and its `ServerStream` (an external component's, its
//! `ComponentStream`); accounts are spread over hub partitions (one task and
//! one storage thread each) by bare JID, so routing work scales across
//! executor threads.

mod accept;
mod account_ops;
pub mod accounts;
pub mod address_limits;
pub mod admin;
pub mod auth_throttle;
pub mod client;
pub mod clock;
mod component;
mod config;
pub mod conn_gate;
mod conn_storage;
mod connection;
mod credit;
pub mod decoy_secret;
mod fences;
mod hub_task;
mod kdf_pool;
mod limiters;
mod mailbox;
mod memory;
pub mod rate_limit;
mod refusal_log;
pub mod registration;
mod registry;
pub mod reload;
mod resumption;
mod router;
mod send;
pub mod server;
mod session_end;
mod settings;
mod sm_registry;
pub mod storage;
pub mod tls;
mod transport;

pub use address_limits::AddressLimits;
pub use rate_limit::RateLimit;
pub use registration::RegistrationLimit;
pub use reload::{ReloadReport, ServerHandle};
pub use server::{start, ComponentListener, RunningServer, RuntimeConfig, StartError};
