//! Errors of the restricted XML parser, each mapped to the RFC 6120 §4.9.3
//! stream error condition the connection must be closed with.

/// Why a stream (or a standalone element) was rejected.
///
/// Every variant is fatal for the stream: XMPP has no way to resynchronise
/// after broken XML, so the session answers with `<stream:error/>` carrying
/// [`XmlError::condition`] and closes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum XmlError {
    /// Syntax or namespace well-formedness violation reported by rxml.
    #[error("not well-formed XML: {0}")]
    NotWellFormed(String),
    /// A construct RFC 6120 §11.1 forbids: DOCTYPE/DTD, entity or other
    /// markup declarations, processing instructions, comments.
    #[error("restricted XML construct: {0}")]
    Restricted(String),
    /// The input is not UTF-8 (a UTF-16 byte order mark or an XML
    /// declaration naming another encoding).
    #[error("unsupported encoding: {0}")]
    UnsupportedEncoding(String),
    /// A top-level element (or the stream header) passed the byte limit;
    /// detected while it is still arriving.
    #[error("element exceeds the limit of {limit} bytes")]
    StanzaTooLarge {
        /// The configured `max_stanza_bytes`.
        limit: usize,
    },
    /// Elements nested deeper than the configured limit.
    #[error("element nesting exceeds the limit of {limit} levels")]
    TooDeep {
        /// The configured `max_depth`.
        limit: usize,
    },
    /// An element with more attributes than the configured limit.
    #[error("element exceeds the limit of {limit} attributes")]
    TooManyAttributes {
        /// The configured `max_attributes`.
        limit: usize,
    },
    /// An element with more children (elements and text nodes) than allowed.
    #[error("element exceeds the limit of {limit} children")]
    TooManyChildren {
        /// The configured `max_children`.
        limit: usize,
    },
    /// A top-level element with more elements and text nodes than allowed.
    #[error("stanza exceeds the limit of {limit} elements and text nodes")]
    TooManyNodes {
        /// The configured `max_nodes`.
        limit: usize,
    },
    /// A namespace name longer than allowed.
    #[error("namespace name exceeds the limit of {limit} bytes")]
    NamespaceTooLong {
        /// The configured `max_namespace_bytes`.
        limit: usize,
    },
    /// Character data other than whitespace directly inside the stream root.
    #[error("non-whitespace text at stream level")]
    TextAtStreamLevel,
    /// [`Element::parse`](super::Element::parse) ran out of input before the
    /// element was complete.
    #[error("input ended before the element was complete")]
    Incomplete,
}

impl XmlError {
    /// The RFC 6120 §4.9.3 stream error condition (element name in
    /// `urn:ietf:params:xml:ns:xmpp-streams`) for this error.
    pub fn condition(&self) -> &'static str {
        match self {
            XmlError::NotWellFormed(_) | XmlError::TextAtStreamLevel | XmlError::Incomplete => {
                "not-well-formed"
            }
            XmlError::Restricted(_) => "restricted-xml",
            XmlError::UnsupportedEncoding(_) => "unsupported-encoding",
            XmlError::StanzaTooLarge { .. }
            | XmlError::TooDeep { .. }
            | XmlError::TooManyAttributes { .. }
            | XmlError::TooManyChildren { .. }
            | XmlError::TooManyNodes { .. }
            | XmlError::NamespaceTooLong { .. } => "policy-violation",
        }
    }

    /// Translate an rxml error. rxml only exposes some causes as static
    /// strings, so a few are recognised by their text.
    pub(crate) fn from_rxml(e: rxml::Error) -> XmlError {
        match e {
            rxml::Error::RestrictedXml(msg) if msg.contains("encoding") => {
                XmlError::UnsupportedEncoding(msg.to_owned())
            }
            rxml::Error::RestrictedXml(msg) => XmlError::Restricted(msg.to_owned()),
            // `<!` followed by neither `--` nor `[CDATA[`: the start of a
            // DOCTYPE or a markup declaration (ENTITY, ELEMENT, ATTLIST, …).
            rxml::Error::InvalidSyntax(msg) if msg.contains("cdata or comment section start") => {
                XmlError::Restricted("DOCTYPE or markup declaration".to_owned())
            }
            other => XmlError::NotWellFormed(other.to_string()),
        }
    }
}
