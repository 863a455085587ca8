//! A small stub resolver on smol: one question to the configured
//! nameservers over UDP, again over TCP when the answer comes back
//! truncated.
//!
//! Why not a resolver crate: hickory-resolver runs on tokio, and the
//! async-std flavour pulls a second runtime; Vireo's runtime is smol. The
//! wire format is the hard part and comes from `hickory-proto` (parsing
//! only, no runtime); the transport below is a page of code whose budgets
//! (timeouts, response size) are ours to set and test. Recursion is the
//! nameserver's job, as with glibc's stub resolver.
//!
//! Spoofing defences of a stub resolver (RFC 5452): a random query ID, a
//! fresh socket (so a random source port) per query, a connected UDP socket
//! (datagrams from other addresses are dropped by the kernel), and an
//! answer must carry our ID and echo our question.

use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::{Name, RData, Record, RecordType};
use smol::io::{AsyncReadExt, AsyncWriteExt};
use smol::net::{TcpStream, UdpSocket};
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::{Duration, Instant};

/// EDNS(0) payload size we advertise at most: the DNS Flag Day 2020 value,
/// small enough to avoid IP fragmentation.
pub const MAX_UDP_PAYLOAD: usize = 1232;

/// The classic DNS UDP size (RFC 1035), which EDNS may only raise.
const MIN_UDP_PAYLOAD: usize = 512;

/// A CNAME chain longer than this is treated as a loop.
pub const MAX_CNAME_CHAIN: usize = 8;

/// How one nameserver answered one question.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// The records of the asked type, the CNAME chain already followed.
    Records(Vec<Record>),
    /// The name exists but has no record of that type (NOERROR, empty).
    NoData,
    /// The name does not exist (NXDOMAIN).
    NxDomain,
}

/// Why a question got no usable answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DnsError {
    /// No nameserver to ask.
    #[error("no nameserver configured")]
    NoNameservers,
    /// The name cannot be a DNS name.
    #[error("{name:?} is not a DNS name: {reason}")]
    BadName { name: String, reason: String },
    /// No answer within the time allowed.
    #[error("nameserver {server}: no answer within {timeout:?}")]
    Timeout {
        server: SocketAddr,
        timeout: Duration,
    },
    /// The resolution's overall time budget was spent before this question.
    #[error("the time budget for the resolution ran out")]
    OutOfTime,
    /// Sending or receiving failed (e.g. ICMP port unreachable).
    #[error("nameserver {server}: {reason}")]
    Io { server: SocketAddr, reason: String },
    /// The answer is over the response size budget.
    #[error("nameserver {server}: answer larger than {limit} bytes")]
    TooLarge { server: SocketAddr, limit: usize },
    /// The answer does not parse or does not match the question.
    #[error("nameserver {server}: malformed answer: {reason}")]
    Malformed { server: SocketAddr, reason: String },
    /// SERVFAIL, REFUSED and the like.
    #[error("nameserver {server}: {rcode}")]
    Failed {
        server: SocketAddr,
        rcode: ResponseCodeText,
    },
}

/// A response code, kept as text so [`DnsError`] stays `Eq` and `Clone`
/// without depending on hickory's types.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResponseCodeText(pub String);

impl fmt::Display for ResponseCodeText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The nameservers and the per-query budgets.
#[derive(Debug, Clone)]
pub struct DnsClient {
    nameservers: Vec<SocketAddr>,
    query_timeout: Duration,
    max_response_bytes: usize,
}

impl DnsClient {
    /// Ask `nameservers` in order; each gets at most `query_timeout`
    /// (UDP and the TCP retry together); answers over
    /// `max_response_bytes` are refused.
    pub fn new(
        nameservers: Vec<SocketAddr>,
        query_timeout: Duration,
        max_response_bytes: usize,
    ) -> Self {
        Self {
            nameservers,
            query_timeout,
            max_response_bytes,
        }
    }

