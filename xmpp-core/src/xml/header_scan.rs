//! The namespace declarations of a stream header.
//!
//! rxml resolves prefixes and keeps no declarations, which is right for
//! stanzas but hides one thing XMPP reads from the header itself: XEP-0220
//! §2.4.1 announces Server Dialback by declaring `jabber:server:dialback`
//! (as `xmlns:db`) on the s2s stream header, before any stream feature. So
//! while the header arrives, the bytes the namespace-aware parser consumes
//! also go through an rxml [`RawParser`], which reports declarations as the
//! attributes they are. It stops, and is dropped, at the end of the header:
//! stanzas are parsed once.

use rxml::{Parse, RawEvent, RawParser, WithOptions};

use super::namespace::Namespace;
use super::parser::{Limits, MAX_TOKEN, MIN_TOKEN};

/// Declarations seen on the stream header so far.
#[derive(Debug)]
pub(super) struct HeaderScan {
    /// `None` once the header is complete (or the raw parser failed: the
    /// namespace-aware parser reports the error). Boxed: every connection's
    /// parser holds this, and an idle one should not carry 344 bytes of
    /// finished raw parser inline.
    raw: Option<Box<RawParser>>,
    /// `(prefix, namespace)`; at most `max_attributes` of them.
    prefixes: Vec<(String, Namespace)>,
    max_entries: usize,
    max_namespace_bytes: usize,
}

impl HeaderScan {
    pub(super) fn new(limits: &Limits) -> HeaderScan {
        let opts = rxml::Options {
            max_token_length: limits.max_stanza_bytes.clamp(MIN_TOKEN, MAX_TOKEN),
            ..rxml::Options::default()
        };
        HeaderScan {
            raw: Some(Box::new(RawParser::with_options(opts))),
            prefixes: Vec::new(),
            max_entries: limits.max_attributes,
            max_namespace_bytes: limits.max_namespace_bytes,
        }
    }

    /// Feed the bytes the stream parser consumed, in order.
    pub(super) fn feed(&mut self, mut bytes: &[u8]) {
        let Some(raw) = self.raw.as_mut() else {
            return;
        };
        loop {
            match raw.parse(&mut bytes, false) {
                Ok(Some(RawEvent::Attribute(_, (Some(prefix), name), value)))
                    if prefix.as_str() == "xmlns" =>
                {
                    if self.prefixes.len() < self.max_entries
                        && value.len() <= self.max_namespace_bytes
                    {
                        self.prefixes
                            .push((name.as_str().to_owned(), Namespace::from(value)));
                    }
                }
                Ok(Some(RawEvent::ElementHeadClose(_)))
                | Ok(None)
                | Err(rxml::error::EndOrError::Error(_)) => {
                    self.raw = None;
                    return;
                }
                Ok(Some(_)) => {}
                Err(rxml::error::EndOrError::NeedMoreData) => return,
            }
        }
    }

    /// The prefix the header bound to `ns`, if any.
    pub(super) fn prefix_for(&self, ns: &str) -> Option<&str> {
        self.prefixes
            .iter()
            .find(|(_, uri)| uri == ns)
            .map(|(prefix, _)| prefix.as_str())
    }
}
