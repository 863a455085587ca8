//! The smol driver for xmpp-core: sockets, TLS, timers and storage backends.

pub mod storage;
pub mod tls;
