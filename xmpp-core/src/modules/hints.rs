//! XEP-0334 message processing hints, and what deserves keeping for later:
//! the rules offline storage (XEP-0160) and archives share.

use crate::ns;
use crate::xml::Element;

/// XEP-0334 namespace.
pub const NS: &str = "urn:xmpp:hints";
/// XEP-0085 chat states namespace.
pub const CHATSTATES: &str = "http://jabber.org/protocol/chatstates";

/// A hint element is present.
pub fn has(msg: &Element, hint: &str) -> bool {
    msg.child(NS, hint).is_some()
}

/// The message carries something a person reads later: a body or subject,
/// or an extension payload (a receipt, a correction, an encrypted payload).
/// Chat states and hints alone are ephemeral (XEP-0085 §5.6: not stored).
pub fn has_content(msg: &Element) -> bool {
    msg.elements().any(|c| {
        if c.ns == ns::CLIENT {
            matches!(c.name.as_str(), "body" | "subject")
        } else {
            c.ns != CHATSTATES && c.ns != NS
        }
    })
}

/// Whether a message for an account with no available resource is kept in
/// offline storage: `<store/>` forces it, `<no-store/>` forbids it (XEP-0334
/// §4.3: not even temporarily), otherwise content decides.
pub fn offline_storable(msg: &Element) -> bool {
    if has(msg, "store") {
        return true;
    }
    !has(msg, "no-store") && has_content(msg)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn el(x: &str) -> Element {
        Element::parse(x.as_bytes()).expect("test XML")
    }

    #[test]
    fn what_offline_storage_keeps() {
        let keep = [
            "<message xmlns='jabber:client'><body>hi</body></message>",
            "<message xmlns='jabber:client'><received xmlns='urn:xmpp:receipts' id='1'/></message>",
            "<message xmlns='jabber:client'><composing xmlns='http://jabber.org/protocol/chatstates'/><store xmlns='urn:xmpp:hints'/></message>",
            "<message xmlns='jabber:client'><body>x</body><no-permanent-store xmlns='urn:xmpp:hints'/></message>",
        ];
        let drop = [
            "<message xmlns='jabber:client'><composing xmlns='http://jabber.org/protocol/chatstates'/></message>",
            "<message xmlns='jabber:client'><thread>t</thread><paused xmlns='http://jabber.org/protocol/chatstates'/></message>",
            "<message xmlns='jabber:client'><body>x</body><no-store xmlns='urn:xmpp:hints'/></message>",
            "<message xmlns='jabber:client'/>",
        ];
        for k in keep {
            assert!(offline_storable(&el(k)), "{k}");
        }
        for d in drop {
            assert!(!offline_storable(&el(d)), "{d}");
        }
    }
}
