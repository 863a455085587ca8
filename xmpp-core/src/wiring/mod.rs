//! The rules between machines: which hub partition owns a stanza, which
//! connection holds a resumable session (XEP-0198), and what becomes of
//! what a session leaves behind. Pure, so the runtime (which adds
//! channels, locks and tasks around them) and [`crate::sim::World`] drive
//! the same rules and tests cannot drift from the server.

mod partitions;
mod session_end;
mod sm_registry;

pub use partitions::{Destination, Partitions};
pub use session_end::{hand_back, left_behind, untaken, LeftBehind};
pub use sm_registry::{SmRegistry, MAX_HIBERNATED_PER_ACCOUNT};
