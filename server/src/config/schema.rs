//! Every configuration key: its name, type, default, range or choices, the
//! file of the tree it lives in, the RFC/XEP it configures, and whether this
//! version has the feature built. The loader, `vireo check config`,
//! `vireo config show` and `spec/config.md` all read this one table.

use crate::modules::Layer;
use std::fmt;
use std::net::IpAddr;
use std::sync::LazyLock;
use xmpp_core::jid::Jid;
use xmpp_core::sasl::Mechanism;

use super::node::Node;

/// Where a key lives in the configuration tree.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Home {
    /// `vireo.toml`, the orchestration file.
    Orchestration,
    /// `stack/<layer>/<file>.toml`.
    Layer(Layer, &'static str),
}

impl Home {
    /// The file, relative to the root of the tree.
    pub fn path(self) -> String {
        match self {
            Home::Orchestration => "vireo.toml".into(),
            Home::Layer(layer, file) => format!("stack/{}/{file}.toml", layer.dir()),
        }
    }
}

/// The type of a key, with its range or choices.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ty {
    Bool,
    Int {
        min: i64,
        max: i64,
    },
    Str,
    Choice(&'static [&'static str]),
    Ip,
    Path,
    /// One domain name (the `domain` shorthand).
    Domain,
    /// A list of domain names.
    Domains,
    /// A list of bare JIDs.
    Jids,
    /// A list of plain strings.
    StrList,
    /// A list of SASL mechanism names.
    Mechanisms,
    /// A list of IP addresses.
    Ips,
    /// Static s2s routes: a table of domain = "host:port" (in the
    /// environment, `domain=host:port` items separated by commas).
    Routes,
}

impl Ty {
    /// Human description, as in "expected an integer from 1 to 65535".
    pub fn describe(self) -> String {
        match self {
            Ty::Bool => "a boolean (true or false)".into(),
            Ty::Int { min, max } => format!("an integer from {min} to {max}"),
            Ty::Str => "a string".into(),
            Ty::Choice(c) => format!("one of {}", quoted(c)),
            Ty::Ip => "an IP address string".into(),
            Ty::Path => "a path string".into(),
            Ty::Domain => "a domain name string".into(),
            Ty::Domains => "an array of domain names".into(),
            Ty::Jids => "an array of bare JIDs".into(),
            Ty::StrList => "an array of strings".into(),
            Ty::Mechanisms => format!(
                "an array of SASL mechanisms ({})",
                quoted(&mechanism_names())
            ),
            Ty::Ips => "an array of IP addresses or networks (\"10.0.0.0/8\")".into(),
            Ty::Routes => "a table of domain = \"host:port\"".into(),
        }
    }

    /// Short type name for the reference.
    pub fn name(self) -> String {
        match self {
            Ty::Bool => "boolean".into(),
            Ty::Int { min, max } => format!("integer ({min}..={max})"),
            Ty::Str => "string".into(),
            Ty::Choice(c) => format!("string: {}", c.join(" | ")),
            Ty::Ip => "IP address".into(),
            Ty::Path => "path".into(),
            Ty::Domain => "domain".into(),
            Ty::Domains => "array of domains".into(),
            Ty::Jids => "array of bare JIDs".into(),
            Ty::StrList => "array of strings".into(),
            Ty::Mechanisms => "array of SASL mechanisms".into(),
            Ty::Ips => "array of IP addresses or networks".into(),
            Ty::Routes => "table of domain = \"host:port\"".into(),
        }
    }

    /// Whether values are lists (comma-separated in the environment).
    pub fn is_list(self) -> bool {
        matches!(
            self,
            Ty::Domains | Ty::Jids | Ty::StrList | Ty::Mechanisms | Ty::Ips | Ty::Routes
        )
    }

    /// Convert a TOML value; the error says what was expected.
    pub fn convert(self, node: &Node) -> Result<Value, String> {
        let wrong = || format!("expected {}, found {}", self.describe(), node.kind());
        if self == Ty::Routes {
            let Node::Table(entries) = node else {
                return Err(wrong());
            };
            let mut out = Vec::new();
            for (domain, target) in entries {
                let Node::Str(target) = target.get_ref() else {
                    return Err(format!(
                        "{}: expected a \"host:port\" string, found {}",
                        domain.get_ref(),
                        target.get_ref().kind()
                    ));
                };
                out.push(format!("{}={target}", domain.get_ref()));
            }
            return self.check_list(out);
        }
        if self.is_list() {
            let Node::Array(items) = node else {
                return Err(wrong());
            };
            let mut out = Vec::new();
            for item in items {
                match item.get_ref() {
                    Node::Str(s) => out.push(s.clone()),
                    other => {
                        return Err(format!(
                            "expected {}, found an array holding {}",
                            self.describe(),
                            other.kind()
                        ))
                    }
                }
            }
            return self.check_list(out);
        }
        match (self, node) {
            (Ty::Bool, Node::Bool(b)) => Ok(Value::Bool(*b)),
            (Ty::Int { .. }, Node::Int(i)) => self.check_int(*i),
            (Ty::Int { .. }, _) | (Ty::Bool, _) => Err(wrong()),
            (_, Node::Str(s)) => self.check_str(s.clone()),
            _ => Err(wrong()),
        }
    }

    /// Convert an environment variable's text (lists are comma-separated).
    pub fn parse_text(self, text: &str) -> Result<Value, String> {
        let text = text.trim();
        match self {
            Ty::Bool => match text {
                "true" | "1" | "yes" => Ok(Value::Bool(true)),
                "false" | "0" | "no" => Ok(Value::Bool(false)),
                other => Err(format!("expected true or false, got {other:?}")),
            },
            Ty::Int { .. } => match text.parse::<i64>() {
                Ok(i) => self.check_int(i),
                Err(_) => Err(format!("expected {}, got {text:?}", self.describe())),
            },
            t if t.is_list() => t.check_list(
                text.split(',')
                    .map(|s| s.trim().to_owned())
                    .filter(|s| !s.is_empty())
                    .collect(),
            ),
            _ => self.check_str(text.to_owned()),
        }
    }

