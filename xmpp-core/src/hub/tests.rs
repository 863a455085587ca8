//! Hub regressions that need precise control over when storage answers.

use super::*;
use crate::storage::AccountData;

fn hub() -> Hub {
    Hub::new(Arc::new(HubConfig::default()))
}

fn outputs(hub: &mut Hub) -> Vec<HubOutput> {
    std::iter::from_fn(|| hub.poll_output()).collect()
}

fn load_request(out: &[HubOutput]) -> Option<RequestId> {
    out.iter().find_map(|o| match o {
        HubOutput::Storage {
            id,
            request: StorageRequest::LoadAccount { .. },
        } => Some(*id),
        _ => None,
    })
}

fn jid(s: &str) -> Jid {
    Jid::parse(s).expect("valid test JID")
}

fn chat(to: &str, from: &str) -> Element {
    Element::new(crate::ns::CLIENT, "message")
        .with_attr("to", to)
        .with_attr("from", from)
        .with_attr("type", "chat")
        .with_child(Element::new(crate::ns::CLIENT, "body").with_text("hi"))
}

/// A message for an unloaded account followed by a bind, both waiting for
/// the same load: the account must not be unloaded between the two, or the
/// session is never registered and every later stanza of it goes nowhere.
#[test]
fn bind_queued_behind_routed_work_survives_the_load() {
    let mut h = hub();
    h.routed(0, chat("bob@localhost", "alice@localhost/a"));
    let id = load_request(&outputs(&mut h)).expect("account load requested");
    h.session_bound(1, 7, jid("bob@localhost/phone"));
    // The avatar hash is known (XEP-0153), so no vCard read is needed.
    let data = AccountData {
        documents: [(crate::modules::avatar::AVATAR_KEY, String::new())]
            .into_iter()
            .collect(),
        ..AccountData::default()
    };
    h.handle_storage(2, id, StorageResult::Account(Some(data)));
    let _ = outputs(&mut h);
    assert_eq!(h.session_count(), 1);
    // The session answers: a ping to the account comes back to it.
    let ping = Element::new(crate::ns::CLIENT, "iq")
        .with_attr("type", "get")
        .with_attr("id", "p1")
        .with_attr("from", "bob@localhost/phone")
        .with_child(Element::new(crate::ns::PING, "ping"));
    h.from_session(3, 7, ping);
    let routed: Vec<Element> = outputs(&mut h)
        .into_iter()
        .filter_map(|o| match o {
            HubOutput::Route(e) => Some(e),
            _ => None,
        })
        .collect();
    assert_eq!(routed.len(), 1);
    h.routed(4, routed[0].clone());
    let delivered = outputs(&mut h).into_iter().any(|o| {
        matches!(o, HubOutput::Deliver { conn: 7, ref stanza } if stanza.attr("type") == Some("result"))
    });
    assert!(delivered, "ping result reaches the session");
}

/// Presence for an account with no sessions needs no storage.
#[test]
fn presence_to_unloaded_account_causes_no_load() {
    let mut h = hub();
    for ptype in [None, Some("unavailable"), Some("probe")] {
        let mut p = Element::new(crate::ns::CLIENT, "presence")
            .with_attr("to", "bob@localhost")
            .with_attr("from", "alice@localhost/a");
        if let Some(t) = ptype {
            p.set_attr("type", t);
        }
        h.routed(0, p);
        assert!(outputs(&mut h).is_empty(), "{ptype:?}");
    }
}

/// Modules switched off by configuration neither answer nor show in disco.
#[test]
fn disabled_modules_leave_disco_and_stop_answering() {
    let mut modules = crate::modules::ModuleSet::standard();
    modules.remove(crate::modules::carbons::ID);
    modules.remove(crate::modules::time::ID);
    let cfg = HubConfig {
        modules,
        ..HubConfig::default()
    };
    let h = Hub::new(Arc::new(cfg));
    assert!(!h.features().contains(&crate::modules::carbons::NS));
    assert!(!h.features().contains(&"urn:xmpp:time"));
    assert!(h.features().contains(&crate::modules::blocking::NS));
    let on = hub();
    assert!(on.features().contains(&crate::modules::carbons::NS));
    assert!(on.features().contains(&"urn:xmpp:time"));
}

/// One XEP-0357 registration with the app server `push.localhost`.
fn push_to_app_server() -> crate::modules::push::PushState {
    let mut state = crate::modules::push::PushState::default();
    state.enable(
        crate::modules::push::Registration {
            jid: "push.localhost".into(),
            node: "n1".into(),
            options: None,
        },
        16,
    );
    state
}

