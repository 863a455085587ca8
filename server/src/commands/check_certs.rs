//! `vireo check certs`: for each hosted domain, the certificate it is served
//! with, its validity period and whether its names cover the domain.
//!
//! Also home of the certificate inspection shared with `vireo cert import`:
//! [`CertInfo`] reads the identities a certificate presents the way XMPP
//! clients check them (RFC 6120 §13.7.1.2, RFC 6125): DNS-IDs (with a
//! left-most `*` wildcard), SRV-IDs (`_xmpp-client.DOMAIN`, RFC 4985) and
//! XmppAddr identifiers.

use crate::config::{Config, ConfigError};
use std::fmt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{SystemTime, UNIX_EPOCH};
use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::GeneralName;
use x509_parser::prelude::FromDer;
use xmpp_runtime::tls::config::load_certs;
use xmpp_runtime::tls::{server_tls, TlsError};

/// A certificate expiring within this many days is a warning.
pub const WARN_DAYS: i64 = 30;

/// id-on-xmppAddr (RFC 6120 §13.7.1.4).
const OID_XMPP_ADDR: &str = "1.3.6.1.5.5.7.8.5";
/// id-on-dnsSRV (RFC 4985), for SRV-IDs.
const OID_SRV_NAME: &str = "1.3.6.1.5.5.7.8.7";

/// Why a certificate could not be inspected.
#[derive(Debug, thiserror::Error)]
pub enum CertInspectError {
    /// Reading or PEM-parsing the file failed.
    #[error(transparent)]
    Tls(#[from] TlsError),
    /// The PEM block is not a valid X.509 certificate.
    #[error("{}: not a valid X.509 certificate: {reason}", path.display())]
    X509 { path: PathBuf, reason: String },
}

/// Why `vireo check certs` is not clean.
#[derive(Debug, thiserror::Error)]
pub enum CheckCertsError {
    /// Problems were found (each printed in the report).
    #[error("check certs: {errors} error(s), {warnings} warning(s)")]
    Problems { errors: usize, warnings: usize },
}

/// An identity presented by a certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Identity {
    /// A dNSName subjectAltName (may start with `*.`).
    Dns(String),
    /// An SRVName otherName, e.g. `_xmpp-client.example.com`.
    Srv(String),
    /// An XmppAddr otherName, e.g. `example.com`.
    XmppAddr(String),
}

impl fmt::Display for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Identity::Dns(n) => write!(f, "DNS:{n}"),
            Identity::Srv(n) => write!(f, "SRV:{n}"),
            Identity::XmppAddr(n) => write!(f, "xmppAddr:{n}"),
        }
    }
}

/// What `check certs` and `cert import` need to know about a certificate.
#[derive(Debug, Clone)]
pub struct CertInfo {
    /// Subject distinguished name.
    pub subject: String,
    /// Issuer distinguished name.
    pub issuer: String,
    /// Issuer and subject are the same name.
    pub self_signed: bool,
    /// Start of validity, Unix seconds.
    pub not_before: i64,
    /// End of validity, Unix seconds.
    pub not_after: i64,
    /// Identities from the subjectAltName extension.
    pub identities: Vec<Identity>,
    /// Certificates in the file (end entity plus intermediates).
    pub chain_len: usize,
}

impl CertInfo {
    /// Read the end-entity certificate (the first) of a PEM file.
    pub fn read(path: &Path) -> Result<CertInfo, CertInspectError> {
        let chain = load_certs(path)?;
        let der = chain.first().ok_or_else(|| CertInspectError::X509 {
            path: path.to_owned(),
            reason: "no certificate".into(),
        })?;
        let bad = |reason: String| CertInspectError::X509 {
            path: path.to_owned(),
            reason,
        };
        let (_, cert) = X509Certificate::from_der(der.as_ref()).map_err(|e| bad(e.to_string()))?;
        let mut identities = Vec::new();
        let san = cert
            .subject_alternative_name()
            .map_err(|e| bad(format!("subjectAltName: {e}")))?;
        for name in san.iter().flat_map(|s| s.value.general_names.iter()) {
            match name {
                GeneralName::DNSName(d) => identities.push(Identity::Dns(d.to_string())),
                GeneralName::OtherName(oid, value) => {
                    let oid = oid.to_id_string();
                    if let Some(s) = other_name_string(value) {
                        if oid == OID_XMPP_ADDR {
                            identities.push(Identity::XmppAddr(s));
                        } else if oid == OID_SRV_NAME {
                            identities.push(Identity::Srv(s));
                        }
                    }
                }
                _ => {}
            }
        }
        let subject = cert.subject().to_string();
        let issuer = cert.issuer().to_string();
        Ok(CertInfo {
            self_signed: cert.subject().as_raw() == cert.issuer().as_raw(),
            subject,
            issuer,
            not_before: cert.validity().not_before.timestamp(),
            not_after: cert.validity().not_after.timestamp(),
            identities,
            chain_len: chain.len(),
        })
    }

