//! The admin REST API at `/api/` (issue 14): users, sessions, messages,
//! announcements and server statistics, for automation. Every call but
//! the OpenAPI document needs a bearer token made by `vireo token create`
//! ([`ApiTokens`]); every call is logged with the token's name. Bodies are
//! JSON, parsed by serde_json within the HTTP body budget. The contract is
//! `openapi.json` (served at `/api/openapi.json`), which schemathesis
//! checks the endpoints against in the interop suite.

mod openapi;
mod rooms;
mod sessions;
mod users;

use crate::api_tokens::ApiTokens;
use crate::federation::Federation;
use crate::kdf_pool::KdfPool;
use crate::registry::ConnRegistry;
use crate::router::Router;
use crate::settings::SettingsCell;
use crate::storage::Backend;
use serde::Serialize;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Instant;
use xmpp_core::http::{Request, Response};

/// What the API acts on.
pub(crate) struct Api {
    pub(crate) tokens: ApiTokens,
    pub(crate) backend: Arc<dyn Backend>,
    pub(crate) domains: Vec<String>,
    /// The modules' service domains, where group chat rooms are stored.
    pub(crate) services: Vec<String>,
    pub(crate) settings: Arc<SettingsCell>,
    pub(crate) kdf: Arc<KdfPool>,
    pub(crate) router: Arc<Router>,
    pub(crate) conns: Arc<ConnRegistry>,
    pub(crate) federation: Option<Arc<Federation>>,
    pub(crate) started: Instant,
    pub(crate) version: String,
}

/// An API error: its status and message, as `{"error": ...}`.
pub(crate) struct ApiError(u16, String);

impl ApiError {
    fn new(status: u16, message: impl Into<String>) -> Self {
        ApiError(status, message.into())
    }
}

type Answer = Result<Response, ApiError>;

impl Api {
    /// The answer to a request under `/api/` from `client`.
    pub(crate) async fn answer(&self, request: &Request, client: IpAddr) -> Response {
        let path: Vec<&str> = request
            .target
            .segments
            .iter()
            .skip(1)
            .map(String::as_str)
            .collect();
        if path == ["openapi.json"] {
            return match request.method.as_str() {
                "GET" | "HEAD" => Response::new(200)
                    .body("application/json", openapi::DOCUMENT)
                    .header("Cache-Control", "no-store"),
                _ => error(&ApiError::new(405, "GET only")).header("Allow", "GET"),
            };
        }
        let Some(token) = self.authorize(request) else {
            tracing::info!(target: "vireo::api", %client, method = %request.method, path = %request.target.path(), status = 401, "api call refused: no valid token");
            return error(&ApiError::new(
                401,
                "a bearer token is needed (vireo token create)",
            ))
            .header("WWW-Authenticate", "Bearer realm=\"vireo\"");
        };
        let answer = self.route(request, &path).await;
        let response = answer.unwrap_or_else(|e| error(&e));
        tracing::info!(target: "vireo::api", token = %token, %client, method = %request.method, path = %request.target.path(), status = response.status, "api call");
        response.header("Cache-Control", "no-store")
    }

    fn authorize(&self, request: &Request) -> Option<String> {
        let presented = request.header("authorization")?.strip_prefix("Bearer ")?;
        self.tokens.check(presented.trim())
    }

    async fn route(&self, request: &Request, path: &[&str]) -> Answer {
        match (request.method.as_str(), path) {
            ("GET", ["users"]) => users::list(self, request).await,
            ("POST", ["users"]) => users::create(self, request).await,
            ("PUT", ["users", jid, "password"]) => users::password(self, jid, request).await,
            ("DELETE", ["users", jid]) => users::delete(self, jid).await,
            ("GET", ["sessions"]) => sessions::list(self),
            ("DELETE", ["sessions", jid, resource]) => sessions::kick(self, jid, resource),
            ("POST", ["messages"]) => sessions::message(self, request),
            ("POST", ["announcements"]) => sessions::announce(self, request),
            ("GET", ["stats"]) => Ok(self.stats().await),
            ("GET", ["rooms"]) => rooms::list(self).await,
            (_, path) => match allowed(path) {
                Some(allow) => {
                    Ok(error(&ApiError::new(405, "method not allowed")).header("Allow", allow))
                }
                None => Err(ApiError::new(404, "no such endpoint")),
            },
        }
    }

    async fn stats(&self) -> Response {
        #[derive(Serialize)]
        struct Stats {
            version: String,
            uptime_seconds: u64,
            connections: usize,
            sessions: usize,
            users: usize,
            s2s_outgoing: usize,
            s2s_incoming_bidi: usize,
        }
        let backend = self.backend.clone();
        let users = smol::unblock(move || backend.accounts().map(|a| a.len()).unwrap_or(0)).await;
        let s2s = self
            .federation
            .as_ref()
            .map(|f| f.status())
            .unwrap_or_default();
        json(
            200,
            &Stats {
                version: self.version.clone(),
                uptime_seconds: self.started.elapsed().as_secs(),
                connections: self.conns.live(),
                sessions: self.conns.sessions().len(),
                users,
                s2s_outgoing: s2s.outgoing.len(),
                s2s_incoming_bidi: s2s.bidi.len(),
            },
        )
    }
}

/// The methods a path takes, for 405's `Allow`.
fn allowed(path: &[&str]) -> Option<&'static str> {
    Some(match path {
        ["users"] => "GET, POST",
        ["users", _] => "DELETE",
        ["users", _, "password"] => "PUT",
        ["sessions"] | ["stats"] | ["rooms"] => "GET",
        ["sessions", _, _] => "DELETE",
        ["messages"] | ["announcements"] => "POST",
        _ => return None,
    })
}

/// A JSON response.
pub(crate) fn json(status: u16, value: &impl Serialize) -> Response {
    let body = serde_json::to_vec(value).unwrap_or_else(|_| b"{}".to_vec());
    Response::new(status).body("application/json", body)
}

fn error(e: &ApiError) -> Response {
    #[derive(Serialize)]
    struct Body<'a> {
        error: &'a str,
    }
    json(e.0, &Body { error: &e.1 })
}

/// The JSON body of `request` as `T`.
pub(crate) fn body<T: serde::de::DeserializeOwned>(request: &Request) -> Result<T, ApiError> {
    serde_json::from_slice(&request.body)
        .map_err(|e| ApiError::new(400, format!("the body is not the JSON expected: {e}")))
}

/// An optional field that, when present, is a string: `null` is refused
/// like any other wrong type (the contract says string).
pub(crate) fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    <String as serde::Deserialize>::deserialize(d).map(Some)
}

/// Milliseconds since the epoch as RFC 3339, for listings.
pub(crate) fn timestamp(ms: u64) -> String {
    xmpp_core::time::format_datetime(ms)
}
