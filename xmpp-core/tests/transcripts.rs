//! Runs every scenario in `spec/transcripts/*.scn` against the simulated
//! world (`xmpp_core::sim::World`). The format is described in
//! `spec/transcripts/README.md`. A failure names the file and the line of the
//! step; `TRANSCRIPT=<substring>` runs only the matching files.

use base64::Engine as _;
use std::collections::{BTreeMap, VecDeque};
use std::path::{Path, PathBuf};
use xmpp_core::archive::DefaultPref;
use xmpp_core::hub::{ConnId, HubConfig};
use xmpp_core::jid::Jid;
use xmpp_core::modules::extdisco::{ExternalServices, TurnConfig};
use xmpp_core::modules::mam::{ArchiveConfig, Archiving};
use xmpp_core::modules::muc::settings::{CreatePolicy as RoomCreation, Settings as MucSettings};
use xmpp_core::modules::muc::Muc;
use xmpp_core::modules::pubsub::settings::{CreatePolicy, Settings as PubsubSettings};
use xmpp_core::modules::pubsub::PubsubService;
use xmpp_core::modules::push::{Push, PushSettings};
use xmpp_core::modules::ModuleSet;
use xmpp_core::ns;
use xmpp_core::sasl::{plain_message, ChannelBindingType, Mechanism, ScramClient};
use xmpp_core::sim::World;
use xmpp_core::stream::component::handshake_digest;
use xmpp_core::stream::{ComponentSecret, ComponentStreamConfig, ServerStreamConfig};
use xmpp_core::xml::{Element, Limits, Node, StreamEvent, StreamParser};

// ---------------------------------------------------------------- the format

/// A `[Client]` block, or a `[Component]` block (XEP-0114: `password` is
/// the component's secret).
#[derive(Debug, Clone)]
struct ClientDef {
    jid: Jid,
    password: String,
    create_account: bool,
    component: bool,
}

#[derive(Debug)]
enum Step {
    /// `alice connects`: full negotiation up to a bound resource.
    Connects(String),
    /// `alice connects without binding`: negotiation up to the features
    /// after authentication (to resume a session, XEP-0198).
    ConnectsUnbound(String),
    /// `raw alice connects [with direct-tls]`: just the transport.
    ConnectsRaw(String, bool),
    /// `[raw] alice sends:` + payload, written verbatim.
    Sends(String, bool, String),
    /// `[raw] alice receives:` + expected events, in order.
    Receives(String, String),
    /// `alice receives nothing`.
    ReceivesNothing(String),
    /// `alice authenticates [with MECH] [password PW]` (asserts success), or
    /// `alice tries to authenticate ...` (leaves the outcome to `receives:`).
    Authenticates {
        client: String,
        mech: Option<String>,
        password: Option<String>,
        must_succeed: bool,
    },
    /// `alice disconnects`: the client drops the transport.
    Disconnects(String),
    /// `alice is disconnected`: the server has closed the transport.
    IsDisconnected(String),
    /// `time passes 31s`.
    TimePasses(u64),
    /// `pusher handshakes [with secret S]`: a component's `<handshake/>` for
    /// the stream id the server sent.
    Handshakes(String, Option<String>),
}

#[derive(Debug)]
struct Scenario {
    expect_fail: Option<String>,
    clients: BTreeMap<String, ClientDef>,
    stream: ServerStreamConfig,
    hub: HubConfig,
    components: ComponentStreamConfig,
    /// XEP-0077: ms between registrations from the clients' address.
    registration_limit: u64,
    /// XEP-0153: the server puts avatar hashes into presence. Off unless a
    /// scenario asks, so presence elsewhere reads exactly as sent.
    avatars: bool,
    /// Settings of the hub modules, and those switched off.
    modules: ModuleSettings,
    steps: Vec<(usize, Step)>,
}

/// What a scenario says about the hub's modules.
#[derive(Debug, Clone, Default)]
struct ModuleSettings {
    push: PushSettings,
    turn: Option<TurnConfig>,
    archive: ArchiveConfig,
    pubsub: PubsubSettings,
    muc: MucSettings,
    disabled: Vec<String>,
}

impl ModuleSettings {
    /// The standard modules set up as the scenario says.
    fn set(&self, avatars: bool) -> ModuleSet {
        let mut set = ModuleSet::standard();
        set.configure(Push::new(self.push.clone()));
        set.configure(ExternalServices::new(self.turn.clone()));
        set.configure(Archiving::new(self.archive.clone()));
        set.configure(PubsubService::new(self.pubsub.clone()));
        set.configure(Muc::new(self.muc.clone()));
        for id in set.ids() {
            let disabled = |name: &str| self.disabled.iter().any(|d| d == name);
            // Avatar hashes come from the vCard.
            let avatars = avatars && !disabled("vcard");
            let off = disabled(id.name()) || (!avatars && id == xmpp_core::modules::avatar::ID);
            if off {
                set.remove(id);
            }
        }
        set
    }
}

fn parse_bool(v: &str) -> Result<bool, String> {
    match v {
        "yes" | "true" | "on" => Ok(true),
        "no" | "false" | "off" => Ok(false),
        _ => Err(format!("expected yes/no, got {v:?}")),
    }
}

fn parse_duration(v: &str) -> Result<u64, String> {
    let v = v.trim();
    let (num, mult) = if let Some(n) = v.strip_suffix("ms") {
        (n, 1)
    } else if let Some(n) = v.strip_suffix('s') {
        (n, 1000)
    } else if let Some(n) = v.strip_suffix('m') {
        (n, 60_000)
    } else if let Some(n) = v.strip_suffix('h') {
        (n, 3_600_000)
    } else if let Some(n) = v.strip_suffix('d') {
        (n, 86_400_000)
    } else {
        (v, 1)
    };
    num.trim()
        .parse::<u64>()
        .map(|n| n * mult)
        .map_err(|_| format!("bad duration {v:?}"))
}

