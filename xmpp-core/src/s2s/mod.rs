//! Server-to-server federation (RFC 6120 s2s, XEP-0220 Server Dialback).
//!
//! This directory will hold the s2s stream machines — the receiving
//! (inbound, port 5269) and initiating (outbound) streams, both Sans-IO like
//! the c2s machines in [`crate::stream`] — and the pure pieces they are built
//! from. Not yet driven by any connection:
//!
//! - [`dialback`]: XEP-0185 dialback keys and the XEP-0220 `<db:result/>` /
//!   `<db:verify/>` elements.
//! - [`incoming`]: the receiving stream, dialback only so far (no STARTTLS
//!   or SASL EXTERNAL yet): verification requests out, verdicts in,
//!   stanzas routed only from verified domain pairs.
//! - [`outgoing`]: the initiating stream, dialback only so far: our key
//!   out, the verdict in, `db:verify` carried for the incoming side.
//!
//! Certificate identities (RFC 6125) are checked in the runtime, which owns
//! TLS (`xmpp_runtime::tls::peer_identity`).

pub mod dialback;
pub mod incoming;
pub mod outgoing;
mod received;

pub use incoming::{IncomingConfig, IncomingOutput, IncomingStream};
pub use outgoing::{OutgoingConfig, OutgoingOutput, OutgoingStream};

/// Our opening of an s2s stream from `from` to `to`, with the `db:` prefix
/// declared: what the initiating machine writes, for drivers that open a
/// stream without it (`vireo check s2s`).
pub fn stream_header(from: &str, to: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(320);
    crate::stream::header::write_s2s_header(&mut out, Some(from), Some(to), None);
    out
}
