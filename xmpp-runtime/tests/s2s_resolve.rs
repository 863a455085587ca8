//! s2s resolution against a real DNS server: dnsmasq on loopback serving
//! SRV, A/AAAA and CNAME records (see `support/dnsmasq.rs`).

mod support;

use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::time::{Duration, Instant};
use support::dnsmasq::{host, srv, srv_dot, Dnsmasq};
use xmpp_runtime::s2s::dns_client::{DnsClient, DnsError};
use xmpp_runtime::s2s::srv_order;
use xmpp_runtime::s2s::{
    Candidate, DnsBudget, FamilyOutcome, Resolution, Resolver, Route, S2sOverrides, SrvOutcome,
};

/// The zone every test here is served (names under `.test`).
fn zone() -> Vec<String> {
    let mut z = vec![
        // a.test: direct TLS preferred by priority, then two STARTTLS hosts.
        srv("xmpps-server", "a.test", "tls.a.test", 5270, 5, 0),
        srv("xmpp-server", "a.test", "x1.a.test", 5269, 10, 0),
        srv("xmpp-server", "a.test", "x2.a.test", 5271, 20, 0),
        host("tls.a.test", &["127.0.0.11", "fd00::11"]),
        host("x1.a.test", &["127.0.0.21"]),
        host("x2.a.test", &["fd00::22"]),
        // mix.test: XEP-0368 mixes priorities: STARTTLS (0) before TLS (10).
        srv("xmpp-server", "mix.test", "x1.a.test", 5269, 0, 0),
        srv("xmpps-server", "mix.test", "tls.a.test", 5270, 10, 0),
        // w.test: one priority, weights 10/20/70.
        srv("xmpp-server", "w.test", "w1.test", 5269, 0, 10),
        srv("xmpp-server", "w.test", "w2.test", 5269, 0, 20),
        srv("xmpp-server", "w.test", "w3.test", 5269, 0, 70),
        host("w1.test", &["127.0.0.51"]),
        host("w2.test", &["127.0.0.52"]),
        host("w3.test", &["127.0.0.53"]),
        // "." targets.
        srv_dot("xmpp-server", "dot.test"),
        host("dot.test", &["127.0.0.61"]),
        srv_dot("xmpps-server", "dottls.test"),
        srv("xmpp-server", "dottls.test", "x1.a.test", 5269, 0, 0),
        srv_dot("xmpps-server", "dotonlytls.test"),
        host("dotonlytls.test", &["127.0.0.62"]),
        // No SRV: the domain's own addresses on 5269.
        host("nosrv.test", &["127.0.0.31", "fd00::31"]),
        // An internationalized domain, asked for by its A-label.
        host("xn--bcher-kva.test", &["127.0.0.71"]),
        // An SRV target that is an alias.
        srv("xmpp-server", "cname.test", "alias.test", 5269, 0, 0),
        "--cname=alias.test,x1.a.test".into(),
        // Many addresses for one host.
        host("multi.test", &["127.0.0.41", "fd00::41"]),
        host("multi.test", &["127.0.0.42", "fd00::42"]),
        host("multi.test", &["127.0.0.43"]),
    ];
    // many.test: 20 SRV records (ports 6000..6019) on one host.
    for i in 0..20u16 {
        z.push(srv("xmpp-server", "many.test", "x1.a.test", 6000 + i, i, 0));
    }
    // big.test: 40 records with long targets, more than fits in UDP.
    for i in 0..40u16 {
        z.push(srv(
            "xmpp-server",
            "big.test",
            &format!("host-number-{i}.a-rather-long-target-name.big.test"),
            5269,
            i,
            0,
        ));
    }
    z
}

fn dns(test: &str) -> Option<Dnsmasq> {
    Dnsmasq::start(test, &zone())
}

fn resolver(server: &Dnsmasq, budget: DnsBudget) -> Resolver {
    Resolver::new(vec![server.addr], budget, S2sOverrides::new())
}

fn resolve(r: &Resolver, domain: &str, seed: u64) -> Resolution {
    smol::block_on(r.resolve(domain, seed)).expect("a domain name")
}

fn cand(addr: &str, direct_tls: bool, host: &str) -> Candidate {
    Candidate {
        addr: addr.parse().expect("socket addr"),
        direct_tls,
        host: host.into(),
    }
}

fn targets(r: &Resolution) -> Vec<&str> {
    r.srv_order.iter().map(|s| s.target.as_str()).collect()
}

