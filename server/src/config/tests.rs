use super::*;
use std::collections::HashMap;

fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
    let m: HashMap<String, String> = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    move |k| m.get(k).cloned()
}

fn write(text: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = dir.path().join("vireo.toml");
    std::fs::write(&p, text).expect("write");
    (dir, p)
}

#[test]
fn defaults_without_file_serve_localhost() {
    let cfg = Config::load(None, &env_of(&[])).expect("load");
    assert_eq!(cfg.domains, vec!["localhost"]);
    assert_eq!(cfg.c2s_port, 5222);
    assert_eq!(cfg.c2s_tls_port, 5223);
    assert!(cfg.require_encryption);
    assert_eq!(cfg.origin("domains"), Origin::Default);
}

#[test]
fn file_values_remember_their_line() {
    let (_d, p) = write("domain = \"example.org\"\n\n[transport]\nc2s_port = 15222\n");
    let cfg = Config::load(Some(&p), &env_of(&[])).expect("load");
    assert_eq!(cfg.domains, vec!["example.org"]);
    assert_eq!(cfg.c2s_port, 15222);
    assert_eq!(
        cfg.origin("transport.c2s_port"),
        Origin::File {
            path: p.clone(),
            line: 4
        }
    );
}

#[test]
fn environment_overrides_file() {
    let (_d, p) = write("domain = \"example.org\"\n[transport]\nc2s_port = 15222\n");
    let env = env_of(&[
        ("VIREO_C2S_PORT", "25222"),
        ("VIREO_DOMAIN", "Chat.Example.COM"),
    ]);
    let cfg = Config::load(Some(&p), &env).expect("load");
    assert_eq!(cfg.c2s_port, 25222);
    assert_eq!(cfg.domains, vec!["chat.example.com"]);
    assert_eq!(
        cfg.origin("transport.c2s_port"),
        Origin::Env("VIREO_C2S_PORT")
    );
}

#[test]
fn unknown_key_names_file_and_line() {
    let (_d, p) = write("domain = \"x.org\"\n[stream]\nrequire_encrypton = true\n");
    let err = Config::load(Some(&p), &env_of(&[])).expect_err("must fail");
    let msg = err.to_string();
    assert!(msg.contains("vireo.toml"), "{msg}");
    assert!(msg.contains("vireo.toml:3"), "{msg}");
    assert!(msg.contains("require_encrypton"), "{msg}");
}

#[test]
fn bad_values_name_their_origin() {
    let (_d, p) = write("[stream]\nscram_iterations = 100\n");
    let err = Config::load(Some(&p), &env_of(&[])).expect_err("must fail");
    assert!(err.to_string().contains("vireo.toml:2"), "{err}");
    let err = Config::load(None, &env_of(&[("VIREO_C2S_PORT", "http")])).expect_err("fail");
    assert!(err.to_string().contains("VIREO_C2S_PORT"), "{err}");
    let err = Config::load(None, &env_of(&[("VIREO_DOMAIN", "a b")])).expect_err("fail");
    assert!(err.to_string().contains("not a valid domain"), "{err}");
}

/// Static s2s routes: a table in a file, comma-separated items in
/// VIREO_S2S_OVERRIDES; a bad target names its origin and the form.
#[test]
fn s2s_routes_from_file_and_environment() {
    let (_d, p) = write("[transport]\ns2s_routes = { \"b.example\" = \"10.0.0.5:5269\" }\n");
    let cfg = Config::load(Some(&p), &env_of(&[])).expect("load");
    assert_eq!(
        cfg.list("transport.s2s_routes"),
        vec!["b.example=10.0.0.5:5269"]
    );
    let env = env_of(&[(
        "VIREO_S2S_OVERRIDES",
        "b.localhost=127.0.0.1:35289, c.localhost=127.0.0.1:35290",
    )]);
    let cfg = Config::load(Some(&p), &env).expect("load");
    assert_eq!(
        cfg.list("transport.s2s_routes"),
        vec!["b.localhost=127.0.0.1:35289", "c.localhost=127.0.0.1:35290"]
    );
    let err = Config::load(
        None,
        &env_of(&[("VIREO_S2S_OVERRIDES", "c.example=nonsense")]),
    )
    .expect_err("fail");
    let msg = err.to_string();
    assert!(
        msg.contains("VIREO_S2S_OVERRIDES") && msg.contains("has no :PORT"),
        "{msg}"
    );
    assert!(msg.contains("comma-separated domain=host:port"), "{msg}");
    let (_d, p) = write("[transport]\ns2s_routes = { \"c.example\" = 5 }\n");
    let err = Config::load(Some(&p), &env_of(&[])).expect_err("fail");
    assert!(err.to_string().contains("vireo.toml:2"), "{err}");
}

#[test]
fn plaintext_switch_from_environment() {
    let env = env_of(&[("VIREO_C2S_REQUIRE_ENCRYPTION", "false")]);
    let cfg = Config::load(None, &env).expect("load");
    assert!(!cfg.require_encryption);
}

// ---- the layered tree ----

use crate::modules::Layer;

/// A fresh tree from `vireo config init`.
fn init(env: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    crate::commands::config_init::run(dir.path(), Some("example.org"), Some(env), false)
        .expect("init");
    dir
}

fn path(dir: &tempfile::TempDir, rel: &str) -> PathBuf {
    dir.path().join(rel)
}

fn append(dir: &tempfile::TempDir, rel: &str, text: &str) {
    let p = path(dir, rel);
    let mut old = std::fs::read_to_string(&p).unwrap_or_default();
    old.push_str(text);
    std::fs::write(&p, old).expect("write");
}

fn replace(dir: &tempfile::TempDir, rel: &str, from: &str, to: &str) {
    let p = path(dir, rel);
    let old = std::fs::read_to_string(&p).expect("read");
    assert!(old.contains(from), "{rel} has {from:?}");
    std::fs::write(&p, old.replacen(from, to, 1)).expect("write");
}

/// Line (1-based) of the first line of a file starting with `needle`.
fn line(dir: &tempfile::TempDir, rel: &str, needle: &str) -> usize {
    let text = std::fs::read_to_string(path(dir, rel)).expect("read");
    text.lines()
        .position(|l| l.starts_with(needle))
        .map(|i| i + 1)
        .unwrap_or_else(|| panic!("{rel} has no {needle:?}"))
}

