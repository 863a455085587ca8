//! Vireo's stored data ↔ XEP-0227 elements, both ways.
//!
//! Each pair is written so that reading what was written gives back the
//! same stored value, which is what makes export → import → export
//! byte-identical. Reading also accepts what Prosody and ejabberd write
//! (their attribute spellings, their extra form fields), and anything it
//! cannot use is a [`Skip`] with the reason, never a panic.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;

use super::{NS_PIE_SCRAM, NS_PUBSUB, NS_PUBSUB_OWNER, NS_VIREO};
use crate::archive::{bare_of, ArchiveId, ArchivedMessage};
use crate::jid::Jid;
use crate::modules::data_form::{parse_form, DATA};
use crate::modules::pep::access::Affiliation;
use crate::modules::pep::config::NodeConfig;
use crate::modules::pep::store::Node;
use crate::sasl::{ScramKeys, StoredCredentials};
use crate::storage::{RosterItem, Subscription};
use crate::time::{format_datetime, parse_datetime, Millis};
use crate::xml::Element;

/// Why a unit was left out of an import (it is counted and reported,
/// and the import goes on).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Skip(pub String);

fn skip<T>(why: impl Into<String>) -> Result<T, Skip> {
    Err(Skip(why.into()))
}

const NS_ROSTER: &str = "jabber:iq:roster";
const NS_CLIENT: &str = "jabber:client";
const NS_MAM: &str = "urn:xmpp:mam:2";
const NS_FORWARD: &str = "urn:xmpp:forward:0";
const NS_DELAY: &str = "urn:xmpp:delay";

// ---------------------------------------------------------------- SCRAM

/// The hash a `<scram-credentials mechanism>` names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScramHash {
    /// SCRAM-SHA-1.
    Sha1,
    /// SCRAM-SHA-256.
    Sha256,
}

/// One `<scram-credentials/>` element, decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScramRecord {
    /// Which hash.
    pub hash: ScramHash,
    /// PBKDF2 iterations.
    pub iterations: u32,
    /// The salt.
    pub salt: Vec<u8>,
    /// The keys.
    pub keys: ScramKeys,
}

/// The `<scram-credentials/>` elements of stored credentials: one per hash
/// whose keys the account has, SHA-1 first.
pub fn scram_elements(c: &StoredCredentials) -> Vec<Element> {
    let mut out = Vec::new();
    for (mechanism, keys) in [("SCRAM-SHA-1", &c.sha1), ("SCRAM-SHA-256", &c.sha256)] {
        if !keys.is_present() {
            continue;
        }
        let text = |name: &str, value: String| Element::new(NS_PIE_SCRAM, name).with_text(value);
        out.push(
            Element::new(NS_PIE_SCRAM, "scram-credentials")
                .with_attr("mechanism", mechanism)
                .with_child(text("iter-count", c.iterations.to_string()))
                .with_child(text("salt", B64.encode(&c.salt)))
                .with_child(text("server-key", B64.encode(&keys.server_key)))
                .with_child(text("stored-key", B64.encode(&keys.stored_key))),
        );
    }
    out
}

