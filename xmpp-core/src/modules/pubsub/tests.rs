//! The service against a real hub and the in-memory store: results wait
//! for their writes, everything is read back after a restart, and a node
//! with 10,000 subscribers keeps one small document per subscription and
//! notifies them all in one step.

use super::*;
use crate::hub::drive::drive;
use crate::hub::{Hub, HubConfig, HubOutput};
use crate::modules::xep0060::EVENT;
use crate::storage::MemoryStore;

fn hub() -> Hub {
    Hub::new(Arc::new(HubConfig::default()))
}

fn iq(from: &str, kind: &str, payload: &str) -> Element {
    let xml = format!(
        "<iq xmlns='jabber:client' type='{kind}' id='q' from='{from}' to='pubsub.localhost'>{payload}</iq>"
    );
    Element::parse(xml.as_bytes()).expect("XML")
}

fn send(h: &mut Hub, store: &mut MemoryStore, stanza: Element) -> Vec<Element> {
    h.routed(0, stanza);
    drive(h, store)
}

fn result(out: &[Element]) -> &Element {
    out.iter().find(|e| e.name == "iq").expect("an iq answer")
}

const CREATE: &str =
    "<pubsub xmlns='http://jabber.org/protocol/pubsub'><create node='n'/></pubsub>";
const PUBLISH: &str = "<pubsub xmlns='http://jabber.org/protocol/pubsub'><publish node='n'><item id='i'><x xmlns='urn:x'/></item></publish></pubsub>";

#[test]
fn notification_type_follows_the_configuration() {
    let e = Element::new(EVENT, "purge").with_attr("node", "n");
    let m = notification("pubsub.localhost", "bob@localhost", false, e.clone());
    assert_eq!(m.attr("type"), None);
    let m = notification("pubsub.localhost", "bob@localhost", true, e);
    assert_eq!(m.attr("type"), Some("headline"));
    assert_eq!(m.attr("from"), Some("pubsub.localhost"));
}

/// A publish's result and notification leave only once the item is
/// stored.
#[test]
fn results_wait_for_their_writes() {
    let mut store = MemoryStore::new();
    let mut h = hub();
    send(&mut h, &mut store, iq("alice@localhost/a", "set", CREATE));
    let subscribe = "<pubsub xmlns='http://jabber.org/protocol/pubsub'><subscribe node='n' jid='bob@localhost'/></pubsub>";
    send(&mut h, &mut store, iq("bob@localhost/b", "set", subscribe));
    h.routed(0, iq("alice@localhost/a", "set", PUBLISH));
    let outs: Vec<HubOutput> = std::iter::from_fn(|| h.poll_output()).collect();
    let writes: Vec<(RequestId, StorageRequest)> = outs
        .iter()
        .filter_map(|o| match o {
            HubOutput::Storage { id, request } => Some((*id, request.clone())),
            _ => None,
        })
        .collect();
    assert!(
        writes.iter().any(|(_, r)| matches!(r, StorageRequest::StoreBlob { key, value: Some(_), .. } if key.starts_with("n/n/i/"))),
        "the item is written: {writes:?}"
    );
    assert!(
        !outs.iter().any(|o| matches!(o, HubOutput::Route(_))),
        "nothing leaves before the write is durable"
    );
    for (id, request) in writes {
        let r = store.execute(request);
        h.handle_storage(0, id, r);
    }
    let routed = drive(&mut h, &mut store);
    assert_eq!(result(&routed).attr("type"), Some("result"));
    assert!(routed.iter().any(|e| e.name == "message"));
}

