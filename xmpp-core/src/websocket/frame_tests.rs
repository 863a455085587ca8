//! The decoder against RFC 6455: the §5.7 examples, each way to break the
//! framing rules and the close code it earns, and the budgets at their
//! edges.

use super::close::{CloseFrame, INVALID_PAYLOAD, MESSAGE_TOO_BIG, PROTOCOL_ERROR};
use super::header::{MAX_CONTROL_PAYLOAD, MAX_HEADER_BYTES};
use super::test_client::{frame, RawFrame};
use super::{FrameDecoder, FrameLimits, Message, WsError};

const MASK: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];
const TEXT: u8 = 0x1;
const BINARY: u8 = 0x2;
const CONT: u8 = 0x0;
const CLOSE: u8 = 0x8;
const PING: u8 = 0x9;
const PONG: u8 = 0xa;

/// Everything the decoder makes of `bytes` fed at once, and the error
/// that stopped it, if any.
fn decode(limits: FrameLimits, bytes: &[u8]) -> (Vec<Message>, Option<WsError>) {
    decode_chunks(limits, &[bytes])
}

/// The same, fed in the given pieces, checking the memory bound after
/// every call.
fn decode_chunks<T: AsRef<[u8]>>(
    limits: FrameLimits,
    chunks: &[T],
) -> (Vec<Message>, Option<WsError>) {
    let mut decoder = FrameDecoder::new(limits);
    let mut messages = Vec::new();
    for chunk in chunks {
        let mut input = chunk.as_ref();
        loop {
            let result = decoder.feed(&mut input);
            assert!(
                decoder.buffered_bytes() <= limits.max_message_bytes + MAX_CONTROL_PAYLOAD,
                "holds {} bytes",
                decoder.buffered_bytes()
            );
            match result {
                Ok(Some(message)) => messages.push(message),
                Ok(None) => {
                    assert!(input.is_empty(), "Ok(None) with input left");
                    break;
                }
                Err(error) => {
                    // Final: the same error again, whatever follows.
                    assert_eq!(
                        decoder.feed(&mut &b"\x81\x80\0\0\0\0"[..]),
                        Err(error.clone())
                    );
                    return (messages, Some(error));
                }
            }
        }
    }
    (messages, None)
}

fn bytewise(bytes: &[u8]) -> Vec<[u8; 1]> {
    bytes.iter().map(|b| [*b]).collect()
}

fn small(max_message_bytes: usize, max_frame_bytes: usize) -> FrameLimits {
    FrameLimits {
        max_message_bytes,
        max_frame_bytes,
    }
}

fn text(s: &str) -> Message {
    Message::Text(s.into())
}

/// RFC 6455 §5.7: "A single-frame masked text message".
#[test]
fn rfc_masked_hello() {
    let bytes = [
        0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58,
    ];
    assert_eq!(frame(true, TEXT, b"Hello", MASK), bytes);
    assert_eq!(
        decode(FrameLimits::default(), &bytes),
        (vec![text("Hello")], None)
    );
}

/// §5.7's fragmented "Hel" + "lo" and its ping/pong, which the RFC shows
/// unmasked (as a server sends them): from a client they are refused; the
/// same frames masked decode.
#[test]
fn rfc_fragmented_and_control_examples() {
    let unmasked_fragment = [0x01, 0x03, 0x48, 0x65, 0x6c];
    let unmasked_ping = [0x89, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f];
    for bytes in [&unmasked_fragment[..], &unmasked_ping[..]] {
        let (messages, error) = decode(FrameLimits::default(), bytes);
        assert!(messages.is_empty());
        assert_eq!(error, Some(WsError::Unmasked));
        assert_eq!(WsError::Unmasked.close_code(), PROTOCOL_ERROR);
    }
    let mut bytes = frame(false, TEXT, b"Hel", MASK);
    bytes.extend(frame(true, CONT, b"lo", [1, 2, 3, 4]));
    // "Masked Ping response" of §5.7, here a pong.
    bytes.extend([
        0x8a, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58,
    ]);
    bytes.extend(frame(true, PING, b"Hello", MASK));
    assert_eq!(
        decode(FrameLimits::default(), &bytes),
        (
            vec![
                text("Hello"),
                Message::Pong(b"Hello".to_vec()),
                Message::Ping(b"Hello".to_vec())
            ],
            None
        )
    );
}

