//! `/api/rooms`: the stored (persistent) group chat rooms of every
//! service (XEP-0045), read from the store, public or not. Temporary rooms
//! live only in their hub partition's memory and are not listed.

use super::{json, Answer, Api, ApiError};
use serde::Serialize;
use xmpp_core::modules::muc::store;
use xmpp_core::storage::{StorageRequest, StorageResult};

/// Rooms listed at most, over all services.
const MAX_ROOMS: usize = 10_000;
/// Documents read per store call.
const PAGE: usize = 500;

#[derive(Serialize)]
struct Room {
    jid: String,
    name: String,
    public: bool,
}

pub(super) async fn list(api: &Api) -> Answer {
    let backend = api.backend.clone();
    let services = api.services.clone();
    let rooms = smol::unblock(move || {
        let mut rooms = Vec::new();
        for service in services {
            let mut after = None;
            loop {
                let page = backend.execute(StorageRequest::ListBlobs {
                    account: service.clone(),
                    prefix: store::PREFIX.to_owned(),
                    after: after.clone(),
                    max: PAGE,
                });
                let StorageResult::Documents { items, more } = page else {
                    break;
                };
                after = items.last().map(|(k, _)| k.clone());
                rooms.extend(
                    items
                        .iter()
                        .filter_map(|(_, doc)| store::summary(doc))
                        .map(|(jid, name, public)| Room { jid, name, public }),
                );
                if !more || rooms.len() >= MAX_ROOMS || after.is_none() {
                    break;
                }
            }
        }
        rooms.truncate(MAX_ROOMS);
        rooms
    })
    .await;
    #[derive(Serialize)]
    struct Rooms {
        rooms: Vec<Room>,
    }
    if rooms.len() > MAX_ROOMS {
        return Err(ApiError::new(500, "too many rooms"));
    }
    Ok(json(200, &Rooms { rooms }))
}
