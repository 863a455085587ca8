//! SASL server exchanges (RFC 4422): SCRAM with and without channel binding,
//! and PLAIN, from structured input.
//!
//! Two kinds of run: raw client messages (any bytes for client-first and
//! client-final), and a real [`ScramClient`] whose messages are optionally
//! mutated on the way, so the fuzzer reaches the proof check with inputs
//! that are almost right. The properties:
//! - nothing panics;
//! - no raw exchange ever succeeds (a forged proof is an authentication
//!   bypass), nor does any exchange with the wrong password or for an unknown
//!   user;
//! - an unmutated real exchange succeeds exactly when the RFC says it must
//!   (right password, a binding the server can vouch for, no downgrade), and
//!   the client accepts the server's signature;
//! - `server_first` is idempotent and a second client-final is refused;
//! - a PLAIN message that parses is rebuilt byte for byte from its fields.
//!
//! PBKDF2 runs only once per process: the stored credentials and the
//! client's keys are derived at first use and then cached, which is what
//! keeps the target at thousands of executions per second.

use arbitrary::{Arbitrary, Unstructured};
use std::collections::BTreeMap;
use std::sync::{Mutex, OnceLock};
use xmpp_core::sasl::{
    parse_plain, plain_message, ChannelBinding, ChannelBindingType, Mechanism, ScramClient,
    ScramClientKeys, ScramServer, StoredCredentials,
};

const USER: &str = "alice";
const PASSWORD: &str = "pencil";
const WRONG: &str = "pencil2";
const SALT: &[u8] = b"vireo-fuzz-salt!";
const SERVER_NONCE: &[u8] = b"server-nonce-18-bytes";
const CLIENT_NONCE: &[u8] = b"client-nonce-18-bytes";
const EXPORTER: [u8; 32] = [0xe1; 32];
const END_POINT: [u8; 32] = [0xe2; 32];

#[derive(Arbitrary, Debug)]
struct Input {
    /// Index into [`Mechanism::SERVER_PREFERENCE`].
    mechanism: u8,
    /// Which bindings the TLS layer offers: bit 0 exporter, bit 1 end-point.
    offered: u8,
    plus_advertised: bool,
    user_known: bool,
    /// `with_decoy` iterations, for unknown users.
    decoy: Option<u16>,
    script: Script,
}

#[derive(Arbitrary, Debug)]
enum Script {
    /// Client-first, then one or more client-finals, as given.
    Raw {
        first: Vec<u8>,
        finals: Vec<Vec<u8>>,
    },
    /// A real client, its messages mutated on the way.
    Client {
        right_password: bool,
        /// For `-PLUS`: the binding type the client uses (true = exporter).
        exporter: bool,
        /// For `-PLUS`: the client sees the same binding data as the server.
        same_channel: bool,
        /// Without `-PLUS`: the client supports binding (gs2 flag `y`).
        client_supports_plus: bool,
        first: Vec<Mutation>,
        last: Vec<Mutation>,
    },
    /// A PLAIN message.
    Plain(Vec<u8>),
}

#[derive(Arbitrary, Debug)]
enum Mutation {
    Replace(u16, u8),
    Insert(u16, u8),
    Remove(u16),
    Truncate(u16),
}

fn mutate(msg: &mut Vec<u8>, mutations: &[Mutation]) {
    for m in mutations {
        let len = msg.len();
        match *m {
            Mutation::Replace(at, b) if len > 0 => msg[usize::from(at) % len] = b,
            Mutation::Insert(at, b) => msg.insert(usize::from(at) % (len + 1), b),
            Mutation::Remove(at) if len > 0 => {
                msg.remove(usize::from(at) % len);
            }
            Mutation::Truncate(at) => msg.truncate(usize::from(at) % (len + 1)),
            _ => {}
        }
    }
}

/// Alice's stored credentials (PBKDF2 once).
fn stored() -> Option<&'static StoredCredentials> {
    static CREDS: OnceLock<Option<StoredCredentials>> = OnceLock::new();
    CREDS
        .get_or_init(|| StoredCredentials::derive(PASSWORD, SALT, 4096).ok())
        .as_ref()
}

/// Client keys by (hash family, password).
type KeyCache = BTreeMap<(String, String), Option<ScramClientKeys>>;

/// The client's keys for a hash family and password, derived once through a
/// full exchange against alice's credentials.
fn client_keys(mech: Mechanism, password: &str) -> Option<ScramClientKeys> {
    static KEYS: OnceLock<Mutex<KeyCache>> = OnceLock::new();
    let family = if mech.name().starts_with("SCRAM-SHA-1") {
        Mechanism::ScramSha1
    } else {
        Mechanism::ScramSha256
    };
    let map = KEYS.get_or_init(|| Mutex::new(BTreeMap::new()));
    let mut map = map.lock().ok()?;
    map.entry((family.name().to_owned(), password.to_owned()))
        .or_insert_with(|| {
            let (mut client, first) =
                ScramClient::new(family, USER, password, CLIENT_NONCE, None, false).ok()?;
            let (mut server, _) = ScramServer::start(family, &first, &[], false).ok()?;
            let server_first = server.server_first(stored(), SERVER_NONCE);
            client.handle_server_first(&server_first).ok()?;
            client.keys().cloned()
        })
        .clone()
}

