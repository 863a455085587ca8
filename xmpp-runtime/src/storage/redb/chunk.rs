//! A *chunk*: up to [`MAX_MESSAGES`] consecutive messages of one archive
//! in one redb value, the unit the archive table stores (`archive.rs`).
//!
//! One B-tree entry per message cost the indexer ~7 µs per archived copy
//! (an insert per message and per index entry, each a walk and page copies
//! in redb); one entry per chunk divides that by the chunk's size. A page
//! of 50 messages reads one or two chunks, decoding their ids and `with`s
//! in place and copying only the messages it returns.
//!
//! Encoding: version (1), count (u32 LE), then per message id (16), `with`
//! (u16 LE length, bytes), stanza (u32 LE length, bytes), in id order.

use xmpp_core::archive::{ArchiveId, ArchivedMessage};

use crate::storage::StorageError;

const CHUNK_V1: u8 = 1;

/// Most messages in a chunk. Tests use chunks of 4, so that the property
/// tests against the memory store cross chunk boundaries all the time.
pub(super) const MAX_MESSAGES: usize = if cfg!(test) { 4 } else { 64 };

/// An owner's last chunk with at least this many messages is left as it
/// is when newer messages come: they begin a new chunk instead of making
/// the indexer rewrite a nearly full one every round.
pub(super) const FILLED: usize = MAX_MESSAGES / 2;

/// Most bytes of messages in a chunk; a single larger message (a stanza of
/// up to `max_stanza_size`) makes a chunk of its own.
pub(super) const MAX_BYTES: usize = 64 * 1024;

fn corrupt() -> StorageError {
    StorageError::BadLength("archive chunk")
}

/// One message of a chunk, borrowed from the stored value.
#[derive(Debug, Clone, Copy)]
pub(super) struct Entry<'a> {
    pub id: ArchiveId,
    pub with: &'a [u8],
    pub stanza: &'a [u8],
}

impl<'a> Entry<'a> {
    /// The bare JID of `with`.
    pub fn with_bare(&self) -> &'a [u8] {
        match self.with.iter().position(|b| *b == b'/') {
            Some(at) => &self.with[..at],
            None => self.with,
        }
    }

    /// The message, copied out.
    pub fn to_message(self) -> Result<ArchivedMessage, StorageError> {
        let with = self.with;
        let text = |raw: &[u8], what| {
            std::str::from_utf8(raw)
                .map(str::to_owned)
                .map_err(|_| StorageError::NotUtf8(what))
        };
        Ok(ArchivedMessage {
            id: self.id,
            with: text(with, "archived with")?,
            stanza: text(self.stanza, "archived stanza")?,
        })
    }
}

/// Calls `each` with the messages of a stored chunk in order, borrowed
/// from it, until it returns `true`: one parser for decoding a chunk and
/// for the checks that copy nothing (the journal's, for every archived
/// copy; the indexer's look at an owner's last chunk).
fn walk<'a>(raw: &'a [u8], mut each: impl FnMut(Entry<'a>) -> bool) -> Result<(), StorageError> {
    let (&version, rest) = raw.split_first().ok_or_else(corrupt)?;
    if version != CHUNK_V1 {
        return Err(StorageError::Corrupt {
            what: "archive chunk",
            source: crate::storage::codec::DecodeError::UnknownVersion(version),
        });
    }
    let (count, mut rest) = rest.split_first_chunk::<4>().ok_or_else(corrupt)?;
    for _ in 0..u32::from_le_bytes(*count) {
        let (id, r) = rest.split_first_chunk::<16>().ok_or_else(corrupt)?;
        let (with_len, r) = r.split_first_chunk::<2>().ok_or_else(corrupt)?;
        let with_len = usize::from(u16::from_le_bytes(*with_len));
        let with = r.get(..with_len).ok_or_else(corrupt)?;
        let r = &r[with_len..];
        let (stanza_len, r) = r.split_first_chunk::<4>().ok_or_else(corrupt)?;
        let stanza_len = u32::from_le_bytes(*stanza_len) as usize;
        let stanza = r.get(..stanza_len).ok_or_else(corrupt)?;
        rest = &r[stanza_len..];
        let id = ArchiveId::from_slice(id).ok_or_else(corrupt)?;
        if each(Entry { id, with, stanza }) {
            return Ok(());
        }
    }
    if !rest.is_empty() {
        return Err(corrupt());
    }
    Ok(())
}

/// The messages of a stored chunk, in id order.
pub(super) fn decode(raw: &[u8]) -> Result<Vec<Entry<'_>>, StorageError> {
    let mut entries = Vec::new();
    walk(raw, |e| {
        entries.push(e);
        false
    })?;
    Ok(entries)
}

/// Whether a stored chunk holds `id`.
pub(super) fn holds(raw: &[u8], id: ArchiveId) -> Result<bool, StorageError> {
    let mut found = false;
    walk(raw, |e| {
        found = e.id == id;
        found
    })?;
    Ok(found)
}

