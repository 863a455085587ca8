//! Stream machines: c2s (RFC 6120), the server side that accepts clients and
//! the client side that powers examples, tests and the benchmark tool; and
//! both sides of external component streams (XEP-0114).

#[cfg(test)]
mod ack_fence_tests;
#[cfg(test)]
mod auth_tests;
pub mod client;
pub mod component;
pub mod component_client;
mod csi;
mod error;
#[cfg(test)]
mod handover_tests;
pub(crate) mod header;
pub(crate) mod output;
#[cfg(test)]
mod page_tests;
pub mod server;
pub mod sm;
#[cfg(test)]
mod test_support;
#[cfg(test)]
mod websocket_tests;

pub use client::{ClientConfig, ClientOutput, ClientStream};
pub use component::{AcceptOutput, ComponentSecret, ComponentStream, ComponentStreamConfig};
pub use component_client::{ComponentClient, ComponentClientConfig, ComponentOutput};
pub use csi::NS as CSI_NS;
pub use error::StreamErrorCondition;
pub use output::ConnOutput;
pub use server::{
    PasswordCheck, PasswordVerdict, RegistrationConfig, ServerStream, ServerStreamConfig,
};
pub use sm::{SmConfig, SuspendedSession};
