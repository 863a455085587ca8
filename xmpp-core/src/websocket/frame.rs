//! The server side of RFC 6455 framing: bytes from a client in, messages
//! out, Sans-IO.
//!
//! The decoder copies no unread input. [`FrameDecoder::feed`] takes bytes
//! from the front of the caller's slice only as far as the next complete
//! message and leaves the rest there, so what it holds is the current
//! header (inline, at most [`MAX_HEADER_BYTES`]), the payload of the current
//! control frame (at most 125 bytes) and the message being assembled —
//! however large the runtime's reads are. The XML stream parser, by
//! contrast, copies everything fed to it; here the transport is the
//! untrusted side.
//!
//! Budgets are decided from each header, before a byte of its payload is
//! kept: a data frame over [`FrameLimits::max_frame_bytes`], or one that
//! would take its message over [`FrameLimits::max_message_bytes`], fails the
//! connection with 1009. The message buffer grows as bytes arrive (a
//! header alone allocates nothing) and never past the message budget, so
//! [`FrameDecoder::buffered_bytes`] stays at most
//! `max_message_bytes + 125`: a whole message can be pending when a ping
//! arrives between two of its fragments, which §5.4 allows.
//!
//! Text is checked as UTF-8 while it arrives, so a bad byte fails the
//! connection (1007) at once rather than after the budget's worth of data
//! (§8.1). A completed message hands its buffer to the caller: between
//! messages the decoder holds no heap memory, only its struct (152 bytes
//! on 64-bit targets).

use super::close::{self, CloseFrame};
use super::header::{Header, HeaderReader, Opcode, MAX_CONTROL_PAYLOAD};
use super::WsError;

#[cfg(doc)]
use super::header::MAX_HEADER_BYTES;

/// The decoder's budgets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameLimits {
    /// Largest message after reassembly. RFC 7395 §3.3.3 puts exactly one
    /// XML element in a message, so this plays the part of the XML
    /// parser's `max_stanza_bytes`.
    pub max_message_bytes: usize,
    /// Largest data frame payload (control frames are bounded at 125 by
    /// the protocol).
    pub max_frame_bytes: usize,
}

impl Default for FrameLimits {
    /// 256 KiB for both, the default stanza budget of
    /// [`crate::xml::Limits`].
    fn default() -> Self {
        FrameLimits {
            max_message_bytes: 256 * 1024,
            max_frame_bytes: 256 * 1024,
        }
    }
}

/// What a client sent, one complete unit at a time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// A text message, reassembled and valid UTF-8: in XMPP, one element.
    Text(String),
    /// A binary message. XMPP over WebSocket has none; the caller closes
    /// with [`close::UNSUPPORTED_DATA`] (RFC 7395 §3.4).
    Binary(Vec<u8>),
    /// A ping: answer with a pong carrying the same payload (§5.5.2).
    Ping(Vec<u8>),
    /// A pong (solicited or not, §5.5.3).
    Pong(Vec<u8>),
    /// The client closes, with or without a status code. The decoder
    /// ignores anything after it (§5.5.1: no data follows a Close).
    Close(Option<CloseFrame>),
}

/// Decodes the frames of one client connection.
#[derive(Debug)]
pub struct FrameDecoder {
    limits: FrameLimits,
    header: HeaderReader,
    /// The frame whose payload is being read.
    frame: Option<Payload>,
    /// The data message being assembled, across its fragments.
    message: Option<Partial>,
    /// The payload of the control frame being read.
    control: Vec<u8>,
    state: State,
}

#[derive(Debug, Clone, Copy)]
struct Payload {
    header: Header,
    read: u64,
}

#[derive(Debug)]
struct Partial {
    text: bool,
    buf: Vec<u8>,
    /// Length of the prefix of `buf` known to be valid UTF-8 (text only);
    /// the rest is at most an incomplete character.
    utf8_valid: usize,
}

#[derive(Debug)]
enum State {
    Open,
    Closed,
    Failed(WsError),
}

