//! Stored SCRAM credentials: what an account keeps instead of its password.

use std::borrow::Cow;

use super::hash::{ct_eq, HashKind};
use super::SaslFailure;

/// Lowest PBKDF2 iteration count Vireo produces or (as a client) accepts;
/// RFC 5802 §5.1 / RFC 7677 §4 set 4096 as the floor.
pub const MIN_ITERATIONS: u32 = 4096;

/// The SCRAM keys for one hash function (RFC 5802 §3). Both empty means
/// the account has no keys for that hash (see [`StoredCredentials`]).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ScramKeys {
    /// H(ClientKey).
    pub stored_key: Vec<u8>,
    /// HMAC(SaltedPassword, "Server Key").
    pub server_key: Vec<u8>,
}

/// What an account stores instead of its password: salted SCRAM keys for both
/// hash functions Vireo offers.
///
/// Accounts created by Vireo always have both. An account imported from
/// another server's SCRAM keys (XEP-0227) may have only one hash's keys
/// (Prosody stores SCRAM-SHA-1 only, ejabberd one configured hash): the
/// other half is then empty ([`ScramKeys::is_present`]), and an exchange
/// with the missing hash fails like a wrong password (on decoy keys, so it
/// tells nothing about the account) until the next password change derives
/// both. PLAIN checks whichever half is present.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredCredentials {
    /// PBKDF2 iteration count.
    pub iterations: u32,
    /// PBKDF2 salt.
    pub salt: Vec<u8>,
    /// Keys for SCRAM-SHA-1(-PLUS).
    pub sha1: ScramKeys,
    /// Keys for SCRAM-SHA-256(-PLUS).
    pub sha256: ScramKeys,
}

/// Normalizes a password with the PRECIS OpaqueString profile (RFC 8265
/// §4.2), the successor of SASLprep that RFC 7677 points to, so that e.g.
/// differently composed accents hash identically on client and server.
/// Empty or disallowed passwords are rejected.
pub fn prepare_password(password: &str) -> Result<Cow<'_, str>, SaslFailure> {
    // The same OpaqueString enforcement as JID resourceparts, with current
    // Unicode tables (precis-core's 6.3 tables would refuse newer emoji).
    crate::jid::opaque::enforce(password)
        .map(Cow::Owned)
        .map_err(|_| SaslFailure::MalformedRequest)
}

impl ScramKeys {
    /// Whether these keys exist (imported credentials may lack a hash).
    pub fn is_present(&self) -> bool {
        !self.stored_key.is_empty() && !self.server_key.is_empty()
    }

    fn from_salted(hash: HashKind, salted: &[u8]) -> Self {
        let (_, stored_key, server_key) = hash.keys(salted);
        Self {
            stored_key,
            server_key,
        }
    }
}

impl StoredCredentials {
    /// Normalize the password (PRECIS OpaqueString, RFC 8265 — SCRAM's
    /// SASLprep successor), PBKDF2 with the given salt/iterations for both
    /// SHA-1 and SHA-256.
    ///
    /// Fails with `MalformedRequest` for a password PRECIS rejects (including
    /// the empty one) or an empty salt, and `MechanismTooWeak` for fewer than
    /// [`MIN_ITERATIONS`] iterations (clients would refuse them).
    pub fn derive(password: &str, salt: &[u8], iterations: u32) -> Result<Self, SaslFailure> {
        if iterations < MIN_ITERATIONS {
            return Err(SaslFailure::MechanismTooWeak);
        }
        if salt.is_empty() {
            return Err(SaslFailure::MalformedRequest);
        }
        let password = prepare_password(password)?;
        let p = password.as_bytes();
        Ok(Self {
            iterations,
            salt: salt.to_vec(),
            sha1: ScramKeys::from_salted(
                HashKind::Sha1,
                &HashKind::Sha1.salted_password(p, salt, iterations),
            ),
            sha256: ScramKeys::from_salted(
                HashKind::Sha256,
                &HashKind::Sha256.salted_password(p, salt, iterations),
            ),
        })
    }

