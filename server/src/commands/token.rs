//! `vireo token create|list|revoke`: the admin API's bearer tokens, kept
//! (hashed) in the data directory, where the running server reads them at
//! each call.

use crate::cli::TokenAction;
use crate::config::Config;
use std::time::{SystemTime, UNIX_EPOCH};
use xmpp_runtime::api_tokens::ApiTokens;

/// Run a token action; what to print.
pub fn run(cfg: &Config, action: TokenAction) -> Result<String, String> {
    std::fs::create_dir_all(&cfg.data_path)
        .map_err(|e| format!("data directory {}: {e}", cfg.data_path.display()))?;
    let tokens = ApiTokens::new(&cfg.data_path);
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    match action {
        TokenAction::Create(c) => {
            let mut random = [0u8; 32];
            getrandom::getrandom(&mut random).map_err(|e| format!("randomness: {e}"))?;
            let token = tokens
                .create(&c.name, random, now)
                .map_err(|e| e.to_string())?;
            Ok(format!(
                "{token}\n(token {:?}: shown once; use it as `Authorization: Bearer <token>` on /api/)",
                c.name
            ))
        }
        TokenAction::List(_) => {
            let list = tokens.list().map_err(|e| e.to_string())?;
            if list.is_empty() {
                return Ok("no API tokens (vireo token create NAME)".into());
            }
            Ok(list
                .iter()
                .map(|t| {
                    format!(
                        "{}\tcreated {}",
                        t.name,
                        xmpp_core::time::format_datetime(t.created.saturating_mul(1000))
                    )
                })
                .collect::<Vec<_>>()
                .join("\n"))
        }
        TokenAction::Revoke(r) => match tokens.revoke(&r.name).map_err(|e| e.to_string())? {
            true => Ok(format!("token {:?} revoked", r.name)),
            false => Err(format!("no token named {:?}", r.name)),
        },
    }
}
