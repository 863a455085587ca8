//! Checks on the effective configuration as a whole: module dependencies
//! and conflicts, port collisions, certificates and keys, domains without
//! certificates, administrators of domains not served, archive settings
//! without the archive.

use super::diagnostics::Diagnostic;
use super::schema::Home;
use super::{Config, Origin, Source};
use crate::modules;
use std::collections::BTreeMap;
use std::path::Path;
use xmpp_runtime::tls::{server_tls, TlsError};

pub fn run(cfg: &Config) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    modules_of(&cfg.module_origins, None, &mut out);
    for vh in &cfg.vhosts {
        if vh.modules != cfg.module_origins {
            modules_of(&vh.modules, Some(&vh.domain), &mut out);
        }
    }
    ports(cfg, &mut out);
    super::components::check(cfg, &mut out);
    certificates(cfg, &mut out);
    admins(cfg, &mut out);
    registration(cfg, &mut out);
    turn(cfg, &mut out);
    archiving(cfg, &mut out);
    queues(cfg, &mut out);
    http(cfg, &mut out);
    out
}

/// `http_external_url` is the base every advertised HTTP address is built
/// on: it has to be an absolute http(s) URL without query or fragment.
fn http(cfg: &Config, out: &mut Vec<Diagnostic>) {
    let key = "interfaces.http_external_url";
    let Some(url) = cfg.text(key) else {
        return;
    };
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"));
    let ok = rest.is_some_and(|r| {
        !r.is_empty() && !r.starts_with('/') && !r.contains(['?', '#', ' ', '\'', '"', '<', '>'])
    });
    if !ok {
        out.push(
            Diagnostic::error(
                cfg.origin(key),
                format!("{key}: {url:?} is not an http:// or https:// URL"),
            )
            .with_fix("write it as clients reach the server, e.g. \"https://chat.example.org\""),
        );
    }
}

/// Byte caps on a session's queues below the largest stanza would end
/// every session that is sent one; an offline page as long as the XEP-0198
/// queue would end the session it is meant to spare (it is clamped).
fn queues(cfg: &Config, out: &mut Vec<Diagnostic>) {
    for (key, value) in [
        ("stream.max_mailbox_bytes", cfg.max_mailbox_bytes),
        ("stream.smacks_max_queue_bytes", cfg.smacks_max_queue_bytes),
    ] {
        if value < cfg.max_stanza_size {
            out.push(
                Diagnostic::error(
                    cfg.origin(key),
                    format!(
                        "{key} ({value}) is below stream.max_stanza_size ({}): one stanza of the largest size would end the session it is sent to",
                        cfg.max_stanza_size
                    ),
                )
                .with_fix(format!("set {key} to at least {}", cfg.max_stanza_size)),
            );
        }
    }
    if cfg.offline_page_size.saturating_mul(2) > cfg.smacks_max_queue_size {
        out.push(
            Diagnostic::warning(
                cfg.origin("services.offline_page_size"),
                format!(
                    "services.offline_page_size ({}) is more than half of stream.smacks_max_queue_size ({}): pages are cut to {}",
                    cfg.offline_page_size,
                    cfg.smacks_max_queue_size,
                    (cfg.smacks_max_queue_size / 2).max(1)
                ),
            )
            .with_fix("lower services.offline_page_size, or raise stream.smacks_max_queue_size"),
        );
    }
}

pub(super) fn modules_of(
    set: &BTreeMap<&'static str, Origin>,
    domain: Option<&str>,
    out: &mut Vec<Diagnostic>,
) {
    let whose = domain.map(|d| format!(" for {d}")).unwrap_or_default();
    for (name, origin) in set {
        let Some(m) = modules::find(name) else {
            continue;
        };
        for dep in m.depends {
            if !set.contains_key(dep) {
                let home = modules::find(dep)
                    .map(|d| Home::Layer(d.layer, d.file).path())
                    .unwrap_or_default();
                out.push(
                    Diagnostic::error(
                        origin.clone(),
                        format!(
                            "module `{name}` needs module `{dep}`, which is not enabled{whose}"
                        ),
                    )
                    .with_fix(format!(
                        "add \"{dep}\" to the modules of {home}, or remove `{name}`"
                    )),
                );
            }
        }
        for other in m.conflicts {
            // Report each pair once, at the module that sorts second.
            if set.contains_key(other) && *other < *name {
                out.push(
                    Diagnostic::error(
                        origin.clone(),
                        format!("module `{name}` conflicts with module `{other}` (enabled at {}){whose}", set[other]),
                    )
                    .with_fix(format!("enable only one of `{name}` and `{other}`")),
                );
            }
        }
    }
}

