//! External components (XEP-0114): the `[[component]]` entries of
//! `stack/07-interfaces/components.toml` (`[[interfaces.component]]` in a
//! single file), each a domain and the secret its handshake proves.
//!
//! A secret is written inline (`secret`) or, to keep it out of the tree,
//! named by an environment variable (`secret_env`) read at load time.

use super::diagnostics::{did_you_mean, Diagnostic};
use super::merge::{Parsed, State};
use super::node::Node;
use super::schema::{Ty, Value};
use super::{Config, EnvFn, Origin};
use toml::Spanned;

/// The keys of one entry.
const KEYS_HERE: &[&str] = &["jid", "secret", "secret_env"];

/// Handshake secrets shorter than this are reported: the handshake is a
/// SHA-1 over a plain connection, so a short secret falls to offline guessing.
const WEAK_SECRET: usize = 16;

/// Where an entry's secret comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretSource {
    /// Written in the file.
    Inline(String),
    /// Read from this environment variable.
    Env(String),
}

/// One configured component.
#[derive(Clone, PartialEq, Eq)]
pub struct ComponentEntry {
    /// Its domain, normalized.
    pub jid: String,
    /// The secret (resolved from the environment when loading finishes;
    /// empty until then or when the variable is missing).
    pub secret: String,
    pub source: SecretSource,
    /// Where the entry was written.
    pub origin: Origin,
}

impl std::fmt::Debug for ComponentEntry {
    /// Never a secret in a log or a panic message.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ComponentEntry")
            .field("jid", &self.jid)
            .field("origin", &self.origin)
            .finish_non_exhaustive()
    }
}

impl State {
    /// `component = [...]` (an array of tables) from `file`.
    pub fn apply_components(&mut self, file: &Parsed, value: &Spanned<Node>) {
        let Node::Array(items) = value.get_ref() else {
            self.error(
                Diagnostic::error(
                    file.origin(value.span().start),
                    format!(
                        "component: expected [[component]] tables, found {}",
                        value.get_ref().kind()
                    ),
                )
                .with_fix("write each component as a [[component]] table with `jid` and `secret`"),
            );
            return;
        };
        for item in items {
            self.component_entry(file, item);
        }
    }

    fn component_entry(&mut self, file: &Parsed, item: &Spanned<Node>) {
        let origin = file.origin(item.span().start);
        let Node::Table(entries) = item.get_ref() else {
            self.error(Diagnostic::error(
                origin,
                format!(
                    "component: expected a table, found {}",
                    item.get_ref().kind()
                ),
            ));
            return;
        };
        let mut jid = None;
        let mut source = None;
        let mut ok = true;
        for (key, v) in entries {
            let korigin = file.origin(key.span().start);
            let vorigin = file.origin(v.span().start);
            let text = match v.get_ref() {
                Node::Str(s) => s.clone(),
                other => {
                    self.error(Diagnostic::error(
                        vorigin,
                        format!(
                            "component {}: expected a string, found {}",
                            key.get_ref(),
                            other.kind()
                        ),
                    ));
                    ok = false;
                    continue;
                }
            };
            match key.get_ref().as_str() {
                "jid" => match Ty::Domain.parse_text(&text) {
                    Ok(Value::Str(d)) => jid = Some(d),
                    Ok(_) => {}
                    Err(e) => {
                        self.error(
                            Diagnostic::error(vorigin, format!("component jid: {e}")).with_fix(
                                "a component is named by a domain, e.g. \"push.example.org\"",
                            ),
                        );
                        ok = false;
                    }
                },
                k @ ("secret" | "secret_env") => {
                    if source.is_some() {
                        self.error(
                            Diagnostic::error(vorigin, "component: both `secret` and `secret_env`")
                                .with_fix(
                                    "keep one: the secret itself, or the variable holding it",
                                ),
                        );
                        ok = false;
                    } else if text.is_empty() {
                        self.error(Diagnostic::error(vorigin, format!("component {k}: empty")));
                        ok = false;
                    } else if k == "secret" {
                        source = Some(SecretSource::Inline(text));
                    } else {
                        source = Some(SecretSource::Env(text));
                    }
                }
                k => {
                    let mut d =
                        Diagnostic::error(korigin, format!("unknown key `{k}` in a component"));
                    d = match did_you_mean(k, KEYS_HERE.iter().copied()) {
                        Some(s) => d.with_fix(format!("did you mean `{s}`?")),
                        None => {
                            d.with_fix(format!("keys of a component: {}", KEYS_HERE.join(", ")))
                        }
                    };
                    self.error(d);
                    ok = false;
                }
            }
        }
        let (Some(jid), Some(source)) = (jid, source) else {
            if ok {
                self.error(
                    Diagnostic::error(
                        origin,
                        "component without `jid` and `secret` (or `secret_env`)",
                    )
                    .with_fix("add `jid = \"push.example.org\"` and `secret = \"...\"`"),
                );
            }
            return;
        };
        if let Some(prev) = self.components.iter().find(|c| c.jid == jid) {
            let msg = format!("component {jid} is already configured at {}", prev.origin);
            self.error(Diagnostic::error(origin, msg).with_fix("keep one entry per component"));
            return;
        }
        let secret = match &source {
            SecretSource::Inline(s) => s.clone(),
            SecretSource::Env(_) => String::new(),
        };
        self.components.push(ComponentEntry {
            jid,
            secret,
            source,
            origin,
        });
    }