    /// Credentials made of another server's SCRAM keys (XEP-0227 import):
    /// either hash may be missing (`None`), not both. `None` when the keys
    /// cannot be Vireo's: no hash, a key of the wrong length, an empty salt
    /// or zero iterations. Fewer than [`MIN_ITERATIONS`] are kept (the
    /// account's clients accepted them before) but clients may refuse them.
    pub fn imported(
        iterations: u32,
        salt: Vec<u8>,
        sha1: Option<ScramKeys>,
        sha256: Option<ScramKeys>,
    ) -> Option<Self> {
        let fits = |keys: &Option<ScramKeys>, hash: HashKind| {
            keys.as_ref().is_none_or(|k| {
                k.stored_key.len() == hash.output_len() && k.server_key.len() == hash.output_len()
            })
        };
        if iterations == 0
            || salt.is_empty()
            || (sha1.is_none() && sha256.is_none())
            || !fits(&sha1, HashKind::Sha1)
            || !fits(&sha256, HashKind::Sha256)
        {
            return None;
        }
        Some(Self {
            iterations,
            salt,
            sha1: sha1.unwrap_or_default(),
            sha256: sha256.unwrap_or_default(),
        })
    }

    /// Whether the account has keys for `hash` (always, unless imported).
    pub(crate) fn has(&self, hash: HashKind) -> bool {
        self.keys(hash).is_present()
    }

    /// Constant-time check of a plaintext password (used for PLAIN over TLS).
    ///
    /// Re-derives only the SHA-256 keys (one PBKDF2 run) and compares both
    /// stored and server key, so a record whose SHA-1 half was tampered with
    /// alone would still verify; the SHA-256 half is authoritative. Imported
    /// credentials without SHA-256 keys are checked against their SHA-1 keys.
    pub fn verify_password(&self, password: &str) -> bool {
        let Ok(password) = prepare_password(password) else {
            return false;
        };
        let hash = if self.has(HashKind::Sha256) {
            HashKind::Sha256
        } else {
            HashKind::Sha1
        };
        let want = self.keys(hash);
        let salted = hash.salted_password(password.as_bytes(), &self.salt, self.iterations);
        let keys = ScramKeys::from_salted(hash, &salted);
        // Evaluate both comparisons unconditionally: no early exit. Missing
        // keys (both halves empty) never compare equal to derived ones.
        let a = ct_eq(&keys.stored_key, &want.stored_key);
        let b = ct_eq(&keys.server_key, &want.server_key);
        a & b
    }

    /// Credentials for an account that does not exist, so that checking a
    /// password against them costs what a real account's check costs: the
    /// salt is `HMAC(secret, username)` (as for SCRAM decoys) and the keys
    /// are derived from it, which no password maps to.
    pub fn decoy(secret: &[u8], iterations: u32, username: &str) -> Self {
        let h = HashKind::Sha256;
        let mut salt = h.hmac(secret, username.as_bytes());
        salt.truncate(16);
        let keys = |kind: HashKind| ScramKeys {
            stored_key: kind.hmac(&salt, b"vireo decoy stored key"),
            server_key: kind.hmac(&salt, b"vireo decoy server key"),
        };
        Self {
            iterations: iterations.max(MIN_ITERATIONS),
            sha1: keys(HashKind::Sha1),
            sha256: keys(HashKind::Sha256),
            salt,
        }
    }

    /// The keys for `hash`.
    pub(crate) fn keys(&self, hash: HashKind) -> &ScramKeys {
        match hash {
            HashKind::Sha1 => &self.sha1,
            HashKind::Sha256 => &self.sha256,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verify_password_true_false() {
        let c = StoredCredentials::derive("pencil", b"saltsaltsalt", 4096);
        let Ok(c) = c else {
            panic!("derive failed: {c:?}");
        };
        assert!(c.verify_password("pencil"));
        assert!(!c.verify_password("Pencil"));
        assert!(!c.verify_password(""));
        assert!(!c.verify_password("pencil "));
    }

    #[test]
    fn derive_rejects_weak_or_empty() {
        assert_eq!(
            StoredCredentials::derive("pencil", b"salt", 1),
            Err(SaslFailure::MechanismTooWeak)
        );
        assert_eq!(
            StoredCredentials::derive("", b"salt", 4096),
            Err(SaslFailure::MalformedRequest)
        );
        assert_eq!(
            StoredCredentials::derive("pencil", b"", 4096),
            Err(SaslFailure::MalformedRequest)
        );
    }

    #[test]
    fn normalization_makes_equivalent_passwords_equal() {
        // U+00E9 vs e + U+0301: OpaqueString applies NFC.
        let a = StoredCredentials::derive("caf\u{e9}", b"salt", 4096);
        let b = StoredCredentials::derive("cafe\u{301}", b"salt", 4096);
        assert!(a.is_ok());
        assert_eq!(a, b);
        // Non-ASCII spaces map to U+0020.
        let c = StoredCredentials::derive("a\u{3000}b", b"salt", 4096);
        let d = StoredCredentials::derive("a b", b"salt", 4096);
        assert_eq!(c, d);
    }
}
