//! Arbitrary strings into the JID parser: it never panics, and a parsed JID
//! displays as a string that parses back to the same JID (normalization is a
//! fixed point), as do its bare and domain parts.

use xmpp_core::jid::Jid;

/// Run one input.
pub fn run(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let Ok(jid) = Jid::parse(&text) else {
        return;
    };
    let shown = jid.to_string();
    let again = Jid::parse(&shown)
        .unwrap_or_else(|e| panic!("{text:?} parsed, but its display {shown:?} does not: {e:?}"));
    assert_eq!(again, jid, "{text:?} -> {shown:?}");
    assert_eq!(again.to_string(), shown, "{text:?}");

    let bare = jid.bare();
    assert_eq!(
        Jid::parse(&jid.bare_str()).ok(),
        Some(bare.clone()),
        "{text:?}"
    );
    assert!(bare.is_bare());
    assert_eq!(
        Jid::domain_jid(jid.domain()).ok().as_ref().map(Jid::domain),
        Some(jid.domain()),
        "{text:?}"
    );
    if let Some(resource) = jid.resource() {
        assert_eq!(
            bare.with_resource(resource).ok(),
            Some(jid.clone()),
            "{text:?}"
        );
    }
}
