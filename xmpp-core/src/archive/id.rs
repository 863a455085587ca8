//! Archive ids (XEP-0313 UIDs, XEP-0359 stanza-ids): unique within an
//! archive, never reused, and sortable by the time the message was archived.
//!
//! An id is 16 bytes: the archive time in milliseconds (u64 big-endian), a
//! counter (u16 big-endian) ordering ids of the same millisecond, and six
//! random bytes. Because the time leads, the byte order of ids is the
//! archive's chronological order, so a store keyed by `account ‖ id` needs no
//! second index to page by time or to find an id. The random tail keeps ids
//! unique when a restarted server (or a clock set back) reaches a
//! millisecond and counter it used before.
//!
//! On the wire an id is those 128 bits in Crockford base32, 26 characters,
//! like a ULID: fixed length and an alphabet in ASCII order, so the strings
//! sort like the ids.

use crate::entropy::Entropy;
use crate::time::Millis;

/// Crockford's base32 alphabet, in ASCII order.
const ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";

/// Length of an id's text form.
pub const TEXT_LEN: usize = 26;

/// One archive id. `Ord` is chronological order.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ArchiveId([u8; 16]);

impl std::fmt::Debug for ArchiveId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ArchiveId({self})")
    }
}

impl std::fmt::Display for ArchiveId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text())
    }
}

impl ArchiveId {
    /// The smallest id.
    pub const MIN: ArchiveId = ArchiveId([0; 16]);
    /// The largest id.
    pub const MAX: ArchiveId = ArchiveId([0xff; 16]);

    /// An id from its 16 stored bytes.
    pub fn from_bytes(bytes: [u8; 16]) -> Self {
        ArchiveId(bytes)
    }

    /// The 16 bytes, as stored in keys.
    pub fn as_bytes(&self) -> &[u8; 16] {
        &self.0
    }

    /// An id from the first 16 bytes of `bytes` (a stored key's tail).
    pub fn from_slice(bytes: &[u8]) -> Option<Self> {
        <[u8; 16]>::try_from(bytes).ok().map(ArchiveId)
    }

    fn as_u128(&self) -> u128 {
        u128::from_be_bytes(self.0)
    }

    fn from_u128(n: u128) -> Self {
        ArchiveId(n.to_be_bytes())
    }

    /// When the message was archived (ms since the Unix epoch).
    pub fn millis(&self) -> Millis {
        let mut ms = [0u8; 8];
        ms.copy_from_slice(&self.0[..8]);
        u64::from_be_bytes(ms)
    }

    /// The first id any message archived at `ms` can have.
    pub fn first_at(ms: Millis) -> Self {
        let mut b = [0u8; 16];
        b[..8].copy_from_slice(&ms.to_be_bytes());
        ArchiveId(b)
    }

    /// The last id any message archived at `ms` can have.
    pub fn last_at(ms: Millis) -> Self {
        let mut b = [0xffu8; 16];
        b[..8].copy_from_slice(&ms.to_be_bytes());
        ArchiveId(b)
    }

    /// The next id in order (`None` after [`ArchiveId::MAX`]): turns an
    /// exclusive lower bound into an inclusive one.
    pub fn next(&self) -> Option<Self> {
        self.as_u128().checked_add(1).map(Self::from_u128)
    }

    /// The previous id in order (`None` before [`ArchiveId::MIN`]).
    pub fn prev(&self) -> Option<Self> {
        self.as_u128().checked_sub(1).map(Self::from_u128)
    }

    /// The text form (what `Display` writes), without going through the
    /// formatting machinery: every archived message puts one on the wire.
    pub fn text(&self) -> String {
        let mut n = self.as_u128();
        let mut out = String::with_capacity(TEXT_LEN);
        let mut digits = [0u8; TEXT_LEN];
        for slot in digits.iter_mut().rev() {
            *slot = ALPHABET[(n & 31) as usize];
            n >>= 5;
        }
        // The alphabet is ASCII.
        out.extend(digits.iter().map(|&b| char::from(b)));
        out
    }

    /// Parse the text form. Only the canonical spelling (upper case, 26
    /// characters, at most 128 bits) is accepted, so an id has one string
    /// and a string names at most one id.
    pub fn parse(text: &str) -> Option<Self> {
        let bytes = text.as_bytes();
        if bytes.len() != TEXT_LEN {
            return None;
        }
        let mut n: u128 = 0;
        for (i, &c) in bytes.iter().enumerate() {
            let v = ALPHABET.iter().position(|&a| a == c)? as u128;
            // 26 × 5 = 130 bits: the first character carries only 3.
            if i == 0 && v > 7 {
                return None;
            }
            n = (n << 5) | v;
        }
        Some(Self::from_u128(n))
    }
}