/// Every diagnostic, paths relative to the tree.
fn diagnostics(dir: &tempfile::TempDir, env: &[(&str, &str)]) -> Vec<String> {
    let report = Config::check(Some(dir.path()), &env_of(env));
    let prefix = format!("{}/", dir.path().display());
    report
        .diagnostics
        .iter()
        .map(|d| d.to_string().replace(&prefix, ""))
        .collect()
}

fn assert_has(diags: &[String], expected: &str) {
    assert!(
        diags.iter().any(|d| d == expected),
        "expected:\n{expected}\ngot:\n{}",
        diags.join("\n")
    );
}

#[test]
fn init_tree_is_clean_and_complete() {
    let dir = init("production");
    assert_eq!(diagnostics(&dir, &[]), Vec::<String>::new());
    for layer in Layer::ALL {
        for f in layer.files() {
            let rel = format!("stack/{}/{f}.toml", layer.dir());
            let text = std::fs::read_to_string(path(&dir, &rel)).expect("layer file");
            assert!(text.starts_with(&format!("# {rel}")), "{rel} is commented");
        }
    }
    let compression =
        std::fs::read_to_string(path(&dir, "stack/01-transport/compression.toml")).expect("read");
    assert!(compression.contains("CRIME") && compression.contains("XEP-0138"));
    assert!(compression.contains("\nmodules = []\n"), "{compression}");
    let cfg = Config::load(Some(dir.path()), &env_of(&[])).expect("load");
    assert_eq!(cfg.domains, vec!["example.org"]);
    assert_eq!(cfg.environment.as_deref(), Some("production"));
    assert_eq!(cfg.data_path, dir.path().join("data"));
    assert_eq!(
        cfg.certificate,
        Some(dir.path().join("certs/example.org.crt"))
    );
    let built: Vec<&str> = crate::modules::CATALOG
        .iter()
        .filter(|m| m.available && m.refused.is_none())
        .map(|m| m.name)
        // PostgreSQL is the alternative to the embedded store.
        .filter(|&m| m != "storage_sql")
        .collect();
    assert_eq!(cfg.modules, built, "everything Vireo implements is enabled");
}

#[test]
fn every_environment_inits_cleanly() {
    for env in ["development", "docker"] {
        let dir = init(env);
        assert_eq!(diagnostics(&dir, &[]), Vec::<String>::new(), "{env}");
    }
}

/// `config show` gives, for every value set in a file, the file and line
/// that says it.
#[test]
fn show_reproduces_the_tree_with_origins() {
    let dir = init("production");
    let cfg = Config::load(Some(dir.path()), &env_of(&[])).expect("load");
    let shown = crate::commands::config_show::render(&cfg, None, None).expect("show");
    let mut checked = 0;
    for row in shown.lines().filter(|l| !l.starts_with('#')) {
        let (kv, origin) = row.split_once("  # ").expect("origin comment");
        let (key, value) = kv.trim().split_once(" = ").expect("key = value");
        let Some((file, line)) = origin.rsplit_once(':') else {
            panic!("{key} has no file origin: {origin}");
        };
        let n: usize = line.parse().expect("line");
        let text = std::fs::read_to_string(file).expect("origin file");
        let at = text.lines().nth(n - 1).expect("line exists");
        if let Some(m) = key.strip_prefix("modules.") {
            assert!(at.contains(&format!("{m:?}")), "{key} at {origin}: {at}");
        } else if key.starts_with("tls.") {
            assert!(at.contains(".crt") || at.contains(".key"), "{key}: {at}");
        } else {
            let local = key.rsplit('.').next().expect("local");
            assert_eq!(at.trim(), format!("{local} = {value}"), "{key} at {origin}");
        }
        checked += 1;
    }
    assert!(checked > 30, "{shown}");
}

#[test]
fn environment_overlay_and_variable_override() {
    let dir = init("development");
    let cfg = Config::load(Some(dir.path()), &env_of(&[])).expect("load");
    assert_eq!(cfg.log_level, "debug");
    assert_eq!(
        cfg.origin("log_level"),
        Origin::File {
            path: path(&dir, "environments/development.toml"),
            line: line(&dir, "environments/development.toml", "log_level ="),
        }
    );
    assert_eq!(cfg.bind.to_string(), "127.0.0.1");
    // The variable beats the overlay and the layer file.
    let env = [
        ("VIREO_C2S_PORT", "25222"),
        ("VIREO_BIND", "::1"),
        ("VIREO_ENVIRONMENT", "docker"),
    ];
    let cfg = Config::load(Some(dir.path()), &env_of(&env)).expect("load");
    assert_eq!(cfg.c2s_port, 25222);
    assert_eq!(
        cfg.origin("transport.c2s_port"),
        Origin::Env("VIREO_C2S_PORT")
    );
    assert_eq!(cfg.bind.to_string(), "::1");
    assert_eq!(cfg.environment.as_deref(), Some("docker"));
    assert_eq!(cfg.log_level, "info", "docker is not verbose");
    assert_eq!(cfg.data_path, PathBuf::from("/var/lib/vireo"));
    let cfg = Config::load(
        Some(dir.path()),
        &env_of(&[
            ("VIREO_ENVIRONMENT", "docker"),
            ("VIREO_DATA_PATH", "/srv/x"),
        ]),
    )
    .expect("load");
    assert_eq!(cfg.data_path, PathBuf::from("/srv/x"));
}

#[test]
fn production_forces_encryption_unless_the_variable_says_so() {
    let dir = init("production");
    append(
        &dir,
        "policies/performance/limits.toml",
        "require_encryption = false\n",
    );
    let n = line(
        &dir,
        "policies/performance/limits.toml",
        "require_encryption",
    );
    let diags = diagnostics(&dir, &[]);
    assert_has(
        &diags,
        &format!(
            "policies/performance/limits.toml:{n}: warning: stream.require_encryption = false is overridden: \
             the production environment requires encryption\n    \
             fix: remove the setting, or set VIREO_C2S_REQUIRE_ENCRYPTION=false to allow plaintext explicitly"
        ),
    );
    let cfg = Config::load(Some(dir.path()), &env_of(&[])).expect("load");
    assert!(cfg.require_encryption);
    assert_eq!(
        cfg.origin("stream.require_encryption"),
        Origin::Forced("the production environment requires encryption")
    );
    let env = [("VIREO_C2S_REQUIRE_ENCRYPTION", "false")];
    let cfg = Config::load(Some(dir.path()), &env_of(&env)).expect("load");
    assert!(!cfg.require_encryption);
    assert!(cfg.warnings.iter().any(|w| w
        .to_string()
        .starts_with("environment variable VIREO_C2S_REQUIRE_ENCRYPTION: warning: UNENCRYPTED")));
    // The built-in rule holds without the environment file too.
    std::fs::remove_file(path(&dir, "environments/production.toml")).expect("rm");
    append(&dir, "stack/02-stream/encryption.toml", "");
    replace(
        &dir,
        "stack/02-stream/encryption.toml",
        "require_encryption = true",
        "require_encryption = false",
    );
    let cfg = Config::load(Some(dir.path()), &env_of(&[])).expect("load");
    assert!(cfg.require_encryption);
}

