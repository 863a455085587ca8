//! XMPP over WebSocket (RFC 7395), lowest layer: the RFC 6455 framing and
//! the pure parts of the opening handshake, server side only.
//!
//! - [`header`]: one frame header, read and checked byte by byte.
//! - [`close`]: close codes, which may be received, and the close payload.
//! - [`error`]: [`WsError`], each carrying the close code to answer with.

pub mod close;
pub mod error;
pub mod header;

pub use close::CloseFrame;
pub use error::WsError;
