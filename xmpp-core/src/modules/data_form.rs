//! XEP-0004 data forms: reading a submitted form's fields and building
//! forms and fields. Shared by every module that speaks forms (pubsub node
//! configuration, MUC room configuration and registration).

use crate::stanza::StanzaError;
use crate::xml::Element;

/// `jabber:x:data`.
pub const DATA: &str = "jabber:x:data";

/// The fields of a submitted form, FORM_TYPE aside: (var, values).
pub type Fields = Vec<(String, Vec<String>)>;

/// Read a submitted `jabber:x:data` form (`<x type='submit'/>`).
pub fn parse_form(x: &Element) -> Result<Fields, StanzaError> {
    if !x.is(DATA, "x") {
        return Err(StanzaError::BadRequest);
    }
    Ok(x.elements()
        .filter(|f| f.is(DATA, "field"))
        .filter_map(|f| {
            let var = f.attr("var")?;
            (var != "FORM_TYPE").then(|| {
                let values = f
                    .elements()
                    .filter(|v| v.is(DATA, "value"))
                    .map(Element::text)
                    .collect();
                (var.to_owned(), values)
            })
        })
        .collect())
}

/// A boolean field's value (`1`/`true`, `0`/`false`), from the one value
/// `single` reads.
pub fn boolean(value: &str) -> Result<bool, StanzaError> {
    match value {
        "1" | "true" => Ok(true),
        "0" | "false" => Ok(false),
        _ => Err(StanzaError::NotAcceptable),
    }
}

/// `1` or `0`, as forms and stored configurations write booleans.
pub fn flag(b: bool) -> &'static str {
    if b {
        "1"
    } else {
        "0"
    }
}

/// A form of `kind` (`form`, `result`) with its hidden FORM_TYPE.
pub fn form_start(kind: &str, form_type: &str) -> Element {
    Element::new(DATA, "x")
        .with_attr("type", kind)
        .with_child(field("FORM_TYPE", "hidden", form_type))
}

/// A form field with one value (none when empty, FORM_TYPE aside).
pub fn field(var: &str, kind: &str, value: &str) -> Element {
    let value = (!value.is_empty() || kind == "hidden").then(|| value.to_owned());
    field_values(var, Some(kind), value)
}

/// A form field of `kind` (untyped when `None`) with its values.
pub fn field_values(
    var: &str,
    kind: Option<&str>,
    values: impl IntoIterator<Item = String>,
) -> Element {
    let mut f = Element::new(DATA, "field").with_attr("var", var);
    if let Some(kind) = kind {
        f = f.with_attr("type", kind);
    }
    values.into_iter().fold(f, |f, v| {
        f.with_child(Element::new(DATA, "value").with_text(v))
    })
}

/// Fields with one value each, as tests submit them.
#[cfg(test)]
pub fn single_values(pairs: &[(&str, &str)]) -> Fields {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), vec![(*v).to_owned()]))
        .collect()
}