#[test]
fn srv_records_of_both_services_give_ordered_candidates() {
    let Some(server) = dns("srv_records_of_both_services_give_ordered_candidates") else {
        return;
    };
    let r = resolve(&resolver(&server, DnsBudget::default()), "A.Test.", 0);
    assert_eq!(r.route, Route::Srv);
    assert_eq!(r.domain, "a.test");
    assert_eq!(r.services.len(), 2);
    assert_eq!(r.services[0].name, "_xmpps-server._tcp.a.test");
    assert_eq!(r.services[1].name, "_xmpp-server._tcp.a.test");
    assert_eq!(
        r.candidates,
        vec![
            cand("[fd00::11]:5270", true, "tls.a.test"),
            cand("127.0.0.11:5270", true, "tls.a.test"),
            cand("127.0.0.21:5269", false, "x1.a.test"),
            cand("[fd00::22]:5271", false, "x2.a.test"),
        ]
    );
    let x1 = r.hosts.iter().find(|h| h.host == "x1.a.test").expect("x1");
    assert_eq!(x1.ipv4, FamilyOutcome::Found(1));
    assert_eq!(x1.ipv6, FamilyOutcome::NoRecords);

    let mix = resolve(&resolver(&server, DnsBudget::default()), "mix.test", 0);
    assert_eq!(
        mix.candidates,
        vec![
            cand("127.0.0.21:5269", false, "x1.a.test"),
            cand("[fd00::11]:5270", true, "tls.a.test"),
            cand("127.0.0.11:5270", true, "tls.a.test"),
        ]
    );
}

