//! The XEP-0313 query form (XEP-0004 data form): reading a submitted one
//! into an [`ArchiveFilter`], and the blank form offered to clients.

use super::NS;
use crate::archive::{ArchiveFilter, ArchiveId, WithJid};
use crate::jid::Jid;
use crate::stanza::StanzaError;
use crate::time::{parse_datetime, Millis};
use crate::xml::Element;

/// XEP-0004 namespace.
pub const DATA: &str = "jabber:x:data";
/// XEP-0122 namespace (the open `ids` list).
const VALIDATE: &str = "http://jabber.org/protocol/xdata-validate";

/// Most ids one `ids` field may name: each is a lookup.
pub const MAX_IDS: usize = 1000;

/// The values of one submitted field.
fn values(field: &Element) -> Vec<String> {
    field
        .elements()
        .filter(|v| v.is(DATA, "value"))
        .map(|v| v.text().trim().to_owned())
        .collect()
}

/// The one value of a single-valued field; `None` when it has none.
fn single(field: &Element) -> Result<Option<String>, StanzaError> {
    let mut v = values(field);
    match v.len() {
        0 => Ok(None),
        1 => Ok(v.pop().filter(|s| !s.is_empty())),
        _ => Err(StanzaError::BadRequest),
    }
}

/// An id the client names. A string that is not an id of ours cannot be
/// in the archive: item-not-found, as for an unknown id (§4.1.3).
fn id(text: &str) -> Result<ArchiveId, StanzaError> {
    ArchiveId::parse(text).ok_or(StanzaError::ItemNotFound)
}

/// A `start`/`end` value in ms; `round_up` for `start`, whose bound is
/// inclusive, when the value falls inside a millisecond. Instants before
/// 1970 clamp to 0 (nothing is archived then).
fn instant(text: &str, round_up: bool) -> Result<Option<Millis>, StanzaError> {
    let dt = parse_datetime(text).ok_or(StanzaError::BadRequest)?;
    let ms = if round_up && dt.inexact {
        dt.millis.saturating_add(1)
    } else {
        dt.millis
    };
    Ok(Some(u64::try_from(ms).unwrap_or(0)))
}

/// Read the query's form (absent: everything matches). Unknown fields are
/// refused with feature-not-implemented (§4.1.5).
pub fn parse_filter(query: &Element) -> Result<ArchiveFilter, StanzaError> {
    let mut filter = ArchiveFilter::default();
    let Some(x) = query.child(DATA, "x") else {
        return Ok(filter);
    };
    if x.attr("type") != Some("submit") {
        return Err(StanzaError::BadRequest);
    }
    for field in x.elements().filter(|f| f.is(DATA, "field")) {
        let Some(var) = field.attr("var") else {
            return Err(StanzaError::BadRequest);
        };
        match var {
            "FORM_TYPE" => {
                if single(field)?.as_deref() != Some(NS) {
                    return Err(StanzaError::BadRequest);
                }
            }
            "with" => {
                if let Some(v) = single(field)? {
                    let jid = Jid::parse(&v).map_err(|_| StanzaError::JidMalformed)?;
                    filter.with = Some(WithJid::new(jid.as_str()));
                }
            }
            "start" => {
                if let Some(v) = single(field)? {
                    filter.start = instant(&v, true)?;
                }
            }
            "end" => {
                if let Some(v) = single(field)? {
                    // Before 1970 nothing matches: an end of 0 keeps only ms 0,
                    // where nothing is ever archived.
                    filter.end = instant(&v, false)?;
                }
            }
            "after-id" => {
                if let Some(v) = single(field)? {
                    filter.after_id = Some(id(&v)?);
                }
            }
            "before-id" => {
                if let Some(v) = single(field)? {
                    filter.before_id = Some(id(&v)?);
                }
            }
            "ids" => {
                let vals = values(field);
                if vals.len() > MAX_IDS {
                    return Err(StanzaError::PolicyViolation);
                }
                filter.ids = Some(
                    vals.iter()
                        .filter(|v| !v.is_empty())
                        .map(|v| id(v))
                        .collect::<Result<_, _>>()?,
                );
            }
            _ => return Err(StanzaError::FeatureNotImplemented),
        }
    }
    Ok(filter)
}

