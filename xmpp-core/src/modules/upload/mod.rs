//! XEP-0363 HTTP File Upload at `upload.<domain>`: slot requests from the
//! server's own users are granted within a per-file size limit and a
//! per-user daily quota, as signed tokens ([`token`]) that the HTTP
//! endpoint (`xmpp-runtime/src/http/upload.rs`) checks at the `PUT`; the
//! same URL serves the file with `GET`.
//!
//! The quota counts what was granted in the last 24 hours, kept per
//! account as a small stored document (`upload:usage`: one `ms size` line
//! per slot), read and rewritten for each request; an account's requests
//! are taken one at a time so two cannot both slip under the limit. The
//! slot is only granted once its line is durable.

pub mod token;

use super::{Addressed, Context, Flow, Module, ModuleId};
use crate::jid::Jid;
use crate::ns;
use crate::stanza::{error_reply, iq_result, StanzaError};
use crate::storage::{RequestId, StorageRequest, StorageResult};
use crate::time::Millis;
use crate::xml::Element;
use std::collections::{HashMap, VecDeque};
pub use token::{valid_content_type, valid_filename, Slot, TokenError};

/// Its identity.
pub const ID: ModuleId = ModuleId::new("upload");

/// XEP-0363's namespace.
pub const NS: &str = "urn:xmpp:http:upload:0";

/// The stored document holding an account's recent grants.
const USAGE_KEY: &str = "upload:usage";

/// What the quota looks back over.
const DAY_MS: Millis = 24 * 3600 * 1000;

/// The service's settings.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Settings {
    /// Hosted domains: the service answers at `upload.<domain>` for each,
    /// and only their users may upload.
    pub domains: Vec<String>,
    /// Where the HTTP endpoint is reached: `https://host:port` (slots are
    /// `<base>/upload/<slot>/<name>`).
    pub base_url: String,
    /// The key tokens are signed with (the HTTP endpoint's too).
    pub secret: Vec<u8>,
    /// Largest file, bytes.
    pub max_file_size: u64,
    /// Bytes one account may be granted per 24 hours; 0: no quota.
    pub daily_quota: u64,
    /// How long a slot may wait for its `PUT`, ms.
    pub slot_ttl_ms: Millis,
}

impl std::fmt::Debug for Settings {
    /// The secret never reaches a log.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Settings")
            .field("domains", &self.domains)
            .field("base_url", &self.base_url)
            .field("max_file_size", &self.max_file_size)
            .field("daily_quota", &self.daily_quota)
            .field("slot_ttl_ms", &self.slot_ttl_ms)
            .finish_non_exhaustive()
    }
}

impl Settings {
    fn serves(&self, service: &str) -> bool {
        service
            .strip_prefix("upload.")
            .is_some_and(|d| self.domains.iter().any(|x| x == d))
    }
}

/// A slot request waiting for storage.
#[derive(Debug, Clone)]
struct Pending {
    iq: Element,
    account: String,
    request: Request,
    /// The usage document as it will be stored (set once it was read).
    usage: Option<String>,
}

/// What a client asked for.
#[derive(Debug, Clone)]
struct Request {
    filename: String,
    size: u64,
    content_type: Option<String>,
}

/// The module.
#[derive(Debug, Clone, Default)]
pub struct Upload {
    settings: Settings,
    /// Storage requests in flight.
    waiting: HashMap<RequestId, Pending>,
    /// Accounts with a request in flight, and what queues behind it.
    busy: HashMap<String, VecDeque<(Element, Request)>>,
}

impl Upload {
    /// The service with these settings.
    pub fn new(settings: Settings) -> Self {
        Upload {
            settings,
            ..Upload::default()
        }
    }
}

impl Module for Upload {
    fn id(&self) -> ModuleId {
        ID
    }

    fn service_domains(&self) -> Vec<String> {
        self.settings
            .domains
            .iter()
            .map(|d| format!("upload.{d}"))
            .collect()
    }

