//! `/`: a small status page for administrators (version, uptime, hosted
//! domains, connections and sessions by transport, hibernated sessions,
//! federation links), shown to the addresses that may read `/metrics`.
//! Plain HTML, no script: its CSP allows nothing but its own inline style.

use std::fmt::Write as _;
use xmpp_core::http::Response;

/// What the page shows.
pub(super) struct Status<'a> {
    pub(super) version: &'a str,
    pub(super) uptime_s: u64,
    pub(super) domains: &'a [String],
    pub(super) connections: usize,
    /// Sessions by transport, in `metrics::TRANSPORTS` order.
    pub(super) sessions: [usize; 3],
    pub(super) hibernated: usize,
    pub(super) bosh: usize,
    pub(super) s2s_outgoing: usize,
    pub(super) s2s_bidi: usize,
}

/// The page.
pub(super) fn page(s: &Status<'_>) -> Response {
    let mut rows = String::new();
    let mut row = |k: &str, v: String| {
        let _ = write!(
            rows,
            "<tr><th>{}</th><td>{}</td></tr>",
            escape(k),
            escape(&v)
        );
    };
    row("Version", s.version.to_owned());
    row("Uptime", uptime(s.uptime_s));
    row("Domains", s.domains.join(", "));
    row("Connections", s.connections.to_string());
    for (t, n) in crate::metrics::TRANSPORTS.iter().zip(s.sessions) {
        row(&format!("Sessions ({t})"), n.to_string());
    }
    row("Hibernated sessions", s.hibernated.to_string());
    row("BOSH sessions", s.bosh.to_string());
    row("Federation links out", s.s2s_outgoing.to_string());
    row("Federation streams in (bidi)", s.s2s_bidi.to_string());
    let html = format!(
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Vireo status</title>\
         <meta name=\"viewport\" content=\"width=device-width\"><style>body{{font-family:sans-serif;margin:2em}}\
         th{{text-align:left;padding-right:2em}}</style></head><body><h1>Vireo</h1>\
         <table id=\"status\">{rows}</table><p>Metrics: <a href=\"/metrics\">/metrics</a> · \
         health: <a href=\"/health\">/health</a> · API: <a href=\"/api/openapi.json\">/api/openapi.json</a></p>\
         </body></html>"
    );
    Response::new(200)
        .body("text/html; charset=utf-8", html)
        .header(
            "Content-Security-Policy",
            "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
        )
        .header("Cache-Control", "no-store")
}

fn uptime(s: u64) -> String {
    let (d, h, m) = (s / 86_400, s / 3600 % 24, s / 60 % 60);
    format!("{d} d {h} h {m} min")
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}
