//! Probing a remote domain's s2s service the way an outgoing stream will
//! meet it (`vireo check s2s`, like `prosodyctl check connectivity`):
//! connect to the resolved candidates in order, open a `jabber:server`
//! stream, take STARTTLS (or direct TLS for an `_xmpps-server` candidate),
//! and judge the certificate the peer presents: its chain against the
//! trusted roots, and its identities against the domain (RFC 6125,
//! [`crate::tls::peer_identity`]). Then the stream is closed; no dialback
//! is attempted (the peer would call back a server that is not there).
//!
//! The handshake itself accepts any certificate (handshake signatures
//! still verified, `tls::config::accepting_any_config`) so that a bad one
//! can be described rather than only refused; the verdict is computed from
//! the captured chain afterwards.

use super::Candidate;
use crate::tls::config::{accepting_any_config, CapturedChain, VERSIONS};
use crate::tls::peer_trust::judge_chain;
pub use crate::tls::peer_trust::CertVerdict;
use futures_rustls::TlsConnector;
use rustls::pki_types::ServerName;
use rustls::RootCertStore;
use smol::future::FutureExt;
use smol::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use smol::net::TcpStream;
use std::sync::Arc;
use std::time::Duration;
use xmpp_core::xml::{Element, Limits, StreamEvent, StreamParser};

/// The trusted roots a probe judges chains with.
pub type RootStore = RootCertStore;

const TLS_NS: &str = "urn:ietf:params:xml:ns:xmpp-tls";
const STREAM_NS: &str = "http://etherx.jabber.org/streams";
const DIALBACK_FEATURE: &str = "urn:xmpp:features:dialback";
/// Bytes read from a peer before its features: a header and features are
/// a few hundred bytes; more means something else listens there.
const MAX_READ: usize = 64 * 1024;

/// What to probe with.
#[derive(Debug, Clone)]
pub struct ProbeSettings {
    /// Our domain, the stream's `from`.
    pub from: String,
    /// Trusted roots for the peer's chain.
    pub roots: Arc<RootCertStore>,
    /// Per connection attempt, and per read.
    pub timeout: Duration,
}

/// One connection attempt.
#[derive(Debug, Clone)]
pub struct Attempt {
    /// Where.
    pub candidate: Candidate,
    /// `Ok` when TCP connected; why not otherwise.
    pub connected: Result<(), String>,
}

/// The stream's features before TLS.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Features {
    /// STARTTLS offered.
    pub starttls: bool,
    /// STARTTLS marked `<required/>`.
    pub starttls_required: bool,
    /// `urn:xmpp:features:dialback` offered.
    pub dialback: bool,
}

/// What a probe found.
#[derive(Debug, Clone, Default)]
pub struct ProbeReport {
    /// Every connection attempt, in order; the last connected one was
    /// probed.
    pub attempts: Vec<Attempt>,
    /// The features of the plain stream (not for a direct-TLS candidate).
    pub features: Option<Features>,
    /// The TLS session: protocol version and cipher suite, or why the
    /// handshake failed.
    pub tls: Option<Result<String, String>>,
    /// The certificate's verdict, when TLS got that far.
    pub certificate: Option<CertVerdict>,
    /// The features after TLS.
    pub secure_features: Option<Features>,
    /// Where the dialogue stopped short, if it did.
    pub error: Option<String>,
}

impl ProbeReport {
    /// Whether a federating server could use this peer: connected, TLS
    /// established, and the certificate trusted for the domain.
    pub fn ok(&self) -> bool {
        matches!(self.tls, Some(Ok(_)))
            && self
                .certificate
                .as_ref()
                .is_some_and(|c| c.chain.is_ok() && c.identity.is_ok())
    }
}

/// The trusted roots in the PEM file at `path` (a CA bundle, or one CA).
pub fn load_roots(path: &std::path::Path) -> Result<Arc<RootCertStore>, String> {
    let mut roots = RootCertStore::empty();
    let certs = crate::tls::config::load_certs(path).map_err(|e| e.to_string())?;
    for cert in certs {
        roots
            .add(cert)
            .map_err(|e| format!("{}: {e}", path.display()))?;
    }
    Ok(Arc::new(roots))
}

/// Probe `domain` at `candidates` (in order, until one connects).
pub async fn probe(
    domain: &str,
    candidates: &[Candidate],
    settings: &ProbeSettings,
) -> ProbeReport {
    let mut report = ProbeReport::default();
    for candidate in candidates {
        let connected = with_timeout(settings.timeout, async {
            TcpStream::connect(candidate.addr)
                .await
                .map_err(|e| e.to_string())
        })
        .await;
        let (tcp, outcome) = match connected {
            Ok(tcp) => (Some(tcp), Ok(())),
            Err(e) => (None, Err(e)),
        };
        report.attempts.push(Attempt {
            candidate: candidate.clone(),
            connected: outcome,
        });
        if let Some(tcp) = tcp {
            if let Err(e) = dialogue(domain, candidate.direct_tls, tcp, settings, &mut report).await
            {
                report.error = Some(e);
            }
            return report;
        }
    }
    report
}

async fn with_timeout<T>(
    limit: Duration,
    f: impl std::future::Future<Output = Result<T, String>>,
) -> Result<T, String> {
    f.or(async {
        smol::Timer::after(limit).await;
        Err(format!("no answer within {} s", limit.as_secs_f32()))
    })
    .await
}

