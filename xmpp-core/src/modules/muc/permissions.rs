//! XEP-0045 §5: roles, affiliations and who may change whose, as pure
//! functions of the actor's and the target's standing, so that the
//! permission table is checked on its own (a property test transcribes
//! §5's tables independently and compares every case).
//!
//! Refusals follow §8 and §9: an actor without the privilege at all is
//! `forbidden`; one who has it but aims at a protected target (an admin or
//! owner, or someone at or above the actor) is `not-allowed`.

use crate::stanza::StanzaError;

/// An occupant's role in the room (§5.1), lowest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    /// Not in the room.
    None,
    /// Present, without voice in a moderated room.
    Visitor,
    /// Present, with voice.
    Participant,
    /// Manages other occupants' roles.
    Moderator,
}

impl Role {
    /// Every role.
    pub const ALL: [Role; 4] = [
        Role::None,
        Role::Visitor,
        Role::Participant,
        Role::Moderator,
    ];

    /// Its protocol name.
    pub fn name(self) -> &'static str {
        match self {
            Role::None => "none",
            Role::Visitor => "visitor",
            Role::Participant => "participant",
            Role::Moderator => "moderator",
        }
    }

    /// From its protocol name.
    pub fn parse(s: &str) -> Option<Self> {
        Role::ALL.into_iter().find(|r| r.name() == s)
    }
}

/// A user's long-lived affiliation with the room (§5.2), lowest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Affiliation {
    /// Banned.
    Outcast,
    /// No affiliation.
    None,
    /// On the member list.
    Member,
    /// An administrator.
    Admin,
    /// An owner.
    Owner,
}

impl Affiliation {
    /// Every affiliation.
    pub const ALL: [Affiliation; 5] = [
        Affiliation::Outcast,
        Affiliation::None,
        Affiliation::Member,
        Affiliation::Admin,
        Affiliation::Owner,
    ];

    /// Its protocol name.
    pub fn name(self) -> &'static str {
        match self {
            Affiliation::Outcast => "outcast",
            Affiliation::None => "none",
            Affiliation::Member => "member",
            Affiliation::Admin => "admin",
            Affiliation::Owner => "owner",
        }
    }

    /// From its protocol name.
    pub fn parse(s: &str) -> Option<Self> {
        Affiliation::ALL.into_iter().find(|a| a.name() == s)
    }

    /// Admin or owner: automatically a moderator, protected from kicks.
    pub fn is_admin(self) -> bool {
        self >= Affiliation::Admin
    }
}

/// The role a user with `aff` gets on entering (§5.2.1's note): admins
/// and owners moderate, members participate, others participate only in
/// unmoderated rooms.
pub fn default_role(aff: Affiliation, moderated: bool) -> Role {
    match aff {
        Affiliation::Owner | Affiliation::Admin => Role::Moderator,
        Affiliation::Member => Role::Participant,
        Affiliation::None if !moderated => Role::Participant,
        Affiliation::None => Role::Visitor,
        Affiliation::Outcast => Role::None,
    }
}

/// Whether `aff` may enter (§5.2.1: outcasts never, members-only rooms
/// only members and above); the refusal as §7.2.5/§7.2.6 words it.
pub fn may_enter(aff: Affiliation, members_only: bool) -> Result<(), StanzaError> {
    match aff {
        Affiliation::Outcast => Err(StanzaError::Forbidden),
        Affiliation::None if members_only => Err(StanzaError::RegistrationRequired),
        _ => Ok(()),
    }
}

/// Whether an occupant with `role` may send a message to all (§5.1.1).
pub fn may_speak(role: Role) -> bool {
    role >= Role::Participant
}

/// Whether an occupant with `role` may change the subject (§5.1.1:
/// participants only when the room's configuration lets them).
pub fn may_set_subject(role: Role, participants_may: bool) -> bool {
    role == Role::Moderator || (role == Role::Participant && participants_may)
}

