//! What the HTTP listeners serve, by path. So far: `/health` (liveness and
//! readiness for load balancers and orchestrators) and `/metrics`
//! (Prometheus, for the addresses allowed); every other path is 404, a
//! known path with another method 405.

use super::{host_meta, Http};
use crate::config::BoshHttpConfig;
use crate::federation::Federation;
use crate::metrics::{Metrics, Snapshot};
use crate::registry::ConnRegistry;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Instant;
use xmpp_core::http::{Request, Response};

/// What a request gets.
pub(crate) enum Answer {
    Respond(Response),
    /// Switch to a WebSocket with this 101 and serve XMPP on it.
    WebSocket(Response),
    /// A BOSH request: its session answers it.
    Bosh(BoshHttpConfig),
    /// An admin API call.
    Api,
    /// Converse.js, when the operator installed it.
    Converse,
}

/// The endpoints and what they read.
pub(crate) struct Endpoints {
    /// Its queues, for `/metrics`.
    pub(crate) router: Arc<crate::router::Router>,
    /// Probed by `/health`.
    pub(crate) backend: Arc<dyn crate::storage::Backend>,
    /// The hosted domains, for the status page.
    pub(crate) domains: Vec<String>,
    pub(crate) metrics: Arc<Metrics>,
    pub(crate) federation: Option<Arc<Federation>>,
    /// Who may read `/metrics`.
    pub(crate) metrics_allow: Vec<ipnet::IpNet>,
    pub(crate) conns: Arc<ConnRegistry>,
    /// When the server started.
    pub(crate) started: Instant,
    /// The software version, for `/health`.
    pub(crate) version: String,
}

impl Endpoints {
    /// The answer to `request` from `client` (behind a trusted proxy, the
    /// address it names) on a listener that is HTTPS when `secure`.
    pub(crate) async fn answer(
        &self,
        request: &Request,
        client: IpAddr,
        secure: bool,
        http: &Http,
    ) -> Answer {
        let segments: Vec<&str> = request.target.segments.iter().map(String::as_str).collect();
        let response = match segments.as_slice() {
            [] => only_get(request).unwrap_or_else(|| self.status_page(client, http)),
            ["health"] => match only_get(request) {
                Some(refusal) => refusal,
                None => self.health(http).await,
            },
            ["metrics"] => only_get(request).unwrap_or_else(|| self.metrics(request, client, http)),
            [".well-known", doc @ ("host-meta" | "host-meta.json")] => only_get(request)
                .unwrap_or_else(|| {
                    let base =
                        host_meta::base_url(http.cfg.external_url.as_deref(), request, secure);
                    let served = |on: bool| base.as_deref().filter(|_| on && http.c2s.is_some());
                    let websocket =
                        served(http.cfg.websocket.is_some()).map(host_meta::websocket_url);
                    let bosh = served(http.cfg.bosh.is_some()).map(host_meta::bosh_url);
                    host_meta::answer(
                        *doc == "host-meta.json",
                        websocket.as_deref(),
                        bosh.as_deref(),
                    )
                }),
            ["api", ..] if http.api.is_some() => return Answer::Api,
            ["conversejs", ..] if http.cfg.conversejs_dir.is_some() => match only_get(request) {
                Some(refusal) => refusal,
                None => return Answer::Converse,
            },
            ["http-bind"] if http.c2s.is_some() => match &http.cfg.bosh {
                Some(cfg) => return Answer::Bosh(cfg.clone()),
                None => Response::text(404, "not found"),
            },
            ["xmpp-websocket"] if http.c2s.is_some() => match &http.cfg.websocket {
                Some(cfg) => match super::websocket::upgrade(request, cfg) {
                    Ok(switch) => return Answer::WebSocket(switch),
                    Err(refusal) => refusal,
                },
                None => Response::text(404, "not found"),
            },
            _ => Response::text(404, "not found"),
        };
        Answer::Respond(response)
    }

