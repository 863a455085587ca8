//! Applying one parsed file to the effective state: every value checked
//! against the schema and recorded with its origin; modules checked against
//! the catalog.

use super::diagnostics::{did_you_mean, Diagnostic};
use super::node::{self, Node};
use super::origin::line_of;
use super::schema::{self, Home, KeySpec, Value, KEYS};
use super::Origin;
use crate::modules::{self, Layer, CATALOG};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use toml::Spanned;

/// `[[interfaces.component]]` in a single file.
const COMPONENTS_KEY: &str = "interfaces.component";
/// The file declaring `[[component]]` entries in a tree.
const COMPONENTS_HOME: Home = Home::Layer(Layer::Interfaces, "components");

/// One virtual host from `domains/*.toml`.
#[derive(Debug, Clone)]
pub struct DomainFile {
    pub domain: String,
    pub origin: Origin,
    pub certificate: Option<(String, Origin)>,
    pub key: Option<(String, Origin)>,
    pub enabled: Vec<(&'static str, Origin)>,
    pub disabled: Vec<(&'static str, Origin)>,
}

/// The effective state while loading.
#[derive(Debug, Default)]
pub struct State {
    /// Explicitly set values (defaults come from the schema).
    pub values: BTreeMap<&'static str, (Value, Origin)>,
    /// Enabled modules, with where each was enabled.
    pub modules: BTreeMap<&'static str, Origin>,
    pub domains: Vec<DomainFile>,
    /// External components (XEP-0114), in file order.
    pub components: Vec<super::components::ComponentEntry>,
    pub diagnostics: Vec<Diagnostic>,
}

/// Which keys a file may hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Overlay {
    /// A single-file configuration: everything, sections by dotted name,
    /// and an optional top-level `modules` list.
    SingleFile,
    /// `environments/*.toml` and `policies/*/*.toml`: every key except the
    /// orchestration choices `environment` and `policies`.
    Overlay,
}

/// A file read and parsed, with its text kept for line numbers.
pub struct Parsed {
    pub path: PathBuf,
    pub text: String,
    pub entries: node::Entries,
}

impl Parsed {
    pub fn origin(&self, offset: usize) -> Origin {
        Origin::File {
            path: self.path.clone(),
            line: line_of(&self.text, offset),
        }
    }
}

impl State {
    pub fn error(&mut self, d: Diagnostic) {
        self.diagnostics.push(d);
    }

