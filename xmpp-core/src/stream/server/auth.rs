//! What the driver needs from SASL beyond the protocol: PLAIN's password
//! check as an instruction (PBKDF2 is deliberately slow, so the driver runs
//! it off its event loop), and each attempt's start and outcome (for its
//! failure backoff and its log).

use crate::sasl::StoredCredentials;

/// A PLAIN password to check against stored credentials. An unknown
/// account is checked against decoy credentials
/// ([`StoredCredentials::decoy`]) with the configured iteration count, so
/// both cost one PBKDF2 run and the answer's timing does not tell whether
/// the account exists.
#[derive(Clone, PartialEq, Eq)]
pub struct PasswordCheck {
    credentials: StoredCredentials,
    password: String,
    known: bool,
}

impl PasswordCheck {
    pub(super) fn new(credentials: StoredCredentials, password: String, known: bool) -> Self {
        PasswordCheck {
            credentials,
            password,
            known,
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
        assert!(PasswordCheck::new(real.clone(), "pencil".into(), true).run());
        assert!(!PasswordCheck::new(real, "pen".into(), true).run());
        let decoy = StoredCredentials::decoy(b"secret", 4096, "nobody");
        assert_eq!(decoy.iterations, 4096);
        assert_eq!(decoy.salt.len(), 16);
        // Stable per user (a prober sees no difference between attempts).
        assert_eq!(decoy, StoredCredentials::decoy(b"secret", 4096, "nobody"));
        assert_ne!(
            decoy.salt,
            StoredCredentials::decoy(b"secret", 4096, "other").salt
        );
        assert!(!PasswordCheck::new(decoy, "pencil".into(), false).run());
        let check = PasswordCheck::new(
            StoredCredentials::decoy(b"s", 4096, "u"),
            "hunter2".into(),
            false,
        );
        assert!(!format!("{check:?}").contains("hunter2"));
    }
}