    fn iq(&mut self, cx: &mut Context<'_>, to: Addressed<'_>, iq: &Element) -> Flow {
        let Addressed::Service { domain } = to else {
            return Flow::Pass;
        };
        if !self.settings.serves(domain) || iq.attr("type") != Some("get") {
            return Flow::Pass;
        }
        let Some(child) = iq.first_element() else {
            return Flow::Pass;
        };
        match (child.ns.as_str(), child.name.as_str()) {
            (ns::DISCO_INFO, "query") => cx.route(self.disco_info(iq)),
            (ns::DISCO_ITEMS, "query") => {
                cx.route(iq_result(iq).with_child(Element::new(ns::DISCO_ITEMS, "query")))
            }
            (NS, "request") => self.slot_request(cx, iq, child),
            _ => return Flow::Pass,
        }
        Flow::Handled
    }

    fn storage_answer(&mut self, cx: &mut Context<'_>, id: RequestId, result: StorageResult) {
        let Some(mut pending) = self.waiting.remove(&id) else {
            return;
        };
        match (pending.usage.take(), result) {
            // The usage was read: check the quota, then record the grant.
            (None, StorageResult::Blob(stored)) => {
                let now = cx.now();
                let mut lines = recent(stored.as_deref().unwrap_or(""), now);
                let used: u64 = lines.iter().map(|(_, size)| size).sum();
                if used.saturating_add(pending.request.size) > self.settings.daily_quota {
                    tracing::info!(account = %pending.account, used, "upload quota reached");
                    let reply = quota_error(&pending.iq, self.settings.daily_quota);
                    cx.route(reply);
                    return self.next(cx, &pending.account);
                }
                lines.push((now, pending.request.size));
                let usage: String = lines.iter().map(|(t, s)| format!("{t} {s}\n")).collect();
                let store = StorageRequest::StoreBlob {
                    account: pending.account.clone(),
                    key: USAGE_KEY.to_owned(),
                    value: Some(usage.clone()),
                    limit: None,
                };
                pending.usage = Some(usage);
                let id = cx.request(store);
                self.waiting.insert(id, pending);
            }
            // The grant is durable: the slot goes out.
            (Some(_), StorageResult::Done) => {
                let reply = self.grant(cx, &pending.iq, &pending.account, &pending.request);
                cx.route(reply);
                self.next(cx, &pending.account);
            }
            (_, StorageResult::NotFound) => {
                // The account went away meanwhile.
                cx.bounce(&pending.iq, StanzaError::Forbidden);
                self.next(cx, &pending.account);
            }
            (_, other) => {
                tracing::error!(?other, "upload quota storage failed");
                cx.bounce(&pending.iq, StanzaError::InternalServerError);
                self.next(cx, &pending.account);
            }
        }
    }
}

impl Upload {
    /// XEP-0363 §2: the service, its feature and its size limit.
    fn disco_info(&self, iq: &Element) -> Element {
        let form =
            super::data_form::form_start("result", NS).with_child(super::data_form::field_values(
                "max-file-size",
                None,
                Some(self.settings.max_file_size.to_string()),
            ));
        let query = Element::new(ns::DISCO_INFO, "query")
            .with_child(
                Element::new(ns::DISCO_INFO, "identity")
                    .with_attr("category", "store")
                    .with_attr("type", "file")
                    .with_attr("name", "HTTP File Upload"),
            )
            .with_child(Element::new(ns::DISCO_INFO, "feature").with_attr("var", NS))
            .with_child(form);
        iq_result(iq).with_child(query)
    }

    fn slot_request(&mut self, cx: &mut Context<'_>, iq: &Element, child: &Element) {
        let account = iq
            .attr("from")
            .and_then(|f| Jid::parse(f).ok())
            .filter(|j| {
                j.local().is_some() && self.settings.domains.iter().any(|d| d == j.domain())
            })
            .map(|j| j.bare_str());
        let Some(account) = account else {
            // Only the server's own users spend its disk.
            return cx.bounce(iq, StanzaError::Forbidden);
        };
        let Some(request) = parse_request(child) else {
            return cx.bounce(iq, StanzaError::BadRequest);
        };
        if request.size > self.settings.max_file_size {
            return cx.route(too_large(iq, self.settings.max_file_size));
        }
        if self.settings.daily_quota == 0 {
            let reply = self.grant(cx, iq, &account, &request);
            return cx.route(reply);
        }
        if let Some(queue) = self.busy.get_mut(&account) {
            // One request of an account at a time: bounded, like any
            // client's requests in flight.
            if queue.len() >= 16 {
                return cx.bounce(iq, StanzaError::ResourceConstraint);
            }
            queue.push_back((iq.clone(), request));
            return;
        }
        self.busy.insert(account.clone(), VecDeque::new());
        self.check_quota(cx, iq.clone(), account, request);
    }

