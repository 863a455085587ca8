//! Per-address and per-account bookkeeping for abuse limits: pure, on `now`
//! values, and bounded in memory so that an attacker with many addresses
//! cannot grow it without limit. The driver owns the tables and decides
//! which addresses are exempt.

mod address;
mod backoff;
mod table;

pub use address::address_key;
pub use backoff::{Backoff, FailureBackoff};
pub use table::BoundedTable;
