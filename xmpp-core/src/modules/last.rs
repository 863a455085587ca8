//! XEP-0012 Last Activity: the server's uptime (§5), and for an account
//! (§3) how long ago it logged out and the status it left with — the hub
//! answers that on the account's behalf, from what it stored at logout
//! ([`LAST_KEY`]).

use super::{ModuleCtx, ServerModule};
use crate::stanza::iq_result;
use crate::time::Millis;
use crate::xml::Element;

/// XEP-0012 namespace.
pub const NS: &str = "jabber:iq:last";

/// Storage key of an account's last logout: the time (ms since the Unix
/// epoch) on the first line, the status of its unavailable presence after.
pub const LAST_KEY: &str = "last";

/// The stored document for a logout at `at` with `status`.
pub fn logout_document(at: Millis, status: &str) -> String {
    format!("{at}\n{status}")
}

/// A stored logout: (time, status); `None` for an unreadable document.
pub fn parse_logout(doc: &str) -> Option<(Millis, &str)> {
    let (at, status) = doc.split_once('\n').unwrap_or((doc, ""));
    Some((at.trim().parse().ok()?, status))
}

/// The `<query/>` answering a last-activity request: `seconds` and, when
/// there is one, the status text.
pub fn query(seconds: u64, status: &str) -> Element {
    let q = Element::new(NS, "query").with_attr("seconds", seconds.to_string());
    if status.is_empty() {
        q
    } else {
        q.with_text(status)
    }
}

/// XEP-0012 for the server.
#[derive(Debug)]
pub struct LastActivity;

impl ServerModule for LastActivity {
    fn name(&self) -> &'static str {
        "last"
    }
    fn features(&self) -> &'static [&'static str] {
        &[NS]
    }
    fn handle_iq(&mut self, ctx: &ModuleCtx<'_>, iq: &Element) -> Option<Element> {
        let child = iq.first_element()?;
        if iq.attr("type") != Some("get") || !child.is(NS, "query") {
            return None;
        }
        let uptime = ctx.now.saturating_sub(ctx.started) / 1000;
        Some(iq_result(iq).with_child(query(uptime, "")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logout_documents_round_trip() {
        let doc = logout_document(1_700_000_000_123, "Heading Home\nfor real");
        assert_eq!(
            parse_logout(&doc),
            Some((1_700_000_000_123, "Heading Home\nfor real"))
        );
        assert_eq!(parse_logout("42"), Some((42, "")));
        assert_eq!(parse_logout("garbage\nx"), None);
        let q = query(903, "Heading Home");
        assert_eq!(q.attr("seconds"), Some("903"));
        assert_eq!(q.text(), "Heading Home");
        assert!(query(0, "").children.is_empty());
    }
}
