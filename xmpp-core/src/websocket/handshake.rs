//! The opening handshake's decisions (RFC 6455 §4.2, RFC 7395 §3.1), with
//! the HTTP left to the HTTP layer.
//!
//! The caller parses the request, checks what is HTTP's business (a `GET`,
//! HTTP/1.1, `Host`, and the `Origin` policy, which only it knows), and
//! passes the values of the WebSocket header fields. A field sent more than
//! once is passed as its lines joined with `", "` (RFC 9110 §5.3). Back
//! comes the 101 response or a refusal with its status, both ready to
//! write.
//!
//! The `xmpp` subprotocol is compulsory: a client that does not offer it is
//! not speaking RFC 7395 and is refused, rather than accepted into a
//! connection it would have to close itself (§3.1).

use base64::Engine as _;
use sha1::{Digest, Sha1};

/// The GUID RFC 6455 §1.3 appends to the key.
const ACCEPT_GUID: &str = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// The subprotocol RFC 7395 registers.
pub const XMPP_PROTOCOL: &str = "xmpp";

/// The one WebSocket version there is (§4.1).
pub const VERSION: &str = "13";

/// The request's WebSocket header field values, `None` when absent.
#[derive(Debug, Clone, Copy, Default)]
pub struct UpgradeRequest<'a> {
    /// `Upgrade`: must list `websocket` (any case).
    pub upgrade: Option<&'a str>,
    /// `Connection`: must list `upgrade` (any case), e.g. `keep-alive, Upgrade`.
    pub connection: Option<&'a str>,
    /// `Sec-WebSocket-Version`: must be 13.
    pub version: Option<&'a str>,
    /// `Sec-WebSocket-Key`: base64 of 16 bytes.
    pub key: Option<&'a str>,
    /// `Sec-WebSocket-Protocol`: must list `xmpp`.
    pub protocol: Option<&'a str>,
}

/// Why an upgrade is refused; [`HandshakeError::status`] is the HTTP
/// answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HandshakeError {
    /// `Upgrade` missing or without `websocket`.
    #[error("not a WebSocket upgrade (Upgrade lacks websocket)")]
    NotWebSocket,
    /// `Connection` missing or without `upgrade`.
    #[error("Connection does not list upgrade")]
    NoConnectionUpgrade,
    /// A version other than 13, or none (pre-RFC drafts sent none): 426
    /// with the version we speak (§4.2.2).
    #[error("unsupported WebSocket version {}", .0.as_deref().unwrap_or("(none)"))]
    UnsupportedVersion(Option<String>),
    /// No `Sec-WebSocket-Key`.
    #[error("missing Sec-WebSocket-Key")]
    MissingKey,
    /// A key that is not base64 of 16 bytes (§4.1).
    #[error("Sec-WebSocket-Key is not base64 of 16 bytes")]
    BadKey,
    /// The client did not offer `xmpp` (RFC 7395 §3.1).
    #[error("the xmpp subprotocol is not offered")]
    NoXmppProtocol,
}

impl HandshakeError {
    /// 426 Upgrade Required for a version we do not speak, 400 otherwise.
    pub fn status(&self) -> u16 {
        match self {
            HandshakeError::UnsupportedVersion(_) => 426,
            _ => 400,
        }
    }

    /// The whole refusal: status line, headers, and the reason as a short
    /// plain-text body. The connection is not kept.
    pub fn write_response(&self, out: &mut Vec<u8>) {
        let body = self.to_string();
        let status = match self.status() {
            426 => "426 Upgrade Required",
            _ => "400 Bad Request",
        };
        out.extend_from_slice(b"HTTP/1.1 ");
        out.extend_from_slice(status.as_bytes());
        out.extend_from_slice(b"\r\n");
        if self.status() == 426 {
            // RFC 9110 §15.5.22: a 426 names the protocol to upgrade to.
            out.extend_from_slice(b"Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\n");
        }
        out.extend_from_slice(b"Connection: close\r\nContent-Type: text/plain; charset=utf-8\r\n");
        out.extend_from_slice(format!("Content-Length: {}\r\n\r\n", body.len()).as_bytes());
        out.extend_from_slice(body.as_bytes());
    }
}