#[test]
fn unknown_key_with_did_you_mean() {
    let dir = init("production");
    replace(
        &dir,
        "stack/01-transport/ports.toml",
        "c2s_port = 5222",
        "c2s_prot = 5222",
    );
    let n = line(&dir, "stack/01-transport/ports.toml", "c2s_prot");
    assert_has(
        &diagnostics(&dir, &[]),
        &format!(
            "stack/01-transport/ports.toml:{n}: error: unknown key `c2s_prot` in stack/01-transport/ports.toml\n    \
             fix: did you mean `c2s_port`?"
        ),
    );
}

#[test]
fn unknown_dotted_key_in_an_overlay() {
    let dir = init("production");
    append(
        &dir,
        "environments/production.toml",
        "max_stanza_sise = 20000\n",
    );
    let n = line(&dir, "environments/production.toml", "max_stanza_sise");
    assert_has(
        &diagnostics(&dir, &[]),
        &format!(
            "environments/production.toml:{n}: error: unknown key `stream.max_stanza_sise`\n    \
             fix: did you mean `stream.max_stanza_size`?"
        ),
    );
}

#[test]
fn wrong_type_and_range() {
    let dir = init("production");
    replace(
        &dir,
        "stack/01-transport/ports.toml",
        "c2s_port = 5222",
        "c2s_port = \"5222\"",
    );
    replace(
        &dir,
        "stack/02-stream/authentication.toml",
        "scram_iterations = 10000",
        "scram_iterations = 100",
    );
    let p = line(&dir, "stack/01-transport/ports.toml", "c2s_port =");
    let diags = diagnostics(&dir, &[]);
    assert_has(
        &diags,
        &format!(
            "stack/01-transport/ports.toml:{p}: error: transport.c2s_port: expected an integer from 0 to 65535, found a string\n    \
             fix: expected an integer from 0 to 65535 (default: 5222)"
        ),
    );
    // The policy sets it again, so the file's value is checked but overridden.
    let s = line(
        &dir,
        "stack/02-stream/authentication.toml",
        "scram_iterations =",
    );
    assert_has(
        &diags,
        &format!(
            "stack/02-stream/authentication.toml:{s}: error: stream.scram_iterations: 100 is out of range: expected an integer from 4096 to 10000000\n    \
             fix: expected an integer from 4096 to 10000000 (default: 10000)"
        ),
    );
}

#[test]
fn key_in_the_wrong_layer_file() {
    let dir = init("production");
    append(
        &dir,
        "stack/01-transport/tls.toml",
        "mechanisms = [\"PLAIN\"]\n",
    );
    let n = line(&dir, "stack/01-transport/tls.toml", "mechanisms =");
    assert_has(
        &diagnostics(&dir, &[]),
        &format!(
            "stack/01-transport/tls.toml:{n}: error: `mechanisms` belongs in stack/02-stream/authentication.toml\n    \
             fix: move it to stack/02-stream/authentication.toml as `mechanisms`"
        ),
    );
}

#[test]
fn missing_and_unexpected_layer_files() {
    let dir = init("production");
    std::fs::remove_file(path(&dir, "stack/03-stanza/routing.toml")).expect("rm");
    std::fs::write(path(&dir, "stack/01-transport/port.toml"), "").expect("write");
    std::fs::create_dir_all(path(&dir, "data/store")).expect("data dir is fine");
    std::fs::create_dir_all(path(&dir, "backups")).expect("so are other directories");
    std::fs::create_dir_all(path(&dir, "domain")).expect("but not near misses");
    let diags = diagnostics(&dir, &[]);
    assert_eq!(diags.len(), 3, "{diags:?}");
    assert_has(
        &diags,
        "domain: error: unexpected entry domain: it would be ignored\n    fix: did you mean domains?",
    );
    assert_has(
        &diags,
        "stack/03-stanza/routing.toml: warning: missing layer file (defaults apply: router enabled)\n    \
         fix: create it; `vireo config init DIR` writes a complete, commented tree",
    );
    assert_has(
        &diags,
        "stack/01-transport/port.toml: error: unexpected file port.toml: it would be ignored\n    \
         fix: did you mean ports.toml?",
    );
}

#[test]
fn module_errors() {
    let dir = init("production");
    let f = "stack/01-transport/ports.toml";
    replace(
        &dir,
        f,
        "modules = [\"c2s\", \"c2s_direct_tls\", \"s2s\", \"s2s_direct_tls\"]",
        "modules = [\"c2s\", \"c2s_direct_tls\", \"s2s\", \"roster\", \"c2z\"]",
    );
    let w = "stack/08-integration/webhooks.toml";
    replace(&dir, w, "modules = []", "modules = [\"webhooks\"]");
    replace(
        &dir,
        "stack/01-transport/compression.toml",
        "modules = []",
        "modules = [\"compression\"]",
    );
    replace(
        &dir,
        "stack/03-stanza/routing.toml",
        "modules = [\"router\"]",
        "modules = []",
    );
    let n = line(&dir, f, "modules =");
    let wn = line(&dir, w, "modules =");
    let c = line(&dir, "stack/01-transport/compression.toml", "modules =");
    let o = line(&dir, "stack/05-services/messaging.toml", "modules =");
    let diags = diagnostics(&dir, &[]);
    assert_has(&diags, &format!("{w}:{wn}: error: module `webhooks` (HTTP callbacks on events) is not available in this version\n    fix: remove `webhooks` from the modules list"));
    assert_has(&diags, &format!("{f}:{n}: error: module `roster` belongs in stack/04-protocol/core.toml, not {f}\n    fix: move it to the `modules` list of stack/04-protocol/core.toml"));
    assert_has(
        &diags,
        &format!("{f}:{n}: error: unknown module `c2z`\n    fix: did you mean `c2s`?"),
    );
    assert_has(&diags, &format!("stack/01-transport/compression.toml:{c}: error: module `compression` is refused: stream compression inside TLS leaks secrets (the CRIME attack class); Vireo does not offer XEP-0138\n    fix: remove `compression` from the modules list"));
    assert_has(&diags, &format!("stack/05-services/messaging.toml:{o}: error: module `offline` needs module `router`, which is not enabled\n    fix: add \"router\" to the modules of stack/03-stanza/routing.toml, or remove `offline`"));
}

