//! `vireo cert generate DOMAIN`.

use crate::config::Config;
use std::path::PathBuf;
use xmpp_runtime::tls::generate_self_signed;

/// Generate a self-signed certificate and print its paths.
pub fn generate(cfg: &Config, domain: &str, out: Option<PathBuf>) -> Result<(), String> {
    let domain = xmpp_core::jid::Jid::domain_jid(domain)
        .map_err(|e| format!("invalid domain {domain:?}: {e}"))?;
    let dir = out.unwrap_or_else(|| cfg.cert_dir());
    let paths =
        generate_self_signed(&[domain.domain().to_owned()], &dir).map_err(|e| e.to_string())?;
    println!("certificate: {}", paths.cert.display());
    println!("key:         {}", paths.key.display());
    Ok(())
}
