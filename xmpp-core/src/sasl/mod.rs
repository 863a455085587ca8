//! SASL mechanisms (RFC 4422): SCRAM (RFC 5802, RFC 7677) and PLAIN (RFC 4616).

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
