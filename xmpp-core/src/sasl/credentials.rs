//! Stored SCRAM credentials: what an account keeps instead of its password.

use std::borrow::Cow;

use super::hash::{ct_eq, HashKind};
use super::SaslFailure;

/// Lowest PBKDF2 iteration count Vireo produces or (as a client) accepts;
/// RFC 5802 §5.1 / RFC 7677 §4 set 4096 as the floor.
pub const MIN_ITERATIONS: u32 = 4096;

/// The SCRAM keys for one hash function (RFC 5802 §3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScramKeys {
    /// H(ClientKey).
    pub stored_key: Vec<u8>,
    /// HMAC(SaltedPassword, "Server Key").
    pub server_key: Vec<u8>,
}

/// What an account stores instead of its password: salted SCRAM keys for both
/// hash functions Vireo offers.
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

    /// Constant-time check of a plaintext password (used for PLAIN over TLS).
    ///
    /// Re-derives only the SHA-256 keys (one PBKDF2 run) and compares both
    /// stored and server key, so a record whose SHA-1 half was tampered with
    /// alone would still verify; the SHA-256 half is authoritative.
    pub fn verify_password(&self, password: &str) -> bool {
        let Ok(password) = prepare_password(password) else {
            return false;
        };
        let salted =
            HashKind::Sha256.salted_password(password.as_bytes(), &self.salt, self.iterations);
        let keys = ScramKeys::from_salted(HashKind::Sha256, &salted);
        // Evaluate both comparisons unconditionally: no early exit.
        let a = ct_eq(&keys.stored_key, &self.sha256.stored_key);
        let b = ct_eq(&keys.server_key, &self.sha256.server_key);
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
