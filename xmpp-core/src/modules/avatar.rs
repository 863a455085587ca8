//! XEP-0153 vCard-based avatars, done by the server on its users' behalf
//! (XEP-0398 §4): the SHA-1 of the stored vCard's photo goes into every
//! available presence they send, so contacts learn of avatar changes
//! without clients fetching their own vCard at each login.
//!
//! Whose hash wins: the server's. XEP-0153 §4.3 makes each client track
//! what its other resources might have done to the vCard, and a resource
//! that does not speak XEP-0153 forces the others to stop advertising
//! altogether; the server sees every vCard write, so its hash is always the
//! stored photo's, the same for every resource. A client's own non-empty
//! hash is therefore replaced (XEP-0398 §4 allows it), an empty `<x/>` is
//! filled in (it MUST be), and only an explicit empty `<photo/>` — a client
//! saying it has no image to advertise — is left alone, as XEP-0398 §4
//! requires.
//!
//! XEP-0398 §3.1, from PEP to vCard: an avatar published with XEP-0084
//! (its data, then its metadata, told by [`Event::PepPublished`]) becomes
//! the vCard's PHOTO, so the hash follows; the other way is PEP's
//! ([`crate::modules::pep::vcard`]).

use super::{Context, Event, Module, ModuleId};
use crate::hub::ConnId;
use crate::storage::{Documents, RequestId, StorageRequest, StorageResult};
use crate::xml::{Element, Node};
use base64::Engine as _;
use sha1::{Digest, Sha1};
use std::collections::HashMap;

/// Its identity (Prosody's name for it).
pub const ID: ModuleId = ModuleId::new("vcard_xupdate");

/// The presence extension's namespace.
pub const NS: &str = "vcard-temp:x:update";

/// Storage key of the photo hash derived from the vCard: lowercase hex, or
/// empty when the vCard has no photo.
pub const AVATAR_KEY: &str = "avatar";

/// The photo hash of a stored vCard (XEP-0153 §3.1): SHA-1 of the decoded
/// BINVAL, lowercase hex; empty when there is no usable photo (none, an
/// EXTVAL only, or undecodable data).
pub fn photo_hash(vcard_xml: &str) -> String {
    const VCARD: &str = super::stored_xml::VCARD;
    let Ok(vcard) = Element::parse(vcard_xml.as_bytes()) else {
        return String::new();
    };
    let Some(binval) = vcard
        .child(VCARD, "PHOTO")
        .and_then(|p| p.child_text(VCARD, "BINVAL"))
    else {
        return String::new();
    };
    // §4.6: whitespace in the base64 MUST be ignored.
    let compact: String = binval.chars().filter(|c| !c.is_whitespace()).collect();
    match base64::engine::general_purpose::STANDARD.decode(compact) {
        Ok(bytes) if !bytes.is_empty() => Sha1::digest(&bytes)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect(),
        _ => String::new(),
    }
}

/// The client says it has no image to advertise: an empty `<photo/>`.
pub fn hides_avatar(presence: &Element) -> bool {
    presence
        .children
        .iter()
        .filter_map(|n| match n {
            Node::Element(e) if e.is(NS, "x") => Some(e),
            _ => None,
        })
        .any(|x| {
            x.child(NS, "photo")
                .is_some_and(|p| p.text().trim().is_empty())
        })
}

/// Put `hash` into an available presence from a client (empty:
/// `<photo/>`, no avatar), unless it [hides](hides_avatar) its avatar.
pub fn inject(presence: &mut Element, hash: &str) {
    if !hides_avatar(presence) {
        set_hash(presence, hash);
    }
}

/// Replace whatever update element a presence has with one for `hash`.
pub fn set_hash(presence: &mut Element, hash: &str) {
    presence.remove_children(NS, "x");
    let mut photo = Element::new(NS, "photo");
    if !hash.is_empty() {
        photo = photo.with_text(hash);
    }
    presence
        .children
        .push(Node::Element(Element::new(NS, "x").with_child(photo)));
}

