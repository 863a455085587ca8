//! Where an effective configuration value came from, so errors and
//! `vireo config show` can point at the file and line or the variable.

use std::fmt;
use std::path::PathBuf;

/// The source of one effective value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// Built-in default.
    Default,
    /// A configuration file, at a 1-based line.
    File { path: PathBuf, line: usize },
    /// An environment variable.
    Env(&'static str),
    /// Imposed by the selected environment's rules (e.g. production requires
    /// encryption), overriding whatever the files said.
    Forced(&'static str),
    /// The built-in part of an environment (applies even without its file).
    Profile(&'static str),
}

impl Origin {
    /// A whole file rather than one of its lines.
    pub fn file(path: impl Into<PathBuf>) -> Origin {
        Origin::File {
            path: path.into(),
            line: 0,
        }
    }
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::Default => f.write_str("default"),
            Origin::File { path, line: 0 } => write!(f, "{}", path.display()),
            Origin::File { path, line } => write!(f, "{}:{line}", path.display()),
            Origin::Env(var) => write!(f, "environment variable {var}"),
            Origin::Forced(why) => write!(f, "forced: {why}"),
            Origin::Profile(env) => write!(f, "built-in {env} environment"),
        }
    }
}

/// 1-based line of a byte offset in `text`.
pub fn line_of(text: &str, offset: usize) -> usize {
    text.as_bytes()
        .iter()
        .take(offset)
        .filter(|b| **b == b'\n')
        .count()
        + 1
}
