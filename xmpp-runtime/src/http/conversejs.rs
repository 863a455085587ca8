//! `/conversejs` (like ejabberd's mod_conversejs): Converse.js served from
//! a directory the operator installs (`interfaces.conversejs_path`, its
//! `dist/` files; nothing is vendored), with a page and a start script
//! that point it at this server's WebSocket and BOSH endpoints, so a
//! browser needs nothing but the URL.
//!
//! Files are served only from that directory: the request path was
//! checked before routing (no `..`, no encoded `/`), dot files are
//! refused, and the resolved path must stay inside the directory (no
//! symbolic link out of it).

use super::host_meta;
use std::path::{Path, PathBuf};
use xmpp_core::http::{Request, Response};

/// What a request under `/conversejs` gets.
pub(super) enum Served {
    Respond(Response),
    /// A file: the head, then its bytes.
    File {
        head: Response,
        path: PathBuf,
        length: u64,
    },
}

/// The page's policy: its own scripts and styles, connections back to
/// this server, images and media from it or the page itself.
const CSP: &str = "default-src 'self'; connect-src 'self' ws: wss:; img-src 'self' data: blob:; \
    media-src 'self' blob:; style-src 'self' 'unsafe-inline'; font-src 'self' data:; \
    script-src 'self' 'wasm-unsafe-eval'; worker-src 'self' blob:; frame-ancestors 'none'; \
    base-uri 'none'; form-action 'none'";

const PAGE: &str = "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">\
<title>Converse</title><meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
<link rel=\"stylesheet\" href=\"/conversejs/dist/converse.min.css\">\
<script type=\"module\" src=\"/conversejs/dist/converse.min.js\"></script>\
<script type=\"module\" src=\"/conversejs/init.js\"></script>\
</head><body class=\"converse-fullscreen\"></body></html>";

/// Answer `request` (its path starts with `conversejs`).
pub(super) fn answer(
    dir: &Path,
    request: &Request,
    secure: bool,
    external_url: Option<&str>,
    domain: &str,
    websocket: bool,
    bosh: bool,
) -> Served {
    let segments: Vec<&str> = request.target.segments.iter().map(String::as_str).collect();
    let head = |r: Response| r.header("Content-Security-Policy", CSP);
    match segments.as_slice() {
        ["conversejs"] => Served::Respond(head(
            Response::new(200).body("text/html; charset=utf-8", PAGE),
        )),
        ["conversejs", "init.js"] => {
            let base = host_meta::base_url(external_url, request, secure);
            let settings = serde_json::json!({
                "websocket_url": base.as_deref().filter(|_| websocket).map(host_meta::websocket_url),
                "bosh_service_url": base.as_deref().filter(|_| bosh).map(host_meta::bosh_url),
                "default_domain": domain,
                "discover_connection_methods": false,
                "view_mode": "fullscreen",
                "assets_path": "/conversejs/dist/",
                "authentication": "login",
            });
            let js = format!("window.converse.initialize({settings});\n");
            Served::Respond(head(
                Response::new(200)
                    .body("text/javascript; charset=utf-8", js)
                    .header("Cache-Control", "no-store"),
            ))
        }
        ["conversejs", "dist", rest @ ..] if !rest.is_empty() => file(dir, rest),
        _ => Served::Respond(Response::text(404, "not found")),
    }
}

fn file(dir: &Path, rest: &[&str]) -> Served {
    let not_found = || Served::Respond(Response::text(404, "not found"));
    if rest.iter().any(|s| s.starts_with('.')) {
        return not_found();
    }
    let wanted = rest.iter().fold(dir.to_path_buf(), |p, s| p.join(s));
    let (Ok(root), Ok(path)) = (dir.canonicalize(), wanted.canonicalize()) else {
        return not_found();
    };
    if !path.starts_with(&root) {
        return not_found();
    }
    let Ok(meta) = std::fs::metadata(&path) else {
        return not_found();
    };
    if !meta.is_file() {
        return not_found();
    }
    let kind = match path.extension().and_then(|e| e.to_str()).unwrap_or("") {
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "json" | "map" => "application/json",
        "wasm" => "application/wasm",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "ico" => "image/x-icon",
        "woff" => "font/woff",
        "woff2" => "font/woff2",
        "ttf" => "font/ttf",
        "mp3" => "audio/mpeg",
        "ogg" => "audio/ogg",
        _ => "application/octet-stream",
    };
    Served::File {
        head: Response::new(200)
            .header("Content-Type", kind)
            .header("Content-Security-Policy", CSP)
            .header("Cache-Control", "public, max-age=3600"),
        path,
        length: meta.len(),
    }
}
