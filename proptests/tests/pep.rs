//! XEP-0163 PEP through the whole server machine (`xmpp_core::sim::World`:
//! c2s streams, hub, modules, in-memory store), against tables written
//! from the XEPs rather than from the module's code.
//!
//! 1. Access (XEP-0060 §4.5, XEP-0163 §4, XEP-0191 §3): for a random
//!    access model, allowed roster groups and requester (the owner's other
//!    resource; a contact with any RFC 6121 subscription state, in or out
//!    of the allowed groups; a stranger; any of those blocked), whether
//!    the requester may retrieve the items, the exact refusal when not,
//!    and whether a published item is pushed to it (it advertised
//!    `+notify` by XEP-0115 caps and answered the caps query).
//! 2. Publish-options (XEP-0223, XEP-0060 §7.1.5): for a random existing
//!    node (or none) and a random form (valid and invalid values, known
//!    and unknown fields), a publish either succeeds with the node
//!    configured exactly as asked (new node) or unchanged (existing node
//!    that meets them), or fails with `conflict` +
//!    `precondition-not-met` leaving the node (or its absence) as it was.

use proptest::prelude::*;
use std::collections::BTreeMap;
use xmpp_core::hub::HubConfig;
use xmpp_core::jid::Jid;
use xmpp_core::modules::blocking::{blocklist_document, BLOCKLIST_KEY};
use xmpp_core::modules::caps;
use xmpp_core::ns;
use xmpp_core::sim::{ClientEvent, ClientId, World};
use xmpp_core::storage::{RosterItem, StorageRequest, StorageResult, Subscription};
use xmpp_core::stream::{ClientConfig, ServerStreamConfig};
use xmpp_core::xml::Element;

const PUBSUB: &str = "http://jabber.org/protocol/pubsub";
const OWNER_NS: &str = "http://jabber.org/protocol/pubsub#owner";
const EVENT: &str = "http://jabber.org/protocol/pubsub#event";
const ERRORS: &str = "http://jabber.org/protocol/pubsub#errors";
const STANZAS: &str = "urn:ietf:params:xml:ns:xmpp-stanzas";
const DATA: &str = "jabber:x:data";
const NODE: &str = "urn:test:pep";
const OWNER: &str = "owner@localhost";
const READER: &str = "reader@localhost";
const GROUPS: [&str; 3] = ["Friends", "Family", "Work"];

fn world() -> World {
    let mut w = World::new(ServerStreamConfig::default(), HubConfig::default());
    assert!(w.add_user(OWNER, "pw"));
    assert!(w.add_user(READER, "pw"));
    w
}

fn online(w: &mut World, full: &str) -> ClientId {
    let jid = Jid::parse(full).expect("test JID");
    let id = w.connect_client(ClientConfig::new(jid.clone(), "pw"));
    let events = w.client_events(id);
    assert!(
        events.contains(&ClientEvent::Online(jid)),
        "{full}: {events:?}"
    );
    id
}

fn parse(xml: &str) -> Element {
    Element::parse(xml.as_bytes()).expect("test XML")
}

fn stanzas(w: &mut World, id: ClientId) -> Vec<Element> {
    w.client_events(id)
        .into_iter()
        .filter_map(|e| match e {
            ClientEvent::Stanza(s) => Some(s),
            _ => None,
        })
        .collect()
}

/// Send an iq and return the answer (the one with its id).
fn ask(w: &mut World, id: ClientId, iq: &str) -> Element {
    ask_all(w, id, iq).0
}

/// [`ask`], with everything else the client received meanwhile.
fn ask_all(w: &mut World, id: ClientId, iq: &str) -> (Element, Vec<Element>) {
    let iq = parse(iq);
    let want = iq.attr("id").expect("test iq id").to_owned();
    w.client_send_stanza(id, &iq);
    let (answer, rest): (Vec<Element>, Vec<Element>) = stanzas(w, id)
        .into_iter()
        .partition(|s| s.name == "iq" && s.attr("id") == Some(want.as_str()));
    let answer = answer
        .into_iter()
        .next()
        .unwrap_or_else(|| panic!("no answer to {want}"));
    (answer, rest)
}

