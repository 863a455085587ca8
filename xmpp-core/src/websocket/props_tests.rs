//! Randomized properties of the decoder, seeded so a failure names its
//! case: valid client streams (random fragmentation, control frames between
//! fragments, random masks, random reads) decode to exactly what was sent;
//! any bytes at all never panic, never hold more than the budget, and
//! decode the same however the reads cut them.
//!
//! These live in the crate, not in `proptests/`, so they run with
//! `cargo test -p xmpp-core` alone; the generator is
//! [`Rng`](super::test_client::Rng).

use super::close::{is_valid_code, CloseFrame};
use super::header::MAX_CONTROL_PAYLOAD;
use super::test_client::{frame, RawFrame, Rng};
use super::{FrameDecoder, FrameLimits, Message, WsError};

const CASES: u64 = 400;

/// Decode `chunks` in order, checking after every call the memory bound
/// and that `Ok(None)` means the input was used up.
fn run(limits: FrameLimits, chunks: &[Vec<u8>]) -> (Vec<Message>, Option<WsError>) {
    let mut decoder = FrameDecoder::new(limits);
    let mut messages = Vec::new();
    for chunk in chunks {
        let mut input = &chunk[..];
        loop {
            let result = decoder.feed(&mut input);
            let held = decoder.buffered_bytes();
            assert!(
                held <= limits.max_message_bytes + MAX_CONTROL_PAYLOAD,
                "holds {held} bytes with {limits:?}"
            );
            match result {
                Ok(Some(message)) => messages.push(message),
                Ok(None) => {
                    assert!(input.is_empty());
                    break;
                }
                Err(error) => return (messages, Some(error)),
            }
        }
    }
    (messages, None)
}

fn control(rng: &mut Rng, frames: &mut Vec<u8>, expected: &mut Vec<Message>) {
    let payload = rng.bytes_below(MAX_CONTROL_PAYLOAD + 1);
    let (opcode, message) = if rng.chance(2) {
        (0x9, Message::Ping(payload.clone()))
    } else {
        (0xa, Message::Pong(payload.clone()))
    };
    frames.extend(frame(true, opcode, &payload, rng.mask()));
    expected.push(message);
}

/// A valid client stream within `limits` and the messages it carries.
fn valid_stream(rng: &mut Rng, limits: FrameLimits) -> (Vec<u8>, Vec<Message>) {
    let mut bytes = Vec::new();
    let mut expected = Vec::new();
    for _ in 0..rng.below(8) {
        if rng.chance(4) {
            control(rng, &mut bytes, &mut expected);
        }
        let (opcode, payload, message) = if rng.chance(4) {
            let len = match rng.below(3) {
                0 => limits.max_message_bytes,
                1 => rng.below(limits.max_message_bytes + 1),
                _ => rng.below(20),
            };
            let data = rng.bytes(len);
            (0x2, data.clone(), Message::Binary(data))
        } else {
            let text = rng.text_below(limits.max_message_bytes / 4 + 1);
            (0x1, text.as_bytes().to_vec(), Message::Text(text))
        };
        // Fragments of at most max_frame_bytes, cut anywhere (inside
        // characters too), sometimes empty.
        let mut rest = &payload[..];
        let mut first = true;
        loop {
            let n = if rng.chance(8) {
                0
            } else {
                1 + rng.below(rest.len().min(limits.max_frame_bytes).max(1))
            }
            .min(rest.len());
            let fin = n == rest.len() && (n > 0 || rng.chance(2));
            let op = if first { opcode } else { 0x0 };
            bytes.extend(frame(fin, op, &rest[..n], rng.mask()));
            rest = &rest[n..];
            first = false;
            if fin {
                break;
            }
            if rng.chance(3) {
                control(rng, &mut bytes, &mut expected);
            }
        }
        expected.push(message);
    }
    if rng.chance(2) {
        let code = loop {
            let code = rng.next_u64() as u16 % 5000;
            if is_valid_code(code) {
                break code;
            }
        };
        let reason = rng.text_below(31);
        let mut payload = code.to_be_bytes().to_vec();
        payload.extend_from_slice(reason.as_bytes());
        bytes.extend(frame(true, 0x8, &payload, rng.mask()));
        expected.push(Message::Close(Some(CloseFrame { code, reason })));
        // Whatever follows a Close is ignored.
        bytes.extend(rng.bytes_below(40));
    }
    (bytes, expected)
}

