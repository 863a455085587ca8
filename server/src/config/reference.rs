//! `spec/config.md`, generated from the schema, the catalog and the
//! environment variables; a test fails when the committed file is stale.

use super::env::VARIABLES;
use super::schema::{Home, KEYS};
use crate::modules::{Layer, CATALOG};
use std::fmt::Write as _;

const INTRO: &str = include_str!("templates/reference-intro.md");

fn cell(s: &str) -> String {
    s.replace('|', "\\|")
}

/// The whole reference document.
pub fn markdown() -> String {
    let mut out = String::from(INTRO);
    out.push_str("\n## Keys\n\n");
    out.push_str("Dotted names are how keys are written in a single-file configuration, in\n");
    out.push_str("`environments/*.toml` and `policies/*/*.toml` (`[section]` then `key`), and\n");
    out.push_str("in `vireo config show`. Inside its layer file a key is written by its last\n");
    out.push_str("part. Keys marked *not available* are rejected by `vireo check config`.\n\n");
    let mut homes: Vec<Home> = vec![Home::Orchestration];
    for layer in Layer::ALL {
        for f in layer.files() {
            homes.push(Home::Layer(layer, f));
        }
    }
    for home in homes {
        let keys: Vec<_> = KEYS.iter().filter(|k| k.home == home).collect();
        let modules: Vec<_> = match home {
            Home::Layer(l, f) => CATALOG
                .iter()
                .filter(|m| m.layer == l && m.file == f)
                .collect(),
            Home::Orchestration => Vec::new(),
        };
        if keys.is_empty() && modules.is_empty() {
            continue;
        }
        let _ = writeln!(out, "### `{}`\n", home.path());
        if !modules.is_empty() {
            out.push_str("Modules: ");
            let list: Vec<String> = modules
                .iter()
                .map(|m| {
                    let specs = if m.specs.is_empty() {
                        String::new()
                    } else {
                        format!(" ({})", m.specs.join(", "))
                    };
                    let state = if m.refused.is_some() {
                        ", refused"
                    } else if !m.available {
                        ", not available"
                    } else {
                        ""
                    };
                    format!("`{}`{specs}{state}", m.name)
                })
                .collect();
            out.push_str(&list.join("; "));
            out.push_str("\n\n");
        }
        if keys.is_empty() {
            continue;
        }
        out.push_str("| Key | Type | Default | RFC/XEP | Description |\n");
        out.push_str("|---|---|---|---|---|\n");
        for k in keys {
            let default = if k.default.is_empty() {
                "(unset)".to_owned()
            } else {
                format!("`{}`", k.default)
            };
            let doc = if k.available {
                k.doc.to_owned()
            } else {
                format!("*Not available in this version.* {}", k.doc)
            };
            let _ = writeln!(
                out,
                "| `{}` | {} | {} | {} | {} |",
                k.name,
                cell(&k.ty.name()),
                cell(&default),
                cell(&k.specs.join(", ")),
                cell(&doc)
            );
        }
        out.push('\n');
    }
    out.push_str("## Domain files (`domains/*.toml`)\n\n");
    out.push_str("| Key | Type | Description |\n|---|---|---|\n");
    out.push_str("| `domain` | domain | The virtual host (required). |\n");
    out.push_str("| `certificate` | path | Its PEM certificate chain (relative to the configuration root). |\n");
    out.push_str("| `key` | path | Its PEM private key. |\n");
    out.push_str("| `modules_enabled` | array of modules | Modules enabled for this domain on top of the stack's. |\n");
    out.push_str("| `modules_disabled` | array of modules | Modules of the stack disabled for this domain. |\n\n");
    out.push_str("## External components (`[[component]]`)\n\n");
    out.push_str("Each external component (XEP-0114) is one `[[component]]` table in\n");
    out.push_str("`stack/07-interfaces/components.toml` (`[[interfaces.component]]` in a\n");
    out.push_str("single file). The listener (`interfaces.component_bind`,\n");
    out.push_str("`interfaces.component_port`) is opened only when there is one and the\n");
    out.push_str("`component` module is enabled.\n\n");
    out.push_str("| Key | Type | Description |\n|---|---|---|\n");
    out.push_str("| `jid` | domain | The component's name, e.g. `push.example.org`; it serves every address of that domain (required). |\n");
    out.push_str("| `secret` | string | The shared secret of the handshake. |\n");
    out.push_str("| `secret_env` | string | Instead of `secret`: the environment variable holding it, read at start. |\n\n");
    out.push_str("## Environment variables\n\n| Variable | Key |\n|---|---|\n");
    out.push_str("| `VIREO_CONFIG_PATH` | the configuration file or tree (like `--config`) |\n");
    for (var, key) in VARIABLES {
        let _ = writeln!(out, "| `{var}` | `{key}` |");
    }
    out
}
