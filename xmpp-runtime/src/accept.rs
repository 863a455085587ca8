//! The accept loop shared by the client and component listeners: the
//! connection limit, TCP_NODELAY, the live-connection count, and backing
//! off when accepting fails.

use crate::server::Shared;
use smol::Async;
use std::future::Future;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

/// Accept connections until the listener fails; each runs `serve` in its
/// own task. `kind` names the listener in logs.
pub(crate) async fn accept_loop<F, Fut>(
    ex: Arc<smol::Executor<'static>>,
    listener: Async<TcpListener>,
    shared: Arc<Shared>,
    kind: &'static str,
    serve: F,
) where
    F: Fn(Async<TcpStream>, SocketAddr, Arc<Shared>) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    loop {
        match listener.accept().await {
            Ok((stream, peer)) => {
                if shared.live.load(Ordering::Relaxed) >= shared.settings.current().max_connections
                {
                    shared.refusals.refused(
                        Some(peer.ip()),
                        &format_args!("{kind}: max_connections reached"),
                    );
                    continue;
                }
                let _ = stream.get_ref().set_nodelay(true);
                let task = serve(stream, peer, shared.clone());
                let shared2 = shared.clone();
                shared2.live.fetch_add(1, Ordering::Relaxed);
                ex.spawn(async move {
                    task.await;
                    shared2.live.fetch_sub(1, Ordering::Relaxed);
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
