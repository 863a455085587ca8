//! `vireo config test`: prove the configuration serves, end to end, without
//! touching the real listeners or store.
//!
//! Starts the server in-process (`xmpp_runtime::start`) with the configured
//! domains, TLS certificate and stream settings, but on ephemeral loopback
//! ports, with a throwaway in-memory store and no admin socket; creates a
//! temporary account, logs it in over STARTTLS and over direct TLS with the
//! client side of xmpp-core, sends a message to itself and receives it,
//! then shuts down. Each step is printed with ✓/✗ and its duration; any
//! failure makes the command exit non-zero.

use crate::config::Config;
use smol::future::FutureExt;
use std::fmt::Display;
use std::future::Future;
use std::io::Write;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};
use xmpp_core::jid::Jid;
use xmpp_core::stream::ClientConfig;
use xmpp_core::Element;
use xmpp_runtime::accounts::add_user;
use xmpp_runtime::client::{Client, TlsMode};
use xmpp_runtime::storage::{Backend, MemoryBackend};
use xmpp_runtime::tls::{generate_self_signed, server_tls, ServerTls};
use xmpp_runtime::RunningServer;

use super::backup::describe_source;
use super::check_certs::CertInfo;
use crate::config::ConfigError;
use std::process::ExitCode;

/// How long one network step may take.
const STEP_TIMEOUT: Duration = Duration::from_secs(10);

/// Why the test did not pass.
#[derive(Debug, thiserror::Error)]
pub enum ConfigTestError {
    /// Some steps failed (each is printed with its reason).
    #[error("config test failed: {failed} of {total} steps failed, {skipped} skipped")]
    Failed {
        failed: usize,
        skipped: usize,
        total: usize,
    },
}

/// Runs and prints the steps.
struct Steps {
    total: usize,
    failed: usize,
    skipped: usize,
}

impl Steps {
    /// Run one step; `Some` on success.
    fn run<T>(&mut self, name: &str, f: impl FnOnce() -> Result<(T, String), String>) -> Option<T> {
        self.total += 1;
        let started = Instant::now();
        let result = f();
        let ms = started.elapsed().as_secs_f64() * 1000.0;
        let out = match &result {
            Ok((_, detail)) if detail.is_empty() => format!("✓ {name} ({ms:.1} ms)"),
            Ok((_, detail)) => format!("✓ {name}: {detail} ({ms:.1} ms)"),
            Err(e) => {
                self.failed += 1;
                format!("✗ {name}: {e} ({ms:.1} ms)")
            }
        };
        println!("{out}");
        let _ = std::io::stdout().flush();
        result.ok().map(|(v, _)| v)
    }

    /// A step that cannot run because an earlier one failed.
    fn skip(&mut self, name: &str) {
        self.total += 1;
        self.skipped += 1;
        println!("- {name}: skipped (an earlier step failed)");
    }

    fn note(&self, text: &str) {
        println!("  {text}");
    }
}

/// Run `fut` to completion on this thread, giving up after `t`.
fn block_within<T, E: Display>(
    t: Duration,
    fut: impl Future<Output = Result<T, E>>,
) -> Result<T, String> {
    smol::block_on(
        async move { fut.await.map_err(|e| e.to_string()) }.or(async move {
            smol::Timer::after(t).await;
            Err(format!("no answer within {} s", t.as_secs()))
        }),
    )
}

