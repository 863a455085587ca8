//! A request as the HTTP machine hands it over, and a response as an
//! endpoint gives it back.

use super::path::Target;

/// One HTTP/1.1 request, head and body, its target already checked
/// ([`super::path`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// The method, as sent (`GET`, `POST`, ...).
    pub method: String,
    /// The checked target.
    pub target: Target,
    /// The minor version: 1 for HTTP/1.1, 0 for HTTP/1.0.
    pub minor_version: u8,
    /// Header fields in order, names lower-cased.
    pub headers: Vec<(String, String)>,
    /// The body (`Content-Length` bytes), unless it is streamed.
    pub body: Vec<u8>,
    /// Bytes of a body that comes in [`HttpOutput::BodyChunk`]s instead
    /// (`HttpLimits::streamed_prefix`); 0 otherwise.
    ///
    /// [`HttpOutput::BodyChunk`]: super::HttpOutput::BodyChunk
    pub streamed: usize,
}

impl Request {
    /// The first value of header `name` (lower-case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// Whether a comma-separated header holds `token` (case-insensitive),
    /// in any of its fields (`Connection: keep-alive, Upgrade`).
    pub fn has_token(&self, name: &str, token: &str) -> bool {
        self.headers
            .iter()
            .filter(|(n, _)| n == name)
            .flat_map(|(_, v)| v.split(','))
            .any(|t| t.trim().eq_ignore_ascii_case(token))
    }

    /// Whether the connection closes after this request's response (HTTP/1.0
    /// without keep-alive, or `Connection: close`).
    pub fn wants_close(&self) -> bool {
        self.has_token("connection", "close")
            || (self.minor_version == 0 && !self.has_token("connection", "keep-alive"))
    }
}

/// A response to write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// The status code.
    pub status: u16,
    /// Header fields; `Content-Length` and the security headers are added
    /// when written.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
}

impl Response {
    /// An empty response with `status`.
    pub fn new(status: u16) -> Self {
        Response {
            status,
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    /// Add a header field.
    pub fn header(mut self, name: &str, value: impl Into<String>) -> Self {
        self.headers.push((name.to_owned(), value.into()));
        self
    }

    /// Set the body and its `Content-Type`.
    pub fn body(self, content_type: &str, body: impl Into<Vec<u8>>) -> Self {
        let mut r = self.header("Content-Type", content_type);
        r.body = body.into();
        r
    }

    /// A plain-text response (errors, mostly).
    pub fn text(status: u16, text: &str) -> Self {
        Response::new(status).body("text/plain; charset=utf-8", format!("{text}\n"))
    }

    /// A JSON response.
    pub fn json(status: u16, json: String) -> Self {
        Response::new(status).body("application/json", json)
    }

    /// Whether a header field is set (case-insensitive).
    pub fn has_header(&self, name: &str) -> bool {
        self.headers
            .iter()
            .any(|(n, _)| n.eq_ignore_ascii_case(name))
    }

    /// The response as bytes: status line, the headers, `Content-Length`
    /// (not for 1xx and 204), the security headers (`nosniff`, no referrer,
    /// `Strict-Transport-Security` over TLS, a `Content-Security-Policy`
    /// that allows nothing unless the endpoint set its own), the body.
    /// `head` leaves the body out (a HEAD request).
    pub fn to_bytes(&self, secure: bool, close: bool, head: bool) -> Vec<u8> {
        let mut out = self.head_bytes(secure, close, None);
        if !head {
            out.extend_from_slice(&self.body);
        }
        out
    }

    /// The status line and header fields, as in [`Response::to_bytes`];
    /// `length` replaces the body's as `Content-Length` (a body the driver
    /// writes itself).
    pub fn head_bytes(&self, secure: bool, close: bool, length: Option<u64>) -> Vec<u8> {
        let mut out = Vec::with_capacity(256 + self.body.len());
        out.extend_from_slice(
            format!("HTTP/1.1 {} {}\r\n", self.status, reason(self.status)).as_bytes(),
        );
        for (name, value) in &self.headers {
            // Header values are the endpoints' own; a CR or LF would split
            // the response (header injection): drop the field.
            if name.contains(['\r', '\n', ':']) || value.contains(['\r', '\n']) {
                continue;
            }
            out.extend_from_slice(format!("{name}: {value}\r\n").as_bytes());
        }
        let informational = (100..200).contains(&self.status);
        if !informational && self.status != 204 {
            let length = length.unwrap_or(self.body.len() as u64);
            out.extend_from_slice(format!("Content-Length: {length}\r\n").as_bytes());
        }
        if !informational {
            out.extend_from_slice(
                b"X-Content-Type-Options: nosniff\r\nReferrer-Policy: no-referrer\r\n",
            );
            if !self.has_header("content-security-policy") {
                out.extend_from_slice(
                    b"Content-Security-Policy: default-src 'none'; frame-ancestors 'none'\r\n",
                );
            }
            if secure {
                out.extend_from_slice(b"Strict-Transport-Security: max-age=31536000\r\n");
            }
            if close {
                out.extend_from_slice(b"Connection: close\r\n");
            }
        }
        out.extend_from_slice(b"\r\n");
        out
    }
}

/// The reason phrase of a status code.
pub fn reason(status: u16) -> &'static str {
    match status {
        101 => "Switching Protocols",
        200 => "OK",
        201 => "Created",
        204 => "No Content",
        206 => "Partial Content",
        301 => "Moved Permanently",
        304 => "Not Modified",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        411 => "Length Required",
        413 => "Content Too Large",
        416 => "Range Not Satisfiable",
        426 => "Upgrade Required",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        503 => "Service Unavailable",
        505 => "HTTP Version Not Supported",
        _ => "",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_response_carries_length_and_security_headers() {
        let r = Response::text(404, "no such endpoint");
        let text = String::from_utf8(r.to_bytes(true, false, false)).unwrap_or_default();
        assert!(text.starts_with("HTTP/1.1 404 Not Found\r\n"), "{text}");
        assert!(text.contains("Content-Length: 17\r\n"), "{text}");
        assert!(text.contains("X-Content-Type-Options: nosniff\r\n"));
        assert!(text.contains("Strict-Transport-Security: max-age=31536000\r\n"));
        assert!(text.contains("Content-Security-Policy: default-src 'none'"));
        assert!(text.ends_with("\r\n\r\nno such endpoint\n"), "{text}");
        let plain = String::from_utf8(r.to_bytes(false, true, true)).unwrap_or_default();
        assert!(!plain.contains("Strict-Transport-Security"));
        assert!(plain.contains("Connection: close\r\n"));
        assert!(plain.ends_with("\r\n\r\n"), "HEAD: no body");
    }

    #[test]
    fn header_injection_is_dropped() {
        let r = Response::new(200).header("X-A", "ok\r\nSet-Cookie: evil=1");
        let text = String::from_utf8(r.to_bytes(false, false, false)).unwrap_or_default();
        assert!(!text.contains("evil"), "{text}");
    }
}
