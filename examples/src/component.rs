//! An external component (XEP-0114) built on xmpp-core's parser and
//! handshake: an echo service at `echo.localhost`, connected to an
//! in-process Vireo that a client talks to.
//!
//! A component is a separate program serving a whole domain (a gateway, a
//! bot platform, a push app server). All it needs is a TCP connection, the
//! shared secret, and XML: the core's component machine
//! (`xmpp_core::stream::ComponentClient`) does the handshake and the
//! runtime's `ComponentConnection` moves its bytes.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;
use xmpp_core::hub::HubConfig;
use xmpp_core::jid::Jid;
use xmpp_core::stream::component::NS;
use xmpp_core::stream::{
    ClientConfig, ComponentClientConfig, ComponentSecret, ComponentStreamConfig,
};
use xmpp_core::xml::Element;
use xmpp_runtime::accounts::add_user;
use xmpp_runtime::client::Client;
use xmpp_runtime::component_client::ComponentConnection;
use xmpp_runtime::storage::{Backend, MemoryBackend};
use xmpp_runtime::tls::{generate_self_signed, server_tls};
use xmpp_runtime::{ComponentListener, RuntimeConfig};

type Error = Box<dyn std::error::Error>;

/// The echo service: a component connection (the core's
/// `ComponentClient` machine, driven by the runtime).
pub struct EchoComponent {
    conn: ComponentConnection,
}

impl EchoComponent {
    /// Connect to the server's component port and complete the handshake.
    pub async fn connect(addr: SocketAddr, domain: &str, secret: &str) -> Result<Self, Error> {
        let conn =
            ComponentConnection::connect(addr, ComponentClientConfig::new(domain, secret)).await?;
        Ok(EchoComponent { conn })
    }

    /// Answer the next message with a body by echoing it back; returns the
    /// body.
    pub async fn echo_one(&mut self) -> Result<String, Error> {
        loop {
            let m = self.conn.recv().await?;
            let Some(body) = m.child_text(NS, "body") else {
                continue;
            };
            let reply = Element::new(NS, "message")
                .with_attr("from", m.attr("to").unwrap_or_default())
                .with_attr("to", m.attr("from").unwrap_or_default())
                .with_attr("type", "chat")
                .with_child(Element::new(NS, "body").with_text(format!("echo: {body}")));
            self.conn.send(&reply).await?;
            return Ok(body);
        }
    }
}

/// Start a server with an echo component, have alice write to it, and
/// return the body of the answer she gets.
pub fn run_demo(body: &str) -> Result<String, Error> {
    let dir = std::env::temp_dir().join(format!("vireo-component-demo-{}", std::process::id()));
    let paths = generate_self_signed(&["localhost".to_owned()], &dir)?;
    let backend: Arc<dyn Backend> = Arc::new(MemoryBackend::new());
    add_user(
        backend.as_ref(),
        &Jid::parse("alice@localhost")?,
        "secret",
        4096,
    )?;
    let secret = "an-example-secret-of-some-length";
    let cfg = RuntimeConfig {
        tls: Some(Arc::new(server_tls(&paths.cert, &paths.key)?)),
        hub: HubConfig {
            components: vec!["echo.localhost".into()],
            ..HubConfig::default()
        },
        components: Some(ComponentListener {
            bind: IpAddr::V4(Ipv4Addr::LOCALHOST),
            port: 0,
            stream: ComponentStreamConfig {
                components: vec![ComponentSecret {
                    domain: "echo.localhost".into(),
                    secret: secret.into(),
                }],
                ..ComponentStreamConfig::default()
            },
        }),
        ..RuntimeConfig::default()
    };
    let server = xmpp_runtime::start(cfg, backend)?;
    let c2s = server.c2s_addr;
    let component_addr = server.component_addr.ok_or("no component listener")?;
    let received = smol::block_on(async move {
        let mut echo = EchoComponent::connect(component_addr, "echo.localhost", secret).await?;
        let mut alice = Client::connect(
            c2s,
            ClientConfig::new(Jid::parse("alice@localhost/desk")?, "secret"),
            false,
        )
        .await?;
        let msg = Element::new("jabber:client", "message")
            .with_attr("to", "bot@echo.localhost")
            .with_attr("type", "chat")
            .with_child(Element::new("jabber:client", "body").with_text(body));
        alice.send(&msg).await?;
        echo.echo_one().await?;
        let got = loop {
            let stanza = alice.recv_timeout(Duration::from_secs(5)).await?;
            if stanza.name == "message" {
                break stanza;
            }
        };
        alice.close().await?;
        Ok::<_, Error>(got.child_text("jabber:client", "body").unwrap_or_default())
    });
    server.shutdown(Duration::from_secs(1));
    let _ = std::fs::remove_dir_all(&dir);
    received
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_component_answers_a_client() {
        let got = super::run_demo("héllo <&> 🦀").expect("demo runs");
        assert_eq!(got, "echo: héllo <&> 🦀");
    }
}
