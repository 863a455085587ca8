//! TOML text into the configuration loader (`vireo::config`): the text is
//! written to a single configuration file and loaded as `vireo check
//! config` and `vireo run` load it, with no environment variables.
//!
//! The properties: nothing panics; the outcome is a configuration or
//! diagnostics, and `Config::load` fails exactly when `Config::check` reports
//! an error; a configuration that passes renders (`vireo config show`) and
//! becomes a runtime configuration (what `vireo run` starts) without
//! panicking.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use vireo::config::{schema, Config};

/// One file per process (fork mode runs several), in a directory of its
/// own so relative paths in the text resolve inside it; removed after each
/// input.
fn path() -> &'static PathBuf {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| {
        let dir = std::env::temp_dir().join("vireo-fuzz-config");
        let _ = std::fs::create_dir_all(&dir);
        dir.join(format!("{}.toml", std::process::id()))
    })
}

/// Run one input.
pub fn run(data: &[u8]) {
    let path = path();
    if std::fs::write(path, data).is_err() {
        return;
    }
    check(path);
    let _ = std::fs::remove_file(path);
}

fn check(path: &Path) {
    let env = |_: &str| None;
    let report = Config::check(Some(path), &env);
    let errors: Vec<String> = report.errors().map(ToString::to_string).collect();
    for d in report.warnings() {
        let _ = d.to_string();
    }
    let loaded = Config::load(Some(path), &env);
    assert_eq!(
        loaded.is_err(),
        !errors.is_empty() || report.config.is_none(),
        "check and load disagree: {errors:?}"
    );
    let Ok(cfg) = loaded else {
        return;
    };
    for key in schema::KEYS.iter() {
        let _ = cfg.value(key.name);
        let _ = cfg.origin(key.name);
    }
    let shown = vireo::commands::config_show::render(&cfg, None, None);
    assert!(
        shown.is_ok(),
        "a loaded configuration does not render: {shown:?}"
    );
    let _ = vireo::commands::run::runtime_config(&cfg, None);
}
