//! SASL (RFC 6120 §6): the mechanisms' exchanges, PLAIN's password check
//! handed to the driver, success and failure with their backoff, and the
//! decoy credentials that keep unknown accounts from showing.

use super::{PendingAuth, Phase, ServerStream};
use crate::jid::Jid;
use crate::ns;
use crate::sasl::{parse_plain, Mechanism, SaslFailure, ScramServer, StoredCredentials};
use crate::storage::{RequestId, StorageRequest};
use crate::stream::error::StreamErrorCondition;
use crate::stream::output::ConnOutput;
use crate::time::Millis;
use crate::xml::Element;
use base64::Engine as _;

impl ServerStream {
    /// Credentials for an unknown account that cost what a real check
    /// costs: the configured decoy, or a fixed secret at the minimum
    /// iteration count.
    pub(super) fn decoy_credentials(&self, username: &str) -> StoredCredentials {
        match &self.cfg.scram_decoy {
            Some((secret, iterations)) => StoredCredentials::decoy(secret, *iterations, username),
            None => StoredCredentials::decoy(b"vireo", crate::sasl::MIN_ITERATIONS, username),
        }
    }

    /// The driver's answer to [`ConnOutput::CheckPassword`]:
    /// [`PasswordCheck::run`]'s result.
    pub fn handle_password_check(&mut self, now: Millis, id: RequestId, ok: bool) {
        self.clock = now;
        let Phase::AwaitPassword { req, .. } = &self.phase else {
            return;
        };
        if *req != id {
            return;
        }
        let Phase::AwaitPassword { username, .. } =
            std::mem::replace(&mut self.phase, Phase::Ready)
        else {
            return;
        };
        if ok {
            self.pending_account = Some(username);
            self.sasl_success(&[]);
        } else {
            self.sasl_failure(SaslFailure::NotAuthorized);
        }
        self.process();
    }

    pub(super) fn handle_sasl(&mut self, el: Element) {
        if self.account.is_some() {
            return self.stream_error(
                StreamErrorCondition::PolicyViolation,
                Some("already authenticated"),
            );
        }
        match el.name.as_str() {
            "auth" => self.handle_auth(&el),
            "response" => self.handle_response(&el),
            "abort" => {
                self.phase = Phase::Ready;
                self.sasl_failure(SaslFailure::Aborted);
            }
            _ => self.stream_error(StreamErrorCondition::UnsupportedStanzaType, None),
        }
    }

    pub(super) fn handle_auth(&mut self, el: &Element) {
        if !matches!(self.phase, Phase::Ready) {
            return self.sasl_failure(SaslFailure::MalformedRequest);
        }
        if !self.secure && self.cfg.require_encryption {
            return self.sasl_failure(SaslFailure::EncryptionRequired);
        }
        let Some(mech) = el.attr("mechanism").and_then(Mechanism::from_name) else {
            return self.sasl_failure(SaslFailure::InvalidMechanism);
        };
        self.attempt = Some((mech, None));
        if !self.cfg.mechanisms.contains(&mech) {
            return self.sasl_failure(SaslFailure::MechanismTooWeak);
        }
        if mech == Mechanism::Plain && !self.secure {
            return self.sasl_failure(SaslFailure::EncryptionRequired);
        }
        if !self.offered_mechanisms().contains(&mech) {
            return self.sasl_failure(SaslFailure::InvalidMechanism);
        }
        let Ok(initial) = decode_sasl_payload(&el.text()) else {
            return self.sasl_failure(SaslFailure::IncorrectEncoding);
        };
        let domain = self.domain.clone().unwrap_or_default();
        let (pending, username) = match mech {
            Mechanism::Plain => match parse_plain(&initial) {
                Ok(p) => {
                    if p.authzid.as_deref().is_some_and(|a| {
                        Jid::parse(a)
                            .map(|j| j.local() != Some(p.username.as_str()))
                            .unwrap_or(true)
                    }) {
                        return self.sasl_failure(SaslFailure::InvalidAuthzid);
                    }
                    let u = p.username.clone();
                    (
                        PendingAuth::Plain {
                            username: p.username,
                            password: p.password,
                        },
                        u,
                    )
                }
                Err(f) => return self.sasl_failure(f),
            },
            _ => {
                let plus_advertised = self.offered_mechanisms().iter().any(|m| m.is_plus());
                match ScramServer::start(mech, &initial, &self.bindings, plus_advertised) {
                    Ok((mut scram, first)) => {
                        if let Some((secret, iterations)) = &self.cfg.scram_decoy {
                            scram = scram.with_decoy(secret, *iterations);
                        }
                        let u = first.username.clone();
                        (PendingAuth::Scram(Box::new(scram), first.username), u)
                    }
                    Err(f) => return self.sasl_failure(f),
                }
            }
        };
        let account = match Jid::new(Some(&username), &domain, None) {
            Ok(j) => j,
            Err(_) => return self.sasl_failure(SaslFailure::NotAuthorized),
        };
        let pending = match pending {
            PendingAuth::Scram(s, _) => PendingAuth::Scram(s, account.bare_str()),
            PendingAuth::Plain { password, .. } => PendingAuth::Plain {
                username: account.bare_str(),
                password,
            },
        };
        self.attempt = Some((mech, Some(account.bare_str())));
        self.out.push(ConnOutput::AuthStarted {
            account: account.bare_str(),
            mechanism: mech,
        });
        let req = self.next_request;
        self.next_request += 1;
        self.out.push(ConnOutput::Storage {
            id: req,
            request: StorageRequest::LoadCredentials {
                account: account.bare_str(),
            },
        });
        self.phase = Phase::AwaitCredentials { req, pending };
    }

