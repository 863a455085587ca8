//! Another program's own hub module ([`crate::fortune`]) registered with an
//! in-process Vireo, and a client that verifies the server's certificate.
//!
//! The server gets a fresh self-signed certificate for `localhost`; the
//! client trusts exactly that certificate (a `RootCertStore` holding only
//! it) and connects with [`Client::connect_verified`], so the handshake
//! fails unless the server presents it for `localhost`. Then the client
//! finds the module's feature in the server's disco#info, asks for a
//! fortune and subscribes, and the module pushes a message.

use crate::fortune::{Fortune, NS};
use rustls::pki_types::CertificateDer;
use rustls::RootCertStore;
use std::sync::Arc;
use std::time::Duration;
use xmpp_core::hub::HubConfig;
use xmpp_core::jid::Jid;
use xmpp_core::modules::ModuleSet;
use xmpp_core::stream::ClientConfig;
use xmpp_core::{ns, Element};
use xmpp_runtime::accounts::add_user;
use xmpp_runtime::client::Client;
use xmpp_runtime::storage::{Backend, MemoryBackend};
use xmpp_runtime::tls::{generate_self_signed, server_tls};
use xmpp_runtime::RuntimeConfig;

type Error = Box<dyn std::error::Error>;

/// How long to wait for each stanza.
const WAIT: Duration = Duration::from_secs(5);

/// What the client saw.
#[derive(Debug)]
pub struct Outcome {
    /// The server's disco#info lists the module's namespace.
    pub advertised: bool,
    /// The saying in the answer to `<fortune/>`.
    pub answer: String,
    /// The message the module pushed after `<subscribe/>`.
    pub pushed: Element,
}

/// Start a server running the standard modules plus [`Fortune`] telling
/// `sayings`, talk to it with a verifying client as `alice@localhost/desk`,
/// stop.
pub fn run_demo(sayings: &[&str]) -> Result<Outcome, Error> {
    let dir = std::env::temp_dir().join(format!("vireo-custom-module-{}", std::process::id()));
    let result = serve_and_talk(&dir, sayings);
    let _ = std::fs::remove_dir_all(&dir);
    result
}

fn serve_and_talk(dir: &std::path::Path, sayings: &[&str]) -> Result<Outcome, Error> {
    let paths = generate_self_signed(&["localhost".to_owned()], dir)?;
    let tls = Arc::new(server_tls(&paths.cert, &paths.key)?);
    // Trust exactly the certificate the server presents, nothing else.
    let mut roots = RootCertStore::empty();
    roots.add(CertificateDer::from(tls.end_entity_der.clone()))?;

    let backend: Arc<dyn Backend> = Arc::new(MemoryBackend::new());
    add_user(
        backend.as_ref(),
        &Jid::parse("alice@localhost")?,
        "secret",
        4096,
    )?;
    let cfg = RuntimeConfig {
        tls: Some(tls),
        hub: HubConfig {
            modules: ModuleSet::standard().with(Fortune::new(sayings.iter().copied())),
            ..HubConfig::default()
        },
        ..RuntimeConfig::default()
    };
    let server = xmpp_runtime::start(cfg, backend)?;
    let addr = server.c2s_addr;
    let outcome = smol::block_on(async move {
        let jid = Jid::parse("alice@localhost/desk")?;
        let mut alice =
            Client::connect_verified(addr, ClientConfig::new(jid, "secret"), false, roots).await?;
        let outcome = talk(&mut alice).await;
        alice.close().await?;
        outcome
    });
    server.shutdown(Duration::from_secs(1));
    outcome
}

/// Disco, a fortune, a subscription and its push.
async fn talk(alice: &mut Client) -> Result<Outcome, Error> {
    // Stanzas that are not the awaited reply (the push may be among them).
    let mut others = Vec::new();

    let disco = request("get", "disco", Element::new(ns::DISCO_INFO, "query"));
    alice.send(&disco).await?;
    let info = reply(alice, "disco", &mut others).await?;
    let advertised = info
        .child(ns::DISCO_INFO, "query")
        .is_some_and(|q| q.elements().any(|f| f.attr("var") == Some(NS)));

    alice
        .send(&request("get", "f1", Element::new(NS, "fortune")))
        .await?;
    let answer = reply(alice, "f1", &mut others)
        .await?
        .child_text(NS, "fortune")
        .ok_or("no <fortune/> in the answer")?;

    alice
        .send(&request("set", "s1", Element::new(NS, "subscribe")))
        .await?;
    reply(alice, "s1", &mut others).await?;
    let pushed = loop {
        if let Some(i) = others.iter().position(|s| s.name == "message") {
            break others.swap_remove(i);
        }
        others.push(alice.recv_timeout(WAIT).await?);
    };
    Ok(Outcome {
        advertised,
        answer,
        pushed,
    })
}

/// An iq of `kind` to the server carrying `payload`.
fn request(kind: &str, id: &str, payload: Element) -> Element {
    Element::new(ns::CLIENT, "iq")
        .with_attr("type", kind)
        .with_attr("to", "localhost")
        .with_attr("id", id)
        .with_child(payload)
}

/// The result for iq `id`; other stanzas go to `others`.
async fn reply(alice: &mut Client, id: &str, others: &mut Vec<Element>) -> Result<Element, Error> {
    loop {
        let s = alice.recv_timeout(WAIT).await?;
        if s.name != "iq" || s.attr("id") != Some(id) {
            others.push(s);
            continue;
        }
        return match s.attr("type") {
            Some("result") => Ok(s),
            _ => Err(format!("iq {id} failed: {}", s.to_xml()).into()),
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAYINGS: &[&str] = &["Fortune favours the embedder.", "héllo <&> 🦀"];

    #[test]
    fn a_custom_module_answers_advertises_and_pushes_to_a_verifying_client() {
        let got = run_demo(SAYINGS).expect("demo runs");
        assert!(got.advertised, "{NS} in the server's disco#info");
        assert!(SAYINGS.contains(&got.answer.as_str()), "{}", got.answer);
        let m = &got.pushed;
        assert_eq!(m.attr("from"), Some("localhost"));
        assert_eq!(m.attr("to"), Some("alice@localhost/desk"));
        assert_eq!(m.attr("type"), Some("headline"));
        let pushed = m.child_text(NS, "fortune").expect("a pushed fortune");
        assert!(SAYINGS.contains(&pushed.as_str()), "{pushed}");
    }
}
