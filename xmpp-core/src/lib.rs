//! Sans-IO XMPP protocol core.
//!
//! Every machine here is a pure transition: bytes, time, random seeds and
//! storage results go in as values; bytes to write, timers, storage requests
//! and events come out as values. Nothing in this crate opens a socket, reads a
//! clock, spawns a thread, touches a file or draws randomness by itself.
#![forbid(unsafe_code)]

pub mod jid;
pub mod sasl;
pub mod storage;
pub mod xml;
