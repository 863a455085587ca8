//! Static s2s routes: a remote domain reached at a fixed host and port
//! instead of through DNS (tests, containers, private networks).
//!
//! Both `s2s_routes` in the configuration and the `VIREO_S2S_OVERRIDES`
//! environment variable (`"b.localhost=127.0.0.1:35289,c.localhost=[::1]:5269"`)
//! end up as one [`S2sOverrides`]; a route wins over DNS for its domain.

use std::collections::BTreeMap;
use std::fmt;
use std::net::{IpAddr, SocketAddr};

/// At most this many routes in one variable or table: a static map, not a
/// zone file.
pub const MAX_ROUTES: usize = 1024;

/// Longest domain name (RFC 1035 §2.3.4, without the trailing dot).
const MAX_NAME: usize = 253;

/// Where a route points: an address, or a host name still to look up
/// (A/AAAA only, no SRV).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RouteHost {
    /// Connect to this address.
    Ip(IpAddr),
    /// Look this name up.
    Name(String),
}

impl fmt::Display for RouteHost {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RouteHost::Ip(IpAddr::V6(ip)) => write!(f, "[{ip}]"),
            RouteHost::Ip(ip) => write!(f, "{ip}"),
            RouteHost::Name(n) => f.write_str(n),
        }
    }
}

/// The fixed destination of one remote domain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteTarget {
    /// Address or name.
    pub host: RouteHost,
    /// TCP port (STARTTLS; direct TLS is only learned from SRV).
    pub port: u16,
}

impl fmt::Display for RouteTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.host, self.port)
    }
}

impl RouteTarget {
    /// The socket address, when the host is already one.
    pub fn socket_addr(&self) -> Option<SocketAddr> {
        match self.host {
            RouteHost::Ip(ip) => Some(SocketAddr::new(ip, self.port)),
            RouteHost::Name(_) => None,
        }
    }
}

/// Why an override entry was refused; each names the entry as written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OverrideError {
    /// No `=` between domain and target.
    #[error("s2s override {entry:?}: expected DOMAIN=HOST:PORT")]
    MissingEquals { entry: String },
    /// The domain part is empty or not a domain name.
    #[error("s2s override {entry:?}: {domain:?} is not a domain name")]
    BadDomain { entry: String, domain: String },
    /// The target has no `:PORT`.
    #[error("s2s override {entry:?}: {target:?} has no :PORT")]
    MissingPort { entry: String, target: String },
    /// The port is not a number in 1..=65535.
    #[error("s2s override {entry:?}: port {port:?} is not a number from 1 to 65535")]
    BadPort { entry: String, port: String },
    /// The host is neither an address nor a host name.
    #[error("s2s override {entry:?}: {host:?} is neither an IP address nor a host name")]
    BadHost { entry: String, host: String },
    /// The same domain twice.
    #[error("s2s override {entry:?}: {domain} already has a route")]
    Duplicate { entry: String, domain: String },
    /// More than [`MAX_ROUTES`] entries.
    #[error("s2s overrides: more than {max} routes")]
    TooMany { max: usize },
}

/// Remote domain → fixed target, domains compared in lower case.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct S2sOverrides {
    routes: BTreeMap<String, RouteTarget>,
}

impl S2sOverrides {
    /// No routes.
    pub fn new() -> Self {
        Self::default()
    }

