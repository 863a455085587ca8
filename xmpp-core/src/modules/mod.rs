//! Protocol modules. Each implements [`Module`]: it declares its disco
//! features and takes the iqs, session events and storage answers it owns,
//! so `disco#info` is derived from what is registered and a new XEP is one
//! file plus one line in [`ModuleSet::standard`].

pub mod avatar;
pub mod blocking;
pub mod caps;
pub mod carbons;
pub mod data_form;
pub mod disco;
pub mod extdisco;
pub mod hints;
pub mod last;
pub mod mam;
pub mod muc;
pub mod offline;
pub mod pep;
pub mod ping;
pub mod pubsub;
pub mod push;
pub mod register;
pub mod roster;
mod set;
pub mod stored_xml;
pub mod subscription;
pub mod time;
pub mod upload;
pub mod version;
pub mod xep0060;

use crate::hub::ConnId;
use crate::storage::{Documents, RequestId, StorageResult};
use crate::xml::Element;

pub use crate::hub::Context;
pub use disco::Disco;
pub use last::LastActivity;
pub use ping::Ping;
pub use set::ModuleSet;
pub use time::EntityTime;
pub use version::Version;

/// A module's identity: the name configuration, `module list` and logs
/// use, declared once as a constant next to the module (`last::ID`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ModuleId(&'static str);

impl ModuleId {
    /// The identity named `name` in the module catalog.
    pub const fn new(name: &'static str) -> Self {
        ModuleId(name)
    }

    /// The catalog name.
    pub const fn name(self) -> &'static str {
        self.0
    }
}

/// Whether a hook took a stanza. The first module that answers
/// [`Flow::Handled`] ends the search, as in Prosody's event bus.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    /// This module answered; no other module sees the stanza.
    Handled,
    /// Not this module's: ask the next one.
    Pass,
}

/// Whom an iq request is addressed to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Addressed<'a> {
    /// The server itself (a hosted domain's bare JID).
    Server {
        /// The domain.
        domain: &'a str,
    },
    /// One of the account's sessions, by an iq without `to` that the
    /// server answers for that session alone (XEP-0280's `<enable/>`).
    /// What no module takes goes on as addressed to the account.
    Session {
        /// The account's bare JID.
        account: &'a str,
        /// The session's connection.
        conn: ConnId,
    },
    /// A service domain a module hosts ([`Module::service_domains`]) or
    /// a JID under it (a room, a node); the stanza's `to` says which.
    Service {
        /// The service domain.
        domain: &'a str,
    },
    /// An account's bare JID, which the server answers for (RFC 6120
    /// §10.5.3.1). The account is loaded.
    Account {
        /// The account's bare JID.
        account: &'a str,
        /// Sent by one of the account's own sessions.
        own: bool,
    },
}

/// Something that happened to an account, announced to every module: the
/// typed list of what modules may tell each other (Prosody's event names).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event<'a> {
    /// A resource of `account` went offline, with an unavailable presence
    /// (its status text) or by losing its connection (no status).
    Offline {
        /// The account's bare JID.
        account: &'a str,
        /// The status of the unavailable presence, or empty.
        status: &'a str,
    },
    /// Messages for `account` wait unread: stored offline, delivered to a
    /// session whose connection broke (XEP-0198), or sent to one that
    /// never acknowledged them before it broke. XEP-0357 wakes the phone.
    Unread {
        /// The account's bare JID.
        account: &'a str,
        /// The messages, oldest first.
        messages: &'a [Element],
    },
    /// Session `conn` of `account` sent its initial presence (RFC 6121
    /// §4.2): it is available for messages.
    Online {
        /// The account's bare JID.
        account: &'a str,
        /// The session's connection.
        conn: ConnId,
    },
    /// The user is back: a session sent initial presence or was resumed.
    Seen {
        /// The account's bare JID.
        account: &'a str,
    },
    /// The account approved `contact`'s subscription to its presence
    /// (RFC 6121 §3.1.5): the contact now has subscription `from` and may
    /// read what presence access allows (XEP-0163 §4.3.3 sends it the
    /// last PEP items).
    SubscriptionApproved {
        /// The account's bare JID.
        account: &'a str,
        /// The contact's bare JID.
        contact: &'a str,
    },
    /// The account's PEP service published `payload` as item `id` of its
    /// node `node` (XEP-0163): XEP-0398 puts a new avatar into the vCard.
    PepPublished {
        /// The account's bare JID.
        account: &'a str,
        /// The node.
        node: &'a str,
        /// The item id.
        id: &'a str,
        /// The item's payload.
        payload: &'a Element,
    },
    /// The account stored a private XML element (XEP-0049): XEP-0411
    /// converts legacy bookmarks (`storage:bookmarks`) to PEP.
    PrivateStored {
        /// The account's bare JID.
        account: &'a str,
        /// The element as stored.
        xml: &'a str,
    },
    /// The account stored a new vCard (XEP-0054), which XEP-0153 hashes.
    VcardStored {
        /// The account's bare JID.
        account: &'a str,
        /// The vCard as stored.
        vcard: &'a str,
    },
}