    /// Read and parse a file; problems become diagnostics.
    pub fn read(&mut self, path: &Path) -> Option<Parsed> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) => {
                self.error(
                    Diagnostic::error(Origin::file(path), format!("cannot read: {e}"))
                        .with_fix("check the path and its permissions"),
                );
                return None;
            }
        };
        match node::parse(&text) {
            Ok(entries) => Some(Parsed {
                path: path.to_owned(),
                text,
                entries,
            }),
            Err((message, offset)) => {
                let origin = match offset {
                    Some(o) => Origin::File {
                        path: path.to_owned(),
                        line: line_of(&text, o),
                    },
                    None => Origin::file(path),
                };
                self.error(
                    Diagnostic::error(origin, format!("TOML syntax: {message}"))
                        .with_fix("see https://toml.io for the syntax"),
                );
                None
            }
        }
    }

    /// Record a value for `spec`, checking availability and type.
    pub fn set(&mut self, spec: &'static KeySpec, node: &Node, origin: Origin) {
        if !spec.available {
            self.error(not_available(spec, origin));
            return;
        }
        match spec.ty.convert(node) {
            Ok(v) => self.store(spec, v, origin),
            Err(msg) => {
                let d = Diagnostic::error(origin, format!("{}: {msg}", spec.name));
                self.error(type_fix(spec, d));
            }
        }
    }

    /// Record an already converted value (`domain` is stored as `domains`).
    pub fn store(&mut self, spec: &'static KeySpec, v: Value, origin: Origin) {
        match (spec.name, v) {
            ("domain", Value::Str(d)) => {
                self.values
                    .insert("domains", (Value::List(vec![d]), origin));
            }
            (name, v) => {
                self.values.insert(name, (v, origin));
            }
        }
    }

    /// A single file, an environment or a policy: keys by dotted name.
    pub fn apply_overlay(&mut self, file: &Parsed, kind: Overlay) {
        for (key, value) in &file.entries {
            let origin = file.origin(key.span().start);
            let name = key.get_ref().as_str();
            if name == "modules" && kind == Overlay::SingleFile {
                self.modules.clear();
                for (m, o) in self.module_list(file, value, None) {
                    self.modules.insert(m, o);
                }
                continue;
            }
            if let Some(spec) = schema::find(name).filter(|s| !s.name.contains('.')) {
                if kind == Overlay::Overlay && matches!(name, "environment" | "policies") {
                    self.error(
                        Diagnostic::error(
                            origin,
                            format!("`{name}` cannot be set in an environment or policy file"),
                        )
                        .with_fix("set it in vireo.toml"),
                    );
                    continue;
                }
                self.set(spec, value.get_ref(), file.origin(value.span().start));
                continue;
            }
            let is_section = KEYS.iter().any(|k| k.name.starts_with(&format!("{name}.")));
            match value.get_ref() {
                Node::Table(entries) if is_section => {
                    for (sub, v) in entries {
                        let full = format!("{name}.{}", sub.get_ref());
                        let o = file.origin(sub.span().start);
                        if full == COMPONENTS_KEY {
                            match kind {
                                Overlay::SingleFile => self.apply_components(file, v),
                                Overlay::Overlay => self.error(
                                    Diagnostic::error(
                                        o,
                                        "components cannot be declared in an environment or policy file",
                                    )
                                    .with_fix("declare them in stack/07-interfaces/components.toml"),
                                ),
                            }
                            continue;
                        }
                        match schema::find(&full) {
                            Some(spec) => self.set(spec, v.get_ref(), o),
                            None => self.unknown_dotted(&full, o),
                        }
                    }
                }
                Node::Table(_) => {
                    // Module sections' keys follow the core keys, so a
                    // section name may come back: keep its first place.
                    let mut sections: Vec<&str> = Vec::new();
                    for (s, _) in KEYS.iter().filter_map(|k| k.name.split_once('.')) {
                        if !sections.contains(&s) {
                            sections.push(s);
                        }
                    }
                    let mut d = Diagnostic::error(origin, format!("unknown section `[{name}]`"));
                    d = match did_you_mean(name, sections.iter().copied()) {
                        Some(s) => d.with_fix(format!("did you mean `[{s}]`?")),
                        None => d.with_fix(format!("sections: {}", sections.join(", "))),
                    };
                    self.error(d);
                }
                _ => self.unknown_dotted(name, origin),
            }
        }
    }

    fn unknown_dotted(&mut self, name: &str, origin: Origin) {
        let local = name.rsplit('.').next().unwrap_or(name);
        let mut d = Diagnostic::error(origin, format!("unknown key `{name}`"));
        if let Some(spec) = schema::find_local_anywhere(local).filter(|s| s.name != name) {
            d = d.with_fix(format!("did you mean `{}`?", spec.name));
        } else if let Some(m) = did_you_mean(name, KEYS.iter().map(|k| k.name)) {
            d = d.with_fix(format!("did you mean `{m}`?"));
        } else {
            d = d.with_fix("see spec/config.md for every key");
        }
        self.error(d);
    }

    /// `vireo.toml` of a tree: orchestration keys only.
    pub fn apply_orchestration(&mut self, file: &Parsed) {
        for (key, value) in &file.entries {
            let origin = file.origin(key.span().start);
            let name = key.get_ref().as_str();
            if let Some(spec) = schema::find_local(Home::Orchestration, name) {
                self.set(spec, value.get_ref(), file.origin(value.span().start));
            } else if name == "modules" {
                self.error(
                    Diagnostic::error(origin, "modules are not declared in vireo.toml").with_fix(
                        "list each module in the `modules` of its layer file (stack/*/*.toml)",
                    ),
                );
            } else if let Some(spec) =
                schema::find(name).or_else(|| schema::find_local_anywhere(name))
            {
                self.error(belongs(spec, name, origin));
            } else if let (Node::Table(entries), true) = (
                value.get_ref(),
                KEYS.iter().any(|k| k.name.starts_with(&format!("{name}."))),
            ) {
                for (sub, _) in entries {
                    let full = format!("{name}.{}", sub.get_ref());
                    let o = file.origin(sub.span().start);
                    match schema::find(&full) {
                        Some(spec) => self.error(belongs(spec, &full, o)),
                        None => self.unknown_dotted(&full, o),
                    }
                }
            } else {
                self.unknown_local(name, Home::Orchestration, origin);
            }
        }
    }

    fn unknown_local(&mut self, name: &str, home: Home, origin: Origin) {
        let here: Vec<&str> = KEYS
            .iter()
            .filter(|k| k.home == home)
            .map(|k| k.local)
            .chain(matches!(home, Home::Layer(..)).then_some("modules"))
            .collect();
        let mut d = Diagnostic::error(origin, format!("unknown key `{name}` in {}", home.path()));
        if let Some(m) = did_you_mean(name, here.iter().copied()) {
            d = d.with_fix(format!("did you mean `{m}`?"));
        } else if let Some(m) = did_you_mean(name, KEYS.iter().map(|k| k.local)) {
            let spec = KEYS.iter().find(|k| k.local == m);
            d = d.with_fix(match spec {
                Some(s) => format!("did you mean `{m}`? (it belongs in {})", s.home.path()),
                None => format!("did you mean `{m}`?"),
            });
        } else if here.is_empty() {
            d = d.with_fix(format!("{} takes no settings in this version", home.path()));
        } else {
            d = d.with_fix(format!("keys of this file: {}", here.join(", ")));
        }
        self.error(d);
    }

    /// `stack/<layer>/<file>.toml`.
    pub fn apply_layer(&mut self, file: &Parsed, layer: Layer, name: &'static str) {
        let home = Home::Layer(layer, name);
        let mut listed = false;
        for (key, value) in &file.entries {
            let origin = file.origin(key.span().start);
            let k = key.get_ref().as_str();
            if k == "modules" {
                listed = true;
                for (m, o) in self.module_list(file, value, Some(home)) {
                    if self.modules.contains_key(m) {
                        self.error(Diagnostic::warning(
                            o,
                            format!("module `{m}` is listed twice"),
                        ));
                    } else {
                        self.modules.insert(m, o);
                    }
                }
            } else if let Some(spec) = schema::find_local(home, k) {
                self.set(spec, value.get_ref(), file.origin(value.span().start));
            } else if k == "component" && home == COMPONENTS_HOME {
                self.apply_components(file, value);
            } else if let Some(spec) = schema::find_local_anywhere(k).or_else(|| schema::find(k)) {
                self.error(belongs(spec, k, origin));
            } else {
                self.unknown_local(k, home, origin);
            }
        }
        if !listed {
            let built: Vec<&str> = CATALOG
                .iter()
                .filter(|m| {
                    m.layer == layer && m.file == name && m.available && m.refused.is_none()
                })
                .map(|m| m.name)
                .collect();
            if !built.is_empty() {
                self.error(
                    Diagnostic::warning(
                        Origin::file(&file.path),
                        format!("no `modules` list: {} not enabled", built.join(", ")),
                    )
                    .with_fix(format!("add `modules = [{}]`", quoted(&built))),
                );
            }
        }
    }

    /// A missing layer file: its built modules are enabled by default.
    pub fn default_layer(&mut self, layer: Layer, name: &'static str, path: &Path) {
        let mut on = Vec::new();
        for m in CATALOG
            .iter()
            .filter(|m| m.layer == layer && m.file == name && m.available && m.refused.is_none())
        {
            self.modules.insert(m.name, Origin::Default);
            on.push(m.name);
        }
        let what = if on.is_empty() {
            String::new()
        } else {
            format!(" (defaults apply: {} enabled)", on.join(", "))
        };
        self.error(
            Diagnostic::warning(Origin::file(path), format!("missing layer file{what}"))
                .with_fix("create it; `vireo config init DIR` writes a complete, commented tree"),
        );
    }

    /// The default module set: everything built that is not refused.
    pub fn default_modules(&mut self) {
        for m in CATALOG
            .iter()
            .filter(|m| m.available && m.refused.is_none())
        {
            self.modules.insert(m.name, Origin::Default);
        }
    }

    /// Check a `modules = [...]` list (belonging to `home` when given).
    pub fn module_list(
        &mut self,
        file: &Parsed,
        value: &Spanned<Node>,
        home: Option<Home>,
    ) -> Vec<(&'static str, Origin)> {
        let Node::Array(items) = value.get_ref() else {
            self.error(Diagnostic::error(
                file.origin(value.span().start),
                format!(
                    "modules: expected an array of module names, found {}",
                    value.get_ref().kind()
                ),
            ));
            return Vec::new();
        };
        let mut out = Vec::new();
        for item in items {
            let origin = file.origin(item.span().start);
            let Node::Str(name) = item.get_ref() else {
                self.error(Diagnostic::error(
                    origin,
                    format!(
                        "modules: expected a module name string, found {}",
                        item.get_ref().kind()
                    ),
                ));
                continue;
            };
            if let Some(m) = self.check_module(name, origin.clone(), home) {
                out.push((m, origin));
            }
        }
        out
    }

    /// Whether a module may be enabled; problems become diagnostics.
    pub fn check_module(
        &mut self,
        name: &str,
        origin: Origin,
        home: Option<Home>,
    ) -> Option<&'static str> {
        let name = match modules::renamed(name) {
            Some(new) => {
                self.error(
                    Diagnostic::warning(
                        origin.clone(),
                        format!("module `{name}` is now called `{new}`"),
                    )
                    .with_fix(format!("write `{new}` in the modules list")),
                );
                new
            }
            None => name,
        };
        let Some(m) = modules::find(name) else {
            let mut d = Diagnostic::error(origin, format!("unknown module `{name}`"));
            d = match did_you_mean(name, CATALOG.iter().map(|m| m.name)) {
                Some(s) => d.with_fix(format!("did you mean `{s}`?")),
                None => d.with_fix("`vireo module list` shows every module"),
            };
            self.error(d);
            return None;
        };
        if let Some(reason) = m.refused {
            self.error(
                Diagnostic::error(origin, format!("module `{name}` is refused: {reason}"))
                    .with_fix(format!("remove `{name}` from the modules list")),
            );
            return None;
        }
        let its_home = Home::Layer(m.layer, m.file);
        if let Some(h) = home.filter(|h| *h != its_home) {
            self.error(
                Diagnostic::error(
                    origin,
                    format!(
                        "module `{name}` belongs in {}, not {}",
                        its_home.path(),
                        h.path()
                    ),
                )
                .with_fix(format!(
                    "move it to the `modules` list of {}",
                    its_home.path()
                )),
            );
            return None;
        }
        if !m.available {
            self.error(
                Diagnostic::error(
                    origin,
                    format!(
                        "module `{name}` ({}) is not available in this version",
                        specs_or(m.specs, m.summary)
                    ),
                )
                .with_fix(format!("remove `{name}` from the modules list")),
            );
            return None;
        }
        Some(m.name)
    }

    /// `domains/*.toml`.
    pub fn apply_domain(&mut self, file: &Parsed) {
        const KEYS_HERE: &[&str] = &[
            "domain",
            "certificate",
            "key",
            "modules_enabled",
            "modules_disabled",
        ];
        let mut d = DomainFile {
            domain: String::new(),
            origin: Origin::file(&file.path),
            certificate: None,
            key: None,
            enabled: Vec::new(),
            disabled: Vec::new(),
        };
        for (key, value) in &file.entries {
            let origin = file.origin(key.span().start);
            let vorigin = file.origin(value.span().start);
            match (key.get_ref().as_str(), value.get_ref()) {
                ("domain", Node::Str(s)) => match schema::Ty::Domain.parse_text(s) {
                    Ok(Value::Str(n)) => {
                        d.domain = n;
                        d.origin = vorigin;
                    }
                    Ok(_) => {}
                    Err(e) => self.error(Diagnostic::error(vorigin, format!("domain: {e}"))),
                },
                ("certificate", Node::Str(s)) => d.certificate = Some((s.clone(), vorigin)),
                ("key", Node::Str(s)) => d.key = Some((s.clone(), vorigin)),
                ("modules_enabled", _) => d.enabled = self.module_list(file, value, None),
                ("modules_disabled", _) => d.disabled = self.module_list(file, value, None),
                (k @ ("domain" | "certificate" | "key"), other) => self.error(Diagnostic::error(
                    vorigin,
                    format!("{k}: expected a string, found {}", other.kind()),
                )),
                (k, _) => {
                    let mut diag =
                        Diagnostic::error(origin, format!("unknown key `{k}` in a domain file"));
                    diag = match did_you_mean(k, KEYS_HERE.iter().copied()) {
                        Some(s) => diag.with_fix(format!("did you mean `{s}`?")),
                        None => diag
                            .with_fix(format!("keys of a domain file: {}", KEYS_HERE.join(", "))),
                    };
                    self.error(diag);
                }
            }
        }
        if d.domain.is_empty() {
            self.error(
                Diagnostic::error(Origin::file(&file.path), "domain file without `domain`")
                    .with_fix("add `domain = \"example.org\"`"),
            );
            return;
        }
        if let Some(prev) = self.domains.iter().find(|o| o.domain == d.domain) {
            let msg = format!(
                "domain {} is already configured at {}",
                d.domain, prev.origin
            );
            self.error(
                Diagnostic::error(d.origin.clone(), msg).with_fix("keep one file per domain"),
            );
            return;
        }
        self.domains.push(d);
    }
}