/// XEP-0357 across partitions, as the runtime runs it: the account's hub
/// publishes and tells the domain's hub whose publish it was (before the
/// publish leaves); the domain's hub gets the app server's refusal and
/// sends it back; the account's hub then forgets the registration.
#[test]
fn push_refusal_travels_between_partitions() {
    let cfg = Arc::new(HubConfig {
        components: vec!["push.localhost".into()],
        ..HubConfig::default()
    });
    let (mut account_hub, mut domain_hub) = (Hub::new(cfg.clone()), Hub::new(cfg));
    let state = push_to_app_server();
    let data = || AccountData {
        // The avatar hash is known (no vCard photo), so no vCard read.
        documents: [
            (
                crate::storage::PUSH_KEY,
                state.to_document().unwrap_or_default(),
            ),
            (crate::modules::avatar::AVATAR_KEY, String::new()),
        ]
        .into_iter()
        .collect(),
        ..AccountData::default()
    };
    account_hub.routed(0, chat("bob@localhost", "alice@localhost/a"));
    let id = load_request(&outputs(&mut account_hub)).expect("load");
    account_hub.handle_storage(1, id, StorageResult::Account(Some(data())));
    let out = outputs(&mut account_hub);
    let forward = out
        .iter()
        .position(|o| matches!(o, HubOutput::Forward { owner, .. } if owner == "localhost"))
        .expect("a notice to the domain's partition");
    let publish = out
        .iter()
        .position(|o| matches!(o, HubOutput::Route(e) if e.attr("to") == Some("push.localhost")))
        .expect("a publish to the app server");
    assert!(forward < publish, "the notice leaves first: {out:?}");
    let (HubOutput::Forward { notice, .. }, HubOutput::Route(iq)) = (&out[forward], &out[publish])
    else {
        unreachable!()
    };
    assert_eq!(iq.attr("from"), Some("localhost"));

    domain_hub.notice(2, notice.clone());
    let refusal = Element::new(crate::ns::CLIENT, "iq")
        .with_attr("type", "error")
        .with_attr("from", "push.localhost")
        .with_attr("to", "localhost")
        .with_attr("id", iq.attr("id").unwrap_or_default())
        .with_child(
            Element::new(crate::ns::CLIENT, "error")
                .with_attr("type", "cancel")
                .with_child(Element::new(crate::ns::STANZA_ERRORS, "item-not-found")),
        );
    domain_hub.routed(3, refusal.clone());
    let back = outputs(&mut domain_hub)
        .into_iter()
        .find_map(|o| match o {
            HubOutput::Forward { owner, notice } if owner == "bob@localhost" => Some(notice),
            _ => None,
        })
        .expect("the refusal goes to the account's partition");
    // A second copy of the reply finds nothing to act on.
    domain_hub.routed(4, refusal);
    assert!(outputs(&mut domain_hub).is_empty());

    account_hub.notice(5, back);
    let id = load_request(&outputs(&mut account_hub)).expect("load again");
    account_hub.handle_storage(6, id, StorageResult::Account(Some(data())));
    let cleared = outputs(&mut account_hub).into_iter().any(|o| {
        matches!(o, HubOutput::Storage {
            request: StorageRequest::StoreBlob { ref key, value: None, .. }, ..
        } if key == crate::storage::PUSH_KEY)
    });
    assert!(cleared, "the registration is removed from storage");
}

/// An account stored before avatar hashes were kept (XEP-0153): its vCard
/// is read once while the work queued for it waits, the hash is stored,
/// and the first presence already carries it.
#[test]
fn legacy_account_gets_its_avatar_hash_before_its_first_presence() {
    let mut h = hub();
    h.session_bound(0, 7, jid("bob@localhost/phone"));
    let id = load_request(&outputs(&mut h)).expect("account load requested");
    h.from_session(1, 7, Element::new(crate::ns::CLIENT, "presence"));
    h.handle_storage(2, id, StorageResult::Account(Some(AccountData::default())));
    let out = outputs(&mut h);
    let vcard_read = out.iter().find_map(|o| match o {
        HubOutput::Storage {
            id,
            request: StorageRequest::LoadBlob { key, .. },
        } if key == "vcard" => Some(*id),
        _ => None,
    });
    let read = vcard_read.expect("the vCard is read");
    assert!(
        !out.iter().any(|o| matches!(o, HubOutput::Deliver { .. })),
        "the presence waits for the hash: {out:?}"
    );
    let vcard = "<vCard xmlns='vcard-temp'><PHOTO><BINVAL>aGVsbG8=</BINVAL></PHOTO></vCard>";
    h.handle_storage(3, read, StorageResult::Blob(Some(vcard.into())));
    let out = outputs(&mut h);
    let stored = out.iter().any(|o| {
        matches!(o, HubOutput::Storage { request: StorageRequest::StoreBlob { key, value: Some(v), .. }, .. }
            if key == "avatar" && v == "aaf4c61ddcc5e8a2dabede0f3b482cd9aea9434d")
    });
    assert!(stored, "{out:?}");
    let own = out.iter().find_map(|o| match o {
        HubOutput::Deliver { conn: 7, stanza } if stanza.name == "presence" => Some(stanza),
        _ => None,
    });
    let photo = own
        .and_then(|p| p.child(crate::modules::avatar::NS, "x"))
        .and_then(|x| x.child_text(crate::modules::avatar::NS, "photo"));
    assert_eq!(
        photo.as_deref(),
        Some("aaf4c61ddcc5e8a2dabede0f3b482cd9aea9434d")
    );
}

