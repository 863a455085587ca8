//! XEP-0313 archives on the room JID (§5.1.2 of XEP-0313 for MUC): a
//! room with logging on (by default when it is persistent) archives every
//! groupchat message with a body, its archive id being the XEP-0359
//! stanza-id every occupant received; queries, the form, paging, filters
//! and metadata are the user archives' ([`crate::modules::mam`]).
//!
//! A room's archive belongs to the service: its owner in storage is
//! `<service domain>/<room's local part>`, which has no '@' and so, like
//! the service's documents, exists without an account.

use super::permissions::Affiliation;
use super::room::Room;
use super::settings::Settings;
use crate::archive::{ArchiveId, ArchiveQuery, ArchivedMessage};
use crate::modules::mam::{form, results, MamRequest};
use crate::stanza::StanzaError;
use crate::storage::StorageRequest;
use crate::xml::Element;

/// Results per page unless the client asks for fewer (as user archives).
pub const DEFAULT_PAGE: usize = 50;
/// Most results per page.
pub const MAX_PAGE: usize = 250;

/// The storage owner of `room_jid`'s archive.
pub fn owner(room_jid: &str) -> String {
    match room_jid.split_once('@') {
        Some((local, domain)) => format!("{domain}/{local}"),
        None => room_jid.to_owned(),
    }
}

/// A query waiting for storage.
#[derive(Debug, Clone)]
pub enum Waiting {
    /// A page of messages.
    Query {
        /// The request.
        iq: Element,
        /// Its `queryid`.
        queryid: Option<String>,
        /// Newest first.
        flip: bool,
    },
    /// The archive's bounds.
    Metadata(Element),
}

/// What an archive request needs: the storage request to make and what
/// waits for it, or the answer at once.
pub enum Step {
    /// Ask storage.
    Ask(Box<StorageRequest>, Waiting),
    /// Answer now.
    Answer(Element),
}

/// Whether `bare` may read the room's archive: as the room's own members
/// may enter, never outcasts.
fn may_read(room: &Room, settings: &Settings, bare: &str) -> Result<(), StanzaError> {
    let aff = room.affiliation(settings, bare);
    if aff == Affiliation::Outcast || (room.config.members_only && aff < Affiliation::Member) {
        return Err(StanzaError::Forbidden);
    }
    Ok(())
}

/// An archive request `iq` from `bare` to `room`; `None` when it is none.
pub fn request(
    room: &Room,
    settings: &Settings,
    bare: &str,
    iq: &Element,
) -> Option<Result<Step, StanzaError>> {
    let req = match MamRequest::parse(iq)? {
        Ok(r) => r,
        Err(e) => return Some(Err(e)),
    };
    if let Err(e) = may_read(room, settings, bare) {
        return Some(Err(e));
    }
    let account = owner(&room.jid);
    Some(Ok(match req {
        MamRequest::Form => Step::Answer(crate::stanza::iq_result(iq).with_child(
            Element::new(crate::modules::mam::NS, "query").with_child(form::blank_form()),
        )),
        MamRequest::Query(q) => Step::Ask(
            Box::new(StorageRequest::QueryArchive {
                account,
                query: ArchiveQuery {
                    filter: q.filter.clone(),
                    page: q.page(DEFAULT_PAGE, MAX_PAGE),
                },
            }),
            Waiting::Query {
                iq: iq.clone(),
                queryid: q.queryid.clone(),
                flip: q.flip,
            },
        ),
        MamRequest::Metadata => Step::Ask(
            Box::new(StorageRequest::ArchiveMetadata { account }),
            Waiting::Metadata(iq.clone()),
        ),
        MamRequest::GetPrefs | MamRequest::SetPrefs(_) => {
            return Some(Err(StanzaError::FeatureNotImplemented))
        }
    }))
}

/// The stanzas answering `waiting` with `result`.
pub fn answer(waiting: Waiting, result: crate::storage::StorageResult) -> Vec<Element> {
    use crate::stanza::error_reply;
    use crate::storage::StorageResult;
    match waiting {
        Waiting::Query { iq, queryid, flip } => {
            let by = iq.attr("to").unwrap_or_default().to_owned();
            let mut page = match result {
                StorageResult::ArchivePage(p) => p,
                StorageResult::NotFound => {
                    return vec![error_reply(&iq, StanzaError::ItemNotFound, &by)]
                }
                other => {
                    tracing::error!(?other, "room archive query failed");
                    return vec![error_reply(&iq, StanzaError::InternalServerError, &by)];
                }
            };
            let to = iq.attr("from").unwrap_or_default().to_owned();
            let fin = results::fin(&iq, &page);
            if flip {
                page.items.reverse();
            }
            let mut out: Vec<Element> = page
                .items
                .iter()
                .map(|m| results::result_message(&to, Some(&by), queryid.as_deref(), m))
                .collect();
            out.push(fin);
            out
        }
        Waiting::Metadata(iq) => match result {
            StorageResult::ArchiveBounds(b) => vec![results::metadata(&iq, b)],
            other => {
                tracing::error!(?other, "room archive metadata failed");
                let by = iq.attr("to").unwrap_or_default().to_owned();
                vec![error_reply(&iq, StanzaError::InternalServerError, &by)]
            }
        },
    }
}

/// The archive append of a broadcast message (`sent`, a copy of what an
/// occupant received) under `id`.
pub fn append(room_jid: &str, id: ArchiveId, sent: &Element) -> StorageRequest {
    let mut m = sent.clone();
    m.remove_attr("to");
    StorageRequest::AppendArchive {
        account: owner(room_jid),
        message: ArchivedMessage {
            id,
            with: m.attr("from").unwrap_or(room_jid).to_owned(),
            stanza: m.to_xml(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn room_archives_belong_to_the_service() {
        let o = owner("cave@conference.localhost");
        assert_eq!(o, "conference.localhost/cave");
        assert!(crate::storage::is_service_owner(&o));
    }
}
