//! The configuration commands, through the built binary: `config init`,
//! `check config` (exit codes, locations), `config show` (origins),
//! environment overlays and variables, the single-file format.

use std::path::Path;
use std::process::{Command, Output};

fn vireo(config: Option<&Path>, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_vireo"));
    for (k, _) in std::env::vars() {
        if k.starts_with("VIREO_") {
            cmd.env_remove(k);
        }
    }
    if let Some(c) = config {
        cmd.arg("--config").arg(c);
    }
    cmd.args(args).envs(env.iter().copied());
    cmd.output().expect("run vireo")
}

/// Standard output with the alignment padding before `#` squashed to two
/// spaces.
fn stdout(o: &Output) -> String {
    let text = String::from_utf8_lossy(&o.stdout);
    let mut out = String::new();
    for line in text.lines() {
        match line.split_once("  #") {
            Some((left, right)) => out.push_str(&format!("{}  #{right}\n", left.trim_end())),
            None => out.push_str(&format!("{line}\n")),
        }
    }
    out
}

fn init(dir: &Path, extra: &[&str]) {
    let mut args = vec!["config", "init"];
    let d = dir.to_str().expect("utf-8 path");
    args.push(d);
    args.extend_from_slice(extra);
    let o = vireo(None, &args, &[]);
    assert!(o.status.success(), "{o:?}");
}

fn line_of(file: &Path, prefix: &str) -> usize {
    std::fs::read_to_string(file)
        .expect("read")
        .lines()
        .position(|l| l.starts_with(prefix))
        .map(|i| i + 1)
        .expect("line")
}

#[test]
fn init_then_check_is_clean() {
    let t = tempfile::tempdir().expect("tempdir");
    let dir = t.path().join("conf");
    init(
        &dir,
        &["--domain", "example.org", "--environment", "production"],
    );
    let o = vireo(Some(&dir), &["check", "config"], &[]);
    assert_eq!(o.status.code(), Some(0), "{o:?}");
    assert_eq!(
        stdout(&o),
        format!("configuration OK: {} (tree)\n", dir.display())
    );
    // A second init refuses to overwrite.
    let o = vireo(None, &["config", "init", dir.to_str().expect("utf-8")], &[]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("--force"),
        "{o:?}"
    );
}

#[test]
fn check_reports_errors_with_location_and_exit_1() {
    let t = tempfile::tempdir().expect("tempdir");
    let dir = t.path().join("conf");
    init(&dir, &["--domain", "example.org"]);
    let ports = dir.join("stack/01-transport/ports.toml");
    let text = std::fs::read_to_string(&ports).expect("read");
    std::fs::write(&ports, text.replace("c2s_port = 5222", "c2s_prot = 5222")).expect("write");
    let n = line_of(&ports, "c2s_prot");
    let o = vireo(Some(&dir), &["check", "config"], &[]);
    assert_eq!(o.status.code(), Some(1), "{o:?}");
    let out = stdout(&o);
    assert!(
        out.contains(&format!(
            "{}:{n}: error: unknown key `c2s_prot` in stack/01-transport/ports.toml\n    fix: did you mean `c2s_port`?\n",
            ports.display()
        )),
        "{out}"
    );
    assert!(
        out.ends_with(&format!(
            "configuration has 1 error and 0 warnings: {} (tree)\n",
            dir.display()
        )),
        "{out}"
    );
    // `run` refuses to start with the same message.
    let o = vireo(Some(&dir), &["run"], &[]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("c2s_prot"),
        "{o:?}"
    );
}

#[test]
fn warnings_alone_exit_0_and_are_printed() {
    let t = tempfile::tempdir().expect("tempdir");
    let dir = t.path().join("conf");
    init(&dir, &["--domain", "example.org"]);
    std::fs::remove_file(dir.join("stack/08-integration/apis.toml")).expect("rm");
    let o = vireo(Some(&dir), &["check", "config"], &[]);
    assert_eq!(o.status.code(), Some(0), "{o:?}");
    let out = stdout(&o);
    assert!(
        out.contains("apis.toml: warning: missing layer file"),
        "{out}"
    );
    assert!(out.contains("configuration OK with 1 warning"), "{out}");
}

#[test]
fn show_names_origins_of_files_overlays_and_variables() {
    let t = tempfile::tempdir().expect("tempdir");
    let dir = t.path().join("conf");
    init(
        &dir,
        &["--domain", "example.org", "--environment", "development"],
    );
    let ports = dir.join("stack/01-transport/ports.toml");
    let o = vireo(Some(&dir), &["config", "show", "transport.c2s_port"], &[]);
    assert!(o.status.success(), "{o:?}");
    assert_eq!(
        stdout(&o),
        format!(
            "transport.c2s_port = 5222  # {}:{}\n",
            ports.display(),
            line_of(&ports, "c2s_port =")
        )
    );
    // The development overlay sets the log level and the bind address.
    let devel = dir.join("environments/development.toml");
    let o = vireo(Some(&dir), &["config", "show", "log_level"], &[]);
    assert_eq!(
        stdout(&o),
        format!(
            "log_level = \"debug\"  # {}:{}\n",
            devel.display(),
            line_of(&devel, "log_level")
        )
    );
    // A variable beats both.
    let o = vireo(
        Some(&dir),
        &["config", "show", "transport"],
        &[("VIREO_C2S_PORT", "15222"), ("VIREO_LOG", "warn")],
    );
    let out = stdout(&o);
    assert!(
        out.contains("transport.c2s_port = 15222  # environment variable VIREO_C2S_PORT\n"),
        "{out}"
    );
    assert!(
        out.contains(&format!(
            "transport.bind = \"127.0.0.1\"  # {}:",
            devel.display()
        )),
        "{out}"
    );
    // A domain's view.
    let o = vireo(
        Some(&dir),
        &["config", "show", "certificate", "--domain", "example.org"],
        &[],
    );
    let domain_file = dir.join("domains/example.org.toml");
    assert!(
        stdout(&o).ends_with(&format!(
            "  # {}:{}\n",
            domain_file.display(),
            line_of(&domain_file, "certificate =")
        )),
        "{o:?}"
    );
    // Unknown keys get a suggestion.
    let o = vireo(Some(&dir), &["config", "show", "transport.c2s_prot"], &[]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("did you mean transport.c2s_port?"),
        "{o:?}"
    );
}

#[test]
fn single_file_still_works() {
    let t = tempfile::tempdir().expect("tempdir");
    let file = t.path().join("vireo.toml");
    std::fs::write(
        &file,
        "domain = \"example.org\"\n[transport]\nc2s_port = 15222\n[stream]\nrequire_encryption = true\n",
    )
    .expect("write");
    let o = vireo(Some(&file), &["config", "show", "transport.c2s_port"], &[]);
    assert_eq!(
        stdout(&o),
        format!("transport.c2s_port = 15222  # {}:3\n", file.display())
    );
    let o = vireo(Some(&file), &["check", "config"], &[]);
    // The domain has no certificate: a warning, not an error.
    assert_eq!(o.status.code(), Some(0), "{o:?}");
    assert!(
        stdout(&o).contains("warning: domain example.org has no certificate"),
        "{o:?}"
    );
}
