//! The upload service against a real hub and the in-memory store: disco,
//! slots whose tokens the HTTP side accepts, the size limit, the daily
//! quota (also across a restart of the hub), and refusals.

use super::*;
use crate::hub::drive::drive;
use crate::hub::{Hub, HubConfig};
use crate::modules::ModuleSet;
use crate::storage::MemoryStore;
use std::sync::Arc;

fn settings() -> Settings {
    Settings {
        domains: vec!["localhost".into()],
        base_url: "https://localhost:5281".into(),
        secret: b"upload-secret".to_vec(),
        max_file_size: 1000,
        daily_quota: 2500,
        slot_ttl_ms: 300_000,
    }
}

fn hub() -> Hub {
    Hub::new(Arc::new(HubConfig {
        modules: ModuleSet::standard().with(Upload::new(settings())),
        ..HubConfig::default()
    }))
}

fn iq(from: &str, payload: &str) -> Element {
    let xml = format!(
        "<iq xmlns='jabber:client' type='get' id='u' from='{from}' to='upload.localhost'>{payload}</iq>"
    );
    Element::parse(xml.as_bytes()).expect("XML")
}

fn request(name: &str, size: u64) -> String {
    format!("<request xmlns='urn:xmpp:http:upload:0' filename='{name}' size='{size}' content-type='image/png'/>")
}

/// A store with alice's and bob's accounts.
fn store() -> MemoryStore {
    let mut store = MemoryStore::new();
    let creds = crate::sasl::StoredCredentials::derive("pw", b"salt", 4096).expect("derive");
    for account in ["alice@localhost", "bob@localhost"] {
        store.execute(crate::storage::StorageRequest::CreateAccount {
            account: account.into(),
            credentials: creds.clone(),
        });
    }
    store
}

fn ask(h: &mut Hub, store: &mut MemoryStore, stanza: Element) -> Element {
    h.routed(0, stanza);
    let out = drive(h, store);
    out.into_iter().find(|e| e.name == "iq").expect("an answer")
}

fn condition(reply: &Element) -> Option<String> {
    let error = reply.elements().find(|e| e.name == "error")?;
    error
        .elements()
        .find(|e| e.ns == ns::STANZA_ERRORS && e.name != "text")
        .map(|e| e.name.clone())
}

#[test]
fn disco_shows_the_service_and_its_limit() {
    let mut store = store();
    let mut h = hub();
    let reply = ask(
        &mut h,
        &mut store,
        iq(
            "alice@localhost/a",
            "<query xmlns='http://jabber.org/protocol/disco#info'/>",
        ),
    );
    let xml = reply.to_xml();
    assert!(
        xml.contains("category='store'") && xml.contains("type='file'"),
        "{xml}"
    );
    assert!(xml.contains("var='urn:xmpp:http:upload:0'"), "{xml}");
    assert!(
        xml.contains("<field var='max-file-size'><value>1000</value></field>"),
        "{xml}"
    );
}

#[test]
fn a_slot_carries_a_token_the_http_side_accepts() {
    let mut store = store();
    let mut h = hub();
    let reply = ask(
        &mut h,
        &mut store,
        iq("alice@localhost/a", &request("cat pic.png", 900)),
    );
    assert_eq!(reply.attr("type"), Some("result"), "{}", reply.to_xml());
    let slot = reply.first_element().expect("slot");
    let put = slot.elements().find(|e| e.name == "put").expect("put");
    let get = slot.elements().find(|e| e.name == "get").expect("get");
    let url = put.attr("url").expect("url");
    assert_eq!(get.attr("url"), Some(url));
    assert!(
        url.starts_with("https://localhost:5281/upload/") && url.ends_with("/cat%20pic.png"),
        "{url}"
    );
    let header = put.elements().find(|e| e.name == "header").expect("header");
    assert_eq!(header.attr("name"), Some("Authorization"));
    let token = header
        .text()
        .strip_prefix("Bearer ")
        .expect("bearer")
        .to_owned();
    let granted = Slot::verify(b"upload-secret", &token, 0).expect("valid");
    assert_eq!(granted.filename, "cat pic.png");
    assert_eq!(granted.size, 900);
    assert_eq!(granted.owner, "alice@localhost");
    assert_eq!(granted.content_type.as_deref(), Some("image/png"));
    assert!(url.contains(&granted.id));
}

#[test]
fn too_large_files_are_refused_with_the_limit() {
    let mut store = store();
    let mut h = hub();
    let reply = ask(
        &mut h,
        &mut store,
        iq("alice@localhost/a", &request("big.png", 1001)),
    );
    assert_eq!(condition(&reply).as_deref(), Some("not-acceptable"));
    let xml = reply.to_xml();
    assert!(
        xml.contains("<file-too-large xmlns='urn:xmpp:http:upload:0'><max-file-size>1000</max-file-size></file-too-large>"),
        "{xml}"
    );
}

#[test]
fn the_daily_quota_holds_across_a_restart() {
    let mut store = store();
    let mut h = hub();
    for _ in 0..2 {
        let r = ask(
            &mut h,
            &mut store,
            iq("alice@localhost/a", &request("a.png", 1000)),
        );
        assert_eq!(r.attr("type"), Some("result"));
    }
    // A new hub over the same store: the grants are remembered.
    let mut h = hub();
    let r = ask(
        &mut h,
        &mut store,
        iq("alice@localhost/a", &request("b.png", 600)),
    );
    assert_eq!(
        condition(&r).as_deref(),
        Some("resource-constraint"),
        "{}",
        r.to_xml()
    );
    assert!(r.to_xml().contains("daily upload quota"), "{}", r.to_xml());
    let r = ask(
        &mut h,
        &mut store,
        iq("alice@localhost/a", &request("c.png", 500)),
    );
    assert_eq!(r.attr("type"), Some("result"), "what still fits is granted");
    let r = ask(
        &mut h,
        &mut store,
        iq("bob@localhost/b", &request("b.png", 1000)),
    );
    assert_eq!(r.attr("type"), Some("result"), "quotas are per account");
}

#[test]
fn strangers_and_bad_requests_are_refused() {
    let mut store = store();
    let mut h = hub();
    let r = ask(
        &mut h,
        &mut store,
        iq("mallory@elsewhere.example/x", &request("a.png", 10)),
    );
    assert_eq!(condition(&r).as_deref(), Some("forbidden"));
    for bad in [
        "<request xmlns='urn:xmpp:http:upload:0' filename='../etc/passwd' size='10'/>",
        "<request xmlns='urn:xmpp:http:upload:0' filename='a.png' size='-1'/>",
        "<request xmlns='urn:xmpp:http:upload:0' filename='a.png' size='0'/>",
        "<request xmlns='urn:xmpp:http:upload:0' size='10'/>",
        "<request xmlns='urn:xmpp:http:upload:0' filename='a' size='10' content-type='text/html&#10;X: y'/>",
    ] {
        let r = ask(&mut h, &mut store, iq("alice@localhost/a", bad));
        assert_eq!(condition(&r).as_deref(), Some("bad-request"), "{bad}");
    }
}
