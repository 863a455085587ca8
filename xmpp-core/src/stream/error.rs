//! RFC 6120 §4.9 stream errors: the conditions and their wire form.

use crate::ns;
use crate::xml::Element;

/// A stream error condition (RFC 6120 §4.9.3). Only the ones Vireo sends or
/// must recognise are listed; unknown received conditions map to `UndefinedCondition`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamErrorCondition {
    BadFormat,
    Conflict,
    ConnectionTimeout,
    HostUnknown,
    ImproperAddressing,
    InternalServerError,
    InvalidFrom,
    InvalidId,
    InvalidNamespace,
    InvalidXml,
    NotAuthorized,
    NotWellFormed,
    PolicyViolation,
    ResourceConstraint,
    RestrictedXml,
    SystemShutdown,
    UndefinedCondition,
    UnsupportedEncoding,
    UnsupportedFeature,
    UnsupportedStanzaType,
    UnsupportedVersion,
}

impl StreamErrorCondition {
    /// The element name of the condition.
    pub fn name(self) -> &'static str {
        use StreamErrorCondition::*;
        match self {
            BadFormat => "bad-format",
            Conflict => "conflict",
            ConnectionTimeout => "connection-timeout",
            HostUnknown => "host-unknown",
            ImproperAddressing => "improper-addressing",
            InternalServerError => "internal-server-error",
            InvalidFrom => "invalid-from",
            InvalidId => "invalid-id",
            InvalidNamespace => "invalid-namespace",
            InvalidXml => "invalid-xml",
            NotAuthorized => "not-authorized",
            NotWellFormed => "not-well-formed",
            PolicyViolation => "policy-violation",
            ResourceConstraint => "resource-constraint",
            RestrictedXml => "restricted-xml",
            SystemShutdown => "system-shutdown",
            UndefinedCondition => "undefined-condition",
            UnsupportedEncoding => "unsupported-encoding",
            UnsupportedFeature => "unsupported-feature",
            UnsupportedStanzaType => "unsupported-stanza-type",
            UnsupportedVersion => "unsupported-version",
        }
    }

    /// Parse a condition name; unknown names become `UndefinedCondition`.
    pub fn from_name(name: &str) -> Self {
        use StreamErrorCondition::*;
        const ALL: [StreamErrorCondition; 21] = [
            BadFormat,
            Conflict,
            ConnectionTimeout,
            HostUnknown,
            ImproperAddressing,
            InternalServerError,
            InvalidFrom,
            InvalidId,
            InvalidNamespace,
            InvalidXml,
            NotAuthorized,
            NotWellFormed,
            PolicyViolation,
            ResourceConstraint,
            RestrictedXml,
            SystemShutdown,
            UndefinedCondition,
            UnsupportedEncoding,
            UnsupportedFeature,
            UnsupportedStanzaType,
            UnsupportedVersion,
        ];
        ALL.into_iter()
            .find(|c| c.name() == name)
            .unwrap_or(UndefinedCondition)
    }

    /// The `<stream:error/>` element, with optional descriptive text.
    pub fn to_element(self, text: Option<&str>) -> Element {
        let mut e = Element::new(ns::STREAM, "error")
            .with_child(Element::new(ns::STREAM_ERRORS, self.name()));
        if let Some(t) = text {
            e = e.with_child(
                Element::new(ns::STREAM_ERRORS, "text")
                    .with_attr_ns(crate::xml::XML_NS, "lang", "en")
                    .with_text(t),
            );
        }
        e
    }

    /// The condition carried by a received `<stream:error/>`.
    pub fn from_element(e: &Element) -> Self {
        e.elements()
            .find(|c| c.ns == ns::STREAM_ERRORS && c.name != "text")
            .map(|c| Self::from_name(&c.name))
            .unwrap_or(StreamErrorCondition::UndefinedCondition)
    }
}

impl std::fmt::Display for StreamErrorCondition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}
