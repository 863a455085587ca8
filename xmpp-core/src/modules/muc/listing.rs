//! The service's room listing (disco#items, §6.3), in pages: public rooms
//! are the stored ones whose configuration says so, read from storage a
//! few documents at a time, and the rooms the partitions hold in memory
//! (temporary rooms are never stored), known from their notices. Both
//! are in the order of the rooms' local parts (the storage keys' order),
//! so a page is the next few of their union.
//!
//! A client may page with XEP-0059 (`<set><max/><after/></set>`, `after`
//! naming the last room JID it has); one that does not gets the first
//! page only, with the `<set/>` saying where it ended, as ejabberd does
//! with `max_rooms_discoitems` (also 100 by default here). Memory stays
//! bounded: a request holds at most one page of JIDs and names and one
//! read of documents, however many rooms are stored; documents are
//! reduced to JID and name as they arrive.

use super::protocol::refuse;
use super::{store, Muc, NS};
use crate::modules::mam::rsm::{self, RsmRequest};
use crate::modules::Context;
use crate::ns;
use crate::stanza::iq_result;
use crate::stanza::StanzaError;
use crate::storage::StorageRequest;
use crate::storage::StorageResult;
use crate::xml::Element;
use std::collections::BTreeMap;
use std::ops::Bound;

/// Stored room documents one read asks for.
pub const READ: usize = 64;

/// Public rooms by service domain and local part → name.
pub type Listed = BTreeMap<(String, String), String>;

/// A listing request being answered.
#[derive(Debug, Clone)]
pub struct Reading {
    /// The service domain.
    pub domain: String,
    /// The request, to answer.
    pub iq: Element,
    /// The page: rooms after this local part (none: from the first).
    after: Option<String>,
    /// At most this many.
    max: usize,
    /// The client asked with RSM.
    rsm: bool,
    /// Public stored rooms read so far: local part → name.
    found: BTreeMap<String, String>,
    /// The last storage key read.
    cursor: Option<String>,
    /// Storage has keys after `cursor`.
    more: bool,
}

impl Reading {
    /// The listing `iq` (its disco#items `query`) asks for, at most
    /// `page_max` rooms a page.
    pub fn new(domain: &str, iq: &Element, page_max: usize) -> Result<Self, StanzaError> {
        let q = iq
            .child(ns::DISCO_ITEMS, "query")
            .ok_or(StanzaError::BadRequest)?;
        let req = RsmRequest::parse(q)?;
        if req.before.is_some() {
            // Paging backwards would read storage backwards: not offered
            // (XEP-0059 lets a responder decline).
            return Err(StanzaError::FeatureNotImplemented);
        }
        Ok(Reading {
            domain: domain.to_owned(),
            iq: iq.clone(),
            after: req.after.map(|a| local_of(&a).to_owned()),
            max: req.max.unwrap_or(page_max).min(page_max),
            rsm: q.child(rsm::NS, "set").is_some(),
            found: BTreeMap::new(),
            cursor: None,
            more: true,
        })
    }

    /// The next read of stored rooms, or `None` when enough are read.
    pub fn next_read(&self) -> Option<StorageRequest> {
        if !self.more || self.found.len() > self.max {
            return None;
        }
        let after = self
            .cursor
            .clone()
            .or_else(|| self.after.as_deref().map(store::key_of_local));
        Some(StorageRequest::ListBlobs {
            account: self.domain.clone(),
            prefix: store::PREFIX.to_owned(),
            after,
            max: READ,
        })
    }

    /// A read's documents (`more` when storage has others after them):
    /// the public rooms are kept, as JID and name only.
    pub fn take(&mut self, items: &[(String, String)], more: bool) {
        self.more = more;
        if let Some((key, _)) = items.last() {
            self.cursor = Some(key.clone());
        }
        let suffix = format!("@{}", self.domain);
        for (_, doc) in items {
            let Some((jid, name)) = store::listing(doc) else {
                continue;
            };
            if let Some(local) = jid.strip_suffix(&suffix) {
                self.found.insert(local.to_owned(), name);
            }
        }
        // Only the first max + 1 matter (the one more says a page
        // follows).
        while self.found.len() > self.max.saturating_add(1) {
            self.found.pop_last();
        }
    }

