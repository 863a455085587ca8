//! Serialization of [`Element`] trees.
//!
//! Every routed stanza passes through here, so it writes straight into the
//! output buffer without intermediate strings. The output is built so that the
//! parser reads back exactly the tree that was written: text and attribute
//! values escape every character XML would otherwise normalise (`\r` in text;
//! tab, newline and carriage return in attributes), namespaces are always
//! declared explicitly, and the reserved `xml` namespace is only ever written
//! with its reserved prefix (binding it as a default namespace is illegal).

use super::element::{Element, Node, XML_NS};

/// Escape character data: `&`, `<`, `>` and `\r` (which a parser would
/// otherwise turn into `\n`).
pub fn escape_text(s: &str, out: &mut Vec<u8>) {
    escape(s, out, false);
}

/// Escape an attribute value for single- or double-quoted use: `&`, `<`, `>`,
/// `"`, `'`, and tab/newline/carriage return as character references so they
/// survive attribute-value normalisation.
pub fn escape_attr(s: &str, out: &mut Vec<u8>) {
    escape(s, out, true);
}

/// ` name='value'`, the value escaped: an attribute written by hand (a
/// stream header, a BOSH body) rather than from an [`Element`].
pub fn write_attr(out: &mut Vec<u8>, name: &str, value: &str) {
    out.push(b' ');
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b"='");
    escape_attr(value, out);
    out.push(b'\'');
}

#[inline]
fn escape(s: &str, out: &mut Vec<u8>, attr: bool) {
    let bytes = s.as_bytes();
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let rep: &[u8] = match b {
            b'&' => b"&amp;",
            b'<' => b"&lt;",
            b'>' => b"&gt;",
            b'\r' => b"&#xD;",
            b'"' if attr => b"&quot;",
            b'\'' if attr => b"&apos;",
            b'\t' if attr => b"&#x9;",
            b'\n' if attr => b"&#xA;",
            _ => continue,
        };
        out.extend_from_slice(&bytes[start..i]);
        out.extend_from_slice(rep);
        start = i + 1;
    }
    out.extend_from_slice(&bytes[start..]);
}

/// Append the decimal representation of `n` without going through `fmt`.
fn push_usize(out: &mut Vec<u8>, mut n: usize) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    loop {
        i -= 1;
        // `n % 10` is below 10, so the cast cannot truncate.
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[i..]);
}

fn push_name(out: &mut Vec<u8>, el: &Element) {
    if el.ns == XML_NS {
        out.extend_from_slice(b"xml:");
    }
    out.extend_from_slice(el.name.as_bytes());
}

impl Element {
    /// Serialize into `out`, omitting xmlns when `self.ns == parent_default_ns`
    /// (a stanza inside a jabber:client stream is written with
    /// `parent_default_ns = "jabber:client"`).
    pub fn write_to(&self, out: &mut Vec<u8>, parent_default_ns: &str) {
        let mut prefixes = Vec::new();
        self.write_scoped(out, parent_default_ns, &mut prefixes);
    }

    /// `prefixes[i]` is the namespace bound to `ns{i}` by an ancestor: a
    /// prefix is declared once for the subtree that needs it, not again on
    /// every element with a qualified attribute (which let a long namespace
    /// be repeated by every routed, archived and offline copy).
    fn write_scoped<'a>(
        &'a self,
        out: &mut Vec<u8>,
        parent_default_ns: &str,
        prefixes: &mut Vec<&'a str>,
    ) {
        let scope = prefixes.len();
        out.push(b'<');
        push_name(out, self);
        // An element in the xml namespace is written prefixed and leaves the
        // default namespace of its children alone.
        let default_ns = if self.ns == XML_NS {
            parent_default_ns
        } else {
            if self.ns != parent_default_ns {
                out.extend_from_slice(b" xmlns='");
                escape_attr(&self.ns, out);
                out.push(b'\'');
            }
            self.ns.as_str()
        };
        for a in &self.attrs {
            out.push(b' ');
            if a.ns == XML_NS {
                out.extend_from_slice(b"xml:");
            } else if !a.ns.is_empty() {
                let idx = match prefixes.iter().position(|ns| *ns == a.ns.as_str()) {
                    Some(i) => i,
                    None => {
                        prefixes.push(a.ns.as_str());
                        let i = prefixes.len() - 1;
                        out.extend_from_slice(b"xmlns:ns");
                        push_usize(out, i);
                        out.extend_from_slice(b"='");
                        escape_attr(&a.ns, out);
                        out.extend_from_slice(b"' ");
                        i
                    }
                };
                out.extend_from_slice(b"ns");
                push_usize(out, idx);
                out.push(b':');
            }
            out.extend_from_slice(a.name.as_bytes());
            out.extend_from_slice(b"='");
            escape_attr(&a.value, out);
            out.push(b'\'');
        }
        let has_content = self.children.iter().any(|n| match n {
            Node::Element(_) => true,
            Node::Text(t) => !t.is_empty(),
        });
        if has_content {
            out.push(b'>');
            for n in &self.children {
                match n {
                    Node::Element(e) => e.write_scoped(out, default_ns, prefixes),
                    Node::Text(t) => escape_text(t, out),
                }
            }
            out.extend_from_slice(b"</");
            push_name(out, self);
            out.push(b'>');
        } else {
            out.extend_from_slice(b"/>");
        }
        // The declarations made here end with this element.
        prefixes.truncate(scope);
    }

    /// Standalone serialization (always declares its xmlns, except the empty
    /// namespace, which needs no declaration at the top).
    pub fn to_xml(&self) -> String {
        let mut out = Vec::with_capacity(128);
        self.write_to(&mut out, "");
        // Everything written is either a `&str` copied whole or ASCII
        // markup, so the buffer is valid UTF-8.
        String::from_utf8(out)
            .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
    }
}