impl FrameDecoder {
    /// A decoder for a connection just upgraded.
    pub fn new(limits: FrameLimits) -> FrameDecoder {
        FrameDecoder {
            limits,
            header: HeaderReader::default(),
            frame: None,
            message: None,
            control: Vec::new(),
            state: State::Open,
        }
    }

    /// Take bytes from the front of `input` until a message is complete and
    /// return it, leaving the bytes after it in `input`; `Ok(None)` means
    /// `input` was used up without completing one. Call again until then:
    ///
    /// ```
    /// # use xmpp_core::websocket::{FrameDecoder, FrameLimits, Message};
    /// let mut decoder = FrameDecoder::new(FrameLimits::default());
    /// let mut input: &[u8] = &[0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58];
    /// while let Some(message) = decoder.feed(&mut input)? {
    ///     assert_eq!(message, Message::Text("Hello".into()));
    /// }
    /// # Ok::<(), xmpp_core::websocket::WsError>(())
    /// ```
    ///
    /// An error is final: the connection is to be failed with its
    /// [`WsError::close_code`], and every later call returns it again. After
    /// a [`Message::Close`] the rest of the input is discarded.
    pub fn feed(&mut self, input: &mut &[u8]) -> Result<Option<Message>, WsError> {
        match &self.state {
            State::Failed(error) => return Err(error.clone()),
            State::Closed => {
                *input = &[];
                return Ok(None);
            }
            State::Open => {}
        }
        self.step(input)
            .inspect_err(|error| self.fail(error.clone()))
    }

    /// New budgets from the next frame on (an authenticated client gets
    /// the larger stanza budget, as the XML parser does).
    pub fn set_limits(&mut self, limits: FrameLimits) {
        self.limits = limits;
    }

    /// Heap bytes held plus the pending header: at most
    /// `max_message_bytes + 125`.
    pub fn buffered_bytes(&self) -> usize {
        let message = self.message.as_ref().map_or(0, |m| m.buf.capacity());
        message + self.control.capacity() + self.header.pending()
    }

    /// Whether the client's Close has been read.
    pub fn is_closed(&self) -> bool {
        matches!(self.state, State::Closed)
    }

    fn step(&mut self, input: &mut &[u8]) -> Result<Option<Message>, WsError> {
        loop {
            if self.frame.is_none() {
                let Some(header) = self.header.read(input)? else {
                    return Ok(None);
                };
                self.begin(header)?;
            }
            if !self.read_payload(input)? {
                return Ok(None);
            }
            if let Some(message) = self.finish()? {
                return Ok(Some(message));
            }
        }
    }

    /// Check a header against the message state and the budgets, and get
    /// ready for its payload.
    fn begin(&mut self, header: Header) -> Result<(), WsError> {
        let so_far = match (header.opcode, &self.message) {
            (Opcode::Continuation, None) => return Err(WsError::UnexpectedContinuation),
            (Opcode::Continuation, Some(partial)) => partial.buf.len(),
            (Opcode::Text | Opcode::Binary, Some(_)) => {
                return Err(WsError::ExpectedContinuation(header.opcode.bits()))
            }
            (Opcode::Text | Opcode::Binary, None) => 0,
            (Opcode::Close | Opcode::Ping | Opcode::Pong, _) => {
                // The header reader bounded it at 125.
                self.control
                    .reserve_exact(usize::try_from(header.len).unwrap_or(MAX_CONTROL_PAYLOAD));
                self.frame = Some(Payload { header, read: 0 });
                return Ok(());
            }
        };
        if header.len > self.limits.max_frame_bytes as u64 {
            return Err(WsError::FrameTooBig {
                len: header.len,
                max: self.limits.max_frame_bytes,
            });
        }
        let total = (so_far as u64).saturating_add(header.len);
        if total > self.limits.max_message_bytes as u64 {
            return Err(WsError::MessageTooBig {
                len: total,
                max: self.limits.max_message_bytes,
            });
        }
        if self.message.is_none() {
            self.message = Some(Partial {
                text: header.opcode == Opcode::Text,
                buf: Vec::new(),
                utf8_valid: 0,
            });
        }
        self.frame = Some(Payload { header, read: 0 });
        Ok(())
    }