/// The stream on one connection: features, STARTTLS, TLS, features again.
async fn dialogue(
    domain: &str,
    direct_tls: bool,
    mut tcp: TcpStream,
    settings: &ProbeSettings,
    report: &mut ProbeReport,
) -> Result<(), String> {
    if !direct_tls {
        let (features, mut parser) = open(&mut tcp, domain, settings).await?;
        report.features = Some(features.clone());
        if !features.starttls {
            return Err("the peer does not offer STARTTLS".into());
        }
        write(&mut tcp, format!("<starttls xmlns='{TLS_NS}'/>").as_bytes()).await?;
        let answer = next_element(&mut tcp, &mut parser, settings.timeout).await?;
        if !answer.is(TLS_NS, "proceed") {
            return Err(format!("STARTTLS refused: <{}/>", answer.name));
        }
    }
    let captured = Arc::new(CapturedChain::default());
    let mut config =
        accepting_any_config(VERSIONS, Some(Arc::clone(&captured))).map_err(|e| e.to_string())?;
    // XEP-0368: the s2s ALPN id (harmless on STARTTLS).
    config.alpn_protocols = vec![b"xmpp-server".to_vec()];
    let config = Arc::new(config);
    let name = ServerName::try_from(domain.to_owned()).map_err(|e| format!("{domain}: {e}"))?;
    let handshake = with_timeout(settings.timeout, async {
        TlsConnector::from(config)
            .connect(name.clone(), tcp)
            .await
            .map_err(|e| e.to_string())
    })
    .await;
    let mut tls = match handshake {
        Ok(t) => t,
        Err(e) => {
            report.tls = Some(Err(e.clone()));
            return Err(format!("TLS handshake: {e}"));
        }
    };
    let session = tls.get_ref().1;
    let version = session
        .protocol_version()
        .map_or_else(|| "?".to_owned(), |v| format!("{v:?}"));
    let suite = session
        .negotiated_cipher_suite()
        .map_or_else(|| "?".to_owned(), |c| format!("{:?}", c.suite()));
    report.tls = Some(Ok(format!("{version}, {suite}")));
    report.certificate = captured.verdict(domain, &settings.roots);
    report.secure_features = Some(open(&mut tls, domain, settings).await?.0);
    let _ = tls.write_all(b"</stream:stream>").await;
    let _ = tls.close().await;
    Ok(())
}

/// Open a stream and read the peer's header and features; the parser
/// goes on reading the stream.
async fn open<S: AsyncRead + AsyncWrite + Unpin>(
    io: &mut S,
    domain: &str,
    settings: &ProbeSettings,
) -> Result<(Features, StreamParser), String> {
    let header = xmpp_core::s2s::stream_header(&settings.from, domain);
    write(io, &header).await?;
    let mut parser = StreamParser::new(Limits::default());
    let features = next_element(io, &mut parser, settings.timeout).await?;
    if features.is(STREAM_NS, "error") {
        let condition = features
            .first_element()
            .map(|c| c.name.clone())
            .unwrap_or_default();
        return Err(format!("stream error from the peer: {condition}"));
    }
    if !features.is(STREAM_NS, "features") {
        return Err(format!("expected features, got <{}/>", features.name));
    }
    let starttls = features.child(TLS_NS, "starttls");
    let found = Features {
        starttls: starttls.is_some(),
        starttls_required: starttls.is_some_and(|t| t.child(TLS_NS, "required").is_some()),
        dialback: features.child(DIALBACK_FEATURE, "dialback").is_some(),
    };
    Ok((found, parser))
}

async fn write<S: AsyncWrite + Unpin>(io: &mut S, bytes: &[u8]) -> Result<(), String> {
    io.write_all(bytes).await.map_err(|e| e.to_string())?;
    io.flush().await.map_err(|e| e.to_string())
}

/// The next top-level element (the stream header skipped).
async fn next_element<S: AsyncRead + Unpin>(
    io: &mut S,
    parser: &mut StreamParser,
    limit: Duration,
) -> Result<Element, String> {
    let mut read = 0usize;
    let mut buf = [0u8; 4096];
    loop {
        match parser.next_event() {
            Ok(Some(StreamEvent::Stanza(el))) => return Ok(el),
            Ok(Some(StreamEvent::Open(_))) => continue,
            Ok(Some(StreamEvent::Close)) => return Err("the peer closed the stream".into()),
            Ok(None) => {}
            Err(e) => return Err(format!("the peer's XML: {e}")),
        }
        if read > MAX_READ {
            return Err("no features in the first 64 KiB".into());
        }
        let n = with_timeout(limit, async {
            io.read(&mut buf).await.map_err(|e| e.to_string())
        })
        .await?;
        if n == 0 {
            return Err("the peer closed the connection".into());
        }
        read += n;
        parser.feed(&buf[..n]);
    }
}

/// Judging what [`accepting_any_config`] captured.
impl CapturedChain {
    /// The verdict on what was captured.
    fn verdict(&self, domain: &str, roots: &Arc<RootCertStore>) -> Option<CertVerdict> {
        let (end_entity, intermediates) = self.get()?;
        Some(judge_chain(domain, &end_entity, &intermediates, roots))
    }
}