    /// The answer: the page of the union of the stored rooms read and
    /// `listed` (those held in memory), with the `<set/>` when the client
    /// asked with RSM or the page is not the whole listing.
    pub fn answer(&self, listed: &Listed) -> Element {
        // Storage is complete up to the cursor, or entirely when it has
        // no more: rooms in memory beyond that bound may not come first.
        let bound = self
            .more
            .then(|| self.cursor.as_deref().map(store::local_of_key))
            .flatten();
        let from = match &self.after {
            Some(a) => Bound::Excluded((self.domain.clone(), a.clone())),
            None => Bound::Included((self.domain.clone(), String::new())),
        };
        let mut rooms: BTreeMap<&str, &str> = self
            .found
            .iter()
            .map(|(l, n)| (l.as_str(), n.as_str()))
            .collect();
        let in_memory = listed
            .range((from, Bound::Unbounded))
            .take_while(|((d, l), _)| *d == self.domain && bound.is_none_or(|b| l.as_str() <= b))
            .take(self.max.saturating_add(1));
        for ((_, l), n) in in_memory {
            rooms.insert(l, n);
        }
        let truncated = rooms.len() > self.max;
        let page: Vec<(String, &str)> = rooms
            .into_iter()
            .take(self.max)
            .map(|(l, n)| (format!("{l}@{}", self.domain), n))
            .collect();
        let mut q = super::disco::service_items(page.iter().map(|(j, n)| (j.as_str(), *n)));
        if self.rsm || truncated {
            let first = page.first().map(|(j, _)| (j.as_str(), None));
            let last = page.last().map(|(j, _)| j.as_str());
            q = q.with_child(rsm::page_set(first, last, None));
        }
        q
    }
}

/// The local part of a room JID (or the string itself).
fn local_of(jid: &str) -> &str {
    jid.split_once('@').map_or(jid, |(l, _)| l)
}

/// Listing requests being read at once; beyond it they are refused
/// (`resource-constraint`): each holds a read of documents.
const LISTINGS_MAX: usize = 16;

/// The listing as the service runs it: each partition tells the domain's
/// partition which of its rooms are public ([`Muc::relist`]), and that
/// partition answers disco#items by reading stored rooms in pages.
impl Muc {
    /// Tell the domain's partition whether `room_jid` is listed now,
    /// when that changed.
    pub(super) fn relist(&mut self, cx: &mut Context<'_>, domain: &str, room_jid: &str) {
        let now = self
            .rooms
            .get(room_jid)
            .filter(|r| r.config.public && !r.locked && !r.vanishes())
            .map(|r| r.config.name.clone());
        if self.told.get(room_jid) == now.as_ref() {
            return;
        }
        let notice = Element::new(NS, "room")
            .with_attr("jid", room_jid)
            .with_attr("listed", if now.is_some() { "1" } else { "0" })
            .with_attr("name", now.clone().unwrap_or_default());
        cx.forward(domain, None, notice);
        match now {
            Some(name) => self.told.insert(room_jid.to_owned(), name),
            None => self.told.remove(room_jid),
        };
    }

    /// The service's disco#items `iq` (§6.3): a page of its public rooms
    /// ([`listing`]), read from storage first.
    pub(super) fn list(&mut self, cx: &mut Context<'_>, domain: &str, iq: &Element) {
        if self.listings.len() >= LISTINGS_MAX {
            return cx.route(refuse(iq, StanzaError::ResourceConstraint, domain));
        }
        match Reading::new(domain, iq, self.settings.listing_page_max) {
            Ok(reading) => self.read_listing(cx, reading),
            Err(cond) => cx.route(refuse(iq, cond, domain)),
        }
    }

