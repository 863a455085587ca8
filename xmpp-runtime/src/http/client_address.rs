//! The address a request comes from: the peer's, unless the peer is a
//! trusted reverse proxy, in which case the client it names in
//! `X-Forwarded-For`. Every per-address limit behind a proxy needs the
//! real client, and nobody else may choose the address they are counted
//! under: a header from an untrusted peer is ignored.

use ipnet::IpNet;
use std::net::IpAddr;
use xmpp_core::http::Request;

/// The client address of `request` received from `peer`. The list is read
/// from the right (RFC 7239 §5.2: each proxy appends the address it got
/// the request from): the first address not itself a trusted proxy is the
/// client. A malformed entry stops the walk at the last address trusted
/// so far.
pub(crate) fn client_ip(peer: IpAddr, request: &Request, trusted: &[IpNet]) -> IpAddr {
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|n| n.contains(ip));
    if !is_trusted(&peer) {
        return peer;
    }
    let mut client = peer;
    let forwarded = request
        .headers
        .iter()
        .filter(|(n, _)| n == "x-forwarded-for")
        .flat_map(|(_, v)| v.split(','))
        .collect::<Vec<_>>();
    for entry in forwarded.iter().rev() {
        let Some(ip) = parse(entry) else {
            break;
        };
        client = ip;
        if !is_trusted(&ip) {
            break;
        }
    }
    client
}

/// An address as proxies write it: bare, or IPv6 in brackets, or with a
/// port.
fn parse(entry: &str) -> Option<IpAddr> {
    let entry = entry.trim();
    if let Ok(ip) = entry.parse() {
        return Some(ip);
    }
    if let Ok(sock) = entry.parse::<std::net::SocketAddr>() {
        return Some(sock.ip());
    }
    entry
        .strip_prefix('[')
        .and_then(|r| r.strip_suffix(']'))
        .and_then(|r| r.parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;
    use xmpp_core::http::path::parse_target;

    fn request(forwarded: &[&str]) -> Request {
        Request {
            method: "GET".into(),
            target: parse_target("/").expect("target"),
            minor_version: 1,
            headers: forwarded
                .iter()
                .map(|v| ("x-forwarded-for".to_owned(), (*v).to_owned()))
                .collect(),
            body: Vec::new(),
            streamed: 0,
        }
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("ip")
    }

    #[test]
    fn only_a_trusted_proxy_names_the_client() {
        let trusted: Vec<IpNet> = vec!["10.0.0.0/8".parse().expect("net")];
        let r = request(&["203.0.113.9"]);
        assert_eq!(
            client_ip(ip("198.51.100.1"), &r, &trusted),
            ip("198.51.100.1")
        );
        assert_eq!(client_ip(ip("10.1.1.1"), &r, &trusted), ip("203.0.113.9"));
    }

    #[test]
    fn the_rightmost_untrusted_address_wins_over_what_the_client_wrote() {
        let trusted: Vec<IpNet> = vec!["10.0.0.0/8".parse().expect("net")];
        // The client forged the first entry; the proxies appended the rest.
        let r = request(&["1.2.3.4, 203.0.113.9", "10.0.0.2"]);
        assert_eq!(client_ip(ip("10.0.0.1"), &r, &trusted), ip("203.0.113.9"));
    }

    #[test]
    fn ports_brackets_and_garbage() {
        let trusted: Vec<IpNet> = vec!["127.0.0.1/32".parse().expect("net")];
        let peer = ip("127.0.0.1");
        assert_eq!(
            client_ip(peer, &request(&["[2001:db8::1]"]), &trusted),
            ip("2001:db8::1")
        );
        assert_eq!(
            client_ip(peer, &request(&["203.0.113.9:4711"]), &trusted),
            ip("203.0.113.9")
        );
        assert_eq!(client_ip(peer, &request(&["unknown"]), &trusted), peer);
        assert_eq!(client_ip(peer, &request(&[]), &trusted), peer);
    }
}