/// The retention purge runs on the hub's timer: first a minute after the
/// start, in batches that continue at once while full, then once per
/// interval; a hub that is not the purger never asks.
#[test]
fn archive_purge_is_scheduled_and_continues_full_batches() {
    let day = 86_400_000;
    let cfg = HubConfig {
        modules: crate::modules::ModuleSet::standard().with(crate::modules::mam::Archiving::new(
            crate::modules::mam::ArchiveConfig {
                retention: Some(day),
                ..crate::modules::mam::ArchiveConfig::default()
            },
        )),
        ..HubConfig::default()
    };
    let mut h = Hub::new(Arc::new(cfg.clone()));
    assert_eq!(h.poll_timeout(), None, "no time seen yet");
    h.routed(1_000, chat("bob@localhost", "alice@localhost/a"));
    let _ = outputs(&mut h);
    assert_eq!(h.poll_timeout(), Some(61_000));
    h.handle_timeout(30_000);
    assert!(outputs(&mut h).is_empty(), "not due yet");
    h.handle_timeout(61_000);
    let out = outputs(&mut h);
    let Some((id, before, from)) = out.iter().find_map(|o| match o {
        HubOutput::Storage {
            id,
            request: StorageRequest::PurgeArchive { before, from, .. },
        } => Some((*id, *before, from.clone())),
        _ => None,
    }) else {
        panic!("purge requested: {out:?}");
    };
    assert_eq!((before, from), (61_000u64.saturating_sub(day), None));
    assert_eq!(h.poll_timeout(), None, "one purge at a time");
    h.handle_storage(
        62_000,
        id,
        StorageResult::Purged {
            removed: crate::modules::mam::PURGE_BATCH,
            next: Some("m@localhost".into()),
        },
    );
    assert_eq!(h.poll_timeout(), Some(62_000), "a full batch continues");
    h.handle_timeout(62_000);
    let next = outputs(&mut h).into_iter().find_map(|o| match o {
        HubOutput::Storage {
            id,
            request: StorageRequest::PurgeArchive { from, .. },
        } => Some((id, from)),
        _ => None,
    });
    let Some((id, from)) = next else {
        panic!("continued");
    };
    assert_eq!(from.as_deref(), Some("m@localhost"));
    h.handle_storage(
        63_000,
        id,
        StorageResult::Purged {
            removed: 3,
            next: None,
        },
    );
    assert_eq!(h.poll_timeout(), Some(63_000 + 3_600_000));

    let mut other = Hub::new(Arc::new(cfg));
    other.set_partition(1);
    other.routed(1_000, chat("bob@localhost", "alice@localhost/a"));
    assert_eq!(other.poll_timeout(), None);
}

/// A session that ends while its account loads is still delivered to by
/// work queued before its end: the runtime must keep its mailbox until the
/// hub releases the session (then reroute what it never took).
#[test]
fn a_session_closed_during_its_account_load_is_released_after_the_load() {
    let mut h = hub();
    h.session_bound(0, 7, jid("bob@localhost/phone"));
    let id = load_request(&outputs(&mut h)).expect("account load requested");
    h.routed(1, chat("bob@localhost/phone", "alice@localhost/a"));
    h.session_closed(2, 7);
    assert!(h.knows_session(7), "the close waits behind the load");
    assert!(
        !outputs(&mut h)
            .iter()
            .any(|o| matches!(o, HubOutput::Released { .. })),
        "not released before the load"
    );
    // The avatar hash is known (no vCard photo), so no vCard read.
    let data = AccountData {
        documents: [(crate::modules::avatar::AVATAR_KEY, String::new())]
            .into_iter()
            .collect(),
        ..AccountData::default()
    };
    h.handle_storage(3, id, StorageResult::Account(Some(data)));
    let out = outputs(&mut h);
    let delivered = out
        .iter()
        .position(|o| matches!(o, HubOutput::Deliver { conn: 7, .. }));
    let released = out
        .iter()
        .position(|o| matches!(o, HubOutput::Released { conn: 7 }));
    assert!(
        delivered.is_some(),
        "the message queued before the close went to the session"
    );
    assert!(released > delivered, "released after the delivery: {out:?}");
    assert!(!h.knows_session(7));
    // A session the hub no longer knows is released at once.
    h.session_closed(4, 7);
    assert_eq!(outputs(&mut h), vec![HubOutput::Released { conn: 7 }]);
}