    pub(super) fn handle_response(&mut self, el: &Element) {
        let Phase::AwaitResponse(_) = &self.phase else {
            return self.sasl_failure(SaslFailure::MalformedRequest);
        };
        let Phase::AwaitResponse(mut scram) = std::mem::replace(&mut self.phase, Phase::Ready)
        else {
            return;
        };
        let Ok(payload) = decode_sasl_payload(&el.text()) else {
            return self.sasl_failure(SaslFailure::IncorrectEncoding);
        };
        match scram.finish(&payload) {
            Ok(server_final) => self.sasl_success(&server_final),
            Err(f) => self.sasl_failure(f),
        }
    }

    pub(super) fn sasl_success(&mut self, additional: &[u8]) {
        let Some(account) = self
            .pending_account
            .take()
            .and_then(|a| Jid::parse(&a).ok())
        else {
            return self.sasl_failure(SaslFailure::TemporaryAuthFailure);
        };
        let mut success = Element::new(ns::SASL, "success");
        if !additional.is_empty() {
            success =
                success.with_text(base64::engine::general_purpose::STANDARD.encode(additional));
        }
        self.out.write_element(&success, ns::CLIENT);
        if let Some((mechanism, _)) = self.attempt.take() {
            self.out.push(ConnOutput::Authenticated {
                account: account.bare_str(),
                mechanism,
            });
        }
        self.account = Some(account);
        // Authenticated but not yet a session: binding has its own deadline.
        self.auth_deadline = Some(self.clock.saturating_add(self.cfg.bind_timeout_ms));
        // Channel bindings only matter for SASL; drop them for the session.
        self.bindings = Vec::new();
        self.parser.restart_with(self.cfg.limits);
        self.follow_parser_limits();
        self.phase = Phase::Header;
    }

    pub(super) fn sasl_failure(&mut self, failure: SaslFailure) {
        self.pending_account = None;
        if !matches!(self.phase, Phase::Closed) {
            self.phase = Phase::Ready;
        }
        // The driver hears of the failure (its backoff, its log) before
        // the client does.
        let attempt = self.attempt.take();
        if failure != SaslFailure::Aborted {
            self.auth_failures += 1;
            let (mechanism, account) = attempt.map_or((None, None), |(m, a)| (Some(m), a));
            self.out.push(ConnOutput::AuthFailed {
                account,
                mechanism,
                failure,
            });
        }
        let el = Element::new(ns::SASL, "failure")
            .with_child(Element::new(ns::SASL, failure.condition()));
        self.out.write_element(&el, ns::CLIENT);
        if self.auth_failures >= self.cfg.max_auth_failures {
            self.stream_error(
                StreamErrorCondition::PolicyViolation,
                Some("too many failed authentication attempts"),
            );
        }
    }

    pub(super) fn send_sasl(&mut self, name: &str, payload: &[u8]) {
        let el = Element::new(ns::SASL, name)
            .with_text(base64::engine::general_purpose::STANDARD.encode(payload));
        self.out.write_element(&el, ns::CLIENT);
    }
}

/// RFC 6120 §6.4.2: the payload is base64, and a lone `=` means "empty".
pub(super) fn decode_sasl_payload(text: &str) -> Result<Vec<u8>, base64::DecodeError> {
    let t = text.trim();
    if t.is_empty() || t == "=" {
        return Ok(Vec::new());
    }
    base64::engine::general_purpose::STANDARD.decode(t)
}
