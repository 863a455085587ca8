//! Close codes (RFC 6455 §7.4) and the body of a received Close frame.
//!
//! Which codes a peer may send follows §7.4.1-§7.4.2 as the Autobahn test
//! suite reads them: the defined codes 1000-1003 and 1007-1011, and 3000-4999
//! (registered and private use). 1004 is reserved, 1005, 1006 and 1015 stand
//! for "no code" / "abnormal" / "TLS failure" and must never be on the wire,
//! the rest of 1000-2999 is for future versions of the protocol and below
//! 1000 is unused: receiving any of those fails the connection with 1002.
//! 1012-1014, registered with IANA after RFC 6455, are refused too; no
//! client has a reason to send them (they describe server conditions).

use super::WsError;

/// Normal closure: the XMPP stream ended with `</close>` (RFC 7395 §3.6).
pub const NORMAL: u16 = 1000;
/// The endpoint is going away (server shutdown, page navigated away).
pub const GOING_AWAY: u16 = 1001;
/// The peer broke RFC 6455.
pub const PROTOCOL_ERROR: u16 = 1002;
/// The peer sent a kind of data we do not accept: binary messages, which
/// XMPP over WebSocket does not use (RFC 7395 §3.4).
pub const UNSUPPORTED_DATA: u16 = 1003;
/// A text message or close reason that is not UTF-8.
pub const INVALID_PAYLOAD: u16 = 1007;
/// A message the server's policy refuses.
pub const POLICY_VIOLATION: u16 = 1008;
/// A frame or message over the budget.
pub const MESSAGE_TOO_BIG: u16 = 1009;
/// The server hit an unexpected condition.
pub const INTERNAL_ERROR: u16 = 1011;

/// Longest close reason: a control payload holds 125 bytes, two of them
/// the code.
pub const MAX_REASON_BYTES: usize = 123;

/// Whether a peer may send `code` in a Close frame.
pub fn is_valid_code(code: u16) -> bool {
    matches!(code, 1000..=1003 | 1007..=1011 | 3000..=4999)
}

/// A received close code with its reason (possibly empty).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CloseFrame {
    /// The status code, one [`is_valid_code`] accepts.
    pub code: u16,
    /// The UTF-8 reason, at most [`MAX_REASON_BYTES`].
    pub reason: String,
}

/// Read the payload of a Close frame (already unmasked, at most 125 bytes):
/// empty means "no status code" (§5.5.1), one byte is malformed, otherwise
/// a big-endian code and a UTF-8 reason.
pub fn parse_payload(payload: &[u8]) -> Result<Option<CloseFrame>, WsError> {
    match payload {
        [] => Ok(None),
        [_] => Err(WsError::CloseTooShort),
        [hi, lo, reason @ ..] => {
            let code = u16::from_be_bytes([*hi, *lo]);
            if !is_valid_code(code) {
                return Err(WsError::InvalidCloseCode(code));
            }
            let reason = std::str::from_utf8(reason).map_err(|_| WsError::InvalidCloseReason)?;
            Ok(Some(CloseFrame {
                code,
                reason: reason.to_owned(),
            }))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every code from 0 to 65535 against the table of §7.4.
    #[test]
    fn close_code_table() {
        let allowed = |c: u16| {
            (1000..=1003).contains(&c) || (1007..=1011).contains(&c) || (3000..=4999).contains(&c)
        };
        for code in 0..=u16::MAX {
            assert_eq!(is_valid_code(code), allowed(code), "code {code}");
        }
        for code in [
            1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 3000, 3999, 4000, 4999,
        ] {
            assert!(is_valid_code(code), "{code}");
        }
        for code in [
            0, 999, 1004, 1005, 1006, 1012, 1013, 1014, 1015, 1016, 1100, 2000, 2999, 5000, 65535,
        ] {
            assert!(!is_valid_code(code), "{code}");
            let mut payload = code.to_be_bytes().to_vec();
            payload.extend_from_slice(b"bye");
            assert_eq!(
                parse_payload(&payload),
                Err(WsError::InvalidCloseCode(code))
            );
            assert_eq!(WsError::InvalidCloseCode(code).close_code(), PROTOCOL_ERROR);
        }
    }

    #[test]
    fn payload_shapes() {
        assert_eq!(parse_payload(&[]), Ok(None));
        assert_eq!(parse_payload(&[0x03]), Err(WsError::CloseTooShort));
        assert_eq!(WsError::CloseTooShort.close_code(), PROTOCOL_ERROR);
        assert_eq!(
            parse_payload(&[0x03, 0xe8]),
            Ok(Some(CloseFrame {
                code: 1000,
                reason: String::new()
            }))
        );
        let mut payload = vec![0x0f, 0xa0];
        payload.extend_from_slice("au revoir, élan".as_bytes());
        assert_eq!(
            parse_payload(&payload),
            Ok(Some(CloseFrame {
                code: 4000,
                reason: "au revoir, élan".into()
            }))
        );
        // A reason cut inside a character, and bytes that are never UTF-8.
        let cut = [0x03, 0xe8, b'a', 0xc3];
        assert_eq!(parse_payload(&cut), Err(WsError::InvalidCloseReason));
        assert_eq!(
            parse_payload(&[0x03, 0xe8, 0xff, 0xfe]),
            Err(WsError::InvalidCloseReason)
        );
        assert_eq!(WsError::InvalidCloseReason.close_code(), INVALID_PAYLOAD);
    }
}
