//! `vireo check dns DOMAIN`: how this server would find DOMAIN's server,
//! like `prosodyctl check dns` for the remote side: both s2s SRV services,
//! the addresses of each target, the A/AAAA fallback when there is no SRV
//! record, and the candidates in the order a connection would try them.
//!
//! It shows DNS only. A static route for DOMAIN in `VIREO_S2S_OVERRIDES`
//! is mentioned (it would win), but does not change the result.

use crate::cli::CheckDnsCmd;
use std::fmt::Write;
use std::hash::{BuildHasher, Hasher};
use std::net::SocketAddr;
use std::process::ExitCode;
use xmpp_runtime::s2s::{
    DnsBudget, FamilyOutcome, HostLookup, Resolution, Resolver, Route, S2sOverrides, SrvOutcome,
};

/// Run the command; prints the report, exit 1 when nothing is reachable.
pub fn run(cmd: &CheckDnsCmd, env: &dyn Fn(&str) -> Option<String>) -> ExitCode {
    let budget = DnsBudget::default();
    let resolver = if cmd.nameserver.is_empty() {
        match Resolver::from_system(budget, S2sOverrides::new()) {
            Ok(r) => r,
            Err(e) => {
                eprintln!("vireo: check dns: no nameserver: {e}");
                return ExitCode::FAILURE;
            }
        }
    } else {
        Resolver::new(cmd.nameserver.clone(), budget, S2sOverrides::new())
    };
    // Any value will do: it only picks among equally weighted records.
    let seed = std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish();
    let resolution = match smol::block_on(resolver.resolve(&cmd.domain, seed)) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("vireo: check dns: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut text = render(&resolution, resolver.nameservers());
    if let Some(note) = override_note(&resolution.domain, env) {
        text.push_str(&note);
    }
    print!("{text}");
    if resolution.candidates.is_empty() {
        eprintln!(
            "vireo: check dns: {}: nothing to connect to",
            resolution.domain
        );
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

/// The report for one resolution.
pub fn render(r: &Resolution, nameservers: &[SocketAddr]) -> String {
    let mut out = String::new();
    let servers: Vec<String> = nameservers.iter().map(SocketAddr::to_string).collect();
    let _ = writeln!(
        out,
        "DNS for {} (nameservers: {})",
        r.domain,
        servers.join(", ")
    );
    for s in &r.services {
        let _ = writeln!(out, "\n{} SRV:", s.name);
        match &s.outcome {
            SrvOutcome::Records(records) => {
                for rec in records {
                    let _ = writeln!(
                        out,
                        "    priority {} weight {} port {} target {}",
                        rec.priority, rec.weight, rec.port, rec.target
                    );
                }
                if s.dropped > 0 {
                    let _ = writeln!(out, "    ({} more ignored: over the budget)", s.dropped);
                }
            }
            SrvOutcome::NotAvailable => {
                let what = if s.service.direct_tls() {
                    "direct TLS"
                } else {
                    "server-to-server"
                };
                let _ = writeln!(out, "    \".\": {what} is not offered by this domain");
            }
            SrvOutcome::NoRecords => {
                let _ = writeln!(out, "    no record");
            }
            SrvOutcome::NxDomain => {
                let _ = writeln!(out, "    no record (name does not exist)");
            }
            SrvOutcome::Failed(e) => {
                let _ = writeln!(out, "    lookup failed: {e}");
            }
        }
    }
    match &r.route {
        Route::Fallback => {
            let _ = writeln!(
                out,
                "\nNo SRV record: falling back to {}'s own addresses on port {} (RFC 6120 §3.2.2).",
                r.domain,
                xmpp_runtime::s2s::XMPP_SERVER_PORT
            );
        }
        Route::NotAvailable => {
            let _ = writeln!(
                out,
                "\nThe domain says it takes no server-to-server connections; no A/AAAA fallback."
            );
        }
        Route::IpLiteral => {
            let _ = writeln!(out, "\n{} is an IP address: no DNS needed.", r.domain);
        }
        Route::Override(target) => {
            let _ = writeln!(out, "\nStatic route: {target}.");
        }
        Route::Srv => {}
    }
    if !r.hosts.is_empty() {
        let _ = writeln!(out, "\nAddresses:");
        for h in &r.hosts {
            let _ = writeln!(out, "    {}", host_line(h));
        }
    }
    let _ = writeln!(out, "\nConnection order:");
    if r.candidates.is_empty() {
        let _ = writeln!(out, "    (nothing to connect to)");
    }
    for (i, c) in r.candidates.iter().enumerate() {
        let how = if c.direct_tls {
            "direct TLS"
        } else {
            "STARTTLS"
        };
        let _ = writeln!(out, "    {}. {} {how} ({})", i + 1, c.addr, c.host);
    }
    if r.dropped_candidates > 0 {
        let _ = writeln!(
            out,
            "    ({} more left out: over the budget)",
            r.dropped_candidates
        );
    }
    out
}

fn host_line(h: &HostLookup) -> String {
    let mut line = format!("{}:", h.host);
    if h.addresses.is_empty() {
        line.push_str(" no address");
    } else {
        let addrs: Vec<String> = h.addresses.iter().map(ToString::to_string).collect();
        let _ = write!(line, " {}", addrs.join(", "));
    }
    let mut notes = Vec::new();
    for (family, outcome) in [("AAAA", &h.ipv6), ("A", &h.ipv4)] {
        match outcome {
            FamilyOutcome::Found(_) => {}
            FamilyOutcome::NoRecords => notes.push(format!("no {family}")),
            FamilyOutcome::NxDomain => notes.push(format!("{family}: name does not exist")),
            FamilyOutcome::Failed(e) => notes.push(format!("{family} lookup failed: {e}")),
        }
    }
    if h.dropped > 0 {
        notes.push(format!("{} more over the budget", h.dropped));
    }
    if !notes.is_empty() {
        let _ = write!(line, " ({})", notes.join("; "));
    }
    line
}

/// A line about `VIREO_S2S_OVERRIDES`, when it routes `domain` or cannot
/// be read.
fn override_note(domain: &str, env: &dyn Fn(&str) -> Option<String>) -> Option<String> {
    let value = env("VIREO_S2S_OVERRIDES")?;
    match S2sOverrides::parse_env(&value) {
        Ok(o) => o.get(domain).map(|t| {
            format!("\nNote: VIREO_S2S_OVERRIDES routes {domain} to {t}; the server would use that, not DNS.\n")
        }),
        Err(e) => Some(format!("\nWarning: VIREO_S2S_OVERRIDES: {e}\n")),
    }
}
