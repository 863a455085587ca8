//! xmpp-core with no sockets at all: two client machines and the server's
//! connection machines and hub, joined by in-memory queues in
//! `xmpp_core::sim::World`. This is how an application can embed the
//! protocol in its own transport, test harness or simulation.

use xmpp_core::hub::HubConfig;
use xmpp_core::jid::Jid;
use xmpp_core::sim::{ClientEvent, World};
use xmpp_core::stream::{ClientConfig, ServerStreamConfig};
use xmpp_core::Element;

/// Log two users in, send one message, return what the recipient saw.
pub fn run_demo(body: &str) -> Result<Element, String> {
    let mut world = World::new(ServerStreamConfig::default(), HubConfig::default());
    world.add_user("alice@localhost", "secret");
    world.add_user("bob@localhost", "secret");
    let jid = |s: &str| Jid::parse(s).map_err(|e| e.to_string());
    let alice = world.connect_client(ClientConfig::new(jid("alice@localhost/pipe")?, "secret"));
    let bob = world.connect_client(ClientConfig::new(jid("bob@localhost/pipe")?, "secret"));
    for (name, id) in [("alice", alice), ("bob", bob)] {
        let online = world
            .client_events(id)
            .into_iter()
            .any(|e| matches!(e, ClientEvent::Online(_)));
        if !online {
            return Err(format!("{name} did not come online"));
        }
    }
    world.client_send_stanza(bob, &Element::new("jabber:client", "presence"));
    let msg = Element::new("jabber:client", "message")
        .with_attr("to", "bob@localhost")
        .with_attr("type", "chat")
        .with_child(Element::new("jabber:client", "body").with_text(body));
    world.client_send_stanza(alice, &msg);
    world
        .client_events(bob)
        .into_iter()
        .find_map(|e| match e {
            ClientEvent::Stanza(s) if s.name == "message" => Some(s),
            _ => None,
        })
        .ok_or_else(|| "bob received no message".to_owned())
}

#[cfg(test)]
mod tests {
    #[test]
    fn message_crosses_the_in_memory_world() {
        let got = super::run_demo("no sockets here").expect("demo runs");
        assert_eq!(got.attr("from"), Some("alice@localhost/pipe"));
        assert_eq!(
            got.child_text("jabber:client", "body").as_deref(),
            Some("no sockets here")
        );
    }
}
