//! Which addresses count as one client.

use std::net::{IpAddr, Ipv6Addr};

/// The key per-address limits use for `ip`: an IPv4 address (also when
/// written IPv4-mapped) as it is, an IPv6 address by its /64 prefix. One
/// IPv6 host usually owns a whole /64 (SLAAC, privacy addresses), so keying
/// by full address would give it 2^64 fresh identities.
pub fn address_key(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V4(v4) => IpAddr::V4(v4),
        IpAddr::V6(v6) => {
            let s = v6.segments();
            IpAddr::V6(Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap_or(IpAddr::from([0, 0, 0, 0]))
    }

    #[test]
    fn ipv6_by_slash_64_ipv4_by_address() {
        assert_eq!(
            address_key(ip("2001:db8:1:2:aaaa::1")),
            address_key(ip("2001:db8:1:2:ffff:1:2:3"))
        );
        assert_eq!(address_key(ip("2001:db8:1:2::5")), ip("2001:db8:1:2::"));
        assert_ne!(
            address_key(ip("2001:db8:1:2::1")),
            address_key(ip("2001:db8:1:3::1"))
        );
        assert_eq!(address_key(ip("192.0.2.7")), ip("192.0.2.7"));
        assert_ne!(address_key(ip("192.0.2.7")), address_key(ip("192.0.2.8")));
        assert_eq!(address_key(ip("::ffff:192.0.2.7")), ip("192.0.2.7"));
    }
}