    /// The identity that covers `domain` for client connections, if any.
    pub fn covering(&self, domain: &str) -> Option<&Identity> {
        let ascii = domain_to_ascii(domain);
        self.identities.iter().find(|id| match id {
            Identity::Dns(name) => dns_matches(name, &ascii),
            Identity::Srv(name) => {
                let name = name.to_ascii_lowercase();
                ["_xmpp-client.", "_xmpp-server."]
                    .iter()
                    .any(|svc| name.strip_prefix(svc) == Some(ascii.as_str()))
            }
            Identity::XmppAddr(addr) => addr.eq_ignore_ascii_case(domain) || *addr == ascii,
        })
    }

    /// The names, for messages ("none" when the certificate has no SAN).
    pub fn names(&self) -> String {
        if self.identities.is_empty() {
            "no subjectAltName (clients ignore the subject CN)".into()
        } else {
            self.identities
                .iter()
                .map(Identity::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        }
    }
}

/// The string inside an otherName value: `[0] EXPLICIT` around a
/// UTF8String (XmppAddr) or IA5String (SRVName).
fn other_name_string(value: &[u8]) -> Option<String> {
    fn tlv(b: &[u8]) -> Option<(u8, &[u8])> {
        let (&tag, rest) = b.split_first()?;
        let (&first, rest) = rest.split_first()?;
        let (len, rest) = if first < 0x80 {
            (usize::from(first), rest)
        } else {
            let n = usize::from(first & 0x7f);
            if n == 0 || n > 2 || rest.len() < n {
                return None;
            }
            let len = rest[..n]
                .iter()
                .fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
            (len, &rest[n..])
        };
        rest.get(..len).map(|v| (tag, v))
    }
    let (tag, inner) = tlv(value)?;
    if tag != 0xa0 {
        return None;
    }
    let (tag, s) = tlv(inner)?;
    // UTF8String or IA5String.
    if tag != 0x0c && tag != 0x16 {
        return None;
    }
    String::from_utf8(s.to_vec()).ok()
}

/// The A-label form of a domain (certificates carry A-labels).
pub fn domain_to_ascii(domain: &str) -> String {
    idna::domain_to_ascii(domain)
        .unwrap_or_else(|_| domain.to_owned())
        .to_ascii_lowercase()
}

/// RFC 6125 §6.4.3: exact match, or `*` as the whole left-most label
/// matching exactly one label.
fn dns_matches(pattern: &str, domain: &str) -> bool {
    let pattern = pattern.trim_end_matches('.').to_ascii_lowercase();
    let domain = domain.trim_end_matches('.');
    if pattern == domain {
        return true;
    }
    match (pattern.strip_prefix("*."), domain.split_once('.')) {
        (Some(rest), Some((label, dom_rest))) => {
            !label.is_empty() && rest == dom_rest && rest.contains('.')
        }
        _ => false,
    }
}

/// Now, Unix seconds.
pub fn now_secs() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// `YYYY-MM-DD HH:MM:SSZ` for Unix seconds (UTC, proleptic Gregorian).
pub fn fmt_utc(secs: i64) -> String {
    let (y, mo, d, h, mi, s) = civil(secs);
    format!("{y:04}-{mo:02}-{d:02} {h:02}:{mi:02}:{s:02}Z")
}

/// `YYYYMMDDTHHMMSSZ` for Unix seconds, for file names.
pub fn fmt_utc_compact(secs: i64) -> String {
    let (y, mo, d, h, mi, s) = civil(secs);
    format!("{y:04}{mo:02}{d:02}T{h:02}{mi:02}{s:02}Z")
}

/// Days-to-civil (H. Hinnant's algorithm).
fn civil(secs: i64) -> (i64, u32, u32, u32, u32, u32) {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    let as_u32 = |v: i64| u32::try_from(v).unwrap_or(0);
    (
        y,
        as_u32(m),
        as_u32(d),
        as_u32(rem / 3600),
        as_u32(rem % 3600 / 60),
        as_u32(rem % 60),
    )
}

/// Severity of a finding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Level {
    Ok,
    Info,
    Warn,
    Error,
}

