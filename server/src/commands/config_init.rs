//! `vireo config init DIR [--domain D] [--environment E]`: write a complete,
//! commented configuration tree and a self-signed certificate for the
//! domain.

use crate::config::schema::ENVIRONMENTS;
use crate::config::templates;
use std::path::{Path, PathBuf};
use xmpp_core::jid::Jid;
use xmpp_runtime::tls::generate_self_signed;

/// Why the tree could not be written.
#[derive(Debug, thiserror::Error)]
pub enum InitError {
    #[error("{0:?} is not a valid domain name")]
    Domain(String),
    #[error("unknown environment {0:?} (use one of: production, development, docker)")]
    Environment(String),
    #[error("{} already holds a configuration (vireo.toml); use --force to overwrite it", .0.display())]
    Exists(PathBuf),
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("certificate for {domain}: {message}")]
    Certificate { domain: String, message: String },
}

/// Write the tree; returns what to tell the user.
pub fn run(
    dir: &Path,
    domain: Option<&str>,
    environment: Option<&str>,
    force: bool,
) -> Result<String, InitError> {
    let domain = domain.unwrap_or("localhost");
    let domain = match Jid::domain_jid(domain) {
        Ok(j) if j.local().is_none() && j.resource().is_none() => j.domain().to_owned(),
        _ => return Err(InitError::Domain(domain.to_owned())),
    };
    let environment = environment.unwrap_or("production");
    if !ENVIRONMENTS.contains(&environment) {
        return Err(InitError::Environment(environment.to_owned()));
    }
    if dir.join("vireo.toml").exists() && !force {
        return Err(InitError::Exists(dir.to_owned()));
    }
    let files = templates::tree(&domain, environment);
    for (rel, text) in &files {
        let path = dir.join(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|source| InitError::Io {
                path: parent.to_owned(),
                source,
            })?;
        }
        std::fs::write(&path, text).map_err(|source| InitError::Io {
            path: path.clone(),
            source,
        })?;
    }
    let certs = dir.join("certs");
    let paths = generate_self_signed(std::slice::from_ref(&domain), &certs).map_err(|e| {
        InitError::Certificate {
            domain: domain.clone(),
            message: e.to_string(),
        }
    })?;
    Ok(format!(
        "wrote {} files to {} (environment {environment}, domain {domain})\n\
         generated a self-signed certificate {} (clients will not trust it; \
         replace it with `vireo cert import {domain} CERT KEY`)\n\
         next: vireo --config {} check config",
        files.len(),
        dir.display(),
        paths.cert.display(),
        dir.display(),
    ))
}
