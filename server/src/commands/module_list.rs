//! `vireo module list`: every module of the catalog (`modules.rs`), grouped
//! by stack layer, with the specifications it implements, whether this
//! version has it built, and whether it is enabled for each hosted domain
//! and why.
//!
//! The enabled sets come from the layered configuration (each layer file's
//! `modules`, then `domains/*` overrides); a built module nobody mentions
//! is enabled by default.

use crate::config::{Config, Origin};
use crate::modules::{Layer, ModuleInfo, CATALOG};
use std::fmt::Write;

/// Whether a module is enabled for one domain, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// Enabled for the domain.
    pub enabled: bool,
    /// Short state: `enabled`, `disabled`, `not built`, `refused`.
    pub state: &'static str,
    /// Why: `default`, the file that enabled it, or the reason it cannot be.
    pub why: String,
}

/// The decision for `module` on `domain` under `cfg`: the domain's module
/// set (the global set with its domain file's overrides), else the global
/// set. A configuration with no module set at all (built in code rather
/// than loaded) gets the built-in default: everything Vireo implements.
pub fn decide(cfg: &Config, module: &ModuleInfo, domain: &str) -> Decision {
    if let Some(reason) = module.refused {
        return Decision {
            enabled: false,
            state: "refused",
            why: reason.to_owned(),
        };
    }
    if !module.available {
        return Decision {
            enabled: false,
            state: "not built",
            why: "planned, not in this version".into(),
        };
    }
    let global = &cfg.module_origins;
    if global.is_empty() && cfg.modules.is_empty() {
        return Decision {
            enabled: true,
            state: "enabled",
            why: "default".into(),
        };
    }
    let vhost = cfg.vhost(domain);
    let set = vhost.map(|v| &v.modules).unwrap_or(global);
    match set.get(module.name) {
        Some(Origin::Default) => Decision {
            enabled: true,
            state: "enabled",
            why: "default".into(),
        },
        Some(origin) => Decision {
            enabled: true,
            state: "enabled",
            why: format!("by {origin}"),
        },
        None => match vhost {
            Some(vh) if global.contains_key(module.name) => Decision {
                enabled: false,
                state: "disabled",
                why: format!("by {}", vh.origin),
            },
            _ => Decision {
                enabled: false,
                state: "disabled",
                why: format!(
                    "not in the modules list of stack/{}/{}.toml",
                    module.layer.dir(),
                    module.file
                ),
            },
        },
    }
}

/// The listing, as printed.
pub fn render(cfg: &Config) -> String {
    let mut out = String::new();
    let built = CATALOG.iter().filter(|m| m.available).count();
    let _ = writeln!(
        out,
        "{} modules, {built} built into this version; domains: {}",
        CATALOG.len(),
        cfg.domains.join(", ")
    );
    let name_w = CATALOG.iter().map(|m| m.name.len()).max().unwrap_or(0);
    for layer in Layer::ALL {
        let _ = writeln!(out, "\n{} (stack/{}/)", layer_title(layer), layer.dir());
        for m in CATALOG.iter().filter(|m| m.layer == layer) {
            let per_domain: Vec<(String, Decision)> = cfg
                .domains
                .iter()
                .map(|d| (d.clone(), decide(cfg, m, d)))
                .collect();
            let first = per_domain
                .first()
                .map(|(_, d)| d.clone())
                .unwrap_or_else(|| decide(cfg, m, ""));
            let same = per_domain.iter().all(|(_, d)| *d == first);
            let mark = match per_domain.iter().filter(|(_, d)| d.enabled).count() {
                0 if !first.enabled => "✗",
                n if n == per_domain.len() => "✓",
                _ => "±",
            };
            let mut status = if same {
                let scope = if cfg.domains.len() > 1 && first.enabled {
                    " (all domains)"
                } else {
                    ""
                };
                format!("{:<10} {}{scope}", first.state, first.why)
            } else {
                per_domain
                    .iter()
                    .map(|(d, dec)| format!("{d}: {} ({})", dec.state, dec.why))
                    .collect::<Vec<_>>()
                    .join("; ")
            };
            if !m.depends.is_empty() {
                let _ = write!(status, "; needs {}", m.depends.join(", "));
            }
            if !m.conflicts.is_empty() {
                let _ = write!(status, "; conflicts with {}", m.conflicts.join(", "));
            }
            let _ = writeln!(out, "  {mark} {:<name_w$}  {status}", m.name);
            let _ = writeln!(out, "      {} · {} · {}.toml", specs(m), m.summary, m.file);
        }
    }
    out.trim_end().to_owned()
}

/// Print the listing.
pub fn run(cfg: &Config) -> String {
    render(cfg)
}

fn specs(m: &ModuleInfo) -> String {
    if m.specs.is_empty() {
        "no XEP/RFC".into()
    } else {
        m.specs.join(", ")
    }
}

fn layer_title(layer: Layer) -> &'static str {
    match layer {
        Layer::Transport => "01 transport",
        Layer::Stream => "02 stream",
        Layer::Stanza => "03 stanza",
        Layer::Protocol => "04 protocol",
        Layer::Services => "05 services",
        Layer::Storage => "06 storage",
        Layer::Interfaces => "07 interfaces",
        Layer::Integration => "08 integration",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_layer_and_module_is_listed() {
        let cfg = Config::default();
        let out = render(&cfg);
        for layer in Layer::ALL {
            assert!(out.contains(layer.dir()), "{out}");
        }
        for m in CATALOG {
            assert!(out.contains(m.name), "{}", m.name);
        }
        assert!(out.contains("not built  planned, not in this version"));
        assert!(out.contains("refused    stream compression inside TLS"));
    }

    #[test]
    fn decisions_follow_the_catalog() {
        let cfg = Config::default();
        for m in CATALOG {
            let d = decide(&cfg, m, "localhost");
            assert_eq!(d.enabled, m.available && m.refused.is_none(), "{}", m.name);
        }
    }
}
