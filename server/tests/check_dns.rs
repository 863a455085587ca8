//! `vireo check dns DOMAIN` through the built binary, against dnsmasq on
//! loopback (the harness of xmpp-runtime's tests).

#[path = "../../xmpp-runtime/tests/support/dnsmasq.rs"]
mod dnsmasq;

use dnsmasq::{host, srv, srv_dot, Dnsmasq};
use std::process::{Command, Output, Stdio};

fn zone() -> Vec<String> {
    vec![
        srv("xmpps-server", "a.test", "tls.a.test", 5270, 5, 0),
        srv("xmpp-server", "a.test", "x1.a.test", 5269, 10, 0),
        host("tls.a.test", &["127.0.0.11", "fd00::11"]),
        host("x1.a.test", &["127.0.0.21"]),
        srv_dot("xmpp-server", "dot.test"),
        host("dot.test", &["127.0.0.61"]),
        host("nosrv.test", &["127.0.0.31"]),
    ]
}

/// `vireo check dns DOMAIN --nameserver ADDR`, no VIREO_* variable but
/// `extra_env`, in an empty directory (no configuration needed).
fn check_dns(server: &Dnsmasq, domain: &str, extra_env: &[(&str, &str)]) -> Output {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_vireo"));
    cmd.args(["check", "dns", domain, "--nameserver"])
        .arg(server.addr.to_string())
        .current_dir(dir.path())
        .env_remove("RUST_LOG")
        .stdin(Stdio::null());
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("VIREO_") {
            cmd.env_remove(k);
        }
    }
    cmd.envs(extra_env.iter().copied());
    cmd.output().expect("run vireo")
}

fn text(o: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

#[test]
fn srv_records_addresses_and_the_connection_order() {
    let Some(server) = Dnsmasq::start("srv_records_addresses_and_the_connection_order", &zone())
    else {
        return;
    };
    let o = check_dns(&server, "a.test", &[]);
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(0), "{out}\n{err}");
    for line in [
        format!("DNS for a.test (nameservers: {})", server.addr),
        "_xmpps-server._tcp.a.test SRV:".into(),
        "    priority 5 weight 0 port 5270 target tls.a.test".into(),
        "_xmpp-server._tcp.a.test SRV:".into(),
        "    priority 10 weight 0 port 5269 target x1.a.test".into(),
        "    tls.a.test: fd00::11, 127.0.0.11".into(),
        "    x1.a.test: 127.0.0.21 (no AAAA)".into(),
    ] {
        assert!(out.lines().any(|l| l == line), "missing {line:?} in\n{out}");
    }
    let order = out
        .split("Connection order:\n")
        .nth(1)
        .unwrap_or_else(|| panic!("no connection order in\n{out}"));
    assert_eq!(
        order.lines().take(3).collect::<Vec<_>>(),
        [
            "    1. [fd00::11]:5270 direct TLS (tls.a.test)",
            "    2. 127.0.0.11:5270 direct TLS (tls.a.test)",
            "    3. 127.0.0.21:5269 STARTTLS (x1.a.test)",
        ]
    );
}

#[test]
fn the_fallback_is_shown_and_a_static_route_noted() {
    let Some(server) = Dnsmasq::start("the_fallback_is_shown_and_a_static_route_noted", &zone())
    else {
        return;
    };
    let o = check_dns(
        &server,
        "nosrv.test",
        &[("VIREO_S2S_OVERRIDES", "nosrv.test=127.0.0.1:35289")],
    );
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(0), "{out}\n{err}");
    assert!(
        out.contains("No SRV record: falling back to nosrv.test's own addresses on port 5269"),
        "{out}"
    );
    assert!(
        out.contains("    1. 127.0.0.31:5269 STARTTLS (nosrv.test)"),
        "{out}"
    );
    assert!(
        out.contains("VIREO_S2S_OVERRIDES routes nosrv.test to 127.0.0.1:35289"),
        "{out}"
    );

    let bad = check_dns(
        &server,
        "nosrv.test",
        &[("VIREO_S2S_OVERRIDES", "nosrv.test")],
    );
    let (out, _) = text(&bad);
    assert!(
        out.contains("Warning: VIREO_S2S_OVERRIDES: s2s override \"nosrv.test\""),
        "{out}"
    );
}

#[test]
fn nothing_resolvable_exits_non_zero() {
    let Some(server) = Dnsmasq::start("nothing_resolvable_exits_non_zero", &zone()) else {
        return;
    };
    let o = check_dns(&server, "dot.test", &[]);
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(1), "{out}\n{err}");
    assert!(
        out.contains("\".\": server-to-server is not offered by this domain"),
        "{out}"
    );
    assert!(out.contains("no A/AAAA fallback"), "{out}");
    assert!(err.contains("dot.test: nothing to connect to"), "{err}");

    let o = check_dns(&server, "nx.test", &[]);
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(1), "{out}\n{err}");
    assert!(
        out.contains("nx.test: no address (AAAA: name does not exist; A: name does not exist)"),
        "{out}"
    );
}

#[test]
fn a_bad_nameserver_argument_is_refused() {
    let o = Command::new(env!("CARGO_BIN_EXE_vireo"))
        .args(["check", "dns", "a.test", "--nameserver", "not-an-address"])
        .env_remove("VIREO_CONFIG_PATH")
        .output()
        .expect("run vireo");
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("nameserver"));
}