/// Decode a `<scram-credentials/>` element.
pub fn parse_scram(e: &Element) -> Result<ScramRecord, Skip> {
    let hash = match e.attr("mechanism") {
        Some("SCRAM-SHA-1") => ScramHash::Sha1,
        Some("SCRAM-SHA-256") => ScramHash::Sha256,
        Some(other) => return skip(format!("{other} keys (Vireo uses SCRAM-SHA-1 and -256)")),
        None => return skip("scram-credentials without a mechanism"),
    };
    let field = |name: &str| {
        e.child(NS_PIE_SCRAM, name)
            .map(|c| c.text().trim().to_owned())
            .ok_or_else(|| Skip(format!("scram-credentials without <{name}>")))
    };
    let b64 = |name: &str| {
        let text = field(name)?;
        B64.decode(text.as_bytes())
            .map_err(|_| Skip(format!("<{name}> is not base64")))
    };
    let iterations = field("iter-count")?
        .parse::<u32>()
        .map_err(|_| Skip("<iter-count> is not a number".into()))?;
    let (mut salt, mut stored_key, mut server_key) =
        (b64("salt")?, b64("stored-key")?, b64("server-key")?);
    // ejabberd keeps salt and keys as base64 text and its export_piefxis
    // (23.01) base64-encodes that text again: keys that are not a hash
    // long but decode once more to one are taken that way, and so is the
    // salt beside them.
    let len = match hash {
        ScramHash::Sha1 => 20,
        ScramHash::Sha256 => 32,
    };
    let again = |raw: &[u8]| B64.decode(raw).ok();
    if stored_key.len() != len || server_key.len() != len {
        if let (Some(st), Some(sv)) = (again(&stored_key), again(&server_key)) {
            if st.len() == len && sv.len() == len {
                stored_key = st;
                server_key = sv;
                salt = again(&salt).unwrap_or(salt);
            }
        }
    }
    Ok(ScramRecord {
        hash,
        iterations,
        salt,
        keys: ScramKeys {
            stored_key,
            server_key,
        },
    })
}

/// Credentials from the SCRAM records of one account. Records for both
/// hashes must share salt and iteration count (Vireo keeps one of each);
/// when they do not, SHA-256 wins and the SHA-1 keys are dropped (the
/// second value says so).
pub fn credentials_from_scram(
    records: &[ScramRecord],
) -> Result<(StoredCredentials, Option<Skip>), Skip> {
    let find = |h| records.iter().rev().find(|r| r.hash == h);
    let (sha1, sha256) = (find(ScramHash::Sha1), find(ScramHash::Sha256));
    let (base, mut dropped) = match (sha1, sha256) {
        (None, None) => return skip("no usable SCRAM keys"),
        (Some(a), Some(b)) if a.salt != b.salt || a.iterations != b.iterations => (
            b,
            Some(Skip(
                "SCRAM-SHA-1 keys dropped: salt or iterations differ from SHA-256's".into(),
            )),
        ),
        (Some(a), None) => (a, None),
        (_, Some(b)) => (b, None),
    };
    let keep = |r: Option<&ScramRecord>| {
        r.filter(|r| r.salt == base.salt && r.iterations == base.iterations)
            .map(|r| r.keys.clone())
    };
    let creds =
        StoredCredentials::imported(base.iterations, base.salt.clone(), keep(sha1), keep(sha256))
            .ok_or_else(|| Skip("SCRAM keys of the wrong length, or an empty salt".into()))?;
    if creds.iterations < crate::sasl::MIN_ITERATIONS && dropped.is_none() {
        dropped = Some(Skip(format!(
            "{} PBKDF2 iterations, below the 4096 clients require",
            creds.iterations
        )));
    }
    Ok((creds, dropped))
}

// --------------------------------------------------------------- roster

/// The `<item/>` of a roster entry in the roster (`in_roster`), `None`
/// for a contact that only asked to subscribe (see
/// [`subscribe_request`]).
pub fn roster_item_element(item: &RosterItem) -> Option<Element> {
    if !item.in_roster {
        return None;
    }
    let mut e = Element::new(NS_ROSTER, "item")
        .with_attr("jid", item.jid.clone())
        .with_attr("subscription", item.subscription.as_attr());
    if let Some(name) = &item.name {
        e.set_attr("name", name.clone());
    }
    if item.subscription.pending_out {
        e.set_attr("ask", "subscribe");
    }
    for g in &item.groups {
        e = e.with_child(Element::new(NS_ROSTER, "group").with_text(g.clone()));
    }
    Some(e)
}