fn random_limits(rng: &mut Rng) -> FrameLimits {
    let max_message_bytes = 1 + rng.below(3000);
    FrameLimits {
        max_message_bytes,
        max_frame_bytes: 1 + rng.below(max_message_bytes + 200),
    }
}

#[test]
fn valid_streams_decode_to_exactly_their_messages() {
    for seed in 0..CASES {
        let mut rng = Rng::new(seed);
        let limits = random_limits(&mut rng);
        let (bytes, expected) = valid_stream(&mut rng, limits);
        let chunks = rng.chunks(&bytes);
        let (messages, error) = run(limits, &chunks);
        assert_eq!(error, None, "seed {seed}");
        assert_eq!(messages, expected, "seed {seed}");
    }
}

/// A frame with every header field random (mostly plausible values), for
/// the hostile streams.
fn random_frame(rng: &mut Rng) -> Vec<u8> {
    let len = match rng.below(3) {
        0 => rng.below(4),
        1 => rng.below(130),
        _ => rng.below(3500),
    };
    let payload = rng.bytes(len);
    RawFrame {
        fin: !rng.chance(3),
        rsv: if rng.chance(10) {
            rng.below(8) as u8
        } else {
            0
        },
        opcode: if rng.chance(4) {
            rng.below(16) as u8
        } else {
            [0x0, 0x1, 0x2, 0x8, 0x9, 0xa][rng.below(6)]
        },
        mask: if rng.chance(15) {
            None
        } else {
            Some(rng.mask())
        },
        len_bytes: if rng.chance(10) {
            Some([0, 2, 8][rng.below(3)])
        } else {
            None
        },
        len: if rng.chance(10) {
            Some(rng.next_u64() >> rng.below(64))
        } else {
            None
        },
        payload,
    }
    .encode()
}

/// Bytes a hostile or broken client might send: noise, valid streams with
/// flipped bytes, and frames with random header fields.
fn hostile_stream(rng: &mut Rng, limits: FrameLimits) -> Vec<u8> {
    match rng.below(3) {
        0 => rng.bytes_below(5000),
        1 => {
            let (mut bytes, _) = valid_stream(rng, limits);
            for _ in 0..1 + rng.below(4) {
                if !bytes.is_empty() {
                    let i = rng.below(bytes.len());
                    bytes[i] ^= 1 << rng.below(8);
                }
            }
            bytes
        }
        _ => (0..rng.below(10)).flat_map(|_| random_frame(rng)).collect(),
    }
}

#[test]
fn any_bytes_stay_within_budget_and_decode_alike_however_cut() {
    for seed in 0..CASES * 2 {
        let mut rng = Rng::new(seed);
        let limits = random_limits(&mut rng);
        let bytes = hostile_stream(&mut rng, limits);
        let whole = run(limits, std::slice::from_ref(&bytes));
        let chunks = rng.chunks(&bytes);
        assert_eq!(run(limits, &chunks), whole, "seed {seed}");
        let bytewise: Vec<Vec<u8>> = bytes.iter().map(|b| vec![*b]).collect();
        assert_eq!(run(limits, &bytewise), whole, "seed {seed}");
    }
}

/// A valid stream decoded under a smaller budget: the messages within it
/// come out as sent, and the first one over it fails the connection with
/// 1009 — never a message over the budget, never a different error.
#[test]
fn smaller_budgets_cut_a_stream_at_its_first_oversized_message() {
    for seed in 0..CASES {
        let mut rng = Rng::new(seed);
        let sent = random_limits(&mut rng);
        let (bytes, expected) = valid_stream(&mut rng, sent);
        let max_message_bytes = rng.below(sent.max_message_bytes + 1);
        let budget = FrameLimits {
            max_message_bytes,
            max_frame_bytes: rng.below(max_message_bytes + 2),
        };
        let chunks = rng.chunks(&bytes);
        let (messages, error) = run(budget, &chunks);
        assert!(expected.starts_with(&messages), "seed {seed}");
        for message in &messages {
            if let Message::Text(text) = message {
                assert!(text.len() <= max_message_bytes, "seed {seed}");
            }
            if let Message::Binary(data) = message {
                assert!(data.len() <= max_message_bytes, "seed {seed}");
            }
        }
        match error {
            None => assert_eq!(messages, expected, "seed {seed}"),
            Some(error) => {
                assert_eq!(error.close_code(), 1009, "seed {seed}: {error}");
                assert!(messages.len() < expected.len(), "seed {seed}");
            }
        }
    }
}
