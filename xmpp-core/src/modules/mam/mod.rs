//! XEP-0313 Message Archive Management for user archives: the requests a
//! user sends to their own bare JID (queries, the query form, metadata, and
//! XEP-0441 preferences), parsed here; the hub runs them against storage
//! ([`crate::archive`]) and decides what is archived ([`policy`]).

mod archiving;
pub mod form;
pub mod policy;
pub mod results;
pub mod rsm;

use crate::archive::{ArchiveFilter, ArchiveId, ArchivePrefs, PageRequest};
use crate::stanza::StanzaError;
use crate::xml::Element;

/// XEP-0313 namespace.
pub const NS: &str = "urn:xmpp:mam:2";
/// before-id/after-id/ids, flipped pages and metadata (§6).
pub const EXTENDED: &str = "urn:xmpp:mam:2#extended";
pub use archiving::{ArchiveConfig, Archiving, ID, PURGE_BATCH};
pub use policy::SID;

/// Features of an account's bare JID when archiving is on.
pub const ACCOUNT_FEATURES: &[&str] = &[NS, EXTENDED, SID];

/// A parsed archive query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MamQuery {
    /// Echoed in every result (`queryid`).
    pub queryid: Option<String>,
    /// The form's selection.
    pub filter: ArchiveFilter,
    /// RSM `<max/>`.
    pub max: Option<usize>,
    /// RSM `<after/>`.
    pub after: Option<ArchiveId>,
    /// RSM `<before/>` with an id.
    pub before: Option<ArchiveId>,
    /// RSM `<before/>` present: the page is taken from the end.
    pub backward: bool,
    /// `<flip-page/>` (#extended): send the page newest first.
    pub flip: bool,
}

impl MamQuery {
    /// The page to fetch: the client's `<max/>` up to `max_page`, else
    /// `default_page`.
    pub fn page(&self, default_page: usize, max_page: usize) -> PageRequest {
        PageRequest {
            max: self.max.unwrap_or(default_page).min(max_page),
            after: self.after,
            before: self.before,
            backward: self.backward,
        }
    }
}

/// What a user asks of their archive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MamRequest {
    /// iq get of `<query/>`: the form's fields (§4.1.5).
    Form,
    /// iq set of `<query/>`.
    Query(Box<MamQuery>),
    /// iq get of `<metadata/>` (§5).
    Metadata,
    /// iq get of `<prefs/>` (XEP-0441).
    GetPrefs,
    /// iq set of `<prefs/>`.
    SetPrefs(ArchivePrefs),
}

/// An RSM id. Anything that does not parse as one of ours is not in the
/// archive.
fn rsm_id(text: &str) -> Result<ArchiveId, StanzaError> {
    ArchiveId::parse(text).ok_or(StanzaError::ItemNotFound)
}

impl MamRequest {
    /// Parse an iq's payload; `None` when it is not ours.
    pub fn parse(iq: &Element) -> Option<Result<Self, StanzaError>> {
        let child = iq.first_element()?;
        if child.ns != NS {
            return None;
        }
        let get = match iq.attr("type") {
            Some("get") => true,
            Some("set") => false,
            _ => return None,
        };
        Some(match (child.name.as_str(), get) {
            ("query", true) => Ok(MamRequest::Form),
            ("query", false) => Self::parse_query(child),
            ("metadata", true) => Ok(MamRequest::Metadata),
            ("prefs", true) => Ok(MamRequest::GetPrefs),
            ("prefs", false) => ArchivePrefs::from_element(child).map(MamRequest::SetPrefs),
            _ => Err(StanzaError::BadRequest),
        })
    }

    fn parse_query(q: &Element) -> Result<Self, StanzaError> {
        // `node` addresses pubsub archives (XEP-0442), not a user's.
        if q.attr("node").is_some() {
            return Err(StanzaError::FeatureNotImplemented);
        }
        let filter = form::parse_filter(q)?;
        let rsm = rsm::RsmRequest::parse(q)?;
        let after = rsm.after.as_deref().map(rsm_id).transpose()?;
        let before = match rsm.before.as_deref() {
            None | Some("") => None,
            Some(b) => Some(rsm_id(b)?),
        };
        Ok(MamRequest::Query(Box::new(MamQuery {
            queryid: q.attr("queryid").map(str::to_owned),
            filter,
            max: rsm.max,
            after,
            before,
            backward: rsm.before.is_some(),
            flip: q.child(NS, "flip-page").is_some(),
        })))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn iq(xml: &str) -> Element {
        Element::parse(xml.as_bytes()).expect("test XML")
    }

    #[test]
    fn recognizes_the_requests() {
        let form =
            iq("<iq xmlns='jabber:client' type='get' id='1'><query xmlns='urn:xmpp:mam:2'/></iq>");
        assert_eq!(MamRequest::parse(&form), Some(Ok(MamRequest::Form)));
        let md = iq(
            "<iq xmlns='jabber:client' type='get' id='1'><metadata xmlns='urn:xmpp:mam:2'/></iq>",
        );
        assert_eq!(MamRequest::parse(&md), Some(Ok(MamRequest::Metadata)));
        let other =
            iq("<iq xmlns='jabber:client' type='get' id='1'><query xmlns='urn:xmpp:mam:1'/></iq>");
        assert_eq!(MamRequest::parse(&other), None);
        let q = iq("<iq xmlns='jabber:client' type='set' id='1'><query xmlns='urn:xmpp:mam:2' queryid='f27'>\
            <set xmlns='http://jabber.org/protocol/rsm'><max>500</max><before/></set><flip-page/></query></iq>");
        let Some(Ok(MamRequest::Query(q))) = MamRequest::parse(&q) else {
            panic!("a query");
        };
        assert_eq!(q.queryid.as_deref(), Some("f27"));
        assert!(q.backward && q.flip && q.before.is_none());
        assert_eq!(q.page(50, 250).max, 250);
        let unknown = iq("<iq xmlns='jabber:client' type='set' id='1'><query xmlns='urn:xmpp:mam:2'>\
            <set xmlns='http://jabber.org/protocol/rsm'><after>not-an-id</after></set></query></iq>");
        assert_eq!(
            MamRequest::parse(&unknown),
            Some(Err(StanzaError::ItemNotFound))
        );
        let set_md = iq(
            "<iq xmlns='jabber:client' type='set' id='1'><metadata xmlns='urn:xmpp:mam:2'/></iq>",
        );
        assert_eq!(
            MamRequest::parse(&set_md),
            Some(Err(StanzaError::BadRequest))
        );
    }
}
