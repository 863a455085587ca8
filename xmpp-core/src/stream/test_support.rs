//! What the stream machine's unit tests share: a driver loop that answers
//! TLS, credential lookups and password checks the way the runtime does, and
//! a stream logged in and bound as alice (`sim::driver::LOGIN`).

use super::{ConnOutput, ServerStream, ServerStreamConfig};
use crate::entropy::Entropy;
use crate::sasl::StoredCredentials;
use crate::sim::driver::LOGIN;
use crate::storage::StorageResult;
use std::sync::Arc;

/// The outputs left after answering TLS, credentials and password checks.
pub(super) fn drain(s: &mut ServerStream) -> Vec<ConnOutput> {
    let creds = StoredCredentials::derive("secret", b"vireo-test-salt", 4096).ok();
    let mut out = Vec::new();
    while let Some(o) = s.poll_output() {
        match o {
            ConnOutput::StartTls => s.tls_established(0, vec![]),
            ConnOutput::Storage { id, .. } => {
                s.handle_storage(0, id, StorageResult::Credentials(creds.clone()))
            }
            ConnOutput::CheckPassword { id, check } => s.handle_password_check(0, id, check.run()),
            other => out.push(other),
        }
    }
    out
}

/// A stream under `cfg`, logged in and bound as alice@localhost/home.
pub(super) fn logged_in(cfg: ServerStreamConfig) -> ServerStream {
    let mut s = ServerStream::new(Arc::new(cfg), Entropy::from_u64(7), 0, None);
    drain(&mut s);
    for part in LOGIN {
        s.handle_input(0, part.as_bytes());
        drain(&mut s);
    }
    s
}

/// Everything written to the client, as text.
pub(super) fn written(out: &[ConnOutput]) -> String {
    out.iter()
        .filter_map(|o| match o {
            ConnOutput::Write(b) => Some(String::from_utf8_lossy(b).into_owned()),
            _ => None,
        })
        .collect()
}
