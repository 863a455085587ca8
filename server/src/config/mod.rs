//! Configuration: built-in defaults, then nothing, one TOML file or a
//! layered directory tree, then environment variables. Every effective value
//! remembers its [`Origin`].
//!
//! The tree (spec/design.md §7, spec/config.md): `vireo.toml`
//! (orchestration), `stack/01-transport` … `stack/08-integration` (one file
//! per concern, each declaring its `modules` and their settings),
//! `domains/*.toml` (virtual hosts), `environments/<name>.toml`,
//! `policies/<group>/*.toml`. Load order: stack layers, domains, the
//! selected environment, policies, environment variables.
//!
//! With no file at all, `vireo run` serves `localhost` from `./vireo-data`
//! with a generated certificate: the embedded default.

mod checks;
pub mod components;
pub mod diagnostics;
mod env;
mod environments;
mod merge;
mod node;
mod origin;
pub mod reference;
pub mod schema;
pub mod sections;
pub mod templates;
mod tree;

pub use diagnostics::Diagnostic;
pub use origin::Origin;
pub use tree::Source;

use merge::State;
use schema::Value;
use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use xmpp_core::sasl::Mechanism;

/// The configuration could not be used: every error found, with location.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{}", render(.0))]
    Invalid(Vec<Diagnostic>),
}

fn render(diags: &[Diagnostic]) -> String {
    let n = diags.len();
    let body: Vec<String> = diags.iter().map(Diagnostic::to_string).collect();
    if n == 1 {
        body.join("")
    } else {
        format!("{n} errors:\n{}", body.join("\n"))
    }
}

/// One served domain (virtual host).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VirtualHost {
    pub domain: String,
    /// Where the domain was configured.
    pub origin: Origin,
    /// Its own certificate and key (`domains/<domain>.toml`), if any.
    pub certificate: Option<(PathBuf, Origin)>,
    pub key: Option<(PathBuf, Origin)>,
    /// Modules enabled for this domain: the global set with the domain
    /// file's overrides.
    pub modules: BTreeMap<&'static str, Origin>,
}

