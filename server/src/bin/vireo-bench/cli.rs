//! The command line. The comparison script is written against it: keep the
//! names and defaults stable.
//!
//! ```text
//! vireo-bench [--host 127.0.0.1] --port PORT [--domain localhost]
//!   [--transport tcp|ws] [--ws-path /xmpp-websocket]
//!   [--tls none|starttls|direct] [--server-pid PID] [--user-prefix u]
//!   [--password pw] [--register] [--threads 1] [--mechanism SCRAM-SHA-1]
//!   [--label NAME] [--timeout 60] SCENARIO [scenario options]
//! ```

use crate::transport::Transport;
use argh::FromArgs;
use xmpp_core::sasl::Mechanism;
use xmpp_runtime::client::TlsMode;

/// vireo-bench: an XMPP load generator (login, idle, messages,
/// roster-presence, mam, pep). Prints one JSON line of results on stdout and a table
/// on stderr; exits non-zero when a login fails or a message is lost or
/// duplicated. Accounts are {prefix}{i}@{domain}, all with the same
/// password. --threads defaults to 1 so that on a 2-core machine the other
/// core is left to the server.
#[derive(FromArgs, Debug)]
pub struct Args {
    /// server address (default 127.0.0.1)
    #[argh(option, default = "String::from(\"127.0.0.1\")")]
    pub host: String,
    /// c2s port (the direct-TLS port with --tls direct; the HTTP port with
    /// --transport ws)
    #[argh(option)]
    pub port: u16,
    /// tcp (XMPP over TCP, RFC 6120; the default) or ws (XMPP over
    /// WebSocket, RFC 7395: ws://host:port/--ws-path, plain only)
    #[argh(option, default = "String::from(\"tcp\")")]
    pub transport: String,
    /// the WebSocket endpoint with --transport ws (default /xmpp-websocket)
    #[argh(option, default = "String::from(\"/xmpp-websocket\")")]
    pub ws_path: String,
    /// the XMPP domain of the accounts (default localhost)
    #[argh(option, default = "String::from(\"localhost\")")]
    pub domain: String,
    /// none (plain TCP, never STARTTLS), starttls, or direct (XEP-0368);
    /// default none
    #[argh(option, default = "TlsMode::None", from_str_fn(parse_tls))]
    pub tls: TlsMode,
    /// the server's process id: CPU time and RSS are read from /proc/PID
    #[argh(option)]
    pub server_pid: Option<u32>,
    /// account name prefix (default u: accounts u0, u1, ...)
    #[argh(option, default = "String::from(\"u\")")]
    pub user_prefix: String,
    /// the accounts' password (default pw)
    #[argh(option, default = "String::from(\"pw\")")]
    pub password: String,
    /// register the scenario's accounts first by XEP-0077 (existing ones
    /// are skipped; Vireo needs registration.allow_registration and
    /// passwords of registration.min_password_length characters)
    #[argh(switch)]
    pub register: bool,
    /// executor threads of the load generator (default 1)
    #[argh(option, default = "1")]
    pub threads: usize,
    /// SASL mechanism: SCRAM-SHA-1 (default), SCRAM-SHA-256 or PLAIN
    #[argh(option, default = "Mechanism::ScramSha1", from_str_fn(parse_mechanism))]
    pub mechanism: Mechanism,
    /// a free-form name copied into the JSON line (e.g. the server's name)
    #[argh(option)]
    pub label: Option<String>,
    /// seconds without progress before the run is declared failed (default 60)
    #[argh(option, default = "60")]
    pub timeout: u64,
    /// how many logins run at once while setting sessions up, outside the
    /// measured phases (default 64)
    #[argh(option, default = "64")]
    pub setup_concurrency: usize,
    #[argh(subcommand)]
    pub scenario: ScenarioCmd,
}

impl Args {
    /// The transport asked for; WebSocket only without TLS (`ws://`).
    pub fn transport(&self) -> Result<Transport, String> {
        match self.transport.as_str() {
            "tcp" => Ok(Transport::Tcp),
            "ws" | "websocket" if self.tls != TlsMode::None => {
                Err("--transport ws is plain ws:// only: use --tls none".into())
            }
            "ws" | "websocket" if !self.ws_path.starts_with('/') => {
                Err(format!("--ws-path {:?} must start with /", self.ws_path))
            }
            "ws" | "websocket" => Ok(Transport::WebSocket {
                path: self.ws_path.clone(),
            }),
            other => Err(format!("unknown transport {other:?} (tcp|ws)")),
        }
    }
}