/// `(stanza error condition, pubsub#errors condition)` of an error iq.
fn refusal(iq: &Element) -> Option<(String, Option<String>)> {
    if iq.attr("type") != Some("error") {
        return None;
    }
    let error = iq.child(ns::CLIENT, "error")?;
    let condition = error.elements().find(|e| e.ns == STANZAS)?.name.clone();
    let specific = error
        .elements()
        .find(|e| e.ns == ERRORS)
        .map(|e| e.name.clone());
    Some((condition, specific))
}

fn form(form_type: &str, fields: &[(String, Vec<String>)]) -> String {
    let mut x = format!(
        "<x xmlns='{DATA}' type='submit'><field var='FORM_TYPE' type='hidden'>\
         <value>{form_type}</value></field>"
    );
    for (var, values) in fields {
        x.push_str(&format!("<field var='{var}'>"));
        for v in values {
            x.push_str(&format!("<value>{v}</value>"));
        }
        x.push_str("</field>");
    }
    x.push_str("</x>");
    x
}

fn publish(item: &str, options: Option<&[(String, Vec<String>)]>) -> String {
    let options = options.map_or(String::new(), |o| {
        format!(
            "<publish-options>{}</publish-options>",
            form(&format!("{PUBSUB}#publish-options"), o)
        )
    });
    format!(
        "<iq xmlns='jabber:client' type='set' id='pub-{item}'><pubsub xmlns='{PUBSUB}'>\
         <publish node='{NODE}'><item id='{item}'><entry xmlns='urn:test'>{item}</entry></item>\
         </publish>{options}</pubsub></iq>"
    )
}

// ---------------------------------------------------------------------------
// 1. Access
// ---------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Model {
    Open,
    Presence,
    Roster,
    Whitelist,
}

impl Model {
    fn name(self) -> &'static str {
        match self {
            Model::Open => "open",
            Model::Presence => "presence",
            Model::Roster => "roster",
            Model::Whitelist => "whitelist",
        }
    }
}

/// An RFC 6121 subscription state: (to, from, pending out, pending in).
type Sub = (bool, bool, bool, bool);

/// Who asks, as the owner's roster and blocklist see them.
#[derive(Debug, Clone)]
enum Who {
    /// Another resource of the owner.
    Owner,
    /// reader@localhost with (when `item`) a roster item in the owner's
    /// roster: its subscription (to, from, pending out, pending in) and
    /// groups; blocked by the owner or not.
    Reader {
        item: Option<(Sub, Vec<&'static str>)>,
        blocked: bool,
    },
}

/// The expected answer to an items request: granted, or the refusal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    Granted,
    Refused(&'static str, Option<&'static str>),
}

/// The table. XEP-0191 §3.4 first: a blocked entity's iq is answered
/// `service-unavailable` (the user's server acts as if the user were not
/// there). Then XEP-0060 §4.5, with XEP-0163 §4's reading of `presence`
/// (contacts with subscription `from` or `both`) and §6.1.3 / §6.5.x's
/// refusals: `presence` → not-authorized + presence-subscription-required
/// (§6.5.6); `roster` → "any entity in the specified roster group(s)",
/// else not-authorized + not-in-roster-group (§6.5.5); `whitelist` (no
/// affiliations kept: the owner only) → not-allowed + closed-node (§6.5.4).
/// A contact who only asked to subscribe (pending in, nothing else) is not
/// in the roster (RFC 6121 §3.1.3), so in no group.
fn expected(model: Model, allowed: &[&str], who: &Who) -> Expect {
    let Who::Reader { item, blocked } = who else {
        return Expect::Granted;
    };
    if *blocked {
        return Expect::Refused("service-unavailable", None);
    }
    let (from, groups): (bool, &[&str]) = match item {
        Some(((_, from, _, _), groups)) => (*from, groups),
        None => (false, &[]),
    };
    match model {
        Model::Open => Expect::Granted,
        Model::Presence if from => Expect::Granted,
        Model::Presence => {
            Expect::Refused("not-authorized", Some("presence-subscription-required"))
        }
        Model::Roster if groups.iter().any(|g| allowed.contains(g)) => Expect::Granted,
        Model::Roster => Expect::Refused("not-authorized", Some("not-in-roster-group")),
        Model::Whitelist => Expect::Refused("not-allowed", Some("closed-node")),
    }
}

fn model() -> impl Strategy<Value = Model> {
    prop_oneof![
        Just(Model::Open),
        Just(Model::Presence),
        Just(Model::Roster),
        Just(Model::Whitelist),
    ]
}

