//! A room's presence state against a model under random joins, leaves,
//! nick changes, kicks and disconnects (XEP-0045 §7.2, §7.6, §7.14,
//! §8.2): after every step the room's occupants are the model's, and
//! every session in the room believes (from the presence it was sent,
//! 303 nick changes included) exactly the model's nicks are present.

use proptest::prelude::*;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use xmpp_core::modules::muc::config::RoomConfig;
use xmpp_core::modules::muc::occupant_id::Secret;
use xmpp_core::modules::muc::protocol::USER;
use xmpp_core::modules::muc::room::{Env, Room};
use xmpp_core::modules::muc::settings::Settings;
use xmpp_core::xml::Element;

const ROOM: &str = "r@conference.localhost";
const NICKS: [&str; 4] = ["a", "b", "c", "d"];

#[derive(Debug, Clone)]
enum Op {
    /// User `u`'s resource `r` sends available presence to nick `n`
    /// (a join, an update or a nick change).
    Presence(usize, usize, usize),
    /// An unavailable presence.
    Leave(usize, usize),
    /// The client vanished: the hub's unavailable (or a bounced error).
    Disconnect(usize, usize, bool),
    /// The owner (user 0's first session) kicks nick `n`.
    Kick(usize),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0..4usize, 0..2usize, 0..4usize).prop_map(|(u, r, n)| Op::Presence(u, r, n)),
        1 => (0..4usize, 0..2usize).prop_map(|(u, r)| Op::Leave(u, r)),
        1 => (0..4usize, 0..2usize, any::<bool>()).prop_map(|(u, r, e)| Op::Disconnect(u, r, e)),
        1 => (0..4usize).prop_map(Op::Kick),
    ]
}

fn full(u: usize, r: usize) -> String {
    format!("u{u}@localhost/r{r}")
}

fn bare(u: usize) -> String {
    format!("u{u}@localhost")
}

fn presence(kind: Option<&str>) -> Element {
    let mut p = Element::new("jabber:client", "presence");
    if let Some(k) = kind {
        p.set_attr("type", k);
    }
    p
}

/// The model: nick → (bare JID, sessions).
type Model = BTreeMap<String, (String, BTreeSet<String>)>;

fn nick_of(model: &Model, session: &str) -> Option<String> {
    model
        .iter()
        .find(|(_, (_, s))| s.contains(session))
        .map(|(n, _)| n.clone())
}

fn remove_session(model: &mut Model, session: &str) {
    if let Some(n) = nick_of(model, session) {
        if let Some((_, s)) = model.get_mut(&n) {
            s.remove(session);
            if s.is_empty() {
                model.remove(&n);
            }
        }
    }
}

/// What each session believes is present, from what it was sent.
fn observe(views: &mut HashMap<String, BTreeSet<String>>, out: &[Element]) {
    for p in out.iter().filter(|e| e.name == "presence") {
        let (Some(to), Some(from)) = (p.attr("to"), p.attr("from")) else {
            continue;
        };
        let Some((_, nick)) = from.split_once('/') else {
            continue;
        };
        let own = p.child(USER, "x").is_some_and(|x| {
            x.elements()
                .any(|s| s.name == "status" && s.attr("code") == Some("110"))
        });
        let nick_change = p.child(USER, "x").is_some_and(|x| {
            x.elements()
                .any(|s| s.name == "status" && s.attr("code") == Some("303"))
        });
        if p.attr("type") == Some("unavailable") {
            if own && !nick_change {
                views.remove(to);
            } else if let Some(v) = views.get_mut(to) {
                v.remove(nick);
            }
        } else if p.attr("type").is_none() {
            views
                .entry(to.to_owned())
                .or_default()
                .insert(nick.to_owned());
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn presence_state_matches_the_model(ops in proptest::collection::vec(op(), 1..60)) {
        let settings = Settings::default();
        let env = Env { now: 0, settings: &settings };
        let mut room = Room::new(ROOM, &bare(0), RoomConfig::default(), Secret::from_bytes(b"k"));
        room.locked = false;
        let mut model = Model::new();
        let mut views: HashMap<String, BTreeSet<String>> = HashMap::new();
        for op in ops {
            let out = match op {
                Op::Presence(u, r, n) => {
                    let (me, nick) = (full(u, r), NICKS[n]);
                    match nick_of(&model, &me) {
                        Some(current) if current == nick => {}
                        Some(current) => {
                            if !model.contains_key(nick) {
                                if let Some(entry) = model.remove(&current) {
                                    model.insert(nick.to_owned(), entry);
                                }
                            }
                        }
                        None => match model.get_mut(nick) {
                            Some((b, s)) if *b == bare(u) => {
                                s.insert(me.clone());
                            }
                            Some(_) => {}
                            None => {
                                model.insert(nick.to_owned(), (bare(u), [me.clone()].into()));
                            }
                        },
                    }
                    let p = presence(None);
                    match room.by_jid.get(&me).cloned() {
                        Some(c) if c == nick => room.update(&env, &me, &p),
                        Some(_) => room.change_nick(&env, &me, nick).unwrap_or_default(),
                        None => room.enter(&env, &me, &bare(u), nick, &p, false).unwrap_or_default(),
                    }
                }
                Op::Leave(u, r) => {
                    remove_session(&mut model, &full(u, r));
                    room.leave(&env, &full(u, r), &presence(Some("unavailable")))
                }
                Op::Disconnect(u, r, error) => {
                    remove_session(&mut model, &full(u, r));
                    let kind = if error { "error" } else { "unavailable" };
                    room.leave(&env, &full(u, r), &presence(Some(kind)))
                }
                Op::Kick(n) => {
                    let owner = full(0, 0);
                    let target = model.get(NICKS[n]).map(|(b, _)| b.clone());
                    // The owner must be present (a moderator), and owners
                    // are not kicked (§8.2).
                    if nick_of(&model, &owner).is_some()
                        && target.as_ref().is_some_and(|b| *b != bare(0))
                    {
                        model.remove(NICKS[n]);
                    }
                    let iq = Element::parse(format!(
                        "<iq xmlns='jabber:client' type='set' id='k' from='{owner}' to='{ROOM}'><query xmlns='http://jabber.org/protocol/muc#admin'><item nick='{}' role='none'/></query></iq>",
                        NICKS[n]
                    ).as_bytes()).expect("XML");
                    room.admin(&env, &owner, &bare(0), &iq).map(|d| d.then).unwrap_or_default()
                }
            };
            observe(&mut views, &out);
            // The room's occupants are the model's.
            let actual: Model = room
                .occupants
                .iter()
                .map(|(n, o)| (n.clone(), (o.bare.clone(), o.jids().map(str::to_owned).collect())))
                .collect();
            prop_assert_eq!(&actual, &model);
            let sessions: usize = model.values().map(|(_, s)| s.len()).sum();
            prop_assert_eq!(room.by_jid.len(), sessions);
            // Every session in the room sees exactly the model's nicks;
            // nobody else believes to be in it.
            let nicks: BTreeSet<String> = model.keys().cloned().collect();
            for (_, s) in model.values() {
                for session in s {
                    prop_assert_eq!(views.get(session), Some(&nicks), "view of {}", session);
                }
            }
            for session in views.keys() {
                prop_assert!(room.by_jid.contains_key(session), "{} thinks it is in", session);
            }
        }
    }
}
