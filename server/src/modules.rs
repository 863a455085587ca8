//! The module catalog: every module Vireo knows, by stack layer, with the
//! specifications it implements and whether this version has it built.
//!
//! The configuration loader validates `modules = [...]` lists against it
//! (unknown names, conflicts, missing dependencies, modules that are not
//! built yet) and `vireo module list` prints it.

/// The eight configuration layers, which are the code's layers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Layer {
    Transport,
    Stream,
    Stanza,
    Protocol,
    Services,
    Storage,
    Interfaces,
    Integration,
}

impl Layer {
    /// Every layer in stack order.
    pub const ALL: [Layer; 8] = [
        Layer::Transport,
        Layer::Stream,
        Layer::Stanza,
        Layer::Protocol,
        Layer::Services,
        Layer::Storage,
        Layer::Interfaces,
        Layer::Integration,
    ];

    /// The directory of the layer in the configuration tree.
    pub fn dir(self) -> &'static str {
        match self {
            Layer::Transport => "01-transport",
            Layer::Stream => "02-stream",
            Layer::Stanza => "03-stanza",
            Layer::Protocol => "04-protocol",
            Layer::Services => "05-services",
            Layer::Storage => "06-storage",
            Layer::Interfaces => "07-interfaces",
            Layer::Integration => "08-integration",
        }
    }

    /// The layer's files (without `.toml`), as `vireo config init` writes them.
    pub fn files(self) -> &'static [&'static str] {
        match self {
            Layer::Transport => &["ports", "tls", "compression", "connections"],
            Layer::Stream => &["authentication", "encryption", "management", "negotiation"],
            Layer::Stanza => &["routing", "filtering", "validation", "processing"],
            Layer::Protocol => &["core", "extensions", "legacy", "experimental"],
            Layer::Services => &["messaging", "presence", "groupchat", "pubsub", "upload"],
            Layer::Storage => &["backends", "archiving", "caching", "migration"],
            Layer::Interfaces => &["http", "websocket", "bosh", "components"],
            Layer::Integration => &["ldap", "oauth", "webhooks", "apis"],
        }
    }
}

/// One module.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ModuleInfo {
    /// Name used in `modules = [...]`.
    pub name: &'static str,
    /// The layer it belongs to.
    pub layer: Layer,
    /// The layer file that declares it.
    pub file: &'static str,
    /// RFC sections and XEPs it implements.
    pub specs: &'static [&'static str],
    /// One line on what it does.
    pub summary: &'static str,
    /// Built into this version. `false`: enabling it is an error ("not
    /// available in this version").
    pub available: bool,
    /// Modules it needs enabled too.
    pub depends: &'static [&'static str],
    /// Modules it cannot be enabled with (e.g. two primary auth backends).
    pub conflicts: &'static [&'static str],
    /// Enabling it is refused outright, with this reason (e.g. compression).
    pub refused: Option<&'static str>,
}

const fn built(
    name: &'static str,
    layer: Layer,
    file: &'static str,
    specs: &'static [&'static str],
    summary: &'static str,
) -> ModuleInfo {
    ModuleInfo {
        name,
        layer,
        file,
        specs,
        summary,
        available: true,
        depends: &[],
        conflicts: &[],
        refused: None,
    }
}

const fn planned(
    name: &'static str,
    layer: Layer,
    file: &'static str,
    specs: &'static [&'static str],
    summary: &'static str,
) -> ModuleInfo {
    ModuleInfo {
        available: false,
        ..built(name, layer, file, specs, summary)
    }
}