/// §5.7's 256-byte and 64 KiB binary messages (16- and 64-bit lengths),
/// masked as a client sends them.
#[test]
fn rfc_extended_lengths() {
    let payload: Vec<u8> = (0..=255).collect();
    let bytes = frame(true, BINARY, &payload, MASK);
    assert_eq!(&bytes[..4], [0x82, 0xfe, 0x01, 0x00]);
    assert_eq!(
        decode(FrameLimits::default(), &bytes),
        (vec![Message::Binary(payload)], None)
    );
    let payload: Vec<u8> = (0..65536u32).map(|i| (i % 251) as u8).collect();
    let bytes = frame(true, BINARY, &payload, MASK);
    assert_eq!(
        &bytes[..10],
        [0x82, 0xff, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00]
    );
    assert_eq!(
        decode(FrameLimits::default(), &bytes),
        (vec![Message::Binary(payload.clone())], None)
    );
    assert_eq!(
        decode_chunks(FrameLimits::default(), &bytewise(&bytes)),
        (vec![Message::Binary(payload)], None)
    );
}

/// A stream of everything, fed at once, byte by byte, and in uneven
/// pieces: the same messages.
#[test]
fn byte_at_a_time_equals_whole() {
    let mut bytes = frame(
        true,
        TEXT,
        "<open xmlns='urn:ietf:params:xml:ns:xmpp-framing'/>".as_bytes(),
        MASK,
    );
    bytes.extend(frame(false, TEXT, "caf".as_bytes(), [9, 8, 7, 6]));
    bytes.extend(frame(true, PING, b"", MASK));
    // "é" split across two fragments.
    bytes.extend(frame(false, CONT, &"é".as_bytes()[..1], MASK));
    bytes.extend(frame(true, PONG, b"p", MASK));
    bytes.extend(frame(false, CONT, b"", MASK));
    bytes.extend(frame(true, CONT, &"é!".as_bytes()[1..], MASK));
    bytes.extend(frame(true, BINARY, &[0, 1, 2], MASK));
    bytes.extend(frame(true, TEXT, &vec![b'x'; 300], MASK));
    bytes.extend(frame(true, CLOSE, &[0x03, 0xe8, b'o', b'k'], MASK));
    bytes.extend(b"ignored after close");
    let expected = vec![
        text("<open xmlns='urn:ietf:params:xml:ns:xmpp-framing'/>"),
        Message::Ping(vec![]),
        Message::Pong(b"p".to_vec()),
        text("café!"),
        Message::Binary(vec![0, 1, 2]),
        text(&"x".repeat(300)),
        Message::Close(Some(CloseFrame {
            code: 1000,
            reason: "ok".into(),
        })),
    ];
    let whole = decode(FrameLimits::default(), &bytes);
    assert_eq!(whole, (expected, None));
    assert_eq!(
        decode_chunks(FrameLimits::default(), &bytewise(&bytes)),
        whole
    );
    let pieces: Vec<&[u8]> = bytes.chunks(7).collect();
    assert_eq!(decode_chunks(FrameLimits::default(), &pieces), whole);
}

#[test]
fn feed_stops_after_each_message_and_leaves_the_rest() {
    let mut bytes = frame(true, TEXT, b"one", MASK);
    bytes.extend(frame(true, TEXT, b"two", MASK));
    let mut decoder = FrameDecoder::new(FrameLimits::default());
    let mut input = &bytes[..];
    assert_eq!(decoder.feed(&mut input), Ok(Some(text("one"))));
    assert_eq!(input.len(), 9);
    assert_eq!(decoder.buffered_bytes(), 0, "nothing held between messages");
    assert_eq!(decoder.feed(&mut input), Ok(Some(text("two"))));
    assert_eq!(decoder.feed(&mut input), Ok(None));
    assert!(!decoder.is_closed());
}

