//! XEP-0045 §5's permission tables, transcribed here from the XEP's text
//! independently of `xmpp_core::modules::muc::permissions`, and checked
//! against it for every actor (role × affiliation) × action × target.
//!
//! The tables (XEP-0045 1.35 §5.1.1, §5.1.3, §5.2.1, §5.2.2):
//! - Roles: sending to all needs participant or moderator; the subject
//!   is the moderators' (participants' when configured); kick, grant and
//!   revoke voice are the moderators'; a moderator MUST NOT revoke voice
//!   from an admin or owner (***), and may not kick one (§8.2).
//! - The role state chart: granting or revoking moderator privileges is
//!   for admins and owners; never revoking them from an occupant at or
//!   above the actor's affiliation (*), nor from another admin or owner
//!   (§5.2.1 **).
//! - Affiliations: outcasts never enter, members-only rooms admit members
//!   and above; the affiliation state chart gives admins the moves among
//!   outcast, none and member, and owners everything.
//! - Refusals (§8, §9): no privilege at all is `forbidden`; a protected
//!   target is `not-allowed`.

use proptest::prelude::*;
use xmpp_core::modules::muc::permissions::{
    default_role, may_enter, may_set_affiliation, may_set_role, may_set_subject, may_speak,
    Affiliation, Role,
};
use xmpp_core::stanza::StanzaError;

const ROLES: [&str; 4] = ["none", "visitor", "participant", "moderator"];
const AFFS: [&str; 5] = ["outcast", "none", "member", "admin", "owner"];

fn role(i: usize) -> Role {
    Role::parse(ROLES[i]).expect("role")
}

fn aff(i: usize) -> Affiliation {
    Affiliation::parse(AFFS[i]).expect("affiliation")
}

/// The affiliation hierarchy (§5.2: owner > admin > member > none >
/// outcast), by name.
fn rank(a: &str) -> usize {
    AFFS.iter().position(|x| *x == a).expect("affiliation")
}

fn admin_or_owner(a: &str) -> bool {
    a == "admin" || a == "owner"
}

/// What §5 says of an actor (`ar`, `aa`) changing the role of an
/// occupant (`tr`, `ta`) to `new`.
fn expected_role(ar: &str, aa: &str, tr: &str, ta: &str, new: &str) -> Result<(), &'static str> {
    if tr == "none" {
        return Err("item-not-found");
    }
    if tr == new {
        return if ar == "moderator" {
            Ok(())
        } else {
            Err("forbidden")
        };
    }
    if new == "moderator" || tr == "moderator" {
        if !admin_or_owner(aa) {
            return Err("forbidden");
        }
        if tr == "moderator" && (admin_or_owner(ta) || rank(ta) >= rank(aa)) {
            return Err("not-allowed");
        }
        return Ok(());
    }
    if ar != "moderator" {
        return Err("forbidden");
    }
    // Kicking (to none) or silencing (to visitor) an admin or owner.
    if (new == "none" || new == "visitor") && admin_or_owner(ta) {
        return Err("not-allowed");
    }
    Ok(())
}

/// The affiliation state chart: may `aa` move a user from `from` to
/// `to`?
fn expected_aff(aa: &str, from: &str, to: &str) -> Result<(), &'static str> {
    match aa {
        "owner" => Ok(()),
        "admin" => {
            // "Owner adds user to admin/owner list": not the admin's.
            if admin_or_owner(to) {
                Err("forbidden")
            // "Owner applies ban / changes affiliation" of admins, owners.
            } else if admin_or_owner(from) {
                Err("not-allowed")
            } else {
                Ok(())
            }
        }
        _ => Err("forbidden"),
    }
}

fn name(e: Result<(), StanzaError>) -> Result<(), &'static str> {
    e.map_err(StanzaError::name)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(4000))]

    #[test]
    fn role_changes_follow_section_5(
        ar in 0..4usize, aa in 0..5usize, tr in 0..4usize, ta in 0..5usize, new in 0..4usize,
    ) {
        prop_assert_eq!(
            name(may_set_role(role(ar), aff(aa), role(tr), aff(ta), role(new))),
            expected_role(ROLES[ar], AFFS[aa], ROLES[tr], AFFS[ta], ROLES[new]),
            "actor {}/{} target {}/{} to {}", ROLES[ar], AFFS[aa], ROLES[tr], AFFS[ta], ROLES[new]
        );
    }

    #[test]
    fn affiliation_changes_follow_section_5(aa in 0..5usize, from in 0..5usize, to in 0..5usize) {
        prop_assert_eq!(
            name(may_set_affiliation(aff(aa), aff(from), aff(to))),
            expected_aff(AFFS[aa], AFFS[from], AFFS[to])
        );
    }

    #[test]
    fn role_privileges_follow_section_5(r in 0..4usize, participants_may in any::<bool>()) {
        let speaks = matches!(ROLES[r], "participant" | "moderator");
        prop_assert_eq!(may_speak(role(r)), speaks);
        let subject = ROLES[r] == "moderator" || (ROLES[r] == "participant" && participants_may);
        prop_assert_eq!(may_set_subject(role(r), participants_may), subject);
    }

    #[test]
    fn entering_follows_section_5(a in 0..5usize, members_only in any::<bool>(), moderated in any::<bool>()) {
        let expected = match AFFS[a] {
            "outcast" => Err("forbidden"),
            "none" if members_only => Err("registration-required"),
            _ => Ok(()),
        };
        prop_assert_eq!(name(may_enter(aff(a), members_only)), expected);
        // §5.2.1 *: unaffiliated users visit moderated rooms, members
        // participate, admins and owners moderate.
        let entering = match AFFS[a] {
            "owner" | "admin" => "moderator",
            "member" => "participant",
            "none" if moderated => "visitor",
            "none" => "participant",
            _ => "none",
        };
        prop_assert_eq!(default_role(aff(a), moderated).name(), entering);
    }
}

/// Every case once, besides the random sampling.
#[test]
fn the_whole_table() {
    let r = |n: &str| Role::parse(n).expect("role");
    let a = |n: &str| Affiliation::parse(n).expect("affiliation");
    for ar in ROLES {
        for aa in AFFS {
            for tr in ROLES {
                for ta in AFFS {
                    for new in ROLES {
                        assert_eq!(
                            name(may_set_role(r(ar), a(aa), r(tr), a(ta), r(new))),
                            expected_role(ar, aa, tr, ta, new),
                            "actor {ar}/{aa} target {tr}/{ta} to {new}"
                        );
                    }
                }
            }
        }
    }
    for aa in AFFS {
        for from in AFFS {
            for to in AFFS {
                assert_eq!(
                    name(may_set_affiliation(a(aa), a(from), a(to))),
                    expected_aff(aa, from, to),
                    "{aa} moves {from} to {to}"
                );
            }
        }
    }
}