/// Run storage requests against `store` until the hub asks for nothing
/// more; everything else it asked for, in order.
fn pump(h: &mut Hub, store: &mut crate::sim::MemoryStore) -> Vec<HubOutput> {
    let mut rest = Vec::new();
    while let Some(out) = h.poll_output() {
        match out {
            HubOutput::Storage { id, request } => {
                let result = store.execute(request);
                h.handle_storage(0, id, result);
            }
            other => rest.push(other),
        }
    }
    rest
}

fn delivered_bodies(out: &[HubOutput]) -> Vec<String> {
    out.iter()
        .filter_map(|o| match o {
            HubOutput::Deliver { stanza, .. } if stanza.name == "message" => {
                stanza.child_text(crate::ns::CLIENT, "body")
            }
            _ => None,
        })
        .collect()
}

/// The offline queue is taken one page at a time: each page ends with
/// `OfflinePageSent`, and the next is read only once the connection says
/// the client has it; a page that comes back empty ends the flush. The
/// queue's cap answers the sender of one message too many.
#[test]
fn offline_messages_come_in_pages_under_a_quota() {
    let cfg = HubConfig {
        quotas: Quotas {
            max_offline_messages: 5,
            offline_page: crate::storage::OfflinePage {
                max: 2,
                max_bytes: 1 << 20,
            },
            ..Quotas::default()
        },
        ..HubConfig::default()
    };
    let mut h = Hub::new(Arc::new(cfg));
    let mut store = crate::sim::MemoryStore::new();
    store.add_user("bob@localhost", "pw", 4096);
    for i in 0..6 {
        let mut m = chat("bob@localhost", "alice@localhost/a");
        m.children.clear();
        m = m
            .with_attr("id", format!("m{i}"))
            .with_child(Element::new(crate::ns::CLIENT, "body").with_text(format!("m{i}")));
        h.routed(0, m);
    }
    let out = pump(&mut h, &mut store);
    // The sixth is refused and its sender told so.
    let refused: Vec<&Element> = out
        .iter()
        .filter_map(|o| match o {
            HubOutput::Route(e) if e.attr("type") == Some("error") => Some(e),
            _ => None,
        })
        .collect();
    assert_eq!(refused.len(), 1);
    assert_eq!(refused[0].attr("id"), Some("m5"));
    assert!(refused[0].to_xml().contains("resource-constraint"));
    assert_eq!(store.offline("bob@localhost").len(), 5);

    h.session_bound(1, 7, jid("bob@localhost/phone"));
    let _ = pump(&mut h, &mut store);
    h.from_session(
        2,
        7,
        Element::new(crate::ns::CLIENT, "presence").with_attr("from", "bob@localhost/phone"),
    );
    let mut got = Vec::new();
    let mut pages = 0;
    loop {
        let out = pump(&mut h, &mut store);
        got.extend(delivered_bodies(&out));
        let marked = out
            .iter()
            .any(|o| matches!(o, HubOutput::OfflinePageSent { conn: 7 }));
        if !marked {
            break;
        }
        pages += 1;
        assert!(got.len() <= 2 * pages, "a page holds at most two");
        h.offline_page_delivered(3, 7);
    }
    assert_eq!(got, ["m0", "m1", "m2", "m3", "m4"]);
    assert_eq!(pages, 3);
    assert!(store.offline("bob@localhost").is_empty());
}