/// Hands out strictly increasing ids. Pure: time comes in as `now`, the
/// random tails from a seeded [`Entropy`].
#[derive(Debug, Clone)]
pub struct IdGenerator {
    sequence: IdSequence,
    entropy: Entropy,
}

impl IdGenerator {
    /// A generator drawing its random tails from `entropy`.
    pub fn new(entropy: Entropy) -> Self {
        IdGenerator {
            sequence: IdSequence::default(),
            entropy,
        }
    }

    /// The next id for a message archived at `now` ([`IdSequence::next`]).
    pub fn next(&mut self, now: Millis) -> ArchiveId {
        self.sequence.next(now, &mut self.entropy)
    }
}

/// The ordered part of [`IdGenerator`], for a caller that owns no
/// [`Entropy`] of its own and lends one for each id (a hub module draws
/// from its hub's).
#[derive(Debug, Clone, Default)]
pub struct IdSequence {
    last_ms: Millis,
    counter: u16,
}

impl IdSequence {
    /// The next id for a message archived at `now`, its random tail drawn
    /// from `entropy`. Ids increase even when `now` does not (several
    /// messages in one millisecond, or a clock set back): the time part
    /// then stays at the last one used, and moves on by a millisecond when
    /// the counter is exhausted.
    pub fn next(&mut self, now: Millis, entropy: &mut Entropy) -> ArchiveId {
        if now > self.last_ms {
            self.last_ms = now;
            self.counter = 0;
        } else if self.counter == u16::MAX {
            self.last_ms = self.last_ms.saturating_add(1);
            self.counter = 0;
        } else {
            self.counter += 1;
        }
        let mut b = [0u8; 16];
        b[..8].copy_from_slice(&self.last_ms.to_be_bytes());
        b[8..10].copy_from_slice(&self.counter.to_be_bytes());
        entropy.fill(&mut b[10..]);
        ArchiveId(b)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_form_round_trips_and_sorts_like_the_ids() {
        let mut g = IdGenerator::new(Entropy::from_u64(3));
        let ids: Vec<ArchiveId> = (0..2000)
            .map(|i| g.next(1_700_000_000_000 + i / 7))
            .collect();
        for w in ids.windows(2) {
            assert!(w[0] < w[1]);
            assert!(w[0].to_string() < w[1].to_string());
        }
        for id in &ids {
            let s = id.to_string();
            assert_eq!(s.len(), TEXT_LEN);
            assert_eq!(ArchiveId::parse(&s), Some(*id));
        }
        assert_eq!(ArchiveId::MAX.to_string(), "7ZZZZZZZZZZZZZZZZZZZZZZZZZ");
        assert_eq!(
            ArchiveId::parse("7ZZZZZZZZZZZZZZZZZZZZZZZZZ"),
            Some(ArchiveId::MAX)
        );
        assert_eq!(ArchiveId::parse("80000000000000000000000000"), None);
        assert_eq!(ArchiveId::parse("0000000000000000000000000"), None);
        assert_eq!(ArchiveId::parse("0000000000000000000000000u"), None);
        assert_eq!(ArchiveId::parse("0000000000000000000000000I"), None);
        assert_eq!(
            ArchiveId::MIN.next().and_then(|n| n.prev()),
            Some(ArchiveId::MIN)
        );
        assert_eq!(ArchiveId::MAX.next(), None);
        assert_eq!(ArchiveId::MIN.prev(), None);
    }

    #[test]
    fn ids_increase_when_the_clock_stands_still_or_goes_back() {
        let mut g = IdGenerator::new(Entropy::from_u64(1));
        let a = g.next(5_000);
        let b = g.next(5_000);
        let c = g.next(4_000);
        assert!(a < b && b < c);
        assert_eq!(c.millis(), 5_000);
        assert!(ArchiveId::first_at(5_000) <= a && c <= ArchiveId::last_at(5_000));
        let mut g = IdGenerator::new(Entropy::from_u64(1));
        let mut prev = g.next(9);
        for _ in 0..70_000 {
            let id = g.next(9);
            assert!(id > prev);
            prev = id;
        }
        assert_eq!(prev.millis(), 10, "the counter ran out and time moved on");
    }

    #[test]
    fn restarted_generators_do_not_repeat_ids() {
        let a = IdGenerator::new(Entropy::from_u64(1)).next(7);
        let b = IdGenerator::new(Entropy::from_u64(2)).next(7);
        assert_ne!(a, b);
        assert_eq!(a.millis(), b.millis());
    }
}
