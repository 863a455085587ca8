//! XEP-0153 in the hub: the account's photo hash is known once it is
//! loaded (stored next to the vCard, see [`AVATAR_KEY`]), injected into its
//! available presence, and recomputed — then re-announced — when the vCard
//! changes. See [`crate::modules::avatar`] for whose hash wins.

use super::{Hub, Pending, Slot};
use crate::modules::avatar::{hides_avatar, inject, photo_hash, set_hash, AVATAR_KEY};
use crate::modules::stored_xml::VCARD_KEY;
use crate::storage::{AccountData, StorageRequest, StorageResult};
use crate::xml::Element;
use std::collections::HashSet;

impl Hub {
    /// The server puts avatar hashes into presence (needs vcard-temp).
    pub(super) fn avatars_on(&self) -> bool {
        self.enabled("vcard_xupdate") && self.enabled("vcard")
    }

    /// An account loaded without a known photo hash (its vCard predates
    /// the hash): read the vCard once before the queued work runs, so the
    /// first presence already carries the right hash. `Err` hands the data
    /// back when nothing needs reading.
    pub(super) fn load_avatar(
        &mut self,
        account: &str,
        data: AccountData,
    ) -> Result<(), Box<AccountData>> {
        if data.documents.get(AVATAR_KEY).is_some() || !self.avatars_on() {
            return Err(Box::new(data));
        }
        self.request(
            StorageRequest::LoadBlob {
                account: account.to_owned(),
                key: VCARD_KEY.to_owned(),
            },
            Pending::Avatar(account.to_owned(), Box::new(data)),
        );
        Ok(())
    }

    /// The vCard read by [`load_avatar`](Self::load_avatar) arrived: keep
    /// its hash (and store it, so this happens once per account), then let
    /// the account's queued work run.
    pub(super) fn avatar_loaded(
        &mut self,
        account: &str,
        mut data: AccountData,
        result: StorageResult,
    ) {
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
                data.documents.set(AVATAR_KEY, String::new());
                return self.account_ready(account, data);
            }
        };
        self.write(StorageRequest::StoreBlob {
            account: account.to_owned(),
            key: AVATAR_KEY.to_owned(),
            value: Some(hash.clone()),
            limit: None,
        });
        data.documents.set(AVATAR_KEY, hash);
        self.account_ready(account, data);
    }

    /// XEP-0398 §4: the stored photo's hash in an available presence the
    /// account sends from `conn`; `broadcast` when it goes to subscribers
    /// (then the session remembers whether it hides its avatar).
    pub(super) fn inject_avatar(
        &mut self,
        account: &str,
        conn: super::ConnId,
        presence: &mut Element,
        broadcast: bool,
    ) {
        if !self.avatars_on() {
            return;
        }
        let Some(acc) = self.account_mut(account) else {
            return;
        };
        if broadcast {
            if let Some(s) = acc.session_by_conn_mut(conn) {
                s.hides_avatar = hides_avatar(presence);
            }
        }
        if let Some(hash) = acc.avatar.as_deref() {
            inject(presence, hash);
        }
    }

    /// The account stored a new vCard: store its photo hash and, when it
    /// changed, announce it in the presence of every available resource.
    pub(super) fn vcard_stored(&mut self, account: &str, vcard: &str) {
        if !self.avatars_on() {
            return;
        }
        let hash = photo_hash(vcard);
        self.write(StorageRequest::StoreBlob {
            account: account.to_owned(),
            key: AVATAR_KEY.to_owned(),
            value: Some(hash.clone()),
            limit: None,
        });
        let Some(acc) = self.account_mut(account) else {
            return;
        };
        if acc.avatar.as_deref() == Some(hash.as_str()) {
            return;
        }
        acc.avatar = Some(hash.clone());
        let mut changed = Vec::new();
        for s in acc
            .sessions
            .values_mut()
            .filter(|s| s.available && !s.hides_avatar)
        {
            let Some(mut p) = s.presence() else { continue };
            set_hash(&mut p, &hash);
            s.last_presence = Some(p.to_xml().into_boxed_str());
            changed.push((s.conn, p));
        }
        for (conn, p) in changed {
            self.broadcast_presence(account, conn, &p, &HashSet::new());
        }
    }

    /// A loaded account whose slot is still `Loading`: make it `Loaded`.
    fn account_ready(&mut self, account: &str, data: AccountData) {
        let Some(Slot::Loading(seq, queue)) = self.accounts.remove(account) else {
            return;
        };
        self.run_loaded(account, data, seq, queue);
    }
}