/// `pubsub: [create=local|admins|nobody] [admins=a@d,b@d] [max_items=N]
/// [items_max=N] [item_bytes=N] [node_bytes=N] [nodes_per_owner=N] [subscriptions=N]
/// [pending=N]`: the XEP-0060 service's settings.
fn parse_pubsub(v: &str) -> Result<PubsubSettings, String> {
    let mut p = PubsubSettings::default();
    for pair in v.split_whitespace() {
        let (k, val) = pair
            .split_once('=')
            .ok_or_else(|| format!("expected key=value, got {pair:?}"))?;
        let num = |x: &str| x.parse::<usize>().map_err(|_| format!("bad number {x:?}"));
        match k {
            "create" => {
                p.create =
                    CreatePolicy::parse(val).ok_or_else(|| format!("bad create policy {val:?}"))?
            }
            "admins" => p.admins = val.split(',').map(str::to_owned).collect(),
            "max_items" => p.default_max_items = num(val)?,
            "items_max" => p.items_per_node_max = num(val)?,
            "item_bytes" => p.item_bytes_max = num(val)?,
            "node_bytes" => p.node_bytes_max = num(val)?,
            "nodes_per_owner" => p.nodes_per_owner_max = num(val)?,
            "subscriptions" => p.subscriptions_per_jid_max = num(val)?,
            "pending" => p.pending_max = num(val)?,
            _ => return Err(format!("unknown pubsub setting {k:?}")),
        }
    }
    Ok(p)
}

/// `muc: [create=anyone|local|admins] [admins=a@d,b@d] [history=N]
/// [occupants=N] [rooms=N] [rooms_per_user=N] [nick_bytes=N]
/// [subject_bytes=N] [voice_requests=N] [affiliations=N]
/// [relayed_iqs=N] [relayed_iq_timeout_ms=N] [listing_page=N] [persistent=yes] [locking=no]`: the XEP-0045 service's settings.
fn parse_muc(v: &str) -> Result<MucSettings, String> {
    let mut m = MucSettings::default();
    for pair in v.split_whitespace() {
        let (k, val) = pair
            .split_once('=')
            .ok_or_else(|| format!("expected key=value, got {pair:?}"))?;
        let num = |x: &str| x.parse::<usize>().map_err(|_| format!("bad number {x:?}"));
        match k {
            "create" => {
                m.create =
                    RoomCreation::parse(val).ok_or_else(|| format!("bad create policy {val:?}"))?
            }
            "admins" => m.admins = val.split(',').map(str::to_owned).collect(),
            "history" => m.max_history_messages = num(val)?,
            "occupants" => m.occupants_max = num(val)?,
            "rooms" => m.rooms_max = num(val)?,
            "rooms_per_user" => m.rooms_per_creator_max = num(val)?,
            "nick_bytes" => m.nick_bytes_max = num(val)?,
            "subject_bytes" => m.subject_bytes_max = num(val)?,
            "voice_requests" => m.voice_requests_max = num(val)?,
            "affiliations" => m.affiliations_max = num(val)?,
            "relayed_iqs" => m.relayed_iqs_max = num(val)?,
            "relayed_iq_timeout_ms" => m.relayed_iq_timeout_ms = num(val)? as u64,
            "listing_page" => m.listing_page_max = num(val)?,
            "persistent" => m.defaults.persistent = parse_bool(val)?,
            "locking" => m.lock_new_rooms = parse_bool(val)?,
            _ => return Err(format!("unknown muc setting {k:?}")),
        }
    }
    Ok(m)
}

/// `turn: host=H [port=P] [secret=S] [ttl=SECONDS] [tcp=yes] [tls_port=P] [user=U]`.
fn parse_turn(v: &str) -> Result<xmpp_core::modules::extdisco::TurnConfig, String> {
    let mut t = xmpp_core::modules::extdisco::TurnConfig {
        host: String::new(),
        port: 3478,
        secret: None,
        ttl_secs: 86_400,
        tcp: false,
        tls_port: None,
        user: None,
    };
    for pair in v.split_whitespace() {
        let (k, val) = pair
            .split_once('=')
            .ok_or_else(|| format!("expected key=value, got {pair:?}"))?;
        let num = |x: &str| x.parse::<u64>().map_err(|_| format!("bad number {x:?}"));
        match k {
            "host" => t.host = val.to_owned(),
            "port" => t.port = num(val)? as u16,
            "secret" => t.secret = Some(val.to_owned()),
            "ttl" => t.ttl_secs = num(val)?,
            "tcp" => t.tcp = parse_bool(val)?,
            "tls_port" => t.tls_port = Some(num(val)? as u16),
            "user" => t.user = Some(val.to_owned()),
            _ => return Err(format!("unknown turn setting {k:?}")),
        }
    }
    if t.host.is_empty() {
        return Err("turn needs host=".into());
    }
    Ok(t)
}

fn is_indented(line: &str) -> bool {
    line.starts_with(' ') || line.starts_with('\t')
}