/// Run one input.
pub fn run(data: &[u8]) {
    let Ok(input) = Input::arbitrary_take_rest(Unstructured::new(data)) else {
        return;
    };
    let prefs = Mechanism::SERVER_PREFERENCE;
    let mech = prefs[usize::from(input.mechanism) % prefs.len()];
    let mut offered = Vec::new();
    if input.offered & 1 != 0 {
        offered.push(ChannelBinding::new(
            ChannelBindingType::TlsExporter,
            EXPORTER,
        ));
    }
    if input.offered & 2 != 0 {
        offered.push(ChannelBinding::new(
            ChannelBindingType::TlsServerEndPoint,
            END_POINT,
        ));
    }
    let creds = if input.user_known { stored() } else { None };
    match input.script {
        Script::Plain(msg) => plain(&msg),
        Script::Raw { first, finals } => {
            let Some(mut server) = start(mech, &first, &offered, input.plus_advertised) else {
                return;
            };
            if let Some(iterations) = input.decoy {
                server = server.with_decoy(b"decoy secret", u32::from(iterations));
            }
            let sf = server.server_first(creds, SERVER_NONCE);
            assert_eq!(server.server_first(creds, SERVER_NONCE), sf);
            for last in finals {
                assert!(
                    server.finish(&last).is_err(),
                    "a raw client-final authenticated: {:?}",
                    String::from_utf8_lossy(&last)
                );
            }
        }
        Script::Client {
            right_password,
            exporter,
            same_channel,
            client_supports_plus,
            first,
            last,
        } => {
            if mech == Mechanism::Plain || creds.is_none() {
                return;
            }
            let password = if right_password { PASSWORD } else { WRONG };
            let Some(keys) = client_keys(mech, password) else {
                panic!("deriving the client's keys failed");
            };
            let binding = mech.is_plus().then(|| {
                let (kind, data) = if exporter {
                    (ChannelBindingType::TlsExporter, EXPORTER)
                } else {
                    (ChannelBindingType::TlsServerEndPoint, END_POINT)
                };
                let data = if same_channel { data } else { [0x66; 32] };
                ChannelBinding::new(kind, data)
            });
            let kind = binding.as_ref().map(|b| b.kind);
            let Ok((client, mut client_first)) = ScramClient::new(
                mech,
                USER,
                password,
                CLIENT_NONCE,
                binding,
                client_supports_plus,
            ) else {
                panic!("the client refused its own parameters");
            };
            let mut client = client.with_cached_keys(keys);
            let mutated = !first.is_empty() || !last.is_empty();
            mutate(&mut client_first, &first);
            let started = start(mech, &client_first, &offered, input.plus_advertised);
            let downgrade = client_supports_plus && !mech.is_plus() && input.plus_advertised;
            let binding_ok = kind.is_none_or(|k| offered.iter().any(|o| o.kind == k));
            if !mutated {
                assert_eq!(
                    started.is_some(),
                    binding_ok && !downgrade,
                    "client-first of {mech} (binding {kind:?}, offered {:?}, y-flag {client_supports_plus}, plus advertised {})",
                    input.offered,
                    input.plus_advertised
                );
            }
            let Some(mut server) = started else {
                return;
            };
            let sf = server.server_first(creds, SERVER_NONCE);
            let Ok(mut client_final) = client.handle_server_first(&sf) else {
                assert!(mutated, "the client refused the server-first {sf:?}");
                return;
            };
            assert!(!mutated || client.used_cached_keys() || first.is_empty());
            mutate(&mut client_final, &last);
            let outcome = server.finish(&client_final);
            if outcome.is_ok() {
                assert!(right_password, "authenticated with the wrong password");
            }
            if !mutated {
                let expected = right_password && (same_channel || !mech.is_plus());
                assert_eq!(outcome.is_ok(), expected, "{mech}: {outcome:?}");
                if let Ok(server_final) = &outcome {
                    assert_eq!(client.verify_server_final(server_final), Ok(()));
                }
            }
            assert!(
                server.finish(&client_final).is_err(),
                "a second client-final"
            );
        }
    }
}

/// `ScramServer::start`, for SCRAM mechanisms only.
fn start(
    mech: Mechanism,
    first: &[u8],
    offered: &[ChannelBinding],
    plus_advertised: bool,
) -> Option<ScramServer> {
    if !mech.is_scram() {
        assert!(ScramServer::start(mech, first, offered, plus_advertised).is_err());
        return None;
    }
    let (server, client_first) = ScramServer::start(mech, first, offered, plus_advertised).ok()?;
    assert_eq!(server.username(), client_first.username);
    Some(server)
}

fn plain(msg: &[u8]) {
    let Ok(creds) = parse_plain(msg) else {
        return;
    };
    assert!(!creds.username.is_empty() && !creds.password.is_empty());
    let rebuilt = plain_message(creds.authzid.as_deref(), &creds.username, &creds.password);
    assert_eq!(rebuilt, msg, "{creds:?}");
}