    /// The nameservers asked, in order.
    pub fn nameservers(&self) -> &[SocketAddr] {
        &self.nameservers
    }

    /// Look `name` up for `rtype`, trying each nameserver in turn until one
    /// answers (a NXDOMAIN is an answer), all before `deadline`.
    pub async fn query(
        &self,
        name: &Name,
        rtype: RecordType,
        deadline: Instant,
    ) -> Result<Answer, DnsError> {
        let mut last = DnsError::NoNameservers;
        for &server in &self.nameservers {
            let now = Instant::now();
            if now >= deadline {
                if matches!(last, DnsError::NoNameservers) {
                    last = DnsError::OutOfTime;
                }
                break;
            }
            let budget = self.query_timeout.min(deadline - now);
            let attempt = self.ask(server, name, rtype);
            let timed = smol::future::or(attempt, async {
                smol::Timer::after(budget).await;
                Err(DnsError::Timeout {
                    server,
                    timeout: budget,
                })
            });
            match timed.await {
                Ok(answer) => return Ok(answer),
                Err(e) => {
                    tracing::debug!(%server, %name, ?rtype, error = %e, "dns query failed");
                    last = e;
                }
            }
        }
        Err(last)
    }

    /// One nameserver: UDP, then TCP if truncated.
    async fn ask(
        &self,
        server: SocketAddr,
        name: &Name,
        rtype: RecordType,
    ) -> Result<Answer, DnsError> {
        let id = query_id();
        let payload = self
            .max_response_bytes
            .clamp(MIN_UDP_PAYLOAD, MAX_UDP_PAYLOAD);
        let request =
            build_query(id, name, rtype, payload).map_err(|reason| DnsError::BadName {
                name: name.to_string(),
                reason,
            })?;
        let response = self.udp_exchange(server, id, name, rtype, &request).await?;
        let response = if response.metadata.truncation {
            tracing::debug!(%server, %name, ?rtype, "truncated over UDP, asking over TCP");
            self.tcp_exchange(server, id, name, rtype, &request).await?
        } else {
            response
        };
        interpret(server, name, rtype, response)
    }

    async fn udp_exchange(
        &self,
        server: SocketAddr,
        id: u16,
        name: &Name,
        rtype: RecordType,
        request: &[u8],
    ) -> Result<Message, DnsError> {
        let io = |e: std::io::Error| DnsError::Io {
            server,
            reason: e.to_string(),
        };
        let local: IpAddr = if server.is_ipv4() {
            Ipv4Addr::UNSPECIFIED.into()
        } else {
            Ipv6Addr::UNSPECIFIED.into()
        };
        let socket = UdpSocket::bind(SocketAddr::new(local, 0))
            .await
            .map_err(io)?;
        socket.connect(server).await.map_err(io)?;
        socket.send(request).await.map_err(io)?;
        // One byte more than allowed tells an oversized datagram apart.
        let mut buf = vec![0u8; self.max_response_bytes + 1];
        loop {
            let n = socket.recv(&mut buf).await.map_err(io)?;
            if n > self.max_response_bytes {
                return Err(DnsError::TooLarge {
                    server,
                    limit: self.max_response_bytes,
                });
            }
            match check_response(&buf[..n], id, name, rtype) {
                Ok(message) => return Ok(message),
                // Not ours (a late answer to an earlier query, or a forgery):
                // keep listening until the timeout.
                Err(reason) => tracing::debug!(%server, %reason, "ignored a UDP datagram"),
            }
        }
    }

