//! Stream management (XEP-0198) on the server side: acknowledgements and
//! their requests, the unacknowledged queue, hibernation and resumption,
//! durability fences behind acks, and offline pages marked as delivered.

use super::{Phase, ServerStream};
use crate::jid::Jid;
use crate::ns;
use crate::stanza::StanzaError;
use crate::stream::error::StreamErrorCondition;
use crate::stream::output::ConnOutput;
use crate::stream::sm::{self, SmState, SuspendedSession};
use crate::time::Millis;
use crate::xml::Element;

impl ServerStream {
    /// The hub delivered a page of offline messages: every stanza sent
    /// before this call. [`ConnOutput::PageDelivered`] comes out once the
    /// client has the page — at once without stream management (the
    /// driver performs the writes before it in order, so the page has gone
    /// to the socket), and with it once the client acknowledges the page's
    /// last stanza (asked for now with `<r/>`, since the page rarely ends on
    /// a multiple of the request interval). Pacing pages by
    /// acknowledgements keeps a login with thousands of messages waiting
    /// within the unacknowledged-queue limits.
    pub fn mark_page(&mut self) {
        if self.is_closed() {
            return;
        }
        // Not while hibernated or before <resumed/> went out.
        let writes = self.writes_stanzas();
        match self.sm.as_mut() {
            Some(sm) if !sm.unacked.is_empty() => {
                sm.page_end = Some(sm.unacked.sent());
                if writes {
                    self.request_ack();
                }
            }
            _ => self.out.push(ConnOutput::PageDelivered),
        }
    }

    /// After an acknowledgement: the page being delivered may be complete.
    pub(super) fn check_page(&mut self) {
        let Some(sm) = self.sm.as_mut() else {
            return;
        };
        if sm.page_end.is_some_and(|end| sm.unacked.acknowledged(end)) {
            sm.page_end = None;
            self.out.push(ConnOutput::PageDelivered);
        }
    }

    /// The transport broke (EOF, reset, write failure) without a closing
    /// handshake. A resumable session hibernates until `resume_timeout`
    /// and the driver keeps feeding it stanzas and time; true means that.
    /// Otherwise the session ends now (XEP-0198 §5: unacknowledged stanzas
    /// come out as [`ConnOutput::Undelivered`]).
    pub fn transport_lost(&mut self, now: Millis) -> bool {
        if self.is_closed() || self.is_hibernated() {
            return self.is_hibernated();
        }
        let timeout = self
            .sm
            .as_ref()
            .filter(|s| s.id.is_some())
            .map_or(0, |s| s.resume_ms);
        if let Some(sm) = self.sm.as_mut() {
            // Requests of the old transport need no answer on a new one.
            sm.acks.forget_requests();
        }
        if self.jid.is_some() && timeout > 0 {
            self.parser.clear();
            self.phase = Phase::Hibernated {
                deadline: now.saturating_add(timeout),
            };
            tracing::debug!(jid = ?self.jid, "session hibernated");
            return true;
        }
        self.set_closed();
        self.out.push(ConnOutput::Close);
        false
    }

    /// Hand the session over to a stream that asked to resume it: the
    /// stream state leaves this machine, which closes (telling a still
    /// connected client `<conflict/>`, XEP-0198 §5: "the old stream SHOULD
    /// be terminated"). `None` when there is nothing resumable.
    pub fn take_suspended(&mut self) -> Option<SuspendedSession> {
        if self.is_closed() {
            return None;
        }
        let account = self.account.clone()?;
        let jid = self.jid.clone()?;
        self.sm_id()?;
        let state = self.sm.take()?;
        let held = self.csi.take_held();
        if self.is_hibernated() {
            self.phase = Phase::Closed;
            self.out.push(ConnOutput::Close);
        } else {
            self.stream_error(
                StreamErrorCondition::Conflict,
                Some("session resumed on another connection"),
            );
        }
        Some(SuspendedSession {
            account,
            jid,
            state,
            held,
        })
    }

