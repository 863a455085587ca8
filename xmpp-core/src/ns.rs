//! Namespace URIs used by the core.

/// RFC 6120 stream root namespace.
pub const STREAM: &str = "http://etherx.jabber.org/streams";
/// RFC 6120 client content namespace.
pub const CLIENT: &str = "jabber:client";
/// RFC 7395 §3.3.1: `<open/>` and `<close/>`, the ends of a stream over
/// WebSocket.
pub const FRAMING: &str = "urn:ietf:params:xml:ns:xmpp-framing";
/// RFC 6120 §4.9.3 stream error conditions.
pub const STREAM_ERRORS: &str = "urn:ietf:params:xml:ns:xmpp-streams";
/// RFC 6120 §8.3 stanza error conditions.
pub const STANZA_ERRORS: &str = "urn:ietf:params:xml:ns:xmpp-stanzas";
/// RFC 6120 §5 STARTTLS.
pub const TLS: &str = "urn:ietf:params:xml:ns:xmpp-tls";
/// RFC 6120 §6 SASL.
pub const SASL: &str = "urn:ietf:params:xml:ns:xmpp-sasl";
/// RFC 6120 §7 resource binding.
pub const BIND: &str = "urn:ietf:params:xml:ns:xmpp-bind";
/// RFC 3921 session establishment (kept as an optional no-op).
pub const SESSION: &str = "urn:ietf:params:xml:ns:xmpp-session";
/// XEP-0440 SASL channel-binding type capability.
pub const SASL_CB: &str = "urn:xsf:xep-0440:0";
/// RFC 6121 §2 roster.
pub const ROSTER: &str = "jabber:iq:roster";
/// XEP-0237 roster versioning stream feature.
pub const ROSTER_VER: &str = "urn:xmpp:features:rosterver";
/// XEP-0030 disco#info.
pub const DISCO_INFO: &str = "http://jabber.org/protocol/disco#info";
/// XEP-0030 disco#items.
pub const DISCO_ITEMS: &str = "http://jabber.org/protocol/disco#items";
/// XEP-0199 ping.
pub const PING: &str = "urn:xmpp:ping";
/// XEP-0203 delayed delivery.
pub const DELAY: &str = "urn:xmpp:delay";
/// XEP-0160 offline storage feature (advertised as msgoffline).
pub const MSGOFFLINE: &str = "msgoffline";
/// XEP-0092 software version.
pub const VERSION: &str = "jabber:iq:version";
/// RFC 6120 server-to-server content namespace.
pub const SERVER: &str = "jabber:server";
/// XEP-0220 Server Dialback elements (`db:result`, `db:verify`), announced
/// by declaring this namespace on the s2s stream header.
pub const DIALBACK: &str = "jabber:server:dialback";
/// XEP-0288 bidirectional s2s: the request the initiating server sends.
pub const BIDI: &str = "urn:xmpp:bidi";
/// XEP-0288 stream feature.
pub const BIDI_FEATURE: &str = "urn:xmpp:features:bidi";
/// XEP-0220 §2.4.2 stream feature: dialback with error handling.
pub const DIALBACK_FEATURES: &str = "urn:xmpp:features:dialback";