/// The account's photo hash, when its vCard has a photo. Most accounts
/// have none and keep no state: no hash means "no photo" (an empty
/// `<photo/>`, which XEP-0398 §4 requires rather than nothing).
#[derive(Debug, Clone, Default)]
struct PhotoHash(String);

/// Remember `hash` as the account's (empty: no photo).
fn set_photo(cx: &mut Context<'_>, account: &str, hash: &str) {
    if hash.is_empty() {
        if cx.account_state_ref::<PhotoHash>(account).is_some() {
            cx.account_state_remove::<PhotoHash>(account);
        }
    } else if let Some(state) = cx.account_state::<PhotoHash>(account) {
        hash.clone_into(&mut state.0);
    }
}

/// The account's photo hash (empty: no photo).
fn photo<'a>(cx: &'a Context<'_>, account: &str) -> &'a str {
    cx.account_state_ref::<PhotoHash>(account)
        .map_or("", |h| h.0.as_str())
}

/// The XEP-0084 image an account last published (item id, base64), kept
/// until its metadata names it (PEP bounds its size).
#[derive(Debug, Clone, Default)]
struct PublishedImage(Option<(String, String)>);

/// The PHOTO an avatar's metadata asks for: (SHA-1 id, type, base64), or
/// `None` for no avatar (XEP-0084 §4.5: metadata without info).
type Photo = Option<(String, String, String)>;

/// XEP-0398's disco feature on the account.
pub const CONVERSION: &str = "urn:xmpp:pep-vcard-conversion:0";

/// The vCard `vcard` with `photo` as its PHOTO (none: without one);
/// `None` when that is what it says already.
pub fn with_photo(vcard: Option<&str>, photo: &Photo) -> Option<String> {
    const VCARD: &str = super::stored_xml::VCARD;
    let current = vcard.unwrap_or_default();
    let mut e = Element::parse(current.as_bytes())
        .ok()
        .filter(|e| e.is(VCARD, "vCard"))
        .unwrap_or_else(|| Element::new(VCARD, "vCard"));
    match photo {
        Some((id, _, _)) if photo_hash(current) == *id => return None,
        None if e.child(VCARD, "PHOTO").is_none() => return None,
        _ => {}
    }
    e.remove_children(VCARD, "PHOTO");
    if let Some((_, kind, b64)) = photo {
        e.children.push(Node::Element(
            Element::new(VCARD, "PHOTO")
                .with_child(Element::new(VCARD, "TYPE").with_text(kind.clone()))
                .with_child(Element::new(VCARD, "BINVAL").with_text(b64.clone())),
        ));
    }
    Some(e.to_xml())
}

