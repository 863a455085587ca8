//! XMPP over WebSocket (RFC 7395), lowest layer: the RFC 6455 framing and
//! the pure parts of the opening handshake, server side only.
//!
//! Nothing here reads a socket or parses HTTP: the driver hands the
//! decoder the bytes it read and the handshake the header values its HTTP
//! layer found, and writes what comes back.
//!
//! - [`frame`]: [`FrameDecoder`], client frames in, [`Message`]s out,
//!   within a byte budget decided from each frame's header.
//! - [`header`]: one frame header, read and checked byte by byte.
//! - [`close`]: close codes, which may be received, and the close payload.
//! - [`encode`]: server frames out (never masked).
//! - [`handshake`]: `Sec-WebSocket-Accept`, the `xmpp` subprotocol, the 101
//!   response or a typed refusal.
//! - [`error`]: [`WsError`], each carrying the close code to answer with.

pub mod close;
pub mod encode;
pub mod error;
pub mod frame;
pub mod handshake;
pub mod header;

#[cfg(test)]
mod frame_tests;
#[cfg(test)]
mod props_tests;
#[cfg(test)]
pub(crate) mod test_client;

pub use close::CloseFrame;
pub use error::WsError;
pub use frame::{FrameDecoder, FrameLimits, Message};
pub use handshake::{accept, Accepted, HandshakeError, UpgradeRequest};
