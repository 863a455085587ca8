//! Where to connect for a remote domain (RFC 6120 §3.2, XEP-0368).
//!
//! In order: a static route ([`S2sOverrides`]) wins; a domain that is an IP
//! literal is that address on 5269; otherwise `_xmpps-server._tcp.DOMAIN`
//! (direct TLS) and `_xmpp-server._tcp.DOMAIN` (STARTTLS) are asked
//! together, their records mixed into one RFC 2782 order (XEP-0368 §3:
//! "all priorities and weights are mixed"), and each target's A/AAAA
//! records become the candidates. Only when neither service has a record
//! does the domain's own A/AAAA on port 5269 follow (RFC 6120 §3.2.2). A
//! lone "." target means "not offered here": for `_xmpps-server` only
//! direct TLS is off, for `_xmpp-server` so is s2s; either way there is no
//! A/AAAA fallback (XEP-0368 §5). A failed SRV question (timeout,
//! SERVFAIL) counts as no record, as Prosody treats it, and is reported.
//!
//! The output is a [`Resolution`]: the ordered [`Candidate`]s for the
//! connector plus everything learned on the way, which `vireo check dns`
//! prints. Addresses from an SRV answer's additional section are not used:
//! each target is asked for, so every address passed the same checks.

use super::addresses::{join_all, lookup_host, HostLookup};
use super::dns_client::{Answer, DnsClient, DnsError};
use super::nameservers::{self, NameserverError};
use super::overrides::{RouteHost, RouteTarget, S2sOverrides};
use super::srv_order::{self, SrvRecord};
use hickory_proto::rr::{Name, RData, RecordType};
use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::time::{Duration, Instant};

/// The s2s port without SRV (RFC 6120 §3.2.2, IANA "xmpp-server").
pub const XMPP_SERVER_PORT: u16 = 5269;

/// How much one resolution may cost.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DnsBudget {
    /// One question to one nameserver (UDP and any TCP retry).
    pub query_timeout: Duration,
    /// The whole resolution; questions still open then fail.
    pub overall_timeout: Duration,
    /// SRV records taken from each service's answer (the rest ignored).
    pub max_srv_records: usize,
    /// Addresses taken for one host (IPv6 and IPv4 together).
    pub max_addresses: usize,
    /// Candidates handed to the connector.
    pub max_candidates: usize,
    /// Largest DNS answer accepted, over UDP or TCP.
    pub max_response_bytes: usize,
}

impl Default for DnsBudget {
    fn default() -> Self {
        Self {
            query_timeout: Duration::from_secs(5),
            overall_timeout: Duration::from_secs(15),
            max_srv_records: 16,
            max_addresses: 8,
            max_candidates: 32,
            max_response_bytes: 4096,
        }
    }
}

/// The two SRV services of a server-to-server connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Service {
    /// `_xmpps-server._tcp`: TLS from the first byte (XEP-0368).
    DirectTls,
    /// `_xmpp-server._tcp`: plain TCP, then STARTTLS (RFC 6120).
    StartTls,
}

impl Service {
    /// Both, in the order they are reported.
    pub const ALL: [Service; 2] = [Service::DirectTls, Service::StartTls];

    /// The SRV owner-name prefix.
    pub fn label(self) -> &'static str {
        match self {
            Service::DirectTls => "_xmpps-server._tcp",
            Service::StartTls => "_xmpp-server._tcp",
        }
    }

    /// Whether its connections start with TLS.
    pub fn direct_tls(self) -> bool {
        self == Service::DirectTls
    }
}

/// What one SRV question gave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SrvOutcome {
    /// These records (within the budget, in canonical order: see
    /// [`srv_order::canonical_sort`]; "." targets among others left out).
    Records(Vec<SrvRecord>),
    /// A single "." target: the service is decidedly not offered.
    NotAvailable,
    /// No SRV record (NOERROR without records).
    NoRecords,
    /// The SRV name does not exist.
    NxDomain,
    /// The question failed.
    Failed(DnsError),
}

/// One service's SRV question and its answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceLookup {
    /// Which service.
    pub service: Service,
    /// The name asked, e.g. `_xmpp-server._tcp.example.org`.
    pub name: String,
    /// What came back.
    pub outcome: SrvOutcome,
    /// Records beyond [`DnsBudget::max_srv_records`], ignored.
    pub dropped: usize,
}

/// How the candidates were found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// A static route.
    Override(RouteTarget),
    /// The domain is an IP address.
    IpLiteral,
    /// SRV records.
    Srv,
    /// No SRV record: the domain's own addresses on port 5269.
    Fallback,
    /// A "." SRV target and no other record: no s2s with this domain.
    NotAvailable,
}

/// One address to try.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    /// Address and port.
    pub addr: SocketAddr,
    /// TLS from the first byte (an `_xmpps-server` record).
    pub direct_tls: bool,
    /// The host name it came from (SRV target, route host, or the
    /// domain), for logs; TLS still verifies the remote *domain*.
    pub host: String,
}

