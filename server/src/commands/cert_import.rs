//! `vireo cert import DOMAIN CERT KEY`: validate a certificate and its key
//! and install them as `DATA/certs/DOMAIN.crt` / `.key` (key mode 0600).
//!
//! Validation: both files parse as PEM, rustls accepts the pair (the key
//! matches the certificate, the key type is supported), the certificate's
//! names cover DOMAIN and it has not expired.

use super::check_certs::{fmt_utc, now_secs, CertInfo, CertInspectError, WARN_DAYS};
use crate::config::{Config, Origin, Source};
use std::path::{Path, PathBuf};
use xmpp_core::jid::Jid;
use xmpp_runtime::tls::{server_tls, TlsError};

/// Why an import was refused.
#[derive(Debug, thiserror::Error)]
pub enum CertImportError {
    /// DOMAIN is not a domain name.
    #[error("invalid domain {domain:?}: {reason}")]
    BadDomain { domain: String, reason: String },
    /// PEM parsing failed or rustls refused the pair (e.g. the key does not
    /// belong to the certificate).
    #[error("{0}")]
    Tls(#[from] TlsError),
    /// The certificate could not be inspected.
    #[error("{0}")]
    Inspect(#[from] CertInspectError),
    /// The certificate does not name DOMAIN.
    #[error("{}: does not cover {domain} (it names: {names})", cert.display())]
    NotCovered {
        cert: PathBuf,
        domain: String,
        names: String,
    },
    /// The certificate is past its end date.
    #[error("{}: expired on {}", cert.display(), fmt_utc(*not_after))]
    Expired { cert: PathBuf, not_after: i64 },
    /// Writing the installed copies failed.
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Validate and install; the returned text tells the operator where the
/// files went and how to configure them.
pub fn run(cfg: &Config, domain: &str, cert: &Path, key: &Path) -> Result<String, CertImportError> {
    let domain = checked_domain(domain)?;
    // PEM parse of both files and the key/certificate match.
    server_tls(cert, key)?;
    let info = CertInfo::read(cert)?;
    let covering = info
        .covering(&domain)
        .ok_or_else(|| CertImportError::NotCovered {
            cert: cert.to_owned(),
            domain: domain.clone(),
            names: info.names(),
        })?
        .clone();
    let now = now_secs();
    if now > info.not_after {
        return Err(CertImportError::Expired {
            cert: cert.to_owned(),
            not_after: info.not_after,
        });
    }
    let mut notes = Vec::new();
    let days_left = (info.not_after - now).div_euclid(86_400);
    if days_left < WARN_DAYS {
        notes.push(format!(
            "warning: the certificate expires in {days_left} days ({})",
            fmt_utc(info.not_after)
        ));
    }
    if now < info.not_before {
        notes.push(format!(
            "warning: the certificate is not valid before {}",
            fmt_utc(info.not_before)
        ));
    }
    if !cfg.domains.contains(&domain) {
        notes.push(format!(
            "warning: {domain} is not a hosted domain (hosted: {})",
            cfg.domains.join(", ")
        ));
    }

    let cert_pem = read(cert)?;
    let key_pem = read(key)?;
    let dir = cfg.cert_dir();
    std::fs::create_dir_all(&dir).map_err(|source| CertImportError::Io {
        path: dir.clone(),
        source,
    })?;
    let dir = std::fs::canonicalize(&dir).map_err(|source| CertImportError::Io {
        path: dir.clone(),
        source,
    })?;
    let cert_dest = dir.join(format!("{domain}.crt"));
    let key_dest = dir.join(format!("{domain}.key"));
    let replaced = cert_dest.exists() || key_dest.exists();
    // Key first: a certificate never sits next to a key it does not match
    // for longer than one rename.
    write_atomically(&key_dest, &key_pem, 0o600)?;
    write_atomically(&cert_dest, &cert_pem, 0o644)?;

    let mut out = format!(
        "{} the certificate for {domain} ({covering}, valid until {}):\n\
         \x20 certificate: {}\n\
         \x20 key:         {} (mode 0600)\n",
        if replaced { "replaced" } else { "imported" },
        fmt_utc(info.not_after),
        cert_dest.display(),
        key_dest.display(),
    );
    out.push_str(&how_to_serve(cfg, &domain, &cert_dest, &key_dest));
    for n in notes {
        out.push_str(&format!("\n{n}"));
    }
    Ok(out.trim_end().to_owned())
}

/// Where the domain's certificate is configured now, and the lines that
/// make the server use the imported files (a tree takes flat keys in
/// `domains/DOMAIN.toml`; a single file takes a `[tls]` table).
fn how_to_serve(cfg: &Config, domain: &str, cert: &Path, key: &Path) -> String {
    let quote = |p: &Path| toml::Value::String(p.display().to_string()).to_string();
    let flat = format!("certificate = {}\nkey = {}\n", quote(cert), quote(key));
    let lines = match &cfg.source {
        Source::Tree(_) => flat,
        Source::File(_) | Source::Defaults => format!("[tls]\n{flat}"),
    };
    let place = match &cfg.source {
        Source::Tree(root) => format!(
            "in {}",
            root.join("domains")
                .join(format!("{domain}.toml"))
                .display()
        ),
        Source::File(p) => format!("in {}", p.display()),
        Source::Defaults => "in a configuration file (`vireo --config FILE`)".to_owned(),
    };
    let current: Option<(PathBuf, Origin)> = cfg
        .vhost(domain)
        .and_then(|v| v.certificate.clone())
        .or_else(|| {
            cfg.certificate
                .clone()
                .map(|c| (c, cfg.origin("tls.certificate")))
        });
    let same = |a: &Path, b: &Path| match (std::fs::canonicalize(a), std::fs::canonicalize(b)) {
        (Ok(a), Ok(b)) => a == b,
        _ => a == b,
    };
    let first = cfg.domains.first().map(String::as_str) == Some(domain);
    match current {
        Some((path, _)) if same(&path, cert) => {
            "The configuration already serves these files; `vireo reload` (or a restart) \
             picks up the new certificate.\n"
                .to_owned()
        }
        Some((path, origin)) => format!(
            "{domain} is configured with {} (set at {origin}); to serve the imported \
             files, replace certificate and key there with:\n\n{lines}",
            path.display()
        ),
        None if first => format!(
            "No certificate is configured and {domain} is the first hosted domain: \
             `vireo run` serves these files as they are. To name them explicitly, \
             {place}:\n\n{lines}"
        ),
        None => format!(
            "To serve them, {place}:\n\n{lines}\n(this version serves one certificate \
             for every domain: make sure its names cover them all, see `vireo check certs`)\n"
        ),
    }
}

/// A domain name usable as a file name.
fn checked_domain(domain: &str) -> Result<String, CertImportError> {
    let bad = |reason: String| CertImportError::BadDomain {
        domain: domain.to_owned(),
        reason,
    };
    let jid = Jid::domain_jid(domain).map_err(|e| bad(e.to_string()))?;
    if jid.local().is_some() || jid.resource().is_some() {
        return Err(bad("expected a bare domain".into()));
    }
    let d = jid.domain().to_owned();
    if d.is_empty() || d.starts_with('.') || d.contains(['/', '\\', '\0']) {
        return Err(bad("cannot name a certificate file".into()));
    }
    Ok(d)
}

fn read(path: &Path) -> Result<Vec<u8>, CertImportError> {
    std::fs::read(path).map_err(|source| CertImportError::Io {
        path: path.to_owned(),
        source,
    })
}

/// Write via a sibling temporary file created with `mode`, fsync, rename.
fn write_atomically(path: &Path, data: &[u8], mode: u32) -> Result<(), CertImportError> {
    xmpp_runtime::tls::write_file_atomically(path, data, mode).map_err(|source| {
        CertImportError::Io {
            path: path.to_owned(),
            source,
        }
    })
}
