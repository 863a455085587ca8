//! Account administration shared by the CLI (store opened directly) and the
//! admin socket (server running): create, change password, delete.

use crate::storage::Backend;
use xmpp_core::jid::Jid;
use xmpp_core::sasl::StoredCredentials;
use xmpp_core::storage::{StorageRequest, StorageResult};

/// Why an account operation failed; the text is shown to the operator.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AccountError {
    /// Not a valid `user@domain`.
    #[error("invalid JID {jid:?}: {reason}")]
    BadJid {
        /// What was given.
        jid: String,
        /// Why it is invalid.
        reason: String,
    },
    /// The domain is not served here.
    #[error("domain {0} is not hosted by this server (hosted: {1})")]
    UnknownDomain(String, String),
    /// `adduser` for an existing account.
    #[error("account {0} already exists")]
    Exists(String),
    /// `passwd`/`deluser` for a missing account.
    #[error("account {0} does not exist")]
    NotFound(String),
    /// The password is not acceptable (empty, invalid characters).
    #[error("unacceptable password: {0}")]
    BadPassword(String),
    /// The store failed.
    #[error("storage error: {0}")]
    Storage(String),
}

/// Parse and check an account JID against the hosted domains.
pub fn account_jid(jid: &str, domains: &[String]) -> Result<Jid, AccountError> {
    let parsed = Jid::parse(jid.trim()).map_err(|e| AccountError::BadJid {
        jid: jid.to_owned(),
        reason: e.to_string(),
    })?;
    if parsed.local().is_none() || parsed.resource().is_some() {
        return Err(AccountError::BadJid {
            jid: jid.to_owned(),
            reason: "expected user@domain".into(),
        });
    }
    if !domains.iter().any(|d| d == parsed.domain()) {
        return Err(AccountError::UnknownDomain(
            parsed.domain().to_owned(),
            domains.join(", "),
        ));
    }
    Ok(parsed)
}

fn credentials(password: &str, iterations: u32) -> Result<StoredCredentials, AccountError> {
    let mut salt = [0u8; 16];
    salt.copy_from_slice(&crate::clock::random_seed()[..16]);
    StoredCredentials::derive(password, &salt, iterations)
        .map_err(|e| AccountError::BadPassword(e.to_string()))
}

fn storage_error(r: StorageResult) -> AccountError {
    match r {
        StorageResult::Failed(e) => AccountError::Storage(e),
        other => AccountError::Storage(format!("unexpected answer {other:?}")),
    }
}

/// Create an account with a password (stored as SCRAM keys only).
pub fn add_user(
    backend: &dyn Backend,
    jid: &Jid,
    password: &str,
    iterations: u32,
) -> Result<(), AccountError> {
    // A taken name costs a read, not a PBKDF2 run (creation below still
    // refuses a name taken meanwhile).
    if let StorageResult::Credentials(Some(_)) = backend.execute(StorageRequest::LoadCredentials {
        account: jid.bare_str(),
    }) {
        return Err(AccountError::Exists(jid.bare_str()));
    }
    let credentials = credentials(password, iterations)?;
    match backend.execute(StorageRequest::CreateAccount {
        account: jid.bare_str(),
        credentials,
    }) {
        StorageResult::Done => Ok(()),
        StorageResult::Conflict => Err(AccountError::Exists(jid.bare_str())),
        other => Err(storage_error(other)),
    }
}

/// Replace an account's password.
pub fn set_password(
    backend: &dyn Backend,
    jid: &Jid,
    password: &str,
    iterations: u32,
) -> Result<(), AccountError> {
    let credentials = credentials(password, iterations)?;
    match backend.execute(StorageRequest::SetCredentials {
        account: jid.bare_str(),
        credentials,
    }) {
        StorageResult::Done => Ok(()),
        StorageResult::NotFound => Err(AccountError::NotFound(jid.bare_str())),
        other => Err(storage_error(other)),
    }
}

/// Delete an account and everything stored for it.
pub fn delete_user(backend: &dyn Backend, jid: &Jid) -> Result<(), AccountError> {
    match backend.execute(StorageRequest::DeleteAccount {
        account: jid.bare_str(),
    }) {
        StorageResult::Done => Ok(()),
        StorageResult::NotFound => Err(AccountError::NotFound(jid.bare_str())),
        other => Err(storage_error(other)),
    }
}