/// The `<presence type='subscribe'/>` XEP-0227 keeps for a contact whose
/// subscription request waits for the user (pending in), as Prosody and
/// ejabberd write it.
pub fn subscribe_request(item: &RosterItem, account: &str) -> Option<Element> {
    item.subscription.pending_in.then(|| {
        Element::new(NS_CLIENT, "presence")
            .with_attr("from", item.jid.clone())
            .with_attr("to", account)
            .with_attr("type", "subscribe")
    })
}

/// A contact's bare JID, normalized; `None` when it is not one.
pub fn contact_jid(s: &str) -> Option<String> {
    Jid::parse(s).ok().map(|j| j.bare_str())
}

/// XEP-0016 privacy lists (`<query xmlns='jabber:iq:privacy'/>`, as
/// ejabberd exports them) as the XEP-0191 blocklist Vireo keeps: the items
/// of the account's default list (or, without one, of the list ejabberd's
/// blocking command keeps, "Blocked contacts") that deny a JID every stanza
/// — no child, or all four of iq, message, presence-in and presence-out —
/// in their bare form. Returns the JIDs and how many items (of any list)
/// say something else, which a blocklist cannot.
pub fn blocklist_from_privacy(query: &Element) -> (Vec<String>, usize) {
    const NS: &str = "jabber:iq:privacy";
    let default = query
        .child(NS, "default")
        .and_then(|d| d.attr("name"))
        .map(str::to_owned);
    let lists: Vec<&Element> = query.elements().filter(|e| e.is(NS, "list")).collect();
    let chosen = lists
        .iter()
        .position(|l| default.is_some() && l.attr("name") == default.as_deref())
        .or_else(|| {
            default
                .is_none()
                .then(|| {
                    lists
                        .iter()
                        .position(|l| l.attr("name") == Some("Blocked contacts"))
                })
                .flatten()
        });
    let mut jids: Vec<String> = Vec::new();
    let mut left_out = 0;
    for (i, list) in lists.iter().enumerate() {
        for item in list.elements().filter(|e| e.is(NS, "item")) {
            let all = ["iq", "message", "presence-in", "presence-out"];
            let kinds: Vec<&str> = item.elements().map(|e| e.name.as_str()).collect();
            let blocks_all = kinds.is_empty() || all.iter().all(|k| kinds.contains(k));
            let jid = (Some(i) == chosen
                && item.attr("type") == Some("jid")
                && item.attr("action") == Some("deny")
                && blocks_all)
                .then(|| item.attr("value").and_then(contact_jid))
                .flatten();
            match jid {
                Some(j) if !jids.contains(&j) => jids.push(j),
                Some(_) => {}
                None => left_out += 1,
            }
        }
    }
    (jids, left_out)
}

/// Apply a roster `<item/>` to the entry (new or holding a pending-in
/// request already).
pub fn apply_roster_item(e: &Element, entry: &mut RosterItem) -> Result<(), Skip> {
    let (to, from) = match e.attr("subscription").unwrap_or("none") {
        "none" => (false, false),
        "to" => (true, false),
        "from" => (false, true),
        "both" => (true, true),
        other => return skip(format!("roster item with subscription {other:?}")),
    };
    entry.subscription = Subscription {
        to,
        from,
        pending_out: e.attr("ask") == Some("subscribe"),
        pending_in: entry.subscription.pending_in,
    };
    entry.name = e.attr("name").map(str::to_owned);
    entry.groups = e
        .elements()
        .filter(|g| g.is(NS_ROSTER, "group"))
        .map(Element::text)
        .collect();
    entry.in_roster = true;
    Ok(())
}

/// An empty entry for `jid`, not in the roster.
pub fn new_roster_entry(jid: String) -> RosterItem {
    RosterItem {
        jid,
        name: None,
        subscription: Subscription::default(),
        groups: Vec::new(),
        in_roster: false,
    }
}

// ------------------------------------------------------------- archives

/// The other party of an archived message as its stanza says: the
/// recipient of what the owner sent, else the sender. The export writes
/// `with` only when the stored one differs.
pub fn derived_with(owner: &str, message: &Element) -> Option<String> {
    let from = message.attr("from")?;
    if bare_of(from) == owner {
        message.attr("to").map(str::to_owned)
    } else {
        Some(from.to_owned())
    }
}