fn parse_scenario(text: &str) -> Result<Scenario, String> {
    let mut sc = Scenario {
        expect_fail: None,
        clients: BTreeMap::new(),
        stream: ServerStreamConfig::default(),
        hub: HubConfig::default(),
        components: ComponentStreamConfig::default(),
        registration_limit: 0,
        avatars: false,
        modules: ModuleSettings::default(),
        steps: Vec::new(),
    };
    let lines: Vec<&str> = text.lines().collect();
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i];
        let lno = i + 1;
        let t = line.trim();
        i += 1;
        if let Some(reason) = t.strip_prefix("# expect-fail:") {
            sc.expect_fail = Some(reason.trim().to_owned());
            continue;
        }
        if t.is_empty() || t.starts_with('#') {
            continue;
        }
        if is_indented(line) {
            return Err(format!(
                "line {lno}: indented line outside a block or payload"
            ));
        }
        // Blocks: `[Client] name` / `[Server]`, then `key: value` lines.
        if t.starts_with('[') {
            let mut kv: Vec<(usize, String, String)> = Vec::new();
            while i < lines.len() && !lines[i].trim().is_empty() {
                let l = lines[i].trim();
                i += 1;
                if l.starts_with('#') {
                    continue;
                }
                let Some((k, v)) = l.split_once(':') else {
                    return Err(format!("line {i}: expected `key: value` in block"));
                };
                kv.push((i, k.trim().to_owned(), v.trim().to_owned()));
            }
            if let Some(name) = t.strip_prefix("[Client]") {
                let name = name.trim().to_owned();
                let mut jid = None;
                let mut password = None;
                let mut create_account = true;
                for (l, k, v) in kv {
                    match k.as_str() {
                        "jid" => jid = Some(Jid::parse(&v).map_err(|e| format!("line {l}: {e}"))?),
                        "password" => password = Some(v),
                        "account" => create_account = v != "none",
                        _ => return Err(format!("line {l}: unknown client key {k:?}")),
                    }
                }
                let def = ClientDef {
                    jid: jid.ok_or(format!("line {lno}: client {name} has no jid"))?,
                    password: password.unwrap_or_else(|| "password".into()),
                    create_account,
                    component: false,
                };
                sc.clients.insert(name, def);
            } else if let Some(name) = t.strip_prefix("[Component]") {
                let name = name.trim().to_owned();
                let mut jid = None;
                let mut secret = None;
                let mut configured = true;
                for (l, k, v) in kv {
                    match k.as_str() {
                        "jid" => {
                            jid = Some(Jid::domain_jid(&v).map_err(|e| format!("line {l}: {e}"))?)
                        }
                        "secret" => secret = Some(v),
                        "configured" => {
                            configured = parse_bool(&v).map_err(|e| format!("line {l}: {e}"))?
                        }
                        _ => return Err(format!("line {l}: unknown component key {k:?}")),
                    }
                }
                let jid = jid.ok_or(format!("line {lno}: component {name} has no jid"))?;
                let secret = secret.unwrap_or_else(|| "secret".into());
                if configured {
                    sc.components.components.push(ComponentSecret {
                        domain: jid.domain().to_owned(),
                        secret: secret.clone(),
                    });
                    sc.hub.components.push(jid.domain().to_owned());
                }
                let def = ClientDef {
                    jid,
                    password: secret,
                    create_account: false,
                    component: true,
                };
                sc.clients.insert(name, def);
            } else if t == "[Server]" {
                for (l, k, v) in kv {
                    let err = |e: String| format!("line {l}: {e}");
                    match k.as_str() {
                        "domains" => {
                            let d: Vec<String> = v.split_whitespace().map(str::to_owned).collect();
                            sc.stream.domains = d.clone();
                            sc.hub.domains = d;
                        }
                        "require_encryption" => {
                            sc.stream.require_encryption = parse_bool(&v).map_err(err)?
                        }
                        "starttls" => sc.stream.starttls_available = parse_bool(&v).map_err(err)?,
                        "mechanisms" => {
                            sc.stream.mechanisms = v
                                .split_whitespace()
                                .map(|m| {
                                    Mechanism::from_name(m)
                                        .ok_or_else(|| format!("line {l}: unknown mechanism {m}"))
                                })
                                .collect::<Result<_, _>>()?
                        }
                        "auth_timeout" => {
                            sc.stream.auth_timeout_ms = parse_duration(&v).map_err(err)?
                        }
                        "max_auth_failures" => {
                            sc.stream.max_auth_failures =
                                v.parse().map_err(|_| err(format!("bad number {v}")))?
                        }
                        "offline_messages" => {
                            if !parse_bool(&v).map_err(err)? {
                                sc.modules.disabled.push("offline".into());
                            }
                        }
                        "push_with_body" => {
                            sc.modules.push.with_body = parse_bool(&v).map_err(err)?
                        }
                        "push_with_sender" => {
                            sc.modules.push.with_sender = parse_bool(&v).map_err(err)?
                        }
                        "disabled" => {
                            let disabled: Vec<String> =
                                v.split_whitespace().map(str::to_owned).collect();
                            if disabled.iter().any(|m| m == "register") {
                                sc.stream.registration = None;
                            }
                            sc.modules.disabled.extend(disabled);
                            if sc.modules.disabled.iter().any(|m| m == "smacks") {
                                sc.stream.sm = None;
                            }
                        }
                        "allow_registration" => {
                            let allow = parse_bool(&v).map_err(err)?;
                            if let Some(r) = sc.stream.registration.as_mut() {
                                r.allow_registration = allow;
                            }
                        }
                        "min_password_length" => {
                            let n = v.parse().map_err(|_| err(format!("bad number {v}")))?;
                            if let Some(r) = sc.stream.registration.as_mut() {
                                r.min_password_length = n;
                            }
                        }
                        "sm_max_unacked" => {
                            let n = v.parse().map_err(|_| err(format!("bad number {v}")))?;
                            if let Some(sm) = sc.stream.sm.as_mut() {
                                sm.max_unacked = n;
                            }
                        }
                        "max_sessions" => {
                            let n = v.parse().map_err(|_| err(format!("bad number {v}")))?;
                            sc.hub.quotas.max_sessions = n;
                        }
                        "turn" => sc.modules.turn = Some(parse_turn(&v).map_err(err)?),
                        "pubsub" => sc.modules.pubsub = parse_pubsub(&v).map_err(err)?,
                        "muc" => sc.modules.muc = parse_muc(&v).map_err(err)?,
                        "avatars" => sc.avatars = parse_bool(&v).map_err(err)?,
                        "registration_limit" => {
                            sc.registration_limit = parse_duration(&v).map_err(err)?
                        }
                        "archive_default" => {
                            sc.modules.archive.default_pref = DefaultPref::parse(&v)
                                .ok_or_else(|| err(format!("bad archive default {v:?}")))?
                        }
                        "archive_retention" => {
                            sc.modules.archive.retention = Some(parse_duration(&v).map_err(err)?)
                        }
                        "archive_max_page" => {
                            sc.modules.archive.max_page =
                                v.parse().map_err(|_| err(format!("bad number {v}")))?
                        }
                        _ => return Err(format!("line {l}: unknown server key {k:?}")),
                    }
                }
            } else {
                return Err(format!("line {lno}: unknown block {t}"));
            }
            continue;
        }
        // A step; `...:` takes the following indented lines as payload.
        let mut payload = String::new();
        if t.ends_with(':') {
            while i < lines.len() && (is_indented(lines[i]) || lines[i].trim().is_empty()) {
                payload.push_str(lines[i].trim());
                i += 1;
            }
            if payload.is_empty() {
                return Err(format!("line {lno}: `{t}` needs an indented payload"));
            }
        }
        sc.steps.push((
            lno,
            parse_step(t, payload).map_err(|e| format!("line {lno}: {e}"))?,
        ));
    }
    for (lno, step) in &sc.steps {
        let name = match step {
            Step::Connects(n)
            | Step::ConnectsUnbound(n)
            | Step::ConnectsRaw(n, _)
            | Step::Sends(n, ..)
            | Step::Receives(n, _)
            | Step::ReceivesNothing(n)
            | Step::Disconnects(n)
            | Step::IsDisconnected(n)
            | Step::Authenticates { client: n, .. }
            | Step::Handshakes(n, _) => n,
            Step::TimePasses(_) => continue,
        };
        if !sc.clients.contains_key(name) {
            return Err(format!("line {lno}: unknown client {name:?}"));
        }
    }
    Ok(sc)
}