/// The effective configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub domains: Vec<String>,
    pub data_path: PathBuf,
    pub log_level: String,
    /// "text" or "json" (one object per line).
    pub log_format: String,
    pub bind: IpAddr,
    pub c2s_port: u16,
    pub c2s_tls_port: u16,
    pub max_connections: usize,
    /// Unauthenticated connections per address (IPv6: per /64; 0 = no limit).
    pub max_unauthenticated_per_address: u32,
    /// New connections per address per second (0 = no limit).
    pub max_new_connections_per_address: u32,
    /// Seconds a TLS handshake may take.
    pub tls_handshake_timeout_secs: u64,
    /// Addresses the per-address limits do not apply to.
    pub address_limits_exempt: Vec<ipnet::IpNet>,
    /// Most addresses (and accounts) the limits remember.
    pub max_tracked_addresses: usize,
    /// Bytes per second per client connection (0 = unlimited).
    pub c2s_rate_limit: u32,
    /// Burst allowance for the rate limit, in bytes.
    pub c2s_rate_burst: u32,
    pub threads: usize,
    /// The certificate served (`tls.certificate`, else the first domain's).
    pub certificate: Option<PathBuf>,
    pub key: Option<PathBuf>,
    /// The CA bundle s2s peers are judged against (`transport.s2s_cafile`).
    pub s2s_cafile: Option<PathBuf>,
    pub require_encryption: bool,
    pub auth_timeout_secs: u64,
    /// Seconds an authenticated connection may take to bind a resource.
    pub bind_timeout_secs: u64,
    /// Delay after the first failed authentication, ms (0 = no backoff).
    pub auth_failure_delay_ms: u64,
    /// Longest delay after failed authentications, ms.
    pub auth_failure_max_delay_ms: u64,
    /// Seconds after which failed authentications are forgotten.
    pub auth_failure_forget_secs: u64,
    pub keepalive_secs: u64,
    /// Seconds a write may make no progress (0 = forever).
    pub send_timeout_secs: u64,
    /// XEP-0198: seconds a broken session stays resumable (0 = none).
    pub smacks_resume_timeout_secs: u64,
    /// XEP-0198: most unacknowledged stanzas kept per session.
    pub smacks_max_queue_size: usize,
    /// XEP-0198: request an acknowledgement after this many stanzas.
    pub smacks_max_unacked_stanzas: u32,
    /// XEP-0198: most bytes of unacknowledged stanzas kept per session.
    pub smacks_max_queue_bytes: usize,
    /// Most bytes of stanzas waiting for one connection to take them.
    pub max_mailbox_bytes: usize,
    /// Most bytes of client stanzas queued for one hub partition.
    pub partition_queue_bytes: usize,
    /// Most sessions bound to one account at once.
    pub max_user_sessions: usize,
    /// Most messages in one account's offline storage (XEP-0160).
    pub max_offline_messages: u64,
    /// Offline messages delivered per page at login.
    pub offline_page_size: usize,
    /// Most roster items per account.
    pub max_roster_items: usize,
    pub max_private_documents: u64,
    pub max_stanza_size: usize,
    /// Parser budgets (stream.max_*): see xmpp_core::xml::Limits.
    pub max_unauthenticated_stanza_size: usize,
    pub max_namespace_length: usize,
    pub max_attributes: usize,
    pub max_children: usize,
    pub max_stanza_nodes: usize,
    pub scram_iterations: u32,
    pub mechanisms: Vec<Mechanism>,
    /// The selected environment, if any.
    pub environment: Option<String>,
    /// Server administrators (bare JIDs).
    pub admins: Vec<String>,
    /// XEP-0157 contact addresses: (kind, URIs), e.g. ("admin", [...]).
    pub contact: Vec<(String, Vec<String>)>,
    /// XEP-0077: anyone may create an account in-band.
    pub allow_registration: bool,
    /// XEP-0077: shortest password accepted, in characters.
    pub min_password_length: usize,
    /// XEP-0077: seconds between in-band registrations from one IP (0 = no limit).
    pub min_seconds_between_registrations: u64,
    /// XEP-0077: IP addresses exempt from that limit.
    pub registration_whitelist: Vec<ipnet::IpNet>,
    /// The storage backend ("redb", "sled" or "postgresql").
    pub storage_driver: String,
    /// Where PostgreSQL is, with the pool's bounds (driver "postgresql").
    pub sql: xmpp_runtime::storage::PgOptions,
    /// Bytes of the embedded store's page cache.
    pub storage_cache_size: u64,
    /// The external component listener (XEP-0114).
    pub component_bind: IpAddr,
    pub component_port: u16,
    /// External components, with their secrets.
    pub components: Vec<components::ComponentEntry>,
    /// Enabled modules (all domains), in catalog (stack) order.
    pub modules: Vec<&'static str>,
    /// Where each enabled module was enabled.
    pub module_origins: BTreeMap<&'static str, Origin>,
    /// One entry per served domain, in `domains` order.
    pub vhosts: Vec<VirtualHost>,
    /// Policies applied, as "group/name".
    pub policies: Vec<String>,
    /// What was loaded.
    pub source: Source,
    /// Every explicitly set value (dotted key) with its origin; keys absent
    /// here have their schema default.
    pub values: BTreeMap<&'static str, (Value, Origin)>,
    /// Warnings found while loading (errors make loading fail).
    pub warnings: Vec<Diagnostic>,
    /// Where each key's value came from.
    pub origins: BTreeMap<&'static str, Origin>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            domains: vec!["localhost".into()],
            data_path: PathBuf::from("vireo-data"),
            log_level: "info".into(),
            log_format: "text".into(),
            bind: IpAddr::from([0, 0, 0, 0]),
            c2s_port: 5222,
            c2s_tls_port: 5223,
            max_connections: 20_000,
            max_unauthenticated_per_address: 20,
            max_new_connections_per_address: 10,
            tls_handshake_timeout_secs: 10,
            address_limits_exempt: xmpp_runtime::address_limits::loopback(),
            max_tracked_addresses: 65_536,
            c2s_rate_limit: 0,
            c2s_rate_burst: 256 * 1024,
            threads: 0,
            certificate: None,
            key: None,
            s2s_cafile: None,
            require_encryption: true,
            auth_timeout_secs: 30,
            bind_timeout_secs: 30,
            auth_failure_delay_ms: 250,
            auth_failure_max_delay_ms: 10_000,
            auth_failure_forget_secs: 900,
            keepalive_secs: 60,
            send_timeout_secs: 60,
            smacks_resume_timeout_secs: 300,
            smacks_max_queue_size: 500,
            smacks_max_unacked_stanzas: 5,
            smacks_max_queue_bytes: 4 * 1024 * 1024,
            max_mailbox_bytes: 4 * 1024 * 1024,
            partition_queue_bytes: 2 * 1024 * 1024,
            max_user_sessions: 10,
            max_offline_messages: 1000,
            offline_page_size: 100,
            max_roster_items: 2000,
            max_private_documents: 100,
            max_stanza_size: 256 * 1024,
            max_unauthenticated_stanza_size: 16 * 1024,
            max_namespace_length: 1024,
            max_attributes: 64,
            max_children: 4096,
            max_stanza_nodes: 16_384,
            scram_iterations: 10_000,
            mechanisms: Mechanism::SERVER_PREFERENCE.to_vec(),
            environment: None,
            admins: Vec::new(),
            contact: Vec::new(),
            allow_registration: false,
            min_password_length: 8,
            min_seconds_between_registrations: 300,
            registration_whitelist: xmpp_runtime::address_limits::loopback(),
            storage_driver: "redb".into(),
            sql: xmpp_runtime::storage::PgOptions::default(),
            storage_cache_size: xmpp_runtime::storage::redb::DEFAULT_CACHE_BYTES,
            component_bind: IpAddr::from([127, 0, 0, 1]),
            component_port: 5347,
            components: Vec::new(),
            modules: Vec::new(),
            module_origins: BTreeMap::new(),
            vhosts: Vec::new(),
            policies: Vec::new(),
            source: Source::Defaults,
            values: BTreeMap::new(),
            warnings: Vec::new(),
            origins: BTreeMap::new(),
        }
    }
}

