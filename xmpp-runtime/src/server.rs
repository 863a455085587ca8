//! Starting and stopping a server: listeners, executor threads, hub
//! partitions and the admin socket.

pub use crate::config::{ComponentListener, RuntimeConfig};
use crate::hub_task::spawn_partitions;
use crate::mailbox::{ConnMsg, Mailbox};
use crate::reload::ServerHandle;
use crate::router::{HubMsg, Router};
use crate::storage::Backend;
use smol::channel::Sender;
use smol::Async;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::net::TcpListener;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::thread::JoinHandle;
use std::time::Duration;
use xmpp_core::hub::ConnId;
use xmpp_core::spare::ReleaseSpare;
use xmpp_core::stream::StreamErrorCondition;

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// A listener could not bind.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// Direct TLS was asked for without a certificate.
    #[error("direct TLS port configured but no certificate is available")]
    NoCertificate,
    /// The admin socket could not be created.
    #[error("cannot create admin socket {path}: {source}")]
    Admin {
        /// Its path.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// An executor thread could not be spawned.
    #[error("cannot spawn thread: {0}")]
    Thread(#[source] std::io::Error),
}

/// State shared by every task of one server.
pub(crate) struct Shared {
    /// What new connections are served with (swapped whole by a reload; a
    /// connection keeps the snapshot it started with).
    pub(crate) settings: crate::settings::SettingsCell,
    pub(crate) backend: Arc<dyn Backend>,
    pub(crate) router: Router,
    pub(crate) conns: Mutex<HashMap<ConnId, Arc<Mailbox>>>,
    /// Resumable sessions (XEP-0198) and the connections holding them.
    pub(crate) sm_sessions: crate::sm_registry::SmRegistry,
    pub(crate) next_conn: AtomicU64,
    pub(crate) live: AtomicUsize,
    pub(crate) domains: Vec<String>,
    /// In-band registrations per client address (XEP-0077).
    pub(crate) registrations: crate::registration::Registrations,
    /// Unauthenticated connections and openings per client address.
    pub(crate) conn_gate: Arc<crate::conn_gate::ConnectionGate>,
    /// Refused connections, summed up in the log (`refusal_log.rs`).
    pub(crate) refusals: crate::refusal_log::RefusalLog,
    /// Failed authentications per address and per account.
    pub(crate) auth_throttle: crate::auth_throttle::AuthThrottle,
    /// Where PBKDF2 runs.
    pub(crate) kdf: crate::kdf_pool::KdfPool,
    /// Where connections' storage requests run.
    pub(crate) conn_storage: crate::conn_storage::ConnStorage,
    /// The configuration the server started with: a reload compares the
    /// settings that need a restart against it.
    pub(crate) started: RuntimeConfig,
    /// What the admin socket's `reload` command runs.
    pub(crate) reload_hook: RwLock<Option<crate::reload::ReloadHook>>,
}

impl Shared {
    /// Lock the connection registry, recovering from a poisoned lock (a
    /// panicking task must not take the whole server down).
    pub(crate) fn conns(&self) -> std::sync::MutexGuard<'_, HashMap<ConnId, Arc<Mailbox>>> {
        self.conns.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A connection ended (or became another one): forget its mailbox.
    pub(crate) fn forget_conn(&self, conn: ConnId) {
        let mut conns = self.conns();
        conns.remove(&conn);
        conns.release_spare();
    }

    /// The admin socket's reload hook, if one is installed.
    pub(crate) fn reload_hook(&self) -> Option<crate::reload::ReloadHook> {
        self.reload_hook
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

/// A running server.
pub struct RunningServer {
    /// Where the STARTTLS c2s listener is bound.
    pub c2s_addr: SocketAddr,
    /// Where the direct-TLS listener is bound.
    pub c2s_tls_addr: Option<SocketAddr>,
    /// Where the external component listener is bound (XEP-0114).
    pub component_addr: Option<SocketAddr>,
    shared: Arc<Shared>,
    stop: Sender<()>,
    threads: Vec<JoinHandle<()>>,
    admin_socket: Option<PathBuf>,
}

impl std::fmt::Debug for RunningServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunningServer")
            .field("c2s_addr", &self.c2s_addr)
            .field("c2s_tls_addr", &self.c2s_tls_addr)
            .field("component_addr", &self.component_addr)
            .finish_non_exhaustive()
    }
}

/// Start serving. Listeners are bound before this returns, so a caller can
/// connect right away.
pub fn start(cfg: RuntimeConfig, backend: Arc<dyn Backend>) -> Result<RunningServer, StartError> {
    if cfg.c2s_tls_port.is_some() && cfg.tls.is_none() {
        return Err(StartError::NoCertificate);
    }
    let bind_listener = |port: u16| -> Result<Async<TcpListener>, StartError> {
        let addr = SocketAddr::new(cfg.bind, port);
        let std_listener = std::net::TcpListener::bind(addr)
            .map_err(|source| StartError::Bind { addr, source })?;
        Async::new(std_listener).map_err(|source| StartError::Bind { addr, source })
    };
    let c2s = bind_listener(cfg.c2s_port)?;
    let c2s_tls = cfg.c2s_tls_port.map(bind_listener).transpose()?;
    let c2s_addr = c2s
        .get_ref()
        .local_addr()
        .map_err(|source| StartError::Bind {
            addr: SocketAddr::new(cfg.bind, cfg.c2s_port),
            source,
        })?;
    let c2s_tls_addr = c2s_tls.as_ref().and_then(|l| l.get_ref().local_addr().ok());
    let components = match &cfg.components {
        Some(c) => {
            let addr = SocketAddr::new(c.bind, c.port);
            let std_listener = std::net::TcpListener::bind(addr)
                .map_err(|source| StartError::Bind { addr, source })?;
            let listener =
                Async::new(std_listener).map_err(|source| StartError::Bind { addr, source })?;
            let local = listener.get_ref().local_addr().ok();
            Some((listener, local, Arc::new(c.stream.clone())))
        }
        None => None,
    };
    let component_addr = components.as_ref().and_then(|(_, a, _)| *a);

    let executor: Arc<smol::Executor<'static>> = Arc::new(smol::Executor::new());
    let partitions = cfg.partitions.max(1);
    let hub_cfg = Arc::new(cfg.hub.clone());
    let component_domains = cfg
        .components
        .iter()
        .flat_map(|c| c.stream.components.iter().map(|x| x.domain.clone()))
        .collect();
    let (router, hub_receivers) =
        Router::new(partitions, component_domains, cfg.partition_queue_bytes);
    let shared = Arc::new(Shared {
        settings: crate::settings::SettingsCell::new(crate::settings::Settings::new(&cfg)),
        backend: backend.clone(),
        router,
        conns: Mutex::new(HashMap::new()),
        sm_sessions: Default::default(),
        next_conn: AtomicU64::new(1),
        live: AtomicUsize::new(0),
        domains: cfg.hub.domains.clone(),
        registrations: crate::registration::Registrations::new(&cfg.registration_limit),
        conn_gate: Arc::new(crate::conn_gate::ConnectionGate::new(&cfg.address_limits)),
        refusals: crate::refusal_log::RefusalLog::default(),
        auth_throttle: crate::auth_throttle::AuthThrottle::new(&cfg.address_limits),
        // As many derivations at once as there are executor threads: a
        // login flood then costs at most that many cores.
        kdf: crate::kdf_pool::KdfPool::new(cfg.threads),
        // As many as executor threads: lookups are short, and a write
        // waiting for its fsync holds only one of them.
        conn_storage: crate::conn_storage::ConnStorage::start(backend.clone(), cfg.threads)
            .map_err(StartError::Thread)?,
        // Without the certificate: a replaced key must not stay in memory.
        started: RuntimeConfig {
            tls: None,
            ..cfg.clone()
        },
        reload_hook: RwLock::new(None),
    });
    spawn_partitions(&executor, &shared, hub_cfg, hub_receivers);
    executor
        .spawn(crate::memory::release_after_peaks(shared.clone()))
        .detach();

    executor
        .spawn(crate::connection::accept_loop(
            executor.clone(),
            c2s,
            false,
            shared.clone(),
        ))
        .detach();
    if let Some(l) = c2s_tls {
        executor
            .spawn(crate::connection::accept_loop(
                executor.clone(),
                l,
                true,
                shared.clone(),
            ))
            .detach();
    }
    if let Some((listener, _, stream_cfg)) = components {
        executor
            .spawn(crate::component::accept_loop(
                executor.clone(),
                listener,
                shared.clone(),
                stream_cfg,
            ))
            .detach();
    }
    if let Some(path) = &cfg.admin_socket {
        let listener = crate::admin::bind(path).map_err(|source| StartError::Admin {
            path: path.clone(),
            source,
        })?;
        executor
            .spawn(crate::admin::serve(
                executor.clone(),
                listener,
                shared.clone(),
            ))
            .detach();
    }

    let (stop, stop_rx) = smol::channel::bounded::<()>(1);
    let mut threads = Vec::new();
    for i in 0..cfg.threads.max(1) {
        let ex = executor.clone();
        let rx = stop_rx.clone();
        let t = std::thread::Builder::new()
            .name(format!("vireo-{i}"))
            .spawn(move || {
                smol::block_on(ex.run(async move {
                    let _ = rx.recv().await;
                }))
            })
            .map_err(StartError::Thread)?;
        threads.push(t);
    }
    tracing::info!(%c2s_addr, ?c2s_tls_addr, ?component_addr, threads = threads.len(), partitions, "listening");
    Ok(RunningServer {
        c2s_addr,
        c2s_tls_addr,
        component_addr,
        shared,
        stop,
        threads,
        admin_socket: cfg.admin_socket,
    })
}

impl RunningServer {
    /// Number of open client connections.
    pub fn connections(&self) -> usize {
        self.shared.live.load(Ordering::Relaxed)
    }

    /// A handle for reloading the configuration while serving.
    pub fn handle(&self) -> ServerHandle {
        ServerHandle {
            shared: self.shared.clone(),
        }
    }

    /// Graceful shutdown: every stream is closed with `<system-shutdown/>`,
    /// connections get up to `grace` to flush, storage is flushed, threads end.
    pub fn shutdown(self, grace: Duration) {
        tracing::info!("shutting down");
        self.handle().clear_reload_hook();
        self.shared.router.broadcast(|| HubMsg::Shutdown);
        let mailboxes: Vec<Arc<Mailbox>> = self.shared.conns().values().cloned().collect();
        for m in mailboxes {
            m.send(ConnMsg::Close(Some(StreamErrorCondition::SystemShutdown)));
        }
        let deadline = std::time::Instant::now() + grace;
        while self.shared.live.load(Ordering::Relaxed) > 0 && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        // Let hub partitions finish: sessions that ended hand their
        // undelivered stanzas to offline storage (loading accounts first).
        self.shared.router.drain(Duration::from_secs(5));
        if let Err(e) = self.shared.backend.flush() {
            tracing::error!(error = %e, "flushing storage failed");
        }
        for _ in &self.threads {
            let _ = self.stop.try_send(());
        }
        self.stop.close();
        for t in self.threads {
            let _ = t.join();
        }
        if let Some(p) = self.admin_socket {
            let _ = std::fs::remove_file(p);
        }
        tracing::info!("stopped");
    }
}
