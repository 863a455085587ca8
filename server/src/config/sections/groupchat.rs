//! The XEP-0045 multi-user chat service at `conference.<domain>`: who may
//! create rooms, a new room's defaults and the service's budgets, with
//! Prosody's mod_muc names (`restrict_room_creation`,
//! `max_history_messages`, `muc_room_default_*`). The server's `admins`
//! own every room.

use super::Section;
use crate::config::schema::{key, Home, KeySpec, Ty};
use crate::config::Config;
use crate::modules::Layer;
use xmpp_core::modules::muc::config::RoomConfig;
use xmpp_core::modules::muc::settings::{CreatePolicy, Settings};
use xmpp_core::modules::muc::{self, Muc};
use xmpp_core::modules::ModuleSet;

const GROUPCHAT: Home = Home::Layer(Layer::Services, "groupchat");

#[rustfmt::skip]
const KEYS: &[KeySpec] = &[
    key("services.restrict_room_creation", "restrict_room_creation", GROUPCHAT, Ty::Choice(&["anyone", "local", "admins"]), "\"local\"", &["XEP-0045 §10.1"],
        "Who may create rooms on conference.<domain> by entering them: anyone who reaches the service, users of a hosted domain (`local`), or the server's `admins` (Prosody's `true`). Others entering a room that does not exist get not-allowed."),
    key("services.muc_room_locking", "muc_room_locking", GROUPCHAT, Ty::Bool, "true", &["XEP-0045 §10.1"],
        "A new room is locked (others get item-not-found) until its creator configures it, with an empty form for an instant room; off: every new room is an instant room at once (Prosody's name)."),
    key("services.muc_tombstones", "muc_tombstones", GROUPCHAT, Ty::Bool, "true", &["XEP-0045 §10.9"],
        "A destroyed persistent room leaves a tombstone: entering it gets gone (with the alternate venue) until muc_tombstone_expiry has passed, so nobody takes over its name at once (Prosody's name)."),
    key("services.muc_tombstone_expiry", "muc_tombstone_expiry", GROUPCHAT, Ty::Int { min: 1, max: 315_360_000 }, "2678400", &["XEP-0045 §10.9"],
        "Seconds a tombstone stands (31 days by default, Prosody's)."),
    key("services.max_history_messages", "max_history_messages", GROUPCHAT, Ty::Int { min: 0, max: 1000 }, "20", &["XEP-0045 §7.2.15"],
        "Messages of discussion history a room keeps and sends an entering occupant (who may ask for fewer with maxstanzas, maxchars, seconds or since)."),
    key("services.muc_log_all_rooms", "muc_log_all_rooms", GROUPCHAT, Ty::Bool, "false", &["XEP-0313", "XEP-0045 §10.2"],
        "Archive every room (XEP-0313 on the room JID), temporary ones too, whatever its configuration says (Prosody's mod_muc_mam name). Off: a room is archived when its owner enables logging, which a persistent room has by default."),
    key("services.muc_max_history_bytes", "muc_max_history_bytes", GROUPCHAT, Ty::Int { min: 0, max: 16_777_216 }, "262144", &["XEP-0045 §7.2.15"],
        "Bytes of discussion history one room keeps; the oldest messages go first."),
    key("services.muc_room_default_public", "muc_room_default_public", GROUPCHAT, Ty::Bool, "true", &["XEP-0045 §10.2"],
        "A new room is listed in the service's disco#items (muc#roomconfig_publicroom)."),
    key("services.muc_room_default_persistent", "muc_room_default_persistent", GROUPCHAT, Ty::Bool, "false", &["XEP-0045 §10.2"],
        "A new room stays when its last occupant leaves (muc#roomconfig_persistentroom)."),
    key("services.muc_room_default_members_only", "muc_room_default_members_only", GROUPCHAT, Ty::Bool, "false", &["XEP-0045 §10.2"],
        "A new room admits members only (muc#roomconfig_membersonly)."),
    key("services.muc_room_default_moderated", "muc_room_default_moderated", GROUPCHAT, Ty::Bool, "false", &["XEP-0045 §10.2"],
        "In a new room, occupants without affiliation enter as visitors (muc#roomconfig_moderatedroom)."),
    key("services.muc_room_default_public_jids", "muc_room_default_public_jids", GROUPCHAT, Ty::Bool, "false", &["XEP-0045 §10.2"],
        "A new room shows real JIDs to every occupant, not only to moderators (muc#roomconfig_whois = anyone)."),
    key("services.muc_room_default_change_subject", "muc_room_default_change_subject", GROUPCHAT, Ty::Bool, "false", &["XEP-0045 §10.2"],
        "In a new room, participants may change the subject (muc#roomconfig_changesubject); moderators always may."),
    key("services.muc_room_default_allow_invites", "muc_room_default_allow_invites", GROUPCHAT, Ty::Bool, "false", &["XEP-0045 §7.8"],
        "In a new room, visitors and, in members-only rooms, participants may invite others (muc#roomconfig_allowinvites); moderators always may."),
    key("services.muc_room_default_max_occupants", "muc_room_default_max_occupants", GROUPCHAT, Ty::Int { min: 1, max: 100_000 }, "200", &["XEP-0045 §10.2"],
        "A new room's muc#roomconfig_maxusers (at most muc_max_occupants); admins and owners always enter."),
    key("services.muc_max_occupants", "muc_max_occupants", GROUPCHAT, Ty::Int { min: 1, max: 100_000 }, "5000", &["XEP-0045 §7.2.11"],
        "Most occupants of one room whatever its configuration says; one more gets service-unavailable."),
    key("services.muc_max_rooms", "muc_max_rooms", GROUPCHAT, Ty::Int { min: 1, max: 10_000_000 }, "10000", &["XEP-0045 §10.1"],
        "Most rooms one hub partition holds; creating one more is refused with resource-constraint."),
    key("services.muc_max_rooms_per_user", "muc_max_rooms_per_user", GROUPCHAT, Ty::Int { min: 1, max: 1_000_000 }, "100", &["XEP-0045 §10.1"],
        "Most rooms one user may have created (per hub partition); one more is refused with resource-constraint."),
    key("services.muc_max_nick_bytes", "muc_max_nick_bytes", GROUPCHAT, Ty::Int { min: 1, max: 1023 }, "128", &["XEP-0045 §7.2"],
        "Longest room nickname in bytes; a longer one is refused with not-acceptable."),
    key("services.muc_max_subject_bytes", "muc_max_subject_bytes", GROUPCHAT, Ty::Int { min: 1, max: 65_536 }, "1024", &["XEP-0045 §8.1"],
        "Longest room subject in bytes; a longer one is refused with not-acceptable."),
    key("services.muc_max_voice_requests", "muc_max_voice_requests", GROUPCHAT, Ty::Int { min: 1, max: 10_000 }, "32", &["XEP-0045 §7.13"],
        "Voice requests waiting in one room; one more is refused with resource-constraint."),
    key("services.muc_max_affiliations", "muc_max_affiliations", GROUPCHAT, Ty::Int { min: 1, max: 1_000_000 }, "10000", &["XEP-0045 §9"],
        "Most affiliated users (members, admins, owners, outcasts) of one room; one more is refused with resource-constraint."),
    key("services.muc_relayed_iq_timeout", "muc_relayed_iq_timeout", GROUPCHAT, Ty::Int { min: 1, max: 3600 }, "60", &["XEP-0045 §7.5", "RFC 6120 §8.3.3.13"],
        "Seconds an iq relayed to an occupant (a version or disco query to room/nick) waits for its answer; then the room answers the asker recipient-unavailable (type wait), as it does at once when the occupant's session leaves."),
    key("services.muc_max_rooms_discoitems", "muc_max_rooms_discoitems", GROUPCHAT, Ty::Int { min: 1, max: 10_000 }, "100", &["XEP-0045 §6.3", "XEP-0059"],
        "Most rooms one page of the service's room listing (disco#items) holds: a client pages through the rest with XEP-0059 result set management; one that does not gets the first page (ejabberd's max_rooms_discoitems)."),
];

