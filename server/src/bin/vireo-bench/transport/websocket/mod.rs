//! XMPP over WebSocket (RFC 7395), the client side, for the load
//! generator: plain `ws://` only (loopback benchmarks).
//!
//! - [`upgrade`]: the HTTP/1.1 upgrade to the `xmpp` subprotocol.
//! - [`frames`]: RFC 6455 frames, masked out and unmasked in.
//! - [`framing`]: the TCP stream of xmpp-core's client machine to and
//!   from one element per message, `<open/>` and `<close/>`.
//! - [`client`]: [`WsClient`], the machine driven over all three.

mod client;
mod frames;
mod framing;
mod upgrade;

pub use client::WsClient;
