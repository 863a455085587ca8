//! The service against a real hub and the in-memory store: persistent
//! rooms survive a restart with their configuration and affiliations,
//! results wait for their writes, temporary rooms vanish, a room fans a
//! message out to 1,000 occupants, and every budget refuses at its limit
//! with the precise error.

use super::*;
use crate::hub::drive::drive;
use crate::hub::{Hub, HubConfig, HubOutput};
use crate::modules::ModuleSet;
use crate::storage::MemoryStore;

fn hub_with(settings: Settings) -> Hub {
    Hub::new(Arc::new(HubConfig {
        modules: ModuleSet::standard().with(Muc::new(settings)),
        ..HubConfig::default()
    }))
}

fn hub() -> Hub {
    hub_with(Settings::default())
}

fn parse(xml: &str) -> Element {
    Element::parse(xml.as_bytes()).expect("XML")
}

fn send(h: &mut Hub, store: &mut MemoryStore, xml: &str) -> Vec<Element> {
    h.routed(0, parse(xml));
    drive(h, store)
}

fn join(h: &mut Hub, store: &mut MemoryStore, who: &str, room: &str, nick: &str) -> Vec<Element> {
    send(
        h,
        store,
        &format!("<presence xmlns='jabber:client' from='{who}' to='{room}/{nick}'><x xmlns='http://jabber.org/protocol/muc'/></presence>"),
    )
}

fn iq(
    h: &mut Hub,
    store: &mut MemoryStore,
    who: &str,
    to: &str,
    kind: &str,
    payload: &str,
) -> Vec<Element> {
    send(
        h,
        store,
        &format!(
            "<iq xmlns='jabber:client' type='{kind}' id='q' from='{who}' to='{to}'>{payload}</iq>"
        ),
    )
}

fn error_of(out: &[Element]) -> Option<String> {
    out.iter()
        .filter(|e| e.attr("type") == Some("error"))
        .find_map(|e| {
            e.child(ns::CLIENT, "error")?
                .first_element()
                .map(|c| c.name.clone())
        })
}

fn configure(
    h: &mut Hub,
    store: &mut MemoryStore,
    who: &str,
    room: &str,
    fields: &[(&str, &str)],
) -> Vec<Element> {
    let fields: String = fields
        .iter()
        .map(|(k, v)| format!("<field var='{k}'><value>{v}</value></field>"))
        .collect();
    iq(
        h,
        store,
        who,
        room,
        "set",
        &format!("<query xmlns='http://jabber.org/protocol/muc#owner'><x xmlns='jabber:x:data' type='submit'>{fields}</x></query>"),
    )
}

fn self_presence<'a>(out: &'a [Element], to: &str) -> Option<&'a Element> {
    out.iter().find(|e| {
        e.name == "presence"
            && e.attr("to") == Some(to)
            && e.child(protocol::USER, "x").is_some_and(|x| {
                x.elements()
                    .any(|s| s.name == "status" && s.attr("code") == Some("110"))
            })
    })
}

fn item_attr(p: &Element, attr: &str) -> Option<String> {
    p.child(protocol::USER, "x")?
        .child(protocol::USER, "item")?
        .attr(attr)
        .map(str::to_owned)
}

/// What the hub has output so far, not carried out.
fn pending(h: &mut Hub) -> Vec<HubOutput> {
    std::iter::from_fn(|| h.poll_output()).collect()
}

/// The stanzas among `outs`.
fn routed_of(outs: &[HubOutput]) -> Vec<Element> {
    outs.iter()
        .filter_map(|o| match o {
            HubOutput::Route(e) => Some(e.clone()),
            _ => None,
        })
        .collect()
}

/// Answer the storage requests among `outs` (nothing more).
fn answer(h: &mut Hub, store: &mut MemoryStore, outs: Vec<HubOutput>) {
    for o in outs {
        if let HubOutput::Storage { id, request } = o {
            let r = store.execute(request);
            h.handle_storage(0, id, r);
        }
    }
}

/// Answer the storage requests among `outs`, then everything that
/// follows; what was routed.
fn answer_writes(h: &mut Hub, store: &mut MemoryStore, outs: Vec<HubOutput>) -> Vec<Element> {
    answer(h, store, outs);
    drive(h, store)
}

/// The hub's pending outputs hold a write `written` accepts and route
/// nothing before it is durable (`what` says what must wait); then the
/// writes are answered and what follows is returned.
fn durable_first(
    h: &mut Hub,
    store: &mut MemoryStore,
    written: impl Fn(&StorageRequest) -> bool,
    what: &str,
) -> Vec<Element> {
    let outs = pending(h);
    assert!(
        outs.iter()
            .any(|o| matches!(o, HubOutput::Storage { request, .. } if written(request))),
        "the write is asked for: {outs:?}"
    );
    assert!(routed_of(&outs).is_empty(), "{what}: {outs:?}");
    answer_writes(h, store, outs)
}

const ROOM: &str = "keep@conference.localhost";
const ALICE: &str = "alice@localhost/a";
const BOB: &str = "bob@localhost/b";
const CAROL: &str = "carol@localhost/c";

/// A configuration's result leaves only once the room is stored.
#[test]
fn results_wait_for_their_writes() {
    let mut store = MemoryStore::new();
    let mut h = hub();
    join(&mut h, &mut store, ALICE, ROOM, "Alice");
    h.routed(
        0,
        parse(&format!("<iq xmlns='jabber:client' type='set' id='q' from='{ALICE}' to='{ROOM}'><query xmlns='http://jabber.org/protocol/muc#owner'><x xmlns='jabber:x:data' type='submit'><field var='muc#roomconfig_persistentroom'><value>1</value></field></x></query></iq>")),
    );
    let out = durable_first(
        &mut h,
        &mut store,
        |r| matches!(r, StorageRequest::StoreBlob { key, value: Some(_), .. } if key == "r/keep"),
        "nothing leaves before the room is stored",
    );
    assert!(out
        .iter()
        .any(|e| e.name == "iq" && e.attr("type") == Some("result")));
}

