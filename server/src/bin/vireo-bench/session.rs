//! What every scenario shares: the target, the accounts, logging a session
//! in, a sync point, running many logins at once, and a gate that releases
//! many tasks at once.

use crate::procfs::Sample;
use crate::transport::{Client, Transport};
use smol::channel::{Receiver, Sender};
use smol::future::FutureExt;
use smol::Executor;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use xmpp_core::jid::Jid;
use xmpp_core::sasl::{Mechanism, ScramClientKeys};
use xmpp_core::stream::ClientConfig;
use xmpp_runtime::client::TlsMode;

/// The run's target and accounts.
pub struct Ctx {
    /// The executor every task runs on.
    pub ex: Arc<Executor<'static>>,
    /// The server (its c2s port, or its HTTP port for WebSocket).
    pub addr: SocketAddr,
    /// TCP or WebSocket.
    pub transport: Transport,
    /// The accounts' domain.
    pub domain: String,
    /// How connections are secured.
    pub tls: TlsMode,
    /// Account name prefix.
    pub prefix: String,
    /// The accounts' password.
    pub password: String,
    /// The SASL mechanism.
    pub mechanism: Mechanism,
    /// The server's pid, for /proc figures.
    pub server_pid: Option<u32>,
    /// How long without progress before giving up.
    pub timeout: Duration,
    /// Logins at once while setting up (outside measured phases).
    pub setup_concurrency: usize,
}

impl Ctx {
    /// The same accounts on another server: `port` on the same host,
    /// serving `domain` (a federation run's receiving side).
    pub fn elsewhere(&self, port: u16, domain: &str, server_pid: Option<u32>) -> Ctx {
        Ctx {
            ex: self.ex.clone(),
            addr: SocketAddr::new(self.addr.ip(), port),
            transport: self.transport.clone(),
            domain: domain.to_owned(),
            tls: self.tls,
            prefix: self.prefix.clone(),
            password: self.password.clone(),
            mechanism: self.mechanism,
            server_pid,
            timeout: self.timeout,
            setup_concurrency: self.setup_concurrency,
        }
    }

    /// The localpart of account `i`.
    pub fn user(&self, i: usize) -> String {
        format!("{}{i}", self.prefix)
    }

    /// The bare JID of account `i`.
    pub fn bare(&self, i: usize) -> String {
        format!("{}{i}@{}", self.prefix, self.domain)
    }

    /// Observe the server now, with a progress count.
    pub fn sample(&self, done: u64) -> Sample {
        Sample::take(self.server_pid, done)
    }

    /// Log account `i` in (connect, TLS as configured, SASL, bind to a
    /// server-chosen resource).
    pub async fn login(&self, i: usize) -> Result<Client, String> {
        self.login_with(i, None).await
    }

    /// [`Ctx::login`], offering SCRAM keys cached from an earlier login of
    /// the account (RFC 5802 §5.1) when given.
    pub async fn login_with(
        &self,
        i: usize,
        keys: Option<ScramClientKeys>,
    ) -> Result<Client, String> {
        let bare = self.bare(i);
        let jid = Jid::parse(&bare).map_err(|e| format!("bad account {bare}: {e}"))?;
        let mut cfg = ClientConfig::new(jid, self.password.clone());
        cfg.mechanisms = vec![self.mechanism];
        cfg.allow_plain_unencrypted = self.mechanism == Mechanism::Plain;
        cfg.scram_cache = keys;
        let connect = async {
            self.transport
                .connect(self.addr, cfg, self.tls)
                .await
                .map_err(|e| format!("login of {bare} failed: {e}"))
        };
        let limit = self.timeout;
        connect
            .or(async {
                smol::Timer::after(limit).await;
                Err(format!("login of {bare} timed out after {limit:?}"))
            })
            .await
    }

    /// Log account `i` in, send initial presence and wait until the server
    /// has processed it ([`sync`]).
    pub async fn login_present(&self, i: usize) -> Result<Client, String> {
        let mut c = self.login(i).await?;
        c.queue_raw(b"<presence/>");
        self.sync(&mut c)
            .await
            .map_err(|e| format!("{}: {e}", self.bare(i)))?;
        Ok(c)
    }

    /// Ping the server (XEP-0199) and wait for the answer: a session's
    /// stanzas are processed in order, so everything sent before has been
    /// handled. Other stanzas received meanwhile are discarded.
    pub async fn sync(&self, c: &mut Client) -> Result<(), String> {
        let mut ping = Vec::with_capacity(128);
        ping.extend_from_slice(b"<iq type='get' id='vb-sync' to='");
        xmpp_core::xml::escape_attr(&self.domain, &mut ping);
        ping.extend_from_slice(b"'><ping xmlns='urn:xmpp:ping'/></iq>");
        c.queue_raw(&ping);
        c.flush().await.map_err(|e| e.to_string())?;
        let limit = self.timeout;
        let wait = async {
            loop {
                let mut found = false;
                for el in c.take_received() {
                    found |= el.name == "iq" && el.attr("id") == Some("vb-sync");
                }
                if found {
                    return Ok(());
                }
                c.read_some().await.map_err(|e| e.to_string())?;
            }
        };
        wait.or(async {
            smol::Timer::after(limit).await;
            Err(format!("no answer to a ping within {limit:?}"))
        })
        .await
    }
}

