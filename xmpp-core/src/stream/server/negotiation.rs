//! Stream negotiation (RFC 6120 §4–§7): the header, the features offered
//! at each step, STARTTLS, and resource binding.

use super::{Phase, ServerStream};
use crate::jid::Jid;
use crate::ns;
use crate::sasl::Mechanism;
use crate::stanza::{error_reply, iq_result, StanzaError};
use crate::stream::error::StreamErrorCondition;
use crate::stream::header::check_header;
use crate::stream::output::ConnOutput;
use crate::stream::sm;
use crate::xml::Element;

impl ServerStream {
    pub(super) fn handle_header(&mut self, header: &Element) {
        if !matches!(self.phase, Phase::Header) {
            return self.stream_error(StreamErrorCondition::BadFormat, Some("unexpected header"));
        }
        // Answer with our header first: RFC 6120 §4.9.1.2 wants one before any error.
        let to = header.attr("to").and_then(|t| Jid::domain_jid(t).ok());
        let domain = match (&self.domain, to) {
            (Some(d), Some(t)) if t.domain() == d => Some(d.clone()),
            (Some(_), _) => None,
            (None, Some(t)) if self.cfg.domains.iter().any(|d| d == t.domain()) => {
                Some(t.domain().to_owned())
            }
            (None, _) => None,
        };
        let from_attr = domain.clone().or_else(|| self.cfg.domains.first().cloned());
        let id = self.entropy.hex_id(12);
        self.write_open(from_attr.as_deref(), Some(&id));
        self.header_sent = true;
        if let Err(cond) = check_header(header) {
            return self.stream_error(cond, None);
        }
        let Some(domain) = domain else {
            return self.stream_error(StreamErrorCondition::HostUnknown, None);
        };
        self.domain = Some(domain);
        self.phase = Phase::Ready;
        let features = self.features();
        self.out.write_element(&features, ns::CLIENT);
    }

    /// The features for the current negotiation step (RFC 6120 §4.3.2).
    pub(super) fn features(&self) -> Element {
        let mut f = Element::new(ns::STREAM, "features");
        if self.jid.is_some() || self.account.is_some() {
            f = f.with_child(Element::new(ns::BIND, "bind")).with_child(
                Element::new(ns::SESSION, "session")
                    .with_child(Element::new(ns::SESSION, "optional")),
            );
            for extra in &self.cfg.session_features {
                f = f.with_child(extra.clone());
            }
            if self.cfg.sm.is_some() {
                f = f.with_child(Element::new(sm::NS, "sm"));
            }
            return f;
        }
        if !self.secure && self.starttls_available() {
            let mut tls = Element::new(ns::TLS, "starttls");
            if self.cfg.require_encryption {
                tls = tls.with_child(Element::new(ns::TLS, "required"));
            }
            f = f.with_child(tls);
        }
        if self.secure || !self.cfg.require_encryption {
            let mut mechs = Element::new(ns::SASL, "mechanisms");
            for m in self.offered_mechanisms() {
                mechs = mechs.with_child(Element::new(ns::SASL, "mechanism").with_text(m.name()));
            }
            f = f.with_child(mechs);
            if !self.bindings.is_empty() {
                let mut cb = Element::new(ns::SASL_CB, "sasl-channel-binding");
                for b in &self.bindings {
                    cb = cb.with_child(
                        Element::new(ns::SASL_CB, "channel-binding")
                            .with_attr("type", b.kind.name()),
                    );
                }
                f = f.with_child(cb);
            }
            if self
                .cfg
                .registration
                .as_ref()
                .is_some_and(|r| r.allow_registration)
            {
                f = f.with_child(crate::modules::register::stream_feature());
            }
        }
        f
    }

    /// Mechanisms usable on this stream right now: -PLUS only with channel
    /// binding data, PLAIN only over TLS.
    pub(super) fn offered_mechanisms(&self) -> Vec<Mechanism> {
        self.cfg
            .mechanisms
            .iter()
            .copied()
            .filter(|m| {
                if m.is_plus() {
                    !self.bindings.is_empty()
                } else if *m == Mechanism::Plain {
                    self.secure
                } else {
                    true
                }
            })
            .collect()
    }

    pub(super) fn handle_starttls(&mut self, el: &Element) {
        if el.name != "starttls" || self.secure || self.account.is_some() {
            return self.stream_error(StreamErrorCondition::PolicyViolation, None);
        }
        if !self.starttls_available() {
            self.out
                .write_element(&Element::new(ns::TLS, "failure"), ns::CLIENT);
            self.write_stream_end();
            self.set_closed();
            self.out.push(ConnOutput::Close);
            return;
        }
        if self.parser.pending_bytes() > 0 {
            // Bytes pipelined behind <starttls/> would be interpreted as if
            // they had arrived over TLS (CVE-2011-0411): refuse them.
            return self.stream_error(
                StreamErrorCondition::PolicyViolation,
                Some("data pipelined after <starttls/>"),
            );
        }
        self.out
            .write_element(&Element::new(ns::TLS, "proceed"), ns::CLIENT);
        self.out.push(ConnOutput::StartTls);
        self.phase = Phase::AwaitTls;
    }

    /// Bind and session iqs are part of negotiation and answered here.
    pub(super) fn handle_negotiation_iq(&mut self, iq: &Element) -> Option<Element> {
        if iq.attr("type") != Some("set") {
            return None;
        }
        let child = iq.first_element()?;
        let to_server = iq
            .attr("to")
            .is_none_or(|t| Some(t) == self.domain.as_deref());
        if child.is(ns::SESSION, "session") && to_server {
            let mut r = iq_result(iq);
            r.remove_attr("to");
            return Some(r);
        }
        if !child.is(ns::BIND, "bind") {
            return None;
        }
        let mut reply_to = iq.clone();
        reply_to.remove_attr("to");
        let domain = self.domain.clone().unwrap_or_default();
        if self.jid.is_some() {
            return Some(error_reply(&reply_to, StanzaError::NotAllowed, &domain));
        }
        let account = self.account.clone()?;
        let requested = child
            .child_text(ns::BIND, "resource")
            .map(|r| r.trim().to_owned())
            .filter(|r| !r.is_empty());
        let resource = requested.unwrap_or_else(|| format!("vireo-{}", self.entropy.hex_id(6)));
        let jid = match account.with_resource(&resource) {
            Ok(j) => j,
            Err(_) => return Some(error_reply(&reply_to, StanzaError::BadRequest, &domain)),
        };
        let mut r = Element::new(ns::CLIENT, "iq").with_attr("type", "result");
        if let Some(id) = iq.attr("id") {
            r.set_attr("id", id);
        }
        r = r.with_child(
            Element::new(ns::BIND, "bind")
                .with_child(Element::new(ns::BIND, "jid").with_text(jid.to_string())),
        );
        self.jid = Some(jid.clone());
        self.auth_deadline = None;
        self.out.push(ConnOutput::Bound(jid));
        Some(r)
    }
}