fn parse_step(t: &str, payload: String) -> Result<Step, String> {
    if let Some(d) = t.strip_prefix("time passes") {
        return Ok(Step::TimePasses(parse_duration(d)?));
    }
    let (raw, rest) = match t.strip_prefix("raw ") {
        Some(r) => (true, r),
        None => (false, t),
    };
    let (name, verb) = rest
        .split_once(' ')
        .ok_or_else(|| format!("cannot read step {t:?}"))?;
    let name = name.to_owned();
    let words: Vec<&str> = verb.split_whitespace().collect();
    let auth = |must_succeed: bool, opts: &[&str]| -> Result<Step, String> {
        let mut mech = None;
        let mut password = None;
        let mut it = opts.iter();
        while let Some(w) = it.next() {
            match *w {
                "with" => mech = it.next().map(|m| (*m).to_owned()),
                "password" => password = it.next().map(|p| (*p).to_owned()),
                other => return Err(format!("unexpected {other:?} in authenticate step")),
            }
        }
        Ok(Step::Authenticates {
            client: name.clone(),
            mech,
            password,
            must_succeed,
        })
    };
    match words.as_slice() {
        ["connects"] if raw => Ok(Step::ConnectsRaw(name, false)),
        ["connects", "with", "direct-tls"] if raw => Ok(Step::ConnectsRaw(name, true)),
        ["connects"] => Ok(Step::Connects(name)),
        ["connects", "without", "binding"] => Ok(Step::ConnectsUnbound(name)),
        ["sends:"] => Ok(Step::Sends(name, raw, payload)),
        ["receives:"] => Ok(Step::Receives(name, payload)),
        ["receives", "nothing"] => Ok(Step::ReceivesNothing(name)),
        ["disconnects"] => Ok(Step::Disconnects(name)),
        ["is", "disconnected"] => Ok(Step::IsDisconnected(name)),
        ["authenticates", opts @ ..] => auth(true, opts),
        ["handshakes"] => Ok(Step::Handshakes(name, None)),
        ["handshakes", "with", "secret", s] => Ok(Step::Handshakes(name, Some((*s).to_owned()))),
        ["tries", "to", "authenticate", opts @ ..] => auth(false, opts),
        _ => Err(format!("unknown step {t:?}")),
    }
}

// ------------------------------------------------------- events and matching

#[derive(Debug, Clone, PartialEq)]
enum Ev {
    Open(Element),
    El(Element),
    Close,
}

impl std::fmt::Display for Ev {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Ev::Open(h) => {
                let mut e = h.clone();
                e.children.clear();
                write!(f, "stream header {}", e.to_xml())
            }
            Ev::El(e) => f.write_str(&e.to_xml()),
            Ev::Close => f.write_str("</stream:stream>"),
        }
    }
}

/// The synthetic stream expected payloads are read in: `jabber:client`, or
/// `jabber:component:accept` for a component's connection.
fn stream_prefix(content_ns: &str) -> String {
    format!("<stream:stream xmlns='{content_ns}' xmlns:stream='http://etherx.jabber.org/streams'>")
}

fn big_limits() -> Limits {
    Limits {
        max_stanza_bytes: 1 << 20,
        max_depth: 64,
        ..Limits::default()
    }
}

