//! Why a client's bytes end the WebSocket connection, and with which close
//! code (RFC 6455 §7.4.1) the server answers.
//!
//! RFC 6455 §7.1.7 "Fail the WebSocket Connection": the server sends a Close
//! frame with [`WsError::close_code`] (when the transport still allows) and
//! closes; nothing the decoder read after the error is interpreted.

use super::close;

/// A violation of RFC 6455 by the client, or a budget it exceeded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WsError {
    /// §5.1: every frame from a client is masked.
    #[error("unmasked client frame")]
    Unmasked,
    /// §5.2: RSV1-3 are zero unless an extension defines them, and this
    /// server negotiates none.
    #[error("reserved bits {bits:#05b} set without a negotiated extension")]
    ReservedBits {
        /// RSV1, RSV2, RSV3 as a three-bit number.
        bits: u8,
    },
    /// §5.2: opcodes 0x3-0x7 and 0xB-0xF are reserved.
    #[error("reserved opcode {0:#x}")]
    UnknownOpcode(u8),
    /// §5.5: control frames are never fragmented.
    #[error("fragmented control frame (opcode {0:#x})")]
    FragmentedControl(u8),
    /// §5.5: control frame payloads are at most 125 bytes.
    #[error("control frame of {0} bytes (at most 125)")]
    ControlTooLong(u64),
    /// §5.2: the most significant bit of a 64-bit length is zero.
    #[error("64-bit payload length with its top bit set")]
    LengthTopBit,
    /// §5.2: "the minimal number of bytes MUST be used to encode the length".
    #[error("payload length {0} not in its minimal encoding")]
    NonMinimalLength(u64),
    /// §5.4: a continuation frame with no fragmented message open.
    #[error("continuation frame outside a fragmented message")]
    UnexpectedContinuation,
    /// §5.4: a new text or binary frame while a fragmented message waits for
    /// its continuation.
    #[error("new data frame (opcode {0:#x}) inside a fragmented message")]
    ExpectedContinuation(u8),
    /// A frame longer than [`FrameLimits::max_frame_bytes`](super::FrameLimits).
    #[error("frame of {len} bytes (at most {max})")]
    FrameTooBig {
        /// The length the header announced.
        len: u64,
        /// The budget.
        max: usize,
    },
    /// A message that would grow past
    /// [`FrameLimits::max_message_bytes`](super::FrameLimits).
    #[error("message of at least {len} bytes (at most {max})")]
    MessageTooBig {
        /// The bytes received so far plus those the header announced.
        len: u64,
        /// The budget.
        max: usize,
    },
    /// §8.1: a text message that is not UTF-8.
    #[error("text message is not UTF-8")]
    InvalidUtf8,
    /// §5.5.1: a close payload has no body or at least a two-byte code.
    #[error("close frame with a one-byte payload")]
    CloseTooShort,
    /// §7.4: a code that must not be sent or is not defined.
    #[error("close code {0} may not be sent")]
    InvalidCloseCode(u16),
    /// §5.5.1: the close reason is UTF-8.
    #[error("close reason is not UTF-8")]
    InvalidCloseReason,
}

impl WsError {
    /// The close code the server sends when failing the connection for
    /// this error (RFC 6455 §7.4.1).
    pub fn close_code(&self) -> u16 {
        match self {
            WsError::FrameTooBig { .. } | WsError::MessageTooBig { .. } => close::MESSAGE_TOO_BIG,
            WsError::InvalidUtf8 | WsError::InvalidCloseReason => close::INVALID_PAYLOAD,
            WsError::Unmasked
            | WsError::ReservedBits { .. }
            | WsError::UnknownOpcode(_)
            | WsError::FragmentedControl(_)
            | WsError::ControlTooLong(_)
            | WsError::LengthTopBit
            | WsError::NonMinimalLength(_)
            | WsError::UnexpectedContinuation
            | WsError::ExpectedContinuation(_)
            | WsError::CloseTooShort
            | WsError::InvalidCloseCode(_) => close::PROTOCOL_ERROR,
        }
    }
}