/// The photo an avatar's metadata describes (the info without `url`,
/// XEP-0398 §3.1), from the image published before it: `Err` when the
/// image is not that one (or does not hash to its id).
fn photo_of(metadata: &Element, image: Option<&(String, String)>) -> Result<Photo, ()> {
    const METADATA: &str = super::pep::vcard::METADATA;
    let mut infos = metadata
        .elements()
        .filter(|i| i.is(METADATA, "info"))
        .peekable();
    if infos.peek().is_none() {
        return Ok(None);
    }
    let info = infos.find(|i| i.attr("url").is_none()).ok_or(())?;
    let id = info.attr("id").ok_or(())?;
    let (image_id, b64) = image.filter(|(i, _)| i == id).ok_or(())?;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .map_err(|_| ())?;
    let hash: String = Sha1::digest(&bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    if hash != *image_id {
        return Err(());
    }
    let kind = info.attr("type").unwrap_or("image/png").to_owned();
    Ok(Some((image_id.clone(), kind, b64.clone())))
}

/// The session's last broadcast presence said "no image to advertise" (an
/// empty `<photo/>`), so avatar changes are not announced for it.
#[derive(Debug, Clone, Default)]
struct HidesAvatar;

/// XEP-0153 on the users' behalf: the account's photo hash is known once
/// it is loaded (stored next to the vCard under [`AVATAR_KEY`]), put into
/// its available presence, and recomputed — then re-announced — when the
/// vCard changes.
#[derive(Debug, Clone, Default)]
pub struct Avatars {
    /// vCard reads for accounts loaded without a stored hash (a vCard
    /// stored by an older version), by request.
    reading: HashMap<RequestId, String>,
    /// vCard reads to put a published avatar in: the account and the photo.
    converting: HashMap<RequestId, (String, Photo)>,
}

impl Module for Avatars {
    fn id(&self) -> ModuleId {
        ID
    }

    fn account_documents(&self) -> &'static [&'static str] {
        &[AVATAR_KEY]
    }

    fn account_features(&self) -> &'static [&'static str] {
        &[CONVERSION]
    }

    fn account_loaded(&mut self, cx: &mut Context<'_>, account: &str, documents: &Documents) {
        match documents.get(AVATAR_KEY) {
            Some(hash) => set_photo(cx, account, hash),
            // Read the vCard once before the account's work runs, so its
            // first presence already carries the right hash.
            None => {
                let id = cx.prepare(
                    account,
                    StorageRequest::LoadBlob {
                        account: account.to_owned(),
                        key: super::stored_xml::VCARD_KEY.to_owned(),
                    },
                );
                self.reading.insert(id, account.to_owned());
            }
        }
    }

    fn storage_answer(&mut self, cx: &mut Context<'_>, id: RequestId, result: StorageResult) {
        if let Some((account, photo)) = self.converting.remove(&id) {
            self.convert(cx, &account, &photo, result);
            return cx.release_account(&account);
        }
        let Some(account) = self.reading.remove(&id) else {
            return;
        };
        let hash = match result {
            StorageResult::Blob(Some(vcard)) => photo_hash(&vcard),
            StorageResult::Blob(None) => String::new(),
            other => {
                // Not stored: the next load tries again.
                tracing::error!(
                    account,
                    ?other,
                    "reading the vCard for its avatar hash failed"
                );
                return;
            }
        };
        // Stored, so this happens once per account.
        cx.write(StorageRequest::StoreBlob {
            account: account.clone(),
            key: AVATAR_KEY.to_owned(),
            value: Some(hash.clone()),
            limit: None,
        });
        set_photo(cx, &account, &hash);
    }

    /// XEP-0398 §4: the stored photo's hash in every available presence;
    /// a broadcast one also says whether the session hides its avatar.
    fn presence_sending(
        &mut self,
        cx: &mut Context<'_>,
        account: &str,
        conn: ConnId,
        presence: &mut Element,
        broadcast: bool,
    ) {
        if broadcast {
            let hides = hides_avatar(presence);
            if hides {
                cx.session_state::<HidesAvatar>(account, conn);
            } else if let Some(session) = cx.account(account).and_then(|a| a.session_by_conn(conn))
            {
                if session.ext.has::<HidesAvatar>() {
                    cx.session_state_remove::<HidesAvatar>(account, conn);
                }
            }
        }
        if cx.account(account).is_some() {
            inject(presence, photo(cx, account));
        }
    }

    /// A new vCard: store its photo hash and, when it changed, announce
    /// it in the presence of every available resource. A new XEP-0084
    /// avatar: into the vCard.
    fn event(&mut self, cx: &mut Context<'_>, event: Event<'_>) {
        match event {
            Event::VcardStored { account, vcard } => vcard_changed(cx, account, vcard),
            Event::PepPublished {
                account,
                node,
                id,
                payload,
            } => self.avatar_published(cx, account, node, id, payload),
            _ => {}
        }
    }
}

