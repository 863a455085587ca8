//! Limits per client address: how many unauthenticated connections one
//! address may hold and how fast it may open new ones, the TLS handshake
//! deadline, and the failure backoff for authentication. One host must not
//! be able to take every connection slot or guess passwords at full speed.

use ipnet::IpNet;
use std::net::IpAddr;
use std::time::Duration;
use xmpp_core::throttle::Backoff;

/// The loopback addresses, as networks of one: the default exemptions.
pub fn loopback() -> Vec<IpNet> {
    vec![
        IpNet::from(IpAddr::from([127, 0, 0, 1])),
        IpNet::from(IpAddr::from([0, 0, 0, 0, 0, 0, 0, 1])),
    ]
}

/// True when `ip` is in one of `list`'s networks (an IPv4 address written
/// as IPv6, `::ffff:a.b.c.d`, counts as the IPv4 one).
pub fn is_listed(list: &[IpNet], ip: IpAddr) -> bool {
    let ip = ip.to_canonical();
    list.iter().any(|net| net.contains(&ip))
}

/// The per-address limits and the authentication backoff.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddressLimits {
    /// Unauthenticated connections one address (an IPv6 /64) may hold; one
    /// more is closed at once (0 = no limit).
    pub max_unauthenticated: u32,
    /// New connections one address may open per second (0 = no limit).
    pub max_new_per_second: u32,
    /// A TLS handshake (direct TLS or after STARTTLS) must finish within this.
    pub tls_handshake_timeout: Duration,
    /// Addresses and networks the per-address limits (connections and the
    /// per-address authentication backoff) do not apply to: loopback by
    /// default, so local benchmarks and test suites can connect thousands
    /// of times.
    pub exempt: Vec<IpNet>,
    /// Most addresses (and, separately, accounts) remembered; the least
    /// recently seen are forgotten first.
    pub max_tracked: usize,
    /// Delay after failed authentication attempts, per address and per
    /// account.
    pub auth_backoff: Backoff,
}

impl Default for AddressLimits {
    fn default() -> Self {
        AddressLimits {
            max_unauthenticated: 20,
            max_new_per_second: 10,
            tls_handshake_timeout: Duration::from_secs(10),
            exempt: loopback(),
            max_tracked: 65_536,
            auth_backoff: Backoff {
                base_ms: 250,
                max_ms: 10_000,
                forget_ms: 900_000,
            },
        }
    }
}

impl AddressLimits {
    /// True when `ip` is on the exemption list.
    pub fn is_exempt(&self, ip: IpAddr) -> bool {
        is_listed(&self.exempt, ip)
    }

    /// One line for reload reports.
    pub fn describe(&self) -> String {
        let exempt: Vec<String> = self.exempt.iter().map(IpNet::to_string).collect();
        format!(
            "{} unauthenticated and {}/s new per address, TLS handshake {}s, \
             auth backoff {}..{} ms (forget {}s), {} tracked, exempt [{}]",
            self.max_unauthenticated,
            self.max_new_per_second,
            self.tls_handshake_timeout.as_secs(),
            self.auth_backoff.base_ms,
            self.auth_backoff.max_ms,
            self.auth_backoff.forget_ms / 1000,
            self.max_tracked,
            exempt.join(" ")
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn networks_and_single_addresses_are_exempt() {
        let limits = AddressLimits {
            exempt: vec![
                "10.0.0.0/8".parse().unwrap(),
                "2001:db8::/32".parse().unwrap(),
                IpNet::from(IpAddr::from([192, 0, 2, 7])),
            ],
            ..AddressLimits::default()
        };
        for yes in ["10.1.2.3", "2001:db8:1::5", "192.0.2.7", "::ffff:10.9.9.9"] {
            assert!(limits.is_exempt(yes.parse().unwrap()), "{yes}");
        }
        for no in ["11.0.0.1", "2001:db9::1", "192.0.2.8", "127.0.0.1"] {
            assert!(!limits.is_exempt(no.parse().unwrap()), "{no}");
        }
        assert!(AddressLimits::default().is_exempt("::1".parse().unwrap()));
    }
}