fn groups() -> impl Strategy<Value = Vec<&'static str>> {
    proptest::sample::subsequence(GROUPS.to_vec(), 0..=GROUPS.len())
}

/// The nine RFC 6121 A.1 states as (to, from, pending out, pending in).
fn subscription() -> impl Strategy<Value = Sub> {
    proptest::sample::select(vec![
        (false, false, false, false),
        (false, false, true, false),
        (false, false, false, true),
        (false, false, true, true),
        (true, false, false, false),
        (true, false, false, true),
        (false, true, false, false),
        (false, true, true, false),
        (true, true, false, false),
    ])
}

fn who() -> impl Strategy<Value = Who> {
    prop_oneof![
        1 => Just(Who::Owner),
        6 => (proptest::option::weighted(0.8, (subscription(), groups())), proptest::bool::weighted(0.2))
            .prop_map(|(item, blocked)| {
                // Only someone the user has in the roster has groups; a
                // pending-in-only entry is hidden and has none.
                let item = item.map(|(s, g)| {
                    let hidden = s == (false, false, false, true);
                    (s, if hidden { Vec::new() } else { g })
                });
                Who::Reader { item, blocked }
            }),
    ]
}

fn seed_owner(w: &mut World, who: &Who) {
    let Who::Reader { item, blocked } = who else {
        return;
    };
    if let Some(((to, from, pending_out, pending_in), groups)) = item {
        let hidden = !(*to || *from || *pending_out);
        let put = StorageRequest::PutRosterItem {
            account: OWNER.to_owned(),
            item: RosterItem {
                jid: READER.to_owned(),
                name: None,
                subscription: Subscription {
                    to: *to,
                    from: *from,
                    pending_out: *pending_out,
                    pending_in: *pending_in,
                },
                groups: groups.iter().map(|g| (*g).to_owned()).collect(),
                in_roster: !hidden || !*pending_in,
            },
            version: 1,
        };
        assert_eq!(w.store_mut().execute(put), StorageResult::Done);
    }
    if *blocked {
        let store = StorageRequest::StoreBlob {
            account: OWNER.to_owned(),
            key: BLOCKLIST_KEY.to_owned(),
            value: Some(blocklist_document([&READER.to_owned()])),
            limit: None,
        };
        assert_eq!(w.store_mut().execute(store), StorageResult::Done);
    }
}

/// The reader's client: directed presence to the owner with caps whose
/// features include `NODE+notify`, answering the server's caps query.
fn advertise_notify(w: &mut World, reader: ClientId, own: bool) {
    let mut info = parse(&format!(
        "<query xmlns='{}'><identity category='client' type='pc' name='t'/>\
         <feature var='{}'/><feature var='{NODE}+notify'/></query>",
        ns::DISCO_INFO,
        ns::DISCO_INFO
    ));
    let ver = caps::ver(&info);
    // The owner's other resource comes online; a contact sends directed
    // presence (so the test needs no presence subscription).
    let to = if own {
        String::new()
    } else {
        format!(" to='{OWNER}'")
    };
    let presence = parse(&format!(
        "<presence xmlns='jabber:client'{to}><c xmlns='{}' hash='sha-1' \
         node='urn:test:client' ver='{ver}'/></presence>",
        caps::NS
    ));
    w.client_send_stanza(reader, &presence);
    for s in stanzas(w, reader) {
        let is_query = s.name == "iq"
            && s.attr("type") == Some("get")
            && s.child(ns::DISCO_INFO, "query").is_some();
        if !is_query {
            continue;
        }
        let node = s
            .child(ns::DISCO_INFO, "query")
            .and_then(|q| q.attr("node"))
            .unwrap_or_default()
            .to_owned();
        info.set_attr("node", node);
        let answer = Element::new(ns::CLIENT, "iq")
            .with_attr("type", "result")
            .with_attr("id", s.attr("id").unwrap_or_default())
            .with_attr("to", s.attr("from").unwrap_or_default())
            .with_child(info.clone());
        w.client_send_stanza(reader, &answer);
    }
}

/// Whether `stanzas` hold the notification of item `id` of [`NODE`].
fn notified(stanzas: &[Element], id: &str) -> bool {
    stanzas.iter().any(|s| {
        s.name == "message"
            && s.attr("from") == Some(OWNER)
            && s.child(EVENT, "event")
                .and_then(|e| e.child(EVENT, "items"))
                .is_some_and(|items| {
                    items.attr("node") == Some(NODE)
                        && items
                            .elements()
                            .any(|i| i.name == "item" && i.attr("id") == Some(id))
                })
    })
}