/// Run `f(0)..f(n-1)` with at most `concurrency` at once on the executor;
/// the results in index order. The first error stops new work and is
/// returned.
pub async fn map_limited<T, F, Fut>(
    ex: &Arc<Executor<'static>>,
    n: usize,
    concurrency: usize,
    f: F,
) -> Result<Vec<T>, String>
where
    T: Send + 'static,
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<T, String>> + Send + 'static,
{
    let f = Arc::new(f);
    let next = Arc::new(AtomicUsize::new(0));
    let failed = Arc::new(AtomicBool::new(false));
    let workers = concurrency.clamp(1, n.max(1));
    let tasks: Vec<_> = (0..workers)
        .map(|_| {
            let (f, next, failed) = (f.clone(), next.clone(), failed.clone());
            ex.spawn(async move {
                let mut got = Vec::new();
                loop {
                    if failed.load(Ordering::Relaxed) {
                        return Ok(got);
                    }
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= n {
                        return Ok(got);
                    }
                    match f(i).await {
                        Ok(t) => got.push((i, t)),
                        Err(e) => {
                            failed.store(true, Ordering::Relaxed);
                            return Err(e);
                        }
                    }
                }
            })
        })
        .collect();
    let mut all = Vec::with_capacity(n);
    let mut first_error = None;
    for t in tasks {
        match t.await {
            Ok(got) => all.extend(got),
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
    }
    if let Some(e) = first_error {
        return Err(e);
    }
    all.sort_unstable_by_key(|(i, _)| *i);
    Ok(all.into_iter().map(|(_, t)| t).collect())
}

/// Close many sessions at once, best effort (the server sees a clean
/// `</stream:stream>`), at most `concurrency` at a time.
pub async fn close_all(ex: &Arc<Executor<'static>>, clients: Vec<Client>, concurrency: usize) {
    let n = clients.len();
    let slots: Arc<Vec<Mutex<Option<Client>>>> =
        Arc::new(clients.into_iter().map(|c| Mutex::new(Some(c))).collect());
    let _ = map_limited(ex, n, concurrency, move |i| {
        let slots = slots.clone();
        async move {
            let c = slots[i].lock().ok().and_then(|mut s| s.take());
            if let Some(c) = c {
                let _ = c
                    .close()
                    .or(async {
                        smol::Timer::after(Duration::from_secs(5)).await;
                        Ok(())
                    })
                    .await;
            }
            Ok(())
        }
    })
    .await;
}

/// Releases every waiting task at once when `target` tasks have arrived.
/// Waiting is cancel-safe, so it can be raced against reading a socket.
pub struct Gate {
    arrived: AtomicUsize,
    target: usize,
    open: Mutex<Option<Sender<()>>>,
    wait: Receiver<()>,
}

impl Gate {
    /// A gate for `target` arrivals.
    pub fn new(target: usize) -> Arc<Gate> {
        let (tx, rx) = smol::channel::bounded(1);
        let g = Gate {
            arrived: AtomicUsize::new(0),
            target,
            open: Mutex::new(Some(tx)),
            wait: rx,
        };
        if target == 0 {
            g.release();
        }
        Arc::new(g)
    }

    /// Count one arrival; true for the one that opened the gate.
    pub fn arrive(&self) -> bool {
        if self.arrived.fetch_add(1, Ordering::AcqRel) + 1 == self.target {
            self.release();
            return true;
        }
        false
    }

    /// How many arrived so far.
    pub fn arrived(&self) -> usize {
        self.arrived.load(Ordering::Acquire)
    }

    fn release(&self) {
        if let Ok(mut open) = self.open.lock() {
            open.take();
        }
    }

    /// Wait until the gate is open.
    pub async fn wait(&self) {
        while self.wait.recv().await.is_ok() {}
    }
}

/// Register accounts `0..n` by XEP-0077; `(created, already existing)`.
pub async fn register_all(ctx: &Arc<Ctx>, n: usize) -> Result<(usize, usize), String> {
    let c = ctx.clone();
    let results = map_limited(&ctx.ex, n, ctx.setup_concurrency.min(32), move |i| {
        let c = c.clone();
        async move {
            let user = c.user(i);
            let limit = c.timeout;
            let register = async {
                c.transport
                    .register(c.addr, &c.domain, &user, &c.password, c.tls)
                    .await
                    .map_err(|e| format!("registration of {user} failed: {e}"))
            };
            register
                .or(async {
                    smol::Timer::after(limit).await;
                    Err(format!("registration of {user} timed out"))
                })
                .await
        }
    })
    .await?;
    let created = results
        .iter()
        .filter(|r| **r == xmpp_core::stream::client::Registration::Created)
        .count();
    Ok((created, results.len() - created))
}
