//! Which rooms a partition holds in memory: a room is read from storage
//! when a stanza first names it (the stanzas wait meanwhile), stored when
//! it changes, remembered as absent or destroyed (its tombstone) so it is
//! not read again for every stanza, and let go when it is temporary and
//! empty, or persistent and empty while the partition is crowded.

use super::protocol::refuse;
use super::room::Room;
use super::{store, Load, Muc};
use crate::modules::{Addressed, Context, Module};
use crate::ns;
use crate::stanza::StanzaError;
use crate::storage::StorageRequest;
use crate::xml::Element;

/// Stanzas waiting for one read; beyond it they are refused
/// (`resource-constraint`) rather than queued without end.
const PARKED_MAX: usize = 256;
/// Room JIDs remembered as not stored; beyond it the memory is dropped
/// (and rooms are read again).
const ABSENT_MAX: usize = 100_000;

impl Muc {
    /// Handle the stanzas that waited for a read.
    pub(super) fn resume(&mut self, cx: &mut Context<'_>, waiting: Vec<(String, Element)>) {
        for (domain, s) in waiting {
            if s.name == "iq" {
                self.iq(cx, Addressed::Service { domain: &domain }, &s);
            } else {
                self.service_stanza(cx, &domain, &s);
            }
        }
    }

    /// Whether `room_jid` must be read before a stanza to it runs.
    pub(super) fn unread(&self, room_jid: &str) -> bool {
        !self.rooms.contains_key(room_jid)
            && !self.absent.contains(room_jid)
            && !self.tombstones.contains_key(room_jid)
    }

    /// The `gone` answer (with the alternate venue) to `stanza` for a
    /// destroyed room whose tombstone stands; an expired one is forgotten.
    pub(super) fn grave(
        &mut self,
        now: u64,
        room_jid: &str,
        stanza: &Element,
    ) -> Option<Option<Element>> {
        let (until, venue) = self.tombstones.get(room_jid)?.clone();
        if until <= now {
            self.tombstones.remove(room_jid);
            self.note_absent(room_jid);
            return None;
        }
        if matches!(
            stanza.attr("type"),
            Some("error" | "result" | "unavailable")
        ) {
            return Some(None);
        }
        let mut e = refuse(stanza, StanzaError::Gone, room_jid);
        if let Some(v) = venue {
            if let Some(g) = e
                .child_mut(ns::CLIENT, "error")
                .and_then(|x| x.child_mut(ns::STANZA_ERRORS, "gone"))
            {
                g.children
                    .push(crate::xml::Node::Text(format!("xmpp:{v}?join")));
            }
        }
        Some(Some(e))
    }

    pub(super) fn note_absent(&mut self, room_jid: &str) {
        if self.absent.len() >= ABSENT_MAX {
            self.absent.clear();
        }
        self.absent.insert(room_jid.to_owned());
    }

    /// Park `stanza` until `load` is read (reading it unless a read is
    /// in flight already).
    pub(super) fn wait(
        &mut self,
        cx: &mut Context<'_>,
        load: Load,
        domain: &str,
        stanza: &Element,
    ) {
        if let Some(waiting) = self.parked.get_mut(&load) {
            if waiting.len() < PARKED_MAX {
                waiting.push((domain.to_owned(), stanza.clone()));
            } else if stanza.attr("type") != Some("error") {
                cx.route(refuse(stanza, StanzaError::ResourceConstraint, domain));
            }
            return;
        }
        let request = match &load {
            Load::Room(jid) => StorageRequest::LoadBlob {
                account: domain.to_owned(),
                key: store::key(jid),
            },
        };
        let id = cx.request(request);
        self.parked
            .insert(load.clone(), vec![(domain.to_owned(), stanza.clone())]);
        self.loading.insert(id, load);
    }

    /// Store `room_jid` as it now is: its document when persistent and
    /// configured, none otherwise.
    pub(super) fn persist(&mut self, cx: &mut Context<'_>, domain: &str, room_jid: &str) {
        let value = self
            .rooms
            .get(room_jid)
            .filter(|r| r.config.persistent && !r.locked)
            .map(store::document);
        if value.is_none() {
            self.note_absent(room_jid);
        }
        cx.commit(StorageRequest::StoreBlob {
            account: domain.to_owned(),
            key: store::key(room_jid),
            value,
            limit: None,
        });
    }

    /// Forget `room_jid` if it is temporary and empty.
    /// An empty persistent room leaves memory (not storage) once the
    /// partition holds more than half its room budget, so rooms named
    /// once do not stay for ever; it is read again when named.
    pub(super) fn vanish(&mut self, cx: &mut Context<'_>, domain: &str, room_jid: &str) {
        if self.rooms.get(room_jid).is_some_and(Room::vanishes) {
            self.rooms.remove(room_jid);
            self.relays.remove(room_jid);
            self.note_absent(room_jid);
            tracing::debug!(room = room_jid, "temporary room vanished");
            self.relist(cx, domain, room_jid);
            return;
        }
        let crowded = self.rooms.len().saturating_mul(2) > self.settings.rooms_max;
        if crowded
            && self
                .rooms
                .get(room_jid)
                .is_some_and(|r| r.is_empty() && r.config.persistent && !r.locked)
        {
            self.rooms.remove(room_jid);
            tracing::debug!(room = room_jid, "empty persistent room unloaded");
        }
    }
}
