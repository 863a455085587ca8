//! One run's results: exactly one JSON line on stdout (for scripts) and a
//! human-readable table on stderr, with the fields in insertion order.

use std::fmt::Write as _;

/// A value in the report.
#[derive(Debug, Clone)]
pub enum Value {
    /// A string.
    Str(String),
    /// An integer.
    Int(i128),
    /// A float (printed with three decimals; NaN/inf as null).
    Num(f64),
    /// A boolean.
    Bool(bool),
    /// No value (JSON null), e.g. server figures without `--server-pid`.
    Null,
}

/// An ordered set of fields.
#[derive(Debug, Default, Clone)]
pub struct Report {
    fields: Vec<(String, Value)>,
}

impl Report {
    /// Set a field (replacing an earlier one of the same name in place).
    pub fn set(&mut self, key: &str, v: Value) -> &mut Self {
        if let Some(slot) = self.fields.iter_mut().find(|(k, _)| k == key) {
            slot.1 = v;
        } else {
            self.fields.push((key.to_owned(), v));
        }
        self
    }

    /// A string field.
    pub fn str(&mut self, key: &str, v: impl Into<String>) -> &mut Self {
        self.set(key, Value::Str(v.into()))
    }

    /// An integer field.
    pub fn int(&mut self, key: &str, v: impl Into<i128>) -> &mut Self {
        self.set(key, Value::Int(v.into()))
    }

    /// A float field.
    pub fn num(&mut self, key: &str, v: f64) -> &mut Self {
        self.set(key, Value::Num(v))
    }

    /// A float field that may be absent.
    pub fn opt_num(&mut self, key: &str, v: Option<f64>) -> &mut Self {
        self.set(key, v.map_or(Value::Null, Value::Num))
    }

    /// An integer field that may be absent.
    pub fn opt_int(&mut self, key: &str, v: Option<u64>) -> &mut Self {
        self.set(key, v.map_or(Value::Null, |v| Value::Int(v.into())))
    }

    /// A boolean field.
    pub fn bool(&mut self, key: &str, v: bool) -> &mut Self {
        self.set(key, Value::Bool(v))
    }

    /// The single JSON line (no trailing newline).
    pub fn json(&self) -> String {
        let mut out = String::from("{");
        for (i, (k, v)) in self.fields.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            json_str(&mut out, k);
            out.push(':');
            match v {
                Value::Str(s) => json_str(&mut out, s),
                Value::Int(n) => {
                    let _ = write!(out, "{n}");
                }
                Value::Num(x) if x.is_finite() => {
                    let _ = write!(out, "{}", (x * 1000.0).round() / 1000.0);
                }
                Value::Num(_) | Value::Null => out.push_str("null"),
                Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            }
        }
        out.push('}');
        out
    }

    /// The human-readable table.
    pub fn table(&self) -> String {
        let width = self.fields.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
        let mut out = String::new();
        for (k, v) in &self.fields {
            let shown = match v {
                Value::Str(s) => s.clone(),
                Value::Int(n) => n.to_string(),
                Value::Num(x) if x.abs() >= 100.0 => format!("{x:.0}"),
                Value::Num(x) => format!("{x:.3}"),
                Value::Bool(b) => b.to_string(),
                Value::Null => "-".into(),
            };
            let _ = writeln!(out, "  {k:<width$}  {shown}");
        }
        out
    }
}

fn json_str(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_line() {
        let mut r = Report::default();
        r.str("scenario", "messages")
            .int("pairs", 50)
            .num("p99_ms", 1.23456)
            .opt_num("cpu", None)
            .bool("ok", true)
            .str("label", "a\"b\n");
        assert_eq!(
            r.json(),
            r#"{"scenario":"messages","pairs":50,"p99_ms":1.235,"cpu":null,"ok":true,"label":"a\"b\n"}"#
        );
    }
}
