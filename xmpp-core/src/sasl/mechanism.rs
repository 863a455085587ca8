//! The SASL mechanisms Vireo implements and their preference order.

use super::hash::HashKind;

/// A SASL mechanism Vireo can negotiate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Mechanism {
    /// SCRAM-SHA-1 (RFC 5802).
    ScramSha1,
    /// SCRAM-SHA-1-PLUS: SCRAM-SHA-1 with channel binding.
    ScramSha1Plus,
    /// SCRAM-SHA-256 (RFC 7677).
    ScramSha256,
    /// SCRAM-SHA-256-PLUS: SCRAM-SHA-256 with channel binding.
    ScramSha256Plus,
    /// PLAIN (RFC 4616); only acceptable over TLS.
    Plain,
}

impl Mechanism {
    /// Strongest first: channel binding beats none, SHA-256 beats SHA-1, and
    /// PLAIN (password sent to the server) comes last.
    pub const SERVER_PREFERENCE: &'static [Mechanism] = &[
        Mechanism::ScramSha256Plus,
        Mechanism::ScramSha1Plus,
        Mechanism::ScramSha256,
        Mechanism::ScramSha1,
        Mechanism::Plain,
    ];

    /// The IANA-registered mechanism name as it appears on the wire.
    pub fn name(&self) -> &'static str {
        match self {
            Self::ScramSha1 => "SCRAM-SHA-1",
            Self::ScramSha1Plus => "SCRAM-SHA-1-PLUS",
            Self::ScramSha256 => "SCRAM-SHA-256",
            Self::ScramSha256Plus => "SCRAM-SHA-256-PLUS",
            Self::Plain => "PLAIN",
        }
    }

    /// Parses a wire name. Exact match: RFC 4422 mechanism names are upper case.
    pub fn from_name(s: &str) -> Option<Self> {
        Self::SERVER_PREFERENCE
            .iter()
            .copied()
            .find(|m| m.name() == s)
    }

    /// Whether this is a channel-binding (`-PLUS`) variant.
    pub fn is_plus(&self) -> bool {
        matches!(self, Self::ScramSha1Plus | Self::ScramSha256Plus)
    }

    /// Whether this is a SCRAM variant (as opposed to PLAIN).
    pub fn is_scram(&self) -> bool {
        self.hash().is_some()
    }

    /// The SCRAM hash function, `None` for PLAIN.
    pub(crate) fn hash(&self) -> Option<HashKind> {
        match self {
            Self::ScramSha1 | Self::ScramSha1Plus => Some(HashKind::Sha1),
            Self::ScramSha256 | Self::ScramSha256Plus => Some(HashKind::Sha256),
            Self::Plain => None,
        }
    }
}

impl std::fmt::Display for Mechanism {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for m in Mechanism::SERVER_PREFERENCE {
            assert_eq!(Mechanism::from_name(m.name()), Some(*m));
        }
        assert_eq!(Mechanism::from_name("scram-sha-1"), None);
        assert_eq!(Mechanism::from_name("DIGEST-MD5"), None);
        assert!(Mechanism::ScramSha256Plus.is_plus());
        assert!(!Mechanism::ScramSha256.is_plus());
        assert!(!Mechanism::Plain.is_scram());
        assert_eq!(Mechanism::SERVER_PREFERENCE[0], Mechanism::ScramSha256Plus);
    }
}