#[test]
fn close_frames() {
    type Parsed = Result<Option<CloseFrame>, WsError>;
    let cases: Vec<(Vec<u8>, Parsed)> = vec![
        (vec![], Ok(None)),
        (vec![0x03], Err(WsError::CloseTooShort)),
        (
            vec![0x0b, 0xb8],
            Ok(Some(CloseFrame {
                code: 3000,
                reason: String::new(),
            })),
        ),
        (vec![0x03, 0xed], Err(WsError::InvalidCloseCode(1005))),
        (vec![0x03, 0xe8, 0xc3], Err(WsError::InvalidCloseReason)),
    ];
    for (payload, expected) in cases {
        let bytes = frame(true, CLOSE, &payload, MASK);
        let mut decoder = FrameDecoder::new(FrameLimits::default());
        let got = decoder.feed(&mut &bytes[..]);
        assert_eq!(got, expected.clone().map(|c| Some(Message::Close(c))));
        assert_eq!(decoder.is_closed(), expected.is_ok());
    }
    // A close between two fragments ends the message unfinished and frees it.
    let mut bytes = frame(false, TEXT, &[b'a'; 1000], MASK);
    bytes.extend(frame(true, CLOSE, &[], MASK));
    bytes.extend(frame(true, CONT, b"late", MASK));
    let mut decoder = FrameDecoder::new(FrameLimits::default());
    let mut input = &bytes[..];
    assert_eq!(decoder.feed(&mut input), Ok(Some(Message::Close(None))));
    assert_eq!(decoder.buffered_bytes(), 0);
    assert_eq!(decoder.feed(&mut input), Ok(None));
    assert!(input.is_empty());
}

/// Every way to break the framing, with the error and its close code.
#[test]
fn framing_errors_and_their_close_codes() {
    let long_ping = RawFrame {
        len_bytes: Some(2),
        ..RawFrame::new(PING, &[0; 126])
    };
    let cases: Vec<(&str, Vec<u8>, WsError, u16)> = vec![
        (
            "unmasked",
            RawFrame::new(TEXT, b"hi").mask(None).encode(),
            WsError::Unmasked,
            PROTOCOL_ERROR,
        ),
        (
            "RSV1",
            RawFrame {
                rsv: 0b100,
                ..RawFrame::new(TEXT, b"hi")
            }
            .encode(),
            WsError::ReservedBits { bits: 0b100 },
            PROTOCOL_ERROR,
        ),
        (
            "RSV3",
            RawFrame {
                rsv: 0b001,
                ..RawFrame::new(PING, b"")
            }
            .encode(),
            WsError::ReservedBits { bits: 0b001 },
            PROTOCOL_ERROR,
        ),
        (
            "opcode 3",
            RawFrame::new(0x3, b"").encode(),
            WsError::UnknownOpcode(0x3),
            PROTOCOL_ERROR,
        ),
        (
            "opcode 0xB",
            RawFrame::new(0xb, b"").encode(),
            WsError::UnknownOpcode(0xb),
            PROTOCOL_ERROR,
        ),
        (
            "fragmented ping",
            RawFrame::new(PING, b"x").fin(false).encode(),
            WsError::FragmentedControl(PING),
            PROTOCOL_ERROR,
        ),
        (
            "fragmented close",
            RawFrame::new(CLOSE, b"").fin(false).encode(),
            WsError::FragmentedControl(CLOSE),
            PROTOCOL_ERROR,
        ),
        (
            "ping of 126 bytes",
            long_ping.encode(),
            WsError::ControlTooLong(126),
            PROTOCOL_ERROR,
        ),
        (
            "16-bit length for 125",
            RawFrame {
                len_bytes: Some(2),
                ..RawFrame::new(TEXT, &[b'a'; 125])
            }
            .encode(),
            WsError::NonMinimalLength(125),
            PROTOCOL_ERROR,
        ),
        (
            "64-bit length for 65535",
            RawFrame {
                len_bytes: Some(8),
                len: Some(65535),
                ..RawFrame::new(BINARY, b"")
            }
            .encode(),
            WsError::NonMinimalLength(65535),
            PROTOCOL_ERROR,
        ),
        (
            "64-bit length for 5",
            RawFrame {
                len_bytes: Some(8),
                ..RawFrame::new(BINARY, b"hello")
            }
            .encode(),
            WsError::NonMinimalLength(5),
            PROTOCOL_ERROR,
        ),
        (
            "64-bit length with the top bit",
            RawFrame {
                len_bytes: Some(8),
                len: Some(1 << 63),
                ..RawFrame::new(BINARY, b"")
            }
            .encode(),
            WsError::LengthTopBit,
            PROTOCOL_ERROR,
        ),
        (
            "continuation first",
            frame(true, CONT, b"x", MASK),
            WsError::UnexpectedContinuation,
            PROTOCOL_ERROR,
        ),
        (
            "text inside a fragmented message",
            [
                frame(false, TEXT, b"a", MASK),
                frame(true, TEXT, b"b", MASK),
            ]
            .concat(),
            WsError::ExpectedContinuation(TEXT),
            PROTOCOL_ERROR,
        ),
        (
            "binary inside a fragmented message",
            [
                frame(false, BINARY, b"a", MASK),
                frame(true, BINARY, b"b", MASK),
            ]
            .concat(),
            WsError::ExpectedContinuation(BINARY),
            PROTOCOL_ERROR,
        ),
        (
            "invalid UTF-8",
            frame(true, TEXT, b"ok \xff", MASK),
            WsError::InvalidUtf8,
            INVALID_PAYLOAD,
        ),
        (
            "surrogate in UTF-8",
            frame(true, TEXT, b"\xed\xa0\x80", MASK),
            WsError::InvalidUtf8,
            INVALID_PAYLOAD,
        ),
        (
            "text ending inside a character",
            frame(true, TEXT, &"é".as_bytes()[..1], MASK),
            WsError::InvalidUtf8,
            INVALID_PAYLOAD,
        ),
        (
            "close of one byte",
            frame(true, CLOSE, &[0x03], MASK),
            WsError::CloseTooShort,
            PROTOCOL_ERROR,
        ),
        (
            "close code 1006",
            frame(true, CLOSE, &[0x03, 0xee], MASK),
            WsError::InvalidCloseCode(1006),
            PROTOCOL_ERROR,
        ),
        (
            "close reason not UTF-8",
            frame(true, CLOSE, &[0x03, 0xe8, 0xff], MASK),
            WsError::InvalidCloseReason,
            INVALID_PAYLOAD,
        ),
        (
            "frame over budget",
            frame(true, TEXT, &[b'a'; 11], MASK),
            WsError::FrameTooBig { len: 11, max: 10 },
            MESSAGE_TOO_BIG,
        ),
        (
            "message over budget",
            [
                frame(false, TEXT, &[b'a'; 10], MASK),
                frame(true, CONT, &[b'a'; 10], MASK),
            ]
            .concat(),
            WsError::MessageTooBig { len: 20, max: 16 },
            MESSAGE_TOO_BIG,
        ),
    ];
    for (name, bytes, error, code) in cases {
        let limits = small(16, 10);
        assert_eq!(error.close_code(), code, "{name}");
        let whole = decode(limits, &bytes);
        assert_eq!(whole.1, Some(error), "{name}");
        assert_eq!(
            decode_chunks(limits, &bytewise(&bytes)),
            whole,
            "{name}, byte by byte"
        );
    }
}

