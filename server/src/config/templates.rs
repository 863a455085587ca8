//! What `vireo config init` writes: the whole tree, every file commented.
//! Layer files are generated from the schema and the module catalog, so
//! they always match what the loader accepts; the other files are
//! templates embedded with `include_str!`.

use super::schema::{Home, Ty, KEYS};
use crate::modules::{Layer, CATALOG};
use std::fmt::Write as _;
use std::path::PathBuf;

const VIREO: &str = include_str!("templates/vireo.toml");
const DOMAIN: &str = include_str!("templates/domain.toml");
const PRODUCTION: &str = include_str!("templates/production.toml");
const DEVELOPMENT: &str = include_str!("templates/development.toml");
const DOCKER: &str = include_str!("templates/docker.toml");
const SECURITY: &str = include_str!("templates/security-baseline.toml");
const PERFORMANCE: &str = include_str!("templates/performance-limits.toml");
const COMPLIANCE: &str = include_str!("templates/compliance-suites.toml");

/// What each layer file configures.
fn about(layer: Layer, file: &str) -> &'static str {
    match (layer, file) {
        (Layer::Transport, "ports") => "Listeners: the address and ports clients (and, later, servers) connect to.",
        (Layer::Transport, "tls") => "TLS (RFC 6120 §5, RFC 8446): the certificate and key served to clients.\nTLS 1.2 and 1.3 only, with rustls. Per-domain certificates: domains/*.toml.",
        (Layer::Transport, "compression") => "Stream compression (XEP-0138) is deliberately NOT offered.\n\nCompressing data inside TLS lets an attacker who can inject text and\nwatch ciphertext sizes recover secrets (the CRIME attack class, also\nBREACH): credentials, tokens, message contents. XMPP streams mix\nattacker-controlled and secret data in one compression context, which is\nexactly the vulnerable pattern. Enabling `compression` is refused by\n`vireo check config` with this explanation.",
        (Layer::Transport, "connections") => "Connection management: limits, worker threads, timeouts, keepalives.",
        (Layer::Stream, "authentication") => "SASL authentication (RFC 6120 §6) and the account backend.",
        (Layer::Stream, "encryption") => "Stream encryption requirements (RFC 6120 §5.3.1), and end-to-end\nencryption support (OMEMO, XEP-0384).",
        (Layer::Stream, "management") => "Stream management (XEP-0198) and client state indication (XEP-0352).",
        (Layer::Stream, "negotiation") => "Stream negotiation after authentication: resource binding (RFC 6120 §7).",
        (Layer::Stanza, "routing") => "Stanza routing and delivery rules (RFC 6120 §8, §10; RFC 6121 §8).",
        (Layer::Stanza, "filtering") => "Stanza filtering: blocking (XEP-0191), firewall and anti-spam.",
        (Layer::Stanza, "validation") => "Stanza validation and limits (RFC 6120 §13.12).",
        (Layer::Stanza, "processing") => "Advanced stanza processing hooks.",
        (Layer::Protocol, "core") => "Core protocol (RFC 6121): roster, presence, service discovery, ping.",
        (Layer::Protocol, "extensions") => "Protocol extensions (XEPs) beyond the core.",
        (Layer::Protocol, "legacy") => "Older protocols clients still use: in-band registration, password\nchange and account removal (XEP-0077).",
        (Layer::Protocol, "experimental") => "Experimental extensions.",
        (Layer::Services, "messaging") => "Message delivery: offline storage (XEP-0160) with delay stamps (XEP-0203).",
        (Layer::Services, "presence") => "Presence services beyond RFC 6121 (the core is in 04-protocol/core.toml).",
        (Layer::Services, "groupchat") => "Multi-user chat (XEP-0045).",
        (Layer::Services, "upload") => "HTTP file upload (XEP-0363): sharing files in chats.",
        (Layer::Services, "pubsub") => "Publish-subscribe services (XEP-0060); personal eventing (XEP-0163) is the `pep` module.",
        (Layer::Storage, "backends") => "Storage backend for accounts, rosters and offline messages.",
        (Layer::Storage, "archiving") => "Message archive management (XEP-0313).",
        (Layer::Storage, "caching") => "Caches in front of the store.",
        (Layer::Storage, "migration") => "Data migration between backends and from other servers.",
        (Layer::Interfaces, "http") => "The HTTP server (file upload, web clients, APIs).",
        (Layer::Interfaces, "websocket") => "XMPP over WebSocket (RFC 7395).",
        (Layer::Interfaces, "bosh") => "XMPP over BOSH (XEP-0124, XEP-0206).",
        (Layer::Interfaces, "components") => "External components (XEP-0114) and the local admin socket.",
        (Layer::Integration, "ldap") => "LDAP authentication.",
        (Layer::Integration, "oauth") => "OAuth 2.0 (RFC 6749).",
        (Layer::Integration, "webhooks") => "HTTP callbacks on server events.",
        (Layer::Integration, "apis") => "REST administration API.",
        _ => "",
    }
}

fn comment_block(out: &mut String, text: &str) {
    for line in text.lines() {
        if line.is_empty() {
            out.push_str("#\n");
        } else {
            let _ = writeln!(out, "# {line}");
        }
    }
}