/// One session more than the quota is refused with resource-constraint,
/// unless a hibernated one makes room; replacing a resource is not a new
/// session.
#[test]
fn sessions_per_account_are_capped() {
    let cfg = HubConfig {
        quotas: Quotas {
            max_sessions: 2,
            ..Quotas::default()
        },
        ..HubConfig::default()
    };
    let mut h = Hub::new(Arc::new(cfg));
    let mut store = crate::sim::MemoryStore::new();
    store.add_user("bob@localhost", "pw", 4096);
    h.session_bound(0, 1, jid("bob@localhost/a"));
    h.session_bound(0, 2, jid("bob@localhost/b"));
    let _ = pump(&mut h, &mut store);
    h.session_bound(0, 3, jid("bob@localhost/c"));
    let out = pump(&mut h, &mut store);
    assert!(out.iter().any(|o| matches!(
        o,
        HubOutput::Close {
            conn: 3,
            condition: Some(StreamErrorCondition::ResourceConstraint)
        }
    )));
    assert!(!h.knows_session(3));
    h.session_bound(0, 4, jid("bob@localhost/a"));
    let out = pump(&mut h, &mut store);
    assert!(out.iter().any(|o| matches!(
        o,
        HubOutput::Close {
            conn: 1,
            condition: Some(StreamErrorCondition::Conflict)
        }
    )));
    assert_eq!(h.session_count(), 2);
    // A hibernated session (XEP-0198) makes room for a new one.
    h.session_hibernated(1, 2, &[]);
    h.session_bound(1, 5, jid("bob@localhost/d"));
    let out = pump(&mut h, &mut store);
    assert!(out.iter().any(|o| matches!(
        o,
        HubOutput::Close {
            conn: 2,
            condition: Some(StreamErrorCondition::ResourceConstraint)
        }
    )));
    assert!(h.knows_session(5) && !h.knows_session(2));
    assert_eq!(h.session_count(), 2);
}

/// A session whose connection breaks while its account still loads must
/// be hibernated once the load has run: the hibernation waits behind the
/// bind like any other work for the account. (It used to be dropped: the
/// session then counted as live, so the session cap evicted another one
/// and push notifications never fired for it.)
#[test]
fn a_session_hibernated_during_its_account_load_is_hibernated_after_it() {
    let cfg = HubConfig {
        quotas: Quotas {
            max_sessions: 1,
            ..Quotas::default()
        },
        ..HubConfig::default()
    };
    let mut h = Hub::new(Arc::new(cfg));
    let mut store = crate::sim::MemoryStore::new();
    store.add_user("bob@localhost", "pw", 4096);
    h.session_bound(0, 1, jid("bob@localhost/a"));
    // The load is still outstanding when the connection breaks.
    h.session_hibernated(1, 1, &[]);
    let _ = pump(&mut h, &mut store);
    // At the cap, a hibernated session makes room: only if the hub knew.
    h.session_bound(2, 2, jid("bob@localhost/b"));
    let out = pump(&mut h, &mut store);
    assert!(
        out.iter().any(|o| matches!(
            o,
            HubOutput::Close {
                conn: 1,
                condition: Some(StreamErrorCondition::ResourceConstraint)
            }
        )),
        "{out:?}"
    );
    assert!(h.knows_session(2) && !h.knows_session(1));
}

/// A message the hub hands a session it still believes live can reach
/// the connection after the connection reported hibernating (with nothing
/// unacknowledged yet). The hub follows the hibernation with
/// `HibernationNoted`, so the connection can tell such late stanzas from
/// those the hub knew it handed a hibernated session, and reports them;
/// the hub then wakes the client for them (XEP-0357), once.
#[test]
fn stanzas_delivered_before_the_hub_knew_of_a_hibernation_are_pushed_when_reported() {
    let cfg = Arc::new(HubConfig {
        components: vec!["push.localhost".into()],
        ..HubConfig::default()
    });
    let mut h = Hub::new(cfg);
    let mut store = crate::sim::MemoryStore::new();
    store.add_user("bob@localhost", "pw", 4096);
    let push = push_to_app_server();
    store.execute(StorageRequest::StoreBlob {
        account: "bob@localhost".into(),
        key: crate::storage::PUSH_KEY.into(),
        value: push.to_document(),
        limit: None,
    });
    let publishes = |out: &[HubOutput]| {
        out.iter()
            .filter(|o| matches!(o, HubOutput::Route(e) if e.attr("to") == Some("push.localhost")))
            .count()
    };
    h.session_bound(0, 1, jid("bob@localhost/phone"));
    let _ = pump(&mut h, &mut store);

    // Delivered while the hub believes the session live: no push.
    h.routed(1, chat("bob@localhost/phone", "alice@localhost/a"));
    let out = pump(&mut h, &mut store);
    assert_eq!(delivered_bodies(&out).len(), 1, "{out:?}");
    assert_eq!(publishes(&out), 0, "{out:?}");

    // The connection hibernates; it had nothing unacknowledged yet (the
    // message was still in its mailbox). The hub says it noted it.
    h.session_hibernated(2, 1, &[]);
    let out = pump(&mut h, &mut store);
    assert!(
        out.iter()
            .any(|o| matches!(o, HubOutput::HibernationNoted { conn: 1 })),
        "{out:?}"
    );
    assert_eq!(publishes(&out), 0, "{out:?}");

    // The connection reports the message that reached it before the note:
    // one notification.
    let late = chat("bob@localhost/phone", "alice@localhost/a");
    h.session_hibernated(3, 1, std::slice::from_ref(&late));
    let out = pump(&mut h, &mut store);
    assert_eq!(publishes(&out), 1, "{out:?}");

    // A message after the note: the hub knows, and notifies by itself.
    h.routed(4, chat("bob@localhost/phone", "alice@localhost/a"));
    let out = pump(&mut h, &mut store);
    assert_eq!(publishes(&out), 1, "{out:?}");
}