/// An accepted upgrade.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accepted {
    accept: String,
}

impl Accepted {
    /// The `Sec-WebSocket-Accept` value.
    pub fn accept_key(&self) -> &str {
        &self.accept
    }

    /// The header fields of the 101 response, for an HTTP layer that writes
    /// its own.
    pub fn headers(&self) -> [(&'static str, &str); 4] {
        [
            ("Upgrade", "websocket"),
            ("Connection", "Upgrade"),
            ("Sec-WebSocket-Accept", &self.accept),
            ("Sec-WebSocket-Protocol", XMPP_PROTOCOL),
        ]
    }

    /// The whole 101 response, status line to the empty line; frames follow
    /// it on the same connection.
    pub fn write_response(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(b"HTTP/1.1 101 Switching Protocols\r\n");
        for (name, value) in self.headers() {
            out.extend_from_slice(name.as_bytes());
            out.extend_from_slice(b": ");
            out.extend_from_slice(value.as_bytes());
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b"\r\n");
    }
}

/// Decide an upgrade request.
pub fn accept(request: &UpgradeRequest<'_>) -> Result<Accepted, HandshakeError> {
    if !has_token(request.upgrade, "websocket", true) {
        return Err(HandshakeError::NotWebSocket);
    }
    if !has_token(request.connection, "upgrade", true) {
        return Err(HandshakeError::NoConnectionUpgrade);
    }
    let version = request.version.map(str::trim);
    if version != Some(VERSION) {
        return Err(HandshakeError::UnsupportedVersion(
            version.map(str::to_owned),
        ));
    }
    let key = request
        .key
        .map(str::trim)
        .ok_or(HandshakeError::MissingKey)?;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(key)
        .map_err(|_| HandshakeError::BadKey)?;
    if decoded.len() != 16 {
        return Err(HandshakeError::BadKey);
    }
    // Subprotocol names are compared exactly: a browser checks that the
    // name we echo is one it asked for, byte for byte.
    if !has_token(request.protocol, XMPP_PROTOCOL, false) {
        return Err(HandshakeError::NoXmppProtocol);
    }
    Ok(Accepted {
        accept: accept_key(key),
    })
}

/// `Sec-WebSocket-Accept` for a key: base64 of SHA-1(key + GUID) (§4.2.2).
pub fn accept_key(key: &str) -> String {
    let mut sha = Sha1::new();
    sha.update(key.as_bytes());
    sha.update(ACCEPT_GUID.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(sha.finalize())
}

/// Whether a comma-separated field value lists `token`.
fn has_token(value: Option<&str>, token: &str, ignore_case: bool) -> bool {
    value.is_some_and(|v| {
        v.split(',').map(|t| t.trim_matches([' ', '\t'])).any(|t| {
            if ignore_case {
                t.eq_ignore_ascii_case(token)
            } else {
                t == token
            }
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";

    fn request() -> UpgradeRequest<'static> {
        UpgradeRequest {
            upgrade: Some("websocket"),
            connection: Some("Upgrade"),
            version: Some("13"),
            key: Some(KEY),
            protocol: Some("xmpp"),
        }
    }

    /// RFC 6455 §1.3: the worked key.
    #[test]
    fn rfc_6455_accept_example() {
        assert_eq!(accept_key(KEY), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
        let accepted = accept(&request()).unwrap();
        assert_eq!(accepted.accept_key(), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
        let mut out = Vec::new();
        accepted.write_response(&mut out);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "HTTP/1.1 101 Switching Protocols\r\n\
             Upgrade: websocket\r\n\
             Connection: Upgrade\r\n\
             Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\
             Sec-WebSocket-Protocol: xmpp\r\n\
             \r\n"
        );
    }

    /// What browsers and proxies actually send: other tokens, other case,
    /// repeated fields joined, whitespace.
    #[test]
    fn token_lists_as_sent_in_practice() {
        let accepted = accept(&UpgradeRequest {
            upgrade: Some("WebSocket"),
            connection: Some("keep-alive, Upgrade"),
            version: Some(" 13 "),
            key: Some(" dGhlIHNhbXBsZSBub25jZQ== "),
            protocol: Some("chat,\txmpp, superchat"),
        })
        .unwrap();
        assert_eq!(accepted.accept_key(), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
        let connection = UpgradeRequest {
            connection: Some("upgrade"),
            ..request()
        };
        assert!(accept(&connection).is_ok());
    }

    #[test]
    fn refusals_and_their_status() {
        let cases: Vec<(UpgradeRequest<'static>, HandshakeError)> = vec![
            (
                UpgradeRequest {
                    upgrade: None,
                    ..request()
                },
                HandshakeError::NotWebSocket,
            ),
            (
                UpgradeRequest {
                    upgrade: Some("h2c"),
                    ..request()
                },
                HandshakeError::NotWebSocket,
            ),
            (
                UpgradeRequest {
                    connection: Some("keep-alive"),
                    ..request()
                },
                HandshakeError::NoConnectionUpgrade,
            ),
            (
                UpgradeRequest {
                    connection: None,
                    ..request()
                },
                HandshakeError::NoConnectionUpgrade,
            ),
            (
                UpgradeRequest {
                    version: Some("8"),
                    ..request()
                },
                HandshakeError::UnsupportedVersion(Some("8".into())),
            ),
            (
                UpgradeRequest {
                    version: None,
                    ..request()
                },
                HandshakeError::UnsupportedVersion(None),
            ),
            (
                UpgradeRequest {
                    key: None,
                    ..request()
                },
                HandshakeError::MissingKey,
            ),
            (
                UpgradeRequest {
                    key: Some("not base64!"),
                    ..request()
                },
                HandshakeError::BadKey,
            ),
            (
                // Base64 of 15 bytes, then of 17.
                UpgradeRequest {
                    key: Some("AAAAAAAAAAAAAAAAAAAA"),
                    ..request()
                },
                HandshakeError::BadKey,
            ),
            (
                UpgradeRequest {
                    key: Some("AAAAAAAAAAAAAAAAAAAAAAA="),
                    ..request()
                },
                HandshakeError::BadKey,
            ),
            (
                UpgradeRequest {
                    protocol: None,
                    ..request()
                },
                HandshakeError::NoXmppProtocol,
            ),
            (
                UpgradeRequest {
                    protocol: Some("chat, XMPP, xmpp2"),
                    ..request()
                },
                HandshakeError::NoXmppProtocol,
            ),
        ];
        for (req, expected) in cases {
            let err = accept(&req).unwrap_err();
            assert_eq!(err, expected, "{req:?}");
            let status = if matches!(expected, HandshakeError::UnsupportedVersion(_)) {
                426
            } else {
                400
            };
            assert_eq!(err.status(), status);
        }
    }

    #[test]
    fn refusal_responses() {
        let mut out = Vec::new();
        HandshakeError::UnsupportedVersion(Some("8".into())).write_response(&mut out);
        let text = String::from_utf8(out).unwrap();
        assert!(
            text.starts_with("HTTP/1.1 426 Upgrade Required\r\n"),
            "{text}"
        );
        assert!(text.contains("\r\nSec-WebSocket-Version: 13\r\n"));
        assert!(text.contains("\r\nUpgrade: websocket\r\n"));
        let body = "unsupported WebSocket version 8";
        assert!(text.ends_with(&format!("Content-Length: {}\r\n\r\n{body}", body.len())));

        let mut out = Vec::new();
        HandshakeError::NoXmppProtocol.write_response(&mut out);
        let text = String::from_utf8(out).unwrap();
        assert!(text.starts_with("HTTP/1.1 400 Bad Request\r\n"));
        assert!(!text.contains("Sec-WebSocket-Version"));
        assert!(text.ends_with("\r\n\r\nthe xmpp subprotocol is not offered"));
    }
}
