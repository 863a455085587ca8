//! `/http-bind` (XEP-0124, XEP-0206): each POSTed `<body/>` goes to its
//! session ([`BoshPipe`]), and the HTTP request waits there for its
//! answer. A request without `sid` creates a session: admitted against
//! its address's limits like a TCP connection, then served by a c2s
//! connection task reading the pipe.

use super::Http;
use crate::bosh_pipe::BoshPipe;
use crate::clock::{entropy, now_ms};
use crate::config::BoshHttpConfig;
use std::net::IpAddr;
use std::time::Duration;
use xmpp_core::bosh::{terminate, BodyAttrs, BoshSession};
use xmpp_core::http::{Request, Response};
use xmpp_core::xml::Limits;
use xmpp_core::Element;

/// How long past the session's `wait` a request waits before it is
/// answered with the end (the session lost it: it never should).
const GRACE: Duration = Duration::from_secs(30);

/// The answer to a request on `/http-bind` from `client`.
pub(super) async fn answer(
    http: &Http,
    cfg: &BoshHttpConfig,
    request: &Request,
    client: IpAddr,
    secure: bool,
) -> Response {
    let cors = |r: Response| with_cors(r, request, cfg);
    match request.method.as_str() {
        "POST" => {}
        // CORS preflight: browsers ask before POSTing XML cross-origin.
        "OPTIONS" => {
            return cors(
                Response::new(200)
                    .header("Access-Control-Allow-Methods", "POST, OPTIONS")
                    .header("Access-Control-Allow-Headers", "Content-Type")
                    .header("Access-Control-Max-Age", "86400"),
            )
        }
        "GET" | "HEAD" => {
            return Response::text(200, "XMPP over BOSH (XEP-0206): POST a <body/> here.")
        }
        _ => return Response::text(405, "BOSH takes POST").header("Allow", "POST, OPTIONS, GET"),
    }
    let body = match parse(http, &request.body) {
        Ok(b) => b,
        Err(why) => return cors(Response::text(400, why)),
    };
    let attrs = match BodyAttrs::read(&body) {
        Ok(a) => a,
        Err(e) => return cors(xml(terminate(e.condition(), &[]))),
    };
    let answer = match attrs.sid.as_deref() {
        None => create(http, cfg, body, client, secure).await,
        Some(sid) => match http.bosh.get(sid) {
            None => terminate("item-not-found", &[]),
            Some(pipe) => {
                let req = pipe.request(body);
                let give_up = Duration::from_secs(cfg.session.max_wait_s) + GRACE;
                pipe.answer(req, give_up)
                    .await
                    .unwrap_or_else(|| terminate("item-not-found", &[]))
            }
        },
    };
    cors(xml(answer))
}

/// A new session: admitted, registered, served.
async fn create(
    http: &Http,
    cfg: &BoshHttpConfig,
    body: Element,
    client: IpAddr,
    secure: bool,
) -> Vec<u8> {
    let Some(c2s) = http.c2s.clone() else {
        return terminate("internal-server-error", &[]);
    };
    // Counted against its address until it authenticates, as a TCP
    // connection is.
    let Some(slot) = crate::connection::admit(&c2s, Some(client)) else {
        return terminate("policy-violation", &[]);
    };
    let sid = entropy().hex_id(32);
    let session = match BoshSession::create(cfg.session.clone(), sid, now_ms(), 0, &body) {
        Ok(s) => s,
        Err(e) => return terminate(e.condition(), &[]),
    };
    let (pipe, req) = BoshPipe::create(&http.bosh, session);
    let tls = (secure || cfg.consider_secure).then(Vec::new);
    let task = crate::connection::serve_bosh(pipe.clone(), Some(client), tls, slot, c2s);
    http.executor.spawn(task).detach();
    let give_up = Duration::from_secs(cfg.session.max_wait_s) + GRACE;
    pipe.answer(req, give_up)
        .await
        .unwrap_or_else(|| terminate("item-not-found", &[]))
}

/// The request body as XML, within the stream's limits (one level deeper:
/// the `<body/>` wraps the stanzas).
fn parse(http: &Http, bytes: &[u8]) -> Result<Element, &'static str> {
    let stanza = http
        .c2s
        .as_ref()
        .map(|c| c.settings.current().stream.limits)
        .unwrap_or_default();
    let limits = Limits {
        max_stanza_bytes: http.cfg.limits.max_body_bytes,
        max_depth: stanza.max_depth + 1,
        ..stanza
    };
    Element::parse_with_limits(bytes, &limits).map_err(|_| "not a well-formed XML body")
}

fn xml(body: Vec<u8>) -> Response {
    Response::new(200)
        .body("text/xml; charset=utf-8", body)
        .header("Cache-Control", "no-store")
}

/// CORS for browsers on other origins: any, or those configured.
fn with_cors(response: Response, request: &Request, cfg: &BoshHttpConfig) -> Response {
    match (&cfg.origins, request.header("origin")) {
        (None, _) => response.header("Access-Control-Allow-Origin", "*"),
        (Some(allowed), Some(origin)) if allowed.iter().any(|a| a.eq_ignore_ascii_case(origin)) => {
            response
                .header("Access-Control-Allow-Origin", origin)
                .header("Vary", "Origin")
        }
        _ => response,
    }
}
