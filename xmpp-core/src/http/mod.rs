//! HTTP/1.1 for XMPP's web interfaces (issue 14), as pure machines like
//! the streams: [`connection::HttpConnection`] turns bytes into checked
//! [`Request`]s and [`Response`]s into bytes, with every cost budgeted;
//! [`path`] makes a request target safe before anything routes on it.
//! The runtime owns the sockets, TLS and the endpoints.

pub mod connection;
pub mod message;
pub mod path;

pub use connection::{HttpConnection, HttpLimits, HttpOutput};
pub use message::{Request, Response};
pub use path::{parse_target, PathError, Target};
