//! c2s stream machines (RFC 6120): the server side that accepts clients and
//! the client side that powers examples, tests and the benchmark tool.

pub mod client;
mod csi;
mod error;
mod header;
mod output;
pub mod server;

pub use client::{ClientConfig, ClientStream};
pub use csi::NS as CSI_NS;
pub use error::StreamErrorCondition;
pub use output::ConnOutput;
pub use server::{RegistrationConfig, ServerStream, ServerStreamConfig};