    /// The driver's answer to [`ConnOutput::Resume`]: the session it found
    /// for the SM-ID (and took from its old stream), or `None`.
    pub fn resume(&mut self, now: Millis, found: Option<SuspendedSession>) {
        self.clock = now;
        let Phase::AwaitResume { h } = self.phase else {
            // Not asked for: nothing may be lost, so it ends here.
            if let Some(s) = found {
                self.abandon(s);
            }
            return;
        };
        self.phase = Phase::Ready;
        let Some(found) = found else {
            let f = sm::failed(StanzaError::ItemNotFound, None);
            self.out.write_element(&f, ns::CLIENT);
            return self.process();
        };
        if Some(&found.account) != self.account.as_ref() {
            // The driver looks sessions up by account; this is a guard.
            self.abandon(found);
            let f = sm::failed(StanzaError::ItemNotFound, None);
            self.out.write_element(&f, ns::CLIENT);
            return self.process();
        }
        let SuspendedSession {
            jid, state, held, ..
        } = found;
        self.jid = Some(jid.clone());
        self.auth_deadline = None;
        self.sm = Some(state);
        if let Some(h) = h {
            if let Err(e) = self.sm.as_mut().map_or(Ok(0), |s| s.unacked.ack(h)) {
                self.csi.restore_held(held);
                return self.stream_error_with(
                    StreamErrorCondition::UndefinedCondition,
                    Some(&e.to_string()),
                    Some(e.to_element()),
                );
            }
        }
        self.check_page();
        let Some(state) = self.sm.as_mut() else {
            return;
        };
        state.acks.forget_requests();
        if state.acks.durable != state.handled {
            // Stanzas of the old stream are still on their way to storage.
            self.csi.restore_held(held);
            self.phase = Phase::AwaitResumeFence;
            if state.acks.in_flight.is_none() {
                let seq = state.acks.start(state.handled);
                self.out.push(ConnOutput::Fence(seq));
            }
            return;
        }
        self.finish_resume(held);
    }

    /// `<resumed/>` with the durable count, then the replay.
    pub(super) fn finish_resume(&mut self, held: Vec<Element>) {
        let Some(jid) = self.jid.clone() else {
            return;
        };
        let Some(state) = self.sm.as_ref() else {
            return;
        };
        // The hub hears of the resume before the client does: a client that
        // reacts to the replay (a contact answering a message it just got)
        // must not find its session still hibernated (XEP-0357 would wake a
        // phone that is already awake).
        self.out.push(ConnOutput::Resumed(jid.clone()));
        let resumed = Element::new(sm::NS, "resumed")
            .with_attr("previd", state.id.clone().unwrap_or_default())
            .with_attr("h", state.acks.durable.to_string());
        self.out.write_element(&resumed, ns::CLIENT);
        // XEP-0198 §5: retransmit what the client has not handled; it was
        // counted when first sent, so it stays in the queue uncounted.
        let replay: Vec<Element> = state.unacked.iter().cloned().collect();
        for el in &replay {
            self.out.write_element(el, ns::CLIENT);
        }
        for el in held {
            self.emit(el);
        }
        if self.sm.as_ref().is_some_and(|s| !s.unacked.is_empty()) {
            self.request_ack();
        }
        tracing::debug!(%jid, replayed = replay.len(), "session resumed");
        self.process();
    }

    /// A suspended session nobody will resume (e.g. taken for a resuming
    /// connection that stopped waiting): its stanzas come out as
    /// [`ConnOutput::Undelivered`].
    pub fn abandon(&mut self, mut s: SuspendedSession) {
        let mut pending = s.state.unacked.drain();
        pending.extend(s.held);
        self.push_undelivered(pending, &s.account);
    }