    /// Parse the `VIREO_S2S_OVERRIDES` format: comma-separated
    /// `DOMAIN=HOST:PORT` entries, blanks around entries ignored, an IPv6
    /// host in brackets (`[::1]:5269`).
    pub fn parse_env(value: &str) -> Result<Self, OverrideError> {
        let mut out = Self::new();
        for entry in value.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            let (domain, target) =
                entry
                    .split_once('=')
                    .ok_or_else(|| OverrideError::MissingEquals {
                        entry: entry.into(),
                    })?;
            let target = parse_target(entry, target.trim())?;
            out.insert_entry(entry, domain.trim(), target)?;
        }
        Ok(out)
    }

    /// Add a route for `domain` (the configuration table's entries).
    pub fn insert(&mut self, domain: &str, target: &str) -> Result<(), OverrideError> {
        let entry = format!("{domain}={target}");
        let target = parse_target(&entry, target.trim())?;
        self.insert_entry(&entry, domain.trim(), target)
    }

    fn insert_entry(
        &mut self,
        entry: &str,
        domain: &str,
        target: RouteTarget,
    ) -> Result<(), OverrideError> {
        let key = normalize_domain(domain).ok_or_else(|| OverrideError::BadDomain {
            entry: entry.into(),
            domain: domain.into(),
        })?;
        if self.routes.contains_key(&key) {
            return Err(OverrideError::Duplicate {
                entry: entry.into(),
                domain: key,
            });
        }
        if self.routes.len() >= MAX_ROUTES {
            return Err(OverrideError::TooMany { max: MAX_ROUTES });
        }
        self.routes.insert(key, target);
        Ok(())
    }

    /// The route for `domain`, if any.
    pub fn get(&self, domain: &str) -> Option<&RouteTarget> {
        normalize_domain(domain).and_then(|d| self.routes.get(&d))
    }

    /// Every route, by domain.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &RouteTarget)> {
        self.routes.iter().map(|(d, t)| (d.as_str(), t))
    }

    /// Number of routes.
    pub fn len(&self) -> usize {
        self.routes.len()
    }

    /// No routes at all.
    pub fn is_empty(&self) -> bool {
        self.routes.is_empty()
    }
}

/// Lower case, one trailing dot dropped; `None` unless a plausible host
/// name (letters, digits, `-`, `_`, non-ASCII for IDNs; dot-separated
/// labels of 1 to 63 bytes).
fn normalize_domain(domain: &str) -> Option<String> {
    let d = domain.strip_suffix('.').unwrap_or(domain).to_lowercase();
    let ok = !d.is_empty()
        && d.len() <= MAX_NAME
        && d.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .chars()
                    .all(|c| c.is_alphanumeric() || c == '-' || c == '_')
        });
    ok.then_some(d)
}