/// One layer file.
pub fn layer_file(layer: Layer, file: &'static str) -> String {
    let home = Home::Layer(layer, file);
    let mut out = String::new();
    let _ = writeln!(out, "# {}", home.path());
    out.push_str("#\n");
    comment_block(&mut out, about(layer, file));
    out.push('\n');
    let modules: Vec<_> = CATALOG
        .iter()
        .filter(|m| m.layer == layer && m.file == file)
        .collect();
    // Of modules that exclude each other (the embedded store and
    // PostgreSQL), the first is enabled and the others are listed as
    // alternatives.
    let mut on: Vec<_> = Vec::new();
    let mut alternatives: Vec<_> = Vec::new();
    for m in modules
        .iter()
        .filter(|m| m.available && m.refused.is_none())
    {
        if on
            .iter()
            .any(|o: &&&crate::modules::ModuleInfo| m.conflicts.contains(&o.name))
        {
            alternatives.push(m);
        } else {
            on.push(m);
        }
    }
    let off: Vec<_> = modules
        .iter()
        .filter(|m| !m.available || m.refused.is_some())
        .collect();
    out.push_str("# Modules of this file, enabled for every domain (domains/*.toml can\n# override per domain):\n");
    for m in &on {
        let specs = if m.specs.is_empty() {
            String::new()
        } else {
            format!(" ({})", m.specs.join(", "))
        };
        let _ = writeln!(out, "#   {}: {}{specs}", m.name, m.summary);
    }
    if on.is_empty() {
        out.push_str("#   (none built in this version)\n");
    }
    for m in &alternatives {
        let _ = writeln!(
            out,
            "# Instead of {}: {} ({}).",
            m.conflicts.join(", "),
            m.name,
            m.summary
        );
    }
    let refused: Vec<_> = off.iter().filter(|m| m.refused.is_some()).collect();
    let off: Vec<_> = off.iter().filter(|m| m.refused.is_none()).collect();
    for m in &refused {
        let _ = writeln!(
            out,
            "# Refused (enabling it is an error): {} ({}).",
            m.name,
            m.specs.join(", ")
        );
    }
    if !off.is_empty() {
        out.push_str("# Not available in this version (enabling them is an error):\n");
        for m in &off {
            let specs = if m.specs.is_empty() {
                String::new()
            } else {
                format!(" ({})", m.specs.join(", "))
            };
            let _ = writeln!(out, "#   {}: {}{specs}", m.name, m.summary);
        }
    }
    let names: Vec<String> = on.iter().map(|m| format!("{:?}", m.name)).collect();
    let _ = writeln!(out, "modules = [{}]", names.join(", "));
    for k in KEYS.iter().filter(|k| k.home == home) {
        out.push('\n');
        comment_block(&mut out, k.doc);
        let mut meta = vec![format!("type: {}", k.ty.name())];
        if !k.default.is_empty() {
            meta.push(format!("default: {}", k.default));
        }
        if !k.specs.is_empty() {
            meta.push(k.specs.join(", "));
        }
        let _ = writeln!(out, "# {}", meta.join("; "));
        if !k.available {
            let _ = writeln!(
                out,
                "# Not available in this version: setting `{}` is an error.",
                k.local
            );
        } else if k.default.is_empty() || matches!(k.ty, Ty::Path) && k.name.starts_with("tls.") {
            let example = match k.local {
                "certificate" => "\"certs/example.org.crt\"",
                "key" => "\"certs/example.org.key\"",
                _ => "\"\"",
            };
            let _ = writeln!(out, "# {} = {example}", k.local);
        } else {
            let _ = writeln!(out, "{} = {}", k.local, k.default);
        }
    }
    if home == Home::Layer(Layer::Interfaces, "components") {
        out.push('\n');
        comment_block(
            &mut out,
            "External components (XEP-0114): one [[component]] table each, after\n\
             the keys above. A component serves every address of its domain; its\n\
             secret is written here or read from an environment variable.",
        );
        out.push_str("# [[component]]\n# jid = \"push.example.org\"\n# secret_env = \"VIREO_PUSH_SECRET\"   # or: secret = \"...\"\n");
    }
    out
}

/// Every file of a fresh tree, relative path and contents.
pub fn tree(domain: &str, environment: &str) -> Vec<(PathBuf, String)> {
    let fill = |t: &str| {
        t.replace("{{DOMAIN}}", domain)
            .replace("{{ENVIRONMENT}}", environment)
    };
    let mut files = vec![(PathBuf::from("vireo.toml"), fill(VIREO))];
    for layer in Layer::ALL {
        for file in layer.files() {
            files.push((
                PathBuf::from(format!("stack/{}/{file}.toml", layer.dir())),
                layer_file(layer, file),
            ));
        }
    }
    files.push((
        PathBuf::from(format!("domains/{domain}.toml")),
        fill(DOMAIN),
    ));
    files.push(("environments/production.toml".into(), PRODUCTION.into()));
    files.push(("environments/development.toml".into(), DEVELOPMENT.into()));
    files.push(("environments/docker.toml".into(), DOCKER.into()));
    files.push(("policies/security/baseline.toml".into(), SECURITY.into()));
    files.push((
        "policies/performance/limits.toml".into(),
        PERFORMANCE.into(),
    ));
    files.push(("policies/compliance/suites.toml".into(), COMPLIANCE.into()));
    files
}
