//! XEP-0215 External Service Discovery: the STUN/TURN services clients need
//! for calls, configured like Prosody's mod_turn_external, with short-lived
//! TURN credentials derived from a secret shared with the TURN server the
//! way coturn's `use-auth-secret` (the TURN REST API,
//! draft-uberti-behave-turn-rest) checks them:
//! username = `<expiry unix time>:<user>`,
//! password = base64(HMAC-SHA1(secret, username)).

use super::{Addressed, Context, Flow, Module, ModuleId};
use crate::jid::Jid;
use crate::stanza::{error_reply, iq_result, StanzaError};
use crate::time::format_datetime;
use crate::time::Millis;
use crate::xml::Element;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha1::Sha1;

/// XEP-0215 namespace.
pub const NS: &str = "urn:xmpp:extdisco:2";

/// The TURN/STUN server to advertise (Prosody's `turn_external_*`).
#[derive(Clone, PartialEq, Eq)]
pub struct TurnConfig {
    /// Host name or IP address of the server.
    pub host: String,
    /// STUN/TURN port (3478).
    pub port: u16,
    /// Secret shared with the TURN server (coturn's `static-auth-secret`);
    /// without it only STUN is advertised.
    pub secret: Option<String>,
    /// How long credentials stay valid, seconds.
    pub ttl_secs: u64,
    /// Also advertise STUN and TURN over TCP.
    pub tcp: bool,
    /// Port of TURN over TLS (`turns`), if the server offers it.
    pub tls_port: Option<u16>,
    /// The user part of credential usernames; `None`: the requester's bare
    /// JID, so the TURN server's logs say who relayed.
    pub user: Option<String>,
}

impl std::fmt::Debug for TurnConfig {
    /// The shared secret never reaches a log (module descriptions are
    /// logged and compared on reload).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TurnConfig")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("secret", &self.secret.as_ref().map(|_| "(hidden)"))
            .field("ttl_secs", &self.ttl_secs)
            .field("tcp", &self.tcp)
            .field("tls_port", &self.tls_port)
            .field("user", &self.user)
            .finish()
    }
}

/// One advertised service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Service {
    /// Registered service type: `stun`, `turn` or `turns`.
    pub kind: &'static str,
    /// `udp` or `tcp`.
    pub transport: &'static str,
    /// Host name or address.
    pub host: String,
    /// Port.
    pub port: u16,
    /// Needs the time-limited credentials.
    pub restricted: bool,
}

impl TurnConfig {
    /// The services, in Prosody's order: STUN and TURN over UDP, over TCP
    /// when enabled, then TURN over TLS. TURN needs the secret.
    pub fn services(&self) -> Vec<Service> {
        let turn = self.secret.is_some();
        let mut out = Vec::new();
        let mut add = |kind, transport, port, restricted| {
            out.push(Service {
                kind,
                transport,
                host: self.host.clone(),
                port,
                restricted,
            })
        };
        for transport in ["udp", "tcp"] {
            if transport == "tcp" && !self.tcp {
                continue;
            }
            add("stun", transport, self.port, false);
            if turn {
                add("turn", transport, self.port, true);
            }
        }
        if let (true, Some(tls)) = (turn, self.tls_port) {
            add("turns", "tcp", tls, true);
        }
        out
    }
}

/// coturn's REST API credentials for `user`, valid until `expires` (Unix
/// seconds): (username, password).
pub fn credentials(secret: &str, expires: u64, user: &str) -> (String, String) {
    let username = format!("{expires}:{user}");
    // HMAC accepts keys of any length; the error case cannot happen.
    let password = match Hmac::<Sha1>::new_from_slice(secret.as_bytes()) {
        Ok(mut mac) => {
            mac.update(username.as_bytes());
            base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
        }
        Err(_) => String::new(),
    };
    (username, password)
}

/// XEP-0215 for the server; advertised and answering only when a TURN/STUN
/// server is configured.
#[derive(Debug, Clone)]
pub struct ExternalServices {
    cfg: Option<TurnConfig>,
}

impl ExternalServices {
    /// The module for `cfg` (`None`: nothing configured).
    pub fn new(cfg: Option<TurnConfig>) -> Self {
        ExternalServices { cfg }
    }