    pub(super) fn push_undelivered(&mut self, pending: Vec<Element>, account: &Jid) {
        let domain = account.domain().to_owned();
        let out: Vec<Element> = pending
            .into_iter()
            .filter_map(|s| sm::undeliverable(s, &domain))
            .collect();
        if !out.is_empty() {
            tracing::debug!(%account, count = out.len(), "unacknowledged stanzas rerouted");
            self.out.push(ConnOutput::Undelivered(out));
        }
    }

    /// Write one stanza to the client (after binding) and, with stream
    /// management, keep it until the client acknowledges it. A hibernated
    /// session only keeps it: it is sent when the client resumes.
    pub(super) fn emit(&mut self, stanza: Element) {
        if self.writes_stanzas() {
            self.out.write_element(&stanza, ns::CLIENT);
        }
        if let Some(sm) = self.sm.as_mut() {
            sm.unacked.push(stanza);
            sm.since_request = sm.since_request.saturating_add(1);
        }
    }

    /// After a burst of stanzas: ask for an acknowledgement every
    /// `request_every` stanzas, and end a session whose client stopped
    /// acknowledging before its queue grows without bound.
    pub(super) fn after_emit(&mut self) {
        let Some(cfg) = self.cfg.sm.clone() else {
            return;
        };
        let Some(state) = self.sm.as_ref() else {
            return;
        };
        if state.unacked.len() > cfg.max_unacked {
            return self.stream_error(
                StreamErrorCondition::ResourceConstraint,
                Some("too many unacknowledged stanzas"),
            );
        }
        if state.unacked.bytes() > cfg.max_unacked_bytes {
            tracing::info!(jid = ?self.jid, bytes = state.unacked.bytes(), "unacknowledged queue over its byte limit");
            return self.stream_error(
                StreamErrorCondition::ResourceConstraint,
                Some("too many unacknowledged bytes"),
            );
        }
        if state.since_request >= cfg.request_every && self.writes_stanzas() {
            self.request_ack();
        }
    }

    /// Stanzas go to the client now, rather than only into the SM queue
    /// (hibernated, or resumed but not yet told so).
    pub(super) fn writes_stanzas(&self) -> bool {
        !matches!(
            self.phase,
            Phase::Hibernated { .. } | Phase::AwaitResumeFence
        )
    }

    /// The driver's answer to [`ConnOutput::Fence`]: everything the fence
    /// followed is durable. Owed acknowledgements go out with the count it
    /// covered; a waiting resumption completes.
    pub fn fence_done(&mut self, now: Millis, seq: u64) {
        if self.is_closed() {
            return;
        }
        self.clock = now;
        let Some(state) = self.sm.as_mut() else {
            return;
        };
        let Some(h) = state.acks.finish(seq) else {
            return;
        };
        let answer = std::mem::take(&mut state.acks.ack_when_back);
        let again = std::mem::take(&mut state.acks.ack_next);
        let resuming = matches!(self.phase, Phase::AwaitResumeFence);
        if (again || resuming) && state.acks.durable != state.handled {
            state.acks.ack_when_back = again;
            let seq = state.acks.start(state.handled);
            self.out.push(ConnOutput::Fence(seq));
        } else if again {
            // Nothing new since: the count just confirmed answers it too.
            self.write_ack(h);
        }
        if answer && !resuming {
            self.write_ack(h);
        }
        if resuming && self.sm.as_ref().is_some_and(|s| s.acks.in_flight.is_none()) {
            self.phase = Phase::Ready;
            let held = self.csi.take_held();
            self.finish_resume(held);
        }
    }

    pub(super) fn write_ack(&mut self, h: u32) {
        if self.writes_stanzas() {
            let a = Element::new(sm::NS, "a").with_attr("h", h.to_string());
            self.out.write_element(&a, ns::CLIENT);
        }
    }

    pub(super) fn request_ack(&mut self) {
        if let Some(sm) = self.sm.as_mut() {
            sm.since_request = 0;
            self.out
                .write_element(&Element::new(sm::NS, "r"), ns::CLIENT);
        }
    }

