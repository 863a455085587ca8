//! Namespace names that cost one allocation per declaration, not per use.
//!
//! Every element and qualified attribute carries its namespace. Copying the
//! string into each of them let one declaration of a long namespace be
//! multiplied by every element in its scope: a 32 KiB namespace inherited by
//! 55,000 empty children cost 1.75 GiB for 250 KiB of input. A [`Namespace`]
//! is a shared, immutable string instead: the parser hands every element in
//! the scope of a declaration the same allocation, clones (routing, carbons,
//! archive copies) only count references, and the constants the server
//! builds elements from are not allocated at all.

use std::borrow::Borrow;
use std::fmt;
use std::ops::Deref;

/// A namespace name (a URI, or empty for unqualified names); cloning is a
/// reference count increment.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Namespace(rxml::Namespace<'static>);

impl Namespace {
    /// A namespace from a string constant, without allocating.
    pub const fn from_static(s: &'static str) -> Self {
        Namespace(rxml::Namespace::from_str(s))
    }

    /// A namespace holding a copy of `s`.
    pub fn copy_from(s: &str) -> Self {
        Namespace(rxml::Namespace::from(s.to_owned()))
    }

    /// The namespace name.
    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }

    /// Share the parser's namespace: the same allocation for every element
    /// in the scope of one declaration.
    pub(crate) fn from_rxml(ns: rxml::Namespace<'static>) -> Self {
        Namespace(ns)
    }
}

impl Default for Namespace {
    /// The empty namespace (unqualified attributes).
    fn default() -> Self {
        Namespace::from_static("")
    }
}

impl Deref for Namespace {
    type Target = str;

    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl AsRef<str> for Namespace {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

impl Borrow<str> for Namespace {
    fn borrow(&self) -> &str {
        self.as_str()
    }
}

impl fmt::Debug for Namespace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl fmt::Display for Namespace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl From<&'static str> for Namespace {
    fn from(s: &'static str) -> Self {
        Namespace::from_static(s)
    }
}

impl From<String> for Namespace {
    fn from(s: String) -> Self {
        Namespace(rxml::Namespace::from(s))
    }
}

impl From<&String> for Namespace {
    fn from(s: &String) -> Self {
        Namespace::copy_from(s)
    }
}

impl From<&Namespace> for Namespace {
    fn from(ns: &Namespace) -> Self {
        ns.clone()
    }
}

impl PartialEq<str> for Namespace {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for Namespace {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl PartialEq<String> for Namespace {
    fn eq(&self, other: &String) -> bool {
        self.as_str() == other.as_str()
    }
}

impl PartialEq<Namespace> for str {
    fn eq(&self, other: &Namespace) -> bool {
        self == other.as_str()
    }
}

impl PartialEq<Namespace> for &str {
    fn eq(&self, other: &Namespace) -> bool {
        *self == other.as_str()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compares_as_its_string() {
        let a = Namespace::from_static("jabber:client");
        let b = Namespace::copy_from("jabber:client");
        assert_eq!(a, b);
        assert_eq!(a, "jabber:client");
        assert!("jabber:client" == b);
        assert!(Namespace::default().is_empty());
    }

    #[test]
    fn clones_share_the_string() {
        let a = Namespace::from("urn:x:long".to_owned());
        let b = a.clone();
        assert_eq!(a.as_str().as_ptr(), b.as_str().as_ptr());
    }
}
