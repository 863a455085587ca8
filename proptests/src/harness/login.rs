//! A simulated world with three accounts whose sessions the harness opens
//! over raw connections, so every byte after login is the fuzzer's.
//!
//! Logins are real SCRAM-SHA-256 exchanges over (fake) direct TLS, but cheap:
//! the accounts' stored credentials are derived once per process and
//! cloned into each world, and the client side uses cached SCRAM keys
//! (RFC 5802 §5.1), so no PBKDF2 runs per input.

use base64::Engine as _;
use std::collections::BTreeMap;
use std::sync::{Mutex, OnceLock};
use xmpp_core::hub::{ConnId, HubConfig};
use xmpp_core::sasl::{Mechanism, ScramClient, ScramClientKeys};
use xmpp_core::sim::{MemoryStore, World, SIM_ITERATIONS};
use xmpp_core::stream::component::handshake_digest;
use xmpp_core::stream::{ComponentSecret, ComponentStreamConfig, ServerStreamConfig};
use xmpp_core::xml::{Limits, StreamEvent, StreamParser};

/// Every account's password.
pub const PASSWORD: &str = "fuzz-password";
/// The accounts.
pub const ACCOUNTS: [&str; 3] = ["alice@localhost", "bob@localhost", "carol@localhost"];
/// The configured external component (XEP-0114) and its secret.
pub const COMPONENT: &str = "echo.localhost";
const COMPONENT_SECRET: &str = "s3cret";

/// A client stream header for `localhost`.
pub const HEADER: &str = "<stream:stream xmlns='jabber:client' \
     xmlns:stream='http://etherx.jabber.org/streams' to='localhost' version='1.0'>";

const SASL: &str = "urn:ietf:params:xml:ns:xmpp-sasl";

/// The accounts' store, derived once.
fn template_store() -> &'static MemoryStore {
    static STORE: OnceLock<MemoryStore> = OnceLock::new();
    STORE.get_or_init(|| {
        let mut store = MemoryStore::new();
        for account in ACCOUNTS {
            store.add_user(account, PASSWORD, SIM_ITERATIONS);
        }
        store
    })
}

/// A world with the accounts and the component configured.
pub fn world() -> World {
    let hub = HubConfig {
        components: vec![COMPONENT.to_owned()],
        ..HubConfig::default()
    };
    let mut world = World::new(ServerStreamConfig::default(), hub);
    *world.store_mut() = template_store().clone();
    world.set_component_config(ComponentStreamConfig {
        components: vec![ComponentSecret {
            domain: COMPONENT.into(),
            secret: COMPONENT_SECRET.into(),
        }],
        ..ComponentStreamConfig::default()
    });
    world
}

/// The text between `<name ...>` and `</name>` in the server's output.
fn element_text<'a>(out: &'a str, name: &str) -> Option<&'a str> {
    let start = out.find(&format!("<{name}"))?;
    let body = start + out[start..].find('>')? + 1;
    let end = body + out[body..].find(&format!("</{name}>"))?;
    Some(&out[body..end])
}

/// The value of attribute `attr` of the first `<name` element in `out`.
pub fn attr_of(out: &str, name: &str, attr: &str) -> Option<String> {
    let start = out.find(&format!("<{name}"))?;
    let tag = &out[start..start + out[start..].find('>')?];
    for quote in ['\'', '"'] {
        let key = format!(" {attr}={quote}");
        if let Some(at) = tag.find(&key) {
            let value = &tag[at + key.len()..];
            return value.find(quote).map(|end| value[..end].to_owned());
        }
    }
    None
}

/// Cached SCRAM keys per account, from its first login in this process.
fn keys() -> &'static Mutex<BTreeMap<String, ScramClientKeys>> {
    static KEYS: OnceLock<Mutex<BTreeMap<String, ScramClientKeys>>> = OnceLock::new();
    KEYS.get_or_init(|| Mutex::new(BTreeMap::new()))
}

