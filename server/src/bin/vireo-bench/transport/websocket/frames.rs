//! The client side of RFC 6455 framing: masked frames out, the server's
//! unmasked frames in.
//!
//! xmpp-core's codec (`xmpp_core::websocket`) is the server's: its decoder
//! refuses unmasked frames and its encoder never masks, which is right for
//! a server and the opposite of what a client needs. This is the mirror
//! image, kept small: the load generator only ever sends text and close
//! frames (plus pongs) and reads text, ping, pong and close.
//!
//! The decoder takes the bytes of each socket read and hands complete
//! messages to a callback as slices of that read, so a message that
//! arrives whole (nearly all of them) is never copied here; only a frame
//! cut by the end of a read is carried over, and only that frame.

/// Largest message accepted from a server, as the client machine's own
/// stanza budget (16 MiB): a server sending more is broken.
const MAX_MESSAGE: usize = 16 * 1024 * 1024;

/// Frame opcodes (§5.2).
mod op {
    pub const CONTINUATION: u8 = 0x0;
    pub const TEXT: u8 = 0x1;
    pub const BINARY: u8 = 0x2;
    pub const CLOSE: u8 = 0x8;
    pub const PING: u8 = 0x9;
    pub const PONG: u8 = 0xA;
}

/// A complete message from the server.
#[derive(Debug, PartialEq, Eq)]
pub enum Incoming<'a> {
    /// A text message: one XML element (RFC 7395 §3.3.3).
    Text(&'a [u8]),
    /// A ping, to be answered with a pong carrying the same payload.
    Ping(&'a [u8]),
    /// The server's Close, with its status code if it sent one.
    Close(Option<u16>),
}

/// Reassembles the server's frames across socket reads.
#[derive(Debug, Default)]
pub struct FrameReader {
    /// The start of a frame the previous read ended inside.
    carry: Vec<u8>,
    /// A fragmented text message being reassembled.
    partial: Option<Vec<u8>>,
}

/// A frame header's fields.
struct Header {
    fin: bool,
    opcode: u8,
    header_len: usize,
    payload_len: usize,
}

impl FrameReader {
    /// Feed the bytes of one read; every message they complete goes to
    /// `on`, in order. An error (a frame no server may send) is final.
    pub fn feed(
        &mut self,
        mut input: &[u8],
        mut on: impl FnMut(Incoming<'_>),
    ) -> Result<(), String> {
        if !self.carry.is_empty() && !self.complete_carried(&mut input, &mut on)? {
            return Ok(());
        }
        while !input.is_empty() {
            let Some(h) = header(input)? else {
                self.carry.extend_from_slice(input);
                return Ok(());
            };
            let total = h.header_len + h.payload_len;
            if input.len() < total {
                self.carry.reserve_exact(total);
                self.carry.extend_from_slice(input);
                return Ok(());
            }
            let payload = &input[h.header_len..total];
            input = &input[total..];
            self.frame(&h, payload, &mut on)?;
        }
        Ok(())
    }

    /// Move bytes from `input` to the carried frame until it is complete,
    /// then handle it; false when `input` ran out first.
    fn complete_carried(
        &mut self,
        input: &mut &[u8],
        on: &mut impl FnMut(Incoming<'_>),
    ) -> Result<bool, String> {
        loop {
            // Take exactly what the frame still needs, never a byte of the
            // next one: first the two fixed bytes, then the rest of the
            // header, then the payload.
            let need = match header(&self.carry)? {
                Some(h) => h.header_len + h.payload_len,
                None if self.carry.len() < 2 => 2,
                None => 2 + extended_len_bytes(self.carry[1]),
            };
            let take = (need - self.carry.len()).min(input.len());
            self.carry.extend_from_slice(&input[..take]);
            *input = &input[take..];
            if self.carry.len() < need {
                return Ok(false);
            }
            if let Some(h) = header(&self.carry)? {
                if self.carry.len() == h.header_len + h.payload_len {
                    let carry = std::mem::take(&mut self.carry);
                    self.frame(&h, &carry[h.header_len..], on)?;
                    // Keep the allocation for the next split frame.
                    self.carry = carry;
                    self.carry.clear();
                    return Ok(true);
                }
            }
        }
    }

    /// One complete frame.
    fn frame(
        &mut self,
        h: &Header,
        payload: &[u8],
        on: &mut impl FnMut(Incoming<'_>),
    ) -> Result<(), String> {
        match (h.opcode, h.fin, self.partial.as_mut()) {
            (op::TEXT, true, None) => on(Incoming::Text(payload)),
            (op::TEXT, false, None) => self.partial = Some(payload.to_vec()),
            (op::CONTINUATION, fin, Some(partial)) => {
                if partial.len() + payload.len() > MAX_MESSAGE {
                    return Err(format!("a WebSocket message over {MAX_MESSAGE} bytes"));
                }
                partial.extend_from_slice(payload);
                if fin {
                    if let Some(whole) = self.partial.take() {
                        on(Incoming::Text(&whole));
                    }
                }
            }
            (op::PING, _, _) => on(Incoming::Ping(payload)),
            (op::PONG, _, _) => {}
            (op::CLOSE, _, _) => {
                let code =
                    (payload.len() >= 2).then(|| u16::from_be_bytes([payload[0], payload[1]]));
                on(Incoming::Close(code));
            }
            (op::BINARY, _, _) => return Err("a binary WebSocket message (not XMPP)".into()),
            (op::CONTINUATION, _, None) => return Err("a continuation frame out of place".into()),
            (op::TEXT, _, Some(_)) => return Err("a text frame inside a fragmented message".into()),
            (other, _, _) => return Err(format!("WebSocket opcode {other:#x}")),
        }
        Ok(())
    }
}

/// Bytes of extended length after the two fixed header bytes.
fn extended_len_bytes(b1: u8) -> usize {
    match b1 & 0x7f {
        126 => 2,
        127 => 8,
        _ => 0,
    }
}

/// The header at the start of `buf`, `None` until all of it is there.
/// Server frames are never masked (§5.1) and carry no extension bits (none
/// are negotiated).
fn header(buf: &[u8]) -> Result<Option<Header>, String> {
    let [b0, b1, ..] = *buf else {
        return Ok(None);
    };
    if b0 & 0x70 != 0 {
        return Err("WebSocket reserved bits set by the server".into());
    }
    if b1 & 0x80 != 0 {
        return Err("a masked frame from the server (RFC 6455 §5.1)".into());
    }
    let ext = extended_len_bytes(b1);
    let header_len = 2 + ext;
    if buf.len() < header_len {
        return Ok(None);
    }
    let payload_len = match ext {
        0 => u64::from(b1 & 0x7f),
        _ => buf[2..header_len]
            .iter()
            .fold(0u64, |acc, b| (acc << 8) | u64::from(*b)),
    };
    let payload_len = usize::try_from(payload_len)
        .ok()
        .filter(|n| *n <= MAX_MESSAGE)
        .ok_or_else(|| format!("a WebSocket frame of {payload_len} bytes"))?;
    Ok(Some(Header {
        fin: b0 & 0x80 != 0,
        opcode: b0 & 0x0f,
        header_len,
        payload_len,
    }))
}

/// Masks for client frames (§5.3). They exist so that a script in a
/// browser cannot choose the bytes a proxy sees; a load generator has no
/// such script, so a fast generator seeded from the system's entropy is
/// enough, and every frame still gets its own key.
#[derive(Debug)]
pub struct Masks(u64);

impl Masks {
    /// A generator seeded with `seed`.
    pub fn new(seed: u64) -> Masks {
        Masks(seed)
    }

    /// The next masking key (splitmix64).
    fn next(&mut self) -> [u8; 4] {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        ((z ^ (z >> 31)) as u32).to_be_bytes()
    }
}

/// Append one final, masked text frame whose payload is `parts` joined
/// (so an element and the namespace declaration inserted into it need no
/// intermediate buffer).
pub fn write_text(out: &mut Vec<u8>, parts: &[&[u8]], masks: &mut Masks) {
    write_frame(out, op::TEXT, parts, masks);
}

/// Append a pong echoing a ping's payload (at most 125 bytes, as the ping).
pub fn write_pong(out: &mut Vec<u8>, payload: &[u8], masks: &mut Masks) {
    write_frame(out, op::PONG, &[&payload[..payload.len().min(125)]], masks);
}

/// Append a Close with status `code` and no reason.
pub fn write_close(out: &mut Vec<u8>, code: u16, masks: &mut Masks) {
    write_frame(out, op::CLOSE, &[&code.to_be_bytes()], masks);
}

fn write_frame(out: &mut Vec<u8>, opcode: u8, parts: &[&[u8]], masks: &mut Masks) {
    let len: usize = parts.iter().map(|p| p.len()).sum();
    out.reserve(14 + len);
    out.push(0x80 | opcode);
    match len {
        0..=125 => out.push(0x80 | len as u8),
        126..=0xffff => {
            out.push(0x80 | 126);
            out.extend_from_slice(&(len as u16).to_be_bytes());
        }
        _ => {
            out.push(0x80 | 127);
            out.extend_from_slice(&(len as u64).to_be_bytes());
        }
    }
    let mask = masks.next();
    out.extend_from_slice(&mask);
    let start = out.len();
    for part in parts {
        out.extend_from_slice(part);
    }
    apply_mask(&mut out[start..], mask);
}

/// XOR `data` with the key, four bytes at a time where possible.
fn apply_mask(data: &mut [u8], mask: [u8; 4]) {
    let word = u32::from_ne_bytes(mask);
    let mut chunks = data.chunks_exact_mut(4);
    for c in &mut chunks {
        let v = u32::from_ne_bytes([c[0], c[1], c[2], c[3]]) ^ word;
        c.copy_from_slice(&v.to_ne_bytes());
    }
    for (i, b) in chunks.into_remainder().iter_mut().enumerate() {
        *b ^= mask[i];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The server codec of xmpp-core reads what this one writes.
    #[test]
    fn masked_frames_decode_on_the_server_side() {
        use xmpp_core::websocket::{FrameDecoder, FrameLimits, Message};
        let mut masks = Masks::new(7);
        let mut out = Vec::new();
        let long = "x".repeat(70_000);
        write_text(
            &mut out,
            &[b"<iq", b" xmlns='jabber:client'", b"/>"],
            &mut masks,
        );
        write_text(&mut out, &[long.as_bytes()], &mut masks);
        write_pong(&mut out, b"hi", &mut masks);
        write_close(&mut out, 1000, &mut masks);
        let mut decoder = FrameDecoder::new(FrameLimits {
            max_message_bytes: 1 << 20,
            max_frame_bytes: 1 << 20,
        });
        let mut input = out.as_slice();
        let mut got = Vec::new();
        while let Some(m) = decoder.feed(&mut input).expect("valid frames") {
            got.push(m);
        }
        assert_eq!(got[0], Message::Text("<iq xmlns='jabber:client'/>".into()));
        assert_eq!(got[1], Message::Text(long));
        assert_eq!(got[2], Message::Pong(b"hi".to_vec()));
        assert!(matches!(got[3], Message::Close(_)));
    }

    /// Server frames (xmpp-core's encoder), cut at every possible point
    /// between two reads, come out whole and in order.
    #[test]
    fn server_frames_split_anywhere() {
        use xmpp_core::websocket::encode;
        let mut wire = Vec::new();
        encode::write_text(&mut wire, "<a/>");
        encode::write_ping(&mut wire, b"p");
        encode::write_text(&mut wire, &"y".repeat(300));
        encode::write_close(&mut wire, 1000, "bye");
        for cut in 0..=wire.len() {
            let mut reader = FrameReader::default();
            let mut got: Vec<String> = Vec::new();
            let mut record = |m: Incoming<'_>| {
                got.push(match m {
                    Incoming::Text(t) => format!("text {}", t.len()),
                    Incoming::Ping(p) => format!("ping {}", p.len()),
                    Incoming::Close(c) => format!("close {c:?}"),
                })
            };
            reader.feed(&wire[..cut], &mut record).expect("first part");
            reader.feed(&wire[cut..], &mut record).expect("second part");
            assert_eq!(
                got,
                ["text 4", "ping 1", "text 300", "close Some(1000)"],
                "cut at {cut}"
            );
        }
    }

    #[test]
    fn fragmented_text_is_reassembled() {
        // "Hel" + "lo" (RFC 6455 §5.7, unmasked fragmented text).
        let wire = [0x01, 0x03, 0x48, 0x65, 0x6c, 0x80, 0x02, 0x6c, 0x6f];
        let mut reader = FrameReader::default();
        let mut got = Vec::new();
        reader
            .feed(&wire, |m| {
                if let Incoming::Text(t) = m {
                    got.push(t.to_vec())
                }
            })
            .expect("valid");
        assert_eq!(got, [b"Hello".to_vec()]);
    }

    #[test]
    fn masked_server_frames_are_refused() {
        let wire = [
            0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58,
        ];
        assert!(FrameReader::default().feed(&wire, |_| {}).is_err());
    }
}