    fn check_int(self, i: i64) -> Result<Value, String> {
        match self {
            Ty::Int { min, max } if i < min || i > max => {
                Err(format!("{i} is out of range: expected {}", self.describe()))
            }
            _ => Ok(Value::Int(i)),
        }
    }

    fn check_str(self, s: String) -> Result<Value, String> {
        match self {
            Ty::Choice(c) if !c.contains(&s.as_str()) => {
                match super::diagnostics::did_you_mean(&s, c.iter().copied()) {
                    Some(m) => Err(format!(
                        "{s:?} is not {} (did you mean {m:?}?)",
                        self.describe()
                    )),
                    None => Err(format!("{s:?} is not {}", self.describe())),
                }
            }
            Ty::Ip => parse_ip(&s)
                .map(|ip| Value::Str(ip.to_string()))
                .ok_or_else(|| format!("{s:?} is not an IP address")),
            Ty::Domain => normalize_domain(&s).map(Value::Str),
            _ => Ok(Value::Str(s)),
        }
    }

    fn check_list(self, items: Vec<String>) -> Result<Value, String> {
        match self {
            Ty::Domains => {
                if items.is_empty() {
                    return Err("at least one domain is required".into());
                }
                items
                    .iter()
                    .map(|d| normalize_domain(d))
                    .collect::<Result<Vec<_>, _>>()
                    .map(Value::List)
            }
            Ty::Jids => items
                .iter()
                .map(|j| match Jid::parse(j) {
                    Ok(jid) if jid.local().is_some() && jid.resource().is_none() => {
                        Ok(jid.as_str().to_owned())
                    }
                    _ => Err(format!("{j:?} is not a bare JID (user@domain)")),
                })
                .collect::<Result<Vec<_>, _>>()
                .map(Value::List),
            Ty::Mechanisms => {
                if items.is_empty() {
                    return Err("at least one SASL mechanism is required".into());
                }
                for m in &items {
                    if Mechanism::from_name(m).is_none() {
                        return Err(format!(
                            "unknown SASL mechanism {m:?} (known: {})",
                            mechanism_names().join(", ")
                        ));
                    }
                }
                Ok(Value::List(items))
            }
            Ty::Ips => items
                .iter()
                .map(|a| {
                    parse_net(a).map(|net| show_net(&net)).ok_or_else(|| {
                        format!("{a:?} is not an IP address or network (like \"10.0.0.0/8\")")
                    })
                })
                .collect::<Result<Vec<_>, _>>()
                .map(Value::List),
            Ty::Routes => {
                let mut routes = xmpp_runtime::s2s::S2sOverrides::new();
                for item in &items {
                    let Some((domain, target)) = item.split_once('=') else {
                        return Err(format!("{item:?} is not domain=host:port"));
                    };
                    routes
                        .insert(domain.trim(), target.trim())
                        .map_err(|e| e.to_string())?;
                }
                Ok(Value::List(items))
            }
            _ => Ok(Value::List(items)),
        }
    }
}

fn quoted(items: &[&str]) -> String {
    items
        .iter()
        .map(|s| format!("{s:?}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn mechanism_names() -> Vec<&'static str> {
    Mechanism::SERVER_PREFERENCE
        .iter()
        .map(|m| m.name())
        .collect()
}

/// `*` and `[::]` forms are accepted for "all interfaces".
/// An address (a network of one) or a network in CIDR notation.
pub fn parse_net(v: &str) -> Option<ipnet::IpNet> {
    let v = v.trim();
    if v.contains('/') {
        return v.parse::<ipnet::IpNet>().ok().map(|n| n.trunc());
    }
    v.trim_matches(|c| c == '[' || c == ']')
        .parse::<IpAddr>()
        .ok()
        .map(ipnet::IpNet::from)
}

/// A network as written in configuration: a network of one as its
/// address, others in CIDR notation.
pub fn show_net(net: &ipnet::IpNet) -> String {
    if net.prefix_len() == net.max_prefix_len() {
        net.addr().to_string()
    } else {
        net.to_string()
    }
}

pub fn parse_ip(v: &str) -> Option<IpAddr> {
    let v = v.trim_matches(|c| c == '[' || c == ']');
    let v = if v == "*" { "0.0.0.0" } else { v };
    v.parse().ok()
}

fn normalize_domain(d: &str) -> Result<String, String> {
    match Jid::domain_jid(d.trim()) {
        Ok(j) if j.local().is_none() && j.resource().is_none() => Ok(j.domain().to_owned()),
        _ => Err(format!("{d:?} is not a valid domain name")),
    }
}

/// An effective value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    Bool(bool),
    Int(i64),
    Str(String),
    List(Vec<String>),
}

impl fmt::Display for Value {
    /// TOML syntax, so `config show` output can be pasted into a file.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Bool(b) => write!(f, "{b}"),
            Value::Int(i) => write!(f, "{i}"),
            Value::Str(s) => write!(f, "{s:?}"),
            Value::List(l) => {
                let items: Vec<String> = l.iter().map(|s| format!("{s:?}")).collect();
                write!(f, "[{}]", items.join(", "))
            }
        }
    }
}

/// One key.
#[derive(Debug, Clone, Copy)]
pub struct KeySpec {
    /// Dotted name: as written in a single-file configuration, in
    /// environment and policy files, and in `vireo config show`.
    pub name: &'static str,
    /// The name inside its home file.
    pub local: &'static str,
    pub home: Home,
    pub ty: Ty,
    /// The default, in TOML syntax ("" when unset by default).
    pub default: &'static str,
    pub specs: &'static [&'static str],
    pub doc: &'static str,
    /// Built into this version; setting an unavailable key is an error.
    pub available: bool,
}

/// A key this version has built (module sections declare theirs with it).
pub const fn key(
    name: &'static str,
    local: &'static str,
    home: Home,
    ty: Ty,
    default: &'static str,
    specs: &'static [&'static str],
    doc: &'static str,
) -> KeySpec {
    KeySpec {
        name,
        local,
        home,
        ty,
        default,
        specs,
        doc,
        available: true,
    }
}

