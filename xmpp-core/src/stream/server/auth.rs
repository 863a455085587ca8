//! What the driver needs from SASL beyond the protocol: PLAIN's password
//! check as an instruction (PBKDF2 is deliberately slow, so the driver runs
//! it off its event loop), and each attempt's start and outcome (for its
//! failure backoff and its log).

use crate::sasl::StoredCredentials;
use crate::storage::StorageRequest;

/// A PLAIN password to check against stored credentials. An unknown
/// account is checked against decoy credentials
/// ([`StoredCredentials::decoy`]) with the configured iteration count, so
/// both cost one PBKDF2 run and the answer's timing does not tell whether
/// the account exists.
#[derive(Clone, PartialEq, Eq)]
pub struct PasswordCheck {
    account: String,
    credentials: StoredCredentials,
    password: String,
    known: bool,
}

/// What [`PasswordCheck::verdict`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PasswordVerdict {
    /// The account exists and the password is its own.
    pub ok: bool,
    /// For an account that has one SCRAM hash's keys only (imported from
    /// another server, XEP-0227): both hashes' keys derived from the
    /// password just proven, with the stored salt and count, to store so
    /// that SCRAM-SHA-256 works from the next login on. The driver writes
    /// it only while the account's credentials are still `checked` (a
    /// password change meanwhile wins).
    pub upgrade: Option<StorageRequest>,
    /// The credentials the password was checked against.
    pub checked: StoredCredentials,
}

impl PasswordCheck {
    pub(super) fn new(
        account: String,
        credentials: StoredCredentials,
        password: String,
        known: bool,
    ) -> Self {
        PasswordCheck {
            account,
            credentials,
            password,
            known,
        }
    }

    /// [`PasswordCheck::run`], and for a one-hash account whose password
    /// matched, the upgrade (one more PBKDF2 run per hash).
    pub fn verdict(&self) -> PasswordVerdict {
        let ok = self.run();
        let c = &self.credentials;
        let upgrade = (ok && !(c.sha1.is_present() && c.sha256.is_present()))
            .then(|| StoredCredentials::derive(&self.password, &c.salt, c.iterations).ok())
            .flatten()
            .map(|credentials| StorageRequest::SetCredentials {
                account: self.account.clone(),
                credentials,
            });
        PasswordVerdict {
            ok,
            upgrade,
            checked: self.credentials.clone(),
        }
    }

    /// Run the check (one PBKDF2 run): true when the account exists and the
    /// password is its own.
    pub fn run(&self) -> bool {
        // Both sides evaluated: the decoy costs the same as a real account.
        let matches = self.credentials.verify_password(&self.password);
        matches & self.known
    }
}

impl std::fmt::Debug for PasswordCheck {
    // Hand-written so the password never ends up in logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PasswordCheck")
            .field("iterations", &self.credentials.iterations)
            .field("password", &"<redacted>")
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decoys_never_match_and_real_credentials_do() {
        let real = StoredCredentials::derive("pencil", b"saltsaltsalt", 4096);
        let Ok(real) = real else {
            panic!("derive failed: {real:?}");
        };
        assert!(PasswordCheck::new("a@x".into(), real.clone(), "pencil".into(), true).run());
        assert!(!PasswordCheck::new("a@x".into(), real, "pen".into(), true).run());
        let decoy = StoredCredentials::decoy(b"secret", 4096, "nobody");
        assert_eq!(decoy.iterations, 4096);
        assert_eq!(decoy.salt.len(), 16);
        // Stable per user (a prober sees no difference between attempts).
        assert_eq!(decoy, StoredCredentials::decoy(b"secret", 4096, "nobody"));
        assert_ne!(
            decoy.salt,
            StoredCredentials::decoy(b"secret", 4096, "other").salt
        );
        assert!(!PasswordCheck::new("a@x".into(), decoy, "pencil".into(), false).run());
        let check = PasswordCheck::new(
            "u@x".into(),
            StoredCredentials::decoy(b"s", 4096, "u"),
            "hunter2".into(),
            false,
        );
        assert!(!format!("{check:?}").contains("hunter2"));
    }

    /// An account imported with SCRAM-SHA-1 keys only gets both hashes
    /// from its first PLAIN login, with the same salt and count; complete
    /// credentials, a wrong password and an unknown account get nothing.
    #[test]
    fn a_one_hash_account_is_upgraded_by_its_password() {
        let Ok(full) = StoredCredentials::derive("pencil", b"saltsaltsalt", 4096) else {
            panic!("derive");
        };
        let Some(one) = StoredCredentials::imported(
            4096,
            b"saltsaltsalt".to_vec(),
            Some(full.sha1.clone()),
            None,
        ) else {
            panic!("imported");
        };
        let v = PasswordCheck::new("a@x".into(), one.clone(), "pencil".into(), true).verdict();
        assert!(v.ok);
        assert_eq!(v.checked, one);
        assert_eq!(
            v.upgrade,
            Some(StorageRequest::SetCredentials {
                account: "a@x".into(),
                credentials: full.clone(),
            })
        );
        let wrong = PasswordCheck::new("a@x".into(), one.clone(), "pen".into(), true).verdict();
        assert!(!wrong.ok && wrong.upgrade.is_none());
        let complete = PasswordCheck::new("a@x".into(), full, "pencil".into(), true).verdict();
        assert!(complete.ok && complete.upgrade.is_none());
        let unknown = PasswordCheck::new("a@x".into(), one, "pencil".into(), false).verdict();
        assert!(!unknown.ok && unknown.upgrade.is_none());
    }
}