/// A module from outside the built-in list (what an embedder registers):
/// it answers its namespace at the server and at accounts, keeps a
/// storage request of its own, shows in disco, and hears session events.
#[test]
fn a_registered_module_answers_stores_and_shows_in_disco() {
    use crate::modules::{Addressed, Context, Event, Flow, Module, ModuleId};
    const NS: &str = "urn:example:counter";

    #[derive(Debug, Clone, Default)]
    struct Counter {
        asked: u32,
        offline: Vec<String>,
        waiting: Option<(RequestId, Element)>,
    }

    impl Module for Counter {
        fn id(&self) -> ModuleId {
            ModuleId::new("counter")
        }
        fn server_features(&self) -> &'static [&'static str] {
            &[NS]
        }
        fn account_features(&self) -> &'static [&'static str] {
            &[NS]
        }
        fn iq(&mut self, cx: &mut Context<'_>, to: Addressed<'_>, iq: &Element) -> Flow {
            if !iq.first_element().is_some_and(|c| c.is(NS, "count")) {
                return Flow::Pass;
            }
            self.asked += 1;
            match to {
                Addressed::Server { .. } => {
                    let n = self.asked.to_string();
                    let count = Element::new(NS, "count").with_attr("n", n);
                    cx.route(crate::stanza::iq_result(iq).with_child(count));
                }
                Addressed::Session { .. } | Addressed::Service { .. } => return Flow::Pass,
                Addressed::Account { account, .. } => {
                    let id = cx.request(StorageRequest::LoadBlob {
                        account: account.to_owned(),
                        key: "counter".into(),
                    });
                    self.waiting = Some((id, iq.clone()));
                }
            }
            Flow::Handled
        }
        fn event(&mut self, _cx: &mut Context<'_>, event: Event<'_>) {
            if let Event::Offline { account, .. } = event {
                self.offline.push(account.to_owned());
            }
        }
        fn storage_answer(&mut self, cx: &mut Context<'_>, id: RequestId, result: StorageResult) {
            let Some((waited, iq)) = self.waiting.take() else {
                return;
            };
            assert_eq!(waited, id, "the answer comes back to the module that asked");
            let stored = matches!(result, StorageResult::Blob(Some(_)));
            let count = Element::new(NS, "count").with_attr("stored", stored.to_string());
            cx.route(crate::stanza::iq_result(&iq).with_child(count));
        }
    }

    // An embedder adds its module to the configured set.
    let cfg = Arc::new(HubConfig {
        modules: crate::modules::ModuleSet::standard().with(Counter::default()),
        ..HubConfig::default()
    });
    let mut h = Hub::new(cfg);
    assert!(h.features().contains(&NS), "the server advertises it");
    let ask = |to: &str| {
        Element::new(crate::ns::CLIENT, "iq")
            .with_attr("type", "get")
            .with_attr("id", "c1")
            .with_attr("to", to)
            .with_attr("from", "alice@localhost/a")
            .with_child(Element::new(NS, "count"))
    };
    let routed = |out: Vec<HubOutput>| -> Vec<Element> {
        out.into_iter()
            .filter_map(|o| match o {
                HubOutput::Route(e) => Some(e),
                _ => None,
            })
            .collect()
    };

    h.routed(0, ask("localhost"));
    let answer = routed(outputs(&mut h));
    assert_eq!(answer.len(), 1);
    let n = answer[0].child(NS, "count").and_then(|c| c.attr("n"));
    assert_eq!(n, Some("1"));

    // At an account: loaded first, then the module's own storage request.
    h.session_bound(1, 7, jid("bob@localhost/phone"));
    let id = load_request(&outputs(&mut h)).expect("account load requested");
    let data = AccountData {
        documents: [(crate::modules::avatar::AVATAR_KEY, String::new())]
            .into_iter()
            .collect(),
        ..AccountData::default()
    };
    h.handle_storage(2, id, StorageResult::Account(Some(data)));
    let _ = outputs(&mut h);
    h.routed(3, ask("bob@localhost"));
    let blob = outputs(&mut h).into_iter().find_map(|o| match o {
        HubOutput::Storage {
            id,
            request: StorageRequest::LoadBlob { key, .. },
        } if key == "counter" => Some(id),
        _ => None,
    });
    let blob = blob.expect("the module asked storage");
    h.handle_storage(4, blob, StorageResult::Blob(Some("3".into())));
    let answer = routed(outputs(&mut h));
    let stored = answer[0].child(NS, "count").and_then(|c| c.attr("stored"));
    assert_eq!(stored, Some("true"));

    // The account's disco#info lists the module's account feature.
    let mut info = ask("bob@localhost");
    info.children.clear();
    info.children.push(crate::xml::Node::Element(Element::new(
        crate::ns::DISCO_INFO,
        "query",
    )));
    h.routed(5, info);
    let answer = routed(outputs(&mut h));
    let features: Vec<&str> = answer[0]
        .child(crate::ns::DISCO_INFO, "query")
        .map(|q| q.elements().filter_map(|f| f.attr("var")).collect())
        .unwrap_or_default();
    assert!(features.contains(&NS), "{features:?}");

    // The session ends without unavailable presence: the module hears it.
    let available = Element::new(crate::ns::CLIENT, "presence");
    h.from_session(6, 7, available);
    h.session_closed(7, 7);
    let _ = outputs(&mut h);
    let counter = h
        .modules
        .iter()
        .flatten()
        .find(|m| m.id().name() == "counter");
    assert!(
        format!("{counter:?}").contains("bob@localhost"),
        "{counter:?}"
    );
}