/// Everything one resolution found, candidates last.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolution {
    /// The domain, in ASCII (A-labels), lower case.
    pub domain: String,
    /// How the candidates were found.
    pub route: Route,
    /// The SRV questions (empty for an override or an IP literal).
    pub services: Vec<ServiceLookup>,
    /// The SRV records of both services in connection order.
    pub srv_order: Vec<SrvRecord>,
    /// Address lookups, in the order first needed.
    pub hosts: Vec<HostLookup>,
    /// Where to connect, in order.
    pub candidates: Vec<Candidate>,
    /// Candidates beyond [`DnsBudget::max_candidates`], left out.
    pub dropped_candidates: usize,
}

/// Why a domain could not even be looked up.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResolveError {
    /// Not a domain name.
    #[error("{domain:?} is not a domain name: {reason}")]
    BadDomain { domain: String, reason: String },
}

/// Resolves remote domains; cheap to share, one per server.
#[derive(Debug, Clone)]
pub struct Resolver {
    client: DnsClient,
    budget: DnsBudget,
    overrides: S2sOverrides,
}

impl Resolver {
    /// Ask `nameservers` (tests: a DNS server on loopback).
    pub fn new(nameservers: Vec<SocketAddr>, budget: DnsBudget, overrides: S2sOverrides) -> Self {
        let client = DnsClient::new(nameservers, budget.query_timeout, budget.max_response_bytes);
        Self {
            client,
            budget,
            overrides,
        }
    }

    /// Ask the nameservers of /etc/resolv.conf.
    pub fn from_system(
        budget: DnsBudget,
        overrides: S2sOverrides,
    ) -> Result<Self, NameserverError> {
        let servers = nameservers::from_file(Path::new(nameservers::RESOLV_CONF))?;
        Ok(Self::new(servers, budget, overrides))
    }

    /// The nameservers asked, in order.
    pub fn nameservers(&self) -> &[SocketAddr] {
        self.client.nameservers()
    }

    /// Where to connect for `domain`. `seed` drives the weighted SRV order
    /// (pass a fresh random value; tests pass a fixed one). No candidate
    /// is an answer too: see [`Resolution::route`] and the lookups.
    pub async fn resolve(&self, domain: &str, seed: u64) -> Result<Resolution, ResolveError> {
        let deadline = Instant::now() + self.budget.overall_timeout;
        let bad = |reason: String| ResolveError::BadDomain {
            domain: domain.into(),
            reason,
        };
        let trimmed = domain.strip_suffix('.').unwrap_or(domain);
        if trimmed.is_empty() {
            return Err(bad("empty".into()));
        }
        if let Some(target) = self.overrides.get(trimmed) {
            return Ok(self.by_override(trimmed, target.clone(), deadline).await);
        }
        let literal = trimmed
            .strip_prefix('[')
            .and_then(|s| s.strip_suffix(']'))
            .unwrap_or(trimmed);
        if let Ok(ip) = literal.parse::<IpAddr>() {
            return Ok(Resolution {
                domain: trimmed.into(),
                route: Route::IpLiteral,
                services: Vec::new(),
                srv_order: Vec::new(),
                hosts: Vec::new(),
                candidates: vec![Candidate {
                    addr: SocketAddr::new(ip, XMPP_SERVER_PORT),
                    direct_tls: false,
                    host: trimmed.into(),
                }],
                dropped_candidates: 0,
            });
        }
        let mut name = Name::from_utf8(trimmed).map_err(|e| bad(e.to_string()))?;
        name.set_fqdn(true);
        let ascii = host_string(&name);
        let services = self.srv_lookups(&name, &ascii, deadline).await?;
        let records: Vec<SrvRecord> = services
            .iter()
            .flat_map(|s| match &s.outcome {
                SrvOutcome::Records(r) => r.clone(),
                _ => Vec::new(),
            })
            .collect();
        let mut out = Resolution {
            domain: ascii.clone(),
            route: Route::Srv,
            services,
            srv_order: Vec::new(),
            hosts: Vec::new(),
            candidates: Vec::new(),
            dropped_candidates: 0,
        };
        if !records.is_empty() {
            out.srv_order = srv_order::order(records, seed);
            let mut unique: Vec<String> = Vec::new();
            for r in &out.srv_order {
                if !unique.contains(&r.target) {
                    unique.push(r.target.clone());
                }
            }
            out.hosts = join_all(
                unique
                    .iter()
                    .map(|host| {
                        lookup_host(&self.client, host, self.budget.max_addresses, deadline)
                    })
                    .collect(),
            )
            .await;
            let targets: Vec<(u16, bool, String)> = out
                .srv_order
                .iter()
                .map(|r| (r.port, r.direct_tls, r.target.clone()))
                .collect();
            self.fill_candidates(&mut out, &targets);
        } else if out
            .services
            .iter()
            .any(|s| s.outcome == SrvOutcome::NotAvailable)
        {
            out.route = Route::NotAvailable;
        } else {
            out.route = Route::Fallback;
            out.hosts =
                vec![lookup_host(&self.client, &ascii, self.budget.max_addresses, deadline).await];
            self.fill_candidates(&mut out, &[(XMPP_SERVER_PORT, false, ascii.clone())]);
        }
        tracing::debug!(
            domain = %out.domain,
            route = ?out.route,
            candidates = out.candidates.len(),
            "s2s resolution"
        );
        Ok(out)
    }