/// A message a session sends, on its way through the modules'
/// [`Module::sending`] hooks.
#[derive(Debug)]
pub struct Outgoing<'a> {
    /// The message; modules may change it until it is archived (the
    /// archive runs last).
    pub stanza: &'a mut Element,
    /// The id the account's archive gave it (XEP-0359), once archived.
    pub archive_id: Option<crate::archive::ArchiveId>,
}

/// A protocol module of the hub. Every hook has a default that does
/// nothing, so a module implements only what its XEP needs; it acts only
/// through the [`Context`], which collects outputs (stanzas, storage
/// requests) and performs no I/O.
pub trait Module: Send + std::fmt::Debug {
    /// Its identity.
    fn id(&self) -> ModuleId;

    /// Where it runs among the modules, for every hook: higher first
    /// (Prosody's hook priorities, per module). Filters that may drop a
    /// stanza (XEP-0191) come before what acts on it (archiving).
    fn priority(&self) -> i32 {
        0
    }

    /// Keys of the account documents it needs with every account load
    /// ([`crate::storage::DocumentKeys`]): what it consults for every
    /// stanza. Rarely read documents are loaded on demand instead.
    fn account_documents(&self) -> &'static [&'static str] {
        &[]
    }

    /// An account was loaded with the documents every module declared:
    /// set up the account's state ([`Context::account_state`]).
    fn account_loaded(&mut self, _cx: &mut Context<'_>, _account: &str, _documents: &Documents) {}

    /// A stanza from session `conn` of `account`, before the hub routes or
    /// answers it (RFC 6121's outbound processing). [`Flow::Handled`]: the
    /// module answered or dropped it.
    fn outbound(
        &mut self,
        _cx: &mut Context<'_>,
        _account: &str,
        _conn: ConnId,
        _stanza: &Element,
    ) -> Flow {
        Flow::Pass
    }

    /// A stanza routed to `account` (its bare or a full JID), before the
    /// delivery rules (RFC 6121 §8.5). [`Flow::Handled`]: the module
    /// answered or dropped it.
    fn inbound(&mut self, _cx: &mut Context<'_>, _account: &str, _stanza: &Element) -> Flow {
        Flow::Pass
    }

    /// An available presence from session `conn` of `account` before it
    /// goes out, to the subscribers (`broadcast`) or directed: a module may
    /// change it (XEP-0153 puts the photo hash in).
    fn presence_sending(
        &mut self,
        _cx: &mut Context<'_>,
        _account: &str,
        _conn: ConnId,
        _presence: &mut Element,
        _broadcast: bool,
    ) {
    }

    /// A stanza the server sends on the account's behalf to `contact` (a
    /// bare JID): a session's presence broadcast to a subscriber, or what
    /// a module sends by [`Context::withholds`] first (PEP notifications).
    /// [`Flow::Handled`] withholds it (XEP-0191: a blocked contact).
    fn broadcasting(
        &mut self,
        _cx: &mut Context<'_>,
        _account: &str,
        _contact: &str,
        _presence: &Element,
    ) -> Flow {
        Flow::Pass
    }

    /// Features it adds to the server's disco#info.
    fn server_features(&self) -> &'static [&'static str] {
        &[]
    }

    /// Service domains it hosts (`conference.example.org`): their
    /// stanzas come to this module's hooks as [`Addressed::Service`], and
    /// the domains are listed as disco items of the server.
    fn service_domains(&self) -> Vec<String> {
        Vec::new()
    }

    /// Features it adds to every account's disco#info.
    fn account_features(&self) -> &'static [&'static str] {
        &[]
    }

    /// Identities it adds to every account's disco#info, as (category,
    /// type): an account that is also a service (XEP-0163's `pubsub/pep`).
    fn account_identities(&self) -> &'static [(&'static str, &'static str)] {
        &[]
    }

    /// An iq `get` or `set` to the server or to an account.
    fn iq(&mut self, _cx: &mut Context<'_>, _to: Addressed<'_>, _iq: &Element) -> Flow {
        Flow::Pass
    }

    /// A session event; every module hears every event.
    fn event(&mut self, _cx: &mut Context<'_>, _event: Event<'_>) {}

    /// A message from session `conn` of `account`, before it is routed:
    /// a module may change it (XEP-0280 strips `<private/>`) or archive it
    /// (XEP-0313, which runs last and records the id it gave).
    fn sending(
        &mut self,
        _cx: &mut Context<'_>,
        _account: &str,
        _conn: ConnId,
        _message: &mut Outgoing<'_>,
    ) {
    }

    /// A message or other stanza accepted for `account`, before it goes
    /// to its sessions or to offline storage (not again when a message of
    /// an ended session is redelivered): a module may change it (XEP-0313
    /// archives it and adds its stanza-id).
    fn accepting(&mut self, _cx: &mut Context<'_>, _account: &str, _stanza: &mut Element) {}

    /// The same message, archived (`archive_id`, when the archive kept
    /// it) and about to be routed. The hub handles one stanza at a time,
    /// so a module may carry what it saw in [`Module::sending`] to here.
    fn sent(
        &mut self,
        _cx: &mut Context<'_>,
        _account: &str,
        _conn: ConnId,
        _message: &Element,
        _archive_id: Option<crate::archive::ArchiveId>,
    ) {
    }

    /// A stanza for `account`, archived if it is a message, about to be
    /// delivered to the sessions `to`.
    fn delivering(
        &mut self,
        _cx: &mut Context<'_>,
        _account: &str,
        _stanza: &Element,
        _to: &[ConnId],
    ) {
    }

    /// A message or presence for a service domain this module hosts, or a
    /// JID under it (a room, a node, a user of a gateway): the stanza's
    /// `to` says which. [`Flow::Pass`]: a message is answered
    /// `service-unavailable`, presence is dropped. (Its iqs come to
    /// [`Module::iq`] as [`Addressed::Service`].)
    fn service_stanza(&mut self, _cx: &mut Context<'_>, _domain: &str, _stanza: &Element) -> Flow {
        Flow::Pass
    }

    /// An iq `result` or `error` addressed to the server: the reply to a
    /// request a module sent from it. [`Flow::Handled`]: it was this
    /// module's.
    fn server_reply(&mut self, _cx: &mut Context<'_>, _reply: &Element) -> Flow {
        Flow::Pass
    }

    /// A notice this module sent from another partition (or this one) with
    /// [`Context::forward`]: about `account` (loaded first) or, when
    /// `None`, about the partition's domain.
    fn notice(&mut self, _cx: &mut Context<'_>, _account: Option<&str>, _body: &Element) {}

    /// A message for `account` that no session takes (none is available,
    /// RFC 6121 §8.5.2.1.1); `redelivered` when it was accepted once
    /// already (a session ended before its client had it). What no module
    /// takes ([`Flow::Pass`]) is answered `service-unavailable`. XEP-0160
    /// keeps it.
    fn unavailable(
        &mut self,
        _cx: &mut Context<'_>,
        _account: &str,
        _message: &mut Element,
        _redelivered: bool,
    ) -> Flow {
        Flow::Pass
    }

    /// The client on session `conn` has everything up to the last
    /// [`Context::page_sent`] mark (acknowledged with XEP-0198, or
    /// written to its socket): the next page may follow.
    fn page_delivered(&mut self, _cx: &mut Context<'_>, _account: &str, _conn: ConnId) {}

    /// When this module next wants [`Module::timeout`], if ever: the hub
    /// started at `started` and is partition `partition` of the server
    /// (work done once per server, on a shared store, runs in partition
    /// 0).
    fn poll_timeout(
        &self,
        _started: crate::time::Millis,
        _partition: usize,
    ) -> Option<crate::time::Millis> {
        None
    }

    /// Time reached [`Module::poll_timeout`].
    fn timeout(&mut self, _cx: &mut Context<'_>) {}

    /// The answer to a storage request this module made with
    /// [`Context::request`].
    fn storage_answer(&mut self, _cx: &mut Context<'_>, _id: RequestId, _result: StorageResult) {}
}
