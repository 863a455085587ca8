//! A small, explicit binary encoding for the records the on-disk backends
//! (redb and sled) store.
//!
//! Hand-written rather than serde-derived so the on-disk format is visible in
//! one place, cannot change silently when a struct gains a field, and can be
//! decoded defensively: every record starts with a format version byte, every
//! variable-length field is prefixed with its length (u32 big-endian), and
//! decoding a truncated, oversized or otherwise garbled record yields a
//! [`DecodeError`], never a panic or an unbounded allocation.
//!
//! Layouts (version 1):
//!
//! ```text
//! credentials = 0x01 iterations:u32 salt:bytes
//!               sha1_stored:bytes sha1_server:bytes
//!               sha256_stored:bytes sha256_server:bytes
//! roster item = 0x01 jid:str name:opt_str flags:u8 groups:u32 group:str*
//! archived    = 0x01 with:str stanza:str     (the id is the key's tail)
//! bytes/str   = len:u32 data[len]            (str is UTF-8)
//! opt_str     = 0x00 | 0x01 str
//! flags       = bit0 to, bit1 from, bit2 pending_out, bit3 pending_in,
//!               bit4 in_roster; other bits must be zero
//! ```

use xmpp_core::sasl::{ScramKeys, StoredCredentials};
use xmpp_core::storage::{RosterItem, Subscription};

/// Current format version of encoded credentials.
const CREDENTIALS_V1: u8 = 1;
/// Current format version of encoded roster items.
const ROSTER_ITEM_V1: u8 = 1;
/// Current format version of archived messages.
const ARCHIVED_V1: u8 = 1;

const FLAG_TO: u8 = 1 << 0;
const FLAG_FROM: u8 = 1 << 1;
const FLAG_PENDING_OUT: u8 = 1 << 2;
const FLAG_PENDING_IN: u8 = 1 << 3;
const FLAG_IN_ROSTER: u8 = 1 << 4;
const KNOWN_FLAGS: u8 = FLAG_TO | FLAG_FROM | FLAG_PENDING_OUT | FLAG_PENDING_IN | FLAG_IN_ROSTER;