/// The `<result/>` of an archived message (Prosody's `#mam` extension):
/// its id, its time as a delay stamp, the message. `None` when the stored
/// stanza does not parse (the export reports it).
pub fn archive_result(owner: &str, m: &ArchivedMessage) -> Option<Element> {
    let message = Element::parse(m.stanza.as_bytes()).ok()?;
    let mut result = Element::new(NS_MAM, "result").with_attr("id", m.id.text());
    if derived_with(owner, &message).as_deref() != Some(m.with.as_str()) {
        result = result.with_attr_ns(NS_VIREO, "with", m.with.clone());
    }
    let delay = Element::new(NS_DELAY, "delay").with_attr("stamp", format_datetime(m.id.millis()));
    Some(
        result.with_child(
            Element::new(NS_FORWARD, "forwarded")
                .with_child(delay)
                .with_child(message),
        ),
    )
}

/// An archived message read from a `<result/>`, given the archive's
/// owner and the id of the message before it in this import (ids must
/// grow). Vireo's own ids are kept when they do; any other id (Prosody
/// uses UUIDs) becomes one at the message's delay stamp, its low bytes
/// derived from the foreign id so that importing the same file twice
/// gives the same ids.
pub fn archived_from_result(
    owner: &str,
    e: &Element,
    previous: Option<ArchiveId>,
) -> Result<ArchivedMessage, Skip> {
    if !e.is(NS_MAM, "result") {
        return skip(format!("<{}> in an archive", e.name));
    }
    let forwarded = e
        .child(NS_FORWARD, "forwarded")
        .ok_or_else(|| Skip("archived result without <forwarded>".into()))?;
    let message = forwarded
        .child(NS_CLIENT, "message")
        .ok_or_else(|| Skip("archived result without a message".into()))?;
    let stamp = forwarded
        .child(NS_DELAY, "delay")
        .and_then(|d| d.attr("stamp"))
        .and_then(parse_datetime)
        .and_then(|d| Millis::try_from(d.millis).ok());
    let foreign = e.attr("id").unwrap_or_default();
    let id = match ArchiveId::parse(foreign) {
        Some(id) => id,
        None => {
            let Some(ms) = stamp else {
                return skip("archived message without a readable delay stamp");
            };
            id_for_foreign(ms, foreign)
        }
    };
    let id = match previous {
        Some(p) if id <= p => p
            .next()
            .ok_or_else(|| Skip("archive ids exhausted".into()))?,
        _ => id,
    };
    let with = match e.attr_ns(NS_VIREO, "with") {
        Some(w) => w.to_owned(),
        None => derived_with(owner, message)
            .ok_or_else(|| Skip("archived message without from/to".into()))?,
    };
    Ok(ArchivedMessage {
        id,
        with,
        stanza: message.to_xml(),
    })
}

/// An archive id at `ms` for a message another server knew as `foreign`.
fn id_for_foreign(ms: Millis, foreign: &str) -> ArchiveId {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(foreign.as_bytes());
    let mut bytes = [0u8; 16];
    bytes[..8].copy_from_slice(&ms.to_be_bytes());
    bytes[10..].copy_from_slice(&digest[..6]);
    ArchiveId::from_bytes(bytes)
}

// ------------------------------------------------------------------ PEP

