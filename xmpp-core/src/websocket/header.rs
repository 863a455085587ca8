//! One frame header (RFC 6455 §5.2), read from however many pieces the
//! transport delivers it in, and checked before any payload is read.
//!
//! ```text
//!  byte 0: FIN RSV1 RSV2 RSV3 opcode(4)
//!  byte 1: MASK payload-len(7)
//!  then:   16-bit length if payload-len = 126, 64-bit if 127
//!  then:   4-byte masking key if MASK
//! ```
//!
//! A client header is 6 to 14 bytes (the mask is compulsory); it is kept
//! in an inline array, so reading one costs no allocation.

use super::WsError;

/// Longest client frame header: 2 + 8 (64-bit length) + 4 (mask).
pub const MAX_HEADER_BYTES: usize = 14;

/// Longest control frame payload (§5.5).
pub const MAX_CONTROL_PAYLOAD: usize = 125;

/// The opcodes RFC 6455 defines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Opcode {
    /// 0x0: the next fragment of a message.
    Continuation,
    /// 0x1: the first frame of a UTF-8 text message.
    Text,
    /// 0x2: the first frame of a binary message.
    Binary,
    /// 0x8.
    Close,
    /// 0x9.
    Ping,
    /// 0xA.
    Pong,
}

impl Opcode {
    /// The opcode of a known value, or the error for a reserved one.
    pub fn from_bits(bits: u8) -> Result<Opcode, WsError> {
        match bits {
            0x0 => Ok(Opcode::Continuation),
            0x1 => Ok(Opcode::Text),
            0x2 => Ok(Opcode::Binary),
            0x8 => Ok(Opcode::Close),
            0x9 => Ok(Opcode::Ping),
            0xA => Ok(Opcode::Pong),
            other => Err(WsError::UnknownOpcode(other)),
        }
    }

    /// The four-bit value on the wire.
    pub fn bits(self) -> u8 {
        match self {
            Opcode::Continuation => 0x0,
            Opcode::Text => 0x1,
            Opcode::Binary => 0x2,
            Opcode::Close => 0x8,
            Opcode::Ping => 0x9,
            Opcode::Pong => 0xA,
        }
    }

    /// Close, ping and pong: never fragmented, at most 125 bytes, allowed
    /// between the fragments of a message (§5.5).
    pub fn is_control(self) -> bool {
        matches!(self, Opcode::Close | Opcode::Ping | Opcode::Pong)
    }
}

/// A complete, checked client frame header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// Last frame of its message.
    pub fin: bool,
    /// What the frame carries.
    pub opcode: Opcode,
    /// Payload bytes that follow.
    pub len: u64,
    /// The client's masking key (§5.3).
    pub mask: [u8; 4],
}

/// Collects the bytes of one header across calls.
#[derive(Debug, Default)]
pub struct HeaderReader {
    buf: [u8; MAX_HEADER_BYTES],
    have: usize,
}

impl HeaderReader {
    /// Header bytes received so far (0 between frames).
    pub fn pending(&self) -> usize {
        self.have
    }

    /// Take header bytes from the front of `input`, never more than this
    /// header has, and return the header once complete. The first two bytes
    /// are checked as soon as they are in (they fix the header's length);
    /// the length field when the header is complete.
    pub fn read(&mut self, input: &mut &[u8]) -> Result<Option<Header>, WsError> {
        if self.have < 2 {
            self.take(input, 2);
            if self.have < 2 {
                return Ok(None);
            }
            check_first_bytes(self.buf[0], self.buf[1])?;
        }
        let ext = match self.buf[1] & 0x7f {
            126 => 2,
            127 => 8,
            _ => 0,
        };
        let total = 2 + ext + 4;
        self.take(input, total);
        if self.have < total {
            return Ok(None);
        }
        let len = decode_length(self.buf[1] & 0x7f, &self.buf[2..2 + ext])?;
        let mut mask = [0u8; 4];
        mask.copy_from_slice(&self.buf[2 + ext..total]);
        let header = Header {
            fin: self.buf[0] & 0x80 != 0,
            opcode: Opcode::from_bits(self.buf[0] & 0x0f)?,
            len,
            mask,
        };
        self.have = 0;
        Ok(Some(header))
    }

    /// Move bytes from `input` until `upto` header bytes are held.
    fn take(&mut self, input: &mut &[u8], upto: usize) {
        let n = upto.saturating_sub(self.have).min(input.len());
        self.buf[self.have..self.have + n].copy_from_slice(&input[..n]);
        self.have += n;
        *input = &input[n..];
    }
}

/// Everything the first two bytes alone decide.
fn check_first_bytes(b0: u8, b1: u8) -> Result<(), WsError> {
    let rsv = (b0 >> 4) & 0x07;
    if rsv != 0 {
        return Err(WsError::ReservedBits { bits: rsv });
    }
    let opcode = Opcode::from_bits(b0 & 0x0f)?;
    if b1 & 0x80 == 0 {
        return Err(WsError::Unmasked);
    }
    if opcode.is_control() {
        if b0 & 0x80 == 0 {
            return Err(WsError::FragmentedControl(opcode.bits()));
        }
        let len7 = b1 & 0x7f;
        if usize::from(len7) > MAX_CONTROL_PAYLOAD {
            // 126 and 127 announce a longer length; the exact value does
            // not matter, it is over the limit either way.
            return Err(WsError::ControlTooLong(u64::from(len7)));
        }
    }
    Ok(())
}

/// The payload length from the 7-bit field and the extended length bytes
/// (none, 2 or 8), refusing encodings longer than needed and 64-bit
/// lengths with the top bit set.
fn decode_length(len7: u8, ext: &[u8]) -> Result<u64, WsError> {
    let len = if ext.is_empty() {
        u64::from(len7)
    } else {
        ext.iter().fold(0u64, |acc, b| (acc << 8) | u64::from(*b))
    };
    match ext.len() {
        2 if len < 126 => Err(WsError::NonMinimalLength(len)),
        8 if len >> 63 != 0 => Err(WsError::LengthTopBit),
        8 if len <= u64::from(u16::MAX) => Err(WsError::NonMinimalLength(len)),
        _ => Ok(len),
    }
}
