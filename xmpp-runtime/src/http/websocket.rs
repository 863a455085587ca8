//! `/xmpp-websocket` (RFC 7395): the upgrade is decided here, then the
//! connection leaves HTTP and becomes a c2s connection like one on TCP
//! (`connection::serve_websocket`): the same session machine, limits,
//! stream management and routing, its frames decoded by the stream.

use crate::config::WebSocketConfig;
use xmpp_core::http::{Request, Response};
use xmpp_core::websocket::{accept, UpgradeRequest};

/// The 101 that switches the connection to the `xmpp` subprotocol, or
/// the refusal to write instead.
pub(super) fn upgrade(request: &Request, cfg: &WebSocketConfig) -> Result<Response, Response> {
    if request.method != "GET" {
        return Err(Response::text(405, "a WebSocket is opened with GET").header("Allow", "GET"));
    }
    if request.minor_version != 1 {
        return Err(Response::text(400, "WebSocket upgrades need HTTP/1.1"));
    }
    if let (Some(origin), Some(allowed)) = (request.header("origin"), &cfg.origins) {
        if !allowed.iter().any(|a| a.eq_ignore_ascii_case(origin)) {
            tracing::debug!(origin, "WebSocket from an origin not allowed");
            return Err(Response::text(
                403,
                "this origin may not open an XMPP WebSocket",
            ));
        }
    }
    let joined = |name: &str| {
        let values: Vec<&str> = request
            .headers
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
            .collect();
        (!values.is_empty()).then(|| values.join(", "))
    };
    let (upgrade, connection, version, key, protocol) = (
        joined("upgrade"),
        joined("connection"),
        joined("sec-websocket-version"),
        joined("sec-websocket-key"),
        joined("sec-websocket-protocol"),
    );
    let fields = UpgradeRequest {
        upgrade: upgrade.as_deref(),
        connection: connection.as_deref(),
        version: version.as_deref(),
        key: key.as_deref(),
        protocol: protocol.as_deref(),
    };
    match accept(&fields) {
        Ok(accepted) => {
            let mut response = Response::new(101);
            for (name, value) in accepted.headers() {
                response = response.header(name, value);
            }
            Ok(response)
        }
        Err(e) => {
            let mut refusal = Response::text(e.status(), &e.to_string());
            if e.status() == 426 {
                // RFC 9110 §15.5.22: a 426 names what to upgrade to.
                refusal = refusal
                    .header("Upgrade", "websocket")
                    .header("Sec-WebSocket-Version", "13");
            }
            Err(refusal)
        }
    }
}
