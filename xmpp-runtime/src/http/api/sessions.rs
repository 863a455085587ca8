//! `/api/sessions` (list, end one), `/api/messages` (send one from the
//! server) and `/api/announcements` (a message to every online session,
//! like Prosody's mod_announce).

use super::{body, json, timestamp, Answer, Api, ApiError};
use crate::mailbox::ConnMsg;
use serde::{Deserialize, Serialize};
use xmpp_core::http::{Request, Response};
use xmpp_core::jid::Jid;
use xmpp_core::{ns, Element};

pub(super) fn list(api: &Api) -> Answer {
    #[derive(Serialize)]
    struct Session {
        jid: String,
        transport: &'static str,
        address: Option<String>,
        since: String,
    }
    #[derive(Serialize)]
    struct Sessions {
        sessions: Vec<Session>,
    }
    let mut sessions: Vec<Session> = api
        .conns
        .sessions()
        .into_iter()
        .map(|(_, s)| Session {
            jid: s.jid.to_string(),
            transport: s.transport,
            address: s.address.map(|a| a.to_string()),
            since: timestamp(s.since),
        })
        .collect();
    sessions.sort_by(|a, b| a.jid.cmp(&b.jid));
    Ok(json(200, &Sessions { sessions }))
}

/// End the session `jid/resource` (a clean close: its client sees the
/// stream end). The resource is a path segment of its own: an encoded
/// `/` never reaches an endpoint (`xmpp_core::http::path`).
pub(super) fn kick(api: &Api, jid: &str, resource: &str) -> Answer {
    let full = format!("{jid}/{resource}");
    let wanted = Jid::parse(&full).map_err(|e| ApiError::new(400, format!("invalid JID: {e}")))?;
    let conn = api
        .conns
        .sessions()
        .into_iter()
        .find(|(_, s)| s.jid == wanted)
        .map(|(c, _)| c)
        .ok_or_else(|| ApiError::new(404, "no such session"))?;
    if let Some(mailbox) = api.conns.mailbox(conn) {
        mailbox.send(ConnMsg::Close(None));
    }
    Ok(Response::new(204))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Message {
    to: String,
    body: String,
    #[serde(default, deserialize_with = "super::present")]
    from: Option<String>,
    #[serde(default, rename = "type", deserialize_with = "super::present")]
    kind: Option<String>,
}

/// Bodies are for people: a few KiB, not a file.
const MAX_BODY_CHARS: usize = 16 * 1024;

pub(super) fn message(api: &Api, request: &Request) -> Answer {
    let m: Message = body(request)?;
    let to = Jid::parse(&m.to).map_err(|e| ApiError::new(400, format!("invalid to: {e}")))?;
    // From the server, or from a JID of a hosted domain.
    let from = match m.from {
        None => api.domains.first().cloned().unwrap_or_default(),
        Some(f) => {
            let j = Jid::parse(&f).map_err(|e| ApiError::new(400, format!("invalid from: {e}")))?;
            if !api.domains.iter().any(|d| d == j.domain()) {
                return Err(ApiError::new(422, "from must be on a hosted domain"));
            }
            j.to_string()
        }
    };
    let kind = m.kind.unwrap_or_else(|| "chat".into());
    if !matches!(kind.as_str(), "chat" | "normal" | "headline") {
        return Err(ApiError::new(400, "type is chat, normal or headline"));
    }
    if m.body.is_empty() || m.body.chars().count() > MAX_BODY_CHARS {
        return Err(ApiError::new(400, "body is 1 to 16384 characters"));
    }
    api.router
        .route(stanza(&from, &to.to_string(), &kind, &m.body));
    Ok(json(202, &serde_json::json!({ "queued": 1 })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Announcement {
    body: String,
    #[serde(default, deserialize_with = "super::present")]
    domain: Option<String>,
}

pub(super) fn announce(api: &Api, request: &Request) -> Answer {
    let a: Announcement = body(request)?;
    if a.body.is_empty() || a.body.chars().count() > MAX_BODY_CHARS {
        return Err(ApiError::new(400, "body is 1 to 16384 characters"));
    }
    if let Some(d) = &a.domain {
        if !api.domains.iter().any(|x| x == d) {
            return Err(ApiError::new(422, "domain is not hosted here"));
        }
    }
    let mut sent = 0;
    for (_, s) in api.conns.sessions() {
        if a.domain.as_deref().is_some_and(|d| d != s.jid.domain()) {
            continue;
        }
        let from = s.jid.domain().to_owned();
        api.router
            .route(stanza(&from, &s.jid.to_string(), "headline", &a.body));
        sent += 1;
    }
    Ok(json(202, &serde_json::json!({ "sent": sent })))
}

fn stanza(from: &str, to: &str, kind: &str, body: &str) -> Element {
    Element::new(ns::CLIENT, "message")
        .with_attr("from", from)
        .with_attr("to", to)
        .with_attr("type", kind)
        .with_child(Element::new(ns::CLIENT, "body").with_text(body))
}