fn check_access(model: Model, allowed: Vec<&'static str>, who: Who) -> Result<(), TestCaseError> {
    let mut w = world();
    seed_owner(&mut w, &who);
    let owner = online(&mut w, &format!("{OWNER}/main"));
    w.client_send_stanza(owner, &parse("<presence xmlns='jabber:client'/>"));
    let reader_jid = match who {
        Who::Owner => format!("{OWNER}/second"),
        Who::Reader { .. } => format!("{READER}/desk"),
    };
    let reader = online(&mut w, &reader_jid);
    advertise_notify(&mut w, reader, matches!(who, Who::Owner));
    stanzas(&mut w, owner);

    let options: Vec<(String, Vec<String>)> = vec![
        ("pubsub#access_model".into(), vec![model.name().into()]),
        (
            "pubsub#roster_groups_allowed".into(),
            allowed.iter().map(|g| (*g).to_owned()).collect(),
        ),
    ];
    let answer = ask(&mut w, owner, &publish("first", Some(&options)));
    prop_assert_eq!(answer.attr("type"), Some("result"), "{}", answer.to_xml());

    let want = expected(model, &allowed, &who);
    // Retrieval (XEP-0060 §6.5).
    let answer = ask(
        &mut w,
        reader,
        &format!(
            "<iq xmlns='jabber:client' type='get' id='get' to='{OWNER}'>\
             <pubsub xmlns='{PUBSUB}'><items node='{NODE}'/></pubsub></iq>"
        ),
    );
    let got = match refusal(&answer) {
        None => {
            prop_assert_eq!(answer.attr("type"), Some("result"));
            let has_item = answer
                .child(PUBSUB, "pubsub")
                .and_then(|p| p.child(PUBSUB, "items"))
                .is_some_and(|i| i.elements().any(|i| i.attr("id") == Some("first")));
            prop_assert!(has_item, "{}", answer.to_xml());
            Expect::Granted
        }
        Some((condition, specific)) => {
            let expected_pair = match want {
                Expect::Refused(c, s) => (c.to_owned(), s.map(str::to_owned)),
                Expect::Granted => (String::new(), None),
            };
            prop_assert_eq!((condition, specific), expected_pair, "{}", answer.to_xml());
            want
        }
    };
    prop_assert_eq!(got, want);

    // Notification (XEP-0163 §4.3): of a second item, to the reader's
    // resource that wants the node, exactly when it may read. The owner's
    // own resource is always told.
    let (answer, own) = ask_all(&mut w, owner, &publish("second", None));
    prop_assert_eq!(answer.attr("type"), Some("result"), "{}", answer.to_xml());
    prop_assert!(notified(&own, "second"), "owner not notified");
    let got = stanzas(&mut w, reader);
    // Implicit subscription is by the roster (XEP-0163 §4.3.1): someone
    // with no roster item would subscribe explicitly (XEP-0060 §6.1).
    let known = matches!(&who, Who::Owner | Who::Reader { item: Some(_), .. });
    prop_assert_eq!(
        notified(&got, "second"),
        want == Expect::Granted && known,
        "notification to {:?}: {:?}",
        who,
        got.iter().map(Element::to_xml).collect::<Vec<_>>()
    );
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn access_follows_the_xep_tables(model in model(), allowed in groups(), who in who()) {
        check_access(model, allowed, who)?;
    }
}

// ---------------------------------------------------------------------------
// 2. Publish-options
// ---------------------------------------------------------------------------

/// A node's configuration as the owner's configuration form shows it:
/// field → values.
type Shown = BTreeMap<String, Vec<String>>;