/// A control frame with 126 or 127 in its 7-bit length is refused from its
/// second byte, without waiting for the extended length.
#[test]
fn long_control_frame_refused_from_its_second_byte() {
    let mut decoder = FrameDecoder::new(FrameLimits::default());
    assert_eq!(
        decoder.feed(&mut &[0x89, 0xff][..]),
        Err(WsError::ControlTooLong(127))
    );
}

/// Invalid UTF-8 fails when it arrives, not when the message ends.
#[test]
fn invalid_utf8_fails_fast() {
    let mut bytes = frame(false, TEXT, b"fine so far", MASK);
    bytes.extend(frame(false, CONT, b"\xc0\xaf", MASK));
    let mut decoder = FrameDecoder::new(FrameLimits::default());
    assert_eq!(decoder.feed(&mut &bytes[..]), Err(WsError::InvalidUtf8));
    // Within a frame, too: the bad byte is the first of a long payload
    // whose rest has not arrived.
    let bytes = frame(true, TEXT, &[0xff; 1000], MASK);
    let mut decoder = FrameDecoder::new(FrameLimits::default());
    assert_eq!(decoder.feed(&mut &bytes[..20]), Err(WsError::InvalidUtf8));
    // Binary is not checked.
    let bytes = frame(true, BINARY, &[0xff; 3], MASK);
    assert_eq!(
        decode(FrameLimits::default(), &bytes),
        (vec![Message::Binary(vec![0xff; 3])], None)
    );
}

