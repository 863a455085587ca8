//! The service's settings: who may create rooms, a new room's defaults
//! and the budgets every input is held to (Prosody's mod_muc names where
//! it has them: `restrict_room_creation`, `max_history_messages`,
//! `muc_room_default_*`).

use super::config::RoomConfig;

/// Who may create rooms (Prosody's `restrict_room_creation`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CreatePolicy {
    /// Anyone who can reach the service.
    Anyone,
    /// Users of a hosted domain (Prosody's `"local"`).
    Local,
    /// The server's administrators (Prosody's `true`).
    Admins,
}

impl CreatePolicy {
    /// From its configuration name (`anyone`, `local`, `admins`).
    pub fn parse(name: &str) -> Option<Self> {
        Some(match name {
            "anyone" => CreatePolicy::Anyone,
            "local" => CreatePolicy::Local,
            "admins" => CreatePolicy::Admins,
            _ => return None,
        })
    }
}

/// The service's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// Hosted domains: the service answers at `conference.<domain>`.
    pub domains: Vec<String>,
    /// Bare JIDs of the administrators: they own every room.
    pub admins: Vec<String>,
    /// Who may create rooms.
    pub create: CreatePolicy,
    /// The configuration of a new room.
    pub defaults: RoomConfig,
    /// A new room is locked until its owner configures it (§10.1.1);
    /// otherwise it is an instant room at once (Prosody's
    /// `muc_room_locking`).
    pub lock_new_rooms: bool,
    /// How long a destroyed persistent room's name stays taken, answering
    /// `gone` with its alternate venue (Prosody's `muc_tombstones` and
    /// `muc_tombstone_expiry`); `None`: the name is free at once.
    pub tombstone_ms: Option<u64>,
    /// Every room is archived whatever its configuration says (Prosody's
    /// `muc_log_all_rooms`): a service whose operator promises logs.
    pub log_all_rooms: bool,
    /// Most history messages a room keeps and sends on join.
    pub max_history_messages: usize,
    /// Most bytes of history a room keeps.
    pub history_bytes_max: usize,
    /// Most rooms one partition of the server keeps.
    pub rooms_max: usize,
    /// Most rooms one user may have created.
    pub rooms_per_creator_max: usize,
    /// Most occupants of one room, whatever its configuration says.
    pub occupants_max: usize,
    /// Longest room nickname, in bytes.
    pub nick_bytes_max: usize,
    /// Longest subject, in bytes.
    pub subject_bytes_max: usize,
    /// Most voice requests waiting in one room (§7.13).
    pub voice_requests_max: usize,
    /// Most affiliations (members, admins, owners, outcasts) of one room.
    pub affiliations_max: usize,
    /// Most iqs relayed between occupants of one room awaiting their
    /// answer; beyond it `resource-constraint`.
    pub relayed_iqs_max: usize,
    /// How long a relayed iq waits for its answer before the room answers
    /// the requester `recipient-unavailable` ([`super::relay`]).
    pub relayed_iq_timeout_ms: u64,
    /// Most rooms one page of the service's disco#items lists (XEP-0059
    /// pages beyond it; ejabberd's `max_rooms_discoitems`).
    pub listing_page_max: usize,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            domains: vec!["localhost".into()],
            admins: Vec::new(),
            create: CreatePolicy::Local,
            defaults: RoomConfig::default(),
            lock_new_rooms: true,
            tombstone_ms: Some(31 * 24 * 3_600_000),
            log_all_rooms: false,
            max_history_messages: 20,
            history_bytes_max: 256 * 1024,
            rooms_max: 10_000,
            rooms_per_creator_max: 100,
            occupants_max: 5_000,
            nick_bytes_max: 128,
            subject_bytes_max: 1024,
            voice_requests_max: 32,
            affiliations_max: 10_000,
            relayed_iqs_max: 1_024,
            relayed_iq_timeout_ms: 60_000,
            listing_page_max: 100,
        }
    }
}

impl Settings {
    /// The service domain of each hosted domain.
    pub fn service_domains(&self) -> Vec<String> {
        self.domains
            .iter()
            .map(|d| format!("conference.{d}"))
            .collect()
    }

    /// Whether `domain` is one of the service's.
    pub fn serves(&self, domain: &str) -> bool {
        domain
            .strip_prefix("conference.")
            .is_some_and(|d| self.domains.iter().any(|h| h == d))
    }

    /// Whether `bare` is an administrator.
    pub fn is_admin(&self, bare: &str) -> bool {
        self.admins.iter().any(|a| a == bare)
    }

    /// Whether `bare` is a user of a hosted domain.
    pub fn is_local(&self, bare: &str) -> bool {
        bare.split_once('@')
            .is_some_and(|(_, d)| self.domains.iter().any(|h| h == d))
    }

    /// Whether `bare` may create rooms.
    pub fn may_create(&self, bare: &str) -> bool {
        match self.create {
            CreatePolicy::Anyone => true,
            CreatePolicy::Local => self.is_local(bare) || self.is_admin(bare),
            CreatePolicy::Admins => self.is_admin(bare),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn creation_follows_the_policy() {
        let mut s = Settings {
            admins: vec!["root@localhost".into()],
            ..Settings::default()
        };
        assert!(s.may_create("alice@localhost"));
        assert!(!s.may_create("eve@elsewhere.example"));
        s.create = CreatePolicy::Admins;
        assert!(!s.may_create("alice@localhost"));
        assert!(s.may_create("root@localhost"));
        s.create = CreatePolicy::Anyone;
        assert!(s.may_create("eve@elsewhere.example"));
        assert!(s.serves("conference.localhost"));
        assert!(!s.serves("conference.example.org"));
    }
}