    /// The `<service/>` element, with credentials for `user` when restricted.
    fn element(&self, cfg: &TurnConfig, s: &Service, user: &str, now_secs: u64) -> Element {
        let mut e = Element::new(NS, "service")
            .with_attr("type", s.kind)
            .with_attr("transport", s.transport)
            .with_attr("host", s.host.clone())
            .with_attr("port", s.port.to_string());
        if let (true, Some(secret)) = (s.restricted, &cfg.secret) {
            let expires = now_secs.saturating_add(cfg.ttl_secs);
            let (username, password) =
                credentials(secret, expires, cfg.user.as_deref().unwrap_or(user));
            e = e
                .with_attr("username", username)
                .with_attr("password", password)
                .with_attr(
                    "expires",
                    format_datetime(expires.saturating_mul(1000)).replace(".000Z", "Z"),
                )
                .with_attr("restricted", "1");
        }
        e
    }
}

/// Its identity.
pub const ID: ModuleId = ModuleId::new("extdisco");

impl Module for ExternalServices {
    fn id(&self) -> ModuleId {
        ID
    }

    fn server_features(&self) -> &'static [&'static str] {
        if self.cfg.is_some() {
            &[NS]
        } else {
            &[]
        }
    }

    fn iq(&mut self, cx: &mut Context<'_>, to: Addressed<'_>, iq: &Element) -> Flow {
        let Addressed::Server { domain } = to else {
            return Flow::Pass;
        };
        match self.answer(domain, cx.now(), iq) {
            Some(reply) => {
                cx.route(reply);
                Flow::Handled
            }
            None => Flow::Pass,
        }
    }
}

