//! Authorization identity policy shared by SCRAM and PLAIN.

use super::SaslFailure;

/// Vireo does not let one account act as another (RFC 6120 §6.3.8), so an
/// authzid is only accepted when it names the authenticating user: either the
/// bare username itself or a bare JID `username@domain`. The domain part is
/// returned so the caller can check it is a domain it serves.
pub(crate) fn check_authzid<'a>(
    authzid: Option<&'a str>,
    username: &str,
) -> Result<Option<&'a str>, SaslFailure> {
    let Some(a) = authzid else {
        return Ok(None);
    };
    if a == username {
        return Ok(None);
    }
    match a.split_once('@') {
        Some((local, domain))
            if local == username && !domain.is_empty() && !domain.contains(['@', '/']) =>
        {
            Ok(Some(domain))
        }
        _ => Err(SaslFailure::InvalidAuthzid),
    }
}

/// The domain of a bare-JID authzid, if it has one (see [`check_authzid`]).
pub(crate) fn authzid_domain(authzid: Option<&str>) -> Option<&str> {
    authzid
        .and_then(|a| a.split_once('@'))
        .map(|(_, domain)| domain)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policy() {
        assert_eq!(check_authzid(None, "u"), Ok(None));
        assert_eq!(check_authzid(Some("u"), "u"), Ok(None));
        assert_eq!(check_authzid(Some("u@ex.org"), "u"), Ok(Some("ex.org")));
        for bad in ["v", "v@ex.org", "u@", "u@ex.org/res", "u@a@b", "@ex.org"] {
            assert_eq!(
                check_authzid(Some(bad), "u"),
                Err(SaslFailure::InvalidAuthzid),
                "{bad}"
            );
        }
        assert_eq!(authzid_domain(Some("u@ex.org")), Some("ex.org"));
        assert_eq!(authzid_domain(Some("u")), None);
    }
}
