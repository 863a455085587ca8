//! The smol driver for xmpp-core: sockets, TLS, timers and storage backends.
//!
//! The core decides; this crate performs. Each client connection is a task
//! that owns its socket and its `ServerStream` (an external component's, its
//! `ComponentStream`); accounts are spread over hub partitions (one task and
//! one storage thread each) by bare JID, so routing work scales across
//! executor threads.

mod accept;
pub mod accounts;
pub mod admin;
pub mod client;
pub mod clock;
mod component;
mod connection;
mod fences;
mod hub_task;
mod mailbox;
pub mod rate_limit;
pub mod registration;
pub mod reload;
mod resumption;
mod send;
pub mod server;
mod session_end;
mod sm_registry;
pub mod storage;
pub mod tls;
mod transport;

pub use rate_limit::RateLimit;
pub use registration::RegistrationLimit;
pub use reload::{ReloadReport, ServerHandle};
pub use server::{start, ComponentListener, RunningServer, RuntimeConfig, StartError};