fn ports(cfg: &Config, out: &mut Vec<Diagnostic>) {
    // The component listener only exists with components to accept.
    let component_port = if cfg.components.is_empty() {
        0
    } else {
        cfg.component_port
    };
    let listeners = [
        ("transport.c2s_port", cfg.c2s_port, "c2s"),
        ("transport.c2s_tls_port", cfg.c2s_tls_port, "c2s_direct_tls"),
        (
            "transport.s2s_port",
            cfg.int("transport.s2s_port").unwrap_or(0),
            "s2s",
        ),
        (
            "transport.s2s_tls_port",
            cfg.int("transport.s2s_tls_port").unwrap_or(0),
            "s2s_direct_tls",
        ),
        (
            "interfaces.http_port",
            cfg.int("interfaces.http_port").unwrap_or(0),
            "http",
        ),
        (
            "interfaces.https_port",
            cfg.int("interfaces.https_port").unwrap_or(0),
            "http",
        ),
        ("interfaces.component_port", component_port, "component"),
    ];
    for (i, (key, port, module)) in listeners.iter().enumerate() {
        if *port == 0 || !cfg.module_origins.contains_key(module) {
            continue;
        }
        for (other, oport, omodule) in &listeners[..i] {
            if oport == port && cfg.module_origins.contains_key(omodule) {
                out.push(
                    Diagnostic::error(
                        cfg.origin(key),
                        format!(
                            "port {port} of {key} is also the port of {other} ({})",
                            cfg.origin(other)
                        ),
                    )
                    .with_fix("give each listener its own port"),
                );
            }
        }
    }
}

fn certificates(cfg: &Config, out: &mut Vec<Diagnostic>) {
    // Without tls.* the first domain's own pair is served (checked below).
    let explicit = cfg.values.contains_key("tls.certificate") || cfg.values.contains_key("tls.key");
    let global = if explicit {
        pair(
            cfg.certificate.as_deref(),
            cfg.key.as_deref(),
            cfg.origin("tls.certificate"),
            cfg.origin("tls.key"),
            "tls.certificate",
            "tls.key",
            out,
        )
    } else {
        false
    };
    for vh in &cfg.vhosts {
        let own = match (&vh.certificate, &vh.key) {
            (None, None) => false,
            (c, k) => pair(
                c.as_ref().map(|(p, _)| p.as_path()),
                k.as_ref().map(|(p, _)| p.as_path()),
                c.as_ref()
                    .map(|(_, o)| o.clone())
                    .unwrap_or_else(|| vh.origin.clone()),
                k.as_ref()
                    .map(|(_, o)| o.clone())
                    .unwrap_or_else(|| vh.origin.clone()),
                "certificate",
                "key",
                out,
            ),
        };
        // A domain's own certificate and key are served to it by SNI.
        if !own && !global {
            out.push(
                Diagnostic::warning(
                    vh.origin.clone(),
                    format!(
                        "domain {} has no certificate: a self-signed one will be generated in {} (clients will not trust it)",
                        vh.domain,
                        cfg.cert_dir().display()
                    ),
                )
                .with_fix(match cfg.source {
                    Source::Tree(_) => format!(
                        "set certificate and key in its domain file (domains/{}.toml) or tls.certificate and tls.key in stack/01-transport/tls.toml; `vireo cert import` installs one",
                        vh.domain
                    ),
                    _ => "set tls.certificate and tls.key; `vireo cert import` installs one".to_owned(),
                }),
            );
        }
    }
}