/// An environment lookup, injectable so tests need not touch the process env.
pub type EnvFn<'a> = &'a dyn Fn(&str) -> Option<String>;

/// The outcome of loading: the configuration (when there is no error) and
/// every diagnostic, errors first, in file order.
#[derive(Debug)]
pub struct Report {
    pub config: Option<Config>,
    pub diagnostics: Vec<Diagnostic>,
    pub source: Source,
}

impl Report {
    pub fn errors(&self) -> impl Iterator<Item = &Diagnostic> {
        self.diagnostics.iter().filter(|d| d.is_error())
    }

    pub fn warnings(&self) -> impl Iterator<Item = &Diagnostic> {
        self.diagnostics.iter().filter(|d| !d.is_error())
    }
}

impl Config {
    /// Load: defaults, the file or tree (if given, or `VIREO_CONFIG_PATH`),
    /// then the environment. Fails with every error found.
    pub fn load(path: Option<&Path>, env: EnvFn<'_>) -> Result<Config, ConfigError> {
        let report = Config::check(path, env);
        match report.config {
            Some(cfg) if !report.diagnostics.iter().any(Diagnostic::is_error) => Ok(cfg),
            _ => Err(ConfigError::Invalid(
                report
                    .diagnostics
                    .into_iter()
                    .filter(Diagnostic::is_error)
                    .collect(),
            )),
        }
    }