#[test]
fn module_conflicts() {
    // No two conflicting modules are both built yet; the check itself.
    let mut set = BTreeMap::new();
    let o = |line| Origin::File {
        path: "stack/x.toml".into(),
        line,
    };
    set.insert("auth_internal", o(1));
    set.insert("auth_ldap", o(2));
    let mut out = Vec::new();
    super::checks::modules_of(&set, None, &mut out);
    assert_eq!(
        out.iter().map(|d| d.to_string()).collect::<Vec<_>>(),
        vec!["stack/x.toml:2: error: module `auth_ldap` conflicts with module `auth_internal` (enabled at stack/x.toml:1)\n    \
              fix: enable only one of `auth_ldap` and `auth_internal`"]
    );
}

#[test]
fn not_available_settings() {
    let dir = init("production");
    append(
        &dir,
        "stack/05-services/groupchat.toml",
        "muc_domain = \"conference.localhost\"\n",
    );
    let n = line(
        &dir,
        "stack/05-services/groupchat.toml",
        "muc_domain = \"conference.localhost\"",
    );
    let diags = diagnostics(
        &dir,
        &[
            ("VIREO_DB_NAME", "vireo"),
            ("VIREO_DB_DRIVER", "postgresql"),
        ],
    );
    assert_has(&diags, &format!("stack/05-services/groupchat.toml:{n}: error: `services.muc_domain` (XEP-0045) is not available in this version\n    fix: remove it; the feature is not built yet (spec/config.md lists what is)"));
    // PostgreSQL is built: the database variables are accepted.
    assert!(
        !diags.iter().any(|d| d.contains("VIREO_DB_")),
        "the VIREO_DB_* variables are accepted: {diags:?}"
    );
}

#[test]
fn port_collision() {
    let dir = init("production");
    replace(
        &dir,
        "stack/01-transport/ports.toml",
        "c2s_tls_port = 5223",
        "c2s_tls_port = 5222",
    );
    let p = line(&dir, "stack/01-transport/ports.toml", "c2s_port =");
    let t = line(&dir, "stack/01-transport/ports.toml", "c2s_tls_port =");
    assert_has(
        &diagnostics(&dir, &[]),
        &format!(
            "stack/01-transport/ports.toml:{t}: error: port 5222 of transport.c2s_tls_port is also the port of transport.c2s_port (stack/01-transport/ports.toml:{p})\n    \
             fix: give each listener its own port"
        ),
    );
}

#[test]
fn certificate_problems() {
    let dir = init("production");
    let f = "domains/example.org.toml";
    // A key of another certificate.
    let other =
        xmpp_runtime::tls::generate_self_signed(&["other.org".into()], &path(&dir, "certs"))
            .expect("generate");
    assert!(other.key.ends_with("other.org.key"));
    replace(
        &dir,
        f,
        "key = \"certs/example.org.key\"",
        "key = \"certs/other.org.key\"",
    );
    let k = line(&dir, f, "key = ");
    let diags = diagnostics(&dir, &[]);
    let mismatch = diags
        .iter()
        .find(|d| d.starts_with(&format!("{f}:{k}: error: the key ")))
        .unwrap_or_else(|| panic!("{diags:?}"));
    assert!(
        mismatch.contains("does not match the certificate"),
        "{mismatch}"
    );
    assert!(
        mismatch.ends_with("fix: use the key the certificate was issued for"),
        "{mismatch}"
    );
    // An unreadable certificate.
    replace(
        &dir,
        f,
        "certificate = \"certs/example.org.crt\"",
        "certificate = \"certs/missing.crt\"",
    );
    let c = line(&dir, f, "certificate = ");
    assert_has(
        &diagnostics(&dir, &[]),
        &format!(
            "{f}:{c}: error: cannot read the certificate certs/missing.crt: No such file or directory (os error 2)\n    \
             fix: check the path and that the server's user may read it"
        ),
    );
}

#[test]
fn domain_without_certificate_is_a_warning() {
    let dir = init("production");
    std::fs::write(
        path(&dir, "domains/chat.toml"),
        "domain = \"chat.example.org\"\n",
    )
    .expect("write");
    let diags = diagnostics(&dir, &[]);
    assert_has(
        &diags,
        "domains/chat.toml:1: warning: domain chat.example.org has no certificate: a self-signed one will be generated in data/certs (clients will not trust it)\n    \
             fix: set certificate and key in its domain file (domains/chat.example.org.toml) or tls.certificate and tls.key in stack/01-transport/tls.toml; `vireo cert import` installs one",
    );
    assert!(diags.iter().all(|d| !d.contains(": error: ")), "{diags:?}");
    let cfg = Config::load(Some(dir.path()), &env_of(&[])).expect("warnings do not fail");
    assert_eq!(cfg.domains, vec!["example.org", "chat.example.org"]);
}

#[test]
fn toml_syntax_error_names_the_line() {
    let dir = init("production");
    append(&dir, "stack/04-protocol/core.toml", "oops = [\n");
    let diags = diagnostics(&dir, &[]);
    assert!(
        diags
            .iter()
            .any(|d| d.starts_with("stack/04-protocol/core.toml:")
                && d.contains(": error: TOML syntax:")),
        "{diags:?}"
    );
}

#[test]
fn single_file_keeps_working_with_modules_and_environment() {
    let (_d, p) = write(
        "domain = \"example.org\"\nenvironment = \"development\"\nmodules = [\"c2s\", \"tls\", \"saslauth\", \"bind\", \"router\", \"offline\"]\n[transport]\nc2s_port = 15222\n",
    );
    let cfg = Config::load(Some(&p), &env_of(&[])).expect("load");
    assert_eq!(cfg.log_level, "debug");
    assert_eq!(cfg.origin("log_level"), Origin::Profile("development"));
    assert_eq!(
        cfg.modules,
        vec!["c2s", "tls", "saslauth", "bind", "router", "offline"]
    );
    assert_eq!(cfg.c2s_port, 15222);
}