    /// Unmask payload bytes from `input` into their buffer; true once the
    /// frame's payload is complete.
    fn read_payload(&mut self, input: &mut &[u8]) -> Result<bool, WsError> {
        let Some(frame) = self.frame.as_mut() else {
            return Ok(true);
        };
        let remaining = frame.header.len - frame.read;
        let n = usize::try_from(remaining)
            .unwrap_or(usize::MAX)
            .min(input.len());
        let (chunk, rest) = input.split_at(n);
        *input = rest;
        let mask = frame.header.mask;
        let phase = (frame.read % 4) as usize;
        let unmasked = chunk
            .iter()
            .enumerate()
            .map(|(i, b)| b ^ mask[(phase + i) % 4]);
        frame.read += n as u64;
        let complete = frame.read == frame.header.len;
        if frame.header.opcode.is_control() {
            self.control.extend(unmasked);
            return Ok(complete);
        }
        let Some(partial) = self.message.as_mut() else {
            return Ok(complete);
        };
        reserve_within(&mut partial.buf, n, self.limits.max_message_bytes);
        partial.buf.extend(unmasked);
        if partial.text {
            check_utf8_prefix(partial)?;
        }
        Ok(complete)
    }

    /// A frame's payload is complete: the message it ends, if any.
    fn finish(&mut self) -> Result<Option<Message>, WsError> {
        let Some(frame) = self.frame.take() else {
            return Ok(None);
        };
        let message = match frame.header.opcode {
            Opcode::Ping => Message::Ping(std::mem::take(&mut self.control)),
            Opcode::Pong => Message::Pong(std::mem::take(&mut self.control)),
            Opcode::Close => {
                let close = close::parse_payload(&self.control)?;
                self.control = Vec::new();
                self.message = None;
                self.state = State::Closed;
                Message::Close(close)
            }
            Opcode::Text | Opcode::Binary | Opcode::Continuation => {
                if !frame.header.fin {
                    return Ok(None);
                }
                let Some(partial) = self.message.take() else {
                    return Ok(None);
                };
                if !partial.text {
                    Message::Binary(partial.buf)
                } else if partial.utf8_valid != partial.buf.len() {
                    // Ends inside a character.
                    return Err(WsError::InvalidUtf8);
                } else {
                    Message::Text(String::from_utf8(partial.buf).map_err(|_| WsError::InvalidUtf8)?)
                }
            }
        };
        Ok(Some(message))
    }

    fn fail(&mut self, error: WsError) {
        tracing::debug!(%error, code = error.close_code(), "websocket: failing the connection");
        self.frame = None;
        self.message = None;
        self.control = Vec::new();
        self.state = State::Failed(error);
    }
}

/// Make room for `more` bytes, growing geometrically but never past `max`
/// (the header checks guarantee `len + more <= max`), so capacity stays
/// within the budget where `Vec`'s own growth could double past it.
fn reserve_within(buf: &mut Vec<u8>, more: usize, max: usize) {
    let need = buf.len() + more;
    if need <= buf.capacity() {
        return;
    }
    let target = need
        .max(buf.capacity().saturating_mul(2))
        .min(max.max(need));
    buf.reserve_exact(target - buf.len());
}

/// Extend the valid UTF-8 prefix over newly arrived bytes; an invalid
/// sequence fails now, an incomplete one at the end waits for more.
fn check_utf8_prefix(partial: &mut Partial) -> Result<(), WsError> {
    match std::str::from_utf8(&partial.buf[partial.utf8_valid..]) {
        Ok(_) => partial.utf8_valid = partial.buf.len(),
        Err(e) if e.error_len().is_none() => partial.utf8_valid += e.valid_up_to(),
        Err(_) => return Err(WsError::InvalidUtf8),
    }
    Ok(())
}
