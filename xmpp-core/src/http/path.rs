//! A request target made safe once, before routing: what an endpoint sees
//! is a plain absolute path of decoded segments, or the request is refused.
//!
//! The class of bug this closes: a router matching one spelling of a path
//! while the file system or an endpoint resolves another (`/api/%2e%2e/`,
//! `/admin;x=y/`, `//`, a backslash, an encoded `/`), as in Openfire's
//! admin-console bypass. Rather than rewriting such paths into something
//! "equivalent", every ambiguous spelling is refused: no legitimate
//! client of an XMPP server sends one.

use thiserror::Error;

/// Longest request target accepted, in bytes.
pub const MAX_TARGET_BYTES: usize = 4096;
/// Most path segments.
pub const MAX_SEGMENTS: usize = 32;

/// Why a target was refused (a 400).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum PathError {
    /// Not an absolute path (`*`, `http://...`, empty).
    #[error("not an absolute path")]
    NotAbsolute,
    /// Longer than [`MAX_TARGET_BYTES`] or more than [`MAX_SEGMENTS`].
    #[error("path too long")]
    TooLong,
    /// A `%` not followed by two hex digits.
    #[error("bad percent-encoding")]
    BadEscape,
    /// Decodes to something that is not UTF-8.
    #[error("path is not UTF-8")]
    NotUtf8,
    /// An empty segment (`//`), a `.` or `..` segment (plain or encoded),
    /// an encoded `/`, a backslash, a `;` path parameter or a control
    /// character.
    #[error("ambiguous path segment")]
    Ambiguous,
}

/// A checked request target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The decoded segments, in order (`/a/b` → `["a", "b"]`; `/` → `[]`).
    pub segments: Vec<String>,
    /// Whether the path ended with `/` (`/upload/` vs `/upload`).
    pub trailing_slash: bool,
    /// The raw query string after `?`, if any (not decoded: endpoints
    /// that take parameters parse their own).
    pub query: Option<String>,
}

impl Target {
    /// The path, re-encoded canonically (`/a/b`).
    pub fn path(&self) -> String {
        let mut p = String::from("/");
        p.push_str(&self.segments.join("/"));
        if self.trailing_slash && !self.segments.is_empty() {
            p.push('/');
        }
        p
    }

    /// Whether the path starts with these segments.
    pub fn starts_with(&self, prefix: &[&str]) -> bool {
        self.segments.len() >= prefix.len() && self.segments.iter().zip(prefix).all(|(s, p)| s == p)
    }
}

/// Check and decode a request target (origin form, RFC 9112 §3.2.1).
pub fn parse_target(raw: &str) -> Result<Target, PathError> {
    if raw.len() > MAX_TARGET_BYTES {
        return Err(PathError::TooLong);
    }
    let (path, query) = match raw.split_once('?') {
        Some((p, q)) => (p, Some(q.to_owned())),
        None => (raw, None),
    };
    let Some(rest) = path.strip_prefix('/') else {
        return Err(PathError::NotAbsolute);
    };
    if rest.is_empty() {
        return Ok(Target {
            segments: Vec::new(),
            trailing_slash: true,
            query,
        });
    }
    let trailing_slash = rest.ends_with('/');
    let body = rest.strip_suffix('/').unwrap_or(rest);
    let mut segments = Vec::new();
    for raw_segment in body.split('/') {
        if segments.len() >= MAX_SEGMENTS {
            return Err(PathError::TooLong);
        }
        segments.push(segment(raw_segment)?);
    }
    Ok(Target {
        segments,
        trailing_slash,
        query,
    })
}

/// One segment, decoded, refused when ambiguous.
fn segment(raw: &str) -> Result<String, PathError> {
    if raw.is_empty() || raw.contains([';', '\\']) {
        return Err(PathError::Ambiguous);
    }
    let decoded = percent_decode(raw)?;
    if decoded.is_empty()
        || decoded == "."
        || decoded == ".."
        || decoded.contains(['/', '\\', ';'])
        || decoded.chars().any(char::is_control)
    {
        return Err(PathError::Ambiguous);
    }
    Ok(decoded)
}

fn percent_decode(raw: &str) -> Result<String, PathError> {
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes.get(i + 1..i + 3).ok_or(PathError::BadEscape)?;
            let text = std::str::from_utf8(hex).map_err(|_| PathError::BadEscape)?;
            let byte = u8::from_str_radix(text, 16).map_err(|_| PathError::BadEscape)?;
            out.push(byte);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| PathError::NotUtf8)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn segs(raw: &str) -> Vec<String> {
        parse_target(raw)
            .unwrap_or_else(|e| panic!("{raw}: {e}"))
            .segments
    }

    #[test]
    fn plain_paths_decode_to_segments() {
        assert_eq!(segs("/"), Vec::<String>::new());
        assert_eq!(segs("/xmpp-websocket"), vec!["xmpp-websocket"]);
        assert_eq!(
            segs("/upload/abc/file%20name.png"),
            vec!["upload", "abc", "file name.png"]
        );
        let t = parse_target("/api/users/?limit=10").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(t.segments, vec!["api", "users"]);
        assert!(t.trailing_slash);
        assert_eq!(t.query.as_deref(), Some("limit=10"));
        assert_eq!(t.path(), "/api/users/");
        assert!(t.starts_with(&["api"]));
        assert!(!t.starts_with(&["api", "users", "x"]));
    }

    /// Every spelling that could mean something else to someone else.
    #[test]
    fn ambiguous_spellings_are_refused() {
        for raw in [
            "/api/../admin",
            "/api/%2e%2e/admin",
            "/api/%2E%2e/admin",
            "/api/./x",
            "/api/%2e/x",
            "//api",
            "/api//x",
            "/api;jsessionid=1/x",
            "/api/x;y",
            "/api%2fx",
            "/api/%2F",
            "/api\\x",
            "/api/%5cx",
            "/api/%00",
            "/api/%0a",
            "/api/%",
            "/api/%zz",
            "/api/%c3",
        ] {
            assert!(parse_target(raw).is_err(), "{raw} accepted");
        }
        assert_eq!(parse_target("*"), Err(PathError::NotAbsolute));
        assert_eq!(
            parse_target("http://example.org/x"),
            Err(PathError::NotAbsolute)
        );
        assert_eq!(parse_target(""), Err(PathError::NotAbsolute));
    }

    #[test]
    fn budgets() {
        let long = format!("/{}", "a".repeat(MAX_TARGET_BYTES));
        assert_eq!(parse_target(&long), Err(PathError::TooLong));
        let deep = "/a".repeat(MAX_SEGMENTS + 1);
        assert_eq!(parse_target(&deep), Err(PathError::TooLong));
        let ok = "/a".repeat(MAX_SEGMENTS);
        assert_eq!(segs(&ok).len(), MAX_SEGMENTS);
    }
}