#[test]
fn registration_settings() {
    // Default: the module is on, registration closed, Prosody's limits.
    let cfg = Config::load(None, &env_of(&[])).expect("load");
    assert!(cfg.modules.contains(&"register"));
    assert!(!cfg.allow_registration);
    assert_eq!(cfg.min_password_length, 8);
    assert_eq!(cfg.min_seconds_between_registrations, 300);
    assert_eq!(cfg.registration_whitelist.len(), 2);
    // The development environment opens it.
    let (_d, p) = write("environment = \"development\"\n");
    let cfg = Config::load(Some(&p), &env_of(&[])).expect("load");
    assert!(cfg.allow_registration);
    assert_eq!(
        cfg.origin("registration.allow_registration"),
        Origin::Profile("development")
    );
    let (_d, p) = write(
        "[registration]\nallow_registration = true\nmin_password_length = 12\n\
         min_seconds_between_registrations = 0\nregistration_whitelist = [\"10.0.0.1\", \"[::1]\", \"192.0.2.77/24\"]\n",
    );
    let cfg = Config::load(Some(&p), &env_of(&[])).expect("load");
    assert!(cfg.allow_registration);
    assert_eq!(cfg.min_password_length, 12);
    assert_eq!(cfg.min_seconds_between_registrations, 0);
    // Single addresses and networks (CIDR, host bits dropped).
    let listed: Vec<String> = cfg
        .registration_whitelist
        .iter()
        .map(schema::show_net)
        .collect();
    assert_eq!(listed, ["10.0.0.1", "::1", "192.0.2.0/24"]);
    let (_d, p) = write("[registration]\nregistration_whitelist = [\"localhost\"]\n");
    let report = Config::check(Some(&p), &env_of(&[]));
    assert!(
        report
            .errors()
            .any(|d| d.to_string().contains("\"localhost\" is not an IP address")),
        "{:?}",
        report.diagnostics
    );
    // Opening registration without the module is pointed out.
    let (_d, p) = write(
        "modules = [\"c2s\", \"tls\", \"saslauth\", \"bind\", \"router\"]\n[registration]\nallow_registration = true\n",
    );
    let report = Config::check(Some(&p), &env_of(&[]));
    assert!(
        report.warnings().any(|d| d.to_string().contains(
            "registration.allow_registration has no effect: module `register` is not enabled"
        )),
        "{:?}",
        report.diagnostics
    );
}

#[test]
fn turn_settings_and_hidden_secret() {
    let (_d, p) = write(
        "[extdisco]\nturn_external_host = \"turn.example.org\"\nturn_external_secret = \"s3cr3t\"\n\
         turn_external_tcp = true\nturn_external_tls_port = 5349\n",
    );
    let cfg = Config::load(Some(&p), &env_of(&[])).expect("load");
    assert_eq!(
        cfg.text("extdisco.turn_external_host").as_deref(),
        Some("turn.example.org")
    );
    assert_eq!(cfg.int::<u16>("extdisco.turn_external_port"), Some(3478));
    assert_eq!(
        cfg.text("extdisco.turn_external_secret").as_deref(),
        Some("s3cr3t")
    );
    assert_eq!(cfg.int::<u64>("extdisco.turn_external_ttl"), Some(86_400));
    assert!(cfg.flag("extdisco.turn_external_tcp"));
    assert_eq!(
        cfg.int::<u16>("extdisco.turn_external_tls_port"),
        Some(5349)
    );
    assert_eq!(cfg.text("extdisco.turn_external_user"), None);
    // The module gets them.
    let rt = crate::commands::run::runtime_config(&cfg, None);
    let extdisco = rt
        .hub
        .modules
        .describe(xmpp_core::modules::extdisco::ID)
        .expect("extdisco is on");
    for part in [
        "host: \"turn.example.org\"",
        "port: 3478",
        "ttl_secs: 86400",
        "tcp: true",
        "tls_port: Some(5349)",
        "user: None",
    ] {
        assert!(extdisco.contains(part), "{part}: {extdisco}");
    }
    let shown = crate::commands::config_show::render(&cfg, Some("extdisco"), None).expect("show");
    assert!(!shown.contains("s3cr3t"), "{shown}");
    assert!(
        shown.contains("extdisco.turn_external_secret = \"(hidden)\""),
        "{shown}"
    );
    // From the environment, as Prosody deployments inject it.
    let cfg = Config::load(Some(&p), &env_of(&[("VIREO_TURN_SECRET", "from-env")])).expect("load");
    assert_eq!(
        cfg.text("extdisco.turn_external_secret").as_deref(),
        Some("from-env")
    );
    // A secret without a server is pointed out.
    let (_d, p) = write("[extdisco]\nturn_external_secret = \"s3cr3t\"\n");
    let report = Config::check(Some(&p), &env_of(&[]));
    assert!(
        report.warnings().any(|d| d.to_string().contains(
            "extdisco.turn_external_secret has no effect: extdisco.turn_external_host is not set"
        )),
        "{:?}",
        report.diagnostics
    );
}

#[test]
fn reference_is_up_to_date() {
    let expected = super::reference::markdown();
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("../spec/config.md");
    let actual = std::fs::read_to_string(&file).unwrap_or_default();
    if actual != expected {
        panic!(
            "spec/config.md is stale: regenerate it with `cargo run -p vireo -- config reference > spec/config.md`"
        );
    }
}

#[test]
fn orchestration_keys_and_variables() {
    let dir = init("production");
    append(&dir, "vireo.toml", "\n[transport]\nc2s_port = 1\n");
    let n = line(&dir, "vireo.toml", "c2s_port = 1");
    let diags = diagnostics(&dir, &[]);
    assert_has(
        &diags,
        &format!(
            "vireo.toml:{n}: error: `transport.c2s_port` belongs in stack/01-transport/ports.toml\n    \
             fix: move it to stack/01-transport/ports.toml as `c2s_port`"
        ),
    );
    let env = [("VIREO_ADMINS", "admin@example.org, root@example.org")];
    let dir = init("production");
    let cfg = Config::load(Some(dir.path()), &env_of(&env)).expect("load");
    assert_eq!(cfg.admins, vec!["admin@example.org", "root@example.org"]);
    assert_eq!(cfg.origin("admins"), Origin::Env("VIREO_ADMINS"));
    let diags = diagnostics(&dir, &[("VIREO_ADMINS", "not a jid")]);
    assert_has(
        &diags,
        "environment variable VIREO_ADMINS: error: admins: \"not a jid\" is not a bare JID (user@domain)\n    \
         fix: VIREO_ADMINS must be a comma-separated list of bare JIDs",
    );
}

