//! The crate's modules form layers, never a circle: a module uses only
//! modules of its own layer or of earlier ones, so each can be read, tested
//! and changed knowing what it depends on (issue 10). This test reads the
//! sources, collects every `crate::X` path (in `use` items and inline), and
//! fails on a cycle or on a path to a later layer. The layers are the
//! groups of `mod` items in lib.rs, each under a `// ` comment line.
//!
//! Test modules (`#[cfg(test)] mod tests { .. }`) are left out: they may
//! start a whole server, and nothing depends on them. Comments are left out
//! too (doc links name modules without using them). Files under a directory
//! (`storage/`, `tls/`) count as their top module; a top module's paths to
//! itself are not edges.
//!
//! `cargo test -p xmpp-runtime layering -- --nocapture` prints the edges.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

type Graph = BTreeMap<String, BTreeSet<String>>;

fn src_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            rust_files(&path, out)?;
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
    Ok(())
}

/// The code of a file without comments and without its test module.
fn code(text: &str) -> String {
    let mut out = String::new();
    let mut lines = text.lines().peekable();
    // Open braces of the test module being skipped.
    let mut skipping: Option<usize> = None;
    while let Some(line) = lines.next() {
        let trimmed = line.trim_start();
        if let Some(depth) = skipping {
            let opened = line.matches('{').count();
            let closed = line.matches('}').count();
            skipping = (depth + opened)
                .checked_sub(closed)
                .filter(|open| *open > 0);
            continue;
        }
        if trimmed == "#[cfg(test)]"
            && lines
                .peek()
                .is_some_and(|next| next.trim_start().starts_with("mod tests {"))
        {
            skipping = Some(0);
            continue;
        }
        if trimmed.starts_with("//") {
            continue;
        }
        out.push_str(line);
        out.push('\n');
    }
    out
}

fn ident(s: &str) -> &str {
    let end = s
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(s.len());
    &s[..end]
}

/// The first segment of every `crate::` path in `code`, including each
/// branch of a `crate::{a, b::c}` group.
fn crate_paths(code: &str) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    for (at, _) in code.match_indices("crate::") {
        // `$crate::` and `other_crate::` are not this crate's paths.
        let before = code[..at].chars().next_back();
        if before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_' || c == '$') {
            continue;
        }
        let rest = &code[at + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let mut depth = 0usize;
            let mut start = true;
            for (i, c) in group.char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => break,
                    '}' => depth -= 1,
                    ',' if depth == 0 => {
                        start = true;
                        continue;
                    }
                    _ => {}
                }
                if start && (c.is_ascii_alphanumeric() || c == '_') {
                    found.insert(ident(&group[i..]).to_owned());
                    start = false;
                }
            }
        } else {
            let name = ident(rest);
            if !name.is_empty() {
                found.insert(name.to_owned());
            }
        }
    }
    found
}

/// What lib.rs declares: each module with its layer (the number of
/// `// ` comment lines before it), and each re-exported item with the module
/// it comes from (`crate::start` is `crate::server::start`).
#[derive(Debug, Default)]
struct Root {
    layers: BTreeMap<String, usize>,
    reexports: BTreeMap<String, String>,
}

fn root(lib: &str) -> Root {
    let mut root = Root::default();
    let mut layer = 0;
    for line in lib.lines() {
        let line = line.trim();
        if line.starts_with("//") && !line.starts_with("///") && !line.starts_with("//!") {
            layer += 1;
            continue;
        }
        let line = line.strip_prefix("pub ").unwrap_or(line);
        if let Some(name) = line.strip_prefix("mod ") {
            root.layers.insert(ident(name).to_owned(), layer);
        } else if let Some(path) = line.strip_prefix("use ") {
            let (module, items) = path.split_once("::").unwrap_or((path, ""));
            let items = items.trim_end_matches(';');
            let items = items.trim_start_matches('{').trim_end_matches('}');
            for item in items.split(',') {
                let item = item.trim();
                let name = item.rsplit("::").next().unwrap_or(item);
                if !name.is_empty() {
                    root.reexports
                        .insert(ident(name).to_owned(), module.to_owned());
                }
            }
        }
    }
    root
}

