//! The XEP-0060 publish-subscribe service at `pubsub.<domain>`: who may
//! create nodes, a new node's defaults and the service's budgets, with
//! Prosody's `pubsub_max_items` and `pubsub_admins` names. The server's
//! `admins` and `pubsub_admins` own every node.

use super::Section;
use crate::config::schema::{key, Home, KeySpec, Ty};
use crate::config::Config;
use crate::modules::Layer;
use xmpp_core::modules::pubsub::config::Access;
use xmpp_core::modules::pubsub::settings::{CreatePolicy, Settings};
use xmpp_core::modules::pubsub::{self, PubsubService};
use xmpp_core::modules::ModuleSet;

const PUBSUB: Home = Home::Layer(Layer::Services, "pubsub");

#[rustfmt::skip]
const KEYS: &[KeySpec] = &[
    key("services.pubsub_create_nodes", "pubsub_create_nodes", PUBSUB, Ty::Choice(&["local", "admins", "nobody"]), "\"local\"", &["XEP-0060 §8.1"],
        "Who may create nodes on pubsub.<domain>: any user of a hosted domain (`local`), the server's `admins` only, or `nobody`."),
    key("services.pubsub_admins", "pubsub_admins", PUBSUB, Ty::Jids, "[]", &["XEP-0060 §4.1"],
        "Bare JIDs that own every node of the service, besides the server's `admins` (Prosody's `pubsub_admins`)."),
    key("services.pubsub_default_access_model", "pubsub_default_access_model", PUBSUB, Ty::Choice(&["open", "authorize", "whitelist"]), "\"open\"", &["XEP-0060 §4.5"],
        "`pubsub#access_model` of a new node (`presence` and `roster` are PEP's: a service has no roster)."),
    key("services.pubsub_default_max_items", "pubsub_default_max_items", PUBSUB, Ty::Int { min: 1, max: 10_000 }, "10", &["XEP-0060 §16.4.3"],
        "`pubsub#max_items` of a new node (at most pubsub_max_items)."),
    key("services.pubsub_max_items", "pubsub_max_items", PUBSUB, Ty::Int { min: 1, max: 10_000 }, "256", &["XEP-0060 §16.4.3"],
        "Most items one node keeps (`pubsub#max_items=max` means this; more is refused with not-acceptable)."),
    key("services.pubsub_max_item_bytes", "pubsub_max_item_bytes", PUBSUB, Ty::Int { min: 64, max: 1_048_576 }, "65536", &["XEP-0060 §7.1.3.6"],
        "Largest item payload, serialized; larger ones are refused with payload-too-big."),
    key("services.pubsub_max_node_bytes", "pubsub_max_node_bytes", PUBSUB, Ty::Int { min: 1024, max: 67_108_864 }, "1048576", &["XEP-0060 §16.4.3"],
        "Most payload bytes one node keeps: beyond it the oldest items go, as beyond max_items (the newest always stays)."),
    key("services.pubsub_max_nodes_per_owner", "pubsub_max_nodes_per_owner", PUBSUB, Ty::Int { min: 1, max: 1_000_000 }, "100", &["XEP-0060 §8.1"],
        "Most nodes one JID may create (policy-violation + max-nodes-exceeded beyond)."),
    key("services.pubsub_max_subscriptions", "pubsub_max_subscriptions", PUBSUB, Ty::Int { min: 1, max: 1_000_000 }, "1000", &["XEP-0060 §6.1"],
        "Most subscriptions (pending ones included) of one bare JID over all nodes of a service (policy-violation + too-many-subscriptions beyond)."),
    key("services.pubsub_max_pending", "pubsub_max_pending", PUBSUB, Ty::Int { min: 1, max: 100_000 }, "100", &["XEP-0060 §8.6"],
        "Most subscription requests waiting for an owner's approval on one node (policy-violation + too-many-subscriptions beyond)."),
];

pub const SECTION: Section = Section {
    module: pubsub::ID,
    keys: KEYS,
    configure,
};

/// The fallbacks are never taken: every key has a schema default.
fn configure(cfg: &Config, set: &mut ModuleSet) {
    let d = Settings::default();
    let int = |k: &str, fallback: usize| cfg.int(k).unwrap_or(fallback);
    let items_per_node_max = int("services.pubsub_max_items", d.items_per_node_max);
    set.configure(PubsubService::new(Settings {
        // A domain whose file switches the module off has no service.
        domains: cfg
            .domains
            .iter()
            .filter(|d| {
                cfg.vhost(d)
                    .is_none_or(|v| v.modules.contains_key("pubsub"))
            })
            .cloned()
            .collect(),
        admins: cfg
            .admins
            .iter()
            .cloned()
            .chain(cfg.list("services.pubsub_admins"))
            .collect(),
        create: cfg
            .text("services.pubsub_create_nodes")
            .as_deref()
            .and_then(CreatePolicy::parse)
            .unwrap_or(d.create),
        default_access: cfg
            .text("services.pubsub_default_access_model")
            .as_deref()
            .and_then(Access::parse)
            .unwrap_or(d.default_access),
        default_max_items: int("services.pubsub_default_max_items", d.default_max_items)
            .min(items_per_node_max),
        items_per_node_max,
        item_bytes_max: int("services.pubsub_max_item_bytes", d.item_bytes_max),
        node_bytes_max: int("services.pubsub_max_node_bytes", d.node_bytes_max),
        nodes_per_owner_max: int("services.pubsub_max_nodes_per_owner", d.nodes_per_owner_max),
        subscriptions_per_jid_max: int(
            "services.pubsub_max_subscriptions",
            d.subscriptions_per_jid_max,
        ),
        pending_max: int("services.pubsub_max_pending", d.pending_max),
        ..d
    }));
}