/// Exactly the budget passes; one byte more is refused at the header,
/// before its payload is held.
#[test]
fn budgets_at_their_limits() {
    let limits = small(1000, 600);
    // A frame of exactly max_frame_bytes, a message of exactly
    // max_message_bytes in two frames (with a ping of 125 between them).
    let mut bytes = frame(true, TEXT, &[b'a'; 600], MASK);
    bytes.extend(frame(false, BINARY, &[1; 600], MASK));
    bytes.extend(frame(true, PING, &[2; 125], MASK));
    bytes.extend(frame(true, CONT, &[3; 400], MASK));
    let (messages, error) = decode_chunks(limits, &bytewise(&bytes));
    assert_eq!(error, None);
    assert_eq!(messages.len(), 3);
    assert_eq!(
        messages[2],
        Message::Binary([vec![1; 600], vec![3; 400]].concat())
    );

    // One byte over the frame budget: refused once the header is in,
    // holding nothing but the header.
    let bytes = frame(true, TEXT, &[b'a'; 601], MASK);
    let mut decoder = FrameDecoder::new(limits);
    let mut input = &bytes[..3];
    assert_eq!(decoder.feed(&mut input), Ok(None));
    assert_eq!(decoder.buffered_bytes(), 3);
    let mut input = &bytes[3..];
    assert_eq!(
        decoder.feed(&mut input),
        Err(WsError::FrameTooBig { len: 601, max: 600 })
    );
    assert_eq!(decoder.buffered_bytes(), 0);
    assert_eq!(input.len(), 601, "no payload byte was taken");

    // One byte over the message budget, on the last fragment's header.
    let mut bytes = frame(false, TEXT, &[b'a'; 600], MASK);
    bytes.extend(frame(true, CONT, &[b'a'; 401], MASK));
    let mut decoder = FrameDecoder::new(limits);
    let mut input = &bytes[..];
    assert_eq!(
        decoder.feed(&mut input),
        Err(WsError::MessageTooBig {
            len: 1001,
            max: 1000
        })
    );
    assert_eq!(input.len(), 401);
    assert_eq!(decoder.buffered_bytes(), 0);
}

/// A header announcing the largest length there is costs nothing: no
/// allocation follows a header, only arriving bytes.
#[test]
fn huge_announced_lengths_cost_nothing() {
    let limits = FrameLimits::default();
    let header = RawFrame {
        len: Some((1 << 63) - 1),
        ..RawFrame::new(BINARY, b"")
    }
    .encode();
    let (_, error) = decode(limits, &header);
    assert_eq!(
        error,
        Some(WsError::FrameTooBig {
            len: (1 << 63) - 1,
            max: limits.max_frame_bytes
        })
    );
    // Within budget: the buffer grows with the payload received, not the
    // length announced.
    let bytes = frame(true, BINARY, &[0; 200_000], MASK);
    let mut decoder = FrameDecoder::new(limits);
    assert_eq!(decoder.feed(&mut &bytes[..MAX_HEADER_BYTES]), Ok(None));
    assert!(decoder.buffered_bytes() <= MAX_HEADER_BYTES);
    assert_eq!(
        decoder.feed(&mut &bytes[MAX_HEADER_BYTES..][..100]),
        Ok(None)
    );
    assert!(
        decoder.buffered_bytes() <= 100,
        "{}",
        decoder.buffered_bytes()
    );
}

/// The message buffer grows geometrically but never past the budget, even
/// where Vec's doubling would overshoot it.
#[test]
fn buffer_capacity_never_exceeds_the_budget() {
    let limits = small(1000, 1000);
    let bytes = frame(true, BINARY, &[7; 1000], MASK);
    let mut decoder = FrameDecoder::new(limits);
    let mut peak = 0;
    for chunk in bytes.chunks(3) {
        let mut input = chunk;
        while let Some(message) = decoder.feed(&mut input).unwrap() {
            assert_eq!(message, Message::Binary(vec![7; 1000]));
        }
        peak = peak.max(decoder.buffered_bytes());
    }
    assert_eq!(peak, 1000);
    assert_eq!(decoder.buffered_bytes(), 0);
}

/// Many control frames in one read: one at a time, nothing accumulated.
#[test]
fn a_flood_of_pings_is_taken_one_at_a_time() {
    let one = frame(true, PING, &[5; 125], MASK);
    let bytes = one.repeat(1000);
    let mut decoder = FrameDecoder::new(small(16, 16));
    let mut input = &bytes[..];
    let mut count = 0;
    while let Some(message) = decoder.feed(&mut input).unwrap() {
        assert_eq!(message, Message::Ping(vec![5; 125]));
        assert_eq!(input.len(), bytes.len() - (count + 1) * one.len());
        assert!(decoder.buffered_bytes() <= MAX_CONTROL_PAYLOAD);
        count += 1;
    }
    assert_eq!(count, 1000);
}

/// What an idle connection's decoder costs: its struct, no heap. Counted
/// so a field added later is a decision, not an accident.
#[test]
fn an_idle_decoder_costs_its_struct_only() {
    let decoder = FrameDecoder::new(FrameLimits::default());
    assert_eq!(decoder.buffered_bytes(), 0);
    assert!(std::mem::size_of::<FrameDecoder>() <= 160);
}
