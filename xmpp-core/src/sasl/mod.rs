//! SASL mechanisms (RFC 4422): SCRAM (RFC 5802, RFC 7677) with channel
//! binding (RFC 5929, RFC 9266) and PLAIN (RFC 4616).
//!
//! Sans-IO like the rest of the crate: nonces and salts come in as bytes from
//! the caller, nothing here reads a clock or draws randomness, and every
//! input is size-bounded and parsed without panicking.

mod authzid;
mod channel_binding;
mod credentials;
mod failure;
pub(crate) mod hash;
mod mechanism;
mod message;
mod plain;
mod scram;
mod scram_client;

#[cfg(test)]
mod tests;

pub use channel_binding::{ChannelBinding, ChannelBindingType};
pub use credentials::{prepare_password, ScramKeys, StoredCredentials, MIN_ITERATIONS};
pub use failure::SaslFailure;
pub(crate) use hash::ct_eq;
pub use mechanism::Mechanism;
pub use message::MAX_MESSAGE_LEN;
pub use plain::{parse_plain, plain_message, PlainCredentials};
pub use scram::{ClientFirst, ScramServer};
pub use scram_client::{ScramClient, ScramClientKeys, MAX_CLIENT_ITERATIONS};