#[test]
fn policies_can_be_chosen() {
    let dir = init("production");
    replace(
        &dir,
        "vireo.toml",
        "# policies = [\"security/baseline\", \"performance/limits\"]",
        "policies = [\"security/baseline\", \"security/missing\"]",
    );
    let n = line(&dir, "vireo.toml", "policies =");
    let root = dir.path().display().to_string();
    assert_has(
        &diagnostics(&dir, &[]),
        &format!(
            "vireo.toml:{n}: error: policy \"security/missing\" not found ({root}/policies/security/missing.toml)\n    \
             fix: name policies as \"group/name\" for policies/<group>/<name>.toml; groups: security, performance, compliance"
        )
        .replace(&format!("{root}/"), ""),
    );
}

#[test]
fn virtual_hosts_and_module_overrides() {
    let dir = init("production");
    std::fs::write(
        path(&dir, "domains/chat.toml"),
        "domain = \"chat.example.org\"\ncertificate = \"certs/example.org.crt\"\nkey = \"certs/example.org.key\"\nmodules_disabled = [\"version\"]\n",
    )
    .expect("write");
    let cfg = Config::load(Some(dir.path()), &env_of(&[])).expect("load");
    assert_eq!(cfg.domains, vec!["example.org", "chat.example.org"]);
    let chat = cfg.vhost("chat.example.org").expect("vhost");
    assert!(!chat.modules.contains_key("version"));
    assert!(cfg.module_origins.contains_key("version"));
    assert_eq!(
        chat.certificate.as_ref().map(|(p, _)| p.clone()),
        Some(path(&dir, "certs/example.org.crt"))
    );
    // VIREO_DOMAIN replaces the list; the file's domain is then not served.
    let diags = diagnostics(&dir, &[("VIREO_DOMAIN", "example.org")]);
    assert_has(
        &diags,
        "domains/chat.toml:1: warning: domain chat.example.org is not served (environment variable VIREO_DOMAIN)\n    \
         fix: add it to the served domains or remove its file",
    );
}

/// The XEP-0060 service runs at pubsub.<domain> for the domains that
/// keep the module on, with the server's admins and the section's budgets.
#[test]
fn pubsub_serves_the_domains_that_enable_it() {
    let dir = init("production");
    std::fs::write(
        path(&dir, "domains/chat.toml"),
        "domain = \"chat.example.org\"\nmodules_disabled = [\"pubsub\"]\n",
    )
    .expect("write");
    let file = path(&dir, "stack/05-services/pubsub.toml");
    let text = std::fs::read_to_string(&file).expect("read");
    let text = text.replace(
        "pubsub_max_subscriptions = 1000",
        "pubsub_max_subscriptions = 7",
    );
    std::fs::write(&file, text).expect("write");
    let cfg = Config::load(
        Some(dir.path()),
        &env_of(&[("VIREO_ADMINS", "root@example.org")]),
    )
    .expect("load");
    assert_eq!(cfg.domains, vec!["example.org", "chat.example.org"]);
    let rt = crate::commands::run::runtime_config(&cfg, None);
    let pubsub = rt
        .hub
        .modules
        .describe(xmpp_core::modules::pubsub::ID)
        .expect("pubsub is on");
    for part in [
        "domains: [\"example.org\"]",
        "admins: [\"root@example.org\"]",
        "subscriptions_per_jid_max: 7",
    ] {
        assert!(pubsub.contains(part), "{part}: {pubsub}");
    }
}

/// The XEP-0045 service runs at conference.<domain> for the domains that
/// keep the module on, with the server's admins and the section's values.
#[test]
fn muc_serves_the_domains_that_enable_it() {
    let dir = init("production");
    std::fs::write(
        path(&dir, "domains/chat.toml"),
        "domain = \"chat.example.org\"\nmodules_disabled = [\"muc\"]\n",
    )
    .expect("write");
    let file = path(&dir, "stack/05-services/groupchat.toml");
    let text = std::fs::read_to_string(&file).expect("read");
    assert!(text.contains("max_history_messages = 20"), "{text}");
    let text = text
        .replace("max_history_messages = 20", "max_history_messages = 5")
        .replace(
            "restrict_room_creation = \"local\"",
            "restrict_room_creation = \"admins\"",
        )
        .replace("muc_room_locking = true", "muc_room_locking = false")
        .replace(
            "muc_room_default_persistent = false",
            "muc_room_default_persistent = true",
        );
    std::fs::write(&file, text).expect("write");
    let cfg = Config::load(
        Some(dir.path()),
        &env_of(&[("VIREO_ADMINS", "root@example.org")]),
    )
    .expect("load");
    let rt = crate::commands::run::runtime_config(&cfg, None);
    let muc = rt
        .hub
        .modules
        .describe(xmpp_core::modules::muc::ID)
        .expect("muc is on");
    for part in [
        "domains: [\"example.org\"]",
        "admins: [\"root@example.org\"]",
        "create: Admins",
        "max_history_messages: 5",
        "lock_new_rooms: false",
        // Persistent rooms are archived by default.
        "persistent: true",
        "logging: true",
        "log_all_rooms: false",
    ] {
        assert!(muc.contains(part), "{part}: {muc}");
    }
}

#[test]
fn single_file_unknown_section_and_misplaced_key() {
    let (_d, p) = write("[tranport]\nc2s_port = 1\n[transport]\nrequire_encryption = false\n");
    let err = Config::load(Some(&p), &env_of(&[])).expect_err("must fail");
    let shown = err
        .to_string()
        .replace(&format!("{}", p.display()), "vireo.toml");
    assert_eq!(
        shown,
        "2 errors:\n\
         vireo.toml:1: error: unknown section `[tranport]`\n    fix: did you mean `[transport]`?\n\
         vireo.toml:4: error: unknown key `transport.require_encryption`\n    fix: did you mean `stream.require_encryption`?"
    );
}

#[test]
fn choices_suggest_the_closest() {
    let (_d, p) = write("environment = \"prodution\"\n");
    let err = Config::load(Some(&p), &env_of(&[])).expect_err("must fail");
    assert!(
        err.to_string().ends_with(
            "vireo.toml:1: error: environment: \"prodution\" is not one of \"production\", \"development\", \"docker\" (did you mean \"production\"?)\n    \
             fix: expected one of \"production\", \"development\", \"docker\""
        ),
        "{err}"
    );
}