/// Open a direct-TLS connection and authenticate `account` with
/// SCRAM-SHA-256, then restart the stream; `resource` binds. Returns the
/// connection, or `None` when the server refused (it does not, for these
/// accounts, unless the fuzzer ended them).
pub fn login(world: &mut World, account: &str, resource: Option<&str>) -> Option<ConnId> {
    let conn = world.connect(true);
    world.client_sends(conn, HEADER.as_bytes());
    world.take_server_output(conn);
    let user = account.split('@').next()?;
    let (client, first) = ScramClient::new(
        Mechanism::ScramSha256,
        user,
        PASSWORD,
        b"fuzz-client-nonce-bytes",
        None,
        false,
    )
    .ok()?;
    let cached = keys().lock().ok()?.get(account).cloned();
    let mut client = match cached {
        Some(k) => client.with_cached_keys(k),
        None => client,
    };
    let b64 = base64::engine::general_purpose::STANDARD;
    let auth = format!(
        "<auth xmlns='{SASL}' mechanism='SCRAM-SHA-256'>{}</auth>",
        b64.encode(first)
    );
    world.client_sends(conn, auth.as_bytes());
    let out = String::from_utf8_lossy(&world.take_server_output(conn)).into_owned();
    let challenge = b64.decode(element_text(&out, "challenge")?.trim()).ok()?;
    let last = client.handle_server_first(&challenge).ok()?;
    if let Some(k) = client.keys() {
        keys().lock().ok()?.insert(account.to_owned(), k.clone());
    }
    let response = format!("<response xmlns='{SASL}'>{}</response>", b64.encode(last));
    world.client_sends(conn, response.as_bytes());
    let out = String::from_utf8_lossy(&world.take_server_output(conn)).into_owned();
    if !out.contains("<success") {
        return None;
    }
    world.client_sends(conn, HEADER.as_bytes());
    world.take_server_output(conn);
    if let Some(resource) = resource {
        let bind = format!(
            "<iq type='set' id='bind'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'>\
             <resource>{resource}</resource></bind></iq>"
        );
        world.client_sends(conn, bind.as_bytes());
    }
    Some(conn)
}

/// Connect the component and complete its handshake.
pub fn component_login(world: &mut World) -> ConnId {
    let conn = world.connect_component();
    let header = format!(
        "<stream:stream xmlns='jabber:component:accept' \
         xmlns:stream='http://etherx.jabber.org/streams' to='{COMPONENT}'>"
    );
    world.client_sends(conn, header.as_bytes());
    let out = String::from_utf8_lossy(&world.take_server_output(conn)).into_owned();
    let id = attr_of(&out, "stream:stream", "id").unwrap_or_default();
    let digest = handshake_digest(&id, COMPONENT_SECRET);
    world.client_sends(conn, format!("<handshake>{digest}</handshake>").as_bytes());
    conn
}

/// Reads what the server writes on one stream after negotiation and checks
/// that it is well-formed XML: a client must be able to parse every byte
/// the server sends, whatever the fuzzer made other clients send.
#[derive(Debug)]
pub struct OutputCheck {
    /// `None` for a connection that never negotiated (nothing to check
    /// against: its output starts with the server's own header).
    parser: Option<StreamParser>,
}

impl OutputCheck {
    /// A reader inside a stream of namespace `ns` (the header the server
    /// sent at the restart is not part of what it is fed).
    pub fn new(ns: &str) -> Self {
        // A client's limits, generous: the properties are about the XML.
        // The struct update keeps this compiling when limits are added.
        #[allow(clippy::needless_update)]
        let limits = Limits {
            max_stanza_bytes: 64 << 20,
            max_depth: 1024,
            ..Limits::default()
        };
        let mut parser = StreamParser::new(limits);
        parser.feed(
            format!("<stream:stream xmlns='{ns}' xmlns:stream='http://etherx.jabber.org/streams'>")
                .as_bytes(),
        );
        OutputCheck {
            parser: Some(parser),
        }
    }

    /// For a connection the harness did not log in: its output is only
    /// taken, not checked.
    pub fn unchecked() -> Self {
        OutputCheck { parser: None }
    }

    /// Feed the server's bytes; returns the stanzas in them.
    ///
    /// # Panics
    /// When the server wrote something that is not well-formed XML.
    pub fn feed(&mut self, bytes: &[u8]) -> Vec<xmpp_core::xml::Element> {
        let mut stanzas = Vec::new();
        let Some(parser) = &mut self.parser else {
            return stanzas;
        };
        parser.feed(bytes);
        loop {
            match parser.next_event() {
                Ok(Some(StreamEvent::Stanza(el))) => stanzas.push(el),
                Ok(Some(StreamEvent::Open(_) | StreamEvent::Close)) => {}
                Ok(None) => return stanzas,
                Err(e) => panic!(
                    "the server wrote XML a client cannot parse: {e:?} in {:?}",
                    String::from_utf8_lossy(bytes)
                ),
            }
        }
    }
}