    /// Read the next stored rooms for `reading`, or answer it.
    pub(super) fn read_listing(&mut self, cx: &mut Context<'_>, reading: Reading) {
        match reading.next_read() {
            Some(request) => {
                let id = cx.request(request);
                self.listings.insert(id, reading);
            }
            None => cx.route(iq_result(&reading.iq).with_child(reading.answer(&self.listed))),
        }
    }

    /// A read of stored rooms for `reading` came back.
    pub(super) fn listed_page(
        &mut self,
        cx: &mut Context<'_>,
        mut reading: Reading,
        result: StorageResult,
    ) {
        match result {
            StorageResult::Documents { items, more } => {
                reading.take(&items, more);
                self.read_listing(cx, reading);
            }
            other => {
                tracing::error!(?other, domain = reading.domain, "listing rooms failed");
                cx.route(refuse(
                    &reading.iq,
                    StanzaError::InternalServerError,
                    &reading.domain,
                ));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOMAIN: &str = "conference.localhost";

    fn listing_iq(set: &str) -> Element {
        Element::parse(
            format!("<iq xmlns='jabber:client' type='get' id='l' from='a@localhost/x' to='{DOMAIN}'><query xmlns='http://jabber.org/protocol/disco#items'>{set}</query></iq>")
                .as_bytes(),
        )
        .expect("test XML")
    }

    fn doc(local: &str, public: bool) -> (String, String) {
        let mut room = super::super::room::Room::new(
            &format!("{local}@{DOMAIN}"),
            "o@localhost",
            Default::default(),
            super::super::occupant_id::Secret::from_bytes(
                &[1; super::super::occupant_id::SECRET_BYTES],
            ),
        );
        room.config.public = public;
        room.config.name = format!("Room {local}");
        (store::key_of_local(local), store::document(&room))
    }

    fn jids(q: &Element) -> Vec<String> {
        q.elements()
            .filter_map(|i| i.attr("jid").map(str::to_owned))
            .collect()
    }

    #[test]
    fn the_union_with_memory_is_bounded_by_what_storage_has_shown() {
        let mut r = Reading::new(DOMAIN, &listing_iq(""), 2).expect("valid");
        assert!(r.next_read().is_some());
        r.take(&[doc("a", true), doc("b", false), doc("d", true)], true);
        // Two found, need three (one more says a page follows).
        assert!(r.next_read().is_some());
        r.take(&[doc("f", true)], true);
        assert!(r.next_read().is_none());
        let listed: Listed = [
            ((DOMAIN.to_owned(), "c".to_owned()), "C".to_owned()),
            ((DOMAIN.to_owned(), "z".to_owned()), "Z".to_owned()),
            (
                ("conference.other".to_owned(), "b".to_owned()),
                "".to_owned(),
            ),
        ]
        .into();
        let q = r.answer(&listed);
        assert_eq!(
            jids(&q),
            [format!("a@{DOMAIN}"), format!("c@{DOMAIN}")],
            "{q:?}"
        );
        let set = q.child(rsm::NS, "set").expect("a truncated page says so");
        assert_eq!(
            set.child_text(rsm::NS, "last").as_deref(),
            Some(&*format!("c@{DOMAIN}"))
        );
    }

    #[test]
    fn requests_are_capped_and_before_is_declined() {
        let r = Reading::new(
            DOMAIN,
            &listing_iq("<set xmlns='http://jabber.org/protocol/rsm'><max>1000</max><after>m@conference.localhost</after></set>"),
            100,
        )
        .expect("valid");
        assert_eq!(r.max, 100);
        assert_eq!(r.after.as_deref(), Some("m"));
        assert!(matches!(
            r.next_read(),
            Some(StorageRequest::ListBlobs { after: Some(a), .. }) if a == "r/m"
        ));
        assert_eq!(
            Reading::new(
                DOMAIN,
                &listing_iq("<set xmlns='http://jabber.org/protocol/rsm'><before/></set>"),
                100
            )
            .err(),
            Some(StanzaError::FeatureNotImplemented)
        );
    }
}