/// A publish-options field and whether its value is one PEP accepts
/// (XEP-0060 §16.4.4 node_config fields PEP supports, with this server's
/// budgets: at most 64 items, at most 32 roster groups).
fn option() -> impl Strategy<Value = (String, Vec<String>)> {
    let access = prop_oneof![
        4 => proptest::sample::select(vec!["open", "presence", "roster", "whitelist"]),
        1 => proptest::sample::select(vec!["authorize", "", "Open"]),
    ]
    .prop_map(|v| ("pubsub#access_model".to_owned(), vec![v.to_owned()]));
    let max = prop_oneof![
        4 => (1usize..=64).prop_map(|n| n.to_string()),
        1 => Just("max".to_owned()),
        1 => proptest::sample::select(vec!["0", "65", "-1", "many", ""]).prop_map(str::to_owned),
    ]
    .prop_map(|v| ("pubsub#max_items".to_owned(), vec![v]));
    let persist = proptest::sample::select(vec!["1", "0", "true", "false", "yes", ""])
        .prop_map(|v| ("pubsub#persist_items".to_owned(), vec![v.to_owned()]));
    let groups = proptest::sample::subsequence(GROUPS.to_vec(), 0..=GROUPS.len()).prop_map(|g| {
        (
            "pubsub#roster_groups_allowed".to_owned(),
            g.into_iter().map(str::to_owned).collect(),
        )
    });
    let send_last = prop_oneof![
        3 => proptest::sample::select(vec!["never", "on_sub", "on_sub_and_presence"]),
        1 => proptest::sample::select(vec!["sometimes", ""]),
    ]
    .prop_map(|v| {
        (
            "pubsub#send_last_published_item".to_owned(),
            vec![v.to_owned()],
        )
    });
    let unknown = proptest::sample::select(vec!["pubsub#deliver_payloads", "urn:test#custom"])
        .prop_map(|v| (v.to_owned(), vec!["1".to_owned()]));
    // Two values for a single-valued field.
    let doubled = Just((
        "pubsub#access_model".to_owned(),
        vec!["open".to_owned(), "presence".to_owned()],
    ));
    prop_oneof![3 => access, 3 => max, 2 => persist, 2 => groups, 2 => send_last, 1 => unknown, 1 => doubled]
}

/// Random options with distinct fields.
fn options() -> impl Strategy<Value = Vec<(String, Vec<String>)>> {
    proptest::collection::vec(option(), 0..5).prop_map(|fields| {
        let mut seen = std::collections::BTreeSet::new();
        fields
            .into_iter()
            .filter(|(var, _)| seen.insert(var.clone()))
            .collect()
    })
}

/// XEP-0163 §3's defaults as the form shows them: presence access,
/// persisted, one item (this server's choice for a single current value),
/// no groups, the last item on subscription and presence (§4.3).
fn defaults() -> Shown {
    [
        ("pubsub#access_model", vec!["presence"]),
        ("pubsub#roster_groups_allowed", vec![]),
        ("pubsub#persist_items", vec!["1"]),
        ("pubsub#max_items", vec!["1"]),
        (
            "pubsub#send_last_published_item",
            vec!["on_sub_and_presence"],
        ),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.into_iter().map(str::to_owned).collect()))
    .collect()
}

/// The reference: `shown` with `fields` applied, or `None` when one of
/// them is unknown or out of range (written from the field list above,
/// not from the module).
fn model_apply(shown: &Shown, fields: &[(String, Vec<String>)]) -> Option<Shown> {
    let mut next = shown.clone();
    for (var, values) in fields {
        let value = match (var.as_str(), values.as_slice()) {
            ("pubsub#roster_groups_allowed", vs) => vs.to_vec(),
            (_, [v]) => match var.as_str() {
                "pubsub#access_model" => {
                    ["open", "presence", "roster", "whitelist"]
                        .contains(&v.as_str())
                        .then_some(())?;
                    vec![v.clone()]
                }
                "pubsub#persist_items" => match v.as_str() {
                    "1" | "true" => vec!["1".to_owned()],
                    "0" | "false" => vec!["0".to_owned()],
                    _ => return None,
                },
                "pubsub#send_last_published_item" => {
                    ["never", "on_sub", "on_sub_and_presence"]
                        .contains(&v.as_str())
                        .then_some(())?;
                    vec![v.clone()]
                }
                "pubsub#max_items" => match v.as_str() {
                    "max" => vec!["max".to_owned()],
                    n => match n.parse::<usize>() {
                        Ok(n) if (1..=64).contains(&n) => vec![n.to_string()],
                        _ => return None,
                    },
                },
                _ => return None,
            },
            _ => return None,
        };
        next.insert(var.clone(), value);
    }
    Some(next)
}

