//! `vireo config show [KEY] [--domain D]`: the effective configuration,
//! one `key = value` per line (TOML syntax) with its origin as a comment.

use crate::config::components::SecretSource;
use crate::config::diagnostics::did_you_mean;
use crate::config::schema::{Value, KEYS};
use crate::config::{Config, EnvFn, Origin, Source};
use std::path::Path;

/// Render the effective configuration (or the keys under `key`).
pub fn run(
    config_path: Option<&Path>,
    env: EnvFn<'_>,
    key: Option<&str>,
    domain: Option<&str>,
) -> Result<String, String> {
    let cfg = Config::load(config_path, env).map_err(|e| format!("configuration error: {e}"))?;
    render(&cfg, key, domain)
}

/// The lines for a loaded configuration.
pub fn render(cfg: &Config, key: Option<&str>, domain: Option<&str>) -> Result<String, String> {
    let mut rows: Vec<(String, String, Origin)> = Vec::new();
    let vhost = match domain {
        Some(d) => {
            let d = d.trim().to_ascii_lowercase();
            Some(cfg.vhost(&d).ok_or_else(|| {
                format!("{d} is not served (domains: {})", cfg.domains.join(", "))
            })?)
        }
        None => None,
    };
    for spec in KEYS.iter().filter(|k| k.available && k.name != "domain") {
        if let Some((value, origin)) = cfg.value(spec.name) {
            // Secrets are for the server, not for the terminal or a ticket.
            let secret = spec.local.ends_with("secret") || spec.local.ends_with("password");
            // An empty secret is no secret: show that none is set.
            let shown = if secret && value.to_string() != "\"\"" {
                "\"(hidden)\"".to_owned()
            } else {
                value.to_string()
            };
            rows.push((spec.name.to_owned(), shown, origin));
        }
    }
    // The certificate served when it comes from the first domain's file.
    if !cfg.values.contains_key("tls.certificate") {
        if let (Some(c), Some(k)) = (&cfg.certificate, &cfg.key) {
            rows.push((
                "tls.certificate".into(),
                format!("{:?}", c.display().to_string()),
                cfg.origin("tls.certificate"),
            ));
            rows.push((
                "tls.key".into(),
                format!("{:?}", k.display().to_string()),
                cfg.origin("tls.key"),
            ));
        }
    }
    if let Some(vh) = vhost {
        rows.push((
            "domain".into(),
            Value::Str(vh.domain.clone()).to_string(),
            vh.origin.clone(),
        ));
        if let (Some((c, co)), Some((k, ko))) = (&vh.certificate, &vh.key) {
            rows.push((
                "certificate".into(),
                format!("{:?}", c.display().to_string()),
                co.clone(),
            ));
            rows.push((
                "key".into(),
                format!("{:?}", k.display().to_string()),
                ko.clone(),
            ));
        }
    }
    // Components by name; their secrets are never shown.
    for c in &cfg.components {
        let secret = match &c.source {
            SecretSource::Inline(_) => "(secret hidden)".to_owned(),
            SecretSource::Env(var) => format!("(secret from ${var})"),
        };
        rows.push((
            format!("interfaces.component.{}", c.jid),
            format!("{secret:?}"),
            c.origin.clone(),
        ));
    }
    let modules = match vhost {
        Some(vh) => &vh.modules,
        None => &cfg.module_origins,
    };
    for m in crate::modules::CATALOG {
        if let Some(origin) = modules.get(m.name) {
            rows.push((format!("modules.{}", m.name), "true".into(), origin.clone()));
        }
    }
    if let Some(k) = key {
        let wanted: Vec<_> = rows
            .iter()
            .filter(|(name, _, _)| name == k || name.starts_with(&format!("{k}.")))
            .cloned()
            .collect();
        if wanted.is_empty() {
            let names: Vec<&str> = rows.iter().map(|(n, _, _)| n.as_str()).collect();
            let hint = match did_you_mean(k, names.iter().copied()) {
                Some(s) => format!(" (did you mean {s}?)"),
                None if k.starts_with("modules.") => " (module not enabled)".into(),
                None => match crate::config::schema::find(k) {
                    Some(s) if !s.available => " (not available in this version)".into(),
                    Some(_) => " (unset)".into(),
                    None => String::new(),
                },
            };
            return Err(format!("no effective value for {k}{hint}"));
        }
        rows = wanted;
    }
    let mut out = String::new();
    if key.is_none() {
        let source = match &cfg.source {
            Source::Defaults => "built-in defaults".to_owned(),
            Source::File(p) => format!("file {}", p.display()),
            Source::Tree(p) => format!("tree {}", p.display()),
        };
        out.push_str(&format!(
            "# configuration: {source}; environment: {}; policies: {}\n",
            cfg.environment.as_deref().unwrap_or("none"),
            if cfg.policies.is_empty() {
                "none".to_owned()
            } else {
                cfg.policies.join(", ")
            }
        ));
    }
    let width = rows
        .iter()
        .map(|(n, v, _)| n.len() + v.len() + 3)
        .filter(|w| *w <= 48)
        .max()
        .unwrap_or(0);
    for (name, value, origin) in rows {
        let left = format!("{name} = {value}");
        out.push_str(&format!("{left:<width$}  # {origin}\n"));
    }
    Ok(out)
}
