//! The smol driver for xmpp-core: sockets, TLS, timers and storage backends.
//!
//! The core decides; this crate performs. Each client connection is a task
//! that owns its socket and its `ServerStream` (an external component's, its
//! `ComponentStream`); accounts are spread over hub partitions (one task and
//! one storage thread each) by bare JID, so routing work scales across
//! executor threads.
//!
//! The modules form three layers, and a module uses only modules of its own
//! layer or of the layers before it, never in a circle (`layering.rs`
//! checks both): values and leaf services (configuration and the settings a
//! reload swaps, mailboxes, the connection registry, the router to the
//! partitions, storage, TLS, the per-address limiters); then the tasks (hub
//! partitions, client and component connections, the accept loops); then
//! reloading, the admin socket and starting a server.

// Values and leaf services.
pub mod accounts;
pub mod address_limits;
pub mod api_tokens;
pub mod auth_throttle;
mod bosh_pipe;
pub mod client;
pub mod clock;
pub mod component_client;
mod config;
pub mod conn_gate;
mod conn_storage;
mod counts;
mod credit;
pub mod decoy_secret;
mod fences;
mod kdf_pool;
mod limiters;
mod mailbox;
mod metrics;
pub mod rate_limit;
mod refusal_log;
pub mod registration;
mod registry;
mod router;
pub mod s2s;
mod settings;
mod sm_registry;
pub mod storage;
mod timed_store;
pub mod tls;
mod transport;
pub mod upload_store;

// Tasks and what they do.
mod accept;
mod account_ops;
mod component;
mod connection;
mod federation;
mod held;
mod http;
mod hub_task;
mod memory;
mod resumption;
mod send;
mod session_end;

// Reloading, the admin socket and starting a server.
pub mod admin;
pub mod reload;
pub mod server;

#[cfg(test)]
mod layering;

pub use address_limits::AddressLimits;
pub use rate_limit::RateLimit;
pub use registration::RegistrationLimit;
pub use reload::{ReloadReport, ServerHandle};
pub use server::{
    start, BoshHttpConfig, ComponentListener, HttpConfig, RunningServer, RuntimeConfig, S2sStatus,
    StartError, UploadHttpConfig, WebSocketConfig,
};