impl ExternalServices {
    /// The answer to `iq` sent to `domain` at `now`; `None` when it is not
    /// this module's (or no service is configured).
    fn answer(&self, domain: &str, now: Millis, iq: &Element) -> Option<Element> {
        let child = iq.first_element()?;
        if child.ns != NS || iq.attr("type") != Some("get") {
            return None;
        }
        let cfg = self.cfg.as_ref()?;
        let user = iq
            .attr("from")
            .and_then(|f| Jid::parse(f).ok())
            .map(|j| j.bare_str())
            .unwrap_or_default();
        let now_secs = now / 1000;
        let services = cfg.services();
        match child.name.as_str() {
            // §3.1, §3.2: everything, or the services of one type.
            "services" => {
                let wanted = child.attr("type");
                let mut list = Element::new(NS, "services");
                if let Some(t) = wanted {
                    list.set_attr("type", t);
                }
                for s in services
                    .iter()
                    .filter(|s| wanted.is_none_or(|t| t == s.kind))
                {
                    list = list.with_child(self.element(cfg, s, &user, now_secs));
                }
                Some(iq_result(iq).with_child(list))
            }
            // §3.3: credentials for the named service(s); host and type are
            // required, the port narrows.
            "credentials" => {
                let mut asked = Vec::new();
                for s in child.elements().filter(|e| e.is(NS, "service")) {
                    match (s.attr("type"), s.attr("host")) {
                        (Some(t), Some(h)) => {
                            let port = s.attr("port").and_then(|p| p.parse::<u16>().ok());
                            asked.push((t, h, port));
                        }
                        _ => return Some(error_reply(iq, StanzaError::BadRequest, domain)),
                    }
                }
                let matching: Vec<&Service> = services
                    .iter()
                    .filter(|s| s.restricted)
                    .filter(|s| {
                        asked.iter().any(|(t, h, p)| {
                            *t == s.kind && *h == s.host && p.is_none_or(|p| p == s.port)
                        })
                    })
                    .collect();
                if matching.is_empty() {
                    return Some(error_reply(iq, StanzaError::ItemNotFound, domain));
                }
                let mut list = Element::new(NS, "credentials");
                for s in matching {
                    list = list.with_child(self.element(cfg, s, &user, now_secs));
                }
                Some(iq_result(iq).with_child(list))
            }
            _ => Some(error_reply(iq, StanzaError::BadRequest, domain)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_follow_coturns_rest_api() {
        // Computed independently with coturn's documented recipe:
        // echo -n "$username" | openssl dgst -binary -sha1 -hmac "$secret" | openssl base64
        let (u, p) = credentials("north-wind-secret", 1_700_086_400, "alice@localhost");
        assert_eq!(u, "1700086400:alice@localhost");
        assert_eq!(p, "wYkUg3NlwFY0QEE44BCfQrv/t14=");
    }

    fn cfg() -> TurnConfig {
        TurnConfig {
            host: "turn.example.org".into(),
            port: 3478,
            secret: Some("north-wind-secret".into()),
            ttl_secs: 86_400,
            tcp: true,
            tls_port: Some(5349),
            user: None,
        }
    }

    #[test]
    fn services_follow_the_configuration() {
        let kinds = |c: &TurnConfig| -> Vec<(&str, &str, u16, bool)> {
            c.services()
                .iter()
                .map(|s| (s.kind, s.transport, s.port, s.restricted))
                .collect()
        };
        assert_eq!(
            kinds(&cfg()),
            vec![
                ("stun", "udp", 3478, false),
                ("turn", "udp", 3478, true),
                ("stun", "tcp", 3478, false),
                ("turn", "tcp", 3478, true),
                ("turns", "tcp", 5349, true),
            ]
        );
        let stun_only = TurnConfig {
            secret: None,
            tcp: false,
            ..cfg()
        };
        assert_eq!(kinds(&stun_only), vec![("stun", "udp", 3478, false)]);
    }

    fn ask(m: &mut ExternalServices, xml: &str) -> Option<Element> {
        m.answer(
            "localhost",
            1_700_000_000_123,
            &Element::parse(xml.as_bytes()).expect("XML"),
        )
    }

    #[test]
    fn services_query_with_type_filter_and_credentials() {
        let mut m = ExternalServices::new(Some(cfg()));
        assert_eq!(m.server_features(), &[NS]);
        let r = ask(&mut m, "<iq xmlns='jabber:client' type='get' id='1' from='alice@localhost/a' to='localhost'><services xmlns='urn:xmpp:extdisco:2' type='turn'/></iq>").expect("answered");
        let list = r.child(NS, "services").expect("services");
        assert_eq!(list.attr("type"), Some("turn"));
        let turn: Vec<&Element> = list.elements().collect();
        assert_eq!(turn.len(), 2);
        assert_eq!(turn[0].attr("username"), Some("1700086400:alice@localhost"));
        assert_eq!(
            turn[0].attr("password"),
            Some("wYkUg3NlwFY0QEE44BCfQrv/t14=")
        );
        assert_eq!(turn[0].attr("expires"), Some("2023-11-15T22:13:20Z"));
        assert_eq!(turn[0].attr("restricted"), Some("1"));

        let c = ask(&mut m, "<iq xmlns='jabber:client' type='get' id='2' from='alice@localhost/a' to='localhost'><credentials xmlns='urn:xmpp:extdisco:2'><service host='turn.example.org' type='turns'/></credentials></iq>").expect("answered");
        let creds: Vec<&Element> = c
            .child(NS, "credentials")
            .expect("credentials")
            .elements()
            .collect();
        assert_eq!(creds.len(), 1);
        assert_eq!(creds[0].attr("port"), Some("5349"));

        let none = ask(&mut m, "<iq xmlns='jabber:client' type='get' id='3' from='alice@localhost/a' to='localhost'><credentials xmlns='urn:xmpp:extdisco:2'><service host='turn.example.org' type='stun'/></credentials></iq>").expect("answered");
        assert!(
            none.to_xml().contains("item-not-found"),
            "{}",
            none.to_xml()
        );
        let bad = ask(&mut m, "<iq xmlns='jabber:client' type='get' id='4' from='alice@localhost/a' to='localhost'><credentials xmlns='urn:xmpp:extdisco:2'><service type='turn'/></credentials></iq>").expect("answered");
        assert!(bad.to_xml().contains("bad-request"), "{}", bad.to_xml());
    }

    #[test]
    fn unconfigured_is_silent() {
        let mut m = ExternalServices::new(None);
        assert!(m.server_features().is_empty());
        assert!(ask(&mut m, "<iq xmlns='jabber:client' type='get' id='1' from='a@localhost/a' to='localhost'><services xmlns='urn:xmpp:extdisco:2'/></iq>").is_none());
    }
}
