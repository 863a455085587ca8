//! XEP-0059 Result Set Management: the `<set/>` of a request, and the one
//! summarizing a returned page.

use crate::stanza::StanzaError;
use crate::xml::Element;

/// XEP-0059 namespace.
pub const NS: &str = "http://jabber.org/protocol/rsm";

/// What a request's `<set/>` asks for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RsmRequest {
    /// `<max/>`: at most this many items.
    pub max: Option<usize>,
    /// `<after/>`: the page after this item.
    pub after: Option<String>,
    /// `<before/>`: the page before this item; `Some("")` for an empty
    /// `<before/>`, the last page.
    pub before: Option<String>,
}

impl RsmRequest {
    /// Read the `<set/>` child of `parent`, if any. `<index/>` (jumping to
    /// a position) is not offered: random access would need counting
    /// through the archive, which RSM lets a responder decline.
    pub fn parse(parent: &Element) -> Result<Self, StanzaError> {
        let Some(set) = parent.child(NS, "set") else {
            return Ok(RsmRequest::default());
        };
        let mut req = RsmRequest::default();
        for e in set.elements() {
            if e.ns != NS {
                continue;
            }
            let text = e.text();
            let text = text.trim();
            match e.name.as_str() {
                "max" => {
                    req.max = Some(text.parse().map_err(|_| StanzaError::BadRequest)?);
                }
                "after" => {
                    if text.is_empty() {
                        return Err(StanzaError::BadRequest);
                    }
                    req.after = Some(text.to_owned());
                }
                "before" => req.before = Some(text.to_owned()),
                "index" => return Err(StanzaError::FeatureNotImplemented),
                _ => return Err(StanzaError::BadRequest),
            }
        }
        Ok(req)
    }
}

/// The `<set/>` describing a page: its first item (with its index when
/// known), its last item, and the total when known.
pub fn page_set(
    first: Option<(&str, Option<u64>)>,
    last: Option<&str>,
    count: Option<u64>,
) -> Element {
    let mut set = Element::new(NS, "set");
    if let Some((id, index)) = first {
        let mut f = Element::new(NS, "first").with_text(id);
        if let Some(i) = index {
            f.set_attr("index", i.to_string());
        }
        set = set.with_child(f);
    }
    if let Some(id) = last {
        set = set.with_child(Element::new(NS, "last").with_text(id));
    }
    if let Some(c) = count {
        set = set.with_child(Element::new(NS, "count").with_text(c.to_string()));
    }
    set
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(set: &str) -> Element {
        Element::parse(format!("<query xmlns='q'>{set}</query>").as_bytes()).expect("test XML")
    }

    #[test]
    fn reads_max_after_and_before() {
        let r = RsmRequest::parse(&q(
            "<set xmlns='http://jabber.org/protocol/rsm'><max>10</max><after>A</after></set>",
        ));
        assert_eq!(
            r,
            Ok(RsmRequest {
                max: Some(10),
                after: Some("A".into()),
                before: None
            })
        );
        let r = RsmRequest::parse(&q(
            "<set xmlns='http://jabber.org/protocol/rsm'><before/></set>",
        ));
        assert_eq!(r.map(|r| r.before), Ok(Some(String::new())));
        assert_eq!(RsmRequest::parse(&q("")), Ok(RsmRequest::default()));
        for (bad, err) in [
            ("<max>-1</max>", StanzaError::BadRequest),
            ("<max>ten</max>", StanzaError::BadRequest),
            ("<after/>", StanzaError::BadRequest),
            ("<index>3</index>", StanzaError::FeatureNotImplemented),
        ] {
            let set = format!("<set xmlns='http://jabber.org/protocol/rsm'>{bad}</set>");
            assert_eq!(RsmRequest::parse(&q(&set)), Err(err), "{bad}");
        }
    }

    #[test]
    fn page_set_has_what_is_known() {
        let s = page_set(Some(("a", Some(0))), Some("b"), Some(2)).to_xml();
        assert!(
            s.contains("<first index=\"0\">a</first>") || s.contains("<first index='0'>a</first>"),
            "{s}"
        );
        let empty = page_set(None, None, Some(0));
        assert_eq!(empty.elements().count(), 1);
    }
}
