//! XEP-0077 account operations for c2s streams: the per-address limit on
//! new accounts (`registration.rs`), the failure backoff shared with
//! authentication (every refused or failed registration counts, so probing
//! names or hammering the limit slows down), a check that the name is free
//! before any PBKDF2 run, then the same credential derivation and store
//! calls as `vireo adduser`/`passwd` (`accounts.rs`) in the bounded
//! key-derivation pool, because PBKDF2 is deliberately slow. PLAIN password
//! checks run in that pool too.

use crate::accounts::{add_user, set_password, AccountError};
use crate::clock::now_ms;
use crate::kdf_pool::KdfPool;
use crate::limiters::Limiters;
use crate::storage::Backend;
use std::net::IpAddr;
use std::sync::Arc;
use xmpp_core::jid::Jid;
use xmpp_core::modules::register::{AccountOp, AccountOpResult};
use xmpp_core::storage::{StorageRequest, StorageResult};
use xmpp_core::stream::PasswordCheck;

/// What a c2s connection's account work uses.
pub(crate) struct AccountOps {
    pub(crate) backend: Arc<dyn Backend>,
    pub(crate) kdf: Arc<KdfPool>,
    pub(crate) limiters: Arc<Limiters>,
}

impl AccountOps {
    /// Check a PLAIN password, in the key-derivation pool. An account with
    /// one SCRAM hash's keys (imported) gets both from a matching password,
    /// stored unless its credentials changed since they were read.
    pub(crate) async fn check_password(&self, check: PasswordCheck) -> bool {
        let verdict = self.kdf.run(move || check.verdict()).await;
        if let Some(upgrade) = verdict.upgrade {
            let backend = self.backend.clone();
            let checked = verdict.checked;
            smol::unblock(move || {
                let StorageRequest::SetCredentials { account, .. } = &upgrade else {
                    return;
                };
                let account = account.clone();
                let current = backend.execute(StorageRequest::LoadCredentials {
                    account: account.clone(),
                });
                if current != StorageResult::Credentials(Some(checked)) {
                    return; // changed meanwhile: the newer credentials win
                }
                match backend.execute(upgrade) {
                    StorageResult::Done => tracing::info!(
                        %account,
                        "imported credentials completed from a PLAIN login: SCRAM-SHA-1 and SCRAM-SHA-256 both work now"
                    ),
                    other => tracing::warn!(%account, ?other, "storing completed credentials failed"),
                }
            })
            .await;
        }
        verdict.ok
    }

    /// Perform `op` for a stream whose peer is `peer`, deriving new
    /// credentials with `iterations` (the connection's settings).
    pub(crate) async fn perform(
        &self,
        peer: Option<IpAddr>,
        iterations: u32,
        op: AccountOp,
    ) -> AccountOpResult {
        let Ok(jid) = Jid::parse(op.account()) else {
            return AccountOpResult::Failed(format!("invalid account {:?}", op.account()));
        };
        let backend = self.backend.clone();
        match op {
            AccountOp::Register { password, .. } => {
                let account = jid.bare_str();
                let wait = self.limiters.auth_throttle.wait(peer, None, now_ms());
                if wait > 0 {
                    smol::Timer::after(std::time::Duration::from_millis(wait)).await;
                }
                let failed = |reason: &str| {
                    self.limiters.auth_throttle.registration_failed(
                        peer,
                        &account,
                        reason,
                        now_ms(),
                    )
                };
                let Ok(reservation) = self.limiters.registrations.acquire(peer) else {
                    tracing::info!(account = %jid, ?peer, "in-band registration refused: too soon after the last from this address");
                    failed("throttled");
                    return AccountOpResult::Throttled;
                };
                // A taken name costs a read, not a PBKDF2 run.
                let lookup = backend.clone();
                let name = account.clone();
                let existing = smol::unblock(move || {
                    lookup.execute(StorageRequest::LoadCredentials { account: name })
                })
                .await;
                if matches!(existing, StorageResult::Credentials(Some(_))) {
                    self.limiters.registrations.release(reservation);
                    failed("conflict");
                    return AccountOpResult::Conflict;
                }
                let created = jid.clone();
                let result = self
                    .kdf
                    .run(move || add_user(backend.as_ref(), &created, &password, iterations))
                    .await;
                if result.is_ok() {
                    tracing::info!(account = %jid, ?peer, "account registered in-band (XEP-0077)");
                } else {
                    self.limiters.registrations.release(reservation);
                    if matches!(result, Err(AccountError::Exists(_))) {
                        failed("conflict");
                    }
                }
                outcome(result)
            }
            AccountOp::SetPassword { password, .. } => {
                let account = jid.clone();
                let result = self
                    .kdf
                    .run(move || set_password(backend.as_ref(), &account, &password, iterations))
                    .await;
                if result.is_ok() {
                    tracing::info!(account = %jid, "password changed in-band (XEP-0077)");
                }
                outcome(result)
            }
        }
    }
}

fn outcome(result: Result<(), AccountError>) -> AccountOpResult {
    match result {
        Ok(()) => AccountOpResult::Done,
        Err(AccountError::Exists(_)) => AccountOpResult::Conflict,
        Err(AccountError::NotFound(_)) => AccountOpResult::NotFound,
        Err(e) => AccountOpResult::Failed(e.to_string()),
    }
}