/// Why a stored record could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The record is empty: not even a version byte.
    #[error("empty record")]
    Empty,
    /// Written by a format version this build does not know.
    #[error("unknown record format version {0}")]
    UnknownVersion(u8),
    /// The record ends in the middle of a field.
    #[error("record truncated while reading {0}")]
    Truncated(&'static str),
    /// Bytes remain after the last field.
    #[error("{0} trailing bytes after record")]
    TrailingBytes(usize),
    /// A string field is not valid UTF-8.
    #[error("field {0} is not valid UTF-8")]
    InvalidUtf8(&'static str),
    /// A tag or flag byte has a value the format does not define.
    #[error("invalid value {value:#04x} for {field}")]
    InvalidTag {
        /// The field being decoded.
        field: &'static str,
        /// The offending byte.
        value: u8,
    },
}

/// Encodes credentials in the current format.
pub fn encode_credentials(creds: &StoredCredentials) -> Vec<u8> {
    let mut out = Vec::with_capacity(
        1 + 4
            + 4 * 5
            + creds.salt.len()
            + creds.sha1.stored_key.len()
            + creds.sha1.server_key.len()
            + creds.sha256.stored_key.len()
            + creds.sha256.server_key.len(),
    );
    out.push(CREDENTIALS_V1);
    out.extend_from_slice(&creds.iterations.to_be_bytes());
    put_bytes(&mut out, &creds.salt);
    put_bytes(&mut out, &creds.sha1.stored_key);
    put_bytes(&mut out, &creds.sha1.server_key);
    put_bytes(&mut out, &creds.sha256.stored_key);
    put_bytes(&mut out, &creds.sha256.server_key);
    out
}

/// Decodes credentials written by [`encode_credentials`].
pub fn decode_credentials(buf: &[u8]) -> Result<StoredCredentials, DecodeError> {
    let mut r = Reader::new(buf);
    match r.version()? {
        CREDENTIALS_V1 => {}
        v => return Err(DecodeError::UnknownVersion(v)),
    }
    let iterations = r.u32("iterations")?;
    let salt = r.bytes("salt")?.to_vec();
    let sha1 = ScramKeys {
        stored_key: r.bytes("sha1 stored key")?.to_vec(),
        server_key: r.bytes("sha1 server key")?.to_vec(),
    };
    let sha256 = ScramKeys {
        stored_key: r.bytes("sha256 stored key")?.to_vec(),
        server_key: r.bytes("sha256 server key")?.to_vec(),
    };
    r.finish()?;
    Ok(StoredCredentials {
        iterations,
        salt,
        sha1,
        sha256,
    })
}

/// Encodes a roster item in the current format.
pub fn encode_roster_item(item: &RosterItem) -> Vec<u8> {
    let mut out = Vec::with_capacity(
        1 + 4
            + item.jid.len()
            + 5
            + item.name.as_ref().map_or(0, String::len)
            + 1
            + 4
            + item.groups.iter().map(|g| 4 + g.len()).sum::<usize>(),
    );
    out.push(ROSTER_ITEM_V1);
    put_bytes(&mut out, item.jid.as_bytes());
    match &item.name {
        None => out.push(0),
        Some(name) => {
            out.push(1);
            put_bytes(&mut out, name.as_bytes());
        }
    }
    let s = item.subscription;
    let mut flags = 0;
    for (set, bit) in [
        (s.to, FLAG_TO),
        (s.from, FLAG_FROM),
        (s.pending_out, FLAG_PENDING_OUT),
        (s.pending_in, FLAG_PENDING_IN),
        (item.in_roster, FLAG_IN_ROSTER),
    ] {
        if set {
            flags |= bit;
        }
    }
    out.push(flags);
    put_len(&mut out, item.groups.len());
    for group in &item.groups {
        put_bytes(&mut out, group.as_bytes());
    }
    out
}

/// Encodes an archived message's `with` and stanza (its id is the key).
pub fn encode_archived(with: &str, stanza: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(1 + 8 + with.len() + stanza.len());
    out.push(ARCHIVED_V1);
    put_bytes(&mut out, with.as_bytes());
    put_bytes(&mut out, stanza.as_bytes());
    out
}

/// Decodes what [`encode_archived`] wrote: (with, stanza).
pub fn decode_archived(buf: &[u8]) -> Result<(String, String), DecodeError> {
    let mut r = Reader::new(buf);
    match r.version()? {
        ARCHIVED_V1 => {}
        v => return Err(DecodeError::UnknownVersion(v)),
    }
    let with = r.string("with")?;
    let stanza = r.string("stanza")?;
    r.finish()?;
    Ok((with, stanza))
}

/// Decodes a roster item written by [`encode_roster_item`].
pub fn decode_roster_item(buf: &[u8]) -> Result<RosterItem, DecodeError> {
    let mut r = Reader::new(buf);
    match r.version()? {
        ROSTER_ITEM_V1 => {}
        v => return Err(DecodeError::UnknownVersion(v)),
    }
    let jid = r.string("jid")?;
    let name = match r.u8("name tag")? {
        0 => None,
        1 => Some(r.string("name")?),
        value => {
            return Err(DecodeError::InvalidTag {
                field: "name tag",
                value,
            })
        }
    };
    let flags = r.u8("flags")?;
    if flags & !KNOWN_FLAGS != 0 {
        return Err(DecodeError::InvalidTag {
            field: "flags",
            value: flags,
        });
    }
    let count = r.u32("group count")? as usize;
    // Each group needs at least its 4-byte length, so a count larger than
    // that bound is garbage; checking first keeps a corrupt count from
    // reserving gigabytes.
    if count > r.remaining() / 4 {
        return Err(DecodeError::Truncated("groups"));
    }
    let mut groups = Vec::with_capacity(count);
    for _ in 0..count {
        groups.push(r.string("group")?);
    }
    r.finish()?;
    Ok(RosterItem {
        jid,
        name,
        subscription: Subscription {
            to: flags & FLAG_TO != 0,
            from: flags & FLAG_FROM != 0,
            pending_out: flags & FLAG_PENDING_OUT != 0,
            pending_in: flags & FLAG_PENDING_IN != 0,
        },
        groups,
        in_roster: flags & FLAG_IN_ROSTER != 0,
    })
}

/// Writes a length prefix. Fields longer than `u32::MAX` cannot come from
/// the core (stanza and key sizes are bounded far below), so saturating is
/// only a guard; the matching decode would then report truncation.
fn put_len(out: &mut Vec<u8>, len: usize) {
    let len = u32::try_from(len).unwrap_or(u32::MAX);
    out.extend_from_slice(&len.to_be_bytes());
}

fn put_bytes(out: &mut Vec<u8>, data: &[u8]) {
    put_len(out, data.len());
    out.extend_from_slice(data);
}

/// A cursor over a record that never reads past its end.
struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    fn new(buf: &'a [u8]) -> Self {
        Reader { buf }
    }

    fn remaining(&self) -> usize {
        self.buf.len()
    }

    fn version(&mut self) -> Result<u8, DecodeError> {
        if self.buf.is_empty() {
            return Err(DecodeError::Empty);
        }
        self.u8("version")
    }

    fn take(&mut self, n: usize, field: &'static str) -> Result<&'a [u8], DecodeError> {
        if self.buf.len() < n {
            return Err(DecodeError::Truncated(field));
        }
        let (head, tail) = self.buf.split_at(n);
        self.buf = tail;
        Ok(head)
    }

    fn u8(&mut self, field: &'static str) -> Result<u8, DecodeError> {
        Ok(self.take(1, field)?[0])
    }

    fn u32(&mut self, field: &'static str) -> Result<u32, DecodeError> {
        let b = self.take(4, field)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn bytes(&mut self, field: &'static str) -> Result<&'a [u8], DecodeError> {
        let len = self.u32(field)? as usize;
        self.take(len, field)
    }

    fn string(&mut self, field: &'static str) -> Result<String, DecodeError> {
        let b = self.bytes(field)?;
        std::str::from_utf8(b)
            .map(str::to_owned)
            .map_err(|_| DecodeError::InvalidUtf8(field))
    }

    fn finish(self) -> Result<(), DecodeError> {
        if self.buf.is_empty() {
            Ok(())
        } else {
            Err(DecodeError::TrailingBytes(self.buf.len()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn creds() -> StoredCredentials {
        StoredCredentials {
            iterations: 4096,
            salt: b"salty".to_vec(),
            sha1: ScramKeys {
                stored_key: vec![1; 20],
                server_key: vec![2; 20],
            },
            sha256: ScramKeys {
                stored_key: vec![3; 32],
                server_key: vec![4; 32],
            },
        }
    }

    fn item() -> RosterItem {
        RosterItem {
            jid: "juliet@example.com".into(),
            name: Some("Juliet ☀".into()),
            subscription: Subscription {
                to: true,
                from: false,
                pending_out: false,
                pending_in: true,
            },
            groups: vec!["Friends".into(), "".into(), "Verona".into()],
            in_roster: true,
        }
    }

    #[test]
    fn credentials_roundtrip() {
        let c = creds();
        assert_eq!(decode_credentials(&encode_credentials(&c)), Ok(c));
    }

    #[test]
    fn roster_item_roundtrip() {
        let i = item();
        assert_eq!(decode_roster_item(&encode_roster_item(&i)), Ok(i));
        let bare = RosterItem {
            jid: "romeo@example.net".into(),
            name: None,
            subscription: Subscription::default(),
            groups: vec![],
            in_roster: false,
        };
        assert_eq!(decode_roster_item(&encode_roster_item(&bare)), Ok(bare));
    }

    #[test]
    fn every_truncation_is_an_error() {
        let c = encode_credentials(&creds());
        for n in 0..c.len() {
            assert!(decode_credentials(&c[..n]).is_err(), "prefix {n}");
        }
        let i = encode_roster_item(&item());
        for n in 0..i.len() {
            assert!(decode_roster_item(&i[..n]).is_err(), "prefix {n}");
        }
        let a = encode_archived("bob@x/r", "<message/>");
        assert_eq!(
            decode_archived(&a),
            Ok(("bob@x/r".to_owned(), "<message/>".to_owned()))
        );
        for n in 0..a.len() {
            assert!(decode_archived(&a[..n]).is_err(), "prefix {n}");
        }
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        let mut c = encode_credentials(&creds());
        c.push(0);
        assert_eq!(decode_credentials(&c), Err(DecodeError::TrailingBytes(1)));
        assert_eq!(decode_credentials(&[]), Err(DecodeError::Empty));
        assert_eq!(
            decode_roster_item(&[9, 0, 0]),
            Err(DecodeError::UnknownVersion(9))
        );
        // Huge group count with nothing behind it.
        let mut i = vec![ROSTER_ITEM_V1, 0, 0, 0, 1, b'a', 0, 0];
        i.extend_from_slice(&u32::MAX.to_be_bytes());
        assert_eq!(
            decode_roster_item(&i),
            Err(DecodeError::Truncated("groups"))
        );
        // Undefined flag bit.
        let i = [ROSTER_ITEM_V1, 0, 0, 0, 1, b'a', 0, 0x80, 0, 0, 0, 0];
        assert!(matches!(
            decode_roster_item(&i),
            Err(DecodeError::InvalidTag { field: "flags", .. })
        ));
        // Invalid UTF-8 in the jid.
        let i = [ROSTER_ITEM_V1, 0, 0, 0, 1, 0xff, 0, 0, 0, 0, 0, 0];
        assert_eq!(decode_roster_item(&i), Err(DecodeError::InvalidUtf8("jid")));
        // A cheap deterministic sweep over pseudo-random inputs.
        let mut x: u32 = 0x1234_5678;
        for len in 0..200 {
            let buf: Vec<u8> = (0..len)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 17;
                    x ^= x << 5;
                    (x & 0xff) as u8
                })
                .collect();
            let _ = decode_credentials(&buf);
            let _ = decode_roster_item(&buf);
            let _ = decode_archived(&buf);
        }
    }
}