/// A module hosting a service domain (the shape MUC and PubSub take): its
/// iqs reach the module, the server lists the domain in disco#items,
/// sessions may address it, and what the module does not take is answered.
#[test]
fn a_module_hosts_a_service_domain() {
    use crate::modules::{Addressed, Context, Flow, Module, ModuleId};

    /// A disco-only service.
    #[derive(Debug, Clone)]
    struct Directory;

    impl Module for Directory {
        fn id(&self) -> ModuleId {
            ModuleId::new("directory")
        }
        fn service_domains(&self) -> Vec<String> {
            vec!["directory.localhost".into()]
        }
        fn iq(&mut self, cx: &mut Context<'_>, to: Addressed<'_>, iq: &Element) -> Flow {
            let Addressed::Service { domain } = to else {
                return Flow::Pass;
            };
            if !iq
                .first_element()
                .is_some_and(|c| c.is(crate::ns::DISCO_INFO, "query"))
            {
                return Flow::Pass;
            }
            let identity = Element::new(crate::ns::DISCO_INFO, "identity")
                .with_attr("category", "directory")
                .with_attr("type", "user")
                .with_attr("name", domain.to_owned());
            let q = Element::new(crate::ns::DISCO_INFO, "query").with_child(identity);
            cx.route(crate::stanza::iq_result(iq).with_child(q));
            Flow::Handled
        }
    }

    let cfg = Arc::new(HubConfig {
        modules: crate::modules::ModuleSet::standard().with(Directory),
        ..HubConfig::default()
    });
    let mut h = Hub::new(cfg);
    let iq = |to: &str, payload: Element| {
        Element::new(crate::ns::CLIENT, "iq")
            .with_attr("type", "get")
            .with_attr("id", "d1")
            .with_attr("to", to)
            .with_attr("from", "alice@localhost/a")
            .with_child(payload)
    };
    let routed = |h: &mut Hub| -> Vec<Element> {
        outputs(h)
            .into_iter()
            .filter_map(|o| match o {
                HubOutput::Route(e) => Some(e),
                _ => None,
            })
            .collect()
    };

    // The service answers its own disco#info.
    let info = Element::new(crate::ns::DISCO_INFO, "query");
    h.routed(0, iq("directory.localhost", info));
    let answer = routed(&mut h);
    assert_eq!(answer.len(), 1);
    assert_eq!(answer[0].attr("type"), Some("result"));
    assert_eq!(answer[0].attr("from"), Some("directory.localhost"));
    let identity = answer[0]
        .child(crate::ns::DISCO_INFO, "query")
        .and_then(|q| q.child(crate::ns::DISCO_INFO, "identity"));
    assert_eq!(identity.and_then(|i| i.attr("category")), Some("directory"));

    // The server lists it among its items.
    h.routed(
        1,
        iq("localhost", Element::new(crate::ns::DISCO_ITEMS, "query")),
    );
    let answer = routed(&mut h);
    let items: Vec<&str> = answer[0]
        .child(crate::ns::DISCO_ITEMS, "query")
        .map(|q| q.elements().filter_map(|i| i.attr("jid")).collect())
        .unwrap_or_default();
    assert_eq!(
        items,
        vec![
            "pubsub.localhost",
            "conference.localhost",
            "directory.localhost"
        ]
    );

    // What the module does not take is answered, as from a service that
    // is there (not remote-server-not-found).
    let message = chat("directory.localhost", "alice@localhost/a");
    h.routed(2, message);
    let answer = routed(&mut h);
    let condition = answer[0]
        .child(crate::ns::CLIENT, "error")
        .and_then(|e| e.first_element())
        .map(|c| c.name.clone());
    assert_eq!(condition.as_deref(), Some("service-unavailable"));

    // A session may address it: the stanza is routed, not refused.
    h.session_bound(3, 7, jid("alice@localhost/a"));
    let id = load_request(&outputs(&mut h)).expect("account load requested");
    let data = AccountData {
        documents: [(crate::modules::avatar::AVATAR_KEY, String::new())]
            .into_iter()
            .collect(),
        ..AccountData::default()
    };
    h.handle_storage(4, id, StorageResult::Account(Some(data)));
    let _ = outputs(&mut h);
    let mut ask = iq(
        "directory.localhost",
        Element::new(crate::ns::DISCO_INFO, "query"),
    );
    ask.set_attr("id", "d2");
    h.from_session(5, 7, ask);
    let answer = routed(&mut h);
    assert_eq!(answer.len(), 1, "{answer:?}");
    assert_eq!(answer[0].attr("to"), Some("directory.localhost"));
    assert_eq!(answer[0].attr("type"), Some("get"));
}