impl Level {
    fn mark(self) -> &'static str {
        match self {
            Level::Ok => "✓",
            Level::Info => "·",
            Level::Warn => "⚠",
            Level::Error => "✗",
        }
    }
}

/// Collects the report and counts problems.
#[derive(Default)]
struct Report {
    errors: usize,
    warnings: usize,
}

impl Report {
    fn line(&mut self, level: Level, label: &str, text: impl fmt::Display) {
        match level {
            Level::Warn => self.warnings += 1,
            Level::Error => self.errors += 1,
            Level::Ok | Level::Info => {}
        }
        println!("  {} {label:<12} {text}", level.mark());
    }
}

/// Validity findings: expired / not yet valid are errors, expiring soon a warning.
fn validity(info: &CertInfo, now: i64) -> (Level, String) {
    let left_days = (info.not_after - now).div_euclid(86_400);
    let range = format!("{} → {}", fmt_utc(info.not_before), fmt_utc(info.not_after));
    if now > info.not_after {
        (
            Level::Error,
            format!(
                "EXPIRED on {} ({} days ago); {range}",
                fmt_utc(info.not_after),
                -left_days
            ),
        )
    } else if now < info.not_before {
        (
            Level::Error,
            format!("not valid before {}; {range}", fmt_utc(info.not_before)),
        )
    } else if left_days < WARN_DAYS {
        (
            Level::Warn,
            format!("expires in {left_days} days (renew before {WARN_DAYS}); {range}"),
        )
    } else {
        (Level::Ok, format!("{range} ({left_days} days left)"))
    }
}

/// Where the certificate served for every domain comes from, mirroring
/// `vireo run`: configured, else `DATA/certs/<first domain>.crt`.
fn served(cfg: &Config) -> (Option<(PathBuf, PathBuf)>, String) {
    if let (Some(c), Some(k)) = (&cfg.certificate, &cfg.key) {
        return (
            Some((c.clone(), k.clone())),
            format!(
                "configured (tls.certificate, {})",
                cfg.origin("tls.certificate")
            ),
        );
    }
    let first = cfg.domains.first().cloned().unwrap_or_default();
    let dir = cfg.cert_dir();
    let cert = dir.join(format!("{first}.crt"));
    let key = dir.join(format!("{first}.key"));
    if cert.exists() && key.exists() {
        (
            Some((cert, key)),
            "from the data directory (generated by `vireo run` or imported)".into(),
        )
    } else {
        (
            None,
            format!(
                "none yet: no tls.certificate configured and no {}; `vireo run` will \
                 generate a self-signed one (or use `vireo cert import {first} CERT KEY`)",
                cert.display()
            ),
        )
    }
}

/// The configuration does not load (often because of the very certificate
/// to diagnose): print the loader's errors, then check the certificates of
/// the configuration as far as it could be built. Exit 2 when nothing could
/// be built, else 1 (the configuration has errors, so it is not clean).
pub fn without_config(path: Option<&Path>, e: &ConfigError) -> ExitCode {
    let env = |k: &str| std::env::var(k).ok();
    let report = Config::check(path, &env);
    println!("the configuration has errors (`vireo check config` lists them all):\n{e}\n");
    match report.config {
        Some(cfg) => {
            if let Err(problems) = run(&cfg) {
                eprintln!("vireo: {problems}; the configuration does not load");
            } else {
                eprintln!("vireo: check certs: the configuration does not load");
            }
            ExitCode::FAILURE
        }
        None => {
            eprintln!("vireo: configuration error: {e}");
            ExitCode::from(2)
        }
    }
}