/// Check one certificate/key pair; true when both are set (even if broken,
/// which is reported).
fn pair(
    cert: Option<&Path>,
    key: Option<&Path>,
    cert_origin: Origin,
    key_origin: Origin,
    cert_name: &str,
    key_name: &str,
    out: &mut Vec<Diagnostic>,
) -> bool {
    let (cert, key) = match (cert, key) {
        (None, None) => return false,
        (Some(c), Some(k)) => (c, k),
        (Some(_), None) => {
            out.push(
                Diagnostic::error(
                    cert_origin,
                    format!("{cert_name} is set without {key_name}"),
                )
                .with_fix(format!("set {key_name} next to it, or remove {cert_name}")),
            );
            return true;
        }
        (None, Some(_)) => {
            out.push(
                Diagnostic::error(key_origin, format!("{key_name} is set without {cert_name}"))
                    .with_fix(format!("set {cert_name} next to it, or remove {key_name}")),
            );
            return true;
        }
    };
    if let Err(e) = server_tls(cert, key) {
        let (origin, message, fix) = match &e {
            TlsError::Io { path, source } if path == key => (
                key_origin,
                format!("cannot read the key {}: {source}", path.display()),
                "check the path and that the server's user may read it".to_owned(),
            ),
            TlsError::Io { path, source } => (
                cert_origin,
                format!("cannot read the certificate {}: {source}", path.display()),
                "check the path and that the server's user may read it".to_owned(),
            ),
            TlsError::NoPrivateKey(p) | TlsError::Pem { path: p, .. } if p == key => (
                key_origin,
                e.to_string(),
                "the key must be a PEM private key (PKCS#8, PKCS#1 or SEC1)".to_owned(),
            ),
            TlsError::Rejected { source, .. } => (
                key_origin,
                format!(
                    "the key {} does not match the certificate {} (or is unsupported): {source}",
                    key.display(),
                    cert.display()
                ),
                "use the key the certificate was issued for".to_owned(),
            ),
            _ => (
                cert_origin,
                e.to_string(),
                "the certificate must be a PEM chain, end-entity first".to_owned(),
            ),
        };
        out.push(Diagnostic::error(origin, message).with_fix(fix));
    }
    true
}

/// Archive settings do nothing without the `mam` module.
fn archiving(cfg: &Config, out: &mut Vec<Diagnostic>) {
    if cfg.modules.contains(&"mam") {
        return;
    }
    for key in cfg
        .values
        .keys()
        .filter(|k| k.starts_with("storage.archive_"))
    {
        out.push(
            Diagnostic::warning(
                cfg.origin(key),
                format!("{key} has no effect: the mam module is not enabled"),
            )
            .with_fix(
                "add \"mam\" to the modules of stack/06-storage/archiving.toml, or remove the key",
            ),
        );
    }
}

fn admins(cfg: &Config, out: &mut Vec<Diagnostic>) {
    for admin in &cfg.admins {
        let domain = admin.rsplit('@').next().unwrap_or_default();
        if !cfg.domains.iter().any(|d| d == domain) {
            out.push(
                Diagnostic::warning(
                    cfg.origin("admins"),
                    format!("administrator {admin} is not on a domain this server hosts"),
                )
                .with_fix(format!("hosted domains: {}", cfg.domains.join(", "))),
            );
        }
    }
}

/// `allow_registration` needs the `register` module (XEP-0077); an
/// environment's built-in default for it is no mistake of the user's.
fn registration(cfg: &Config, out: &mut Vec<Diagnostic>) {
    let origin = cfg.origin("registration.allow_registration");
    if cfg.allow_registration
        && !cfg.module_origins.contains_key("register")
        && !matches!(origin, Origin::Profile(_))
    {
        out.push(
            Diagnostic::warning(
                origin,
                "registration.allow_registration has no effect: module `register` is not enabled",
            )
            .with_fix(format!(
                "add \"register\" to the modules of {}",
                Home::Layer(modules::Layer::Protocol, "legacy").path()
            )),
        );
    }
}

/// The `turn_external_*` keys describe the server at `turn_external_host`
/// and are published by the `extdisco` module (XEP-0215).
fn turn(cfg: &Config, out: &mut Vec<Diagnostic>) {
    let file = Home::Layer(modules::Layer::Protocol, "extensions").path();
    if cfg.text("extdisco.turn_external_host").is_none() {
        for key in [
            "extdisco.turn_external_secret",
            "extdisco.turn_external_tls_port",
            "extdisco.turn_external_user",
        ] {
            if cfg.values.contains_key(key) {
                out.push(
                    Diagnostic::warning(
                        cfg.origin(key),
                        format!("{key} has no effect: extdisco.turn_external_host is not set"),
                    )
                    .with_fix(format!("set turn_external_host in {file}")),
                );
            }
        }
    } else if !cfg.module_origins.contains_key("extdisco") {
        out.push(
            Diagnostic::warning(
                cfg.origin("extdisco.turn_external_host"),
                "the STUN/TURN server is not advertised: module `extdisco` is not enabled",
            )
            .with_fix(format!("add \"extdisco\" to the modules of {file}")),
        );
    }
}
