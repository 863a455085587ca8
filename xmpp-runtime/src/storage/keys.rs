//! Key layouts shared by the on-disk backends (sled and redb): raw byte
//! keys, the account first and a NUL after it (account names never contain
//! NUL), big-endian integers so that byte order is numeric order.

use xmpp_core::archive::{ArchiveId, ArchivedMessage};

use super::codec;
use super::StorageError;

/// `account 0x00`: the prefix of all of an account's keys in a table that
/// holds more than one key per account.
pub(crate) fn prefix(account: &str) -> Vec<u8> {
    let mut key = Vec::with_capacity(account.len() + 9);
    key.extend_from_slice(account.as_bytes());
    key.push(0);
    key
}

/// `account 0x01`: the first key past every `account 0x00 ...` key.
pub(crate) fn prefix_end(account: &str) -> Vec<u8> {
    let mut key = Vec::with_capacity(account.len() + 1);
    key.extend_from_slice(account.as_bytes());
    key.push(1);
    key
}

/// `account 0x00 name` (roster items, stored documents).
pub(crate) fn account_key(account: &str, name: &str) -> Vec<u8> {
    let mut key = prefix(account);
    key.extend_from_slice(name.as_bytes());
    key
}

/// `account 0x00 seq`: an offline message.
pub(crate) fn offline_key(account: &str, seq: u64) -> Vec<u8> {
    let mut key = prefix(account);
    key.extend_from_slice(&seq.to_be_bytes());
    key
}

/// Reads a stored big-endian u64 (roster version, offline sequence, totals).
pub(crate) fn be_u64(bytes: &[u8], what: &'static str) -> Result<u64, StorageError> {
    <[u8; 8]>::try_from(bytes)
        .map(u64::from_be_bytes)
        .map_err(|_| StorageError::BadLength(what))
}

/// The sequence number at the end of an offline key.
pub(crate) fn offline_seq(key: &[u8]) -> Result<u64, StorageError> {
    let tail = key.len().saturating_sub(8);
    be_u64(&key[tail..], "offline key")
}

/// Archive keys (XEP-0313); see `sled/archive.rs` for the layout.
pub(crate) mod archive {
    use super::*;

    /// A message: `account 0x00 m id`.
    pub(crate) const MESSAGE: u8 = b'm';
    /// The with-index: `account 0x00 w with-bare 0x00 id`.
    pub(crate) const INDEX: u8 = b'w';
    /// The account's total: `account 0x00 c`.
    pub(crate) const TOTAL: u8 = b'c';
    /// A correspondent's total: `account 0x00 n with-bare`.
    pub(crate) const WITH_TOTAL: u8 = b'n';

    /// `account 0x00 tag`.
    pub(crate) fn tagged(account: &str, tag: u8) -> Vec<u8> {
        let mut k = prefix(account);
        k.push(tag);
        k
    }

    /// `account 0x00 m id`.
    pub(crate) fn key(account: &str, id: ArchiveId) -> Vec<u8> {
        let mut k = tagged(account, MESSAGE);
        k.extend_from_slice(id.as_bytes());
        k
    }

    /// `account 0x00 w with-bare 0x00 id`.
    pub(crate) fn with_key(account: &str, with_bare: &str, id: ArchiveId) -> Vec<u8> {
        let mut k = tagged(account, INDEX);
        k.extend_from_slice(with_bare.as_bytes());
        k.push(0);
        k.extend_from_slice(id.as_bytes());
        k
    }

    /// `account 0x00 n with-bare`.
    pub(crate) fn with_total_key(account: &str, with_bare: &str) -> Vec<u8> {
        let mut k = tagged(account, WITH_TOTAL);
        k.extend_from_slice(with_bare.as_bytes());
        k
    }

    /// The id at the end of a key.
    pub(crate) fn id_of(key: &[u8]) -> Result<ArchiveId, StorageError> {
        key.len()
            .checked_sub(16)
            .and_then(|at| ArchiveId::from_slice(&key[at..]))
            .ok_or(StorageError::BadLength("archive key"))
    }

    /// A stored message from its key and value.
    pub(crate) fn decode(key: &[u8], value: &[u8]) -> Result<ArchivedMessage, StorageError> {
        let id = id_of(key)?;
        let (with, stanza) =
            codec::decode_archived(value).map_err(|source| StorageError::Corrupt {
                what: "archived message",
                source,
            })?;
        Ok(ArchivedMessage { id, with, stanza })
    }

    /// The account at the front of an archive key.
    pub(crate) fn account_of(key: &[u8]) -> Result<String, StorageError> {
        let end = key
            .iter()
            .position(|b| *b == 0)
            .ok_or(StorageError::BadLength("archive key"))?;
        std::str::from_utf8(&key[..end])
            .map(str::to_owned)
            .map_err(|_| StorageError::NotUtf8("account name"))
    }
}