    fn check_quota(
        &mut self,
        cx: &mut Context<'_>,
        iq: Element,
        account: String,
        request: Request,
    ) {
        let id = cx.request(StorageRequest::LoadBlob {
            account: account.clone(),
            key: USAGE_KEY.to_owned(),
        });
        self.waiting.insert(
            id,
            Pending {
                iq,
                account,
                request,
                usage: None,
            },
        );
    }

    /// The account's next queued request, if any.
    fn next(&mut self, cx: &mut Context<'_>, account: &str) {
        let next = self.busy.get_mut(account).and_then(VecDeque::pop_front);
        match next {
            Some((iq, request)) => self.check_quota(cx, iq, account.to_owned(), request),
            None => {
                self.busy.remove(account);
            }
        }
    }

    /// The slot for `request` (XEP-0363 §4).
    fn grant(
        &self,
        cx: &mut Context<'_>,
        iq: &Element,
        account: &str,
        request: &Request,
    ) -> Element {
        let slot = Slot {
            id: cx.entropy().hex_id(24),
            filename: request.filename.clone(),
            size: request.size,
            content_type: request.content_type.clone(),
            owner: account.to_owned(),
            expires: cx.now().saturating_add(self.settings.slot_ttl_ms),
        };
        let url = format!(
            "{}/upload/{}/{}",
            self.settings.base_url.trim_end_matches('/'),
            slot.id,
            percent_encode(&slot.filename)
        );
        let token = slot.sign(&self.settings.secret);
        tracing::info!(%account, slot = %slot.id, size = slot.size, "upload slot granted");
        let put = Element::new(NS, "put")
            .with_attr("url", url.clone())
            .with_child(
                Element::new(NS, "header")
                    .with_attr("name", "Authorization")
                    .with_text(format!("Bearer {token}")),
            );
        let get = Element::new(NS, "get").with_attr("url", url);
        iq_result(iq).with_child(Element::new(NS, "slot").with_child(put).with_child(get))
    }
}

/// `<request filename size content-type/>` (§4), checked.
fn parse_request(child: &Element) -> Option<Request> {
    let filename = child.attr("filename")?.to_owned();
    let size: u64 = child.attr("size")?.trim().parse().ok()?;
    let content_type = child.attr("content-type").map(str::to_owned);
    let ok = valid_filename(&filename)
        && size > 0
        && content_type.as_deref().is_none_or(valid_content_type);
    ok.then_some(Request {
        filename,
        size,
        content_type,
    })
}

/// The grants of the last 24 hours in a usage document.
fn recent(document: &str, now: Millis) -> Vec<(Millis, u64)> {
    document
        .lines()
        .filter_map(|l| {
            let (t, s) = l.split_once(' ')?;
            Some((t.parse().ok()?, s.parse().ok()?))
        })
        .filter(|(t, _)| now.saturating_sub(*t) < DAY_MS)
        .collect()
}

/// §5: not-acceptable with the limit.
fn too_large(iq: &Element, max: u64) -> Element {
    with_app_error(
        error_reply(
            iq,
            StanzaError::NotAcceptable,
            iq.attr("to").unwrap_or_default(),
        ),
        Element::new(NS, "file-too-large")
            .with_child(Element::new(NS, "max-file-size").with_text(max.to_string())),
    )
}

/// §5: resource-constraint, saying why.
fn quota_error(iq: &Element, quota: u64) -> Element {
    with_app_error(
        error_reply(
            iq,
            StanzaError::ResourceConstraint,
            iq.attr("to").unwrap_or_default(),
        ),
        Element::new(ns::STANZA_ERRORS, "text")
            .with_text(format!("daily upload quota of {quota} bytes reached")),
    )
}

fn with_app_error(mut reply: Element, extra: Element) -> Element {
    if let Some(crate::xml::Node::Element(error)) = reply
        .children
        .iter_mut()
        .rev()
        .find(|n| matches!(n, crate::xml::Node::Element(e) if e.name == "error"))
    {
        error.children.push(crate::xml::Node::Element(extra));
    }
    reply
}

/// A path segment: everything but RFC 3986's unreserved characters
/// percent-encoded (UTF-8 bytes).
pub fn percent_encode(segment: &str) -> String {
    let mut out = String::with_capacity(segment.len());
    for b in segment.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests;
