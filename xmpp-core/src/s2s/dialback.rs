//! Server Dialback (XEP-0220) building blocks: keys and wire elements.
//!
//! - [`key`]: the key generation XEP-0185 recommends, with verification in
//!   constant time.
//! - [`element`]: typed `<db:result/>` and `<db:verify/>` in all their
//!   forms (request with a key; `valid`, `invalid`, `error` answers), parsed
//!   from the element tree and written with the `db:` prefix the s2s stream
//!   header declares.
//!
//! Neither is used by a connection yet; the s2s machines will be.

pub mod element;
pub mod key;

pub use element::{
    write_stream_declaration, DbBody, DbResult, DbVerify, DialbackCondition, DialbackDomain,
    DialbackElement, DialbackError, DialbackParseError, StreamId, MAX_ERROR_TEXT_BYTES,
    MAX_STREAM_ID_BYTES,
};
pub use key::{DialbackKey, DialbackSecret, KeyError, MAX_KEY_BYTES};