    /// `<enable/>`, `<r/>`, `<a/>` and `<resume/>` (XEP-0198).
    pub(super) fn handle_sm(&mut self, el: &Element) {
        let Some(cfg) = self.cfg.sm.clone() else {
            if matches!(el.name.as_str(), "enable" | "resume") {
                let f = sm::failed(StanzaError::FeatureNotImplemented, None);
                return self.out.write_element(&f, ns::CLIENT);
            }
            return self.stream_error(StreamErrorCondition::UnsupportedStanzaType, None);
        };
        match el.name.as_str() {
            "enable" => {
                if self.jid.is_none() || self.sm.is_some() {
                    let f = sm::failed(StanzaError::UnexpectedRequest, None);
                    return self.out.write_element(&f, ns::CLIENT);
                }
                let wants_resume = matches!(el.attr("resume"), Some("true" | "1"));
                let resumable = wants_resume && cfg.resume_timeout_ms > 0;
                let mut enabled = Element::new(sm::NS, "enabled");
                let id = resumable.then(|| self.entropy.hex_id(16));
                // The client's preferred maximum only shortens ours.
                let ours = cfg.resume_timeout_ms / 1000;
                let max = el
                    .attr("max")
                    .and_then(|m| m.parse::<u64>().ok())
                    .filter(|m| *m > 0)
                    .map_or(ours, |m| m.min(ours));
                if let Some(id) = &id {
                    enabled = enabled
                        .with_attr("id", id.clone())
                        .with_attr("resume", "true")
                        .with_attr("max", max.to_string());
                }
                self.out.write_element(&enabled, ns::CLIENT);
                self.sm = Some(SmState::new(id.clone(), max.saturating_mul(1000)));
                if let Some(id) = id {
                    self.out.push(ConnOutput::SmEnabled(id));
                }
            }
            "r" => {
                let Some(state) = self.sm.as_mut() else {
                    return self.stream_error(StreamErrorCondition::UnsupportedStanzaType, None);
                };
                let acks = &mut state.acks;
                match acks.in_flight {
                    // Everything handled is known durable: answer now.
                    None if acks.durable == state.handled => {
                        let h = acks.durable;
                        self.write_ack(h);
                    }
                    None => {
                        acks.ack_when_back = true;
                        let seq = acks.start(state.handled);
                        self.out.push(ConnOutput::Fence(seq));
                    }
                    Some((_, covered)) if covered == state.handled => acks.ack_when_back = true,
                    Some(_) => acks.ack_next = true,
                }
            }
            "a" => {
                let Some(state) = self.sm.as_mut() else {
                    return self.stream_error(StreamErrorCondition::UnsupportedStanzaType, None);
                };
                let Some(h) = sm::parse_h(el) else {
                    return self.stream_error(StreamErrorCondition::BadFormat, Some("bad 'h'"));
                };
                if let Err(e) = state.unacked.ack(h) {
                    return self.stream_error_with(
                        StreamErrorCondition::UndefinedCondition,
                        Some(&e.to_string()),
                        Some(e.to_element()),
                    );
                }
                self.check_page();
            }
            "resume" => {
                if self.jid.is_some() || self.sm.is_some() || !matches!(self.phase, Phase::Ready) {
                    let f = sm::failed(StanzaError::UnexpectedRequest, None);
                    return self.out.write_element(&f, ns::CLIENT);
                }
                let previd = el.attr("previd").unwrap_or_default().to_owned();
                let h = sm::parse_h(el);
                if previd.is_empty() || (el.attr("h").is_some() && h.is_none()) {
                    let f = sm::failed(StanzaError::BadRequest, None);
                    return self.out.write_element(&f, ns::CLIENT);
                }
                self.phase = Phase::AwaitResume { h };
                self.out.push(ConnOutput::Resume { previd });
            }
            _ => self.stream_error(StreamErrorCondition::UnsupportedStanzaType, None),
        }
    }
}