#[test]
fn components_are_read_with_secrets_from_file_or_environment() {
    let dir = init("production");
    let rel = "stack/07-interfaces/components.toml";
    append(
        &dir,
        rel,
        "\n[[component]]\njid = \"Push.Example.org\"\nsecret = \"0123456789abcdef0123\"\n\
         \n[[component]]\njid = \"gw.example.org\"\nsecret_env = \"GW_SECRET\"\n",
    );
    let cfg = Config::load(
        Some(dir.path()),
        &env_of(&[("GW_SECRET", "from-the-environment")]),
    )
    .expect("load");
    let got: Vec<(&str, &str)> = cfg
        .components
        .iter()
        .map(|c| (c.jid.as_str(), c.secret.as_str()))
        .collect();
    assert_eq!(
        got,
        vec![
            ("push.example.org", "0123456789abcdef0123"),
            ("gw.example.org", "from-the-environment")
        ]
    );
    let rt = crate::commands::run::runtime_config(&cfg, None);
    let listener = rt.components.expect("a component listener");
    assert_eq!(listener.port, 5347);
    assert!(listener.bind.is_loopback());
    assert_eq!(
        rt.hub.components,
        vec!["push.example.org", "gw.example.org"]
    );
    // config show names them, never their secrets.
    let shown = crate::commands::config_show::render(&cfg, Some("interfaces"), None).expect("show");
    assert!(
        shown.contains("interfaces.component.gw.example.org = \"(secret from $GW_SECRET)\""),
        "{shown}"
    );
    assert!(!shown.contains("0123456789abcdef0123"), "{shown}");
    // Without the variable the entry is an error at its [[component]] line.
    let n = line(&dir, rel, "jid = \"gw.example.org\"") - 1;
    assert_has(
        &diagnostics(&dir, &[]),
        &format!(
            "{rel}:{n}: error: the secret of component gw.example.org is read from $GW_SECRET, which is not set\n    \
             fix: export GW_SECRET=... before starting, or write `secret` instead"
        ),
    );
}

#[test]
fn component_mistakes_are_reported() {
    let dir = init("production");
    let rel = "stack/07-interfaces/components.toml";
    append(
        &dir,
        rel,
        "\n[[component]]\njid = \"example.org\"\nsecret = \"0123456789abcdef0123\"\n\
         \n[[component]]\njid = \"a.example.org\"\nsecret = \"short\"\n\
         \n[[component]]\njid = \"a.example.org\"\nsecret = \"0123456789abcdef0123\"\n\
         \n[[component]]\njid = \"b.example.org\"\nsecrt = \"x\"\n",
    );
    let diags = diagnostics(&dir, &[]);
    let at = |needle: &str, nth: usize| {
        let text = std::fs::read_to_string(path(&dir, rel)).expect("read");
        text.lines()
            .enumerate()
            .filter(|(_, l)| l.starts_with(needle))
            .nth(nth)
            .map(|(i, _)| i + 1)
            .unwrap_or_else(|| panic!("no {needle}"))
    };
    // An entry is reported at its [[component]] line, a key at its own.
    let entry = |needle: &str, nth: usize| at(needle, nth) - 1;
    let served = entry("jid = \"example.org\"", 0);
    assert_has(&diags, &format!("{rel}:{served}: error: component example.org is also a served domain\n    fix: give the component its own name, e.g. a subdomain"));
    let weak = entry("jid = \"a.example.org\"", 0);
    assert_has(&diags, &format!("{rel}:{weak}: warning: the secret of component a.example.org is short\n    fix: use at least 16 random characters (`openssl rand -hex 24`)"));
    let dup = entry("jid = \"a.example.org\"", 1);
    assert_has(&diags, &format!("{rel}:{dup}: error: component a.example.org is already configured at {rel}:{weak}\n    fix: keep one entry per component"));
    let typo = at("secrt", 0);
    assert_has(&diags, &format!("{rel}:{typo}: error: unknown key `secrt` in a component\n    fix: did you mean `secret`?"));
    // Switched off, components cannot connect: say so.
    replace(&dir, rel, "modules = [\"component\", ", "modules = [");
    let diags = diagnostics(&dir, &[]);
    assert!(
        diags
            .iter()
            .any(|d| d.contains("module `component` is not enabled")),
        "{diags:?}"
    );
}

#[test]
fn push_settings_reach_the_hub() {
    let dir = init("production");
    replace(
        &dir,
        "stack/04-protocol/experimental.toml",
        "push_notification_with_body = false",
        "push_notification_with_body = true",
    );
    let cfg = Config::load(Some(dir.path()), &env_of(&[])).expect("load");
    let rt = crate::commands::run::runtime_config(&cfg, None);
    let push = rt
        .hub
        .modules
        .describe(xmpp_core::modules::push::ID)
        .expect("push is on");
    assert!(push.contains("with_body: true"), "{push}");
    assert!(
        push.contains("with_sender: false"),
        "senders stay private by default: {push}"
    );
    assert!(push.contains("max_registrations: 16"), "{push}");
    assert!(rt.components.is_none(), "no listener without components");
}

#[test]
fn archive_settings_without_mam_warn() {
    let (_d, p) = write(
        "modules = [\"c2s\", \"tls\", \"saslauth\", \"auth_internal\", \"bind\", \"router\", \"roster\", \"presence\", \"disco\", \"storage_embedded\"]\n\
         [storage]\narchive_retention_days = 30\n",
    );
    let report = Config::check(Some(&p), &env_of(&[]));
    let warnings: Vec<String> = report.warnings().map(|d| d.to_string()).collect();
    assert!(
        warnings
            .iter()
            .any(|w| w.contains("storage.archive_retention_days has no effect")),
        "{warnings:?}"
    );
    let (_d, p) = write("[storage]\narchive_retention_days = 30\n");
    let cfg = Config::load(Some(&p), &env_of(&[])).expect("load");
    assert!(cfg.modules.contains(&"mam"));
    assert_eq!(cfg.int::<u64>("storage.archive_retention_days"), Some(30));
    let rt = crate::commands::run::runtime_config(&cfg, None);
    let mam = rt
        .hub
        .modules
        .describe(xmpp_core::modules::mam::ID)
        .expect("mam is on");
    assert!(
        mam.contains(&format!("retention: Some({})", 30 * 86_400_000u64)),
        "{mam}"
    );
    assert!(!cfg
        .warnings
        .iter()
        .any(|w| w.to_string().contains("no effect")));
}

