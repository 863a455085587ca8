//! The opening handshake (RFC 6455 §4.1, RFC 7395 §3.1): a `GET` asking
//! to upgrade to the `xmpp` subprotocol, and the server's 101 checked —
//! its `Sec-WebSocket-Accept` computed with xmpp-core's server code, the
//! subprotocol it chose.

use base64::Engine as _;
use smol::io::{AsyncReadExt, AsyncWriteExt};
use smol::net::TcpStream;
use xmpp_core::websocket::{accept, UpgradeRequest};

/// Longest 101 response head read.
const MAX_HEAD: usize = 16 * 1024;

/// Upgrade `tcp` to an XMPP WebSocket at `path` on `host`. Returns the
/// bytes the server sent after its response head (frames already).
pub async fn upgrade(
    tcp: &mut TcpStream,
    host: &str,
    path: &str,
    key_bytes: [u8; 16],
) -> Result<Vec<u8>, String> {
    let key = base64::engine::general_purpose::STANDARD.encode(key_bytes);
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\
         Sec-WebSocket-Protocol: xmpp\r\n\r\n"
    );
    tcp.write_all(request.as_bytes())
        .await
        .map_err(|e| format!("WebSocket upgrade: {e}"))?;
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 2048];
    let head_end = loop {
        if let Some(p) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break p + 4;
        }
        if buf.len() > MAX_HEAD {
            return Err("WebSocket upgrade: response head too long".into());
        }
        let n = tcp
            .read(&mut chunk)
            .await
            .map_err(|e| format!("WebSocket upgrade: {e}"))?;
        if n == 0 {
            return Err("WebSocket upgrade: connection closed before the response".into());
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    check_response(&buf[..head_end], &key)?;
    Ok(buf.split_off(head_end))
}

/// A 101 that accepts our key and chose `xmpp`.
fn check_response(head: &[u8], key: &str) -> Result<(), String> {
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut response = httparse::Response::new(&mut headers);
    match response.parse(head) {
        Ok(httparse::Status::Complete(_)) => {}
        Ok(httparse::Status::Partial) => return Err("WebSocket upgrade: partial head".into()),
        Err(e) => return Err(format!("WebSocket upgrade: bad response: {e}")),
    }
    let code = response.code.unwrap_or(0);
    if code != 101 {
        return Err(format!(
            "WebSocket upgrade refused: {code} {}",
            response.reason.unwrap_or("")
        ));
    }
    let field = |name: &str| {
        response
            .headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(name))
            .map(|h| String::from_utf8_lossy(h.value).trim().to_owned())
    };
    let expected = accept(&UpgradeRequest {
        upgrade: Some("websocket"),
        connection: Some("Upgrade"),
        version: Some("13"),
        key: Some(key),
        protocol: Some("xmpp"),
    })
    .map_err(|e| format!("WebSocket upgrade: {e}"))?;
    if field("sec-websocket-accept").as_deref() != Some(expected.accept_key()) {
        return Err("WebSocket upgrade: wrong Sec-WebSocket-Accept".into());
    }
    if field("sec-websocket-protocol").as_deref() != Some("xmpp") {
        return Err("WebSocket upgrade: the server did not choose the xmpp subprotocol".into());
    }
    Ok(())
}