/// Check every hosted domain's certificate; print the report.
pub fn run(cfg: &Config) -> Result<String, CheckCertsError> {
    let mut report = Report::default();
    let now = now_secs();
    let (served, how) = served(cfg);
    println!("certificate for all hosted domains: {how}");
    let mut info = None;
    match &served {
        None => report.line(Level::Warn, "certificate", "none"),
        Some((cert, key)) => {
            match CertInfo::read(cert) {
                Ok(i) => {
                    report.line(Level::Ok, "certificate", cert.display());
                    let chain = if i.chain_len > 1 {
                        format!(" (+{} chain certificates)", i.chain_len - 1)
                    } else {
                        String::new()
                    };
                    report.line(Level::Info, "subject", format!("{}{chain}", i.subject));
                    if i.self_signed {
                        report.line(
                            Level::Info,
                            "issuer",
                            "self-signed: clients will not trust it unless told to",
                        );
                    } else {
                        report.line(Level::Info, "issuer", &i.issuer);
                    }
                    let (level, text) = validity(&i, now);
                    report.line(level, "validity", text);
                    info = Some(i);
                }
                Err(e) => report.line(Level::Error, "certificate", e),
            }
            match server_tls(cert, key) {
                Ok(_) => report.line(
                    Level::Ok,
                    "key",
                    format!("{} matches the certificate", key.display()),
                ),
                Err(e) => report.line(Level::Error, "key", e),
            }
        }
    }
    println!();
    for (i, domain) in cfg.domains.iter().enumerate() {
        println!("{domain}");
        match &info {
            Some(info) => match info.covering(domain) {
                Some(id) => report.line(Level::Ok, "names", format!("covered by {id}")),
                None => report.line(
                    Level::Error,
                    "names",
                    format!(
                        "NOT covered by the certificate (it names: {}); clients will \
                         refuse the connection",
                        info.names()
                    ),
                ),
            },
            None => report.line(Level::Info, "names", "not checked: no usable certificate"),
        }
        // A domain with its own certificate and key (its domain file) gets
        // that certificate by SNI; one in DATA/certs only is not served.
        let served_cert = served.as_ref().map(|(c, _)| c.as_path());
        let vhost = cfg.vhost(domain);
        let sni = vhost.and_then(|v| match (&v.certificate, &v.key) {
            (Some((c, o)), Some(_)) => Some((c.clone(), o.to_string())),
            _ => None,
        });
        let own = match sni.clone() {
            Some(own) => Some(own),
            None => {
                let file = cfg.cert_dir().join(format!("{domain}.crt"));
                (i > 0 && file.exists()).then(|| (file, "data directory".to_owned()))
            }
        };
        if let Some((own, origin)) = own.filter(|(p, _)| Some(p.as_path()) != served_cert) {
            if sni.is_some() {
                report.line(
                    Level::Ok,
                    "served by SNI",
                    format!("{} ({origin})", own.display()),
                );
            } else {
                report.line(
                    Level::Warn,
                    "not served",
                    format!(
                        "{} ({origin}): only certificates configured in a domain file                          (with their key) are served by SNI",
                        own.display()
                    ),
                );
            }
            match CertInfo::read(&own) {
                Ok(info) => {
                    if info.covering(domain).is_none() {
                        let level = if sni.is_some() {
                            Level::Error
                        } else {
                            Level::Info
                        };
                        report.line(
                            level,
                            "its names",
                            format!("{} (does not cover {domain})", info.names()),
                        );
                    }
                    let (level, text) = validity(&info, now);
                    if level != Level::Ok {
                        report.line(level, "its validity", text);
                    }
                }
                Err(e) => report.line(Level::Error, "its file", e),
            }
        }
        // Service hosts (MUC, upload, ...) are checked here once they exist.
    }
    println!();
    let domains = cfg.domains.len();
    if report.errors == 0 && report.warnings == 0 {
        Ok(format!(
            "check certs: clean ({domains} domain{})",
            if domains == 1 { "" } else { "s" }
        ))
    } else {
        println!("{} error(s), {} warning(s)", report.errors, report.warnings);
        Err(CheckCertsError::Problems {
            errors: report.errors,
            warnings: report.warnings,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards_match_one_label() {
        assert!(dns_matches("example.com", "example.com"));
        assert!(dns_matches("EXAMPLE.com.", "example.com"));
        assert!(dns_matches("*.example.com", "chat.example.com"));
        assert!(!dns_matches("*.example.com", "example.com"));
        assert!(!dns_matches("*.example.com", "a.b.example.com"));
        assert!(!dns_matches("*.com", "example.com"));
        assert!(!dns_matches("other.org", "example.com"));
    }

    #[test]
    fn other_names_are_decoded() {
        // [0] { UTF8String "example.com" }
        let mut v = vec![0xa0, 13, 0x0c, 11];
        v.extend_from_slice(b"example.com");
        assert_eq!(other_name_string(&v).as_deref(), Some("example.com"));
        assert_eq!(other_name_string(&[0xa0, 5, 0x0c, 9]), None);
        assert_eq!(other_name_string(&[]), None);
    }

    #[test]
    fn civil_dates() {
        assert_eq!(fmt_utc(0), "1970-01-01 00:00:00Z");
        assert_eq!(fmt_utc(951_782_400), "2000-02-29 00:00:00Z");
        assert_eq!(fmt_utc_compact(1_795_000_000), "20261118T110640Z");
        assert_eq!(fmt_utc(-1), "1969-12-31 23:59:59Z");
    }
}
