//! Server frames (RFC 6455 §5.2), written into the caller's buffer.
//!
//! A server never masks (§5.1), and every message goes out as one frame:
//! an XMPP element is written whole, and fragmenting would only add
//! headers. Control payloads are cut to the 125 bytes a control frame
//! holds, so nothing written here is a frame a client must reject.

use super::close::MAX_REASON_BYTES;
use super::header::{Opcode, MAX_CONTROL_PAYLOAD};

/// A text message: in XMPP over WebSocket, one element or `<open/>` /
/// `<close/>` (RFC 7395 §3.3.3).
pub fn write_text(out: &mut Vec<u8>, text: &str) {
    write_frame(out, Opcode::Text, text.as_bytes());
}

/// A text message whose bytes are known to be UTF-8 (serialized XML), so
/// they are not checked again.
pub(crate) fn write_text_utf8(out: &mut Vec<u8>, text: &[u8]) {
    write_frame(out, Opcode::Text, text);
}

/// A binary message (not used by XMPP; here for completeness of the codec).
pub fn write_binary(out: &mut Vec<u8>, data: &[u8]) {
    write_frame(out, Opcode::Binary, data);
}

/// A ping; `payload` is cut to 125 bytes.
pub fn write_ping(out: &mut Vec<u8>, payload: &[u8]) {
    write_frame(out, Opcode::Ping, control_payload(payload));
}

/// A pong, echoing a ping's payload (the decoder never yields more than
/// 125 bytes, the most a pong carries).
pub fn write_pong(out: &mut Vec<u8>, payload: &[u8]) {
    write_frame(out, Opcode::Pong, control_payload(payload));
}

/// A Close with a status code (see [`close`](super::close) for the
/// constants) and a reason, cut to 123 bytes at a character boundary.
/// 1005, 1006 and 1015 are never to be sent (§7.4.1); callers use the
/// constants.
pub fn write_close(out: &mut Vec<u8>, code: u16, reason: &str) {
    let mut end = reason.len().min(MAX_REASON_BYTES);
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    let mut payload = [0u8; MAX_CONTROL_PAYLOAD];
    payload[..2].copy_from_slice(&code.to_be_bytes());
    payload[2..2 + end].copy_from_slice(&reason.as_bytes()[..end]);
    write_frame(out, Opcode::Close, &payload[..2 + end]);
}

/// A Close without a status code: the answer to a client's Close that
/// carried none (§5.5.1 echoes the code received, and there was none).
pub fn write_close_empty(out: &mut Vec<u8>) {
    write_frame(out, Opcode::Close, &[]);
}

fn control_payload(payload: &[u8]) -> &[u8] {
    &payload[..payload.len().min(MAX_CONTROL_PAYLOAD)]
}

/// One final, unmasked frame, its length in the shortest form (§5.2).
fn write_frame(out: &mut Vec<u8>, opcode: Opcode, payload: &[u8]) {
    out.reserve(10 + payload.len());
    out.push(0x80 | opcode.bits());
    match payload.len() {
        len @ 0..=125 => out.push(len as u8),
        len @ 126..=0xffff => {
            out.push(126);
            out.extend_from_slice(&(len as u16).to_be_bytes());
        }
        len => {
            out.push(127);
            out.extend_from_slice(&(len as u64).to_be_bytes());
        }
    }
    out.extend_from_slice(payload);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6455 §5.7: the unmasked examples are exactly what a server
    /// writes.
    #[test]
    fn rfc_6455_examples() {
        let mut out = Vec::new();
        write_text(&mut out, "Hello");
        assert_eq!(out, [0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f]);
        out.clear();
        write_pong(&mut out, b"Hello");
        assert_eq!(out, [0x8a, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f]);
        out.clear();
        write_ping(&mut out, b"Hello");
        assert_eq!(out, [0x89, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f]);
        out.clear();
        write_binary(&mut out, &[0u8; 256]);
        assert_eq!(&out[..4], [0x82, 0x7e, 0x01, 0x00]);
        assert_eq!(out.len(), 4 + 256);
        out.clear();
        write_binary(&mut out, &vec![0u8; 65536]);
        assert_eq!(
            &out[..10],
            [0x82, 0x7f, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00]
        );
        assert_eq!(out.len(), 10 + 65536);
    }

    #[test]
    fn length_forms_at_their_edges() {
        for (len, header) in [(0, 2), (125, 2), (126, 4), (65535, 4), (65536, 10)] {
            let mut out = Vec::new();
            write_text(&mut out, &"a".repeat(len));
            assert_eq!(out.len(), header + len, "{len}");
            assert_eq!(out[1] & 0x80, 0, "never masked");
        }
    }

    #[test]
    fn control_payloads_are_cut_to_fit() {
        let mut out = Vec::new();
        write_ping(&mut out, &[7u8; 200]);
        assert_eq!(out[1], 125);
        assert_eq!(out.len(), 2 + 125);
        out.clear();
        write_close_empty(&mut out);
        assert_eq!(out, [0x88, 0x00]);
        out.clear();
        write_close(&mut out, 1000, "");
        assert_eq!(out, [0x88, 0x02, 0x03, 0xe8]);
        out.clear();
        write_close(&mut out, 1009, "too big");
        assert_eq!(out, b"\x88\x09\x03\xf1too big");
    }

    /// A reason of 2-byte characters with the cut inside one: the whole
    /// character goes.
    #[test]
    fn close_reason_cut_on_a_character_boundary() {
        let reason = "é".repeat(100); // 200 bytes
        let mut out = Vec::new();
        write_close(&mut out, 1008, &reason);
        assert_eq!(out[1], 2 + 122);
        let text = std::str::from_utf8(&out[4..]).unwrap();
        assert_eq!(text, "é".repeat(61));
        out.clear();
        let ascii = "x".repeat(123);
        write_close(&mut out, 1008, &format!("{ascii}yz"));
        assert_eq!(out[1], 125);
        assert_eq!(&out[4..], ascii.as_bytes());
    }
}
