//! The accept loop shared by the client and component listeners: the
//! connection limit, TCP_NODELAY, the live-connection count, and backing
//! off when accepting fails.

use crate::limiters::Limiters;
use crate::registry::ConnRegistry;
use crate::settings::SettingsCell;
use smol::Async;
use std::future::Future;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::time::Duration;

/// What an accept loop checks before it serves a connection.
#[derive(Clone)]
pub(crate) struct Admission {
    pub(crate) conns: Arc<ConnRegistry>,
    /// For the connection limit in force.
    pub(crate) settings: Arc<SettingsCell>,
    /// For the refusal log.
    pub(crate) limiters: Arc<Limiters>,
}

/// Accept connections until the listener fails; each runs `serve` in its
/// own task. `kind` names the listener in logs.
pub(crate) async fn accept_loop<F, Fut>(
    ex: Arc<smol::Executor<'static>>,
    listener: Async<TcpListener>,
    admission: Admission,
    kind: &'static str,
    serve: F,
) where
    F: Fn(Async<TcpStream>, SocketAddr) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    loop {
        match listener.accept().await {
            Ok((stream, peer)) => {
                if admission.conns.live() >= admission.settings.current().max_connections {
                    admission.limiters.refusals.refused(
                        Some(peer.ip()),
                        &format_args!("{kind}: max_connections reached"),
                    );
                    continue;
                }
                let _ = stream.get_ref().set_nodelay(true);
                let task = serve(stream, peer);
                let live = admission.conns.count();
                ex.spawn(async move {
                    task.await;
                    drop(live);
                })
                .detach();
            }
            Err(e) => {
                // EMFILE and friends: back off instead of spinning.
                tracing::warn!(error = %e, kind, "accept failed");
                smol::Timer::after(Duration::from_millis(50)).await;
            }
        }
    }
}