#[test]
fn queue_caps_below_the_largest_stanza_are_errors() {
    let (_d, p) = write(
        "[stream]\nmax_stanza_size = 300000\nmax_mailbox_bytes = 200000\nsmacks_max_queue_size = 50\n[services]\noffline_page_size = 100\n",
    );
    let report = Config::check(Some(&p), &env_of(&[]));
    let shown: Vec<String> = report
        .diagnostics
        .iter()
        .map(|d| {
            d.to_string()
                .replace(&format!("{}", p.display()), "vireo.toml")
        })
        .collect();
    assert!(
        shown.iter().any(|d| d.contains(
            "error: stream.max_mailbox_bytes (200000) is below stream.max_stanza_size (300000)"
        )),
        "{shown:?}"
    );
    assert!(
        !shown
            .iter()
            .any(|d| d.contains("error: stream.smacks_max_queue_bytes")),
        "the default is above the stanza size: {shown:?}"
    );
    assert!(
        shown.iter().any(|d| d.contains("warning: services.offline_page_size (100) is more than half of stream.smacks_max_queue_size (50): pages are cut to 25")),
        "{shown:?}"
    );
}

#[test]
fn address_limits_and_auth_backoff() {
    // Defaults: safe for the internet, loopback exempt.
    let cfg = Config::load(None, &env_of(&[])).expect("load");
    let rt = crate::commands::run::runtime_config(&cfg, None);
    let l = &rt.address_limits;
    assert_eq!(l.max_unauthenticated, 20);
    assert_eq!(l.max_new_per_second, 10);
    assert_eq!(l.tls_handshake_timeout, std::time::Duration::from_secs(10));
    assert_eq!(l.max_tracked, 65_536);
    assert!(l.is_exempt(IpAddr::from([127, 0, 0, 1])));
    assert!(!l.is_exempt(IpAddr::from([127, 0, 0, 2])));
    assert_eq!(l.auth_backoff.base_ms, 250);
    assert_eq!(l.auth_backoff.max_ms, 10_000);
    assert_eq!(l.auth_backoff.forget_ms, 900_000);
    assert_eq!(rt.stream.bind_timeout_ms, 30_000);
    let (_d, p) = write(
        "[transport]\nmax_unauthenticated_per_address = 3\nmax_new_connections_per_address = 0\n\
         tls_handshake_timeout = 2\naddress_limits_exempt = []\nmax_tracked_addresses = 2048\n\
         [stream]\nbind_timeout = 4\nauth_failure_delay = 100\nauth_failure_max_delay = 800\n\
         auth_failure_forget = 60\n",
    );
    let cfg = Config::load(Some(&p), &env_of(&[])).expect("load");
    let rt = crate::commands::run::runtime_config(&cfg, None);
    let l = &rt.address_limits;
    assert_eq!((l.max_unauthenticated, l.max_new_per_second), (3, 0));
    assert_eq!(l.tls_handshake_timeout, std::time::Duration::from_secs(2));
    assert!(l.exempt.is_empty());
    assert_eq!(l.max_tracked, 2048);
    assert_eq!(rt.stream.bind_timeout_ms, 4_000);
    assert_eq!(
        (
            l.auth_backoff.base_ms,
            l.auth_backoff.max_ms,
            l.auth_backoff.forget_ms
        ),
        (100, 800, 60_000)
    );
    // `check config` refuses values out of range.
    for bad in [
        "[transport]\ntls_handshake_timeout = 0\n",
        "[transport]\nmax_tracked_addresses = 10\n",
        "[stream]\nbind_timeout = 0\n",
        "[stream]\nauth_failure_delay = -1\n",
        "[stream]\nauth_failure_max_delay = 60001\n",
    ] {
        let (_d, p) = write(bad);
        let report = Config::check(Some(&p), &env_of(&[]));
        assert!(
            report.errors().next().is_some(),
            "{bad}: {:?}",
            report.diagnostics
        );
    }
}

#[test]
fn the_database_variables_configure_postgresql() {
    let dir = init("production");
    let env = [
        ("VIREO_DB_DRIVER", "postgresql"),
        ("VIREO_DB_HOST", "db.internal"),
        ("VIREO_DB_PORT", "6432"),
        ("VIREO_DB_NAME", "xmpp"),
        ("VIREO_DB_USER", "chat"),
        ("VIREO_DB_PASSWORD", "s3cret"),
    ];
    let cfg = Config::load(Some(dir.path()), &env_of(&env)).expect("loads");
    assert_eq!(cfg.storage_driver, "postgresql");
    assert_eq!(
        (
            cfg.sql.host.as_str(),
            cfg.sql.port,
            cfg.sql.database.as_str()
        ),
        ("db.internal", 6432, "xmpp")
    );
    assert_eq!(cfg.sql.user, "chat");
    assert_eq!(cfg.sql.password.as_deref(), Some("s3cret"));
    // The storage module follows the driver.
    assert!(cfg.modules.contains(&"storage_sql"));
    assert!(!cfg.modules.contains(&"storage_embedded"));
    let diags = diagnostics(&dir, &[("VIREO_DB_PORT", "0")]);
    assert!(
        diags
            .iter()
            .any(|d| d.starts_with("environment variable VIREO_DB_PORT: error")),
        "{diags:?}"
    );
    let diags = diagnostics(&dir, &[("VIREO_DB_DRIVER", "PostgreSQL")]);
    assert!(
        diags
            .iter()
            .any(|d| d.contains("\"PostgreSQL\" is not one of \"redb\", \"sled\", \"postgresql\"")),
        "{diags:?}"
    );
}

#[test]
fn a_renamed_module_loads_under_its_new_name_with_a_warning() {
    let dir = init("production");
    let f = "stack/06-storage/backends.toml";
    replace(
        &dir,
        f,
        "modules = [\"storage_embedded\"]",
        "modules = [\"storage_sled\"]",
    );
    let n = line(&dir, f, "modules =");
    let diags = diagnostics(&dir, &[]);
    assert_has(&diags, &format!("{f}:{n}: warning: module `storage_sled` is now called `storage_embedded`\n    fix: write `storage_embedded` in the modules list"));
    let cfg = Config::load(Some(dir.path()), &env_of(&[])).expect("an old name still loads");
    assert!(cfg.modules.contains(&"storage_embedded"));
}

#[test]
fn a_bad_http_external_url_names_its_file_and_line() {
    let dir = init("production");
    let f = "stack/07-interfaces/http.toml";
    replace(
        &dir,
        f,
        "http_external_url = \"\"",
        "http_external_url = \"chat.example.org/x\"",
    );
    let n = line(&dir, f, "http_external_url =");
    let diags = diagnostics(&dir, &[]);
    assert_has(
        &diags,
        &format!("{f}:{n}: error: interfaces.http_external_url: \"chat.example.org/x\" is not an http:// or https:// URL\n    fix: write it as clients reach the server, e.g. \"https://chat.example.org\""),
    );
}