/// Parse expected XML into events. Text that does not start with a stream
/// header is read inside a synthetic stream of `content_ns` (`jabber:client`,
/// or `jabber:component:accept` for a component), so `stream:` is bound and
/// `</stream:stream>` means "the stream closes".
fn parse_events_in(text: &str, content_ns: &str) -> Result<Vec<Ev>, String> {
    let t = text.trim_start();
    let has_header = t.starts_with("<stream:stream") || t.starts_with("<?xml");
    let mut p = StreamParser::new(big_limits());
    if !has_header {
        p.feed(stream_prefix(content_ns).as_bytes());
    }
    p.feed(t.as_bytes());
    // A trailing space lets the parser finish a last self-closing element.
    p.feed(b" ");
    let mut out = Vec::new();
    loop {
        match p.next_event() {
            Ok(Some(StreamEvent::Open(h))) => out.push(Ev::Open(h)),
            Ok(Some(StreamEvent::Stanza(e))) => out.push(Ev::El(e)),
            Ok(Some(StreamEvent::Close)) => out.push(Ev::Close),
            Ok(None) => break,
            Err(e) => return Err(format!("cannot parse XML in script: {e}\n{text}")),
        }
    }
    if !has_header && !out.is_empty() {
        out.remove(0);
    }
    if out.is_empty() {
        return Err(format!("no complete element in script payload: {text}"));
    }
    Ok(out)
}

/// `{any}` in a pattern matches any run of characters.
fn glob(pattern: &str, s: &str) -> bool {
    let parts: Vec<&str> = pattern.split("{any}").collect();
    if parts.len() == 1 {
        return pattern == s;
    }
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if !s.starts_with(first) || s.len() < first.len() + last.len() || !s.ends_with(last) {
        return false;
    }
    let mut rest = &s[first.len()..s.len() - last.len()];
    for mid in &parts[1..parts.len() - 1] {
        match rest.find(mid) {
            Some(pos) => rest = &rest[pos + mid.len()..],
            None => return false,
        }
    }
    true
}

fn attr_name(ns: &str, name: &str) -> String {
    if ns.is_empty() {
        name.to_owned()
    } else if ns == xmpp_core::xml::XML_NS {
        format!("xml:{name}")
    } else {
        format!("{{{ns}}}{name}")
    }
}

/// Values captured with `{$name}` in expected attributes, substituted into
/// later payloads.
type Vars = BTreeMap<String, String>;

/// `{$name}` as a whole attribute value: the name.
fn capture_name(pattern: &str) -> Option<&str> {
    pattern.strip_prefix("{$")?.strip_suffix('}')
}