pub const SECTION: Section = Section {
    module: muc::ID,
    keys: KEYS,
    configure,
};

/// The fallbacks are never taken: every key has a schema default.
fn configure(cfg: &Config, set: &mut ModuleSet) {
    let d = Settings::default();
    let int = |k: &str, fallback: usize| cfg.int(k).unwrap_or(fallback);
    let occupants_max = int("services.muc_max_occupants", d.occupants_max);
    let log_all_rooms = cfg.flag("services.muc_log_all_rooms");
    let persistent = cfg.flag("services.muc_room_default_persistent");
    let defaults = RoomConfig {
        // Archived by default when persistent (issue 12), always when the
        // operator says so.
        logging: persistent || log_all_rooms,
        public: cfg.flag("services.muc_room_default_public"),
        persistent,
        members_only: cfg.flag("services.muc_room_default_members_only"),
        moderated: cfg.flag("services.muc_room_default_moderated"),
        whois_anyone: cfg.flag("services.muc_room_default_public_jids"),
        change_subject: cfg.flag("services.muc_room_default_change_subject"),
        allow_invites: cfg.flag("services.muc_room_default_allow_invites"),
        max_users: int(
            "services.muc_room_default_max_occupants",
            d.defaults.max_users,
        )
        .min(occupants_max),
        ..RoomConfig::default()
    };
    set.configure(Muc::new(Settings {
        // A domain whose file switches the module off has no service.
        domains: cfg
            .domains
            .iter()
            .filter(|d| cfg.vhost(d).is_none_or(|v| v.modules.contains_key("muc")))
            .cloned()
            .collect(),
        admins: cfg.admins.clone(),
        create: cfg
            .text("services.restrict_room_creation")
            .as_deref()
            .and_then(CreatePolicy::parse)
            .unwrap_or(d.create),
        defaults,
        lock_new_rooms: cfg.flag("services.muc_room_locking"),
        tombstone_ms: cfg.flag("services.muc_tombstones").then(|| {
            cfg.int::<u64>("services.muc_tombstone_expiry")
                .unwrap_or(2_678_400)
                .saturating_mul(1000)
        }),
        log_all_rooms,
        max_history_messages: int("services.max_history_messages", d.max_history_messages),
        history_bytes_max: int("services.muc_max_history_bytes", d.history_bytes_max),
        rooms_max: int("services.muc_max_rooms", d.rooms_max),
        rooms_per_creator_max: int("services.muc_max_rooms_per_user", d.rooms_per_creator_max),
        occupants_max,
        nick_bytes_max: int("services.muc_max_nick_bytes", d.nick_bytes_max),
        subject_bytes_max: int("services.muc_max_subject_bytes", d.subject_bytes_max),
        voice_requests_max: int("services.muc_max_voice_requests", d.voice_requests_max),
        affiliations_max: int("services.muc_max_affiliations", d.affiliations_max),
        relayed_iqs_max: d.relayed_iqs_max,
        listing_page_max: int("services.muc_max_rooms_discoitems", d.listing_page_max),
        relayed_iq_timeout_ms: cfg
            .int::<u64>("services.muc_relayed_iq_timeout")
            .map_or(d.relayed_iq_timeout_ms, |s| s.saturating_mul(1000)),
    }));
}