/// A service module takes messages and presence to its domain and the
/// JIDs under it (the shape MUC needs): an echo service answers messages
/// to any address under it, and counts who is present.
#[test]
fn a_service_takes_messages_and_presence_under_its_domain() {
    use crate::modules::{Context, Flow, Module, ModuleId};

    #[derive(Debug, Clone, Default)]
    struct Echo {
        present: std::collections::BTreeSet<String>,
    }

    impl Module for Echo {
        fn id(&self) -> ModuleId {
            ModuleId::new("echo")
        }
        fn service_domains(&self) -> Vec<String> {
            vec!["echo.localhost".into()]
        }
        fn service_stanza(&mut self, cx: &mut Context<'_>, domain: &str, stanza: &Element) -> Flow {
            assert_eq!(domain, "echo.localhost");
            let from = stanza.attr("from").unwrap_or_default().to_owned();
            match stanza.name.as_str() {
                "presence" if stanza.attr("type") == Some("unavailable") => {
                    self.present.remove(&from);
                }
                "presence" => {
                    self.present.insert(from);
                }
                "message" => {
                    let body = stanza
                        .child_text(crate::ns::CLIENT, "body")
                        .unwrap_or_default();
                    let reply = Element::new(crate::ns::CLIENT, "message")
                        .with_attr("from", stanza.attr("to").unwrap_or(domain))
                        .with_attr("to", from)
                        .with_attr("type", "chat")
                        .with_child(
                            Element::new(crate::ns::CLIENT, "body")
                                .with_text(format!("{body} ({} present)", self.present.len())),
                        );
                    cx.route(reply);
                }
                _ => return Flow::Pass,
            }
            Flow::Handled
        }
    }

    let cfg = Arc::new(HubConfig {
        modules: crate::modules::ModuleSet::standard().with(Echo::default()),
        ..HubConfig::default()
    });
    let mut h = Hub::new(cfg);
    let presence = Element::new(crate::ns::CLIENT, "presence")
        .with_attr("from", "alice@localhost/a")
        .with_attr("to", "room@echo.localhost/alice");
    h.routed(0, presence);
    assert!(outputs(&mut h).is_empty(), "presence is taken silently");
    h.routed(1, chat("room@echo.localhost", "alice@localhost/a"));
    let replies: Vec<Element> = outputs(&mut h)
        .into_iter()
        .filter_map(|o| match o {
            HubOutput::Route(e) => Some(e),
            _ => None,
        })
        .collect();
    assert_eq!(replies.len(), 1, "{replies:?}");
    assert_eq!(replies[0].attr("from"), Some("room@echo.localhost"));
    assert_eq!(replies[0].attr("to"), Some("alice@localhost/a"));
    assert_eq!(
        replies[0].child_text(crate::ns::CLIENT, "body").as_deref(),
        Some("hi (1 present)")
    );
}
