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
    assert!(msg.contains("line 3"), "{msg}");
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

#[test]
fn plaintext_switch_from_environment() {
    let env = env_of(&[("VIREO_C2S_REQUIRE_ENCRYPTION", "false")]);
    let cfg = Config::load(None, &env).expect("load");
    assert!(!cfg.require_encryption);
}