    /// Read the secrets named by `secret_env`.
    pub fn resolve_component_secrets(&mut self, env: EnvFn<'_>) {
        let mut missing = Vec::new();
        for c in &mut self.components {
            if let SecretSource::Env(var) = &c.source {
                match env(var).filter(|v| !v.is_empty()) {
                    Some(v) => c.secret = v,
                    None => missing.push((c.origin.clone(), c.jid.clone(), var.clone())),
                }
            }
        }
        for (origin, jid, var) in missing {
            self.error(
                Diagnostic::error(
                    origin,
                    format!("the secret of component {jid} is read from ${var}, which is not set"),
                )
                .with_fix(format!(
                    "export {var}=... before starting, or write `secret` instead"
                )),
            );
        }
    }
}

/// Checks on the components of the effective configuration.
pub fn check(cfg: &Config, out: &mut Vec<Diagnostic>) {
    let enabled = cfg.module_origins.contains_key("component");
    for c in &cfg.components {
        if cfg.domains.contains(&c.jid) {
            out.push(
                Diagnostic::error(
                    c.origin.clone(),
                    format!("component {} is also a served domain", c.jid),
                )
                .with_fix("give the component its own name, e.g. a subdomain"),
            );
        }
        if !c.secret.is_empty() && c.secret.chars().count() < WEAK_SECRET {
            out.push(
                Diagnostic::warning(
                    c.origin.clone(),
                    format!("the secret of component {} is short", c.jid),
                )
                .with_fix(format!(
                    "use at least {WEAK_SECRET} random characters (`openssl rand -hex 24`)"
                )),
            );
        }
    }
    if let (false, Some(first)) = (enabled, cfg.components.first()) {
        out.push(
            Diagnostic::warning(
                first.origin.clone(),
                "components are configured but module `component` is not enabled: none can connect",
            )
            .with_fix("add \"component\" to the modules of stack/07-interfaces/components.toml"),
        );
    }
    if enabled && !cfg.components.is_empty() && !cfg.component_bind.is_loopback() {
        out.push(
            Diagnostic::warning(
                cfg.origin("interfaces.component_bind"),
                format!(
                    "the component listener binds {}: component streams are not encrypted",
                    cfg.component_bind
                ),
            )
            .with_fix("keep components on 127.0.0.1 (the default), or reach them over a tunnel"),
        );
    }
}