/// Replace every `{$name}` with its captured value.
fn substitute(text: &str, vars: &Vars) -> Result<String, String> {
    let mut out = String::new();
    let mut rest = text;
    while let Some(start) = rest.find("{$") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after.find('}').ok_or("unterminated {$name}")?;
        let name = &after[..end];
        let value = vars
            .get(name)
            .ok_or_else(|| format!("{{${name}}} used before it was captured"))?;
        out.push_str(value);
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

fn compare_attrs(exp: &Element, act: &Element, path: &str, vars: &mut Vars) -> Result<(), String> {
    for a in &exp.attrs {
        if let Some(name) = capture_name(&a.value) {
            match act.attrs.iter().find(|b| b.ns == a.ns && b.name == a.name) {
                // Captured before: the value must be the same again.
                Some(b) if vars.get(name).is_some_and(|v| *v != b.value) => {
                    return Err(format!(
                        "{path}: attribute {} is {:?}, expected {{${name}}} = {:?}",
                        attr_name(&a.ns, &a.name),
                        b.value,
                        vars.get(name).cloned().unwrap_or_default()
                    ))
                }
                Some(b) => {
                    vars.insert(name.to_owned(), b.value.clone());
                    continue;
                }
                None => {
                    return Err(format!(
                        "{path}: missing attribute {}",
                        attr_name(&a.ns, &a.name)
                    ))
                }
            }
        }
        match act.attrs.iter().find(|b| b.ns == a.ns && b.name == a.name) {
            None => {
                return Err(format!(
                    "{path}: missing attribute {}",
                    attr_name(&a.ns, &a.name)
                ))
            }
            Some(b) if !glob(&a.value, &b.value) => {
                return Err(format!(
                    "{path}: attribute {} is {:?}, expected {:?}",
                    attr_name(&a.ns, &a.name),
                    b.value,
                    a.value
                ))
            }
            Some(_) => {}
        }
    }
    for b in &act.attrs {
        if !exp.attrs.iter().any(|a| a.ns == b.ns && a.name == b.name) {
            return Err(format!(
                "{path}: unexpected attribute {}={:?}",
                attr_name(&b.ns, &b.name),
                b.value
            ));
        }
    }
    Ok(())
}

fn significant(e: &Element) -> Vec<&Node> {
    e.children
        .iter()
        .filter(|n| !matches!(n, Node::Text(t) if t.trim().is_empty()))
        .collect()
}

/// Semantic comparison: namespaces and names equal, attributes equal as sets
/// (values may use `{any}`), children equal in order, whitespace-only text
/// ignored and text compared trimmed.
fn compare(exp: &Element, act: &Element, path: &str, vars: &mut Vars) -> Result<(), String> {
    let path = format!("{path}/{}", act.name);
    if exp.ns != act.ns || exp.name != act.name {
        return Err(format!(
            "{path}: got {{{}}}{}, expected {{{}}}{}",
            act.ns, act.name, exp.ns, exp.name
        ));
    }
    compare_attrs(exp, act, &path, vars)?;
    let (en, an) = (significant(exp), significant(act));
    if en.len() != an.len() {
        return Err(format!(
            "{path}: {} children, expected {}",
            an.len(),
            en.len()
        ));
    }
    for (e, a) in en.iter().zip(an.iter()) {
        match (e, a) {
            (Node::Element(e), Node::Element(a)) => compare(e, a, &path, vars)?,
            (Node::Text(e), Node::Text(a)) => {
                // `{$name}` as the whole text captures it, as in attributes.
                if let Some(name) = capture_name(e.trim()) {
                    match vars.get(name) {
                        Some(v) if v != a.trim() => {
                            return Err(format!(
                                "{path}: text {:?}, expected {{${name}}} = {v:?}",
                                a.trim()
                            ))
                        }
                        Some(_) => {}
                        None => {
                            vars.insert(name.to_owned(), a.trim().to_owned());
                        }
                    }
                    continue;
                }
                if !glob(e.trim(), a.trim()) {
                    return Err(format!(
                        "{path}: text {:?}, expected {:?}",
                        a.trim(),
                        e.trim()
                    ));
                }
            }
            _ => return Err(format!("{path}: element/text mismatch")),
        }
    }
    Ok(())
}

fn compare_ev(exp: &Ev, act: &Ev, vars: &mut Vars) -> Result<(), String> {
    match (exp, act) {
        (Ev::Open(e), Ev::Open(a)) => compare_attrs(e, a, "stream header", vars),
        (Ev::El(e), Ev::El(a)) => compare(e, a, "", vars),
        (Ev::Close, Ev::Close) => Ok(()),
        _ => Err("different kind of event".into()),
    }
}

// ------------------------------------------------------------------- runner

/// One client's connection as the script sees it: the server's bytes parsed
/// into a queue of events.
struct Conn {
    id: ConnId,
    parser: StreamParser,
    events: VecDeque<Ev>,
    /// The content namespace of the stream (what expected payloads are
    /// read in).
    content_ns: &'static str,
    /// The `id` of the server's last stream header (a component's handshake
    /// hashes it).
    stream_id: Option<String>,
}

impl Conn {
    fn new(id: ConnId) -> Self {
        Conn {
            id,
            parser: StreamParser::new(big_limits()),
            events: VecDeque::new(),
            content_ns: ns::CLIENT,
            stream_id: None,
        }
    }

    fn component(id: ConnId) -> Self {
        Conn {
            content_ns: xmpp_core::stream::component::NS,
            ..Conn::new(id)
        }
    }

    /// Parse what the server wrote. After `<proceed/>` (TLS) and SASL
    /// `<success/>` a new stream begins, so the parser restarts there.
    fn fill(&mut self, world: &mut World) -> Result<(), String> {
        let bytes = world.take_server_output(self.id);
        self.parser.feed(&bytes);
        loop {
            match self.parser.next_event() {
                Ok(Some(StreamEvent::Open(h))) => {
                    self.stream_id = h.attr("id").map(str::to_owned);
                    self.events.push_back(Ev::Open(h));
                }
                Ok(Some(StreamEvent::Stanza(e))) => {
                    if e.is(ns::TLS, "proceed") || e.is(ns::SASL, "success") {
                        self.parser.restart();
                    }
                    self.events.push_back(Ev::El(e));
                }
                Ok(Some(StreamEvent::Close)) => self.events.push_back(Ev::Close),
                Ok(None) => return Ok(()),
                Err(e) => return Err(format!("server sent malformed XML: {e}")),
            }
        }
    }

    fn next(&mut self, world: &mut World) -> Result<Ev, String> {
        self.fill(world)?;
        self.events
            .pop_front()
            .ok_or_else(|| "expected more from the server, got nothing".to_owned())
    }

    fn next_el(&mut self, world: &mut World, what: &str) -> Result<Element, String> {
        match self.next(world)? {
            Ev::El(e) => Ok(e),
            other => Err(format!("expected {what}, got {other}")),
        }
    }
}

fn header(domain: &str) -> String {
    format!(
        "<?xml version='1.0'?><stream:stream xmlns='jabber:client' \
         xmlns:stream='http://etherx.jabber.org/streams' to='{domain}' version='1.0'>"
    )
}

fn b64(data: &[u8]) -> String {
    if data.is_empty() {
        "=".into()
    } else {
        base64::engine::general_purpose::STANDARD.encode(data)
    }
}

fn unb64(text: &str) -> Result<Vec<u8>, String> {
    let t = text.trim();
    if t.is_empty() || t == "=" {
        return Ok(Vec::new());
    }
    base64::engine::general_purpose::STANDARD
        .decode(t)
        .map_err(|e| format!("server sent bad base64: {e}"))
}

/// Open a stream and return the features.
fn open_stream(world: &mut World, c: &mut Conn, domain: &str) -> Result<Element, String> {
    world.client_sends(c.id, header(domain).as_bytes());
    match c.next(world)? {
        Ev::Open(_) => {}
        other => return Err(format!("expected a stream header, got {other}")),
    }
    let f = c.next_el(world, "stream features")?;
    if !f.is(ns::STREAM, "features") {
        return Err(format!("expected stream features, got {}", f.to_xml()));
    }
    Ok(f)
}

/// Run a SASL exchange with a real client implementation; returns the
/// server's final answer (`<success/>` verified, or `<failure/>`).
fn sasl(
    world: &mut World,
    c: &mut Conn,
    mech: Mechanism,
    user: &str,
    password: &str,
) -> Result<Element, String> {
    let id = c.id;
    let send = |world: &mut World, el: Element| {
        let mut buf = Vec::new();
        el.write_to(&mut buf, ns::CLIENT);
        world.client_sends(id, &buf);
    };
    let auth = |payload: &[u8]| {
        Element::new(ns::SASL, "auth")
            .with_attr("mechanism", mech.name())
            .with_text(b64(payload))
    };
    if mech == Mechanism::Plain {
        send(world, auth(&plain_message(None, user, password)));
        return c.next_el(world, "the SASL outcome");
    }
    let binding = if mech.is_plus() {
        World::fake_bindings(c.id)
            .into_iter()
            .find(|b| b.kind == ChannelBindingType::TlsExporter)
    } else {
        None
    };
    let nonce = [0x5a_u8; 24];
    let (mut client, first) = ScramClient::new(mech, user, password, &nonce, binding, false)
        .map_err(|e| format!("ScramClient refused to start: {e:?}"))?;
    send(world, auth(&first));
    let challenge = c.next_el(world, "a SASL challenge")?;
    if !challenge.is(ns::SASL, "challenge") {
        return Ok(challenge);
    }
    match client.handle_server_first(&unb64(&challenge.text())?) {
        Ok(fin) => send(
            world,
            Element::new(ns::SASL, "response").with_text(b64(&fin)),
        ),
        Err(e) => return Err(format!("client rejected server-first: {e:?}")),
    }
    let outcome = c.next_el(world, "the SASL outcome")?;
    if outcome.is(ns::SASL, "success") {
        client
            .verify_server_final(&unb64(&outcome.text())?)
            .map_err(|e| format!("server signature does not verify: {e:?}"))?;
    }
    Ok(outcome)
}

fn offered_mechanisms(features: &Element) -> Vec<Mechanism> {
    features
        .child(ns::SASL, "mechanisms")
        .map(|m| {
            m.elements()
                .filter_map(|e| Mechanism::from_name(e.text().trim()))
                .collect()
        })
        .unwrap_or_default()
}

/// `alice connects`: STARTTLS when offered, the server's first SCRAM
/// mechanism, resource binding.
fn login(world: &mut World, def: &ClientDef, bind: bool) -> Result<Conn, String> {
    let mut c = Conn::new(world.connect(false));
    let domain = def.jid.domain().to_owned();
    let mut features = open_stream(world, &mut c, &domain)?;
    if features.child(ns::TLS, "starttls").is_some() {
        world.client_sends(c.id, b"<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>");
        let p = c.next_el(world, "<proceed/>")?;
        if !p.is(ns::TLS, "proceed") {
            return Err(format!("expected <proceed/>, got {}", p.to_xml()));
        }
        features = open_stream(world, &mut c, &domain)?;
    }
    let mech = offered_mechanisms(&features)
        .into_iter()
        .find(|m| m.is_scram())
        .ok_or_else(|| format!("no SCRAM mechanism offered: {}", features.to_xml()))?;
    let user = def.jid.local().unwrap_or_default().to_owned();
    let outcome = sasl(world, &mut c, mech, &user, &def.password)?;
    if !outcome.is(ns::SASL, "success") {
        return Err(format!("authentication failed: {}", outcome.to_xml()));
    }
    let features = open_stream(world, &mut c, &domain)?;
    if !bind {
        return Ok(c);
    }
    if features.child(ns::BIND, "bind").is_none() {
        return Err(format!(
            "no resource binding offered: {}",
            features.to_xml()
        ));
    }
    let resource = def
        .jid
        .resource()
        .map(|r| format!("<resource>{r}</resource>"))
        .unwrap_or_default();
    let bind = format!(
        "<iq type='set' id='bind'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'>{resource}</bind></iq>"
    );
    world.client_sends(c.id, bind.as_bytes());
    let r = c.next_el(world, "the bind result")?;
    if r.attr("type") != Some("result") {
        return Err(format!("bind failed: {}", r.to_xml()));
    }
    Ok(c)
}

/// `pusher connects` for a component: header, handshake, `<handshake/>`.
fn component_login(world: &mut World, def: &ClientDef) -> Result<Conn, String> {
    let mut c = Conn::component(world.connect_component());
    let header = format!(
        "<stream:stream xmlns='jabber:component:accept' \
         xmlns:stream='http://etherx.jabber.org/streams' to='{}'>",
        def.jid
    );
    world.client_sends(c.id, header.as_bytes());
    match c.next(world)? {
        Ev::Open(_) => {}
        other => return Err(format!("expected a stream header, got {other}")),
    }
    handshake(world, &mut c, &def.password)?;
    let ok = c.next_el(world, "<handshake/>")?;
    if !ok.is(xmpp_core::stream::component::NS, "handshake") {
        return Err(format!("handshake refused: {}", ok.to_xml()));
    }
    Ok(c)
}

/// Send `<handshake>` for the stream id the server announced.
fn handshake(world: &mut World, c: &mut Conn, secret: &str) -> Result<(), String> {
    c.fill(world)?;
    let id = c
        .stream_id
        .clone()
        .ok_or("no stream id from the server to hash")?;
    let digest = handshake_digest(&id, secret);
    world.client_sends(c.id, format!("<handshake>{digest}</handshake>").as_bytes());
    Ok(())
}

fn run_scenario(sc: &Scenario) -> Result<(), (usize, String)> {
    let mut hub = sc.hub.clone();
    hub.modules = sc.modules.set(sc.avatars);
    let mut world = World::new(sc.stream.clone(), hub);
    world.set_registration_limit(sc.registration_limit);
    world.set_component_config(sc.components.clone());
    for def in sc.clients.values() {
        let account = def.jid.bare_str();
        if def.create_account && !world.store().has_account(&account) {
            world.add_user(&account, &def.password);
        }
    }
    let mut conns: BTreeMap<String, Conn> = BTreeMap::new();
    let mut vars = Vars::new();
    for (lno, step) in &sc.steps {
        run_step(&mut world, sc, &mut conns, &mut vars, step).map_err(|e| (*lno, e))?;
    }
    Ok(())
}

fn conn<'a>(conns: &'a mut BTreeMap<String, Conn>, name: &str) -> Result<&'a mut Conn, String> {
    conns
        .get_mut(name)
        .ok_or_else(|| format!("{name} is not connected"))
}

