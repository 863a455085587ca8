//! A host name to its addresses: AAAA and A asked together, the answers
//! interleaved IPv6 first (RFC 8305 §4), capped by the address budget.

use super::dns_client::{Answer, DnsClient, DnsError};
use hickory_proto::rr::{Name, RData, RecordType};
use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;
use std::task::Poll;
use std::time::Instant;

/// What one address family's question gave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FamilyOutcome {
    /// This many addresses (before the budget).
    Found(usize),
    /// The name has no record of this family.
    NoRecords,
    /// The name does not exist.
    NxDomain,
    /// The question failed.
    Failed(DnsError),
}

/// The addresses of one host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostLookup {
    /// The name looked up (lower case, no trailing dot).
    pub host: String,
    /// IPv6 and IPv4 interleaved, IPv6 first, at most the budget.
    pub addresses: Vec<IpAddr>,
    /// What the AAAA question gave.
    pub ipv6: FamilyOutcome,
    /// What the A question gave.
    pub ipv4: FamilyOutcome,
    /// Addresses left out by the budget.
    pub dropped: usize,
}

/// Ask AAAA and A for `host` at the same time.
pub async fn lookup_host(
    client: &DnsClient,
    host: &str,
    max_addresses: usize,
    deadline: Instant,
) -> HostLookup {
    let name = match Name::from_ascii(host) {
        Ok(mut n) => {
            n.set_fqdn(true);
            n
        }
        Err(e) => {
            let failed = FamilyOutcome::Failed(DnsError::BadName {
                name: host.into(),
                reason: e.to_string(),
            });
            return HostLookup {
                host: host.into(),
                addresses: Vec::new(),
                ipv6: failed.clone(),
                ipv4: failed,
                dropped: 0,
            };
        }
    };
    let (v6, v4) = smol::future::zip(
        client.query(&name, RecordType::AAAA, deadline),
        client.query(&name, RecordType::A, deadline),
    )
    .await;
    let (v6, ipv6) = family(v6);
    let (v4, ipv4) = family(v4);
    let mut all = Vec::with_capacity(v6.len() + v4.len());
    let (mut six, mut four) = (v6.into_iter(), v4.into_iter());
    loop {
        let (a, b) = (six.next(), four.next());
        if a.is_none() && b.is_none() {
            break;
        }
        for ip in a.into_iter().chain(b) {
            if !all.contains(&ip) {
                all.push(ip);
            }
        }
    }
    let dropped = all.len().saturating_sub(max_addresses);
    all.truncate(max_addresses);
    HostLookup {
        host: host.into(),
        addresses: all,
        ipv6,
        ipv4,
        dropped,
    }
}

fn family(result: Result<Answer, DnsError>) -> (Vec<IpAddr>, FamilyOutcome) {
    match result {
        Ok(Answer::Records(records)) => {
            let ips: Vec<IpAddr> = records
                .iter()
                .filter_map(|r| match &r.data {
                    RData::A(a) => Some(IpAddr::V4(a.0)),
                    RData::AAAA(a) => Some(IpAddr::V6(a.0)),
                    _ => None,
                })
                .collect();
            let n = ips.len();
            (ips, FamilyOutcome::Found(n))
        }
        Ok(Answer::NoData) => (Vec::new(), FamilyOutcome::NoRecords),
        Ok(Answer::NxDomain) => (Vec::new(), FamilyOutcome::NxDomain),
        Err(e) => (Vec::new(), FamilyOutcome::Failed(e)),
    }
}

/// Run `futures` concurrently on the caller's task; results in input
/// order. (smol has no `join_all`; a handful of lookups do not need
/// tasks of their own.)
pub async fn join_all<F: Future>(futures: Vec<F>) -> Vec<F::Output> {
    let mut futures: Vec<Pin<Box<F>>> = futures.into_iter().map(Box::pin).collect();
    let mut done: Vec<Option<F::Output>> = futures.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (future, slot) in futures.iter_mut().zip(done.iter_mut()) {
            if slot.is_none() {
                match future.as_mut().poll(cx) {
                    Poll::Ready(v) => *slot = Some(v),
                    Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            Poll::Pending
        } else {
            Poll::Ready(())
        }
    })
    .await;
    done.into_iter().flatten().collect()
}