impl Avatars {
    /// XEP-0398 §3.1: the image is kept until its metadata names it; then
    /// the vCard is read to put it in.
    fn avatar_published(
        &mut self,
        cx: &mut Context<'_>,
        account: &str,
        node: &str,
        id: &str,
        payload: &Element,
    ) {
        use super::pep::vcard::{DATA, METADATA};
        if node == DATA && payload.is(DATA, "data") {
            let b64: String = payload
                .text()
                .chars()
                .filter(|c| !c.is_whitespace())
                .collect();
            if let Some(image) = cx.account_state::<PublishedImage>(account) {
                image.0 = Some((id.to_owned(), b64));
            }
            return;
        }
        if node != METADATA || !payload.is(METADATA, "metadata") {
            return;
        }
        let image = cx
            .account_state_ref::<PublishedImage>(account)
            .and_then(|i| i.0.as_ref());
        let Ok(photo) = photo_of(payload, image) else {
            tracing::debug!(
                account,
                id,
                "avatar metadata without its image: vCard unchanged"
            );
            return;
        };
        let request = cx.request(StorageRequest::LoadBlob {
            account: account.to_owned(),
            key: super::stored_xml::VCARD_KEY.to_owned(),
        });
        cx.hold_account(account);
        self.converting.insert(request, (account.to_owned(), photo));
    }

    /// The vCard read: store it with the photo, unless it has it already.
    fn convert(
        &mut self,
        cx: &mut Context<'_>,
        account: &str,
        photo: &Photo,
        result: StorageResult,
    ) {
        let vcard = match result {
            StorageResult::Blob(v) => v,
            other => {
                tracing::error!(account, ?other, "reading the vCard for a new avatar failed");
                return;
            }
        };
        let Some(xml) = with_photo(vcard.as_deref(), photo) else {
            return;
        };
        cx.commit(StorageRequest::StoreBlob {
            account: account.to_owned(),
            key: super::stored_xml::VCARD_KEY.to_owned(),
            value: Some(xml.clone()),
            limit: None,
        });
        vcard_changed(cx, account, &xml);
        // PEP hears it too, and finds its avatar there already.
        cx.announce(Event::VcardStored {
            account,
            vcard: &xml,
        });
    }
}