/// Every module, in stack order.
pub const CATALOG: &[ModuleInfo] = &[
    // 01 transport
    built("c2s", Layer::Transport, "ports", &["RFC 6120 §14.7"], "client connections with STARTTLS on the c2s port"),
    built("c2s_direct_tls", Layer::Transport, "ports", &["XEP-0368"], "client connections with TLS from the first byte"),
    built("tls", Layer::Transport, "tls", &["RFC 6120 §5", "RFC 8446"], "TLS 1.2/1.3 with rustls"),
    ModuleInfo {
        refused: Some(
            "stream compression inside TLS leaks secrets (the CRIME attack class); Vireo does not offer XEP-0138",
        ),
        ..planned("compression", Layer::Transport, "compression", &["XEP-0138"], "stream compression")
    },
    built("limits", Layer::Transport, "connections", &[], "connection limit and authentication timeout"),
    built("s2s", Layer::Transport, "ports", &["RFC 6120", "RFC 6125", "XEP-0220", "XEP-0178"], "server-to-server federation: STARTTLS, SASL EXTERNAL, dialback"),
    ModuleInfo {
        depends: &["s2s"],
        ..built("s2s_direct_tls", Layer::Transport, "ports", &["XEP-0368"], "server-to-server connections with TLS from the first byte")
    },
    // 02 stream
    built("saslauth", Layer::Stream, "authentication", &["RFC 6120 §6", "RFC 5802", "RFC 7677", "RFC 9266", "XEP-0440"], "SASL SCRAM-SHA-256/-1 (+PLUS) and PLAIN over TLS"),
    ModuleInfo {
        conflicts: &["auth_ldap"],
        ..built("auth_internal", Layer::Stream, "authentication", &[], "accounts in the local store (SCRAM keys only)")
    },
    built("bind", Layer::Stream, "negotiation", &["RFC 6120 §7", "RFC 3921 §3"], "resource binding and the optional session"),
    built("smacks", Layer::Stream, "management", &["XEP-0198"], "stream management: acknowledgements, resumption, unacknowledged stanzas rerouted"),
    built("csi", Layer::Stream, "management", &["XEP-0352"], "client state indication"),
    planned("omemo", Layer::Stream, "encryption", &["XEP-0384"], "OMEMO support (PEP device lists)"),
    // 03 stanza
    built("router", Layer::Stanza, "routing", &["RFC 6120 §8, §10", "RFC 6121 §8"], "stanza routing and delivery rules"),
    planned("firewall", Layer::Stanza, "filtering", &[], "stanza filtering and anti-spam"),
    built("blocking", Layer::Stanza, "filtering", &["XEP-0191"], "blocking command"),
    // 04 protocol
    built("roster", Layer::Protocol, "core", &["RFC 6121 §2", "XEP-0237"], "roster with versioning"),
    built("presence", Layer::Protocol, "core", &["RFC 6121 §3-4"], "subscriptions and presence"),
    built("disco", Layer::Protocol, "core", &["XEP-0030"], "service discovery"),
    built("ping", Layer::Protocol, "core", &["XEP-0199"], "XMPP ping"),
    built("version", Layer::Protocol, "extensions", &["XEP-0092"], "software version"),
    built("time", Layer::Protocol, "extensions", &["XEP-0202"], "entity time of the server"),
    built("last", Layer::Protocol, "extensions", &["XEP-0012"], "last activity: the server's uptime, accounts' last logout and status"),
    built("carbons", Layer::Protocol, "extensions", &["XEP-0280"], "message carbons"),
    built("vcard", Layer::Protocol, "extensions", &["XEP-0054"], "vcard-temp"),
    ModuleInfo {
        depends: &["vcard"],
        ..built("vcard_xupdate", Layer::Protocol, "extensions", &["XEP-0153", "XEP-0398"], "the stored vCard's avatar hash in the users' available presence; XEP-0084 avatars published with PEP become the vCard's photo")
    },
    built("private", Layer::Protocol, "extensions", &["XEP-0049"], "private XML storage"),
    built("extdisco", Layer::Protocol, "extensions", &["XEP-0215"], "external service discovery: the STUN/TURN server of turn_external_*, with TURN credentials for coturn"),
    built("register", Layer::Protocol, "legacy", &["XEP-0077"], "in-band registration (when allow_registration), password change and account removal"),
    built("push", Layer::Protocol, "experimental", &["XEP-0357"], "push notifications to the app servers of the user's clients"),
    built("pep", Layer::Protocol, "extensions", &["XEP-0163", "XEP-0060", "XEP-0223", "XEP-0084", "XEP-0398 §3.2"], "personal eventing: every account a pubsub service (publish with auto-create and publish-options, items by access model, retract, delete, configure, subscriptions, affiliations, notifications; a vCard's photo published as the XEP-0084 avatar)"),
    // 05 services
    ModuleInfo {
        depends: &["router"],
        ..built("offline", Layer::Services, "messaging", &["XEP-0160", "XEP-0203"], "offline message storage")
    },
    built("muc", Layer::Services, "groupchat", &["XEP-0045", "XEP-0249", "XEP-0359", "XEP-0410", "XEP-0421"], "multi-user chat at conference.<domain>: rooms, occupants, roles and affiliations, moderation, configuration, history, invitations, voice requests, self-ping, occupant ids"),
    built("pubsub", Layer::Services, "pubsub", &["XEP-0060", "XEP-0059", "XEP-0223"], "publish-subscribe service at pubsub.<domain>: nodes, items with paging, subscriptions with approval, affiliations, notifications"),
    ModuleInfo {
        depends: &["http"],
        ..built("upload", Layer::Services, "upload", &["XEP-0363"], "HTTP file upload at upload.<domain>: signed slots within a size limit and a daily quota per user, files served from /upload/ on the HTTP ports, kept upload_expire_after and deleted with their account")
    },
    // 06 storage
    ModuleInfo {
        conflicts: &["storage_sql"],
        ..built("storage_embedded", Layer::Storage, "backends", &[], "embedded store: redb (default) or sled (storage.driver)")
    },
    ModuleInfo {
        conflicts: &["storage_embedded"],
        ..built("storage_sql", Layer::Storage, "backends", &[], "PostgreSQL store (storage.driver = \"postgresql\", the sql_* keys)")
    },
    built("mam", Layer::Storage, "archiving", &["XEP-0313", "XEP-0359", "XEP-0441", "XEP-0059"], "message archive management: user archives with stanza-ids, preferences and retention"),
    // 07 interfaces
    built("http", Layer::Interfaces, "http", &["RFC 9112"], "HTTP and HTTPS listeners: /health, /metrics, host-meta (XEP-0156) and the WebSocket and BOSH endpoints"),
    ModuleInfo {
        depends: &["http"],
        ..built("websocket", Layer::Interfaces, "websocket", &["RFC 7395"], "XMPP over WebSocket at /xmpp-websocket on the HTTP and HTTPS ports: the c2s session (SASL, stream management with resumption, CSI, carbons, MAM) for web clients such as Converse.js")
    },
    ModuleInfo {
        depends: &["http"],
        ..built("bosh", Layer::Interfaces, "bosh", &["XEP-0124", "XEP-0206"], "XMPP over BOSH at /http-bind: sessions with held requests, the rid window with retransmission, pause and restart, in front of the same c2s session as TCP")
    },
    built("component", Layer::Interfaces, "components", &["XEP-0114"], "external components ([[component]] entries)"),
    built("admin_socket", Layer::Interfaces, "components", &[], "local admin socket for vireo adduser & co."),
    // 08 integration
    ModuleInfo {
        conflicts: &["auth_internal"],
        ..planned("auth_ldap", Layer::Integration, "ldap", &[], "LDAP authentication")
    },
    planned("oauth", Layer::Integration, "oauth", &["RFC 6749"], "OAuth 2.0 provider"),
    planned("webhooks", Layer::Integration, "webhooks", &[], "HTTP callbacks on events"),
    ModuleInfo {
        depends: &["http"],
        ..built("api", Layer::Integration, "apis", &["OpenAPI 3.0"], "admin REST API at /api/ on the HTTP ports (users, sessions, messages, announcements, stats; OpenAPI document at /api/openapi.json), bearer tokens from `vireo token create`")
    },
];

/// Modules that were renamed, old name first: configurations written for
/// an earlier version keep loading, with a warning naming the new name.
pub const RENAMED: &[(&str, &str)] = &[
    // The embedded store is redb now; sled is only one of its drivers.
    ("storage_sled", "storage_embedded"),
];

/// The current name of a module that was renamed.
pub fn renamed(name: &str) -> Option<&'static str> {
    RENAMED
        .iter()
        .find(|(old, _)| *old == name)
        .map(|(_, new)| *new)
}

/// Look a module up by name.
pub fn find(name: &str) -> Option<&'static ModuleInfo> {
    CATALOG.iter().find(|m| m.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catalog_is_consistent() {
        for m in CATALOG {
            assert!(
                m.layer.files().contains(&m.file),
                "{} names a file of its layer",
                m.name
            );
            for d in m.depends.iter().chain(m.conflicts) {
                assert!(find(d).is_some(), "{} refers to unknown module {d}", m.name);
            }
            assert_eq!(
                CATALOG.iter().filter(|o| o.name == m.name).count(),
                1,
                "{} unique",
                m.name
            );
        }
    }
}