fn parse_tls(s: &str) -> Result<TlsMode, String> {
    s.parse()
}

fn parse_mechanism(s: &str) -> Result<Mechanism, String> {
    match Mechanism::from_name(&s.to_ascii_uppercase()) {
        Some(m @ (Mechanism::ScramSha1 | Mechanism::ScramSha256 | Mechanism::Plain)) => Ok(m),
        _ => Err(format!(
            "unsupported mechanism {s:?} (SCRAM-SHA-1, SCRAM-SHA-256 or PLAIN)"
        )),
    }
}

/// The scenarios; each has its own options.
#[derive(FromArgs, Debug)]
#[argh(subcommand)]
pub enum ScenarioCmd {
    Login(LoginCmd),
    Idle(IdleCmd),
    Messages(MessagesCmd),
    RosterPresence(RosterPresenceCmd),
    Mam(MamCmd),
    Pep(PepCmd),
    Muc(MucCmd),
}

/// N accounts log in (connect to bound) with C at once: logins/s, p50/p99
/// latency, server CPU per login. By default (--warm) every account first
/// logs in once, untimed, and the timed logins reuse its cached SCRAM keys
/// (RFC 5802 §5.1, as real clients do), so the generator spends no PBKDF2
/// in the measured phase; --no-warm measures cold logins instead.
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "login")]
pub struct LoginCmd {
    /// how many logins (accounts 0..N)
    #[argh(option)]
    pub accounts: usize,
    /// logins in flight at once (default 50)
    #[argh(option, default = "50")]
    pub concurrency: usize,
    /// log every account in once before the timed phase (untimed, same
    /// concurrency) and time logins with the cached SCRAM keys: the
    /// default
    #[argh(switch)]
    pub warm: bool,
    /// time cold logins: the generator derives every SCRAM key (PBKDF2)
    /// inside the measured phase
    #[argh(switch)]
    pub no_warm: bool,
}

impl LoginCmd {
    /// Whether to warm the SCRAM key cache first (`--warm` is the default;
    /// giving both switches is an error).
    pub fn warm(&self) -> Result<bool, String> {
        if self.warm && self.no_warm {
            return Err("--warm and --no-warm exclude each other".into());
        }
        Ok(!self.no_warm)
    }
}

/// Hold N authenticated sessions with initial presence: the server's RSS
/// before and after, KiB per session; then close them all.
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "idle")]
pub struct IdleCmd {
    /// how many sessions (accounts 0..N)
    #[argh(option)]
    pub sessions: usize,
    /// milliseconds to let the server settle before reading its RSS
    /// (default 1000)
    #[argh(option, default = "1000")]
    pub settle_ms: u64,
    /// seconds to keep the sessions open after measuring (default 0)
    #[argh(option, default = "0")]
    pub hold: u64,
}

/// P sender/receiver pairs, each sender keeping W messages in flight, M
/// messages per pair: delivered msgs/s, p50/p99 end-to-end latency, server
/// CPU per message, exact accounting.
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "messages")]
pub struct MessagesCmd {
    /// sender/receiver pairs (accounts 0..2P)
    #[argh(option)]
    pub pairs: usize,
    /// messages in flight per pair (default 20)
    #[argh(option, default = "20")]
    pub window: usize,
    /// messages per pair (default 4000)
    #[argh(option, default = "4000")]
    pub count: usize,
    /// extra idle sessions held during the run (accounts after the pairs;
    /// default 0)
    #[argh(option, default = "0")]
    pub idle: usize,
    /// message body size in bytes (default 16)
    #[argh(option, default = "16")]
    pub body_bytes: usize,
    /// senders enable XEP-0198 and ask for an acknowledgement (<r/>) after
    /// every N messages, measuring how long each takes (default 0: off)
    #[argh(option, default = "0")]
    pub ack_every: usize,
    /// federation: the receivers log in to this c2s port (HTTP port with
    /// --transport ws) of another server (same host) serving --to-domain,
    /// and messages cross s2s
    #[argh(option)]
    pub to_port: Option<u16>,
    /// federation: the receivers' domain (with --to-port)
    #[argh(option)]
    pub to_domain: Option<String>,
    /// federation: the receiving server's pid, for its CPU per message
    #[argh(option)]
    pub to_server_pid: Option<u32>,
}