    async fn tcp_exchange(
        &self,
        server: SocketAddr,
        id: u16,
        name: &Name,
        rtype: RecordType,
        request: &[u8],
    ) -> Result<Message, DnsError> {
        let io = |e: std::io::Error| DnsError::Io {
            server,
            reason: e.to_string(),
        };
        let len = u16::try_from(request.len()).map_err(|_| DnsError::BadName {
            name: name.to_string(),
            reason: "query too long".into(),
        })?;
        let mut stream = TcpStream::connect(server).await.map_err(io)?;
        let mut framed = Vec::with_capacity(request.len() + 2);
        framed.extend_from_slice(&len.to_be_bytes());
        framed.extend_from_slice(request);
        stream.write_all(&framed).await.map_err(io)?;
        stream.flush().await.map_err(io)?;
        let mut len = [0u8; 2];
        stream.read_exact(&mut len).await.map_err(io)?;
        let len = usize::from(u16::from_be_bytes(len));
        if len > self.max_response_bytes {
            return Err(DnsError::TooLarge {
                server,
                limit: self.max_response_bytes,
            });
        }
        let mut buf = vec![0u8; len];
        stream.read_exact(&mut buf).await.map_err(io)?;
        check_response(&buf, id, name, rtype)
            .map_err(|reason| DnsError::Malformed { server, reason })
    }
}

fn query_id() -> u16 {
    let mut b = [0u8; 2];
    // Without the OS generator the ID is still unique enough per socket;
    // the random source port carries the rest of the entropy.
    if getrandom::getrandom(&mut b).is_err() {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        b = (nanos as u16).to_be_bytes();
    }
    u16::from_be_bytes(b)
}

fn build_query(id: u16, name: &Name, rtype: RecordType, payload: usize) -> Result<Vec<u8>, String> {
    let mut msg = Message::new(id, MessageType::Query, OpCode::Query);
    msg.metadata.recursion_desired = true;
    msg.add_query(Query::query(name.clone(), rtype));
    let mut edns = Edns::new();
    edns.set_max_payload(u16::try_from(payload).unwrap_or(u16::MAX));
    msg.set_edns(edns);
    msg.to_vec().map_err(|e| e.to_string())
}

/// Parse `bytes` and check it answers our question.
fn check_response(
    bytes: &[u8],
    id: u16,
    name: &Name,
    rtype: RecordType,
) -> Result<Message, String> {
    let msg = Message::from_vec(bytes).map_err(|e| e.to_string())?;
    if msg.metadata.id != id {
        return Err(format!("id {} instead of {id}", msg.metadata.id));
    }
    if msg.metadata.message_type != MessageType::Response {
        return Err("not a response".into());
    }
    let echoed = msg.queries.len() == 1
        && msg
            .queries
            .first()
            .is_some_and(|q| q.query_type() == rtype && q.name().eq_ignore_root(name));
    // A FORMERR may come without the question; anything else must echo it.
    if !echoed && msg.metadata.response_code != ResponseCode::FormErr {
        return Err("the question is not ours".into());
    }
    Ok(msg)
}