/// How many messages a stored chunk holds, and its last id.
pub(super) fn tail(raw: &[u8]) -> Result<(usize, Option<ArchiveId>), StorageError> {
    let (mut n, mut last) = (0usize, None);
    walk(raw, |e| {
        n += 1;
        last = Some(e.id);
        false
    })?;
    Ok((n, last))
}

/// Encodes messages (in id order) as a chunk.
pub(super) fn encode<'a>(
    messages: impl ExactSizeIterator<Item = Entry<'a>>,
) -> Result<Vec<u8>, StorageError> {
    let count = u32::try_from(messages.len()).map_err(|_| corrupt())?;
    let mut out = Vec::with_capacity(5 + messages.len() * 600);
    out.push(CHUNK_V1);
    out.extend_from_slice(&count.to_le_bytes());
    for m in messages {
        let with_len = u16::try_from(m.with.len()).map_err(|_| corrupt())?;
        let stanza_len = u32::try_from(m.stanza.len()).map_err(|_| corrupt())?;
        out.extend_from_slice(m.id.as_bytes());
        out.extend_from_slice(&with_len.to_le_bytes());
        out.extend_from_slice(m.with);
        out.extend_from_slice(&stanza_len.to_le_bytes());
        out.extend_from_slice(m.stanza);
    }
    Ok(out)
}

/// The borrowed form of an owned message.
pub(super) fn entry(m: &ArchivedMessage) -> Entry<'_> {
    Entry {
        id: m.id,
        with: m.with.as_bytes(),
        stanza: m.stanza.as_bytes(),
    }
}

/// Cuts messages (in id order) into chunks, filling each in turn: the
/// lengths of the chunks.
pub(super) fn split(messages: &[Entry<'_>]) -> Vec<usize> {
    let mut sizes = Vec::new();
    let (mut n, mut bytes) = (0usize, 0usize);
    for m in messages {
        let b = m.with.len() + m.stanza.len() + 22;
        if n > 0 && (n == MAX_MESSAGES || bytes + b > MAX_BYTES) {
            sizes.push(n);
            n = 0;
            bytes = 0;
        }
        n += 1;
        bytes += b;
    }
    if n > 0 {
        sizes.push(n);
    }
    sizes
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(n: u64, stanza_len: usize) -> ArchivedMessage {
        ArchivedMessage {
            id: ArchiveId::first_at(n),
            with: format!("c{}@x/r", n % 3),
            stanza: "x".repeat(stanza_len),
        }
    }

    #[test]
    fn round_trip_and_every_prefix_is_an_error() {
        let ms: Vec<ArchivedMessage> = (1..5).map(|n| msg(n, 10)).collect();
        let raw = encode(ms.iter().map(entry)).expect("encode");
        let back: Vec<ArchivedMessage> = decode(&raw)
            .expect("decode")
            .into_iter()
            .map(|e| e.to_message().expect("utf8"))
            .collect();
        assert_eq!(back, ms);
        assert_eq!(decode(&raw).expect("decode")[1].with_bare(), b"c2@x");
        for n in 0..raw.len() {
            assert!(decode(&raw[..n]).is_err(), "prefix {n}");
        }
        for m in &ms {
            assert_eq!(holds(&raw, m.id).ok(), Some(true));
        }
        assert_eq!(holds(&raw, ArchiveId::first_at(99)).ok(), Some(false));
        assert_eq!(tail(&raw).ok(), Some((4, Some(ArchiveId::first_at(4)))));
        assert!(holds(&raw[..raw.len() - 1], ArchiveId::first_at(99)).is_err());
        let mut long = raw.clone();
        long.push(0);
        assert!(decode(&long).is_err());
        assert!(decode(&[9, 0, 0, 0, 0]).is_err());
        // A count far beyond the bytes fails without a huge allocation.
        assert!(decode(&[1, 255, 255, 255, 255]).is_err());
    }

    #[test]
    fn split_respects_count_and_bytes() {
        let n = 2 * MAX_MESSAGES + 3;
        let small: Vec<ArchivedMessage> = (0..n as u64).map(|n| msg(n, 10)).collect();
        let e: Vec<Entry> = small.iter().map(entry).collect();
        assert_eq!(split(&e), vec![MAX_MESSAGES, MAX_MESSAGES, 3]);
        let big: Vec<ArchivedMessage> = (0..5).map(|n| msg(n, 40_000)).collect();
        let e: Vec<Entry> = big.iter().map(entry).collect();
        assert_eq!(split(&e), vec![1, 1, 1, 1, 1]);
        let huge = [msg(1, 200_000), msg(2, 10), msg(3, 10)];
        let e: Vec<Entry> = huge.iter().map(entry).collect();
        assert_eq!(split(&e), vec![1, 2]);
        let cut = [msg(1, 60_000), msg(2, 10_000), msg(3, 10)];
        let e: Vec<Entry> = cut.iter().map(entry).collect();
        assert_eq!(split(&e), vec![1, 2]);
        assert!(split(&[]).is_empty());
    }
}