/// A vCard stored: its photo hash stored and, when it changed, put into
/// the presence of every available resource.
fn vcard_changed(cx: &mut Context<'_>, account: &str, vcard: &str) {
    let hash = photo_hash(vcard);
    cx.write(StorageRequest::StoreBlob {
        account: account.to_owned(),
        key: AVATAR_KEY.to_owned(),
        value: Some(hash.clone()),
        limit: None,
    });
    if cx.account(account).is_none() || photo(cx, account) == hash {
        return;
    }
    set_photo(cx, account, &hash);
    let Some(acc) = cx.account(account) else {
        return;
    };
    let changed: Vec<(ConnId, Element)> = acc
        .sessions
        .values()
        .filter(|s| s.available && !s.ext.has::<HidesAvatar>())
        .filter_map(|s| {
            let mut p = s.presence()?;
            set_hash(&mut p, &hash);
            Some((s.conn, p))
        })
        .collect();
    for (conn, p) in changed {
        cx.rebroadcast(account, conn, p);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn presence(xml: &str) -> Element {
        Element::parse(xml.as_bytes()).expect("XML")
    }

    #[test]
    fn an_avatar_becomes_the_vcard_photo_once() {
        let image = (
            "aaf4c61ddcc5e8a2dabede0f3b482cd9aea9434d".to_owned(),
            "aGVsbG8=".to_owned(),
        );
        let meta = |info: &str| {
            Element::parse(
                format!("<metadata xmlns='urn:xmpp:avatar:metadata'>{info}</metadata>").as_bytes(),
            )
            .expect("XML")
        };
        let m = meta(
            "<info id='x' url='https://x/a.png' type='image/png' bytes='1'/>             <info id='aaf4c61ddcc5e8a2dabede0f3b482cd9aea9434d' type='image/jpeg' bytes='5'/>",
        );
        let photo = photo_of(&m, Some(&image)).expect("the image");
        let v = with_photo(Some("<vCard xmlns='vcard-temp'><FN>A</FN></vCard>"), &photo)
            .expect("changed");
        assert_eq!(photo_hash(&v), image.0);
        assert!(v.contains("<FN>A</FN>") && v.contains("image/jpeg"), "{v}");
        assert_eq!(with_photo(Some(&v), &photo), None, "already there");
        // Another image than the one published, or one not hashing to its id.
        assert!(photo_of(&m, None).is_err());
        let wrong = (
            "aaf4c61ddcc5e8a2dabede0f3b482cd9aea9434d".to_owned(),
            "aGVsbA==".to_owned(),
        );
        assert!(photo_of(&m, Some(&wrong)).is_err());
        // No info: no avatar, the PHOTO goes.
        assert_eq!(photo_of(&meta(""), None), Ok(None));
        let none = with_photo(Some(&v), &None).expect("changed");
        assert_eq!(photo_hash(&none), "");
        assert_eq!(with_photo(None, &None), None);
    }

    #[test]
    fn hash_of_the_decoded_photo() {
        // SHA-1("hello") = aaf4c61d…; base64("hello") = aGVsbG8=, split by
        // whitespace as RFC 2045 lines may be.
        let v = "<vCard xmlns='vcard-temp'><FN>A</FN><PHOTO><TYPE>image/png</TYPE>\
                 <BINVAL>aGVs\n  bG8=</BINVAL></PHOTO></vCard>";
        assert_eq!(photo_hash(v), "aaf4c61ddcc5e8a2dabede0f3b482cd9aea9434d");
        assert_eq!(
            photo_hash("<vCard xmlns='vcard-temp'><FN>A</FN></vCard>"),
            ""
        );
        assert_eq!(
            photo_hash(
                "<vCard xmlns='vcard-temp'><PHOTO><EXTVAL>https://x/y.png</EXTVAL></PHOTO></vCard>"
            ),
            ""
        );
        assert_eq!(
            photo_hash("<vCard xmlns='vcard-temp'><PHOTO><BINVAL>!!!</BINVAL></PHOTO></vCard>"),
            ""
        );
        assert_eq!(photo_hash("not xml"), "");
    }

    #[test]
    fn injection_follows_xep_0398() {
        let h = "aaf4c61ddcc5e8a2dabede0f3b482cd9aea9434d";
        // Omitted: added.
        let mut p = presence("<presence xmlns='jabber:client'><show>away</show></presence>");
        inject(&mut p, h);
        assert_eq!(
            p.child(NS, "x")
                .and_then(|x| x.child_text(NS, "photo"))
                .as_deref(),
            Some(h)
        );
        // Empty <x/> and a client's own (stale) hash: replaced, once.
        for sent in [
            "<presence xmlns='jabber:client'><x xmlns='vcard-temp:x:update'/></presence>",
            "<presence xmlns='jabber:client'><x xmlns='vcard-temp:x:update'><photo>0000</photo></x></presence>",
        ] {
            let mut p = presence(sent);
            inject(&mut p, h);
            assert_eq!(p.elements().filter(|e| e.is(NS, "x")).count(), 1);
            assert_eq!(
                p.child(NS, "x").and_then(|x| x.child_text(NS, "photo")).as_deref(),
                Some(h)
            );
        }
        // An explicit empty <photo/> stays.
        let mut p = presence(
            "<presence xmlns='jabber:client'><x xmlns='vcard-temp:x:update'><photo/></x></presence>",
        );
        inject(&mut p, h);
        assert_eq!(
            p.child(NS, "x")
                .and_then(|x| x.child_text(NS, "photo"))
                .as_deref(),
            Some("")
        );
        // No avatar: an empty <photo/>.
        let mut p = presence("<presence xmlns='jabber:client'/>");
        inject(&mut p, "");
        let x = p.child(NS, "x").expect("x");
        assert!(x.child(NS, "photo").is_some_and(|ph| ph.text().is_empty()));
    }
}