const fn planned(
    name: &'static str,
    local: &'static str,
    home: Home,
    ty: Ty,
    default: &'static str,
    specs: &'static [&'static str],
    doc: &'static str,
) -> KeySpec {
    KeySpec {
        available: false,
        ..key(name, local, home, ty, default, specs, doc)
    }
}

const ORCH: Home = Home::Orchestration;
const PORTS: Home = Home::Layer(Layer::Transport, "ports");
const TLS: Home = Home::Layer(Layer::Transport, "tls");
const CONNECTIONS: Home = Home::Layer(Layer::Transport, "connections");
const AUTH: Home = Home::Layer(Layer::Stream, "authentication");
const ENCRYPTION: Home = Home::Layer(Layer::Stream, "encryption");
const MANAGEMENT: Home = Home::Layer(Layer::Stream, "management");
const VALIDATION: Home = Home::Layer(Layer::Stanza, "validation");
const LEGACY: Home = Home::Layer(Layer::Protocol, "legacy");
const CORE: Home = Home::Layer(Layer::Protocol, "core");
const GROUPCHAT: Home = Home::Layer(Layer::Services, "groupchat");
const MESSAGING: Home = Home::Layer(Layer::Services, "messaging");
const PRESENCE: Home = Home::Layer(Layer::Services, "presence");
const BACKENDS: Home = Home::Layer(Layer::Storage, "backends");
const HTTP: Home = Home::Layer(Layer::Interfaces, "http");
const WEBSOCKET: Home = Home::Layer(Layer::Interfaces, "websocket");
const BOSH: Home = Home::Layer(Layer::Interfaces, "bosh");
const UPLOAD: Home = Home::Layer(Layer::Services, "upload");
const COMPONENTS: Home = Home::Layer(Layer::Interfaces, "components");
const LDAP: Home = Home::Layer(Layer::Integration, "ldap");
const OAUTH: Home = Home::Layer(Layer::Integration, "oauth");
const WEBHOOKS: Home = Home::Layer(Layer::Integration, "webhooks");

const PORT: Ty = Ty::Int { min: 0, max: 65535 };

/// The environments `environment` may name.
pub const ENVIRONMENTS: &[&str] = &["production", "development", "docker"];

/// The log formats.
pub const LOG_FORMATS: &[&str] = &["text", "json"];

/// Storage drivers this version has.
pub const STORAGE_DRIVERS: &[&str] = &["redb", "sled", "postgresql"];

/// TLS to PostgreSQL, as libpq's `sslmode` names them.
pub const SQL_TLS_MODES: &[&str] = &["disable", "prefer", "require", "verify-ca", "verify-full"];

/// Every key: the core keys, then each module section's
/// ([`super::sections::SECTIONS`]), so a module's settings live in its
/// section file and still reach the loader, `config show`, `config init`
/// and the reference. Built once; the tables are constant.
pub static KEYS: LazyLock<Vec<KeySpec>> = LazyLock::new(|| {
    CORE_KEYS
        .iter()
        .chain(super::sections::SECTIONS.iter().flat_map(|s| s.keys))
        .copied()
        .collect()
});