fn run_step(
    world: &mut World,
    sc: &Scenario,
    conns: &mut BTreeMap<String, Conn>,
    vars: &mut Vars,
    step: &Step,
) -> Result<(), String> {
    let def = |name: &str| {
        sc.clients
            .get(name)
            .cloned()
            .ok_or_else(|| format!("unknown client {name}"))
    };
    match step {
        Step::Connects(name) => {
            let d = def(name)?;
            let c = if d.component {
                component_login(world, &d)
            } else {
                login(world, &d, true)
            };
            conns.insert(
                name.clone(),
                c.map_err(|e| format!("{name} connects: {e}"))?,
            );
        }
        Step::ConnectsUnbound(name) => {
            let c =
                login(world, &def(name)?, false).map_err(|e| format!("{name} connects: {e}"))?;
            conns.insert(name.clone(), c);
        }
        Step::ConnectsRaw(name, tls) => {
            let c = if def(name)?.component {
                Conn::component(world.connect_component())
            } else {
                Conn::new(world.connect(*tls))
            };
            conns.insert(name.clone(), c);
        }
        Step::Handshakes(name, secret) => {
            let secret = secret.clone().unwrap_or(def(name)?.password);
            handshake(world, conn(conns, name)?, &secret)?;
        }
        Step::Sends(name, raw, payload) => {
            let c = conn(conns, name)?;
            let payload = &substitute(payload, vars)?;
            if !raw {
                parse_events_in(payload, c.content_ns)?;
            }
            world.client_sends(c.id, payload.as_bytes());
        }
        Step::Receives(name, payload) => {
            let c = conn(conns, name)?;
            // Captured values stand for themselves (also in text); the
            // others are captured by this step.
            let payload = vars.iter().fold(payload.clone(), |p, (k, v)| {
                p.replace(&format!("{{${k}}}"), v)
            });
            let expected = parse_events_in(&payload, c.content_ns)?;
            for exp in expected {
                let act = c
                    .next(world)
                    .map_err(|e| format!("{e}\n  expected: {exp}"))?;
                compare_ev(&exp, &act, vars).map_err(|e| {
                    format!(
                        "{name} received something else: {e}\n  expected: {exp}\n  received: {act}"
                    )
                })?;
            }
        }
        Step::ReceivesNothing(name) => {
            let c = conn(conns, name)?;
            c.fill(world)?;
            if let Some(ev) = c.events.front() {
                return Err(format!("{name} should receive nothing, got: {ev}"));
            }
        }
        Step::Authenticates {
            client,
            mech,
            password,
            must_succeed,
        } => {
            let d = def(client)?;
            let mech = match mech {
                Some(m) => Mechanism::from_name(m).ok_or(format!("unknown mechanism {m}"))?,
                None => Mechanism::ScramSha256,
            };
            let pw = password.clone().unwrap_or(d.password.clone());
            let user = d.jid.local().unwrap_or_default().to_owned();
            let c = conn(conns, client)?;
            let outcome = sasl(world, c, mech, &user, &pw)?;
            if *must_succeed {
                if !outcome.is(ns::SASL, "success") {
                    return Err(format!("authentication failed: {}", outcome.to_xml()));
                }
            } else {
                c.events.push_front(Ev::El(outcome));
            }
        }
        Step::Disconnects(name) => {
            let c = conn(conns, name)?;
            world.disconnect(c.id);
        }
        Step::IsDisconnected(name) => {
            let c = conn(conns, name)?;
            if !world.is_closed(c.id) {
                return Err(format!("{name}'s connection is still open"));
            }
        }
        Step::TimePasses(ms) => world.advance(*ms),
    }
    Ok(())
}