/// A random lowercase hex string of `bytes` bytes.
fn random_hex(bytes: usize) -> String {
    xmpp_runtime::clock::random_seed()
        .iter()
        .take(bytes)
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The certificate to test with: the configured one, or a throwaway
/// self-signed one for every domain, in a temporary directory kept in
/// `scratch`.
fn certificate(
    cfg: &Config,
    scratch: &mut Option<tempfile::TempDir>,
) -> Result<(ServerTls, String), String> {
    match (&cfg.certificate, &cfg.key) {
        (Some(c), Some(k)) => {
            let tls = server_tls(c, k).map_err(|e| e.to_string())?;
            let mut detail = format!(
                "configured {} ({})",
                c.display(),
                cfg.origin("tls.certificate")
            );
            if let Ok(info) = CertInfo::read(c) {
                let uncovered: Vec<&str> = cfg
                    .domains
                    .iter()
                    .filter(|d| info.covering(d).is_none())
                    .map(String::as_str)
                    .collect();
                if !uncovered.is_empty() {
                    detail.push_str(&format!(
                        "; warning: it does not name {} (see `vireo check certs`)",
                        uncovered.join(", ")
                    ));
                }
            }
            Ok((tls, detail))
        }
        _ => {
            let dir = tempfile::Builder::new()
                .prefix("vireo-config-test-")
                .tempdir()
                .map_err(|e| format!("cannot create a temporary directory: {e}"))?;
            let paths =
                generate_self_signed(&cfg.domains, dir.path()).map_err(|e| e.to_string())?;
            *scratch = Some(dir);
            let tls = server_tls(&paths.cert, &paths.key).map_err(|e| e.to_string())?;
            Ok((
                tls,
                format!(
                    "none configured: throwaway self-signed certificate for {}",
                    cfg.domains.join(", ")
                ),
            ))
        }
    }
}

/// Log in and bind.
fn login(addr: SocketAddr, jid: &Jid, password: &str, mode: TlsMode) -> Result<Client, String> {
    let cfg = ClientConfig::new(jid.clone(), password);
    block_within(STEP_TIMEOUT, Client::connect_with(addr, cfg, mode))
}

/// Send presence (the server echoes it), then a message to our own full
/// JID; wait for that message to come back.
fn message_self(client: &mut Client, token: &str) -> Result<String, String> {
    let me = client
        .jid()
        .map(ToString::to_string)
        .ok_or_else(|| "no bound JID".to_owned())?;
    block_within(STEP_TIMEOUT, async {
        client
            .send(&Element::new("jabber:client", "presence"))
            .await?;
        let msg = Element::new("jabber:client", "message")
            .with_attr("to", me.as_str())
            .with_attr("type", "chat")
            .with_attr("id", token)
            .with_child(Element::new("jabber:client", "body").with_text(token));
        client.send(&msg).await?;
        loop {
            let stanza = client.recv().await?;
            if stanza.name == "message"
                && stanza.child_text("jabber:client", "body").as_deref() == Some(token)
            {
                let from = stanza.attr("from").unwrap_or_default().to_owned();
                break Ok::<String, xmpp_runtime::client::ClientError>(from);
            }
        }
    })
    .and_then(|from| {
        if from == me {
            Ok(format!("{me} → {me}"))
        } else {
            Err(format!(
                "the message came back from {from:?}, expected {me}"
            ))
        }
    })
}

/// The configuration did not load: the first step fails with the loader's
/// report (every error with its file and line), exit code 2 like any
/// configuration error.
pub fn without_config(e: &ConfigError) -> ExitCode {
    println!("✗ load the configuration: {e}");
    for step in [
        "load the TLS certificate",
        "start the server on 127.0.0.1 (ephemeral ports)",
        "create a temporary account",
        "log in with STARTTLS (RFC 6120 §5, SASL, bind)",
        "send a message to itself and receive it",
    ] {
        println!("- {step}: skipped (an earlier step failed)");
    }
    eprintln!("vireo: config test failed: the configuration does not load");
    ExitCode::from(2)
}

/// Run the test and print its steps.
pub fn run(cfg: &Config) -> Result<String, ConfigTestError> {
    let started = Instant::now();
    let mut steps = Steps {
        total: 0,
        failed: 0,
        skipped: 0,
    };
    let source = describe_source(&cfg.source);
    steps.run("load the configuration", || {
        Ok(((), format!("{source}; domains {}", cfg.domains.join(", "))))
    });

    // Holds the throwaway certificate, if one is generated, until the end.
    let mut scratch = None;
    // And the uploads' scratch directory.
    let mut upload_scratch = None;
    let tls = steps.run("load the TLS certificate", || {
        certificate(cfg, &mut scratch)
    });
    let backend: Arc<dyn Backend> = Arc::new(MemoryBackend::new());
    let server: Option<RunningServer> = match tls {
        Some(tls) => steps.run("start the server on 127.0.0.1 (ephemeral ports)", || {
            let mut rc = super::run::runtime_config(cfg, Some(Arc::new(tls)));
            rc.bind = IpAddr::V4(Ipv4Addr::LOCALHOST);
            rc.c2s_port = 0;
            rc.c2s_tls_port = Some(0);
            // The components' listener too: loopback, any free port.
            if let Some(c) = rc.components.as_mut() {
                c.bind = IpAddr::V4(Ipv4Addr::LOCALHOST);
                c.port = 0;
            }
            // HTTP too; uploads go to a scratch directory, never the data
            // directory.
            if let Some(h) = rc.http.as_mut() {
                h.port = h.port.map(|_| 0);
                h.tls_port = h.tls_port.map(|_| 0);
                if let Some(u) = h.upload.as_mut() {
                    let dir = tempfile::tempdir().map_err(|e| format!("scratch directory: {e}"))?;
                    u.dir = dir.path().join("upload");
                    upload_scratch = Some(dir);
                }
            }
            // Federation listens too, on free ports.
            if let Some(s) = rc.s2s.as_mut() {
                s.port = 0;
                s.tls_port = s.tls_port.map(|_| 0);
            }
            rc.admin_socket = None;
            rc.threads = 2;
            rc.partitions = 2;
            rc.max_connections = 16;
            let server = xmpp_runtime::start(rc, backend.clone()).map_err(|e| e.to_string())?;
            let detail = format!(
                "STARTTLS {}, direct TLS {}, in-memory store",
                server.c2s_addr,
                server
                    .c2s_tls_addr
                    .map(|a| a.to_string())
                    .unwrap_or_else(|| "-".into())
            );
            Ok((server, detail))
        }),
        None => {
            steps.skip("start the server on 127.0.0.1 (ephemeral ports)");
            None
        }
    };

    let domain = cfg.domains.first().cloned().unwrap_or_default();
    let password = random_hex(12);
    let account = match &server {
        Some(_) => steps.run("create a temporary account", || {
            let jid = Jid::parse(&format!("vireo-test-{}@{domain}", random_hex(4)))
                .map_err(|e| e.to_string())?;
            add_user(backend.as_ref(), &jid, &password, cfg.scram_iterations)
                .map_err(|e| e.to_string())?;
            let detail = format!("{jid} ({} SCRAM iterations)", cfg.scram_iterations);
            Ok((jid, detail))
        }),
        None => {
            steps.skip("create a temporary account");
            None
        }
    };

    let mut client = None;
    match (&server, &account) {
        (Some(server), Some(jid)) => {
            let addr = server.c2s_addr;
            client = steps.run("log in with STARTTLS (RFC 6120 §5, SASL, bind)", || {
                let full = Jid::parse(&format!("{jid}/config-test")).map_err(|e| e.to_string())?;
                let c = login(addr, &full, &password, TlsMode::StartTls)?;
                let bound = c.jid().map(ToString::to_string).unwrap_or_default();
                Ok((c, format!("bound {bound}")))
            });
            match server.c2s_tls_addr {
                Some(direct) => {
                    steps.run("log in with direct TLS (XEP-0368)", || {
                        let c = login(direct, jid, &password, TlsMode::Direct)?;
                        let bound = c.jid().map(ToString::to_string).unwrap_or_default();
                        block_within(STEP_TIMEOUT, c.close())?;
                        Ok(((), format!("bound {bound}")))
                    });
                }
                None => steps.note("direct TLS: no listener (skipped)"),
            }
        }
        _ => {
            steps.skip("log in with STARTTLS (RFC 6120 §5, SASL, bind)");
        }
    }
    // Every other hosted domain (virtual host) serves logins too.
    if let Some(server) = server.as_ref().filter(|_| account.is_some()) {
        for other in cfg.domains.iter().skip(1) {
            steps.run(&format!("log in on {other} (STARTTLS)"), || {
                let jid = Jid::parse(&format!("vireo-test-{}@{other}", random_hex(4)))
                    .map_err(|e| e.to_string())?;
                add_user(backend.as_ref(), &jid, &password, cfg.scram_iterations)
                    .map_err(|e| e.to_string())?;
                let c = login(server.c2s_addr, &jid, &password, TlsMode::StartTls)?;
                let bound = c.jid().map(ToString::to_string).unwrap_or_default();
                block_within(STEP_TIMEOUT, c.close())?;
                Ok(((), format!("bound {bound}")))
            });
        }
    }
    match client.as_mut() {
        Some(c) => {
            let token = format!("vireo config test {}", random_hex(6));
            steps.run("send a message to itself and receive it", || {
                message_self(c, &token).map(|d| ((), d))
            });
        }
        None => steps.skip("send a message to itself and receive it"),
    }
    if let Some(c) = client {
        steps.run("log out", || {
            block_within(STEP_TIMEOUT, c.close()).map(|()| ((), String::new()))
        });
    }
    if let Some(server) = server {
        steps.run("shut down", || {
            server.shutdown(Duration::from_secs(2));
            Ok(((), String::new()))
        });
    }
    drop(scratch);
    let ms = started.elapsed().as_secs_f64() * 1000.0;
    if steps.failed == 0 && steps.skipped == 0 {
        Ok(format!(
            "config test passed: {} steps in {ms:.0} ms",
            steps.total
        ))
    } else {
        Err(ConfigTestError::Failed {
            failed: steps.failed,
            skipped: steps.skipped,
            total: steps.total,
        })
    }
}
