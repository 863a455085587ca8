//! TLS channel binding for SCRAM-*-PLUS.

/// A channel-binding type Vireo supports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ChannelBindingType {
    /// `tls-exporter` (RFC 9266): the one to use with TLS 1.3.
    TlsExporter,
    /// `tls-server-end-point` (RFC 5929): hash of the server certificate; works
    /// with any TLS version and through TLS-terminating proxies that share the cert.
    TlsServerEndPoint,
}

impl ChannelBindingType {
    /// Preference order when the client may pick: exporter binds the session,
    /// end-point only the certificate.
    pub const PREFERENCE: &'static [ChannelBindingType] = &[
        ChannelBindingType::TlsExporter,
        ChannelBindingType::TlsServerEndPoint,
    ];

    /// The registered name, as used in the GS2 header `p=<name>`.
    pub fn name(&self) -> &'static str {
        match self {
            Self::TlsExporter => "tls-exporter",
            Self::TlsServerEndPoint => "tls-server-end-point",
        }
    }

    /// Parses a registered name; `tls-unique` is deliberately unsupported
    /// (broken by the triple-handshake attack and absent from TLS 1.3).
    pub fn from_name(s: &str) -> Option<Self> {
        Self::PREFERENCE.iter().copied().find(|t| t.name() == s)
    }
}

/// Channel-binding data the TLS layer produced for this connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChannelBinding {
    /// Which binding this data is.
    pub kind: ChannelBindingType,
    /// The raw binding bytes (exporter output or certificate hash).
    pub data: Vec<u8>,
}

impl ChannelBinding {
    /// Convenience constructor.
    pub fn new(kind: ChannelBindingType, data: impl Into<Vec<u8>>) -> Self {
        Self {
            kind,
            data: data.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        for t in ChannelBindingType::PREFERENCE {
            assert_eq!(ChannelBindingType::from_name(t.name()), Some(*t));
        }
        assert_eq!(ChannelBindingType::from_name("tls-unique"), None);
        assert_eq!(ChannelBindingType::TlsExporter.name(), "tls-exporter");
    }
}
