//! A real DNS server for tests: Debian's dnsmasq on 127.0.0.1 at an
//! ephemeral port, serving only the records a test gives it
//! (`--no-resolv --no-hosts`, names under `.test` local so anything else
//! there is NXDOMAIN).
//!
//! `.ci/run` installs `dnsmasq-base` (the binary without the system
//! service); on a developer machine without it, the first test installs it
//! with apt-get when running as root. Only when that is impossible outside
//! CI is the test skipped, with a message saying why; under `CI` a missing
//! dnsmasq fails the test instead.
//!
//! Shared by xmpp-runtime's and the server's tests (`#[path]`).

#![allow(dead_code)]

use std::io::Read;
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// A running dnsmasq, stopped on drop.
pub struct Dnsmasq {
    child: Child,
    /// Where it answers (UDP and TCP).
    pub addr: SocketAddr,
    _dir: tempfile::TempDir,
}

/// The dnsmasq binary, installing it when missing and possible; the reason
/// when not.
pub fn binary() -> Result<PathBuf, String> {
    static FOUND: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    FOUND.get_or_init(find_or_install).clone()
}

fn find() -> Option<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect())
        .unwrap_or_default();
    dirs.extend(["/usr/sbin", "/sbin", "/usr/local/sbin"].map(PathBuf::from));
    dirs.into_iter()
        .map(|d| d.join("dnsmasq"))
        .find(|p| p.is_file())
}

fn find_or_install() -> Result<PathBuf, String> {
    if let Some(p) = find() {
        return Ok(p);
    }
    let root = Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false);
    if !root {
        return Err("dnsmasq is not installed and this user cannot apt-get install it".into());
    }
    eprintln!("dnsmasq missing: apt-get install dnsmasq-base");
    let apt = |args: &[&str]| {
        Command::new("apt-get")
            .args(args)
            .env("DEBIAN_FRONTEND", "noninteractive")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .status()
            .map(|s| s.success())
            .unwrap_or(false)
    };
    let install = ["install", "-y", "--no-install-recommends", "dnsmasq-base"];
    // The package lists may be stale or absent: update once, then retry.
    let installed = apt(&install) || (apt(&["update"]) && apt(&install));
    if !installed {
        return Err("apt-get install dnsmasq-base failed".into());
    }
    find().ok_or_else(|| "dnsmasq-base installed but no dnsmasq binary found".into())
}

/// The binary, or `None` after printing why the test is skipped. Under CI
/// it panics instead: CI installs dnsmasq and must never skip.
pub fn binary_or_skip(test: &str) -> Option<PathBuf> {
    match binary() {
        Ok(p) => Some(p),
        Err(why) if std::env::var_os("CI").is_none() => {
            eprintln!("SKIPPED {test}: {why}");
            None
        }
        Err(why) => panic!("{test}: {why} (CI must install dnsmasq-base: see .ci/run)"),
    }
}

/// A port free for both UDP and TCP on 127.0.0.1 just now.
fn free_port() -> u16 {
    loop {
        let udp = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind udp");
        let port = udp.local_addr().expect("local addr").port();
        if TcpListener::bind((Ipv4Addr::LOCALHOST, port)).is_ok() {
            return port;
        }
    }
}

impl Dnsmasq {
    /// Start dnsmasq with `options` (e.g. `--srv-host=...`,
    /// `--host-record=...`) on top of the isolating ones; `None` when the
    /// test is skipped (see [`binary_or_skip`]).
    pub fn start(test: &str, options: &[String]) -> Option<Dnsmasq> {
        let bin = binary_or_skip(test)?;
        let mut last_err = String::new();
        // Another process may take the port between the probe and dnsmasq's
        // bind: try a few ports.
        for _ in 0..5 {
            let dir = tempfile::tempdir().expect("tempdir");
            let port = free_port();
            let mut child = Command::new(&bin)
                .arg("--keep-in-foreground")
                .arg(format!("--port={port}"))
                .arg("--listen-address=127.0.0.1")
                .arg("--bind-interfaces")
                .arg("--no-resolv")
                .arg("--no-hosts")
                .arg("--conf-file=/dev/null")
                .arg(format!("--pid-file={}", dir.path().join("pid").display()))
                .arg("--local=/test/")
                .arg("--log-facility=-")
                .args(options)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap_or_else(|e| panic!("spawn {}: {e}", bin.display()));
            let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
            let started = Instant::now();
            while started.elapsed() < Duration::from_secs(10) {
                if let Ok(Some(_)) = child.try_wait() {
                    break;
                }
                if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
                    return Some(Dnsmasq {
                        child,
                        addr,
                        _dir: dir,
                    });
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
            let _ = child.wait();
            last_err.clear();
            if let Some(mut err) = child.stderr.take() {
                let _ = err.read_to_string(&mut last_err);
            }
        }
        panic!("dnsmasq did not start: {last_err}");
    }
}

impl Drop for Dnsmasq {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `--srv-host` for `_SERVICE._tcp.DOMAIN` → `target:port`.
pub fn srv(
    service: &str,
    domain: &str,
    target: &str,
    port: u16,
    priority: u16,
    weight: u16,
) -> String {
    format!("--srv-host=_{service}._tcp.{domain},{target},{port},{priority},{weight}")
}

/// `--srv-host` with no target: the "." record, service not offered.
pub fn srv_dot(service: &str, domain: &str) -> String {
    format!("--srv-host=_{service}._tcp.{domain}")
}

/// `--host-record` for `name` with these addresses (one IPv4 and/or one
/// IPv6 per call; repeat for more).
pub fn host(name: &str, addrs: &[&str]) -> String {
    format!("--host-record={name},{}", addrs.join(","))
}