fn transcript_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../spec/transcripts")
}

#[test]
fn transcripts() {
    let filter = std::env::var("TRANSCRIPT").ok();
    let mut files: Vec<PathBuf> = std::fs::read_dir(transcript_dir())
        .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    files.retain(|p| p.extension().is_some_and(|e| e == "scn"));
    files.sort();
    assert!(
        !files.is_empty(),
        "no transcripts in {:?}",
        transcript_dir()
    );
    let mut failures = Vec::new();
    let mut known = Vec::new();
    let mut ran = 0;
    for path in &files {
        let file = path
            .file_name()
            .map(|f| f.to_string_lossy().into_owned())
            .unwrap_or_default();
        if filter.as_ref().is_some_and(|f| !file.contains(f.as_str())) {
            continue;
        }
        ran += 1;
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) => {
                failures.push(format!("{file}: {e}"));
                continue;
            }
        };
        let sc = match parse_scenario(&text) {
            Ok(sc) => sc,
            Err(e) => {
                failures.push(format!("{file}: {e}"));
                continue;
            }
        };
        match (run_scenario(&sc), &sc.expect_fail) {
            (Ok(()), None) => println!("ok      {file}"),
            (Ok(()), Some(reason)) => failures.push(format!(
                "{file}: marked `expect-fail: {reason}` but passes; remove the marker"
            )),
            (Err((line, e)), None) => failures.push(format!("{file}:{line}: {e}")),
            (Err((line, e)), Some(reason)) => {
                println!("xfail   {file}:{line}: {reason}\n        {e}");
                known.push(file);
            }
        }
    }
    println!(
        "{ran} transcripts, {} failed, {} known failures",
        failures.len(),
        known.len()
    );
    assert!(failures.is_empty(), "\n{}\n", failures.join("\n\n"));
}

#[test]
fn glob_matches() {
    assert!(glob("{any}", "x"));
    assert!(glob("a{any}c", "abbbc"));
    assert!(glob("alice@localhost/{any}", "alice@localhost/r1"));
    assert!(!glob("alice@localhost/{any}", "bob@localhost/r1"));
    assert!(!glob("ab", "abc"));
    assert!(glob("a{any}b{any}c", "a1b2c"));
    assert!(!glob("a{any}a", "a"));
}
