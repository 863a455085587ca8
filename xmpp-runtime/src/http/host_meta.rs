//! XEP-0156 discovery over HTTP: `/.well-known/host-meta` (XRD) and
//! `/.well-known/host-meta.json`, telling web clients where the WebSocket
//! (and, once built, BOSH) endpoints are. Served to any origin: a web
//! client on another site has to read it before it can connect.

use xmpp_core::http::{Request, Response};
use xmpp_core::xml::escape_attr;

/// XEP-0156 §3: the link relations of an RFC 7395 and a BOSH endpoint.
const WEBSOCKET_REL: &str = "urn:xmpp:alt-connections:websocket";
const BOSH_REL: &str = "urn:xmpp:alt-connections:xbosh";

/// The answer for `json` (host-meta.json) or the XRD, listing the
/// endpoints served: `websocket` (its `ws://` or `wss://` URL) and `bosh`.
pub(super) fn answer(json: bool, websocket: Option<&str>, bosh: Option<&str>) -> Response {
    let links: Vec<(&str, &str)> = [(WEBSOCKET_REL, websocket), (BOSH_REL, bosh)]
        .into_iter()
        .filter_map(|(rel, href)| href.map(|h| (rel, h)))
        .collect();
    let response = if json {
        let items: Vec<String> = links
            .iter()
            .map(|(rel, href)| {
                format!(
                    "{{\"rel\":{},\"href\":{}}}",
                    json_string(rel),
                    json_string(href)
                )
            })
            .collect();
        Response::new(200).body(
            "application/json",
            format!("{{\"links\":[{}]}}", items.join(",")),
        )
    } else {
        let mut xrd = String::from(
            "<?xml version='1.0' encoding='utf-8'?>\n<XRD xmlns='http://docs.oasis-open.org/ns/xri/xrd-1.0'>\n",
        );
        for (rel, href) in links {
            let mut escaped = Vec::new();
            escape_attr(href, &mut escaped);
            xrd.push_str(&format!(
                "  <Link rel='{rel}' href='{}'/>\n",
                String::from_utf8_lossy(&escaped)
            ));
        }
        xrd.push_str("</XRD>\n");
        Response::new(200).body("application/xrd+xml", xrd)
    };
    response
        .header("Access-Control-Allow-Origin", "*")
        .header("Cache-Control", "max-age=3600")
}

/// The base URL clients reach this server at: the configured external
/// URL, else this listener's scheme and the request's `Host` (when it is
/// a plain host and port: anything else could inject into the document).
pub(super) fn base_url(external: Option<&str>, request: &Request, secure: bool) -> Option<String> {
    if let Some(url) = external {
        return Some(url.trim_end_matches('/').to_owned());
    }
    let host = request.header("host")?;
    let plain = !host.is_empty()
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':' | b'[' | b']'));
    if !plain {
        return None;
    }
    let scheme = if secure { "https" } else { "http" };
    Some(format!("{scheme}://{host}"))
}

/// The BOSH URL under `base`.
pub(super) fn bosh_url(base: &str) -> String {
    format!("{base}/http-bind")
}

/// The WebSocket URL under `base` (`http` becomes `ws`, `https` `wss`).
pub(super) fn websocket_url(base: &str) -> String {
    let ws = if let Some(rest) = base.strip_prefix("https://") {
        format!("wss://{rest}")
    } else if let Some(rest) = base.strip_prefix("http://") {
        format!("ws://{rest}")
    } else {
        base.to_owned()
    };
    format!("{ws}/xmpp-websocket")
}

fn json_string(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_documents_list_the_websocket() {
        let xrd = answer(false, Some("wss://chat.example/xmpp-websocket"), None);
        let body = String::from_utf8(xrd.body).expect("utf-8");
        assert!(body.contains(
            "<Link rel='urn:xmpp:alt-connections:websocket' href='wss://chat.example/xmpp-websocket'/>"
        ));
        let json = answer(true, Some("wss://chat.example/xmpp-websocket"), None);
        assert_eq!(
            String::from_utf8(json.body).expect("utf-8"),
            "{\"links\":[{\"rel\":\"urn:xmpp:alt-connections:websocket\",\"href\":\"wss://chat.example/xmpp-websocket\"}]}"
        );
    }

    #[test]
    fn urls() {
        assert_eq!(
            websocket_url("https://chat.example"),
            "wss://chat.example/xmpp-websocket"
        );
        assert_eq!(
            websocket_url("http://127.0.0.1:5280"),
            "ws://127.0.0.1:5280/xmpp-websocket"
        );
    }
}