/// The form a client gets for an iq `get` of the query (§4.1.5): every
/// field this server understands.
pub fn blank_form() -> Element {
    let field = |var: &str, ty: &str| {
        Element::new(DATA, "field")
            .with_attr("var", var)
            .with_attr("type", ty)
    };
    Element::new(DATA, "x")
        .with_attr("type", "form")
        .with_child(
            field("FORM_TYPE", "hidden").with_child(Element::new(DATA, "value").with_text(NS)),
        )
        .with_child(field("with", "jid-single"))
        .with_child(field("start", "text-single"))
        .with_child(field("end", "text-single"))
        .with_child(field("before-id", "text-single"))
        .with_child(field("after-id", "text-single"))
        .with_child(
            field("ids", "list-multi").with_child(
                Element::new(VALIDATE, "validate")
                    .with_attr("datatype", "xs:string")
                    .with_child(Element::new(VALIDATE, "open")),
            ),
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(fields: &str) -> Element {
        let xml = format!(
            "<query xmlns='urn:xmpp:mam:2'><x xmlns='jabber:x:data' type='submit'>\
             <field var='FORM_TYPE' type='hidden'><value>urn:xmpp:mam:2</value></field>\
             {fields}</x></query>"
        );
        Element::parse(xml.as_bytes()).expect("test XML")
    }

    #[test]
    fn reads_the_fields() {
        let id = ArchiveId::first_at(5);
        let f = parse_filter(&query(&format!(
            "<field var='with'><value>Juliet@Capulet.lit/Balcony</value></field>\
             <field var='start'><value>1970-01-01T00:00:01.0001Z</value></field>\
             <field var='end'><value>1970-01-01T00:00:02Z</value></field>\
             <field var='after-id'><value>{id}</value></field>\
             <field var='ids'><value>{id}</value><value>{id}</value></field>"
        )))
        .expect("valid");
        assert_eq!(
            f.with,
            Some(WithJid {
                bare: "juliet@capulet.lit".into(),
                resource: Some("Balcony".into())
            })
        );
        assert_eq!((f.start, f.end), (Some(1001), Some(2000)));
        assert_eq!(f.after_id, Some(id));
        assert_eq!(f.ids, Some(vec![id, id]));
        assert_eq!(
            parse_filter(&query("<field var='with'/>")).map(|f| f.with),
            Ok(None)
        );
    }

    #[test]
    fn refuses_what_it_cannot_use() {
        for (fields, err) in [
            (
                "<field var='with'><value>@x</value></field>",
                StanzaError::JidMalformed,
            ),
            (
                "<field var='start'><value>yesterday</value></field>",
                StanzaError::BadRequest,
            ),
            (
                "<field var='after-id'><value>nope</value></field>",
                StanzaError::ItemNotFound,
            ),
            (
                "<field var='include-groupchat'><value>true</value></field>",
                StanzaError::FeatureNotImplemented,
            ),
            (
                "<field var='with'><value>a@b</value><value>c@d</value></field>",
                StanzaError::BadRequest,
            ),
            ("<field><value>x</value></field>", StanzaError::BadRequest),
        ] {
            assert_eq!(parse_filter(&query(fields)), Err(err), "{fields}");
        }
        let wrong_type = Element::parse(
            b"<query xmlns='urn:xmpp:mam:2'><x xmlns='jabber:x:data' type='submit'>\
              <field var='FORM_TYPE'><value>urn:xmpp:mam:1</value></field></x></query>",
        )
        .expect("test XML");
        assert_eq!(parse_filter(&wrong_type), Err(StanzaError::BadRequest));
        let many: String = (0..=MAX_IDS)
            .map(|_| format!("<value>{}</value>", ArchiveId::MIN))
            .collect();
        assert_eq!(
            parse_filter(&query(&format!("<field var='ids'>{many}</field>"))),
            Err(StanzaError::PolicyViolation)
        );
    }
}