/// A persistent members-only room comes back after a restart with its
/// name, configuration and members; a temporary one does not.
#[test]
fn persistent_rooms_survive_a_restart() {
    let mut store = MemoryStore::new();
    {
        let mut h = hub();
        join(&mut h, &mut store, ALICE, ROOM, "Alice");
        let out = configure(
            &mut h,
            &mut store,
            ALICE,
            ROOM,
            &[
                ("muc#roomconfig_persistentroom", "1"),
                ("muc#roomconfig_membersonly", "1"),
                ("muc#roomconfig_roomname", "Kept"),
            ],
        );
        assert_eq!(error_of(&out), None);
        let out = iq(
            &mut h,
            &mut store,
            ALICE,
            ROOM,
            "set",
            "<query xmlns='http://jabber.org/protocol/muc#admin'><item affiliation='member' jid='bob@localhost'/></query>",
        );
        assert_eq!(error_of(&out), None);
        join(
            &mut h,
            &mut store,
            ALICE,
            "temp@conference.localhost",
            "Alice",
        );
        configure(&mut h, &mut store, ALICE, "temp@conference.localhost", &[]);
    }
    let mut h = hub();
    let out = join(&mut h, &mut store, BOB, ROOM, "Bob");
    let me = self_presence(&out, BOB).expect("bob enters");
    assert_eq!(item_attr(me, "affiliation").as_deref(), Some("member"));
    assert!(
        !format!("{me:?}").contains("201"),
        "the room was not created again"
    );
    let out = join(&mut h, &mut store, CAROL, ROOM, "Carol");
    assert_eq!(error_of(&out).as_deref(), Some("registration-required"));
    let out = iq(
        &mut h,
        &mut store,
        CAROL,
        "conference.localhost",
        "get",
        "<query xmlns='http://jabber.org/protocol/disco#items'/>",
    );
    let items: Vec<(String, String)> = out[0]
        .child(ns::DISCO_ITEMS, "query")
        .map(|q| {
            q.elements()
                .map(|i| {
                    (
                        i.attr("jid").unwrap_or_default().to_owned(),
                        i.attr("name").unwrap_or_default().to_owned(),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    assert_eq!(items, vec![(ROOM.to_owned(), "Kept".to_owned())]);
    // The temporary room is new again: created, locked, Bob its owner.
    let out = join(&mut h, &mut store, BOB, "temp@conference.localhost", "Bob");
    let me = self_presence(&out, BOB).expect("bob enters");
    assert_eq!(item_attr(me, "affiliation").as_deref(), Some("owner"));
}

/// The last occupant leaving a temporary room ends it.
#[test]
fn temporary_rooms_vanish_when_empty() {
    let mut store = MemoryStore::new();
    let mut h = hub();
    join(&mut h, &mut store, ALICE, ROOM, "Alice");
    configure(&mut h, &mut store, ALICE, ROOM, &[]);
    join(&mut h, &mut store, BOB, ROOM, "Bob");
    send(
        &mut h,
        &mut store,
        &format!(
            "<presence xmlns='jabber:client' type='unavailable' from='{ALICE}' to='{ROOM}/Alice'/>"
        ),
    );
    // Bob is still there: the room stays.
    let out = iq(
        &mut h,
        &mut store,
        CAROL,
        ROOM,
        "get",
        "<query xmlns='http://jabber.org/protocol/disco#info'/>",
    );
    assert_eq!(error_of(&out), None);
    send(
        &mut h,
        &mut store,
        &format!(
            "<presence xmlns='jabber:client' type='unavailable' from='{BOB}' to='{ROOM}/Bob'/>"
        ),
    );
    let out = iq(
        &mut h,
        &mut store,
        CAROL,
        ROOM,
        "get",
        "<query xmlns='http://jabber.org/protocol/disco#info'/>",
    );
    assert_eq!(error_of(&out).as_deref(), Some("item-not-found"));
}

/// A room of 1,000 occupants delivers one message to every one of them
/// in one step.
#[test]
fn a_thousand_occupants_get_the_message() {
    let mut store = MemoryStore::new();
    let mut h = hub();
    join(&mut h, &mut store, ALICE, ROOM, "Alice");
    configure(
        &mut h,
        &mut store,
        ALICE,
        ROOM,
        &[("muc#roomconfig_maxusers", "1000")],
    );
    for i in 1..1000 {
        h.routed(0, parse(&format!("<presence xmlns='jabber:client' from='u{i}@localhost/r' to='{ROOM}/u{i}'><x xmlns='http://jabber.org/protocol/muc'><history maxchars='0'/></x></presence>")));
        drive(&mut h, &mut store);
    }
    let out = send(&mut h, &mut store, &format!("<message xmlns='jabber:client' type='groupchat' from='{ALICE}' to='{ROOM}'><body>all</body></message>"));
    let got = out
        .iter()
        .filter(|m| {
            m.name == "message" && m.attr("from") == Some("keep@conference.localhost/Alice")
        })
        .count();
    assert_eq!(got, 1000);
    // The 1,001st is refused: the room is full.
    let out = join(&mut h, &mut store, "late@localhost/r", ROOM, "late");
    assert_eq!(error_of(&out).as_deref(), Some("service-unavailable"));
}

/// Every budget refuses at its limit with its error.
#[test]
fn budgets_refuse_at_the_limit() {
    let mut store = MemoryStore::new();
    let mut h = hub_with(Settings {
        rooms_per_creator_max: 2,
        nick_bytes_max: 8,
        subject_bytes_max: 16,
        occupants_max: 3,
        voice_requests_max: 1,
        affiliations_max: 3,
        ..Settings::default()
    });
    // Rooms per creator.
    for r in ["a", "b"] {
        let out = join(
            &mut h,
            &mut store,
            ALICE,
            &format!("{r}@conference.localhost"),
            "Alice",
        );
        assert_eq!(error_of(&out), None);
    }
    let out = join(&mut h, &mut store, ALICE, "c@conference.localhost", "Alice");
    assert_eq!(error_of(&out).as_deref(), Some("resource-constraint"));
    configure(
        &mut h,
        &mut store,
        ALICE,
        "a@conference.localhost",
        &[("muc#roomconfig_moderatedroom", "1")],
    );
    // Nick length.
    let out = join(
        &mut h,
        &mut store,
        BOB,
        "a@conference.localhost",
        &"n".repeat(9),
    );
    assert_eq!(error_of(&out).as_deref(), Some("not-acceptable"));
    // A configuration beyond the service's occupant cap.
    let out = configure(
        &mut h,
        &mut store,
        ALICE,
        "a@conference.localhost",
        &[("muc#roomconfig_maxusers", "4")],
    );
    assert_eq!(error_of(&out).as_deref(), Some("not-acceptable"));
    // Subject length (alice moderates).
    let long = "s".repeat(17);
    let out = send(&mut h, &mut store, &format!("<message xmlns='jabber:client' type='groupchat' from='{ALICE}' to='a@conference.localhost'><subject>{long}</subject></message>"));
    assert_eq!(error_of(&out).as_deref(), Some("not-acceptable"));
    // Occupants: 3 at most.
    join(&mut h, &mut store, BOB, "a@conference.localhost", "Bob");
    join(&mut h, &mut store, CAROL, "a@conference.localhost", "Carol");
    let out = join(
        &mut h,
        &mut store,
        "dave@localhost/d",
        "a@conference.localhost",
        "Dave",
    );
    assert_eq!(error_of(&out).as_deref(), Some("service-unavailable"));
    // Voice requests: one waits, the next visitor's is refused.
    let request = |who: &str| {
        format!("<message xmlns='jabber:client' from='{who}' to='a@conference.localhost'><x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE'><value>http://jabber.org/protocol/muc#request</value></field><field var='muc#role'><value>participant</value></field></x></message>")
    };
    let out = send(&mut h, &mut store, &request(BOB));
    assert_eq!(error_of(&out), None);
    let out = send(&mut h, &mut store, &request(BOB));
    assert_eq!(error_of(&out), None, "asking again is no new request");
    let out = send(&mut h, &mut store, &request(CAROL));
    assert_eq!(error_of(&out).as_deref(), Some("resource-constraint"));
    // Affiliations: alice (owner) and two more.
    for (i, expect) in [(1, None), (2, None), (3, Some("resource-constraint"))] {
        let out = iq(&mut h, &mut store, ALICE, "a@conference.localhost", "set", &format!("<query xmlns='http://jabber.org/protocol/muc#admin'><item affiliation='member' jid='m{i}@localhost'/></query>"));
        assert_eq!(error_of(&out).as_deref(), expect);
    }
    // Too many items in one request.
    let items: String = (0..300)
        .map(|i| format!("<item affiliation='none' jid='m{i}@localhost'/>"))
        .collect();
    let out = iq(
        &mut h,
        &mut store,
        ALICE,
        "a@conference.localhost",
        "set",
        &format!("<query xmlns='http://jabber.org/protocol/muc#admin'>{items}</query>"),
    );
    assert_eq!(error_of(&out).as_deref(), Some("bad-request"));
    // The last owner stays.
    let out = iq(&mut h, &mut store, ALICE, "a@conference.localhost", "set", "<query xmlns='http://jabber.org/protocol/muc#admin'><item affiliation='none' jid='alice@localhost'/></query>");
    assert_eq!(error_of(&out).as_deref(), Some("conflict"));
}

/// Rooms per partition: the service refuses a new room beyond it.
#[test]
fn rooms_per_partition_are_bounded() {
    let mut store = MemoryStore::new();
    let mut h = hub_with(Settings {
        rooms_max: 2,
        ..Settings::default()
    });
    join(&mut h, &mut store, ALICE, "a@conference.localhost", "A");
    join(&mut h, &mut store, BOB, "b@conference.localhost", "B");
    let out = join(&mut h, &mut store, CAROL, "c@conference.localhost", "C");
    assert_eq!(error_of(&out).as_deref(), Some("resource-constraint"));
}

/// Empty persistent rooms leave memory once the partition is half full,
/// and come back from storage when named again.
#[test]
fn empty_persistent_rooms_are_unloaded_and_read_again() {
    let mut store = MemoryStore::new();
    let mut h = hub_with(Settings {
        rooms_max: 2,
        ..Settings::default()
    });
    for r in ["p1", "p2"] {
        let room = format!("{r}@conference.localhost");
        join(&mut h, &mut store, ALICE, &room, "Alice");
        configure(
            &mut h,
            &mut store,
            ALICE,
            &room,
            &[("muc#roomconfig_persistentroom", "1")],
        );
        send(&mut h, &mut store, &format!("<presence xmlns='jabber:client' type='unavailable' from='{ALICE}' to='{room}/Alice'/>"));
    }
    // p2 went (two rooms were held, the budget is 2): a third fits.
    let out = join(&mut h, &mut store, CAROL, "t@conference.localhost", "Carol");
    assert_eq!(error_of(&out), None);
    // p2 is read back: no new room, alice still owns it.
    let out = join(&mut h, &mut store, BOB, "p2@conference.localhost", "Bob");
    let me = self_presence(&out, BOB).expect("bob enters");
    assert!(!format!("{me:?}").contains("201"));
    let out = iq(
        &mut h,
        &mut store,
        ALICE,
        "p2@conference.localhost",
        "get",
        "<query xmlns='http://jabber.org/protocol/muc#owner'/>",
    );
    assert_eq!(error_of(&out), None, "alice still owns it");
}

/// A destroyed persistent room leaves a tombstone (Prosody's
/// `muc_tombstones`): entering gets `gone` with the alternate venue, after
/// a restart too, until it expires; then the name is free.
#[test]
fn tombstones_keep_a_destroyed_name_until_they_expire() {
    let mut store = MemoryStore::new();
    let settings = Settings {
        tombstone_ms: Some(60_000),
        ..Settings::default()
    };
    {
        let mut h = hub_with(settings.clone());
        join(&mut h, &mut store, ALICE, ROOM, "Alice");
        configure(
            &mut h,
            &mut store,
            ALICE,
            ROOM,
            &[("muc#roomconfig_persistentroom", "1")],
        );
        let out = iq(&mut h, &mut store, ALICE, ROOM, "set", "<query xmlns='http://jabber.org/protocol/muc#owner'><destroy jid='new@conference.localhost'/></query>");
        assert_eq!(error_of(&out), None);
        let out = join(&mut h, &mut store, BOB, ROOM, "Bob");
        assert_eq!(error_of(&out).as_deref(), Some("gone"));
        let gone = out
            .iter()
            .find_map(|e| {
                e.child(ns::CLIENT, "error")?
                    .child(ns::STANZA_ERRORS, "gone")
            })
            .map(Element::text);
        assert_eq!(gone.as_deref(), Some("xmpp:new@conference.localhost?join"));
    }
    let mut h = hub_with(settings);
    let out = join(&mut h, &mut store, BOB, ROOM, "Bob");
    assert_eq!(
        error_of(&out).as_deref(),
        Some("gone"),
        "after a restart too"
    );
    h.routed(
        120_000,
        parse(&format!(
            "<presence xmlns='jabber:client' from='{BOB}' to='{ROOM}/Bob'/>"
        )),
    );
    let out = drive(&mut h, &mut store);
    let me = self_presence(&out, BOB).expect("the name is free again");
    assert!(format!("{me:?}").contains("201"));
}

fn occupant_id_of(p: &Element) -> Option<String> {
    p.child(occupant_id::NS, "occupant-id")?
        .attr("id")
        .map(str::to_owned)
}

/// A hub started again, with other randomness (as a restarted server).
fn restarted(seed: u64) -> Hub {
    let mut h = hub();
    h.set_entropy(crate::entropy::Entropy::from_u64(seed));
    h
}

/// XEP-0421: a persistent room's occupant ids are a function of its
/// stored secret and the bare JID, so they survive a restart; a document
/// written before rooms had a secret gets one on load, stored at once.
#[test]
fn occupant_ids_survive_a_restart() {
    let mut store = MemoryStore::new();
    let before = {
        let mut h = restarted(1);
        join(&mut h, &mut store, ALICE, ROOM, "Alice");
        configure(
            &mut h,
            &mut store,
            ALICE,
            ROOM,
            &[("muc#roomconfig_persistentroom", "1")],
        );
        let out = join(&mut h, &mut store, BOB, ROOM, "Bob");
        occupant_id_of(self_presence(&out, BOB).expect("bob enters")).expect("an id")
    };
    let mut h = restarted(2);
    let out = join(&mut h, &mut store, BOB, ROOM, "Robert");
    let after = occupant_id_of(self_presence(&out, BOB).expect("bob enters")).expect("an id");
    assert_eq!(before, after, "the same id after a restart and a new nick");
    // Another room's id for bob differs (each room has its own secret).
    join(
        &mut h,
        &mut store,
        ALICE,
        "other@conference.localhost",
        "Alice",
    );
    configure(&mut h, &mut store, ALICE, "other@conference.localhost", &[]);
    let out = join(&mut h, &mut store, BOB, "other@conference.localhost", "Bob");
    let elsewhere = occupant_id_of(self_presence(&out, BOB).expect("enters")).expect("an id");
    assert_ne!(elsewhere, before);

    // An old document, without a secret: the id drawn at load is stored
    // before anyone sees it, and the same after the next restart.
    let account = "conference.localhost".to_owned();
    let key = store::key(ROOM);
    let StorageResult::Blob(Some(doc)) = store.execute(StorageRequest::LoadBlob {
        account: account.clone(),
        key: key.clone(),
    }) else {
        panic!("the room is stored");
    };
    let mut old = parse(&doc);
    old.remove_attr("secret");
    store.execute(StorageRequest::StoreBlob {
        account: account.clone(),
        key: key.clone(),
        value: Some(old.to_xml()),
        limit: None,
    });
    let mut h = restarted(3);
    h.routed(
        0,
        parse(&format!(
            "<presence xmlns='jabber:client' from='{BOB}' to='{ROOM}/Bob'/>"
        )),
    );
    let outs = pending(&mut h);
    assert!(
        routed_of(&outs).is_empty(),
        "nothing leaves before the room is read"
    );
    answer(&mut h, &mut store, outs);
    let out = durable_first(
        &mut h,
        &mut store,
        |r| matches!(r, StorageRequest::StoreBlob { value: Some(v), .. } if v.contains("secret=")),
        "no occupant id leaves before its secret is stored",
    );
    let drawn = occupant_id_of(self_presence(&out, BOB).expect("bob enters")).expect("an id");
    let mut h = restarted(4);
    let out = join(&mut h, &mut store, BOB, ROOM, "Bob2");
    let again = occupant_id_of(self_presence(&out, BOB).expect("bob enters")).expect("an id");
    assert_eq!(drawn, again);
}

fn say(h: &mut Hub, store: &mut MemoryStore, who: &str, body: &str) -> Vec<Element> {
    send(
        h,
        store,
        &format!("<message xmlns='jabber:client' type='groupchat' from='{who}' to='{ROOM}' id='{body}'><body>{body}</body></message>"),
    )
}

/// The stanza-id the room gave the message `body`, as `to` got it.
fn stanza_id_of(out: &[Element], to: &str, body: &str) -> String {
    out.iter()
        .find(|m| {
            m.attr("to") == Some(to) && m.child_text(ns::CLIENT, "body").as_deref() == Some(body)
        })
        .and_then(|m| m.child(message::SID, "stanza-id"))
        .and_then(|s| s.attr("id"))
        .expect("a stanza-id")
        .to_owned()
}

/// The discussion history `to` got on entering, as it goes on the wire
/// (attribute order aside).
fn history_of(out: &[Element], to: &str) -> Vec<Element> {
    out.iter()
        .filter(|m| {
            m.name == "message" && m.attr("to") == Some(to) && m.child(ns::DELAY, "delay").is_some()
        })
        .map(|m| parse(&m.to_xml()))
        .collect()
}

/// A persistent room's history comes back from its archive after a
/// restart (as Prosody's mod_muc_mam): the same stanzas a joiner got
/// before it (delay from the room, the occupant JID, occupant id and
/// stanza-id), the moderated message left out; stanzas wait for both the
/// room and its history.
#[test]
fn history_survives_a_restart_from_the_archive() {
    let mut store = MemoryStore::new();
    let live = {
        let mut h = restarted(1);
        join(&mut h, &mut store, ALICE, ROOM, "Alice");
        configure(
            &mut h,
            &mut store,
            ALICE,
            ROOM,
            &[("muc#roomconfig_persistentroom", "1")],
        );
        say(&mut h, &mut store, ALICE, "one");
        let out = say(&mut h, &mut store, ALICE, "spam");
        let spam = stanza_id_of(&out, ALICE, "spam");
        say(&mut h, &mut store, ALICE, "two");
        let out = iq(
            &mut h,
            &mut store,
            ALICE,
            ROOM,
            "set",
            &format!("<moderate xmlns='urn:xmpp:message-moderate:1' id='{spam}'><retract xmlns='urn:xmpp:message-retract:1'/></moderate>"),
        );
        assert_eq!(error_of(&out), None);
        let out = join(&mut h, &mut store, CAROL, ROOM, "Carol");
        history_of(&out, CAROL)
    };
    let bodies: Vec<String> = live
        .iter()
        .filter_map(|m| m.child_text(ns::CLIENT, "body"))
        .collect();
    assert_eq!(bodies, ["one", "two"]);

    let mut h = restarted(2);
    h.routed(
        0,
        parse(&format!(
            "<presence xmlns='jabber:client' from='{CAROL}' to='{ROOM}/Carol'/>"
        )),
    );
    // The room's document, then its archive; nothing leaves before both.
    for want in ["LoadBlob", "QueryArchive"] {
        let outs: Vec<HubOutput> = std::iter::from_fn(|| h.poll_output()).collect();
        assert!(!outs.iter().any(|o| matches!(o, HubOutput::Route(_))));
        let mut asked = Vec::new();
        for o in outs {
            if let HubOutput::Storage { id, request } = o {
                asked.push(format!("{request:?}"));
                let r = store.execute(request);
                h.handle_storage(0, id, r);
            }
        }
        assert!(
            asked.iter().any(|r| r.starts_with(want)),
            "{want} expected: {asked:?}"
        );
    }
    let out = drive(&mut h, &mut store);
    assert_eq!(history_of(&out, CAROL), live, "the same stanzas as live");
}

/// The history read back keeps the newest `max_history_messages`.
#[test]
fn history_from_the_archive_keeps_the_newest() {
    let mut store = MemoryStore::new();
    let settings = Settings {
        max_history_messages: 3,
        ..Settings::default()
    };
    let live = {
        let mut h = hub_with(settings.clone());
        join(&mut h, &mut store, ALICE, ROOM, "Alice");
        configure(
            &mut h,
            &mut store,
            ALICE,
            ROOM,
            &[("muc#roomconfig_persistentroom", "1")],
        );
        for i in 0..5 {
            say(&mut h, &mut store, ALICE, &format!("m{i}"));
        }
        history_of(&join(&mut h, &mut store, BOB, ROOM, "Bob"), BOB)
    };
    assert_eq!(live.len(), 3);
    let mut h = hub_with(settings);
    let out = join(&mut h, &mut store, BOB, ROOM, "Bob");
    assert_eq!(history_of(&out, BOB), live);
    // A room without an archive reads none.
    let mut h = hub();
    join(
        &mut h,
        &mut store,
        ALICE,
        "quiet@conference.localhost",
        "Alice",
    );
    configure(
        &mut h,
        &mut store,
        ALICE,
        "quiet@conference.localhost",
        &[
            ("muc#roomconfig_persistentroom", "1"),
            ("muc#roomconfig_enablelogging", "0"),
        ],
    );
    send(&mut h, &mut store, &format!("<message xmlns='jabber:client' type='groupchat' from='{ALICE}' to='quiet@conference.localhost'><body>unlogged</body></message>"));
    let mut h = hub();
    h.routed(
        0,
        parse(&format!(
            "<presence xmlns='jabber:client' from='{BOB}' to='quiet@conference.localhost/Bob'/>"
        )),
    );
    let mut asked = Vec::new();
    loop {
        let outs: Vec<HubOutput> = std::iter::from_fn(|| h.poll_output()).collect();
        if outs.is_empty() {
            break;
        }
        for o in outs {
            if let HubOutput::Storage { id, request } = o {
                asked.push(format!("{request:?}"));
                let r = store.execute(request);
                h.handle_storage(0, id, r);
            }
        }
    }
    assert!(
        !asked.iter().any(|r| r.starts_with("QueryArchive")),
        "{asked:?}"
    );
}

/// The archived message named by `id` in `ROOM`'s archive.
fn archived(store: &mut MemoryStore, id: &str) -> Option<String> {
    let id = crate::archive::ArchiveId::parse(id)?;
    match store.execute(retract::read(ROOM, id)) {
        StorageResult::ArchivePage(p) => p.items.into_iter().next().map(|m| m.stanza),
        _ => None,
    }
}

fn moderate(h: &mut Hub, store: &mut MemoryStore, id: &str) -> Vec<Element> {
    iq(
        h,
        store,
        ALICE,
        ROOM,
        "set",
        &format!("<moderate xmlns='urn:xmpp:message-moderate:1' id='{id}'><retract xmlns='urn:xmpp:message-retract:1'/></moderate>"),
    )
}

/// XEP-0425 §6: a message no longer in the history is read from the
/// archive and replaced by its tombstone there; an id the archive does
/// not hold is item-not-found; moderations waiting for the archive are
/// bounded.
#[test]
fn moderation_leaves_a_tombstone_in_the_archive() {
    let mut store = MemoryStore::new();
    let mut h = hub_with(Settings {
        max_history_messages: 1,
        ..Settings::default()
    });
    join(&mut h, &mut store, ALICE, ROOM, "Alice");
    configure(
        &mut h,
        &mut store,
        ALICE,
        ROOM,
        &[("muc#roomconfig_persistentroom", "1")],
    );
    join(&mut h, &mut store, BOB, ROOM, "Bob");
    let out = say(&mut h, &mut store, BOB, "old");
    let old = stanza_id_of(&out, BOB, "old");
    say(&mut h, &mut store, BOB, "new");
    assert!(archived(&mut store, &old).is_some_and(|s| s.contains("<body>old</body>")));
    // "old" left the history (it keeps one message): read, then replaced.
    let out = moderate(&mut h, &mut store, &old);
    assert_eq!(error_of(&out), None);
    assert!(out
        .iter()
        .any(|e| e.name == "iq" && e.attr("type") == Some("result")));
    let tomb = parse(&archived(&mut store, &old).expect("still archived"));
    assert_eq!(tomb.child(ns::CLIENT, "body"), None, "the body is gone");
    assert_eq!(tomb.attr("from"), Some("keep@conference.localhost/Bob"));
    assert!(tomb.child(occupant_id::NS, "occupant-id").is_some());
    let retracted = tomb
        .child(retract::RETRACT_1, "retracted")
        .expect("a tombstone");
    assert_eq!(
        retracted
            .child(retract::MODERATE_1, "moderated")
            .and_then(|m| m.attr("by")),
        Some("keep@conference.localhost/Alice")
    );
    // Again: a tombstone is nothing to moderate.
    let out = moderate(&mut h, &mut store, &old);
    assert_eq!(error_of(&out).as_deref(), Some("item-not-found"));
    // An id of ours the archive never held.
    let unknown = crate::archive::ArchiveId::first_at(1).to_string();
    let out = moderate(&mut h, &mut store, &unknown);
    assert_eq!(error_of(&out).as_deref(), Some("item-not-found"));
    // A participant may not, and is told so before any read.
    h.routed(0, parse(&format!("<iq xmlns='jabber:client' type='set' id='q' from='{BOB}' to='{ROOM}'><moderate xmlns='urn:xmpp:message-moderate:1' id='{old}'><retract xmlns='urn:xmpp:message-retract:1'/></moderate></iq>")));
    let outs = pending(&mut h);
    assert!(!outs.iter().any(|o| matches!(o, HubOutput::Storage { .. })));
    assert_eq!(error_of(&routed_of(&outs)).as_deref(), Some("forbidden"));

    // At most 256 wait for the archive; the next is refused.
    for _ in 0..256 {
        h.routed(0, parse(&format!("<iq xmlns='jabber:client' type='set' id='q' from='{ALICE}' to='{ROOM}'><moderate xmlns='urn:xmpp:message-moderate:1' id='{old}'><retract xmlns='urn:xmpp:message-retract:1'/></moderate></iq>")));
    }
    let waiting = pending(&mut h);
    assert_eq!(
        waiting
            .iter()
            .filter(|o| matches!(o, HubOutput::Storage { .. }))
            .count(),
        256
    );
    let out = moderate(&mut h, &mut store, &old);
    assert_eq!(error_of(&out).as_deref(), Some("resource-constraint"));
    let out = answer_writes(&mut h, &mut store, waiting);
    assert_eq!(
        out.iter()
            .filter(|e| e.attr("type") == Some("error"))
            .count(),
        256,
        "each answered once read"
    );
}

/// `muc_log_all_rooms`: a temporary instant room is archived, and an
/// owner switching logging off does not stop it.
#[test]
fn log_all_rooms_archives_every_room() {
    let mut store = MemoryStore::new();
    let mut h = hub_with(Settings {
        log_all_rooms: true,
        defaults: config::RoomConfig {
            logging: true,
            ..config::RoomConfig::default()
        },
        ..Settings::default()
    });
    join(&mut h, &mut store, ALICE, ROOM, "Alice");
    configure(
        &mut h,
        &mut store,
        ALICE,
        ROOM,
        &[("muc#roomconfig_enablelogging", "0")],
    );
    let out = join(&mut h, &mut store, BOB, ROOM, "Bob");
    let own = self_presence(&out, BOB).expect("Bob's self-presence");
    let codes: Vec<&str> = own
        .child(protocol::USER, "x")
        .map(|x| x.elements().filter_map(|s| s.attr("code")).collect())
        .unwrap_or_default();
    assert!(codes.contains(&"170"), "told the room is logged: {codes:?}");
    send(
        &mut h,
        &mut store,
        &format!("<message xmlns='jabber:client' type='groupchat' from='{BOB}' to='{ROOM}'><body>kept</body></message>"),
    );
    let out = iq(
        &mut h,
        &mut store,
        ALICE,
        ROOM,
        "set",
        "<query xmlns='urn:xmpp:mam:2' queryid='f'/>",
    );
    assert!(
        out.iter().any(|e| e.name == "message"
            && e.to_xml().contains("kept")
            && e.to_xml().contains("urn:xmpp:mam:2")),
        "the message is in the room's archive: {out:?}"
    );
}

/// A relayed iq arms the hub's timer; at its deadline the asker hears
/// `recipient-unavailable` and the timer is disarmed. A request whose
/// target is kicked is answered at once.
#[test]
fn relayed_iqs_time_out_on_the_hub_timer() {
    let mut store = MemoryStore::new();
    let mut h = hub_with(Settings {
        lock_new_rooms: false,
        relayed_iq_timeout_ms: 30_000,
        ..Settings::default()
    });
    join(&mut h, &mut store, ALICE, ROOM, "Alice");
    join(&mut h, &mut store, BOB, ROOM, "Bob");
    assert_eq!(h.poll_timeout(), None);
    let ask = |id: &str| {
        parse(&format!("<iq xmlns='jabber:client' type='get' id='{id}' from='{ALICE}' to='{ROOM}/Bob'><query xmlns='jabber:iq:version'/></iq>"))
    };
    h.routed(1_000, ask("v1"));
    let out = drive(&mut h, &mut store);
    assert!(out.iter().any(|e| e.attr("to") == Some(BOB)));
    assert_eq!(h.poll_timeout(), Some(31_000));
    h.handle_timeout(30_999);
    assert!(drive(&mut h, &mut store).is_empty());
    h.handle_timeout(31_000);
    let out = drive(&mut h, &mut store);
    assert_eq!(out.len(), 1, "{out:?}");
    assert_eq!(out[0].attr("id"), Some("v1"));
    assert_eq!(out[0].attr("to"), Some(ALICE));
    assert_eq!(error_of(&out).as_deref(), Some("recipient-unavailable"));
    assert_eq!(h.poll_timeout(), None);

    // Bob is kicked with a request waiting on him: answered at once.
    h.routed(40_000, ask("v2"));
    drive(&mut h, &mut store);
    let out = iq(&mut h, &mut store, ALICE, ROOM, "set", "<query xmlns='http://jabber.org/protocol/muc#admin'><item nick='Bob' role='none'/></query>");
    let answered: Vec<_> = out.iter().filter(|e| e.attr("id") == Some("v2")).collect();
    assert_eq!(answered.len(), 1, "{out:?}");
    assert_eq!(error_of(&out).as_deref(), Some("recipient-unavailable"));
    assert_eq!(h.poll_timeout(), None);
}

/// One admin request may not demote every owner at once: the last-owner
/// rule (§10.6) holds for the request as a whole, as it does for the
/// configuration form's owner list, and nothing of it applies.
#[test]
fn the_last_owner_rule_holds_for_a_whole_request() {
    let mut store = MemoryStore::new();
    let mut h = hub_with(Settings {
        lock_new_rooms: false,
        ..Settings::default()
    });
    join(&mut h, &mut store, ALICE, ROOM, "Alice");
    let out = iq(&mut h, &mut store, ALICE, ROOM, "set", "<query xmlns='http://jabber.org/protocol/muc#admin'><item affiliation='owner' jid='bob@localhost'/></query>");
    assert_eq!(error_of(&out), None, "{out:?}");
    let out = iq(&mut h, &mut store, ALICE, ROOM, "set", "<query xmlns='http://jabber.org/protocol/muc#admin'><item affiliation='member' jid='carol@localhost'/><item affiliation='admin' jid='bob@localhost'/><item affiliation='member' jid='alice@localhost'/></query>");
    assert_eq!(error_of(&out).as_deref(), Some("conflict"));
    let list = |h: &mut Hub, store: &mut MemoryStore, a: &str| {
        let out = iq(h, store, ALICE, ROOM, "get", &format!("<query xmlns='http://jabber.org/protocol/muc#admin'><item affiliation='{a}'/></query>"));
        out.iter()
            .filter_map(|e| e.child(protocol::ADMIN, "query"))
            .flat_map(|q| {
                q.elements()
                    .filter_map(|i| i.attr("jid").map(str::to_owned))
            })
            .collect::<Vec<_>>()
    };
    assert!(
        list(&mut h, &mut store, "member").is_empty(),
        "nothing applied"
    );
    assert_eq!(
        list(&mut h, &mut store, "owner"),
        ["alice@localhost", "bob@localhost"]
    );
    // One at a time, each leaving an owner, they pass.
    let out = iq(&mut h, &mut store, ALICE, ROOM, "set", "<query xmlns='http://jabber.org/protocol/muc#admin'><item affiliation='admin' jid='bob@localhost'/></query>");
    assert_eq!(error_of(&out), None, "{out:?}");
}

const SERVICE: &str = "conference.localhost";

fn disco_items(h: &mut Hub, store: &mut MemoryStore, set: &str) -> Element {
    let out = iq(
        h,
        store,
        CAROL,
        SERVICE,
        "get",
        &format!("<query xmlns='http://jabber.org/protocol/disco#items'>{set}</query>"),
    );
    let [answer] = out.as_slice() else {
        panic!("one answer: {out:?}");
    };
    answer
        .child(ns::DISCO_ITEMS, "query")
        .cloned()
        .unwrap_or_else(|| panic!("a listing: {answer:?}"))
}

fn listed_jids(q: &Element) -> Vec<String> {
    q.elements()
        .filter(|e| e.name == "item")
        .filter_map(|e| e.attr("jid").map(str::to_owned))
        .collect()
}

/// 600 stored rooms (a third of them hidden) and two temporary rooms in
/// memory: XEP-0059 pages of 50 walk the whole listing once, in order; a
/// client without RSM gets the first 100 and the `<set/>` saying where
/// they end; a larger `max` is capped.
#[test]
fn the_listing_pages_through_every_stored_room() {
    let mut store = MemoryStore::new();
    for i in 0..600 {
        let jid = format!("r{i:03}@{SERVICE}");
        let mut room = Room::new(
            &jid,
            "owner@localhost",
            Settings::default().defaults,
            occupant_id::Secret::from_bytes(&[1; occupant_id::SECRET_BYTES]),
        );
        room.locked = false;
        room.config.persistent = true;
        room.config.public = i % 3 != 0;
        room.config.name = format!("Room {i}");
        store.execute(StorageRequest::StoreBlob {
            account: SERVICE.to_owned(),
            key: store::key(&jid),
            value: Some(store::document(&room)),
            limit: None,
        });
    }
    let mut h = hub_with(Settings {
        lock_new_rooms: false,
        ..Settings::default()
    });
    // Temporary rooms, in memory only.
    join(
        &mut h,
        &mut store,
        ALICE,
        &format!("r250a@{SERVICE}"),
        "Alice",
    );
    join(&mut h, &mut store, BOB, &format!("a@{SERVICE}"), "Bob");
    let mut want: Vec<String> = (0..600)
        .filter(|i| i % 3 != 0)
        .map(|i| format!("r{i:03}@{SERVICE}"))
        .collect();
    want.push(format!("r250a@{SERVICE}"));
    want.push(format!("a@{SERVICE}"));
    want.sort_by(|a, b| a.split('@').next().cmp(&b.split('@').next()));

    let rsm = protocol_rsm();
    let mut seen = Vec::new();
    let mut after = String::new();
    let mut pages = 0;
    loop {
        let set = if after.is_empty() {
            format!("<set xmlns='{rsm}'><max>50</max></set>")
        } else {
            format!("<set xmlns='{rsm}'><max>50</max><after>{after}</after></set>")
        };
        let q = disco_items(&mut h, &mut store, &set);
        let page = listed_jids(&q);
        assert!(q.child(rsm, "set").is_some(), "an RSM request gets a set");
        if page.is_empty() {
            break;
        }
        assert!(page.len() <= 50);
        let last = q
            .child(rsm, "set")
            .and_then(|s| s.child_text(rsm, "last"))
            .unwrap_or_default();
        assert_eq!(Some(&last), page.last());
        after = last;
        seen.extend(page);
        pages += 1;
        assert!(pages < 20, "the paging ends");
    }
    assert_eq!(seen, want);
    assert_eq!(pages, 9, "402 rooms in pages of 50");

    // Without RSM: the first 100, and where they end.
    let q = disco_items(&mut h, &mut store, "");
    assert_eq!(listed_jids(&q), want[..100]);
    let last = q.child(rsm, "set").and_then(|s| s.child_text(rsm, "last"));
    assert_eq!(last.as_deref(), Some(want[99].as_str()));
    // A larger max is capped.
    let q = disco_items(
        &mut h,
        &mut store,
        &format!("<set xmlns='{rsm}'><max>1000</max></set>"),
    );
    assert_eq!(listed_jids(&q).len(), 100);
    // From the middle: the rest.
    let q = disco_items(
        &mut h,
        &mut store,
        &format!(
            "<set xmlns='{rsm}'><max>100</max><after>{}</after></set>",
            want[399]
        ),
    );
    assert_eq!(listed_jids(&q), want[400..]);
}

fn protocol_rsm() -> &'static str {
    crate::modules::mam::rsm::NS
}

/// Listing requests read storage at most 16 at a time; one more is refused
/// with resource-constraint rather than holding another read.
#[test]
fn listing_reads_at_once_are_bounded() {
    let mut store = MemoryStore::new();
    let mut h = hub();
    for i in 0..17 {
        h.routed(
            0,
            parse(&format!("<iq xmlns='jabber:client' type='get' id='l{i}' from='{CAROL}' to='{SERVICE}'><query xmlns='http://jabber.org/protocol/disco#items'/></iq>")),
        );
    }
    let outs = pending(&mut h);
    let refused = routed_of(&outs);
    assert_eq!(refused.len(), 1, "{refused:?}");
    assert_eq!(refused[0].attr("id"), Some("l16"));
    assert_eq!(error_of(&refused).as_deref(), Some("resource-constraint"));
    let answered = answer_writes(&mut h, &mut store, outs);
    assert_eq!(answered.len(), 16);
    // Answered, they make room again.
    let q = disco_items(&mut h, &mut store, "");
    assert!(listed_jids(&q).is_empty());
}
