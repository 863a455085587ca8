//! What the HTTP listeners serve, by path. So far: `/health` (liveness and
//! readiness for load balancers and orchestrators); every other path is
//! 404, a known path with another method 405.

use super::Http;
use crate::registry::ConnRegistry;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;
use xmpp_core::http::{Request, Response};

/// The endpoints and what they read.
pub(crate) struct Endpoints {
    pub(crate) conns: Arc<ConnRegistry>,
    /// When the server started.
    pub(crate) started: Instant,
    /// The software version, for `/health`.
    pub(crate) version: String,
}

impl Endpoints {
    /// The answer to `request`.
    pub(crate) fn answer(
        &self,
        request: &Request,
        _peer: SocketAddr,
        http: &Http,
        _conn_started: Instant,
    ) -> Response {
        let segments: Vec<&str> = request.target.segments.iter().map(String::as_str).collect();
        match segments.as_slice() {
            ["health"] => only_get(request).unwrap_or_else(|| self.health(http)),
            _ => Response::text(404, "not found"),
        }
    }

    /// `/health`: 200 while serving, 503 while stopping (a load balancer
    /// takes the node out before its connections close).
    fn health(&self, http: &Http) -> Response {
        let stopping = super::stopping(http);
        let (status, state) = if stopping {
            (503, "stopping")
        } else {
            (200, "ok")
        };
        Response::json(
            status,
            format!(
                "{{\"status\":\"{state}\",\"ready\":{},\"version\":\"{}\",\"uptime_s\":{},\"connections\":{}}}",
                !stopping,
                self.version,
                self.started.elapsed().as_secs(),
                self.conns.live()
            ),
        )
        .header("Cache-Control", "no-store")
    }
}

/// 405 unless the request is a GET or HEAD.
fn only_get(request: &Request) -> Option<Response> {
    match request.method.as_str() {
        "GET" | "HEAD" => None,
        _ => Some(Response::text(405, "method not allowed").header("Allow", "GET, HEAD")),
    }
}