/// The keys that belong to no hub module's section, orchestration first,
/// then in stack order.
pub const CORE_KEYS: &[KeySpec] = &[
    key("domain", "domain", ORCH, Ty::Domain, "", &["RFC 7622 §3.2"],
        "One hosted domain: shorthand for `domains = [\"...\"]`."),
    key("domains", "domains", ORCH, Ty::Domains, "[\"localhost\"]", &["RFC 6120 §2.1", "RFC 7622 §3.2"],
        "The hosted domains (virtual hosts); domains/*.toml add their own."),
    key("environment", "environment", ORCH, Ty::Choice(ENVIRONMENTS), "", &[],
        "The environment overlay applied after the stack and the domains: production, development or docker (none by default)."),
    key("policies", "policies", ORCH, Ty::StrList, "", &[],
        "Which policies/<group>/<name>.toml apply, as \"group/name\", in order (default: every policy file, sorted)."),
    key("admins", "admins", ORCH, Ty::Jids, "[]", &["XEP-0133"],
        "Server administrators, as bare JIDs."),
    key("data_path", "data_path", ORCH, Ty::Path, "\"vireo-data\"", &[],
        "Data directory: store, generated certificates, admin socket."),
    key("log_level", "log_level", ORCH, Ty::Str, "\"info\"", &[],
        "Log filter (tracing EnvFilter syntax), e.g. \"info\" or \"debug,vireo=trace\"."),
    key("log_format", "log_format", ORCH, Ty::Choice(LOG_FORMATS), "\"text\"", &[],
        "Log lines as readable text, or as one JSON object per line for log collectors (the production environment's default)."),
    // 01 transport
    // 04 protocol: XEP-0157 contact addresses, in the server's disco#info
    key("contact.abuse_addresses", "abuse_addresses", CORE, Ty::StrList, "[]", &["XEP-0157"],
        "URIs (xmpp:, mailto:, https:) for abuse reports, published in the server's disco#info."),
    key("contact.admin_addresses", "admin_addresses", CORE, Ty::StrList, "[]", &["XEP-0157"],
        "URIs (xmpp:, mailto:, https:) for the administrators, published in the server's disco#info."),
    key("contact.feedback_addresses", "feedback_addresses", CORE, Ty::StrList, "[]", &["XEP-0157"],
        "URIs (xmpp:, mailto:, https:) for feedback, published in the server's disco#info."),
    key("contact.sales_addresses", "sales_addresses", CORE, Ty::StrList, "[]", &["XEP-0157"],
        "URIs (xmpp:, mailto:, https:) for sales, published in the server's disco#info."),
    key("contact.security_addresses", "security_addresses", CORE, Ty::StrList, "[]", &["XEP-0157"],
        "URIs (xmpp:, mailto:, https:) for security reports, published in the server's disco#info."),
    key("contact.status_addresses", "status_addresses", CORE, Ty::StrList, "[]", &["XEP-0157"],
        "URIs (xmpp:, mailto:, https:) for service status, published in the server's disco#info."),
    key("contact.support_addresses", "support_addresses", CORE, Ty::StrList, "[]", &["XEP-0157"],
        "URIs (xmpp:, mailto:, https:) for user support, published in the server's disco#info."),
    key("transport.bind", "bind", PORTS, Ty::Ip, "\"0.0.0.0\"", &[],
        "Address the listeners bind to (\"0.0.0.0\" or \"::\" for all interfaces)."),
    key("transport.c2s_port", "c2s_port", PORTS, PORT, "5222", &["RFC 6120 §14.7"],
        "Client port with STARTTLS (0 = any free port)."),
    key("transport.c2s_tls_port", "c2s_tls_port", PORTS, PORT, "5223", &["XEP-0368"],
        "Client port with TLS from the first byte (0 = any free port)."),
    key("transport.s2s_port", "s2s_port", PORTS, PORT, "5269", &["RFC 6120 §14.7", "XEP-0220"],
        "Server-to-server port with STARTTLS (federation; 0 = any free port). Listening while the `s2s` module is on."),
    key("transport.s2s_tls_port", "s2s_tls_port", PORTS, PORT, "5270", &["XEP-0368"],
        "Server-to-server port with TLS from the first byte (XEP-0368), announced as _xmpps-server._tcp."),
    key("transport.s2s_routes", "s2s_routes", PORTS, Ty::Routes, "", &["RFC 6120 §3.2"],
        "Static routes that take the place of DNS for these domains: { \"b.example\" = \"10.0.0.5:5269\" } (private networks, tests, containers). VIREO_S2S_OVERRIDES sets them as \"b.example=10.0.0.5:5269,c.example=10.0.0.6:5269\"."),
    key("tls.certificate", "certificate", TLS, Ty::Path, "", &["RFC 6120 §5", "RFC 6125", "RFC 8446"],
        "PEM certificate chain, end-entity first (relative paths: to the configuration root). Unset: a self-signed certificate is generated."),
    key("tls.key", "key", TLS, Ty::Path, "", &["RFC 6120 §5"],
        "PEM private key of the certificate (PKCS#8, PKCS#1 or SEC1)."),
    key("transport.s2s_connect_timeout", "s2s_connect_timeout", CONNECTIONS, Ty::Int { min: 1, max: 300 }, "10", &["RFC 6120 §3.2"],
        "Seconds one s2s connection attempt (TCP, then the TLS handshake) may take; the next address is tried a quarter second into an attempt (happy eyeballs). When none connects, waiting stanzas bounce with remote-server-timeout or remote-server-not-found."),
    key("transport.s2s_timeout", "s2s_timeout", CONNECTIONS, Ty::Int { min: 1, max: 3600 }, "60", &["XEP-0220"],
        "Seconds an s2s stream has to authenticate (dialback or SASL EXTERNAL), both ways (Prosody's name)."),
    key("transport.s2s_idle_timeout", "s2s_idle_timeout", CONNECTIONS, Ty::Int { min: 10, max: 86_400 }, "300", &[],
        "Seconds an s2s connection may carry nothing before it is closed (a new one opens when needed)."),
    key("transport.s2s_max_queue_bytes", "s2s_max_queue_bytes", CONNECTIONS, Ty::Int { min: 1024, max: 1_073_741_824 }, "1048576", &[],
        "Bytes of stanzas waiting for one remote domain (while its connection is set up, or behind a slow peer); one more bounces with resource-constraint."),
    key("transport.s2s_max_outgoing", "s2s_max_outgoing", CONNECTIONS, Ty::Int { min: 1, max: 1_000_000 }, "1000", &[],
        "Most outgoing s2s connections (domain pairs) at once; a stanza needing one more bounces with resource-constraint."),
    key("transport.s2s_max_incoming_per_address", "s2s_max_incoming_per_address", CONNECTIONS, Ty::Int { min: 1, max: 100_000 }, "16", &[],
        "Most incoming s2s connections from one IP address at once; more are closed at once."),
    key("transport.s2s_cafile", "s2s_cafile", TLS, Ty::Path, "", &["RFC 6125"],
        "PEM bundle of the certificate authorities peers' certificates are checked against (unset: the system bundle, /etc/ssl/certs/ca-certificates.crt)."),
    key("transport.s2s_deny_domains", "s2s_deny_domains", CONNECTIONS, Ty::StrList, "[]", &[],
        "Remote domains never federated with, either way: stanzas to them bounce with not-allowed, their dialback is refused."),
    key("transport.s2s_allow_domains", "s2s_allow_domains", CONNECTIONS, Ty::StrList, "[]", &[],
        "When not empty, the only remote domains federated with (a closed federation)."),
    key("transport.max_connections", "max_connections", CONNECTIONS, Ty::Int { min: 1, max: 10_000_000 }, "20000", &[],
        "Most simultaneous client connections; further ones are refused."),
    key("transport.c2s_rate_limit", "c2s_rate_limit", CONNECTIONS, Ty::Int { min: 0, max: 1_000_000_000 }, "0", &[],
        "Bytes per second each client connection may send; over it the connection is read more slowly (0 = unlimited; the production environment sets 65536)."),
    key("transport.c2s_rate_burst", "c2s_rate_burst", CONNECTIONS, Ty::Int { min: 0, max: 1_000_000_000 }, "262144", &[],
        "Bytes a client may send at once after a quiet period, on top of the rate."),
    key("transport.max_unauthenticated_per_address", "max_unauthenticated_per_address", CONNECTIONS, Ty::Int { min: 0, max: 10_000_000 }, "20", &[],
        "Most connections one client address (an IPv6 /64) may hold before authenticating; one more is closed at once, before any byte is sent (0 = no limit). Addresses in address_limits_exempt are not counted."),
    key("transport.max_new_connections_per_address", "max_new_connections_per_address", CONNECTIONS, Ty::Int { min: 0, max: 10_000_000 }, "10", &[],
        "Most new connections one client address (an IPv6 /64) may open per second; further ones are closed at once (0 = no limit)."),
    key("transport.tls_handshake_timeout", "tls_handshake_timeout", CONNECTIONS, Ty::Int { min: 1, max: 300 }, "10", &["RFC 6120 §5", "XEP-0368"],
        "Seconds a TLS handshake (direct TLS, or after STARTTLS) may take before the connection is closed."),
    key("transport.address_limits_exempt", "address_limits_exempt", CONNECTIONS, Ty::Ips, "[\"127.0.0.1\", \"::1\"]", &[],
        "IP addresses and networks (\"10.0.0.0/8\", \"2001:db8::/32\") the per-address limits (connections, new connections per second, the per-address authentication backoff) do not apply to: loopback by default, for local benchmarks, tests and proxies. The per-account backoff applies to everyone."),
    key("transport.max_tracked_addresses", "max_tracked_addresses", CONNECTIONS, Ty::Int { min: 1024, max: 10_000_000 }, "65536", &[],
        "Most client addresses (and, separately, accounts) the per-address limits and the authentication backoff remember; the least recently seen are forgotten first, so many addresses cannot grow memory without bound."),
    key("transport.threads", "threads", CONNECTIONS, Ty::Int { min: 0, max: 1024 }, "0", &[],
        "Worker threads (0 = one per core)."),
    key("stream.auth_timeout", "auth_timeout", CONNECTIONS, Ty::Int { min: 1, max: 3600 }, "30", &[],
        "Seconds a connection may take to authenticate."),
    key("stream.bind_timeout", "bind_timeout", CONNECTIONS, Ty::Int { min: 1, max: 3600 }, "30", &["RFC 6120 §7"],
        "Seconds an authenticated connection may take to bind a resource (or resume a session) before it is closed with <connection-timeout/>."),
    key("stream.keepalive_interval", "keepalive_interval", CONNECTIONS, Ty::Int { min: 0, max: 86_400 }, "60", &["RFC 6120 §4.6"],
        "Seconds between whitespace keepalives on idle streams (0 = off)."),
    key("stream.send_timeout", "send_timeout", CONNECTIONS, Ty::Int { min: 0, max: 86_400 }, "60", &[],
        "Seconds a write to a client may make no progress before its connection counts as broken (a resumable XEP-0198 session then hibernates; 0 = wait forever)."),
    key("stream.max_mailbox_bytes", "max_mailbox_bytes", CONNECTIONS, Ty::Int { min: 65_536, max: 1_073_741_824 }, "4194304", &[],
        "Bytes of stanzas that may wait for one client connection to take them (a client that stops reading while another session floods it); over it the session ends with resource-constraint and what waits goes to the account's other resources or offline storage. At least max_stanza_size."),
    key("transport.partition_queue_bytes", "partition_queue_bytes", CONNECTIONS, Ty::Int { min: 65_536, max: 1_073_741_824 }, "2097152", &[],
        "Bytes of client and component stanzas one hub partition may have waiting (and eight times as much in storage requests); a connection then waits for room before handing over its next stanza (and reads no more from its socket meanwhile). Partitions never wait on each other or on connections, so this cannot deadlock. Changed by a reload."),
    key("stream.max_user_sessions", "max_user_sessions", CONNECTIONS, Ty::Int { min: 1, max: 10_000 }, "10", &["RFC 6120 §7.6.2.1"],
        "Sessions (resources) one account may have bound at once, hibernated XEP-0198 sessions included; one more is refused with resource-constraint (Prosody's max_resources, ejabberd's max_user_sessions)."),
    // 02 stream
    key("stream.mechanisms", "mechanisms", AUTH, Ty::Mechanisms,
        "[\"SCRAM-SHA-256-PLUS\", \"SCRAM-SHA-1-PLUS\", \"SCRAM-SHA-256\", \"SCRAM-SHA-1\", \"PLAIN\"]",
        &["RFC 6120 §6", "RFC 5802", "RFC 7677", "RFC 4616", "RFC 9266"],
        "SASL mechanisms offered, strongest first (PLAIN only over TLS)."),
    key("stream.scram_iterations", "scram_iterations", AUTH, Ty::Int { min: 4096, max: 10_000_000 }, "10000", &["RFC 5802 §5.1", "RFC 7677 §4"],
        "PBKDF2 iterations for new SCRAM credentials (at least 4096)."),
    key("stream.auth_failure_delay", "auth_failure_delay", AUTH, Ty::Int { min: 0, max: 60_000 }, "250", &["RFC 6120 §6.4.5"],
        "Milliseconds an address (an IPv6 /64) and an account must wait after a failed authentication before their next attempt is examined; each further failure doubles it (0 = no backoff). Failed in-band registrations count for the address too."),
    key("stream.auth_failure_max_delay", "auth_failure_max_delay", AUTH, Ty::Int { min: 0, max: 60_000 }, "10000", &[],
        "Longest such delay, in milliseconds (at most a minute: the waiting connection holds its slot)."),
    key("stream.auth_failure_forget", "auth_failure_forget", AUTH, Ty::Int { min: 1, max: 604_800 }, "900", &[],
        "Seconds without a failure after which an address's or account's failures are forgotten (an account's also at its next successful login)."),
    key("stream.require_encryption", "require_encryption", ENCRYPTION, Ty::Bool, "true", &["RFC 6120 §5.3.1"],
        "Clients must negotiate TLS before authenticating. production forces it on."),
    key("stream.s2s_require_encryption", "s2s_require_encryption", ENCRYPTION, Ty::Bool, "true", &["RFC 6120 §5.3.1", "RFC 7590"],
        "Server-to-server streams must use TLS, both ways: a peer that does not offer or take STARTTLS is refused (Prosody's name)."),
    key("stream.s2s_secure_auth", "s2s_secure_auth", ENCRYPTION, Ty::Bool, "false", &["RFC 6125", "XEP-0178"],
        "Peers must prove their domain with a certificate that verifies (RFC 6125) against s2s_cafile: no dialback over a certificate that does not (Prosody's name). Off: dialback (XEP-0220) authenticates peers whose certificates do not verify."),
    key("stream.s2s_bidi", "s2s_bidi", ENCRYPTION, Ty::Bool, "true", &["XEP-0288"],
        "Bidirectional server-to-server streams: one connection per peer carries stanzas both ways when the peer agrees (XEP-0288), instead of one connection each way."),
    key("stream.s2s_secure_domains", "s2s_secure_domains", ENCRYPTION, Ty::StrList, "[]", &["RFC 6125"],
        "Remote domains held to s2s_secure_auth even when it is off (Prosody's name)."),
    key("stream.s2s_insecure_domains", "s2s_insecure_domains", ENCRYPTION, Ty::StrList, "[]", &["XEP-0220"],
        "Remote domains exempt from s2s_secure_auth when it is on: dialback is enough for them (Prosody's name)."),
    key("stream.smacks_resume_timeout", "smacks_resume_timeout", MANAGEMENT, Ty::Int { min: 0, max: 86_400 }, "300", &["XEP-0198 §5"],
        "Seconds a session whose connection broke stays resumable; then its unacknowledged messages go to the account's other resources or offline storage (0 = acknowledgements without resumption)."),
    key("stream.smacks_max_queue_size", "smacks_max_queue_size", MANAGEMENT, Ty::Int { min: 1, max: 100_000 }, "500", &["XEP-0198 §4"],
        "Most stanzas kept for a client until it acknowledges them; a client that falls further behind is disconnected and the queue is handled as undeliverable."),
    key("stream.smacks_max_unacked_stanzas", "smacks_max_unacked_stanzas", MANAGEMENT, Ty::Int { min: 1, max: 10_000 }, "5", &["XEP-0198 §4"],
        "Ask the client to acknowledge (<r/>) after this many unacknowledged stanzas."),
    key("stream.smacks_max_queue_bytes", "smacks_max_queue_bytes", MANAGEMENT, Ty::Int { min: 65_536, max: 1_073_741_824 }, "4194304", &["XEP-0198 §4"],
        "Bytes of stanzas kept for a client until it acknowledges them (counting stanzas alone allows smacks_max_queue_size times the largest stanza); over it the session ends with resource-constraint and the queue is handled as undeliverable. At least max_stanza_size."),
    // 03 stanza
    key("stream.max_stanza_size", "max_stanza_size", VALIDATION, Ty::Int { min: 10_000, max: 16_777_216 }, "262144", &["RFC 6120 §13.12"],
        "Largest stanza accepted, in bytes (at least 10000)."),
    key("stream.max_unauthenticated_stanza_size", "max_unauthenticated_stanza_size", VALIDATION, Ty::Int { min: 1024, max: 16_777_216 }, "16384", &["RFC 6120 §13.12"],
        "Largest stanza (and stream header) accepted before authentication, in bytes: negotiation needs a few hundred, so an anonymous connection costs little."),
    key("stream.max_namespace_length", "max_namespace_length", VALIDATION, Ty::Int { min: 64, max: 65_536 }, "1024", &["RFC 6120 §11"],
        "Longest namespace name accepted, in bytes."),
    key("stream.max_attributes", "max_attributes", VALIDATION, Ty::Int { min: 8, max: 100_000 }, "64", &["RFC 6120 §11"],
        "Most attributes on one element."),
    key("stream.max_children", "max_children", VALIDATION, Ty::Int { min: 16, max: 10_000_000 }, "4096", &["RFC 6120 §11"],
        "Most children (elements and text nodes) of one element."),
    key("stream.max_stanza_nodes", "max_stanza_nodes", VALIDATION, Ty::Int { min: 64, max: 10_000_000 }, "16384", &["RFC 6120 §11"],
        "Most elements and text nodes in one stanza; before authentication at most 256."),
    // 04 protocol: XEP-0077, with Prosody's names
    key("registration.allow_registration", "allow_registration", LEGACY, Ty::Bool, "false", &["XEP-0077 §3.1"],
        "Let anyone create an account in-band (the `register` stream feature). Off, users can still change their password and delete their account while the `register` module is enabled. The development environment turns it on."),
    key("registration.min_password_length", "min_password_length", LEGACY, Ty::Int { min: 1, max: 1024 }, "8", &["XEP-0077 §3.1, §3.3"],
        "Shortest password accepted for new accounts and password changes, in characters."),
    key("registration.min_seconds_between_registrations", "min_seconds_between_registrations", LEGACY, Ty::Int { min: 0, max: 31_536_000 }, "300", &["XEP-0077 §11"],
        "Seconds before another account may be registered in-band from the same IP address (0 = no limit); refused attempts get a resource-constraint error (as from ejabberd)."),
    key("registration.registration_whitelist", "registration_whitelist", LEGACY, Ty::Ips, "[\"127.0.0.1\", \"::1\"]", &[],
        "IP addresses and networks (\"10.0.0.0/8\") exempt from min_seconds_between_registrations (loopback by default, as in Prosody)."),
    // 05 services
    key("services.max_offline_messages", "max_offline_messages", MESSAGING, Ty::Int { min: 1, max: 1_000_000 }, "1000", &["XEP-0160"],
        "Messages kept in one account's offline storage; one more is refused and its sender gets a resource-constraint error (ejabberd's max_user_offline_messages). Messages of ended sessions that were already accepted are kept beyond it."),
    key("services.offline_page_size", "offline_page_size", MESSAGING, Ty::Int { min: 1, max: 10_000 }, "100", &["XEP-0160", "XEP-0198"],
        "Offline messages sent per page at login (and at most 1 MiB, or a quarter of smacks_max_queue_bytes); the next page follows once the client acknowledged the last (XEP-0198) or it was written to the socket. Kept below smacks_max_queue_size."),
    key("services.max_private_documents", "max_private_documents", PRESENCE, Ty::Int { min: 1, max: 1_000_000 }, "100", &["XEP-0049"],
        "Private XML documents (distinct elements) one account may store; storing one more is refused with resource-constraint, replacing a stored one always works."),
    key("services.max_roster_items", "max_roster_items", PRESENCE, Ty::Int { min: 1, max: 1_000_000 }, "2000", &["RFC 6121 §2"],
        "Roster items one account may have, strangers' pending subscription requests included; adding one more is refused with resource-constraint."),
    planned("services.muc_domain", "muc_domain", GROUPCHAT, Ty::Domain, "", &["XEP-0045"],
        "The multi-user chat service's domain, e.g. conference.example.org."),
    // The upload module's files, read by the HTTP side (its slot settings
    // are config/sections/upload.rs).
    key("services.upload_expire_after", "upload_expire_after", UPLOAD, Ty::Int { min: 1, max: 315_360_000 }, "604800", &[],
        "Seconds a file is kept; then it is deleted and its URL answers 404 (Prosody's http_file_share_expires_after)."),
    key("services.upload_path", "upload_path", UPLOAD, Ty::Path, "\"\"", &[],
        "Directory for uploaded files; empty: DATA/upload. Files are named by their slot, never by the user's file name."),
    // 06 storage
    key("storage.driver", "driver", BACKENDS, Ty::Choice(STORAGE_DRIVERS), "\"redb\"", &[],
        "Storage backend: \"redb\" (embedded, the file DATA/store/vireo.redb; a sled store found there is migrated to it at the first start), \"sled\" (the previous embedded store, kept for stores not yet migrated) or \"postgresql\" (the sql_* keys; the schema is created and upgraded at start)."),
    key("storage.cache_size", "cache_size", BACKENDS, Ty::Int { min: 65_536, max: 68_719_476_736 }, "2097152", &[],
        "Bytes of the embedded store's page cache (redb or sled). Accounts in use are kept in memory anyway; a larger cache speeds up archive queries over old messages, and is kept after a peak of logins."),
    key("storage.sql_host", "sql_host", BACKENDS, Ty::Str, "\"localhost\"", &[],
        "PostgreSQL server: a host name or address, or the directory of its Unix socket (starting with /)."),
    key("storage.sql_port", "sql_port", BACKENDS, Ty::Int { min: 1, max: 65535 }, "5432", &[],
        "PostgreSQL server port."),
    key("storage.sql_name", "sql_name", BACKENDS, Ty::Str, "\"vireo\"", &[],
        "PostgreSQL database; it must exist (createdb -O vireo vireo), Vireo creates its tables."),
    key("storage.sql_user", "sql_user", BACKENDS, Ty::Str, "\"vireo\"", &[],
        "PostgreSQL user; it needs to create tables in the database at the first start and at upgrades."),
    key("storage.sql_password", "sql_password", BACKENDS, Ty::Str, "\"\"", &[],
        "PostgreSQL password (empty: none, e.g. peer or trust authentication). Prefer the environment variable VIREO_DB_PASSWORD to a file."),
    key("storage.sql_tls", "sql_tls", BACKENDS, Ty::Choice(SQL_TLS_MODES), "\"prefer\"", &[],
        "TLS to PostgreSQL, as libpq's sslmode: \"disable\", \"prefer\" (TLS when the server offers it), \"require\" (TLS, any certificate), \"verify-ca\" (TLS, a certificate from a trusted authority) or \"verify-full\" (that, and issued for sql_host). The authorities are sql_tls_ca's, or the system's."),
    key("storage.sql_tls_ca", "sql_tls_ca", BACKENDS, Ty::Path, "\"\"", &[],
        "PEM file of the certificate authorities trusted to sign PostgreSQL's certificate with sql_tls = \"verify-ca\" or \"verify-full\" (a private CA, as PostgreSQL's sslrootcert); empty: the system's trusted roots."),
    key("storage.sql_pool_size", "sql_pool_size", BACKENDS, Ty::Int { min: 1, max: 1000 }, "16", &[],
        "Most connections to PostgreSQL. Every hub partition's storage thread and every login lookup takes one per batch; when all are busy, requests wait for one (back-pressure) rather than open more."),
    key("storage.sql_retry_seconds", "sql_retry_seconds", BACKENDS, Ty::Int { min: 0, max: 3600 }, "30", &[],
        "Seconds a batch of storage requests waits and retries while PostgreSQL cannot be reached (restarting, failing over), before its requests fail with an error. Nothing is acknowledged meanwhile."),
    // 07 interfaces
    key("interfaces.http_port", "http_port", HTTP, PORT, "5280", &["RFC 9112"],
        "Plain HTTP port (Prosody's default; 0 = any free port): /health now, WebSocket, BOSH, upload and the APIs as they land. Put it behind a TLS-terminating proxy or use https_port."),
    key("interfaces.https_port", "https_port", HTTP, PORT, "5281", &["RFC 9112", "RFC 8446"],
        "HTTPS port (the domains' certificates, chosen by SNI; HSTS on every response; 0 = any free port)."),
    key("interfaces.http_max_body", "http_max_body", HTTP, Ty::Int { min: 1024, max: 1_073_741_824 }, "1048576", &["RFC 9110 §15.5.14"],
        "Bytes of one request body; a larger Content-Length gets 413 before any of it is read."),
    key("interfaces.http_max_head", "http_max_head", HTTP, Ty::Int { min: 1024, max: 1_048_576 }, "8192", &["RFC 9110 §15.5.22"],
        "Bytes of one request head (request line and header fields); more gets 431."),
    key("interfaces.http_request_timeout", "http_request_timeout", HTTP, Ty::Int { min: 1, max: 3600 }, "10", &["RFC 9110 §15.5.9"],
        "Seconds from a request's first byte to its last; a slower one gets 408 and the connection closes (slow-loris clients)."),
    key("interfaces.http_idle_timeout", "http_idle_timeout", HTTP, Ty::Int { min: 1, max: 86_400 }, "60", &[],
        "Seconds a kept-alive HTTP connection may wait for its next request."),
    key("interfaces.metrics_allow_ips", "metrics_allow_ips", HTTP, Ty::Ips, "[\"127.0.0.1\", \"::1\"]", &[],
        "Addresses (or networks) that may read /metrics (Prometheus text format); others get 403 (Prosody's openmetrics_allow_ips)."),
    key("interfaces.http_max_per_address", "http_max_per_address", HTTP, Ty::Int { min: 1, max: 100_000 }, "64", &[],
        "HTTP connections one client address may hold at once; more are closed at once."),
    key("interfaces.http_external_url", "http_external_url", HTTP, Ty::Str, "\"\"", &["XEP-0156"],
        "The URL clients reach the HTTP server at, behind a proxy (\"https://chat.example.org\"), as in Prosody: the WebSocket address /.well-known/host-meta advertises is built from it. Empty: from each request's scheme and Host."),
    key("interfaces.trusted_proxies", "trusted_proxies", HTTP, Ty::Ips, "[]", &["RFC 7239"],
        "Reverse proxies (addresses or networks) whose X-Forwarded-For names the client: its address, not the proxy's, is what per-address limits count and what metrics_allow_ips checks (Prosody's trusted_proxies). A header from anyone else is ignored."),
    key("interfaces.conversejs_path", "conversejs_path", HTTP, Ty::Path, "\"\"", &[],
        "Directory holding Converse.js's dist files (converse.min.js, converse.min.css and the rest, e.g. from the npm package converse.js): when set, /conversejs serves a web client already pointed at this server's WebSocket and BOSH endpoints (ejabberd's mod_conversejs). Nothing is vendored."),
    key("interfaces.websocket_origins", "websocket_origins", WEBSOCKET, Ty::StrList, "[\"*\"]", &["RFC 6455 §10.2", "RFC 7395"],
        "Web origins (\"https://chat.example.org\") whose pages may open an XMPP WebSocket at /xmpp-websocket; others get 403. \"*\" allows any: XMPP authenticates inside the stream, never with cookies, so a foreign page gains nothing (ejabberd's default; Prosody's cross_domain_websocket)."),
    key("interfaces.websocket_see_other_uri", "websocket_see_other_uri", WEBSOCKET, Ty::Str, "\"\"", &["RFC 7395 §3.6.1"],
        "Send every WebSocket client to this URL instead (\"wss://new.example.org/xmpp-websocket\"): its <open/> is answered with <close see-other-uri=.../>, for a server being moved or drained. Empty: serve them."),
    key("interfaces.websocket_consider_secure", "websocket_consider_secure", WEBSOCKET, Ty::Bool, "false", &["RFC 7395 §3.1"],
        "Treat WebSockets on the plain HTTP port as encrypted, for a TLS-terminating proxy in front (Prosody's consider_websocket_secure). Otherwise stream.require_encryption refuses authentication on them; WebSockets on https_port are encrypted."),
    key("interfaces.bosh_max_wait", "bosh_max_wait", BOSH, Ty::Int { min: 1, max: 3600 }, "120", &["XEP-0124 §7.1"],
        "Longest a BOSH request is held waiting for something to send, in seconds; a client asking for more gets this (Prosody's bosh_max_wait)."),
    key("interfaces.bosh_max_inactivity", "bosh_max_inactivity", BOSH, Ty::Int { min: 1, max: 86_400 }, "60", &["XEP-0124 §7.1"],
        "Seconds a BOSH session may go without any request before it ends like a dropped connection: a session with resumable stream management hibernates (Prosody's bosh_max_inactivity)."),
    key("interfaces.bosh_max_pause", "bosh_max_pause", BOSH, Ty::Int { min: 0, max: 86_400 }, "300", &["XEP-0124 §10"],
        "Longest pause a BOSH client may ask for (maxpause), in seconds."),
    key("interfaces.bosh_origins", "bosh_origins", BOSH, Ty::StrList, "[\"*\"]", &["XEP-0124 §4"],
        "Web origins allowed to use /http-bind from a browser (CORS); \"*\" allows any: BOSH authenticates inside the stream, never with cookies (Prosody's cross_domain_bosh)."),
    key("interfaces.bosh_consider_secure", "bosh_consider_secure", BOSH, Ty::Bool, "false", &["XEP-0206"],
        "Treat BOSH on the plain HTTP port as encrypted, for a TLS-terminating proxy in front (Prosody's consider_bosh_secure). Otherwise stream.require_encryption refuses authentication there; BOSH on https_port is encrypted."),
    key("interfaces.component_bind", "component_bind", COMPONENTS, Ty::Ip, "\"127.0.0.1\"", &["XEP-0114"],
        "Address the external component listener binds to. Component streams are not encrypted: keep it on loopback."),
    key("interfaces.component_port", "component_port", COMPONENTS, PORT, "5347", &["XEP-0114"],
        "External component port (listening only when [[component]] entries exist; 0 = any free port)."),
    // 08 integration
    planned("integration.ldap_server", "ldap_server", LDAP, Ty::Str, "", &[], "LDAP server URL."),
    planned("integration.oauth_issuer", "oauth_issuer", OAUTH, Ty::Str, "", &["RFC 6749"], "OAuth 2.0 issuer URL."),
    planned("integration.webhook_url", "webhook_url", WEBHOOKS, Ty::Str, "", &[], "URL events are posted to."),
];