/// lib.rs, and which module's `crate::` paths lead to which modules.
fn graph() -> (Root, Graph) {
    let src = src_dir();
    let lib = std::fs::read_to_string(src.join("lib.rs")).unwrap_or_default();
    let root = root(&lib);
    assert!(
        !root.layers.is_empty(),
        "no modules found in {}",
        src.display()
    );
    let mut files = Vec::new();
    rust_files(&src, &mut files).unwrap_or_else(|e| panic!("reading {}: {e}", src.display()));
    let mut graph = Graph::new();
    for file in files {
        let rel = file.strip_prefix(&src).unwrap_or(&file);
        let top = rel
            .components()
            .next()
            .and_then(|c| c.as_os_str().to_str())
            .map(|s| s.trim_end_matches(".rs").to_owned())
            .unwrap_or_default();
        if top == "lib" || top == "layering" {
            continue;
        }
        let text = std::fs::read_to_string(&file).unwrap_or_default();
        let edges = graph.entry(top.clone()).or_default();
        for name in crate_paths(&code(&text)) {
            let target = if root.layers.contains_key(&name) {
                name
            } else if let Some(module) = root.reexports.get(&name) {
                module.clone()
            } else {
                panic!(
                    "{}: crate::{name} is neither a module nor a re-export",
                    rel.display()
                );
            };
            if target != top {
                edges.insert(target);
            }
        }
    }
    (root, graph)
}

/// A cycle of `graph`, if it has one.
fn find_cycle(graph: &Graph) -> Option<Vec<String>> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        Open,
        Done,
    }
    fn visit(
        node: &str,
        graph: &Graph,
        marks: &mut BTreeMap<String, Mark>,
        path: &mut Vec<String>,
    ) -> Option<Vec<String>> {
        match marks.get(node) {
            Some(Mark::Done) => return None,
            Some(Mark::Open) => {
                let from = path.iter().position(|n| n == node).unwrap_or(0);
                let mut cycle = path[from..].to_vec();
                cycle.push(node.to_owned());
                return Some(cycle);
            }
            None => {}
        }
        marks.insert(node.to_owned(), Mark::Open);
        path.push(node.to_owned());
        for next in graph.get(node).into_iter().flatten() {
            if let Some(cycle) = visit(next, graph, marks, path) {
                return Some(cycle);
            }
        }
        path.pop();
        marks.insert(node.to_owned(), Mark::Done);
        None
    }
    let mut marks = BTreeMap::new();
    graph
        .keys()
        .find_map(|node| visit(node, graph, &mut marks, &mut Vec::new()))
}

#[test]
fn modules_form_layers_without_a_cycle() {
    let (root, graph) = graph();
    let layer = |m: &str| root.layers.get(m).copied().unwrap_or(0);
    let mut upward = Vec::new();
    for (module, uses) in &graph {
        let names: Vec<&str> = uses.iter().map(String::as_str).collect();
        println!("{module} -> {}", names.join(" "));
        upward.extend(
            uses.iter()
                .filter(|used| layer(used) > layer(module))
                .map(|used| format!("{module} -> {used}")),
        );
    }
    if let Some(cycle) = find_cycle(&graph) {
        panic!("import cycle: {}", cycle.join(" -> "));
    }
    assert!(upward.is_empty(), "uses of a later layer: {upward:?}");
}

#[test]
fn the_check_sees_groups_reexports_and_cycles() {
    let paths = crate_paths(
        "use crate::{a::{B, c}, d};\nlet x = crate::e::f();\npub(crate) fn g() {}\nmy_crate::h();",
    );
    let paths: Vec<&str> = paths.iter().map(String::as_str).collect();
    assert_eq!(paths, ["a", "d", "e"]);
    let root = root("//! doc\nmod a;\n// Later.\npub mod b;\npub use b::{C, D};\npub use a::E;");
    assert_eq!(root.layers.get("a"), Some(&0));
    assert_eq!(root.layers.get("b"), Some(&1));
    assert_eq!(root.reexports.get("D").map(String::as_str), Some("b"));
    assert_eq!(root.reexports.get("E").map(String::as_str), Some("a"));
    let edge = |a: &str, b: &str| (a.to_owned(), BTreeSet::from([b.to_owned()]));
    let circle = Graph::from([edge("x", "y"), edge("y", "z"), edge("z", "x")]);
    assert!(find_cycle(&circle).is_some());
    let line = Graph::from([edge("x", "y"), edge("y", "z")]);
    assert_eq!(find_cycle(&line), None);
    assert!(
        !code("/// crate::x\nfn f() {}\n#[cfg(test)]\nmod tests {\n crate::y\n}")
            .contains("crate::")
    );
}
