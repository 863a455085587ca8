//! The rules between machines: which hub partition owns a stanza, which
//! connection holds a resumable session (XEP-0198), and what becomes of
//! what a session leaves behind. Pure, so the runtime (which adds
//! channels, locks and tasks around them) and [`crate::sim::World`] drive
//! the same rules and tests cannot drift from the server.

mod partitions;

pub use partitions::{Destination, Partitions};