    /// Load and report everything found (what `vireo check config` prints).
    pub fn check(path: Option<&Path>, env: EnvFn<'_>) -> Report {
        let path = path.map(Path::to_path_buf).or_else(|| {
            env("VIREO_CONFIG_PATH")
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        });
        let source = Source::resolve(path.as_deref());
        let mut state = State::default();
        if let (Some(p), Source::File(_)) = (&path, &source) {
            if !p.exists() {
                state.error(
                    Diagnostic::error(Origin::file(p), "no such file or directory")
                        .with_fix("`vireo config init DIR` writes a complete configuration tree"),
                );
                return Report {
                    config: None,
                    diagnostics: state.diagnostics,
                    source,
                };
            }
        }
        let loaded = tree::load(&source, env, &mut state);
        let mut cfg = build(&mut state, &source, loaded);
        let mut diagnostics = std::mem::take(&mut state.diagnostics);
        diagnostics.extend(checks::run(&cfg));
        diagnostics.sort_by_key(|d| d.severity);
        cfg.warnings = diagnostics
            .iter()
            .filter(|d| !d.is_error())
            .cloned()
            .collect();
        Report {
            config: Some(cfg),
            diagnostics,
            source,
        }
    }

    /// The origin of a key ("default" when never set).
    pub fn origin(&self, key: &str) -> Origin {
        self.origins.get(key).cloned().unwrap_or(Origin::Default)
    }

    /// The effective value of a key (its default when never set); `None`
    /// for keys unset by default and unknown keys.
    pub fn value(&self, key: &str) -> Option<(Value, Origin)> {
        if let Some(v) = self.values.get(key) {
            return Some(v.clone());
        }
        let spec = schema::find(key)?;
        let default = default_value(spec)?;
        Some((default, Origin::Default))
    }

    /// A boolean key's effective value (module sections read theirs so).
    pub fn flag(&self, key: &str) -> bool {
        typed(key, |ty| ty == schema::Ty::Bool);
        matches!(self.value(key), Some((Value::Bool(true), _)))
    }

    /// An integer key's effective value as `T`; `None` when it is unset
    /// with no default. The schema's range was checked when loading, so it
    /// fits the type its section asks for.
    pub fn int<T: TryFrom<i64>>(&self, key: &str) -> Option<T> {
        typed(key, |ty| matches!(ty, schema::Ty::Int { .. }));
        match self.value(key) {
            Some((Value::Int(i), _)) => T::try_from(i).ok(),
            _ => None,
        }
    }

    /// A string key's effective value; `None` when unset or empty (an
    /// empty string in a file means "unset", as the defaults write it).
    pub fn text(&self, key: &str) -> Option<String> {
        typed(key, |ty| {
            !matches!(ty, schema::Ty::Bool | schema::Ty::Int { .. }) && !ty.is_list()
        });
        match self.value(key) {
            Some((Value::Str(s), _)) if !s.is_empty() => Some(s),
            _ => None,
        }
    }

    /// A list key's effective value (empty when unset).
    pub fn list(&self, key: &str) -> Vec<String> {
        typed(key, |ty| ty.is_list());
        match self.value(key) {
            Some((Value::List(items), _)) => items,
            _ => Vec::new(),
        }
    }

    /// The virtual host of a domain.
    pub fn vhost(&self, domain: &str) -> Option<&VirtualHost> {
        self.vhosts.iter().find(|v| v.domain == domain)
    }

    /// The admin socket inside the data directory.
    pub fn admin_socket(&self) -> PathBuf {
        self.data_path.join("admin.sock")
    }

    /// The store directory inside the data directory.
    pub fn store_path(&self) -> PathBuf {
        self.data_path.join("store")
    }

    /// Directory for generated certificates.
    pub fn cert_dir(&self) -> PathBuf {
        self.data_path.join("certs")
    }
}