/// The node's configuration form as the owner reads it (§8.2.1), or
/// `None` when the node does not exist (item-not-found).
fn shown(w: &mut World, owner: ClientId) -> Option<Shown> {
    let answer = ask(
        w,
        owner,
        &format!(
            "<iq xmlns='jabber:client' type='get' id='conf'><pubsub xmlns='{OWNER_NS}'>\
             <configure node='{NODE}'/></pubsub></iq>"
        ),
    );
    if let Some(r) = refusal(&answer) {
        assert_eq!(
            r,
            ("item-not-found".to_owned(), None),
            "{}",
            answer.to_xml()
        );
        return None;
    }
    let x = answer
        .child(OWNER_NS, "pubsub")
        .and_then(|p| p.child(OWNER_NS, "configure"))
        .and_then(|c| c.child(DATA, "x"))
        .expect("configuration form");
    Some(
        x.elements()
            .filter_map(|f| {
                let var = f.attr("var")?;
                (var != "FORM_TYPE").then(|| {
                    let values = f
                        .elements()
                        .filter(|v| v.is(DATA, "value"))
                        .map(Element::text)
                        .collect();
                    (var.to_owned(), values)
                })
            })
            .collect(),
    )
}

/// The ids of the node's items, as the owner reads them.
fn item_ids(w: &mut World, owner: ClientId) -> Option<Vec<String>> {
    let answer = ask(
        w,
        owner,
        &format!(
            "<iq xmlns='jabber:client' type='get' id='items'><pubsub xmlns='{PUBSUB}'>\
             <items node='{NODE}'/></pubsub></iq>"
        ),
    );
    refusal(&answer).is_none().then(|| {
        answer
            .child(PUBSUB, "pubsub")
            .and_then(|p| p.child(PUBSUB, "items"))
            .map(|i| {
                i.elements()
                    .filter_map(|i| i.attr("id").map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    })
}

fn check_publish_options(
    existing: Option<Vec<(String, Vec<String>)>>,
    options: Vec<(String, Vec<String>)>,
) -> Result<(), TestCaseError> {
    let mut w = world();
    let owner = online(&mut w, &format!("{OWNER}/main"));
    // The node as it is before, made with create-and-configure (§8.1.3).
    let before = match &existing {
        Some(config) => {
            let Some(shown_config) = model_apply(&defaults(), config) else {
                return Ok(());
            };
            let answer = ask(
                &mut w,
                owner,
                &format!(
                    "<iq xmlns='jabber:client' type='set' id='create'><pubsub xmlns='{PUBSUB}'>\
                     <create node='{NODE}'/><configure>{}</configure></pubsub></iq>",
                    form(&format!("{PUBSUB}#node_config"), config)
                ),
            );
            prop_assert_eq!(answer.attr("type"), Some("result"), "{}", answer.to_xml());
            let answer = ask(&mut w, owner, &publish("old", None));
            prop_assert_eq!(answer.attr("type"), Some("result"));
            Some(shown_config)
        }
        None => None,
    };
    prop_assert_eq!(shown(&mut w, owner), before.clone());
    let items_before = item_ids(&mut w, owner);

    let answer = ask(&mut w, owner, &publish("new", Some(&options)));
    let expect_ok = match &before {
        // XEP-0223 §2: a new node is created configured as asked.
        None => model_apply(&defaults(), &options),
        // §3 / XEP-0060 §7.1.5: an existing node must already be so.
        Some(b) => model_apply(b, &options).filter(|after| after == b),
    };
    match expect_ok {
        Some(config) => {
            prop_assert_eq!(answer.attr("type"), Some("result"), "{}", answer.to_xml());
            prop_assert_eq!(shown(&mut w, owner), Some(config));
            let ids = item_ids(&mut w, owner).unwrap_or_default();
            prop_assert!(ids.contains(&"new".to_owned()), "{:?}", ids);
        }
        None => {
            prop_assert_eq!(
                refusal(&answer),
                Some((
                    "conflict".to_owned(),
                    Some("precondition-not-met".to_owned())
                )),
                "{}",
                answer.to_xml()
            );
            // Never half-applied.
            prop_assert_eq!(shown(&mut w, owner), before);
            prop_assert_eq!(item_ids(&mut w, owner), items_before);
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn publish_options_apply_wholly_or_not_at_all(
        existing in proptest::option::of(options()),
        options in options(),
    ) {
        check_publish_options(existing, options)?;
    }
}