/// Nodes, items, subscriptions and affiliations are read back by a new
/// hub (a restart) from the store alone.
#[test]
fn everything_survives_a_restart() {
    let mut store = MemoryStore::new();
    {
        let mut h = hub();
        send(&mut h, &mut store, iq("alice@localhost/a", "set", CREATE));
        send(&mut h, &mut store, iq("alice@localhost/a", "set", PUBLISH));
        let subscribe = "<pubsub xmlns='http://jabber.org/protocol/pubsub'><subscribe node='n' jid='bob@localhost'/></pubsub>";
        send(&mut h, &mut store, iq("bob@localhost/b", "set", subscribe));
    }
    let mut h = hub();
    let items = "<pubsub xmlns='http://jabber.org/protocol/pubsub'><items node='n'/></pubsub>";
    let out = send(&mut h, &mut store, iq("carol@localhost/c", "get", items));
    let got = result(&out)
        .child(NS, "pubsub")
        .and_then(|p| p.child(NS, "items"))
        .map(|i| {
            i.elements()
                .filter_map(|e| e.attr("id"))
                .collect::<Vec<_>>()
        });
    assert_eq!(got, Some(vec!["i"]));
    // bob is still subscribed, alice still the owner.
    let out = send(&mut h, &mut store, iq("alice@localhost/a", "set", PUBLISH));
    let notified: Vec<&str> = out
        .iter()
        .filter(|e| e.name == "message")
        .filter_map(|e| e.attr("to"))
        .collect();
    assert_eq!(notified, vec!["bob@localhost"]);
    let nodes = "<query xmlns='http://jabber.org/protocol/disco#items'/>";
    let out = send(&mut h, &mut store, iq("carol@localhost/c", "get", nodes));
    assert_eq!(
        result(&out)
            .child(ns::DISCO_ITEMS, "query")
            .map(|q| q.elements().count()),
        Some(1)
    );
}

/// 10,000 subscribers: 10,000 small documents (not one growing one), and
/// one publish notifies every one of them.
#[test]
fn ten_thousand_subscribers() {
    const N: usize = 10_000;
    let mut store = MemoryStore::new();
    let mut h = hub();
    send(&mut h, &mut store, iq("alice@localhost/a", "set", CREATE));
    for k in 0..N {
        let jid = format!("u{k}@localhost");
        let subscribe = format!(
            "<pubsub xmlns='http://jabber.org/protocol/pubsub'><subscribe node='n' jid='{jid}'/></pubsub>"
        );
        let out = send(
            &mut h,
            &mut store,
            iq(&format!("{jid}/r"), "set", &subscribe),
        );
        assert_eq!(result(&out).attr("type"), Some("result"));
    }
    match store.execute(StorageRequest::ListBlobs {
        account: "pubsub.localhost".into(),
        prefix: "n/n/s/".into(),
        after: None,
        max: N + 1,
    }) {
        StorageResult::Documents { items, more } => {
            assert_eq!((items.len(), more), (N, false));
            assert!(items.iter().all(|(_, d)| d.len() < 200), "small documents");
        }
        other => panic!("{other:?}"),
    }
    // A new hub reads the node in pages and notifies everyone.
    let mut h = hub();
    let out = send(&mut h, &mut store, iq("alice@localhost/a", "set", PUBLISH));
    assert_eq!(out.iter().filter(|e| e.name == "message").count(), N);
}

