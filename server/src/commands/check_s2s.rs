//! `vireo check s2s DOMAIN`: whether this server could federate with
//! DOMAIN, as `prosodyctl check connectivity` tells: where it listens
//! (`vireo check dns`'s candidates, or `--route`), whether it answers a
//! `jabber:server` stream, whether it offers STARTTLS, and whether the
//! certificate it presents is trusted and proves DOMAIN (RFC 6125).

use crate::cli::CheckS2sCmd;
use std::fmt::Write;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;
use xmpp_runtime::s2s::probe::{
    load_roots, probe, Features, ProbeReport, ProbeSettings, RootStore,
};
use xmpp_runtime::s2s::{Candidate, DnsBudget, Resolver, S2sOverrides};

/// Debian's bundle of the system's trusted CAs.
/// The system CA bundle (Debian's ca-certificates).
pub(crate) const SYSTEM_CAS: &str = "/etc/ssl/certs/ca-certificates.crt";

/// Run the command; prints the report, exit 1 unless the peer is usable.
pub fn run(cmd: &CheckS2sCmd) -> ExitCode {
    let roots = match roots(cmd) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("vireo: check s2s: {e}");
            return ExitCode::FAILURE;
        }
    };
    let candidates = match candidates(cmd) {
        Ok(c) if c.is_empty() => {
            eprintln!("vireo: check s2s: {}: nothing to connect to", cmd.domain);
            return ExitCode::FAILURE;
        }
        Ok(c) => c,
        Err(e) => {
            eprintln!("vireo: check s2s: {e}");
            return ExitCode::FAILURE;
        }
    };
    let settings = ProbeSettings {
        from: cmd.from.clone(),
        roots,
        timeout: Duration::from_secs(cmd.timeout.max(1)),
    };
    let report = smol::block_on(probe(&cmd.domain, &candidates, &settings));
    print!("{}", render(&cmd.domain, &report));
    if report.ok() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn roots(cmd: &CheckS2sCmd) -> Result<Arc<RootStore>, String> {
    let path = cmd
        .ca
        .clone()
        .unwrap_or_else(|| std::path::PathBuf::from(SYSTEM_CAS));
    load_roots(&path)
}

fn candidates(cmd: &CheckS2sCmd) -> Result<Vec<Candidate>, String> {
    if let Some(addr) = cmd.route {
        return Ok(vec![Candidate {
            addr,
            direct_tls: false,
            host: addr.ip().to_string(),
        }]);
    }
    let budget = DnsBudget::default();
    let resolver = if cmd.nameserver.is_empty() {
        Resolver::from_system(budget, S2sOverrides::new()).map_err(|e| e.to_string())?
    } else {
        Resolver::new(cmd.nameserver.clone(), budget, S2sOverrides::new())
    };
    let resolution = smol::block_on(resolver.resolve(&cmd.domain, 0)).map_err(|e| e.to_string())?;
    Ok(resolution.candidates)
}

fn features(f: &Features) -> String {
    let mut parts = Vec::new();
    if f.starttls {
        parts.push(if f.starttls_required {
            "STARTTLS (required)"
        } else {
            "STARTTLS"
        });
    }
    if f.dialback {
        parts.push("dialback");
    }
    if parts.is_empty() {
        "none".into()
    } else {
        parts.join(", ")
    }
}

/// The report, one finding per line.
pub fn render(domain: &str, r: &ProbeReport) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "s2s connectivity of {domain}");
    for (i, a) in r.attempts.iter().enumerate() {
        let how = if a.candidate.direct_tls {
            "direct TLS"
        } else {
            "STARTTLS"
        };
        let _ = match &a.connected {
            Ok(()) => writeln!(
                out,
                "  {}. {} ({how}, {}): connected",
                i + 1,
                a.candidate.addr,
                a.candidate.host
            ),
            Err(e) => writeln!(
                out,
                "  {}. {} ({how}, {}): {e}",
                i + 1,
                a.candidate.addr,
                a.candidate.host
            ),
        };
    }
    if let Some(f) = &r.features {
        let _ = writeln!(out, "  stream features: {}", features(f));
    }
    match &r.tls {
        Some(Ok(session)) => {
            let _ = writeln!(out, "  TLS: {session}");
        }
        Some(Err(e)) => {
            let _ = writeln!(out, "  TLS: failed: {e}");
        }
        None => {}
    }
    if let Some(c) = &r.certificate {
        let presented: Vec<String> = c.presented.iter().map(ToString::to_string).collect();
        let _ = writeln!(out, "  certificate presents: {}", presented.join(", "));
        let _ = match &c.chain {
            Ok(()) => writeln!(out, "  certificate chain: trusted"),
            Err(e) => writeln!(out, "  certificate chain: NOT trusted: {e}"),
        };
        let _ = match &c.identity {
            Ok(m) => writeln!(out, "  certificate identity: proves {domain} ({m})"),
            Err(e) => writeln!(out, "  certificate identity: does NOT prove {domain}: {e}"),
        };
    }
    if let Some(f) = &r.secure_features {
        let _ = writeln!(out, "  stream features after TLS: {}", features(f));
    }
    if let Some(e) = &r.error {
        let _ = writeln!(out, "  stopped: {e}");
    }
    let _ = writeln!(
        out,
        "  verdict: {}",
        if r.ok() {
            "a federating server can use it"
        } else {
            "NOT usable for federation"
        }
    );
    out
}
