//! The in-memory element tree for stanzas.
//!
//! Routed stanzas keep every attribute and child they arrived with, so the tree
//! is deliberately untyped: modules read the parts they own and the router
//! forwards the rest untouched.

use super::namespace::Namespace;

/// Namespace of the reserved `xml:` prefix (`xml:lang`).
pub const XML_NS: &str = "http://www.w3.org/XML/1998/namespace";

/// A node inside an element: a child element or character data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Node {
    /// A child element.
    Element(Element),
    /// Character data, unescaped.
    Text(String),
}

/// An attribute. `ns` is empty for the usual unqualified attributes; `xml:lang`
/// has `ns == XML_NS`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attr {
    /// Namespace URI, empty when the attribute is unqualified.
    pub ns: Namespace,
    /// Local name.
    pub name: String,
    /// Unescaped value.
    pub value: String,
}

/// An XML element with its namespace URI, attributes and children.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Element {
    /// Namespace URI, shared with every element in the scope of the same
    /// declaration.
    pub ns: Namespace,
    /// Local name.
    pub name: String,
    /// Attributes in document order.
    pub attrs: Vec<Attr>,
    /// Children in document order.
    pub children: Vec<Node>,
}

impl Element {
    /// A new empty element.
    pub fn new(ns: impl Into<Namespace>, name: impl Into<String>) -> Self {
        Element {
            ns: ns.into(),
            name: name.into(),
            attrs: Vec::new(),
            children: Vec::new(),
        }
    }

    /// Roughly the bytes this element holds (names, values, text and a
    /// little per node), without serializing it: what byte limits on
    /// queues of stanzas count. Heap overhead is not included, so it
    /// undercounts memory by a small constant factor.
    pub fn approx_size(&self) -> usize {
        let attrs: usize = self
            .attrs
            .iter()
            .map(|a| a.name.len() + a.value.len() + 4)
            .sum();
        let children: usize = self
            .children
            .iter()
            .map(|c| match c {
                Node::Element(e) => e.approx_size(),
                Node::Text(t) => t.len(),
            })
            .sum();
        2 * self.name.len() + 5 + attrs + children
    }

    /// Builder: set an unqualified attribute.
    pub fn with_attr(mut self, name: &str, value: impl Into<String>) -> Self {
        self.set_attr(name, value);
        self
    }

    /// Builder: append a child element.
    pub fn with_child(mut self, child: Element) -> Self {
        self.children.push(Node::Element(child));
        self
    }

    /// Builder: append text.
    pub fn with_text(mut self, text: impl Into<String>) -> Self {
        self.children.push(Node::Text(text.into()));
        self
    }

    /// True when this element has the given namespace and local name.
    pub fn is(&self, ns: &str, name: &str) -> bool {
        self.ns == ns && self.name == name
    }

    /// Value of an unqualified attribute.
    pub fn attr(&self, name: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|a| a.ns.is_empty() && a.name == name)
            .map(|a| a.value.as_str())
    }

    /// Value of a namespaced attribute.
    pub fn attr_ns(&self, ns: &str, name: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|a| a.ns == ns && a.name == name)
            .map(|a| a.value.as_str())
    }

    /// Set (or replace) an unqualified attribute.
    pub fn set_attr(&mut self, name: &str, value: impl Into<String>) {
        let value = value.into();
        match self
            .attrs
            .iter_mut()
            .find(|a| a.ns.is_empty() && a.name == name)
        {
            Some(a) => a.value = value,
            None => self.attrs.push(Attr {
                ns: Namespace::default(),
                name: name.to_owned(),
                value,
            }),
        }
    }

    /// Remove an unqualified attribute, returning its value.
    pub fn remove_attr(&mut self, name: &str) -> Option<String> {
        let pos = self
            .attrs
            .iter()
            .position(|a| a.ns.is_empty() && a.name == name)?;
        Some(self.attrs.remove(pos).value)
    }

    /// Child elements in order.
    pub fn elements(&self) -> impl Iterator<Item = &Element> {
        self.children.iter().filter_map(|n| match n {
            Node::Element(e) => Some(e),
            Node::Text(_) => None,
        })
    }

    /// Mutable child elements in order.
    pub fn elements_mut(&mut self) -> impl Iterator<Item = &mut Element> {
        self.children.iter_mut().filter_map(|n| match n {
            Node::Element(e) => Some(e),
            Node::Text(_) => None,
        })
    }

    /// First child element with this namespace and name.
    pub fn child(&self, ns: &str, name: &str) -> Option<&Element> {
        self.elements().find(|e| e.is(ns, name))
    }

    /// First child element with this namespace and name, mutably.
    pub fn child_mut(&mut self, ns: &str, name: &str) -> Option<&mut Element> {
        self.elements_mut().find(|e| e.is(ns, name))
    }

    /// First child element, whatever its name.
    pub fn first_element(&self) -> Option<&Element> {
        self.elements().next()
    }

    /// Remove every child element with this namespace and name.
    pub fn remove_children(&mut self, ns: &str, name: &str) {
        self.children
            .retain(|n| !matches!(n, Node::Element(e) if e.is(ns, name)));
    }

    /// Concatenated direct text content.
    pub fn text(&self) -> String {
        let mut out = String::new();
        for n in &self.children {
            if let Node::Text(t) = n {
                out.push_str(t);
            }
        }
        out
    }

    /// Text of the first child with this namespace and name.
    pub fn child_text(&self, ns: &str, name: &str) -> Option<String> {
        self.child(ns, name).map(Element::text)
    }
}

impl Element {
    /// Builder: set a namespaced attribute (e.g. `xml:lang`).
    pub fn with_attr_ns(
        mut self,
        ns: impl Into<Namespace>,
        name: &str,
        value: impl Into<String>,
    ) -> Self {
        let ns = ns.into();
        let value = value.into();
        match self.attrs.iter_mut().find(|a| a.ns == ns && a.name == name) {
            Some(a) => a.value = value,
            None => self.attrs.push(Attr {
                ns,
                name: name.to_owned(),
                value,
            }),
        }
        self
    }
}

impl Element {
    /// What this tree costs on the heap, in bytes: strings and vectors by
    /// their capacity, child elements inline in their parent's vector, and
    /// each distinct namespace allocation once (they are shared). The parser
    /// budgets are checked against this (the `xml_budget` property test).
    pub fn heap_bytes(&self) -> usize {
        let mut seen = Vec::new();
        self.heap_bytes_sharing(&mut seen)
    }

    fn heap_bytes_sharing(&self, seen: &mut Vec<*const u8>) -> usize {
        let mut bytes = self.name.capacity()
            + namespace_bytes(&self.ns, seen)
            + self.attrs.capacity() * std::mem::size_of::<Attr>()
            + self.children.capacity() * std::mem::size_of::<Node>();
        for a in &self.attrs {
            bytes += a.name.capacity() + a.value.capacity() + namespace_bytes(&a.ns, seen);
        }
        for n in &self.children {
            bytes += match n {
                Node::Element(e) => e.heap_bytes_sharing(seen),
                Node::Text(t) => t.capacity(),
            };
        }
        bytes
    }
}

/// A namespace's bytes the first time its allocation is seen, 0 after.
fn namespace_bytes(ns: &Namespace, seen: &mut Vec<*const u8>) -> usize {
    let ptr = ns.as_str().as_ptr();
    if ns.is_empty() || seen.contains(&ptr) {
        return 0;
    }
    seen.push(ptr);
    ns.len()
}