    async fn by_override(
        &self,
        domain: &str,
        target: RouteTarget,
        deadline: Instant,
    ) -> Resolution {
        let mut out = Resolution {
            domain: domain.to_lowercase(),
            route: Route::Override(target.clone()),
            services: Vec::new(),
            srv_order: Vec::new(),
            hosts: Vec::new(),
            candidates: Vec::new(),
            dropped_candidates: 0,
        };
        match &target.host {
            RouteHost::Ip(ip) => out.candidates.push(Candidate {
                addr: SocketAddr::new(*ip, target.port),
                direct_tls: false,
                host: ip.to_string(),
            }),
            RouteHost::Name(host) => {
                out.hosts = vec![
                    lookup_host(&self.client, host, self.budget.max_addresses, deadline).await,
                ];
                self.fill_candidates(&mut out, &[(target.port, false, host.clone())]);
            }
        }
        out
    }

    /// Both SRV questions at once.
    async fn srv_lookups(
        &self,
        domain: &Name,
        ascii: &str,
        deadline: Instant,
    ) -> Result<Vec<ServiceLookup>, ResolveError> {
        let mut names = Vec::new();
        for service in Service::ALL {
            let name = Name::from_ascii(service.label())
                .and_then(|n| n.append_domain(domain))
                .map_err(|e| ResolveError::BadDomain {
                    domain: ascii.into(),
                    reason: e.to_string(),
                })?;
            names.push((service, name));
        }
        let answers = join_all(
            names
                .iter()
                .map(|(_, name)| self.client.query(name, RecordType::SRV, deadline))
                .collect(),
        )
        .await;
        Ok(names
            .iter()
            .zip(answers)
            .map(|((service, name), answer)| {
                self.srv_outcome(
                    *service,
                    format!("{}.{ascii}", service.label()),
                    name,
                    answer,
                )
            })
            .collect())
    }

    fn srv_outcome(
        &self,
        service: Service,
        shown: String,
        name: &Name,
        answer: Result<Answer, DnsError>,
    ) -> ServiceLookup {
        let mut dropped = 0;
        let outcome = match answer {
            Err(e) => SrvOutcome::Failed(e),
            Ok(Answer::NxDomain) => SrvOutcome::NxDomain,
            Ok(Answer::NoData) => SrvOutcome::NoRecords,
            Ok(Answer::Records(records)) => {
                let srv: Vec<_> = records
                    .iter()
                    .filter_map(|r| match &r.data {
                        RData::SRV(s) => Some(s),
                        _ => None,
                    })
                    .collect();
                if srv.len() == 1 && srv.iter().all(|s| s.target.is_root()) {
                    SrvOutcome::NotAvailable
                } else {
                    let mut usable: Vec<SrvRecord> = srv
                        .iter()
                        .filter(|s| !s.target.is_root())
                        .map(|s| SrvRecord {
                            priority: s.priority,
                            weight: s.weight,
                            port: s.port,
                            target: host_string(&s.target),
                            direct_tls: service.direct_tls(),
                        })
                        .collect();
                    // Over the budget, keep the most preferred.
                    srv_order::canonical_sort(&mut usable);
                    dropped = usable.len().saturating_sub(self.budget.max_srv_records);
                    let kept: Vec<SrvRecord> = usable
                        .into_iter()
                        .take(self.budget.max_srv_records)
                        .collect();
                    if kept.is_empty() {
                        SrvOutcome::NoRecords
                    } else {
                        SrvOutcome::Records(kept)
                    }
                }
            }
        };
        tracing::debug!(%name, ?outcome, "srv lookup");
        ServiceLookup {
            service,
            name: shown,
            outcome,
            dropped,
        }
    }

    /// Candidates for `(port, direct_tls, host)` in order, each host's
    /// addresses from `out.hosts`, duplicates and overflow left out.
    fn fill_candidates(&self, out: &mut Resolution, targets: &[(u16, bool, String)]) {
        for (port, direct_tls, host) in targets {
            let Some(lookup) = out.hosts.iter().find(|h| &h.host == host) else {
                continue;
            };
            for ip in &lookup.addresses {
                let candidate = Candidate {
                    addr: SocketAddr::new(*ip, *port),
                    direct_tls: *direct_tls,
                    host: host.clone(),
                };
                if out
                    .candidates
                    .iter()
                    .any(|c| c.addr == candidate.addr && c.direct_tls == candidate.direct_tls)
                {
                    continue;
                }
                if out.candidates.len() >= self.budget.max_candidates {
                    out.dropped_candidates += 1;
                } else {
                    out.candidates.push(candidate);
                }
            }
        }
    }
}

/// A name as a host string: ASCII, lower case, no trailing dot.
fn host_string(name: &Name) -> String {
    let s = name.to_ascii().to_ascii_lowercase();
    s.strip_suffix('.').map(str::to_owned).unwrap_or(s)
}
