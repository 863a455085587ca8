//! XEP-0115 Entity Capabilities for the server: the verification string of
//! its disco#info, announced in stream features so clients can cache what
//! the server supports instead of asking at every login.

use crate::ns;
use crate::xml::Element;
use base64::Engine as _;
use sha1::{Digest, Sha1};

/// XEP-0115 namespace.
pub const NS: &str = "http://jabber.org/protocol/caps";
/// The node our caps name.
pub const NODE: &str = "https://vireo.im/caps";

/// A data form as §5.1 orders it: FORM_TYPE, then (var, sorted values).
type Form = (String, Vec<(String, Vec<String>)>);

/// §5.1: the SHA-1 verification string of a disco#info `<query/>`.
pub fn ver(query: &Element) -> String {
    let mut s = String::new();
    let mut identities: Vec<String> = query
        .elements()
        .filter(|e| e.is(ns::DISCO_INFO, "identity"))
        .map(|e| {
            format!(
                "{}/{}/{}/{}",
                e.attr("category").unwrap_or_default(),
                e.attr("type").unwrap_or_default(),
                e.attr_ns(crate::xml::XML_NS, "lang").unwrap_or_default(),
                e.attr("name").unwrap_or_default()
            )
        })
        .collect();
    identities.sort();
    for i in identities {
        s.push_str(&i);
        s.push('<');
    }
    let mut features: Vec<&str> = query
        .elements()
        .filter(|e| e.is(ns::DISCO_INFO, "feature"))
        .filter_map(|e| e.attr("var"))
        .collect();
    features.sort_unstable();
    for f in features {
        s.push_str(f);
        s.push('<');
    }
    const DATA: &str = "jabber:x:data";
    let values = |f: &Element| -> Vec<String> {
        let mut v: Vec<String> = f
            .elements()
            .filter(|e| e.is(DATA, "value"))
            .map(Element::text)
            .collect();
        v.sort();
        v
    };
    let mut forms: Vec<Form> = query
        .elements()
        .filter(|e| e.is(DATA, "x"))
        .map(|x| {
            let fields: Vec<&Element> = x.elements().filter(|e| e.is(DATA, "field")).collect();
            let form_type = fields
                .iter()
                .find(|f| f.attr("var") == Some("FORM_TYPE"))
                .map(|f| values(f).join(""))
                .unwrap_or_default();
            let mut rest: Vec<(String, Vec<String>)> = fields
                .iter()
                .filter(|f| f.attr("var") != Some("FORM_TYPE"))
                .map(|f| (f.attr("var").unwrap_or_default().to_owned(), values(f)))
                .collect();
            rest.sort();
            (form_type, rest)
        })
        .collect();
    forms.sort();
    for (form_type, fields) in forms {
        s.push_str(&form_type);
        s.push('<');
        for (var, vals) in fields {
            s.push_str(&var);
            s.push('<');
            for v in vals {
                s.push_str(&v);
                s.push('<');
            }
        }
    }
    base64::engine::general_purpose::STANDARD.encode(Sha1::digest(s.as_bytes()))
}

/// The `<c/>` stream feature (§6.3) for a disco#info query.
pub fn feature(query: &Element) -> Element {
    Element::new(NS, "c")
        .with_attr("hash", "sha-1")
        .with_attr("node", NODE)
        .with_attr("ver", ver(query))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// XEP-0115 §5.2 simple example: Exodus 0.9.1.
    #[test]
    fn reproduces_the_xep_example() {
        let q = Element::parse(
            b"<query xmlns='http://jabber.org/protocol/disco#info'>\
              <identity category='client' name='Exodus 0.9.1' type='pc'/>\
              <feature var='http://jabber.org/protocol/caps'/>\
              <feature var='http://jabber.org/protocol/disco#info'/>\
              <feature var='http://jabber.org/protocol/disco#items'/>\
              <feature var='http://jabber.org/protocol/muc'/></query>",
        )
        .expect("example");
        assert_eq!(ver(&q), "QgayPKawpkPSDYmwT/WM94uAlu0=");
    }
}