/// A subscriber's list read while an owner approves one of its
/// subscriptions is read again, not kept stale.
#[test]
fn a_list_read_overtaken_by_a_write_is_read_again() {
    let mut store = MemoryStore::new();
    let ps = |x: &str| format!("<pubsub xmlns='http://jabber.org/protocol/pubsub'>{x}</pubsub>");
    {
        let mut h = hub();
        let create_a = ps("<create node='a'/><configure><x xmlns='jabber:x:data' type='submit'><field var='pubsub#access_model'><value>authorize</value></field></x></configure>");
        send(
            &mut h,
            &mut store,
            iq("alice@localhost/a", "set", &create_a),
        );
        send(
            &mut h,
            &mut store,
            iq("alice@localhost/a", "set", &ps("<create node='b'/>")),
        );
        let out = send(
            &mut h,
            &mut store,
            iq(
                "bob@localhost/b",
                "set",
                &ps("<subscribe node='a' jid='bob@localhost'/>"),
            ),
        );
        assert!(result(&out).to_xml().contains("pending"));
    }
    let mut h = hub();
    // The owner's hub has node a in memory.
    let list = "<pubsub xmlns='http://jabber.org/protocol/pubsub#owner'><subscriptions node='a'/></pubsub>";
    send(&mut h, &mut store, iq("alice@localhost/a", "get", list));
    // bob subscribes to b: his list is read, and that read is held back
    // (answered with what the store had before the approval).
    h.routed(
        0,
        iq(
            "bob@localhost/b",
            "set",
            &ps("<subscribe node='b' jid='bob@localhost'/>"),
        ),
    );
    let mut held = None;
    loop {
        let outs: Vec<HubOutput> = std::iter::from_fn(|| h.poll_output()).collect();
        if outs.is_empty() {
            break;
        }
        for o in outs {
            if let HubOutput::Storage { id, request } = o {
                let user_list = matches!(&request, StorageRequest::ListBlobs { prefix, .. } if prefix.starts_with("u/"));
                let r = store.execute(request);
                if user_list && held.is_none() {
                    held = Some((id, r));
                } else {
                    h.handle_storage(0, id, r);
                }
            }
        }
    }
    let (id, stale) = held.expect("bob's list was read");
    let approve = "<pubsub xmlns='http://jabber.org/protocol/pubsub#owner'><subscriptions node='a'><subscription jid='bob@localhost' subscription='subscribed'/></subscriptions></pubsub>";
    send(&mut h, &mut store, iq("alice@localhost/a", "set", approve));
    h.handle_storage(0, id, stale);
    drive(&mut h, &mut store);
    let out = send(
        &mut h,
        &mut store,
        iq("bob@localhost/b", "get", &ps("<subscriptions/>")),
    );
    let states: Vec<(String, String)> = result(&out)
        .child(NS, "pubsub")
        .and_then(|p| p.child(NS, "subscriptions"))
        .map(|l| {
            l.elements()
                .map(|s| {
                    (
                        s.attr("node").unwrap_or_default().to_owned(),
                        s.attr("subscription").unwrap_or_default().to_owned(),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    assert_eq!(
        states,
        vec![
            ("a".to_owned(), "subscribed".to_owned()),
            ("b".to_owned(), "subscribed".to_owned())
        ]
    );
}

/// Each budget answers with its precise XEP-0060 error, at the limit and
/// not before.
#[test]
fn budgets_refuse_at_the_limit() {
    use super::settings::{CreatePolicy, Settings};
    let settings = Settings {
        nodes_per_owner_max: 2,
        subscriptions_per_jid_max: 2,
        pending_max: 1,
        item_bytes_max: 64,
        items_per_node_max: 3,
        ..Settings::default()
    };
    let cfg = HubConfig {
        modules: crate::modules::ModuleSet::standard().with(PubsubService::new(settings.clone())),
        ..HubConfig::default()
    };
    let mut h = Hub::new(Arc::new(cfg));
    let mut store = MemoryStore::new();
    let ps = |x: &str| format!("<pubsub xmlns='http://jabber.org/protocol/pubsub'>{x}</pubsub>");
    let error = |out: &[Element]| -> Option<(String, Option<String>)> {
        let e = result(out).child(ns::CLIENT, "error")?;
        let mut conditions = e.elements().map(|c| c.name.clone());
        Some((conditions.next()?, conditions.next()))
    };
    let mut ask = |from: &str, payload: String| {
        let out = send(&mut h, &mut store, iq(from, "set", &payload));
        error(&out)
    };
    let authorize = "<configure><x xmlns='jabber:x:data' type='submit'><field var='pubsub#access_model'><value>authorize</value></field></x></configure>";
    assert_eq!(ask("alice@localhost/a", ps("<create node='a'/>")), None);
    assert_eq!(
        ask(
            "alice@localhost/a",
            ps(&format!("<create node='b'/>{authorize}"))
        ),
        None
    );
    assert_eq!(
        ask("alice@localhost/a", ps("<create node='c'/>")),
        Some(("policy-violation".into(), Some("max-nodes-exceeded".into())))
    );
    // Another user has a budget of their own; a stranger none at all.
    assert_eq!(ask("bob@localhost/b", ps("<create node='c'/>")), None);
    assert_eq!(
        ask("eve@elsewhere.example/x", ps("<create node='d'/>")),
        Some(("forbidden".into(), None))
    );
    let payload = |n: usize| {
        ps(&format!(
            "<publish node='a'><item><x xmlns='urn:x'>{}</x></item></publish>",
            "y".repeat(n)
        ))
    };
    assert_eq!(ask("alice@localhost/a", payload(10)), None);
    assert_eq!(
        ask("alice@localhost/a", payload(64)),
        Some(("not-acceptable".into(), Some("payload-too-big".into())))
    );
    let max = |n: &str| {
        format!("<pubsub xmlns='http://jabber.org/protocol/pubsub#owner'><configure node='a'><x xmlns='jabber:x:data' type='submit'><field var='pubsub#max_items'><value>{n}</value></field></x></configure></pubsub>")
    };
    assert_eq!(ask("alice@localhost/a", max("3")), None);
    assert_eq!(
        ask("alice@localhost/a", max("4")),
        Some(("not-acceptable".into(), None))
    );
    let subscribe = |node: &str, jid: &str| ps(&format!("<subscribe node='{node}' jid='{jid}'/>"));
    assert_eq!(
        ask("carol@localhost/c", subscribe("a", "carol@localhost/c")),
        None
    );
    assert_eq!(
        ask("carol@localhost/c", subscribe("b", "carol@localhost/c")),
        None
    );
    assert_eq!(
        ask("carol@localhost/c", subscribe("c", "carol@localhost/c")),
        Some((
            "policy-violation".into(),
            Some("too-many-subscriptions".into())
        ))
    );
    // One request waits on b already (carol's): the next is refused.
    assert_eq!(
        ask("dave@localhost/d", subscribe("b", "dave@localhost")),
        Some((
            "policy-violation".into(),
            Some("too-many-subscriptions".into())
        ))
    );
    assert_eq!(settings.create, CreatePolicy::Local);
}

/// Beyond a node's byte budget the oldest items go (and their documents
/// with them); beyond the cache budget the least recently used nodes
/// leave memory and are read again, unchanged, when asked for.
#[test]
fn node_and_cache_byte_budgets() {
    use super::settings::Settings;
    let settings = Settings {
        node_bytes_max: 400,
        cache_bytes_max: 1000,
        ..Settings::default()
    };
    let cfg = HubConfig {
        modules: crate::modules::ModuleSet::standard().with(PubsubService::new(settings)),
        ..HubConfig::default()
    };
    let mut h = Hub::new(Arc::new(cfg));
    let mut store = MemoryStore::new();
    let ps = |x: &str| format!("<pubsub xmlns='http://jabber.org/protocol/pubsub'>{x}</pubsub>");
    let ids = |out: &[Element]| -> Vec<String> {
        result(out)
            .child(NS, "pubsub")
            .and_then(|p| p.child(NS, "items"))
            .map(|l| {
                l.elements()
                    .filter_map(|i| i.attr("id"))
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default()
    };
    for node in ["a", "b", "c", "d"] {
        send(
            &mut h,
            &mut store,
            iq(
                "alice@localhost/a",
                "set",
                &ps(&format!("<create node='{node}'/>")),
            ),
        );
        for k in 0..3 {
            let publish = format!(
                "<publish node='{node}'><item id='{k}'><x xmlns='urn:x'>{}</x></item></publish>",
                "z".repeat(150)
            );
            let out = send(
                &mut h,
                &mut store,
                iq("alice@localhost/a", "set", &ps(&publish)),
            );
            assert_eq!(result(&out).attr("type"), Some("result"));
        }
    }
    // Two items of ~160 bytes fit in 400: the oldest went, in storage too.
    let out = send(
        &mut h,
        &mut store,
        iq("bob@localhost/b", "get", &ps("<items node='a'/>")),
    );
    assert_eq!(ids(&out), vec!["1", "2"]);
    match store.execute(StorageRequest::ListBlobs {
        account: "pubsub.localhost".into(),
        prefix: "n/a/i/".into(),
        after: None,
        max: 10,
    }) {
        StorageResult::Documents { items, .. } => assert_eq!(items.len(), 2),
        other => panic!("{other:?}"),
    }
    // Four nodes of ~400 bytes do not fit in 1000: the first ones left
    // memory and are read again when asked for; the last one is there.
    let reads = |h: &mut Hub, store: &mut MemoryStore, node: &str| -> (usize, Vec<String>) {
        h.routed(
            0,
            iq(
                "bob@localhost/b",
                "get",
                &ps(&format!("<items node='{node}'/>")),
            ),
        );
        let mut reads = 0;
        let mut routed = Vec::new();
        loop {
            let outs: Vec<HubOutput> = std::iter::from_fn(|| h.poll_output()).collect();
            if outs.is_empty() {
                break;
            }
            for o in outs {
                match o {
                    HubOutput::Storage { id, request } => {
                        if matches!(&request, StorageRequest::ListBlobs { prefix, .. } if prefix.starts_with("n/"))
                        {
                            reads += 1;
                        }
                        let r = store.execute(request);
                        h.handle_storage(0, id, r);
                    }
                    HubOutput::Route(e) => routed.push(e),
                    _ => {}
                }
            }
        }
        (reads, ids(&routed))
    };
    assert_eq!(
        reads(&mut h, &mut store, "d"),
        (0, vec!["1".into(), "2".into()])
    );
    assert_eq!(
        reads(&mut h, &mut store, "b"),
        (1, vec!["1".into(), "2".into()])
    );
    assert_eq!(
        reads(&mut h, &mut store, "b"),
        (0, vec!["1".into(), "2".into()])
    );
}