#[test]
fn weighted_order_follows_the_seed_and_the_weights() {
    let Some(server) = dns("weighted_order_follows_the_seed_and_the_weights") else {
        return;
    };
    let res = resolver(&server, DnsBudget::default());
    let r = resolve(&res, "w.test", 7);
    let SrvOutcome::Records(answered) = &r.services[1].outcome else {
        panic!("records: {:?}", r.services[1]);
    };
    assert_eq!(r.srv_order, srv_order::order(answered.clone(), 7));
    // Seed 7's order, whatever order dnsmasq rotated the answer into.
    assert_eq!(targets(&r), ["w3.test", "w1.test", "w2.test"]);
    let ips: Vec<SocketAddr> = r.candidates.iter().map(|c| c.addr).collect();
    let by_target: Vec<SocketAddr> = r
        .srv_order
        .iter()
        .map(|s| {
            let last = s.target.as_bytes()[1] - b'0';
            SocketAddr::from(([127, 0, 0, 50 + last], 5269))
        })
        .collect();
    assert_eq!(ips, by_target, "candidates follow the SRV order");
    assert_eq!(
        targets(&resolve(&res, "w.test", 7)),
        targets(&r),
        "a fixed seed reproduces the order"
    );

    let mut first = std::collections::BTreeMap::<String, u32>::new();
    let runs = 300u64;
    for seed in 0..runs {
        let r = resolve(&res, "w.test", seed.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        *first.entry(r.srv_order[0].target.clone()).or_default() += 1;
    }
    // Expected 30 / 60 / 210 first picks.
    let count = |t: &str| first.get(t).copied().unwrap_or(0);
    assert!((10..60).contains(&count("w1.test")), "{first:?}");
    assert!((30..95).contains(&count("w2.test")), "{first:?}");
    assert!((170..250).contains(&count("w3.test")), "{first:?}");
}

#[test]
fn a_dot_target_means_no_service_and_no_fallback() {
    let Some(server) = dns("a_dot_target_means_no_service_and_no_fallback") else {
        return;
    };
    let res = resolver(&server, DnsBudget::default());
    let r = resolve(&res, "dot.test", 0);
    assert_eq!(r.route, Route::NotAvailable);
    assert_eq!(r.services[1].outcome, SrvOutcome::NotAvailable);
    assert!(r.hosts.is_empty(), "no A/AAAA fallback: {:?}", r.hosts);
    assert!(r.candidates.is_empty());

    // "." for direct TLS only: STARTTLS records still count.
    let r = resolve(&res, "dottls.test", 0);
    assert_eq!(r.route, Route::Srv);
    assert_eq!(r.services[0].outcome, SrvOutcome::NotAvailable);
    assert_eq!(
        r.candidates,
        vec![cand("127.0.0.21:5269", false, "x1.a.test")]
    );

    // "." for direct TLS and nothing else: still no fallback (XEP-0368 §5).
    let r = resolve(&res, "dotonlytls.test", 0);
    assert_eq!(r.route, Route::NotAvailable);
    assert!(r.candidates.is_empty());
}

#[test]
fn without_srv_the_domain_itself_on_5269() {
    let Some(server) = dns("without_srv_the_domain_itself_on_5269") else {
        return;
    };
    let res = resolver(&server, DnsBudget::default());
    let r = resolve(&res, "nosrv.test", 0);
    assert_eq!(r.route, Route::Fallback);
    assert_eq!(r.services[0].outcome, SrvOutcome::NxDomain);
    assert_eq!(r.services[1].outcome, SrvOutcome::NxDomain);
    assert_eq!(
        r.candidates,
        vec![
            cand("[fd00::31]:5269", false, "nosrv.test"),
            cand("127.0.0.31:5269", false, "nosrv.test"),
        ]
    );
}

#[test]
fn an_internationalized_domain_is_asked_for_by_its_a_label() {
    let Some(server) = dns("an_internationalized_domain_is_asked_for_by_its_a_label") else {
        return;
    };
    let r = resolve(&resolver(&server, DnsBudget::default()), "Bücher.test", 0);
    assert_eq!(r.domain, "xn--bcher-kva.test");
    assert_eq!(r.services[1].name, "_xmpp-server._tcp.xn--bcher-kva.test");
    assert_eq!(
        r.candidates,
        vec![cand("127.0.0.71:5269", false, "xn--bcher-kva.test")]
    );
}

#[test]
fn a_domain_that_does_not_exist_has_no_candidate() {
    let Some(server) = dns("a_domain_that_does_not_exist_has_no_candidate") else {
        return;
    };
    let r = resolve(&resolver(&server, DnsBudget::default()), "nx.test", 0);
    assert_eq!(r.route, Route::Fallback);
    assert_eq!(r.hosts.len(), 1);
    assert_eq!(r.hosts[0].ipv4, FamilyOutcome::NxDomain);
    assert_eq!(r.hosts[0].ipv6, FamilyOutcome::NxDomain);
    assert!(r.candidates.is_empty());
}

#[test]
fn an_alias_target_is_followed() {
    let Some(server) = dns("an_alias_target_is_followed") else {
        return;
    };
    let r = resolve(&resolver(&server, DnsBudget::default()), "cname.test", 0);
    assert_eq!(
        r.candidates,
        vec![cand("127.0.0.21:5269", false, "alias.test")]
    );
}

#[test]
fn budgets_cap_records_addresses_and_candidates() {
    let Some(server) = dns("budgets_cap_records_addresses_and_candidates") else {
        return;
    };
    // SRV records: 20 answered, 4 considered.
    let budget = DnsBudget {
        max_srv_records: 4,
        ..DnsBudget::default()
    };
    let r = resolve(&resolver(&server, budget), "many.test", 0);
    assert_eq!(r.services[1].dropped, 16);
    let ports: Vec<u16> = r.candidates.iter().map(|c| c.addr.port()).collect();
    assert_eq!(ports, [6000, 6001, 6002, 6003]);

    // At the limit nothing is dropped.
    let budget = DnsBudget {
        max_srv_records: 20,
        max_candidates: 20,
        ..DnsBudget::default()
    };
    let r = resolve(&resolver(&server, budget), "many.test", 0);
    assert_eq!(r.services[1].dropped, 0);
    assert_eq!(r.candidates.len(), 20);
    assert_eq!(r.dropped_candidates, 0);

    // Candidates: one over the limit is dropped.
    let budget = DnsBudget {
        max_srv_records: 20,
        max_candidates: 19,
        ..DnsBudget::default()
    };
    let r = resolve(&resolver(&server, budget), "many.test", 0);
    assert_eq!(r.candidates.len(), 19);
    assert_eq!(r.dropped_candidates, 1);
    assert_eq!(r.candidates.last().map(|c| c.addr.port()), Some(6018));

    // Addresses: five served, IPv6 first and interleaved, three kept.
    let all = resolve(&resolver(&server, DnsBudget::default()), "multi.test", 0);
    assert_eq!(all.hosts[0].addresses.len(), 5);
    assert_eq!(all.hosts[0].dropped, 0);
    let kinds: Vec<bool> = all.hosts[0].addresses.iter().map(IpAddr::is_ipv6).collect();
    assert_eq!(kinds, [true, false, true, false, false]);
    let budget = DnsBudget {
        max_addresses: 3,
        ..DnsBudget::default()
    };
    let r = resolve(&resolver(&server, budget), "multi.test", 0);
    // dnsmasq rotates its answers, so which addresses: any, in the same
    // interleaving.
    let kept = &r.hosts[0].addresses;
    assert_eq!(kept.len(), 3);
    assert!(kept.iter().all(|ip| all.hosts[0].addresses.contains(ip)));
    let kinds: Vec<bool> = kept.iter().map(IpAddr::is_ipv6).collect();
    assert_eq!(kinds, [true, false, true]);
    assert_eq!(r.hosts[0].dropped, 2);
    assert_eq!(r.candidates.len(), 3);
}

#[test]
fn a_truncated_udp_answer_is_asked_again_over_tcp() {
    let Some(server) = dns("a_truncated_udp_answer_is_asked_again_over_tcp") else {
        return;
    };
    // 40 long records are well over the 1232 bytes asked for over UDP:
    // seeing all 40 (16 kept, 24 dropped) proves the TCP retry.
    let r = resolve(&resolver(&server, DnsBudget::default()), "big.test", 0);
    let SrvOutcome::Records(kept) = &r.services[1].outcome else {
        panic!("records: {:?}", r.services[1]);
    };
    assert_eq!(kept.len(), 16);
    assert_eq!(r.services[1].dropped, 24);
}

/// The exact size of dnsmasq's TCP answer to our SRV question for
/// `big.test`, measured with a query built like the client's.
fn tcp_answer_len(server: SocketAddr) -> usize {
    use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query};
    use hickory_proto::rr::{Name, RecordType};
    use std::io::{Read, Write};
    let mut msg = Message::new(1, MessageType::Query, OpCode::Query);
    msg.metadata.recursion_desired = true;
    let name = Name::from_ascii("_xmpp-server._tcp.big.test.").expect("name");
    msg.add_query(Query::query(name, RecordType::SRV));
    let mut edns = Edns::new();
    edns.set_max_payload(1232);
    msg.set_edns(edns);
    let q = msg.to_vec().expect("encode");
    let mut s = std::net::TcpStream::connect(server).expect("tcp");
    let mut framed = (q.len() as u16).to_be_bytes().to_vec();
    framed.extend_from_slice(&q);
    s.write_all(&framed).expect("write");
    let mut len = [0u8; 2];
    s.read_exact(&mut len).expect("read");
    usize::from(u16::from_be_bytes(len))
}

