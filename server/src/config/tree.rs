//! Finding and reading the configuration: nothing (built-in defaults), one
//! TOML file, or a directory tree, in the documented order: stack layers,
//! domains, the environment, policies, environment variables.

use super::diagnostics::{did_you_mean, Diagnostic};
use super::merge::{Overlay, State};
use super::schema::{Value, ENVIRONMENTS};
use super::{env as envvars, environments, EnvFn, Origin};
use crate::modules::Layer;
use std::path::{Path, PathBuf};

/// What the configuration is on disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// No file: built-in defaults and environment variables.
    Defaults,
    /// One TOML file.
    File(PathBuf),
    /// A directory tree (the directory holding `vireo.toml` and `stack/`).
    Tree(PathBuf),
}

impl Source {
    /// Classify a path: a directory is a tree; `vireo.toml` next to a
    /// `stack/` directory stands for its tree; anything else is one file.
    pub fn resolve(path: Option<&Path>) -> Source {
        let Some(path) = path else {
            return Source::Defaults;
        };
        if path.is_dir() {
            return Source::Tree(path.to_owned());
        }
        let parent = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        if path.file_name().is_some_and(|n| n == "vireo.toml") && parent.join("stack").is_dir() {
            return Source::Tree(parent.to_owned());
        }
        Source::File(path.to_owned())
    }

    /// The directory relative paths in files are resolved against.
    pub fn root(&self) -> Option<PathBuf> {
        match self {
            Source::Defaults => None,
            Source::File(p) => Some(match p.parent() {
                Some(d) if !d.as_os_str().is_empty() => d.to_owned(),
                _ => PathBuf::from("."),
            }),
            Source::Tree(d) => Some(d.clone()),
        }
    }
}

/// The policy groups under `policies/`.
pub const POLICY_GROUPS: &[&str] = &["security", "performance", "compliance"];

/// What loading produced, besides the values.
#[derive(Debug, Clone, Default)]
pub struct Loaded {
    pub environment: Option<&'static str>,
    /// Policies applied, as "group/name".
    pub policies: Vec<String>,
}

/// Load everything into `state`.
pub fn load(source: &Source, env: EnvFn<'_>, state: &mut State) -> Loaded {
    let mut loaded = Loaded::default();
    match source {
        Source::Defaults => state.default_modules(),
        Source::File(path) => {
            state.default_modules();
            if let Some(f) = state.read(path) {
                state.apply_overlay(&f, Overlay::SingleFile);
            }
            if let Some((_, origin)) = state.values.get("policies") {
                let origin = origin.clone();
                state.error(
                    Diagnostic::warning(
                        origin,
                        "`policies` only apply to a configuration tree; ignored in a single file",
                    )
                    .with_fix("remove it, or move to a tree (`vireo config init DIR`)"),
                );
            }
        }
        Source::Tree(root) => load_stack(root, state),
    }
    // The environment: from the files, or VIREO_ENVIRONMENT.
    let selected = match env("VIREO_ENVIRONMENT").filter(|v| !v.trim().is_empty()) {
        Some(v) => Some((v.trim().to_owned(), Origin::Env("VIREO_ENVIRONMENT"))),
        None => match state.values.get("environment") {
            Some((Value::Str(s), o)) => Some((s.clone(), o.clone())),
            _ => None,
        },
    };
    if let Some((name, origin)) = selected {
        // An unknown name is reported by the schema check of `environment`.
        if let Some(e) = environments::name(&name) {
            loaded.environment = Some(e);
            environments::apply_profile(state, e);
            if let Source::Tree(root) = source {
                let path = root.join("environments").join(format!("{e}.toml"));
                if path.is_file() {
                    if let Some(f) = state.read(&path) {
                        state.apply_overlay(&f, Overlay::Overlay);
                    }
                } else {
                    state.error(
                        Diagnostic::warning(
                            origin,
                            format!("environment {e} selected but {} does not exist (built-in rules only)", path.display()),
                        )
                        .with_fix("create it; `vireo config init DIR` writes every environment file"),
                    );
                }
            }
        }
    }
    if let Source::Tree(root) = source {
        loaded.policies = load_policies(root, state);
    }
    envvars::apply(state, env);
    state.resolve_component_secrets(env);
    if let Some(e) = loaded.environment {
        environments::enforce(state, e);
    }
    loaded
}

