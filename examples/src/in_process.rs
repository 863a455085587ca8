//! A server started in-process by another Rust program: ephemeral loopback
//! ports, an in-memory store, two accounts, and two clients (xmpp-core's
//! client side over real TLS sockets) exchanging a message.

use std::sync::Arc;
use std::time::Duration;
use xmpp_core::jid::Jid;
use xmpp_core::stream::ClientConfig;
use xmpp_core::Element;
use xmpp_runtime::accounts::add_user;
use xmpp_runtime::client::Client;
use xmpp_runtime::storage::{Backend, MemoryBackend};
use xmpp_runtime::tls::{generate_self_signed, server_tls};
use xmpp_runtime::RuntimeConfig;

/// Start a server, exchange one message between two users, stop. Returns the
/// body the recipient got.
pub fn run_demo(body: &str) -> Result<String, Box<dyn std::error::Error>> {
    let dir = std::env::temp_dir().join(format!("vireo-demo-{}", std::process::id()));
    let paths = generate_self_signed(&["localhost".to_owned()], &dir)?;
    let tls = Arc::new(server_tls(&paths.cert, &paths.key)?);
    let backend: Arc<dyn Backend> = Arc::new(MemoryBackend::new());
    for user in ["alice", "bob"] {
        add_user(
            backend.as_ref(),
            &Jid::parse(&format!("{user}@localhost"))?,
            "secret",
            4096,
        )?;
    }
    let cfg = RuntimeConfig {
        c2s_tls_port: Some(0),
        tls: Some(tls),
        ..RuntimeConfig::default()
    };
    let server = xmpp_runtime::start(cfg, backend)?;
    let starttls = server.c2s_addr;
    let direct = server.c2s_tls_addr.ok_or("no direct TLS listener")?;
    let received = smol::block_on(async move {
        let mut alice = Client::connect(
            starttls,
            ClientConfig::new(Jid::parse("alice@localhost/desk")?, "secret"),
            false,
        )
        .await?;
        let mut bob = Client::connect(
            direct,
            ClientConfig::new(Jid::parse("bob@localhost/phone")?, "secret"),
            true,
        )
        .await?;
        bob.send(&Element::new("jabber:client", "presence")).await?;
        // Bob's own presence comes back first (RFC 6121 §4.2.2).
        bob.recv_timeout(Duration::from_secs(5)).await?;
        let msg = Element::new("jabber:client", "message")
            .with_attr("to", "bob@localhost")
            .with_attr("type", "chat")
            .with_child(Element::new("jabber:client", "body").with_text(body));
        alice.send(&msg).await?;
        let got = loop {
            let stanza = bob.recv_timeout(Duration::from_secs(5)).await?;
            if stanza.name == "message" {
                break stanza;
            }
        };
        alice.close().await?;
        bob.close().await?;
        let from = got.attr("from").unwrap_or_default().to_owned();
        if from != "alice@localhost/desk" {
            return Err(format!("unexpected sender {from}").into());
        }
        Ok::<_, Box<dyn std::error::Error>>(
            got.child_text("jabber:client", "body").unwrap_or_default(),
        )
    });
    server.shutdown(Duration::from_secs(1));
    let _ = std::fs::remove_dir_all(&dir);
    received
}

#[cfg(test)]
mod tests {
    #[test]
    fn two_clients_talk_through_an_in_process_server() {
        let got = super::run_demo("héllo <&> 🦀").expect("demo runs");
        assert_eq!(got, "héllo <&> 🦀");
    }
}
