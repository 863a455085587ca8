//! SASL failure conditions (RFC 6120 §6.5).

/// Why a SASL exchange failed. Each variant maps 1:1 to the RFC 6120 §6.5
/// condition element sent inside `<failure/>`, so the stream layer never has to
/// guess a mapping.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
pub enum SaslFailure {
    /// The receiving entity acknowledges an `<abort/>` from the initiator.
    #[error("authentication aborted")]
    Aborted,
    /// The account exists but has been disabled.
    #[error("account disabled")]
    AccountDisabled,
    /// The credentials have expired.
    #[error("credentials expired")]
    CredentialsExpired,
    /// The mechanism is only allowed over an encrypted stream.
    #[error("encryption required")]
    EncryptionRequired,
    /// Base64 or UTF-8 in the exchange was not well formed.
    #[error("incorrect encoding")]
    IncorrectEncoding,
    /// The authzid is malformed or names someone other than the authenticated user.
    #[error("invalid authzid")]
    InvalidAuthzid,
    /// The mechanism is unknown or not offered.
    #[error("invalid mechanism")]
    InvalidMechanism,
    /// The message violates the mechanism's syntax or exceeds a size limit.
    #[error("malformed request")]
    MalformedRequest,
    /// The mechanism (or its parameters) are weaker than policy allows.
    #[error("mechanism too weak")]
    MechanismTooWeak,
    /// Wrong credentials, unknown user, or channel-binding mismatch; deliberately
    /// one condition so a peer cannot tell them apart.
    #[error("not authorized")]
    NotAuthorized,
    /// A transient server-side problem; the client may retry.
    #[error("temporary authentication failure")]
    TemporaryAuthFailure,
}

impl SaslFailure {
    /// The local name of the condition element, e.g. `"not-authorized"`.
    pub fn condition(&self) -> &'static str {
        match self {
            Self::Aborted => "aborted",
            Self::AccountDisabled => "account-disabled",
            Self::CredentialsExpired => "credentials-expired",
            Self::EncryptionRequired => "encryption-required",
            Self::IncorrectEncoding => "incorrect-encoding",
            Self::InvalidAuthzid => "invalid-authzid",
            Self::InvalidMechanism => "invalid-mechanism",
            Self::MalformedRequest => "malformed-request",
            Self::MechanismTooWeak => "mechanism-too-weak",
            Self::NotAuthorized => "not-authorized",
            Self::TemporaryAuthFailure => "temporary-auth-failure",
        }
    }

    /// Every condition, for exhaustive mapping tests and parsers.
    pub const ALL: &'static [SaslFailure] = &[
        Self::Aborted,
        Self::AccountDisabled,
        Self::CredentialsExpired,
        Self::EncryptionRequired,
        Self::IncorrectEncoding,
        Self::InvalidAuthzid,
        Self::InvalidMechanism,
        Self::MalformedRequest,
        Self::MechanismTooWeak,
        Self::NotAuthorized,
        Self::TemporaryAuthFailure,
    ];

    /// Parses a condition element name (client side, reading `<failure/>`).
    pub fn from_condition(s: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|f| f.condition() == s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conditions_round_trip() {
        for f in SaslFailure::ALL {
            assert_eq!(SaslFailure::from_condition(f.condition()), Some(*f));
        }
        assert_eq!(SaslFailure::NotAuthorized.condition(), "not-authorized");
        assert_eq!(SaslFailure::from_condition("bogus"), None);
    }
}
