//! XML for XMPP streams: the element tree, the restricted streaming parser and
//! the serializer.

mod element;

pub use element::{Attr, Element, Node, XML_NS};
