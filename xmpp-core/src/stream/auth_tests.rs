//! What a c2s stream tells its driver about authentication: attempts,
//! failures and successes (for throttling and logs), PLAIN's password check
//! as an instruction (also for unknown users), and the bind deadline.

use super::{ConnOutput, ServerStream, ServerStreamConfig, StreamErrorCondition};
use crate::entropy::Entropy;
use crate::sasl::{Mechanism, SaslFailure, StoredCredentials};
use crate::storage::{StorageRequest, StorageResult};
use std::sync::Arc;

const HEADER: &str = "<?xml version='1.0'?><stream:stream xmlns='jabber:client' \
    xmlns:stream='http://etherx.jabber.org/streams' to='localhost' version='1.0'>";

/// Answers storage from `known` (alice's credentials for "secret") and
/// password checks by running them; returns every other output.
fn drain(s: &mut ServerStream, now: u64) -> Vec<ConnOutput> {
    let alice = StoredCredentials::derive("secret", b"vireo-test-salt", 4096).ok();
    let mut out = Vec::new();
    while let Some(o) = s.poll_output() {
        match o {
            ConnOutput::StartTls => s.tls_established(now, vec![]),
            ConnOutput::Storage {
                id,
                request: StorageRequest::LoadCredentials { account },
            } => {
                let creds = alice.clone().filter(|_| account == "alice@localhost");
                s.handle_storage(now, id, StorageResult::Credentials(creds))
            }
            ConnOutput::CheckPassword { id, check } => {
                let ok = check.run();
                out.push(ConnOutput::Write(format!("check:{ok}").into_bytes()));
                s.handle_password_check(now, id, ok)
            }
            other => out.push(other),
        }
    }
    out
}

fn stream(cfg: ServerStreamConfig) -> ServerStream {
    let mut s = ServerStream::new(Arc::new(cfg), Entropy::from_u64(3), 0, None);
    drain(&mut s, 0);
    for part in [
        HEADER,
        "<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>",
        HEADER,
    ] {
        s.handle_input(0, part.as_bytes());
        drain(&mut s, 0);
    }
    s
}

fn plain(user: &str, password: &str) -> String {
    use base64::Engine as _;
    let msg = crate::sasl::plain_message(None, user, password);
    format!(
        "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>{}</auth>",
        base64::engine::general_purpose::STANDARD.encode(msg)
    )
}

fn cfg() -> ServerStreamConfig {
    ServerStreamConfig {
        scram_decoy: Some((b"decoy secret".to_vec(), 4096)),
        ..Default::default()
    }
}

#[test]
fn plain_failures_and_success_are_reported_with_account_and_mechanism() {
    let mut s = stream(cfg());
    s.handle_input(1, plain("alice", "wrong").as_bytes());
    let out = drain(&mut s, 1);
    assert!(out.contains(&ConnOutput::AuthStarted {
        account: "alice@localhost".into(),
        mechanism: Mechanism::Plain,
    }));
    assert!(out.contains(&ConnOutput::Write(b"check:false".to_vec())));
    assert!(out.contains(&ConnOutput::AuthFailed {
        account: Some("alice@localhost".into()),
        mechanism: Some(Mechanism::Plain),
        failure: SaslFailure::NotAuthorized,
    }));
    s.handle_input(2, plain("alice", "secret").as_bytes());
    let out = drain(&mut s, 2);
    assert!(out.contains(&ConnOutput::Authenticated {
        account: "alice@localhost".into(),
        mechanism: Mechanism::Plain,
    }));
    assert_eq!(
        s.account().map(|a| a.bare_str()).as_deref(),
        Some("alice@localhost")
    );
}

#[test]
fn unknown_users_get_a_password_check_like_known_ones() {
    let mut s = stream(cfg());
    s.handle_input(1, plain("nobody", "secret").as_bytes());
    let mut check = None;
    while let Some(o) = s.poll_output() {
        match o {
            ConnOutput::Storage { id, .. } => {
                s.handle_storage(1, id, StorageResult::Credentials(None))
            }
            ConnOutput::CheckPassword { id, check: c } => check = Some((id, c)),
            _ => {}
        }
    }
    let Some((id, check)) = check else {
        panic!("no password check for an unknown user");
    };
    // The decoy costs the configured iterations, like a real account.
    assert!(format!("{check:?}").contains("4096"));
    assert!(!check.run());
    s.handle_password_check(1, id, false);
    let out = drain(&mut s, 1);
    assert!(out.contains(&ConnOutput::AuthFailed {
        account: Some("nobody@localhost".into()),
        mechanism: Some(Mechanism::Plain),
        failure: SaslFailure::NotAuthorized,
    }));
}

#[test]
fn a_failure_before_the_account_is_known_still_reports_the_mechanism() {
    let mut s = stream(cfg());
    s.handle_input(
        1,
        b"<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>!!!</auth>",
    );
    let out = drain(&mut s, 1);
    assert!(out.contains(&ConnOutput::AuthFailed {
        account: None,
        mechanism: Some(Mechanism::Plain),
        failure: SaslFailure::IncorrectEncoding,
    }));
    // An abort is not a failure.
    s.handle_input(2, b"<abort xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>");
    let out = drain(&mut s, 2);
    assert!(!out
        .iter()
        .any(|o| matches!(o, ConnOutput::AuthFailed { .. })));
}

#[test]
fn an_authenticated_stream_that_never_binds_times_out() {
    let mut s = stream(ServerStreamConfig {
        bind_timeout_ms: 5_000,
        ..cfg()
    });
    s.handle_input(1_000, plain("alice", "secret").as_bytes());
    drain(&mut s, 1_000);
    s.handle_input(1_000, HEADER.as_bytes());
    drain(&mut s, 1_000);
    assert!(s.account().is_some());
    // The authentication deadline is replaced by the bind deadline.
    assert_eq!(s.poll_timeout(), Some(6_000));
    s.handle_timeout(5_999);
    assert!(!s.is_closed());
    s.handle_timeout(6_000);
    assert!(s.is_closed());
    let written: Vec<u8> = drain(&mut s, 6_000)
        .into_iter()
        .filter_map(|o| match o {
            ConnOutput::Write(b) => Some(b),
            _ => None,
        })
        .flatten()
        .collect();
    let text = String::from_utf8_lossy(&written);
    assert!(
        text.contains(StreamErrorCondition::ConnectionTimeout.name()),
        "{text}"
    );
    assert!(text.contains("resource binding timed out"), "{text}");
}

#[test]
fn binding_clears_the_deadline() {
    let mut s = stream(ServerStreamConfig {
        bind_timeout_ms: 5_000,
        keepalive_ms: None,
        ..cfg()
    });
    s.handle_input(1_000, plain("alice", "secret").as_bytes());
    drain(&mut s, 1_000);
    s.handle_input(1_000, HEADER.as_bytes());
    drain(&mut s, 1_000);
    s.handle_input(
        2_000,
        b"<iq type='set' id='b'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></iq>",
    );
    drain(&mut s, 2_000);
    assert!(s.jid().is_some());
    assert_eq!(s.poll_timeout(), None);
    s.handle_timeout(100_000);
    assert!(!s.is_closed());
}