fn parse_target(entry: &str, target: &str) -> Result<RouteTarget, OverrideError> {
    let missing_port = || OverrideError::MissingPort {
        entry: entry.into(),
        target: target.into(),
    };
    let bad_host = |host: &str| OverrideError::BadHost {
        entry: entry.into(),
        host: host.into(),
    };
    let (host, port) = if let Some(rest) = target.strip_prefix('[') {
        let (v6, after) = rest.split_once(']').ok_or_else(|| bad_host(target))?;
        let port = after.strip_prefix(':').ok_or_else(missing_port)?;
        let ip: std::net::Ipv6Addr = v6.parse().map_err(|_| bad_host(v6))?;
        (RouteHost::Ip(IpAddr::V6(ip)), port)
    } else {
        let (host, port) = target.rsplit_once(':').ok_or_else(missing_port)?;
        if host.contains(':') {
            // An IPv6 address needs brackets to be told from its port.
            return Err(bad_host(host));
        }
        let host = match host.parse::<IpAddr>() {
            Ok(ip) => RouteHost::Ip(ip),
            Err(_) => RouteHost::Name(normalize_domain(host).ok_or_else(|| bad_host(host))?),
        };
        (host, port)
    };
    let port = port
        .parse::<u16>()
        .ok()
        .filter(|p| *p != 0)
        .ok_or_else(|| OverrideError::BadPort {
            entry: entry.into(),
            port: port.into(),
        })?;
    Ok(RouteTarget { host, port })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    #[test]
    fn the_documented_example_parses() {
        let o = S2sOverrides::parse_env("b.localhost=127.0.0.1:35289,c.localhost=127.0.0.1:35290")
            .expect("parses");
        assert_eq!(o.len(), 2);
        let b = o.get("b.localhost").expect("b");
        assert_eq!(
            b.socket_addr(),
            Some(SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 35289))
        );
        assert_eq!(o.get("C.Localhost.").map(|t| t.port), Some(35290));
        assert_eq!(o.get("d.localhost"), None);
    }

    #[test]
    fn names_brackets_blanks_and_empty_entries() {
        let o = S2sOverrides::parse_env(" a.example = [::1]:5269 ,, b.example=Prosody:5270 ,")
            .expect("parses");
        assert_eq!(
            o.get("a.example").and_then(RouteTarget::socket_addr),
            Some(SocketAddr::new(IpAddr::V6(Ipv6Addr::LOCALHOST), 5269))
        );
        let b = o.get("b.example").expect("b");
        assert_eq!(b.host, RouteHost::Name("prosody".into()));
        assert_eq!(b.to_string(), "prosody:5270");
        assert_eq!(
            o.get("a.example").map(|t| t.to_string()).as_deref(),
            Some("[::1]:5269")
        );
        assert!(S2sOverrides::parse_env("").expect("empty").is_empty());
    }

    #[test]
    fn each_error_names_the_bad_entry() {
        let cases: &[(&str, OverrideError)] = &[
            (
                "ok.example=1.2.3.4:1,b.localhost",
                OverrideError::MissingEquals {
                    entry: "b.localhost".into(),
                },
            ),
            (
                "=1.2.3.4:5269",
                OverrideError::BadDomain {
                    entry: "=1.2.3.4:5269".into(),
                    domain: "".into(),
                },
            ),
            (
                "a..b=1.2.3.4:5269",
                OverrideError::BadDomain {
                    entry: "a..b=1.2.3.4:5269".into(),
                    domain: "a..b".into(),
                },
            ),
            (
                "b.localhost=127.0.0.1",
                OverrideError::MissingPort {
                    entry: "b.localhost=127.0.0.1".into(),
                    target: "127.0.0.1".into(),
                },
            ),
            (
                "b.localhost=127.0.0.1:99999",
                OverrideError::BadPort {
                    entry: "b.localhost=127.0.0.1:99999".into(),
                    port: "99999".into(),
                },
            ),
            (
                "b.localhost=127.0.0.1:0",
                OverrideError::BadPort {
                    entry: "b.localhost=127.0.0.1:0".into(),
                    port: "0".into(),
                },
            ),
            (
                "b.localhost=::1:5269",
                OverrideError::BadHost {
                    entry: "b.localhost=::1:5269".into(),
                    host: "::1".into(),
                },
            ),
            (
                "b.localhost=[::g]:5269",
                OverrideError::BadHost {
                    entry: "b.localhost=[::g]:5269".into(),
                    host: "::g".into(),
                },
            ),
            (
                "b.localhost=bad host:5269",
                OverrideError::BadHost {
                    entry: "b.localhost=bad host:5269".into(),
                    host: "bad host".into(),
                },
            ),
            (
                "b.localhost=1.2.3.4:1,B.localhost=1.2.3.4:2",
                OverrideError::Duplicate {
                    entry: "B.localhost=1.2.3.4:2".into(),
                    domain: "b.localhost".into(),
                },
            ),
        ];
        for (input, want) in cases {
            let got = S2sOverrides::parse_env(input);
            assert_eq!(got.as_ref().err(), Some(want), "{input}");
            let text = want.to_string();
            if let OverrideError::TooMany { .. } = want {
                continue;
            }
            assert!(text.contains('"'), "{text} quotes the entry");
        }
    }

    #[test]
    fn the_route_budget_is_enforced_at_the_limit() {
        let list = |n: usize| {
            (0..n)
                .map(|i| format!("d{i}.example=127.0.0.1:{}", 1000 + i))
                .collect::<Vec<_>>()
                .join(",")
        };
        let full = S2sOverrides::parse_env(&list(MAX_ROUTES)).expect("at the limit");
        assert_eq!(full.len(), MAX_ROUTES);
        assert_eq!(
            S2sOverrides::parse_env(&list(MAX_ROUTES + 1)),
            Err(OverrideError::TooMany { max: MAX_ROUTES })
        );
    }

    #[test]
    fn a_name_at_the_length_limit_is_accepted_and_one_longer_refused() {
        let label = "a".repeat(63);
        let at_limit = format!("{label}.{label}.{label}.{}", "b".repeat(61));
        assert_eq!(at_limit.len(), MAX_NAME);
        let mut o = S2sOverrides::new();
        o.insert(&at_limit, "127.0.0.1:5269").expect("253 bytes");
        let over = format!("{at_limit}c");
        assert!(matches!(
            o.insert(&over, "127.0.0.1:5269"),
            Err(OverrideError::BadDomain { .. })
        ));
        let long_label = format!("{}.example", "a".repeat(64));
        assert!(matches!(
            o.insert(&long_label, "127.0.0.1:5269"),
            Err(OverrideError::BadDomain { .. })
        ));
    }
}