    /// `/metrics`: the Prometheus text, for allowed addresses, or for a
    /// request carrying an admin API token (a scraper elsewhere).
    fn metrics(&self, request: &Request, client: IpAddr, http: &Http) -> Response {
        let allowed = self.metrics_allow.iter().any(|n| n.contains(&client));
        let token = || {
            let presented = request.header("authorization")?.strip_prefix("Bearer ")?;
            http.api.as_ref()?.tokens.check(presented.trim())
        };
        if !allowed && token().is_none() {
            return Response::text(403, "metrics are not served to this address");
        }
        let status = self
            .federation
            .as_ref()
            .map(|f| f.status())
            .unwrap_or_default();
        let sessions = self.sessions_by_transport().map(|n| n as i64);
        let queued: usize = (0..self.router.partitions())
            .map(|p| self.router.queue_bytes(p))
            .sum();
        let snapshot = Snapshot {
            connections: self.conns.live() as i64,
            s2s_outgoing: status.outgoing.len() as i64,
            s2s_bidi: status.bidi.len() as i64,
            bosh_sessions: http.bosh.len() as i64,
            sessions,
            hibernated: http
                .c2s
                .as_ref()
                .map_or(0, |c| c.sm_sessions.hibernated_count() as i64),
            queued_bytes: queued as i64,
            stored: self.backend.sizes(),
            uptime_s: self.started.elapsed().as_secs() as i64,
        };
        Response::new(200)
            .body(
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
                self.metrics.render(snapshot),
            )
            .header("Cache-Control", "no-store")
    }

    /// Bound sessions by transport, in `metrics::TRANSPORTS` order (for
    /// `/metrics` and the status page alike).
    fn sessions_by_transport(&self) -> [usize; 3] {
        let mut sessions = [0usize; 3];
        for (_, s) in self.conns.sessions() {
            if let Some(i) = crate::metrics::TRANSPORTS
                .iter()
                .position(|t| *t == s.transport)
            {
                sessions[i] += 1;
            }
        }
        sessions
    }

    /// `/`: the status page, for the addresses `/metrics` is served to.
    fn status_page(&self, client: IpAddr, http: &Http) -> Response {
        if !self.metrics_allow.iter().any(|n| n.contains(&client)) {
            return Response::text(403, "the status page is not served to this address");
        }
        let s2s = self
            .federation
            .as_ref()
            .map(|f| f.status())
            .unwrap_or_default();
        let sessions = self.sessions_by_transport();
        super::status_page::page(&super::status_page::Status {
            version: &self.version,
            uptime_s: self.started.elapsed().as_secs(),
            domains: &self.domains,
            connections: self.conns.live(),
            sessions,
            hibernated: http
                .c2s
                .as_ref()
                .map_or(0, |c| c.sm_sessions.hibernated_count()),
            bosh: http.bosh.len(),
            s2s_outgoing: s2s.outgoing.len(),
            s2s_bidi: s2s.bidi.len(),
        })
    }

    /// `/health`: 200 while serving, 503 while stopping (a load balancer
    /// takes the node out before its connections close) or when the store
    /// does not answer within a second (readiness: this node cannot keep
    /// its promises).
    async fn health(&self, http: &Http) -> Response {
        let stopping = super::stopping(http);
        let backend = self.backend.clone();
        // One probe without retries (a database that is down answers
        // "failing", not after the backend's retry window).
        let probe = smol::unblock(move || backend.ready());
        let storage = smol::future::or(async { probe.await.is_ok() }, async {
            smol::Timer::after(std::time::Duration::from_secs(1)).await;
            false
        })
        .await;
        let ready = !stopping && storage;
        let (status, state) = match (stopping, storage) {
            (true, _) => (503, "stopping"),
            (false, false) => (503, "storage failing"),
            (false, true) => (200, "ok"),
        };
        Response::json(
            status,
            format!(
                "{{\"status\":\"{state}\",\"ready\":{ready},\"checks\":{{\"storage\":\"{}\",\"listeners\":\"ok\"}},\"version\":\"{}\",\"uptime_s\":{},\"connections\":{}}}",
                if storage { "ok" } else { "failing" },
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
