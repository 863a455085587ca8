//! Starting and stopping a server: listeners, executor threads, hub
//! partitions and the admin socket.

use crate::accept::Admission;
use crate::account_ops::AccountOps;
use crate::admin::Admin;
use crate::component::Components;
use crate::conn_storage::ConnStorage;
use crate::connection::C2s;
use crate::federation::Federation;
pub use crate::federation::S2sStatus;
use crate::http::{Endpoints, Http};
use crate::hub_task::spawn_partitions;
use crate::kdf_pool::KdfPool;
use crate::limiters::Limiters;
use crate::mailbox::ConnMsg;
use crate::registry::ConnRegistry;
use crate::reload::{ReloadHookSlot, ServerHandle};
use crate::router::{HubMsg, Router};
use crate::settings::{Settings, SettingsCell};
use crate::sm_registry::SmRegistry;
use crate::storage::Backend;
use crate::tls::config::https_config;
use crate::tls::s2s::S2sTls;
use crate::upload_store::UploadStore;
use smol::channel::Sender;
use smol::Async;
use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;
use xmpp_core::stream::StreamErrorCondition;

pub use crate::config::{
    BoshHttpConfig, ComponentListener, HttpConfig, RuntimeConfig, UploadHttpConfig, WebSocketConfig,
};

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
    /// An s2s or HTTPS TLS configuration could not be built.
    #[error("TLS configuration: {0}")]
    TlsConfig(#[source] crate::tls::TlsError),
    /// An executor thread could not be spawned.
    #[error("cannot spawn thread: {0}")]
    Thread(#[source] std::io::Error),
    /// The upload directory could not be created.
    #[error("cannot use upload directory {path}: {source}")]
    Upload {
        /// The directory.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
}

/// A running server.
pub struct RunningServer {
    /// Where the STARTTLS c2s listener is bound.
    pub c2s_addr: SocketAddr,
    /// Where the direct-TLS listener is bound.
    pub c2s_tls_addr: Option<SocketAddr>,
    /// Where the external component listener is bound (XEP-0114).
    pub component_addr: Option<SocketAddr>,
    /// Where the s2s listener (STARTTLS) is bound, with federation on.
    pub s2s_addr: Option<SocketAddr>,
    /// Where the direct-TLS s2s listener is bound (XEP-0368).
    pub s2s_tls_addr: Option<SocketAddr>,
    federation: Option<Arc<Federation>>,
    /// Where the plain HTTP listener is bound.
    pub http_addr: Option<SocketAddr>,
    /// Where the HTTPS listener is bound.
    pub https_addr: Option<SocketAddr>,
    /// The HTTP listeners' shared state, to tell them of a shutdown.
    http: Option<Arc<Http>>,
    conns: Arc<ConnRegistry>,
    router: Arc<Router>,
    backend: Arc<dyn Backend>,
    handle: ServerHandle,
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
            .field("s2s_addr", &self.s2s_addr)
            .finish_non_exhaustive()
    }
}

/// Start serving. Listeners are bound before this returns, so a caller can
/// connect right away.
pub fn start(cfg: RuntimeConfig, backend: Arc<dyn Backend>) -> Result<RunningServer, StartError> {
    if cfg.c2s_tls_port.is_some() && cfg.tls.is_none() {
        return Err(StartError::NoCertificate);
    }
    // Every store call is timed for /metrics.
    let metrics = Arc::new(crate::metrics::Metrics::default());
    let backend: Arc<dyn Backend> =
        Arc::new(crate::timed_store::Timed::new(backend, metrics.clone()));
    // Uploaded files live outside the store: they go with their account.
    let uploads = match cfg.http.as_ref().and_then(|h| h.upload.as_ref()) {
        Some(u) => Some(Arc::new(
            UploadStore::open(&u.dir, u.retention_ms).map_err(|source| StartError::Upload {
                path: u.dir.clone(),
                source,
            })?,
        )),
        None => None,
    };
    let backend: Arc<dyn Backend> = match &uploads {
        Some(store) => {
            let store = store.clone();
            let hook: crate::storage::on_delete::OnDelete = Arc::new(move |account: &str| {
                let removed = store.delete_owner(account);
                if removed > 0 {
                    tracing::info!(%account, removed, "deleted the account's uploaded files");
                }
            });
            Arc::new(crate::storage::on_delete::DeletionHook::new(backend, hook))
        }
        None => backend,
    };
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
    let s2s_listeners = match &cfg.s2s {
        Some(s2s) => {
            let plain = bind_listener(s2s.port)?;
            let direct = match s2s.tls_port {
                Some(p) if cfg.tls.is_some() => Some(bind_listener(p)?),
                Some(_) => return Err(StartError::NoCertificate),
                None => None,
            };
            Some((plain, direct))
        }
        None => None,
    };
    let local_addr = |l: &Async<TcpListener>| l.get_ref().local_addr().ok();
    let http_listeners = match &cfg.http {
        Some(h) => {
            let plain = h.port.map(bind_listener).transpose()?;
            let secure = match h.tls_port {
                Some(p) if cfg.tls.is_some() => Some(bind_listener(p)?),
                Some(_) => return Err(StartError::NoCertificate),
                None => None,
            };
            Some((plain, secure))
        }
        None => None,
    };
    let http_addr = http_listeners
        .as_ref()
        .and_then(|(l, _)| l.as_ref().and_then(local_addr));
    let https_addr = http_listeners
        .as_ref()
        .and_then(|(_, l)| l.as_ref().and_then(local_addr));
    let s2s_addr = s2s_listeners.as_ref().and_then(|(l, _)| local_addr(l));
    let s2s_tls_addr = s2s_listeners
        .as_ref()
        .and_then(|(_, l)| l.as_ref().and_then(local_addr));

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
    let hosted = cfg.hub.hosted_domains();
    let router = match &cfg.s2s {
        Some(_) => router.with_federation(hosted.clone()),
        None => router,
    };
    let router = Arc::new(router);
    let settings = Arc::new(SettingsCell::new(Settings::new(&cfg)));
    let conns = Arc::new(ConnRegistry::default());
    let limiters = Arc::new(Limiters::new(&cfg.address_limits, &cfg.registration_limit));
    // As many derivations at once as there are executor threads: a login
    // flood then costs at most that many cores.
    let kdf = Arc::new(KdfPool::new(cfg.threads));
    // As many as executor threads: lookups are short, and a write waiting
    // for its fsync holds only one of them.
    let conn_storage =
        ConnStorage::start(backend.clone(), cfg.threads).map_err(StartError::Thread)?;
    let reload_hook = Arc::new(ReloadHookSlot::default());
    let admission = Admission {
        conns: conns.clone(),
        settings: settings.clone(),
        limiters: limiters.clone(),
    };

    spawn_partitions(&executor, &router, &backend, hub_cfg, hub_receivers);
    executor
        .spawn(crate::memory::release_after_peaks(conns.clone()))
        .detach();
    let c2s_ctx = Arc::new(C2s {
        metrics: metrics.clone(),
        settings: settings.clone(),
        conns: conns.clone(),
        router: router.clone(),
        sm_sessions: SmRegistry::default(),
        limiters: limiters.clone(),
        accounts: AccountOps {
            backend: backend.clone(),
            kdf: kdf.clone(),
            limiters: limiters.clone(),
        },
        storage: conn_storage,
    });
    let c2s_listeners = std::iter::once((c2s, false)).chain(c2s_tls.map(|l| (l, true)));
    for (listener, direct_tls) in c2s_listeners {
        executor
            .spawn(crate::connection::accept_loop(
                executor.clone(),
                listener,
                direct_tls,
                admission.clone(),
                c2s_ctx.clone(),
            ))
            .detach();
    }
    if let Some((listener, _, stream_cfg)) = components {
        let ctx = Arc::new(Components {
            conns: conns.clone(),
            router: router.clone(),
            cfg: stream_cfg,
        });
        executor
            .spawn(crate::component::accept_loop(
                executor.clone(),
                listener,
                admission.clone(),
                ctx,
            ))
            .detach();
    }
    let mut federation_started = None;
    if let (Some(s2s), Some((plain, direct))) = (&cfg.s2s, s2s_listeners) {
        let tls = match &cfg.tls {
            Some(t) => Some(Arc::new(
                S2sTls::new(t, s2s.roots.clone()).map_err(StartError::TlsConfig)?,
            )),
            None => None,
        };
        let federation = Federation::new(
            s2s.clone(),
            hosted,
            tls,
            &router,
            executor.clone(),
            metrics.clone(),
        );
        router.federate(Box::new(federation.clone()));
        federation_started = Some(federation.clone());
        for (listener, direct_tls) in
            std::iter::once((plain, false)).chain(direct.map(|l| (l, true)))
        {
            executor
                .spawn(crate::federation::inbound::accept_loop(
                    executor.clone(),
                    listener,
                    direct_tls,
                    admission.clone(),
                    federation.clone(),
                ))
                .detach();
        }
    }
    let mut http_started = None;
    if let (Some(h), Some((plain, secure))) = (&cfg.http, http_listeners) {
        let tls = match (&cfg.tls, &secure) {
            (Some(t), Some(_)) => Some(https_config(t).map_err(StartError::TlsConfig)?),
            _ => None,
        };
        let endpoints = Endpoints {
            router: router.clone(),
            backend: backend.clone(),
            domains: cfg.hub.domains.clone(),
            metrics: metrics.clone(),
            federation: federation_started.clone(),
            metrics_allow: h.metrics_allow.clone(),
            conns: conns.clone(),
            started: std::time::Instant::now(),
            version: cfg.hub.software.1.clone(),
        };
        if let Some(store) = &uploads {
            executor.spawn(purge_uploads(store.clone())).detach();
        }
        let api = h.api_tokens_dir.as_ref().map(|dir| {
            Arc::new(crate::http::api::Api {
                tokens: crate::api_tokens::ApiTokens::new(dir),
                backend: backend.clone(),
                domains: cfg.hub.domains.clone(),
                services: cfg.hub.modules.service_domains(),
                settings: settings.clone(),
                kdf: kdf.clone(),
                router: router.clone(),
                conns: conns.clone(),
                federation: federation_started.clone(),
                started: std::time::Instant::now(),
                version: cfg.hub.software.1.clone(),
            })
        });
        let http = Http::new(
            h.clone(),
            endpoints,
            tls,
            Some(c2s_ctx.clone()),
            executor.clone(),
            uploads.clone(),
            api,
        );
        http_started = Some(http.clone());
        for (listener, secure) in plain
            .map(|l| (l, false))
            .into_iter()
            .chain(secure.map(|l| (l, true)))
        {
            executor
                .spawn(crate::http::accept_loop(
                    executor.clone(),
                    listener,
                    secure,
                    admission.clone(),
                    http.clone(),
                ))
                .detach();
        }
    }
    if let Some(path) = &cfg.admin_socket {
        let listener = crate::admin::bind(path).map_err(|source| StartError::Admin {
            path: path.clone(),
            source,
        })?;
        let admin = Arc::new(Admin {
            backend: backend.clone(),
            domains: cfg.hub.domains.clone(),
            settings: settings.clone(),
            kdf,
            router: router.clone(),
            reload_hook: reload_hook.clone(),
        });
        executor
            .spawn(crate::admin::serve(executor.clone(), listener, admin))
            .detach();
    }
    let handle = ServerHandle {
        settings,
        router: router.clone(),
        limiters,
        // Without the certificate: a replaced key must not stay in memory.
        started: Arc::new(RuntimeConfig {
            tls: None,
            ..cfg.clone()
        }),
        reload_hook,
    };

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
    tracing::info!(%c2s_addr, ?c2s_tls_addr, ?component_addr, ?s2s_addr, ?s2s_tls_addr, ?http_addr, ?https_addr, threads = threads.len(), partitions, "listening");
    Ok(RunningServer {
        c2s_addr,
        c2s_tls_addr,
        component_addr,
        s2s_addr,
        s2s_tls_addr,
        federation: federation_started,
        http_addr,
        https_addr,
        http: http_started,
        conns,
        router,
        backend,
        handle,
        stop,
        threads,
        admin_socket: cfg.admin_socket,
    })
}

impl RunningServer {
    /// Number of open client connections.
    pub fn connections(&self) -> usize {
        self.conns.live()
    }

    /// The domain pairs federation serves now (empty without federation).
    pub fn s2s_status(&self) -> S2sStatus {
        self.federation
            .as_ref()
            .map(|f| f.status())
            .unwrap_or_default()
    }

    /// A handle for reloading the configuration while serving.
    pub fn handle(&self) -> ServerHandle {
        self.handle.clone()
    }

    /// Graceful shutdown: every stream is closed with `<system-shutdown/>`,
    /// connections get up to `grace` to flush, storage is flushed, threads end.
    pub fn shutdown(self, grace: Duration) {
        tracing::info!("shutting down");
        // Load balancers see 503 first; HTTP connections close as they go
        // idle (they count as live connections too).
        if let Some(h) = &self.http {
            h.shut_down();
        }
        self.handle().clear_reload_hook();
        self.router.broadcast(|| HubMsg::Shutdown);
        for m in self.conns.mailboxes() {
            m.send(ConnMsg::Close(Some(StreamErrorCondition::SystemShutdown)));
        }
        // s2s streams count as live connections too: they close now.
        if let Some(f) = &self.federation {
            f.shut_down();
        }
        let deadline = std::time::Instant::now() + grace;
        while self.conns.live() > 0 && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        // Let hub partitions finish: sessions that ended hand their
        // undelivered stanzas to offline storage (loading accounts first).
        self.router.drain(Duration::from_secs(5));
        if let Err(e) = self.backend.flush() {
            tracing::error!(error = %e, "flushing storage failed");
        }
        for _ in &self.threads {
            let _ = self.stop.try_send(());
        }
        self.stop.close();
        for t in self.threads {
            let _ = t.join();
        }
        // Last: storage threads may still hold the backend, but nothing
        // sends them requests any more.
        self.backend.close();
        if let Some(p) = self.admin_socket {
            let _ = std::fs::remove_file(p);
        }
        tracing::info!("stopped");
    }
}

/// Delete expired uploads and abandoned partial ones, at start and then
/// every ten minutes, off the executor threads.
async fn purge_uploads(store: Arc<UploadStore>) {
    loop {
        let s = store.clone();
        let removed = smol::unblock(move || s.purge(crate::clock::now_ms())).await;
        if removed > 0 {
            tracing::info!(removed, "expired uploads deleted");
        }
        smol::Timer::after(std::time::Duration::from_secs(600)).await;
    }
}