#[test]
fn the_response_size_budget_holds_at_the_limit() {
    let Some(server) = dns("the_response_size_budget_holds_at_the_limit") else {
        return;
    };
    let len = tcp_answer_len(server.addr);
    assert!(len > 1232, "the answer needs TCP ({len} bytes)");
    let name = hickory_proto::rr::Name::from_ascii("_xmpp-server._tcp.big.test.").expect("name");
    let ask = |limit: usize| {
        let client = DnsClient::new(vec![server.addr], Duration::from_secs(5), limit);
        smol::block_on(client.query(
            &name,
            hickory_proto::rr::RecordType::SRV,
            Instant::now() + Duration::from_secs(5),
        ))
    };
    assert!(ask(len).is_ok(), "{len} bytes allowed");
    assert_eq!(
        ask(len - 1),
        Err(DnsError::TooLarge {
            server: server.addr,
            limit: len - 1
        })
    );
}

#[test]
fn a_silent_nameserver_times_out_and_the_next_one_answers() {
    let Some(server) = dns("a_silent_nameserver_times_out_and_the_next_one_answers") else {
        return;
    };
    // Bound but never answering: no ICMP error, a real timeout.
    let silent = UdpSocket::bind("127.0.0.1:0").expect("bind");
    let silent_addr = silent.local_addr().expect("addr");
    let budget = DnsBudget {
        query_timeout: Duration::from_millis(300),
        overall_timeout: Duration::from_secs(5),
        ..DnsBudget::default()
    };
    let alone = Resolver::new(vec![silent_addr], budget.clone(), S2sOverrides::new());
    let started = Instant::now();
    let r = resolve(&alone, "a.test", 0);
    let took = started.elapsed();
    assert!(r.candidates.is_empty());
    assert_eq!(
        r.services[1].outcome,
        SrvOutcome::Failed(DnsError::Timeout {
            server: silent_addr,
            timeout: Duration::from_millis(300)
        })
    );
    // SRV failed, so the fallback was asked (and failed) too: two rounds.
    assert_eq!(r.route, Route::Fallback);
    assert!(matches!(
        r.hosts[0].ipv4,
        FamilyOutcome::Failed(DnsError::Timeout { .. })
    ));
    assert!(took >= Duration::from_millis(600), "{took:?}");
    assert!(took < Duration::from_secs(3), "{took:?}");

    let both = Resolver::new(vec![silent_addr, server.addr], budget, S2sOverrides::new());
    let r = resolve(&both, "a.test", 0);
    assert_eq!(r.candidates.len(), 4, "{r:?}");
}