/// A key by dotted name.
pub fn find(name: &str) -> Option<&'static KeySpec> {
    KEYS.iter().find(|k| k.name == name)
}

/// A key by its name inside a file of the tree.
pub fn find_local(home: Home, local: &str) -> Option<&'static KeySpec> {
    KEYS.iter().find(|k| k.home == home && k.local == local)
}

/// A key by local name in any file (to say which file it belongs in).
pub fn find_local_anywhere(local: &str) -> Option<&'static KeySpec> {
    KEYS.iter().find(|k| k.local == local)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn schema_is_consistent() {
        let mut names = HashSet::new();
        let mut locals = HashSet::new();
        for k in KEYS.iter() {
            assert!(names.insert(k.name), "{} unique", k.name);
            assert!(locals.insert(k.local), "{} unique local name", k.local);
            assert!(k.name.ends_with(k.local), "{}", k.name);
            assert_ne!(k.local, "modules", "reserved");
            if let Home::Layer(l, f) = k.home {
                assert!(l.files().contains(&f), "{}", k.name);
            }
            if !k.default.is_empty() && !matches!(k.ty, Ty::Path) {
                let parsed: toml::Value = toml::from_str(&format!("v = {}", k.default))
                    .map(|t: toml::Table| t["v"].clone())
                    .unwrap_or_else(|e| panic!("{}: {e}", k.name));
                let _ = parsed;
            }
        }
    }
}