fn load_stack(root: &Path, state: &mut State) {
    let orchestration = root.join("vireo.toml");
    if orchestration.is_file() {
        if let Some(f) = state.read(&orchestration) {
            state.apply_orchestration(&f);
        }
    } else {
        state.error(
            Diagnostic::error(
                Origin::file(&orchestration),
                "missing vireo.toml (the orchestration file)",
            )
            .with_fix(format!(
                "`vireo config init {}` writes a complete tree",
                root.display()
            )),
        );
    }
    unexpected_entries(
        state,
        root,
        &[
            "vireo.toml",
            "stack",
            "domains",
            "environments",
            "policies",
            "certs",
            // `config init` puts the data directory inside the tree.
            "data",
        ],
        Check::Root,
    );
    let stack = root.join("stack");
    let dirs: Vec<&str> = Layer::ALL.iter().map(|l| l.dir()).collect();
    unexpected_entries(state, &stack, &dirs, Check::Dirs);
    for layer in Layer::ALL {
        let dir = stack.join(layer.dir());
        let files: Vec<String> = layer.files().iter().map(|f| format!("{f}.toml")).collect();
        let names: Vec<&str> = files.iter().map(String::as_str).collect();
        unexpected_entries(state, &dir, &names, Check::Files);
        for file in layer.files() {
            let path = dir.join(format!("{file}.toml"));
            if path.is_file() {
                if let Some(f) = state.read(&path) {
                    state.apply_layer(&f, layer, file);
                }
            } else {
                state.default_layer(layer, file, &path);
            }
        }
    }
    for path in toml_files(&root.join("domains")) {
        if let Some(f) = state.read(&path) {
            state.apply_domain(&f);
        }
    }
    let envs: Vec<String> = ENVIRONMENTS.iter().map(|e| format!("{e}.toml")).collect();
    let envs: Vec<&str> = envs.iter().map(String::as_str).collect();
    unexpected_entries(state, &root.join("environments"), &envs, Check::Files);
}

fn load_policies(root: &Path, state: &mut State) -> Vec<String> {
    let dir = root.join("policies");
    unexpected_entries(state, &dir, POLICY_GROUPS, Check::Dirs);
    let chosen: Option<(Vec<String>, Origin)> = match state.values.get("policies") {
        Some((Value::List(l), o)) => Some((l.clone(), o.clone())),
        _ => None,
    };
    let mut applied = Vec::new();
    match chosen {
        Some((list, origin)) => {
            for name in list {
                let (group, file) = name.split_once('/').unwrap_or(("", name.as_str()));
                let path = dir.join(group).join(format!("{file}.toml"));
                if !POLICY_GROUPS.contains(&group) || !path.is_file() {
                    state.error(
                        Diagnostic::error(origin.clone(), format!("policy {name:?} not found ({})", path.display()))
                            .with_fix(format!(
                                "name policies as \"group/name\" for policies/<group>/<name>.toml; groups: {}",
                                POLICY_GROUPS.join(", ")
                            )),
                    );
                    continue;
                }
                if let Some(f) = state.read(&path) {
                    state.apply_overlay(&f, Overlay::Overlay);
                    applied.push(name.clone());
                }
            }
        }
        None => {
            for group in POLICY_GROUPS {
                for path in toml_files(&dir.join(group)) {
                    if let Some(f) = state.read(&path) {
                        state.apply_overlay(&f, Overlay::Overlay);
                        let stem = path
                            .file_stem()
                            .map(|s| s.to_string_lossy().into_owned())
                            .unwrap_or_default();
                        applied.push(format!("{group}/{stem}"));
                    }
                }
            }
        }
    }
    applied
}

/// `*.toml` files of a directory, sorted (none when it does not exist).
fn toml_files(dir: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_file() && p.extension().is_some_and(|x| x == "toml"))
        .collect();
    out.sort();
    out
}

/// Report entries of `dir` that are not `expected`. Only `.toml` files and
/// directories count; other files (READMEs, backups) are left alone.
/// How strictly a directory is checked.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Check {
    /// Only the expected `.toml` files belong here.
    Files,
    /// Only the expected directories belong here.
    Dirs,
    /// The root: other directories (the data directory, backups) are fine
    /// unless their name is a near miss of an expected one.
    Root,
}

fn unexpected_entries(state: &mut State, dir: &Path, expected: &[&str], check: Check) {
    let Ok(read) = std::fs::read_dir(dir) else {
        return;
    };
    let mut names: Vec<(String, PathBuf)> = read
        .flatten()
        .map(|e| (e.file_name().to_string_lossy().into_owned(), e.path()))
        .collect();
    names.sort();
    for (name, path) in names {
        if expected.contains(&name.as_str()) || name.starts_with('.') {
            continue;
        }
        let is_toml = path.is_file() && name.ends_with(".toml");
        if !(is_toml || path.is_dir()) {
            continue;
        }
        let near = did_you_mean(&name, expected.iter().copied());
        if check == Check::Root && path.is_dir() && near.is_none() {
            continue;
        }
        let what = if check == Check::Files {
            "file"
        } else {
            "entry"
        };
        let mut d = Diagnostic::error(
            Origin::file(&path),
            format!("unexpected {what} {name}: it would be ignored"),
        );
        d = match near {
            Some(s) => d.with_fix(format!("did you mean {s}?")),
            None => d.with_fix(format!("expected here: {}", expected.join(", "))),
        };
        state.error(d);
    }
}
