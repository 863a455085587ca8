//! SASL mechanisms (RFC 4422): SCRAM (RFC 5802, RFC 7677) and PLAIN (RFC 4616).

/// Stored SCRAM credentials (placeholder until the SASL module lands).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredCredentials;
