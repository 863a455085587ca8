//! Bearer tokens for the admin API, created by `vireo token create`: the
//! token is shown once; the data directory keeps only its SHA-256 (a
//! random 256-bit token needs no slow hash: there is nothing to guess), in
//! `api-tokens`, owner-only, one `name<TAB>hash<TAB>created` line each.
//! The server reads the file at each call, so a token created or revoked
//! while it runs counts at once.

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine as _;
use sha2::{Digest, Sha256};
use std::fs;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// The file's name in the data directory.
pub const FILE_NAME: &str = "api-tokens";

/// Tokens start with this, so a leaked one is recognisable in a log or a
/// repository scan.
const PREFIX: &str = "vireo_";

/// Why the token file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("token file {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("a token named {0:?} exists already")]
    Exists(String),
    #[error("a token name is 1 to 64 letters, digits, '-', '_' or '.'")]
    BadName,
}

/// One token, as listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenInfo {
    pub name: String,
    /// Unix seconds.
    pub created: u64,
}

/// The tokens of a data directory.
#[derive(Debug, Clone)]
pub struct ApiTokens {
    path: PathBuf,
}

impl ApiTokens {
    /// The tokens kept in `data_dir`.
    pub fn new(data_dir: &Path) -> ApiTokens {
        ApiTokens {
            path: data_dir.join(FILE_NAME),
        }
    }

    fn io(&self, source: std::io::Error) -> TokenError {
        TokenError::Io {
            path: self.path.clone(),
            source,
        }
    }

    fn lines(&self) -> Result<Vec<(String, String, u64)>, TokenError> {
        let text = match fs::read_to_string(&self.path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(e) => return Err(self.io(e)),
        };
        Ok(text
            .lines()
            .filter_map(|l| {
                let mut parts = l.split('\t');
                let name = parts.next()?.to_owned();
                let hash = parts.next()?.to_owned();
                let created = parts.next()?.parse().ok()?;
                Some((name, hash, created))
            })
            .collect())
    }

    fn write(&self, lines: &[(String, String, u64)]) -> Result<(), TokenError> {
        let tmp = self.path.with_extension("tmp");
        let mut f = fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(|e| self.io(e))?;
        for (name, hash, created) in lines {
            writeln!(f, "{name}\t{hash}\t{created}").map_err(|e| self.io(e))?;
        }
        f.sync_all().map_err(|e| self.io(e))?;
        fs::rename(&tmp, &self.path).map_err(|e| self.io(e))
    }

    /// A new token named `name`, from 32 bytes of `random`; the token
    /// itself is returned, never stored.
    pub fn create(&self, name: &str, random: [u8; 32], now_s: u64) -> Result<String, TokenError> {
        let ok = !name.is_empty()
            && name.len() <= 64
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b));
        if !ok {
            return Err(TokenError::BadName);
        }
        let mut lines = self.lines()?;
        if lines.iter().any(|(n, _, _)| n == name) {
            return Err(TokenError::Exists(name.to_owned()));
        }
        let token = format!("{PREFIX}{}", B64.encode(random));
        lines.push((name.to_owned(), hash(&token), now_s));
        self.write(&lines)?;
        Ok(token)
    }

    /// The tokens, without their secrets.
    pub fn list(&self) -> Result<Vec<TokenInfo>, TokenError> {
        Ok(self
            .lines()?
            .into_iter()
            .map(|(name, _, created)| TokenInfo { name, created })
            .collect())
    }

    /// Remove the token `name`; false when there is none.
    pub fn revoke(&self, name: &str) -> Result<bool, TokenError> {
        let mut lines = self.lines()?;
        let before = lines.len();
        lines.retain(|(n, _, _)| n != name);
        if lines.len() == before {
            return Ok(false);
        }
        self.write(&lines)?;
        Ok(true)
    }

    /// The name of the token `presented` is, if it is one.
    pub fn check(&self, presented: &str) -> Option<String> {
        let wanted = hash(presented);
        let lines = self.lines().ok()?;
        let mut found = None;
        // Every line compared, each in constant time: how long this takes
        // says nothing about the tokens.
        for (name, stored, _) in lines {
            if constant_time_eq(stored.as_bytes(), wanted.as_bytes()) {
                found = Some(name);
            }
        }
        found
    }
}

fn hash(token: &str) -> String {
    Sha256::digest(token.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn created_tokens_check_until_revoked() {
        let dir = tempfile::tempdir().expect("dir");
        let tokens = ApiTokens::new(dir.path());
        let t = tokens.create("ci", [7; 32], 100).expect("create");
        assert!(t.starts_with("vireo_"));
        assert_eq!(tokens.check(&t).as_deref(), Some("ci"));
        assert_eq!(tokens.check("vireo_nope"), None);
        assert!(matches!(
            tokens.create("ci", [8; 32], 100),
            Err(TokenError::Exists(_))
        ));
        assert!(matches!(
            tokens.create("a b", [8; 32], 100),
            Err(TokenError::BadName)
        ));
        let text = std::fs::read_to_string(dir.path().join(FILE_NAME)).expect("file");
        assert!(!text.contains(&t), "only the hash is kept");
        assert_eq!(tokens.list().expect("list")[0].name, "ci");
        assert!(tokens.revoke("ci").expect("revoke"));
        assert_eq!(tokens.check(&t), None);
        assert!(!tokens.revoke("ci").expect("revoke"));
    }
}