/// Whether an actor (`role`, `aff`) may change the role of an occupant
/// (`target_role`, `target_aff`) to `new` (§5.1.3, §8.2–8.5, §9.6–9.7).
pub fn may_set_role(
    role: Role,
    aff: Affiliation,
    target_role: Role,
    target_aff: Affiliation,
    new: Role,
) -> Result<(), StanzaError> {
    if target_role == Role::None {
        // Roles belong to occupants (§5.1): nobody to change.
        return Err(StanzaError::ItemNotFound);
    }
    if new == target_role {
        return if role == Role::Moderator {
            Ok(())
        } else {
            Err(StanzaError::Forbidden)
        };
    }
    // Granting or revoking moderator privileges is for admins and owners
    // (§5.1.3), and revoking them never against another admin or owner
    // nor one at or above the actor (§5.1.3 *, §5.2.1 **).
    if new == Role::Moderator || target_role == Role::Moderator {
        if !aff.is_admin() {
            return Err(StanzaError::Forbidden);
        }
        if target_role == Role::Moderator && (target_aff.is_admin() || target_aff >= aff) {
            return Err(StanzaError::NotAllowed);
        }
        return Ok(());
    }
    // Kick, grant and revoke voice are the moderators' (§5.1.1); kicking
    // or silencing an admin or owner is not allowed (*** and §8.2).
    if role != Role::Moderator {
        return Err(StanzaError::Forbidden);
    }
    if matches!(new, Role::None | Role::Visitor) && target_aff.is_admin() {
        return Err(StanzaError::NotAllowed);
    }
    Ok(())
}

/// Whether an actor with `aff` may change a user's affiliation from
/// `target` to `new` (§5.2.2's state chart): owners change anything;
/// admins move users among outcast, none and member only.
pub fn may_set_affiliation(
    aff: Affiliation,
    target: Affiliation,
    new: Affiliation,
) -> Result<(), StanzaError> {
    match aff {
        Affiliation::Owner => Ok(()),
        Affiliation::Admin => {
            if new.is_admin() {
                Err(StanzaError::Forbidden)
            } else if target.is_admin() {
                Err(StanzaError::NotAllowed)
            } else {
                Ok(())
            }
        }
        _ => Err(StanzaError::Forbidden),
    }
}

/// Whether `aff` may read the list of users with `list` (§9.5, §10.5,
/// §10.8): admins read the member and outcast lists and the admin and
/// owner lists too (which are theirs to see, not to edit); members read
/// the member list.
pub fn may_read_list(aff: Affiliation, list: Affiliation) -> bool {
    match list {
        Affiliation::Member => aff >= Affiliation::Member,
        _ => aff.is_admin(),
    }
}

/// Whether `aff` may change the room's configuration or destroy it
/// (§5.2.1).
pub fn may_own(aff: Affiliation) -> bool {
    aff == Affiliation::Owner
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for r in Role::ALL {
            assert_eq!(Role::parse(r.name()), Some(r));
        }
        for a in Affiliation::ALL {
            assert_eq!(Affiliation::parse(a.name()), Some(a));
        }
        assert_eq!(Role::parse("king"), None);
    }

    #[test]
    fn moderators_kick_but_not_admins() {
        use Affiliation as A;
        use Role as R;
        assert_eq!(
            may_set_role(R::Moderator, A::None, R::Participant, A::Member, R::None),
            Ok(())
        );
        assert_eq!(
            may_set_role(R::Moderator, A::Owner, R::Moderator, A::Admin, R::None),
            Err(StanzaError::NotAllowed)
        );
        assert_eq!(
            may_set_role(
                R::Participant,
                A::Member,
                R::Visitor,
                A::None,
                R::Participant
            ),
            Err(StanzaError::Forbidden)
        );
        assert_eq!(
            may_set_affiliation(A::Admin, A::Owner, A::Outcast),
            Err(StanzaError::NotAllowed)
        );
    }
}