/// A node as the three elements Prosody writes for it: `<configure>`
/// (a submitted `pubsub#node_config` form), `<affiliations>` and
/// `<subscriptions>` (only when there are any) under `pubsub#owner`, and
/// `<items>` under `pubsub`.
pub fn pep_owner_elements(name: &str, node: &Node) -> Vec<Element> {
    let mut form = node.config.form();
    form.set_attr("type", "submit");
    let mut out = vec![Element::new(NS_PUBSUB_OWNER, "configure")
        .with_attr("node", name)
        .with_child(form)];
    if !node.affiliations.is_empty() {
        let mut a = Element::new(NS_PUBSUB_OWNER, "affiliations").with_attr("node", name);
        for (jid, aff) in &node.affiliations {
            a = a.with_child(
                Element::new(NS_PUBSUB_OWNER, "affiliation")
                    .with_attr("jid", jid.clone())
                    .with_attr("affiliation", aff.name()),
            );
        }
        out.push(a);
    }
    if !node.subscribers.is_empty() {
        let mut s = Element::new(NS_PUBSUB_OWNER, "subscriptions").with_attr("node", name);
        for jid in &node.subscribers {
            s = s.with_child(
                Element::new(NS_PUBSUB_OWNER, "subscription")
                    .with_attr("jid", jid.clone())
                    .with_attr("subscription", "subscribed"),
            );
        }
        out.push(s);
    }
    out
}

/// One `<item>` of a node.
pub fn pep_item_element(id: &str, payload: &Element) -> Element {
    Element::new(NS_PUBSUB, "item")
        .with_attr("id", id)
        .with_child(payload.clone())
}

/// Apply one element of `pubsub#owner` to `node` (created with the
/// default configuration by the caller). Form fields Vireo does not keep
/// (Prosody writes titles, notification switches, ...) are ignored, and
/// so is a value it would refuse; a `max_items` beyond Vireo's cap
/// becomes `max`.
pub fn apply_pep_owner(e: &Element, node: &mut Node) -> Result<(), Skip> {
    match e.name.as_str() {
        "configure" => {
            let Some(form) = e.child(DATA, "x") else {
                return Ok(());
            };
            let fields = parse_form(form).map_err(|_| Skip("unreadable node form".into()))?;
            let mut config = node.config.clone();
            for (var, values) in fields {
                let mut one = vec![(var.clone(), values.clone())];
                if config.apply(&one).is_err() && var == "pubsub#max_items" {
                    one = vec![(var, vec!["max".to_owned()])];
                    let _ = config.apply(&one);
                }
            }
            node.config = config;
        }
        "affiliations" => {
            for a in e.elements().filter(|a| a.name == "affiliation") {
                let (Some(jid), Some(aff)) = (
                    a.attr("jid").and_then(contact_jid),
                    a.attr("affiliation").and_then(Affiliation::parse),
                ) else {
                    continue;
                };
                if aff != Affiliation::None {
                    node.affiliations.insert(jid, aff);
                }
            }
        }
        "subscriptions" => {
            for s in e.elements().filter(|s| s.name == "subscription") {
                // Prosody 0.12 writes `subscribed='subscribed'`, the XEP
                // `subscription`.
                let state = s.attr("subscription").or_else(|| s.attr("subscribed"));
                if let (Some(jid), Some("subscribed")) = (s.attr("jid"), state) {
                    if let Ok(j) = Jid::parse(jid) {
                        node.subscribers.insert(j.as_str().to_owned());
                    }
                }
            }
        }
        other => return skip(format!("<{other}> under pubsub#owner")),
    }
    Ok(())
}

/// A node with PEP's default configuration.
pub fn new_pep_node() -> Node {
    Node::new(NodeConfig::default())
}

// ------------------------------------------------------------ documents

/// Vireo's own document `key` as `<document key>text</document>`.
pub fn document_element(key: &str, value: &str) -> Element {
    Element::new(NS_VIREO, "document")
        .with_attr("key", key)
        .with_text(value)
}

/// (key, text) of a `<document/>`.
pub fn parse_document(e: &Element) -> Result<(String, String), Skip> {
    if !e.is(NS_VIREO, "document") {
        return skip(format!("<{}> among Vireo documents", e.name));
    }
    let key = e
        .attr("key")
        .filter(|k| !k.is_empty() && !k.contains('\0'))
        .ok_or_else(|| Skip("document without a key".into()))?;
    Ok((key.to_owned(), e.text()))
}
