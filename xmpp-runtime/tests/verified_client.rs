//! `Client::connect_verified` really checks the server's certificate: the
//! trusted certificate logs in over STARTTLS and direct TLS, while a root
//! store without it, or a trusted certificate for another name, fails the
//! handshake with a TLS error.

use rustls::{CertificateError, RootCertStore};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use xmpp_core::jid::Jid;
use xmpp_core::stream::ClientConfig;
use xmpp_runtime::accounts::add_user;
use xmpp_runtime::client::{Client, ClientError};
use xmpp_runtime::storage::{Backend, MemoryBackend};
use xmpp_runtime::tls::config::load_certs;
use xmpp_runtime::tls::{generate_self_signed, server_tls};
use xmpp_runtime::{RunningServer, RuntimeConfig};

/// A server for `localhost` presenting a self-signed certificate for
/// `cert_name`, whose certificate file it returns.
fn start(dir: &Path, cert_name: &str) -> (RunningServer, std::path::PathBuf) {
    let paths = generate_self_signed(&[cert_name.to_owned()], dir).expect("certificate");
    let tls = Arc::new(server_tls(&paths.cert, &paths.key).expect("TLS config"));
    let backend: Arc<dyn Backend> = Arc::new(MemoryBackend::new());
    let alice = Jid::parse("alice@localhost").expect("JID");
    add_user(backend.as_ref(), &alice, "secret", 4096).expect("account");
    let cfg = RuntimeConfig {
        c2s_tls_port: Some(0),
        tls: Some(tls),
        threads: 1,
        partitions: 1,
        scram_iterations: 4096,
        ..RuntimeConfig::default()
    };
    let server = xmpp_runtime::start(cfg, backend).expect("server starts");
    (server, paths.cert)
}

/// A root store holding exactly the certificates of a PEM file.
fn trusting(cert: &Path) -> RootCertStore {
    let mut roots = RootCertStore::empty();
    for c in load_certs(cert).expect("certificate file") {
        roots.add(c).expect("usable as a root");
    }
    roots
}

/// Log in as alice with verification, over STARTTLS and direct TLS.
fn log_in(server: &RunningServer, roots: RootCertStore) -> [Result<(), ClientError>; 2] {
    let roots = Arc::new(roots);
    let starttls = server.c2s_addr;
    let direct = server.c2s_tls_addr.expect("direct TLS listener");
    smol::block_on(async {
        let mut results = Vec::new();
        for (addr, direct_tls) in [(starttls, false), (direct, true)] {
            let cfg = ClientConfig::new(Jid::parse("alice@localhost/desk").expect("JID"), "secret");
            let r = Client::connect_verified(addr, cfg, direct_tls, roots.clone()).await;
            results.push(match r {
                Ok(c) => c.close().await,
                Err(e) => Err(e),
            });
        }
        let mut results = results.into_iter();
        [
            results.next().expect("STARTTLS result"),
            results.next().expect("direct TLS result"),
        ]
    })
}

#[test]
fn the_trusted_certificate_logs_in() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (server, cert) = start(dir.path(), "localhost");
    for r in log_in(&server, trusting(&cert)) {
        r.expect("a verified login succeeds");
    }
    server.shutdown(Duration::from_secs(1));
}

#[test]
fn a_certificate_the_roots_do_not_hold_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (server, _cert) = start(&dir.path().join("server"), "localhost");
    // Same name, another key: only the trusted certificate itself counts.
    let other = generate_self_signed(&["localhost".to_owned()], &dir.path().join("other"))
        .expect("certificate");
    for r in log_in(&server, trusting(&other.cert)) {
        match r {
            Err(ClientError::Tls(rustls::Error::InvalidCertificate(e))) => {
                assert!(
                    matches!(
                        e,
                        CertificateError::UnknownIssuer | CertificateError::BadSignature
                    ),
                    "{e:?}"
                );
            }
            other => panic!("expected a certificate error, got {other:?}"),
        }
    }
    server.shutdown(Duration::from_secs(1));
}

#[test]
fn a_trusted_certificate_for_another_name_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (server, cert) = start(dir.path(), "other.test");
    for r in log_in(&server, trusting(&cert)) {
        match r {
            Err(ClientError::Tls(rustls::Error::InvalidCertificate(e))) => {
                assert!(
                    matches!(
                        e,
                        CertificateError::NotValidForName
                            | CertificateError::NotValidForNameContext { .. }
                    ),
                    "{e:?}"
                );
            }
            other => panic!("expected a name mismatch, got {other:?}"),
        }
    }
    server.shutdown(Duration::from_secs(1));
}

#[test]
fn no_trusted_root_is_a_setup_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (server, _cert) = start(dir.path(), "localhost");
    for r in log_in(&server, RootCertStore::empty()) {
        assert!(matches!(r, Err(ClientError::TlsSetup(_))), "{r:?}");
    }
    server.shutdown(Duration::from_secs(1));
}
