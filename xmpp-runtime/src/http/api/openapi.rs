//! The API's contract, OpenAPI 3.0 (`openapi.json` next to this file, so
//! it is read and diffed as JSON): served at `/api/openapi.json`, and what
//! schemathesis checks every endpoint against in the interop suite.

/// The document.
pub(super) const DOCUMENT: &str = include_str!("openapi.json");