/// The records of type `rtype` owned by `name` or by the end of its CNAME
/// chain within the answer section.
fn interpret(
    server: SocketAddr,
    name: &Name,
    rtype: RecordType,
    msg: Message,
) -> Result<Answer, DnsError> {
    match msg.metadata.response_code {
        ResponseCode::NoError => {}
        ResponseCode::NXDomain => return Ok(Answer::NxDomain),
        other => {
            return Err(DnsError::Failed {
                server,
                rcode: ResponseCodeText(other.to_string()),
            })
        }
    }
    if msg.metadata.truncation {
        return Err(DnsError::Malformed {
            server,
            reason: "truncated over TCP".into(),
        });
    }
    let mut owner = name.clone();
    for _ in 0..=MAX_CNAME_CHAIN {
        let records: Vec<Record> = msg
            .answers
            .iter()
            .filter(|r| r.record_type() == rtype && r.name.eq_ignore_root(&owner))
            .cloned()
            .collect();
        if !records.is_empty() {
            return Ok(Answer::Records(records));
        }
        let alias = msg.answers.iter().find_map(|r| match &r.data {
            RData::CNAME(target) if r.name.eq_ignore_root(&owner) => Some(target.0.clone()),
            _ => None,
        });
        match alias {
            Some(next) => owner = next,
            None => return Ok(Answer::NoData),
        }
    }
    Err(DnsError::Malformed {
        server,
        reason: format!("CNAME chain longer than {MAX_CNAME_CHAIN}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_proto::rr::rdata::{A, CNAME};

    fn server() -> SocketAddr {
        "127.0.0.1:53".parse().expect("addr")
    }

    fn name(s: &str) -> Name {
        Name::from_ascii(s).expect("name")
    }

    fn response(q: &str, rtype: RecordType, answers: Vec<Record>) -> Message {
        let mut m = Message::new(7, MessageType::Response, OpCode::Query);
        m.add_query(Query::query(name(q), rtype));
        m.add_answers(answers);
        m
    }

    #[test]
    fn a_cname_chain_is_followed_and_a_loop_refused() {
        let a = Record::from_rdata(name("real.test."), 60, RData::A(A::new(192, 0, 2, 1)));
        let alias = Record::from_rdata(
            name("www.test."),
            60,
            RData::CNAME(CNAME(name("real.test."))),
        );
        let m = response("www.test.", RecordType::A, vec![alias, a.clone()]);
        assert_eq!(
            interpret(server(), &name("www.test."), RecordType::A, m),
            Ok(Answer::Records(vec![a]))
        );
        let looped = vec![
            Record::from_rdata(name("x.test."), 60, RData::CNAME(CNAME(name("y.test.")))),
            Record::from_rdata(name("y.test."), 60, RData::CNAME(CNAME(name("x.test.")))),
        ];
        let m = response("x.test.", RecordType::A, looped);
        assert!(matches!(
            interpret(server(), &name("x.test."), RecordType::A, m),
            Err(DnsError::Malformed { .. })
        ));
    }

    #[test]
    fn the_cname_chain_budget_holds_at_the_limit() {
        // c0 → c1 → … → cN, the A record on cN.
        let chain = |n: usize| {
            let mut records: Vec<Record> = (0..n)
                .map(|i| {
                    Record::from_rdata(
                        name(&format!("c{i}.test.")),
                        60,
                        RData::CNAME(CNAME(name(&format!("c{}.test.", i + 1)))),
                    )
                })
                .collect();
            records.push(Record::from_rdata(
                name(&format!("c{n}.test.")),
                60,
                RData::A(A::new(192, 0, 2, 1)),
            ));
            interpret(
                server(),
                &name("c0.test."),
                RecordType::A,
                response("c0.test.", RecordType::A, records),
            )
        };
        assert!(matches!(chain(MAX_CNAME_CHAIN), Ok(Answer::Records(r)) if r.len() == 1));
        assert!(matches!(
            chain(MAX_CNAME_CHAIN + 1),
            Err(DnsError::Malformed { .. })
        ));
    }

    #[test]
    fn records_of_other_owners_are_not_taken() {
        let stray = Record::from_rdata(name("evil.test."), 60, RData::A(A::new(192, 0, 2, 66)));
        let m = response("good.test.", RecordType::A, vec![stray]);
        assert_eq!(
            interpret(server(), &name("good.test."), RecordType::A, m),
            Ok(Answer::NoData)
        );
    }

    #[test]
    fn an_answer_must_carry_our_id_and_question() {
        let m = response("good.test.", RecordType::A, vec![]);
        let bytes = m.to_vec().expect("encode");
        assert!(check_response(&bytes, 7, &name("good.test."), RecordType::A).is_ok());
        assert!(check_response(&bytes, 8, &name("good.test."), RecordType::A).is_err());
        assert!(check_response(&bytes, 7, &name("other.test."), RecordType::A).is_err());
        assert!(check_response(&bytes, 7, &name("good.test."), RecordType::AAAA).is_err());
        assert!(check_response(
            &bytes[..bytes.len() - 1],
            7,
            &name("good.test."),
            RecordType::A
        )
        .is_err());
    }
}