/// A misspelt key or the wrong accessor would silently read the default:
/// debug builds (and so every test that configures the modules) stop there.
fn typed(key: &str, ok: impl Fn(schema::Ty) -> bool) {
    debug_assert!(
        schema::find(key).is_some_and(|s| ok(s.ty)),
        "{key}: no such key of this type"
    );
}

/// A key's default as a value (parsed from the schema's TOML text).
pub fn default_value(spec: &schema::KeySpec) -> Option<Value> {
    if spec.default.is_empty() {
        return None;
    }
    let table: toml::Table = toml::from_str(&format!("v = {}", spec.default)).ok()?;
    match table.get("v")? {
        toml::Value::Boolean(b) => Some(Value::Bool(*b)),
        toml::Value::Integer(i) => Some(Value::Int(*i)),
        toml::Value::String(s) => Some(Value::Str(s.clone())),
        toml::Value::Array(a) => Some(Value::List(
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect(),
        )),
        _ => None,
    }
}

/// Turn the loaded values into the effective configuration.
fn build(state: &mut State, source: &Source, loaded: tree::Loaded) -> Config {
    let mut cfg = Config {
        source: source.clone(),
        environment: loaded.environment.map(str::to_owned),
        policies: loaded.policies,
        values: state.values.clone(),
        ..Config::default()
    };
    let root = source.root();
    let tree = matches!(source, Source::Tree(_));
    // Relative paths in files are relative to the configuration root; a
    // single file's data_path stays relative to the working directory.
    let resolve = |key: &str, raw: &str, origin: &Origin| -> PathBuf {
        let p = PathBuf::from(raw);
        match (&root, origin) {
            (Some(r), Origin::File { .. }) if p.is_relative() && (tree || key != "data_path") => {
                r.join(p)
            }
            _ => p,
        }
    };
    for (key, (value, origin)) in &state.values {
        let int = |v: &Value| match v {
            Value::Int(i) => *i,
            _ => 0,
        };
        let text = match value {
            Value::Str(s) => s.clone(),
            _ => String::new(),
        };
        let list = match value {
            Value::List(l) => l.clone(),
            _ => Vec::new(),
        };
        // Ranges were checked against the schema, so the conversions fit.
        match *key {
            "domains" => cfg.domains = list,
            "data_path" => cfg.data_path = resolve(key, &text, origin),
            "log_level" => cfg.log_level = text,
            "log_format" => cfg.log_format = text,
            "admins" => cfg.admins = list,
            k if k.starts_with("contact.") => {
                let field = k
                    .trim_start_matches("contact.")
                    .trim_end_matches("_addresses")
                    .to_owned();
                cfg.contact.retain(|(f, _)| *f != field);
                if !list.is_empty() {
                    cfg.contact.push((field, list));
                }
            }
            "transport.bind" => {
                if let Some(ip) = schema::parse_ip(&text) {
                    cfg.bind = ip;
                }
            }
            "transport.c2s_port" => {
                cfg.c2s_port = u16::try_from(int(value)).unwrap_or(cfg.c2s_port)
            }
            "transport.c2s_tls_port" => {
                cfg.c2s_tls_port = u16::try_from(int(value)).unwrap_or(cfg.c2s_tls_port)
            }
            "transport.c2s_rate_limit" => {
                cfg.c2s_rate_limit = u32::try_from(int(value)).unwrap_or(cfg.c2s_rate_limit)
            }
            "transport.c2s_rate_burst" => {
                cfg.c2s_rate_burst = u32::try_from(int(value)).unwrap_or(cfg.c2s_rate_burst)
            }
            "transport.max_connections" => {
                cfg.max_connections = usize::try_from(int(value)).unwrap_or(cfg.max_connections)
            }
            "transport.threads" => cfg.threads = usize::try_from(int(value)).unwrap_or(cfg.threads),
            "transport.max_unauthenticated_per_address" => {
                cfg.max_unauthenticated_per_address =
                    u32::try_from(int(value)).unwrap_or(cfg.max_unauthenticated_per_address)
            }
            "transport.max_new_connections_per_address" => {
                cfg.max_new_connections_per_address =
                    u32::try_from(int(value)).unwrap_or(cfg.max_new_connections_per_address)
            }
            "transport.tls_handshake_timeout" => {
                cfg.tls_handshake_timeout_secs =
                    u64::try_from(int(value)).unwrap_or(cfg.tls_handshake_timeout_secs)
            }
            "transport.address_limits_exempt" => {
                cfg.address_limits_exempt =
                    list.iter().filter_map(|a| schema::parse_net(a)).collect()
            }
            "transport.max_tracked_addresses" => {
                cfg.max_tracked_addresses =
                    usize::try_from(int(value)).unwrap_or(cfg.max_tracked_addresses)
            }
            "stream.bind_timeout" => {
                cfg.bind_timeout_secs = u64::try_from(int(value)).unwrap_or(cfg.bind_timeout_secs)
            }
            "stream.auth_failure_delay" => {
                cfg.auth_failure_delay_ms =
                    u64::try_from(int(value)).unwrap_or(cfg.auth_failure_delay_ms)
            }
            "stream.auth_failure_max_delay" => {
                cfg.auth_failure_max_delay_ms =
                    u64::try_from(int(value)).unwrap_or(cfg.auth_failure_max_delay_ms)
            }
            "stream.auth_failure_forget" => {
                cfg.auth_failure_forget_secs =
                    u64::try_from(int(value)).unwrap_or(cfg.auth_failure_forget_secs)
            }
            "tls.certificate" => cfg.certificate = Some(resolve(key, &text, origin)),
            "tls.key" => cfg.key = Some(resolve(key, &text, origin)),
            "transport.s2s_cafile" => cfg.s2s_cafile = Some(resolve(key, &text, origin)),
            "stream.require_encryption" => {
                cfg.require_encryption = matches!(value, Value::Bool(true))
            }
            "stream.auth_timeout" => {
                cfg.auth_timeout_secs = u64::try_from(int(value)).unwrap_or(cfg.auth_timeout_secs)
            }
            "stream.keepalive_interval" => {
                cfg.keepalive_secs = u64::try_from(int(value)).unwrap_or(cfg.keepalive_secs)
            }
            "stream.send_timeout" => {
                cfg.send_timeout_secs = u64::try_from(int(value)).unwrap_or(cfg.send_timeout_secs)
            }
            "stream.smacks_resume_timeout" => {
                cfg.smacks_resume_timeout_secs =
                    u64::try_from(int(value)).unwrap_or(cfg.smacks_resume_timeout_secs)
            }
            "stream.smacks_max_queue_size" => {
                cfg.smacks_max_queue_size =
                    usize::try_from(int(value)).unwrap_or(cfg.smacks_max_queue_size)
            }
            "stream.smacks_max_unacked_stanzas" => {
                cfg.smacks_max_unacked_stanzas =
                    u32::try_from(int(value)).unwrap_or(cfg.smacks_max_unacked_stanzas)
            }
            "stream.smacks_max_queue_bytes" => {
                cfg.smacks_max_queue_bytes =
                    usize::try_from(int(value)).unwrap_or(cfg.smacks_max_queue_bytes)
            }
            "stream.max_mailbox_bytes" => {
                cfg.max_mailbox_bytes = usize::try_from(int(value)).unwrap_or(cfg.max_mailbox_bytes)
            }
            "transport.partition_queue_bytes" => {
                cfg.partition_queue_bytes =
                    usize::try_from(int(value)).unwrap_or(cfg.partition_queue_bytes)
            }
            "stream.max_user_sessions" => {
                cfg.max_user_sessions = usize::try_from(int(value)).unwrap_or(cfg.max_user_sessions)
            }
            "services.max_offline_messages" => {
                cfg.max_offline_messages =
                    u64::try_from(int(value)).unwrap_or(cfg.max_offline_messages)
            }
            "services.offline_page_size" => {
                cfg.offline_page_size = usize::try_from(int(value)).unwrap_or(cfg.offline_page_size)
            }
            "services.max_private_documents" => {
                cfg.max_private_documents =
                    u64::try_from(int(value)).unwrap_or(cfg.max_private_documents)
            }
            "services.max_roster_items" => {
                cfg.max_roster_items = usize::try_from(int(value)).unwrap_or(cfg.max_roster_items)
            }
            "stream.max_stanza_size" => {
                cfg.max_stanza_size = usize::try_from(int(value)).unwrap_or(cfg.max_stanza_size)
            }
            "stream.max_unauthenticated_stanza_size" => {
                cfg.max_unauthenticated_stanza_size =
                    usize::try_from(int(value)).unwrap_or(cfg.max_unauthenticated_stanza_size)
            }
            "stream.max_namespace_length" => {
                cfg.max_namespace_length =
                    usize::try_from(int(value)).unwrap_or(cfg.max_namespace_length)
            }
            "stream.max_attributes" => {
                cfg.max_attributes = usize::try_from(int(value)).unwrap_or(cfg.max_attributes)
            }
            "stream.max_children" => {
                cfg.max_children = usize::try_from(int(value)).unwrap_or(cfg.max_children)
            }
            "stream.max_stanza_nodes" => {
                cfg.max_stanza_nodes = usize::try_from(int(value)).unwrap_or(cfg.max_stanza_nodes)
            }
            "stream.scram_iterations" => {
                cfg.scram_iterations = u32::try_from(int(value)).unwrap_or(cfg.scram_iterations)
            }
            "stream.mechanisms" => {
                cfg.mechanisms = list
                    .iter()
                    .filter_map(|m| Mechanism::from_name(m))
                    .collect()
            }
            "registration.allow_registration" => {
                cfg.allow_registration = matches!(value, Value::Bool(true))
            }
            "registration.min_password_length" => {
                cfg.min_password_length =
                    usize::try_from(int(value)).unwrap_or(cfg.min_password_length)
            }
            "registration.min_seconds_between_registrations" => {
                cfg.min_seconds_between_registrations =
                    u64::try_from(int(value)).unwrap_or(cfg.min_seconds_between_registrations)
            }
            "registration.registration_whitelist" => {
                cfg.registration_whitelist =
                    list.iter().filter_map(|a| schema::parse_net(a)).collect()
            }
            "storage.driver" => cfg.storage_driver = text,
            "storage.sql_host" => cfg.sql.host = text,
            "storage.sql_port" => cfg.sql.port = u16::try_from(int(value)).unwrap_or(cfg.sql.port),
            "storage.sql_name" => cfg.sql.database = text,
            "storage.sql_user" => cfg.sql.user = text,
            "storage.sql_password" => cfg.sql.password = Some(text).filter(|p| !p.is_empty()),
            "storage.sql_tls" => cfg.sql.tls = text,
            "storage.sql_tls_ca" => {
                cfg.sql.tls_ca = (!text.is_empty()).then(|| resolve(key, &text, origin))
            }
            "storage.sql_pool_size" => {
                cfg.sql.pool_size = u32::try_from(int(value)).unwrap_or(cfg.sql.pool_size)
            }
            "storage.sql_retry_seconds" => {
                cfg.sql.retry_for =
                    std::time::Duration::from_secs(u64::try_from(int(value)).unwrap_or(30))
            }
            "storage.cache_size" => {
                cfg.storage_cache_size = u64::try_from(int(value)).unwrap_or(cfg.storage_cache_size)
            }
            "interfaces.component_bind" => {
                if let Some(ip) = schema::parse_ip(&text) {
                    cfg.component_bind = ip;
                }
            }
            "interfaces.component_port" => {
                cfg.component_port = u16::try_from(int(value)).unwrap_or(cfg.component_port)
            }
            _ => {}
        }
        cfg.origins.insert(key, origin.clone());
    }
    // Domains: vireo.toml's list, plus the domains/*.toml hosts; a list from
    // VIREO_DOMAIN replaces both.
    let from_env = matches!(cfg.origin("domains"), Origin::Env(_));
    if !from_env {
        if !state.values.contains_key("domains") && !state.domains.is_empty() {
            cfg.domains.clear();
            if let Some(first) = state.domains.first() {
                cfg.origins.insert("domains", first.origin.clone());
            }
        }
        for d in &state.domains {
            if !cfg.domains.contains(&d.domain) {
                cfg.domains.push(d.domain.clone());
            }
        }
    }
    for d in state.domains.clone() {
        if !cfg.domains.contains(&d.domain) {
            state.error(
                Diagnostic::warning(
                    d.origin.clone(),
                    format!(
                        "domain {} is not served ({})",
                        d.domain,
                        cfg.origin("domains")
                    ),
                )
                .with_fix("add it to the served domains or remove its file"),
            );
        }
    }
    cfg.components = state.components.clone();
    cfg.module_origins = std::mem::take(&mut state.modules);
    cfg.modules = crate::modules::CATALOG
        .iter()
        .map(|m| m.name)
        .filter(|m| cfg.module_origins.contains_key(m))
        .collect();
    storage_module_follows_driver(&mut cfg);
    let domains_origin = cfg.origin("domains");
    for domain in cfg.domains.clone() {
        let file = state.domains.iter().find(|d| d.domain == domain).cloned();
        let mut modules = cfg.module_origins.clone();
        let mut vh = VirtualHost {
            domain: domain.clone(),
            origin: domains_origin.clone(),
            certificate: None,
            key: None,
            modules: BTreeMap::new(),
        };
        if let Some(f) = &file {
            vh.origin = f.origin.clone();
            vh.certificate = f
                .certificate
                .as_ref()
                .map(|(p, o)| (resolve("", p, o), o.clone()));
            vh.key = f.key.as_ref().map(|(p, o)| (resolve("", p, o), o.clone()));
            for (m, o) in &f.enabled {
                modules.insert(m, o.clone());
            }
            for (m, o) in &f.disabled {
                if modules.remove(m).is_none() {
                    state.error(Diagnostic::warning(
                        o.clone(),
                        format!("module `{m}` is disabled for {domain} but not enabled anyway"),
                    ));
                }
            }
        }
        vh.modules = modules;
        cfg.vhosts.push(vh);
    }
    // The runtime serves one certificate: tls.certificate, else the first
    // domain's own.
    if cfg.certificate.is_none() && cfg.key.is_none() {
        if let Some(VirtualHost {
            certificate: Some((c, co)),
            key: Some((k, ko)),
            ..
        }) = cfg.vhosts.first().cloned()
        {
            cfg.certificate = Some(c);
            cfg.key = Some(k);
            cfg.origins.insert("tls.certificate", co);
            cfg.origins.insert("tls.key", ko);
        }
    }
    cfg
}

/// The storage module is the one `storage.driver` names: a tree that lists
/// `storage_embedded` and sets `VIREO_DB_DRIVER=postgresql` (the usual way
/// a container is pointed at its database) runs on PostgreSQL, and the
/// module list (`config show`, the status page) says so.
fn storage_module_follows_driver(cfg: &mut Config) {
    let (wanted, other) = if cfg.storage_driver == "postgresql" {
        ("storage_sql", "storage_embedded")
    } else {
        ("storage_embedded", "storage_sql")
    };
    if let Some(origin) = cfg.module_origins.remove(other) {
        cfg.module_origins.entry(wanted).or_insert(origin);
        cfg.modules = crate::modules::CATALOG
            .iter()
            .map(|m| m.name)
            .filter(|m| cfg.module_origins.contains_key(m))
            .collect();
    }
}

#[cfg(test)]
mod tests;