/// U users with R-contact rosters (mutual subscriptions, set up first and
/// excluded from timing) log in and out: presence stanzas delivered/s.
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "roster-presence")]
pub struct RosterPresenceCmd {
    /// how many users (accounts 0..U)
    #[argh(option)]
    pub users: usize,
    /// contacts per user (rounded up to an even number, at most U-1)
    #[argh(option)]
    pub contacts: usize,
    /// logins in flight at once in the measured phase (default 50)
    #[argh(option, default = "50")]
    pub concurrency: usize,
}

/// XEP-0163 PEP notification fan-out: one publisher (account 0) and N
/// contacts (accounts 1..=N) subscribed both ways (set up first, untimed),
/// online with XEP-0115 caps advertising tune+notify; the publisher
/// publishes M items, W in flight: notifications delivered/s, p50/p99
/// publish-to-notification latency, server CPU per notification, exact
/// accounting.
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "pep")]
pub struct PepCmd {
    /// contacts notified of every item (default 200)
    #[argh(option, default = "200")]
    pub contacts: usize,
    /// items published in the measured phase (default 200)
    #[argh(option, default = "200")]
    pub items: usize,
    /// publishes in flight at once (default 10)
    #[argh(option, default = "10")]
    pub window: usize,
    /// accounts N+1 and N+2 exchange a message every 5 ms: their latency
    /// at rest and during the fan-out
    #[argh(switch)]
    pub probe: bool,
}

/// XEP-0313 archive page latency. With --fill-store, fill account 0's
/// archive directly in a stopped server's store (no server needed;
/// --port is not used) and exit; without it, query the running server's
/// archive of account 0: p50/p99 of consecutive pages from the start, the
/// middle (RSM <after/> the first id at the middle time), the end (empty
/// <before/>, then backwards), with one correspondent from the middle, and
/// with `start` at the middle time.
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "mam")]
pub struct MamCmd {
    /// fill this store directory (the server's data_path/store) and exit
    #[argh(option)]
    pub fill_store: Option<std::path::PathBuf>,
    /// the store's driver for --fill-store, as the server's storage.driver:
    /// redb (default; a sled store there is migrated first), sled or
    /// postgresql (the database of VIREO_DB_HOST, _PORT, _NAME, _USER,
    /// _PASSWORD; --fill-store is then unused but required)
    #[argh(option, default = "String::from(\"redb\")")]
    pub store_driver: String,
    /// with --fill-store, also create accounts 0..N (with --password)
    /// with a roster of two, a vCard, a private XML document and an
    /// offline message each: a store to migrate (default 0: none)
    #[argh(option, default = "0")]
    pub accounts: u64,
    /// messages to archive with --fill-store (default 1000000)
    #[argh(option, default = "1_000_000")]
    pub messages: u64,
    /// days the filled messages are spread over, ending now (default 365)
    #[argh(option, default = "365")]
    pub days: u64,
    /// distinct correspondents in the filled archive (default 10)
    #[argh(option, default = "10")]
    pub contacts: u64,
    /// queries per measured position (default 200)
    #[argh(option, default = "200")]
    pub queries: usize,
    /// page size asked for (default 50)
    #[argh(option, default = "50")]
    pub page: usize,
}

/// XEP-0045 group chat: R rooms of O occupants (accounts r*O+k, nick
/// o{k}), joined untimed; then every occupant sends M groupchat messages
/// with W in flight (released by the room's reflection): deliveries/s
/// (every message to every occupant, reflections included), p50/p99
/// latency, server CPU per delivery, exact accounting.
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "muc")]
pub struct MucCmd {
    /// rooms (default 10)
    #[argh(option, default = "10")]
    pub rooms: usize,
    /// occupants per room (default 20)
    #[argh(option, default = "20")]
    pub occupants: usize,
    /// messages each occupant keeps in flight (default 2)
    #[argh(option, default = "2")]
    pub window: usize,
    /// messages each occupant sends (default 100)
    #[argh(option, default = "100")]
    pub count: usize,
    /// message body padding in bytes (default 16)
    #[argh(option, default = "16")]
    pub body_bytes: usize,
    /// the MUC service's domain (default conference.<domain>)
    #[argh(option)]
    pub service: Option<String>,
}
