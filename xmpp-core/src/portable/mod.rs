//! XEP-0227 (Portable Import/Export Format): the pure codec.
//!
//! Why it lives in the core: reading and writing the format is a
//! transformation of values (bytes ↔ records, stored documents ↔
//! elements), with no file or store in sight, like every other machine
//! here. That keeps it fuzzable and testable without a disk, and lets the
//! `vireo` commands that walk a store and write a file (or read one and
//! send storage requests) stay thin drivers.
//!
//! - [`reader`]: a push parser for files of any size (records out, one
//!   bounded unit at a time, errors with line and place);
//! - [`convert`]: the mapping between Vireo's stored data and the format's
//!   elements, both ways (credentials, roster items, archived messages,
//!   PEP nodes);
//! - [`writer`]: the framing of an export (one tag or unit per line, so
//!   the same store always gives the same bytes).
//!
//! The elements are those Prosody's `mod_storage_xep0227` and ejabberd's
//! `ejabberd_piefxis` write (XEP-0227 plus the `urn:xmpp:pie:0#scram` and
//! `#mam` extensions and PEP as `pubsub`/`pubsub#owner`), so their files
//! import here and ours there. What only Vireo keeps (blocklist, archive
//! preferences, push registrations, services' nodes and room archives) is
//! written in Vireo's own namespace, [`NS_VIREO`], which other servers
//! ignore.

pub mod convert;
pub mod reader;
pub mod writer;

pub use reader::{Problem, ReadError, ReadLimits, Reader, Record, Scope};

/// The XEP-0227 namespace (version 1.x).
pub const NS_PIE: &str = "urn:xmpp:pie:0";
/// The namespace of XEP-0227 0.x, which old ejabberd exports still use.
pub const NS_PIEFXIS: &str = "http://www.xmpp.org/extensions/xep-0227.html#ns";
/// SCRAM credentials (the extension Prosody and ejabberd write).
pub const NS_PIE_SCRAM: &str = "urn:xmpp:pie:0#scram";
/// Message archives (Prosody's extension).
pub const NS_PIE_MAM: &str = "urn:xmpp:pie:0#mam";
/// What only Vireo keeps: account documents, services.
pub const NS_VIREO: &str = "urn:vireo:pie:0";
/// XEP-0060 (PEP items).
pub const NS_PUBSUB: &str = "http://jabber.org/protocol/pubsub";
/// XEP-0060 owner namespace (PEP node configuration).
pub const NS_PUBSUB_OWNER: &str = "http://jabber.org/protocol/pubsub#owner";
/// XInclude, which ejabberd's exports use to split hosts into files.
pub const NS_XINCLUDE: &str = "http://www.w3.org/2001/XInclude";

#[cfg(test)]
mod tests;
