//! The framing of an export: one tag or unit per line, no indentation.
//!
//! A line per unit keeps files diffable and the reader's line numbers
//! meaningful; writing every unit through [`Element::write_to`] (attributes
//! in a fixed order, namespaces declared only where they change) makes the
//! bytes a function of the stored data alone, which is what lets two
//! exports be compared with `cmp`.

use super::NS_PIE;
use crate::xml::{write_attr, Element};

/// The first line of every export.
pub const PROLOG: &str = "<?xml version='1.0' encoding='UTF-8'?>\n";

/// Appends the export's pieces to a buffer the caller drains to its file.
#[derive(Debug, Default)]
pub struct Writer {
    /// The bytes written so far and not yet taken.
    pub out: Vec<u8>,
    /// The default namespace of each open tag, outermost first.
    open: Vec<(&'static str, &'static str)>,
}

impl Writer {
    /// A writer that has written the prolog and `<server-data>`.
    pub fn new() -> Self {
        let mut w = Writer::default();
        w.out.extend_from_slice(PROLOG.as_bytes());
        w.open_tag(NS_PIE, "server-data", &[]);
        w
    }

    /// The default namespace in effect.
    fn ns(&self) -> &'static str {
        self.open.last().map_or("", |(ns, _)| ns)
    }

    /// `<name xmlns? attrs>` and a newline; closed by [`close`](Self::close).
    pub fn open_tag(&mut self, ns: &'static str, name: &'static str, attrs: &[(&str, &str)]) {
        self.out.push(b'<');
        self.out.extend_from_slice(name.as_bytes());
        if ns != self.ns() {
            write_attr(&mut self.out, "xmlns", ns);
        }
        for (k, v) in attrs {
            write_attr(&mut self.out, k, v);
        }
        self.out.extend_from_slice(b">\n");
        self.open.push((ns, name));
    }

    /// Close the innermost open tag.
    pub fn close(&mut self) {
        if let Some((_, name)) = self.open.pop() {
            self.out.extend_from_slice(b"</");
            self.out.extend_from_slice(name.as_bytes());
            self.out.extend_from_slice(b">\n");
        }
    }

    /// One unit on its own line.
    pub fn unit(&mut self, e: &Element) {
        let ns = self.ns();
        e.write_to(&mut self.out, ns);
        self.out.push(b'\n');
    }

    /// Close everything still open (`</server-data>` last).
    pub fn finish(&mut self) {
        while !self.open.is_empty() {
            self.close();
        }
    }

    /// Take the bytes written so far.
    pub fn take(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.out)
    }
}
