//! XML for XMPP streams: the element tree, the restricted streaming parser and
//! the serializer.

mod element;
mod error;
mod header_scan;
mod namespace;
pub(crate) mod parser;
mod writer;

pub use element::{Attr, Element, Node, XML_NS};
pub use error::XmlError;
pub use namespace::Namespace;
pub use parser::{Limits, StreamEvent, StreamParser};
pub use writer::{escape_attr, escape_text, write_attr};

#[cfg(test)]
mod tests;