#[test]
fn the_overall_budget_ends_the_resolution() {
    let silent = UdpSocket::bind("127.0.0.1:0").expect("bind");
    let budget = DnsBudget {
        query_timeout: Duration::from_secs(10),
        overall_timeout: Duration::from_millis(400),
        ..DnsBudget::default()
    };
    let r = Resolver::new(
        vec![silent.local_addr().expect("addr")],
        budget,
        S2sOverrides::new(),
    );
    let started = Instant::now();
    let out = resolve(&r, "a.test", 0);
    let took = started.elapsed();
    assert!(out.candidates.is_empty());
    assert!(took >= Duration::from_millis(400), "{took:?}");
    assert!(took < Duration::from_secs(2), "{took:?}");
    assert!(
        matches!(
            out.hosts[0].ipv4,
            FamilyOutcome::Failed(DnsError::OutOfTime)
        ),
        "{:?}",
        out.hosts
    );
}

#[test]
fn a_closed_nameserver_port_fails_at_once() {
    let port = {
        let s = UdpSocket::bind("127.0.0.1:0").expect("bind");
        s.local_addr().expect("addr")
    };
    let client = DnsClient::new(vec![port], Duration::from_secs(5), 4096);
    let name = hickory_proto::rr::Name::from_ascii("a.test.").expect("name");
    let started = Instant::now();
    let got = smol::block_on(client.query(
        &name,
        hickory_proto::rr::RecordType::A,
        Instant::now() + Duration::from_secs(5),
    ));
    assert!(matches!(got, Err(DnsError::Io { .. })), "{got:?}");
    assert!(started.elapsed() < Duration::from_secs(2));
}

#[test]
fn static_routes_and_ip_literals_skip_srv() {
    let Some(server) = dns("static_routes_and_ip_literals_skip_srv") else {
        return;
    };
    let overrides =
        S2sOverrides::parse_env("o.test=127.0.0.1:35289,n.test=x1.a.test:6000,a.test=[::1]:7000")
            .expect("parses");
    let r = Resolver::new(vec![server.addr], DnsBudget::default(), overrides);
    let o = resolve(&r, "o.test", 0);
    assert!(matches!(o.route, Route::Override(_)));
    assert!(o.services.is_empty());
    assert_eq!(
        o.candidates,
        vec![cand("127.0.0.1:35289", false, "127.0.0.1")]
    );
    let n = resolve(&r, "n.test", 0);
    assert_eq!(
        n.candidates,
        vec![cand("127.0.0.21:6000", false, "x1.a.test")]
    );
    // An override beats the domain's own SRV records.
    let a = resolve(&r, "a.test", 0);
    assert_eq!(a.candidates, vec![cand("[::1]:7000", false, "::1")]);

    let ip = resolve(&r, "192.0.2.7", 0);
    assert_eq!(ip.route, Route::IpLiteral);
    assert_eq!(
        ip.candidates,
        vec![cand("192.0.2.7:5269", false, "192.0.2.7")]
    );
    let ip6 = resolve(&r, "[2001:db8::7]", 0);
    assert_eq!(
        ip6.candidates[0].addr,
        "[2001:db8::7]:5269".parse().expect("addr")
    );
}

#[test]
fn a_name_that_cannot_be_a_domain_is_refused() {
    let r = Resolver::new(vec![], DnsBudget::default(), S2sOverrides::new());
    assert!(smol::block_on(r.resolve("", 0)).is_err());
    assert!(smol::block_on(r.resolve(&"a".repeat(300), 0)).is_err());
}
