//! A deterministic simulated world, for tests and embedding.
//!
//! Like quinn-proto's test `Pair`: the pure machines of this crate (server
//! streams, the hub, optionally client streams) joined by in-memory queues,
//! with a [`MemoryStore`] answering storage synchronously and simulated time
//! that only moves when the test says so ([`World::advance`],
//! [`World::jump_to_next_timeout`]). Randomness is seeded, so the same
//! inputs produce byte-identical outputs: transcripts, proptests, fuzz
//! targets and examples all reuse it.
//!
//! Nothing here does I/O; it is the reference wiring of the machines that the
//! runtime performs with sockets, TLS, threads and real backends.

pub mod driver;
mod world;

pub use crate::storage::MemoryStore;
pub use world::{ClientEvent, ClientId, World, EPOCH, SIM_ITERATIONS};