fn quoted(items: &[&str]) -> String {
    items
        .iter()
        .map(|s| format!("{s:?}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn specs_or(specs: &[&str], summary: &str) -> String {
    if specs.is_empty() {
        summary.to_owned()
    } else {
        specs.join(", ")
    }
}

/// "not available in this version" for a key.
pub fn not_available(spec: &KeySpec, origin: Origin) -> Diagnostic {
    let what = if spec.specs.is_empty() {
        String::new()
    } else {
        format!(" ({})", spec.specs.join(", "))
    };
    Diagnostic::error(
        origin,
        format!("`{}`{what} is not available in this version", spec.name),
    )
    .with_fix("remove it; the feature is not built yet (spec/config.md lists what is)")
}

/// A key in the wrong file.
fn belongs(spec: &KeySpec, written: &str, origin: Origin) -> Diagnostic {
    Diagnostic::error(
        origin,
        format!("`{written}` belongs in {}", spec.home.path()),
    )
    .with_fix(format!(
        "move it to {} as `{}`",
        spec.home.path(),
        spec.local
    ))
}

fn type_fix(spec: &KeySpec, d: Diagnostic) -> Diagnostic {
    match (spec.name, spec.default) {
        ("storage.driver", _) => d.with_fix(
            "the stores are \"redb\" (embedded, the default), \"sled\" (its predecessor) and \"postgresql\"",
        ),
        (_, "") => d.with_fix(format!("expected {}", spec.ty.describe())),
        (_, def) => d.with_fix(format!("expected {} (default: {def})", spec.ty.describe())),
    }
}
