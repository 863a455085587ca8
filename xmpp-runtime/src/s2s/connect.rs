//! Connecting to a remote server's candidates, happy-eyeballs style
//! (RFC 8305 §5): the candidates are tried in the resolver's order, the
//! next one starting when the previous has not connected within
//! [`ATTEMPT_DELAY`] or has failed, the first to connect winning and the
//! others cancelled. A dead first address then costs a quarter second,
//! not a whole connect timeout.

use super::Candidate;
use smol::future::FutureExt;
use smol::Async;
use std::net::TcpStream;
use std::time::Duration;

/// How long an attempt has before the next one starts beside it.
pub(crate) const ATTEMPT_DELAY: Duration = Duration::from_millis(250);

/// Why no candidate connected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum ConnectError {
    /// No candidate to try.
    #[error("no address to connect to")]
    NoCandidates,
    /// Some attempt ran out of time (the others failed).
    #[error("connecting timed out")]
    TimedOut,
    /// Every attempt was refused or failed.
    #[error("connection failed: {0}")]
    Failed(String),
}

/// Connect to the first of `candidates` that answers; each attempt has
/// `timeout`.
pub(crate) async fn connect(
    ex: &smol::Executor<'static>,
    candidates: &[Candidate],
    timeout: Duration,
) -> Result<(Async<TcpStream>, Candidate), ConnectError> {
    if candidates.is_empty() {
        return Err(ConnectError::NoCandidates);
    }
    let (tx, rx) = smol::channel::unbounded();
    // Dropping a task cancels its attempt.
    let mut attempts = Vec::new();
    let mut next = 0;
    let mut outcomes = 0;
    let mut timed_out = false;
    let mut last_error = String::new();
    loop {
        if next < candidates.len() {
            let candidate = candidates[next].clone();
            let tx = tx.clone();
            attempts.push(ex.spawn(async move {
                let addr = candidate.addr;
                let result = async { Async::<TcpStream>::connect(addr).await.map_err(Some) }
                    .or(async {
                        smol::Timer::after(timeout).await;
                        Err(None)
                    })
                    .await;
                let _ = tx.send((candidate, result)).await;
            }));
            next += 1;
        }
        let more = next < candidates.len();
        let outcome = async { rx.recv().await.ok() }
            .or(async {
                if more {
                    smol::Timer::after(ATTEMPT_DELAY).await;
                } else {
                    std::future::pending::<()>().await;
                }
                None
            })
            .await;
        let Some((candidate, result)) = outcome else {
            continue; // the delay passed: start the next attempt
        };
        outcomes += 1;
        match result {
            Ok(tcp) => {
                let _ = tcp.get_ref().set_nodelay(true);
                return Ok((tcp, candidate));
            }
            Err(None) => timed_out = true,
            Err(Some(e)) => {
                tracing::debug!(addr = %candidate.addr, error = %e, "s2s connect failed");
                last_error = format!("{}: {e}", candidate.addr);
            }
        }
        if outcomes == candidates.len() {
            return Err(if timed_out {
                ConnectError::TimedOut
            } else {
                ConnectError::Failed(last_error)
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{SocketAddr, TcpListener};

    fn candidate(addr: SocketAddr) -> Candidate {
        Candidate {
            addr,
            direct_tls: false,
            host: addr.ip().to_string(),
        }
    }

    /// A closed port, by binding and dropping a listener.
    fn closed_port() -> SocketAddr {
        let l = TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| panic!("bind: {e}"));
        let addr = l.local_addr().unwrap_or_else(|e| panic!("addr: {e}"));
        drop(l);
        addr
    }

    #[test]
    fn the_first_candidate_that_answers_wins() {
        let ex = smol::Executor::new();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| panic!("bind: {e}"));
        let open = listener
            .local_addr()
            .unwrap_or_else(|e| panic!("addr: {e}"));
        let candidates = [candidate(closed_port()), candidate(open)];
        let result = smol::block_on(ex.run(connect(&ex, &candidates, Duration::from_secs(5))));
        let (_, won) = result.unwrap_or_else(|e| panic!("connect: {e}"));
        assert_eq!(won.addr, open);
    }

    #[test]
    fn all_refused_is_a_failure_not_a_timeout() {
        let ex = smol::Executor::new();
        let candidates = [candidate(closed_port()), candidate(closed_port())];
        let result = smol::block_on(ex.run(connect(&ex, &candidates, Duration::from_secs(5))));
        assert!(matches!(result, Err(ConnectError::Failed(_))), "{result:?}");
        let none = smol::block_on(ex.run(connect(&ex, &[], Duration::from_secs(1))));
        assert_eq!(none.err(), Some(ConnectError::NoCandidates));
    }
}
