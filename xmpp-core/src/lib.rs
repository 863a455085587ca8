//! Sans-IO XMPP protocol core.
//!
//! Every machine here is a pure transition: bytes, time, random seeds and
//! storage results go in as values; bytes to write, timers, storage requests
//! and events come out as values. Nothing in this crate opens a socket, reads a
//! clock, spawns a thread, touches a file or draws randomness by itself.
#![forbid(unsafe_code)]

pub mod archive;
pub mod bosh;
pub mod entropy;
pub mod http;
pub mod hub;
pub mod jid;
pub mod modules;
pub mod ns;
pub mod portable;
pub mod s2s;
pub mod sasl;
pub mod sim;
pub mod spare;
pub mod stanza;
pub mod storage;
pub mod stream;
pub mod throttle;
pub mod time;
pub mod websocket;
pub mod wiring;
pub mod xml;

pub use entropy::Entropy;
pub use jid::Jid;
pub use xml::Element;
