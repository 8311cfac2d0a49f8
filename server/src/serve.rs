//! The HTTP/1.1 accept loop. axum's own `serve` offers no header-read timeout, so a client that
//! sends half a request line and goes quiet (slowloris) would hold its connection forever;
//! here every connection gets `header_timeout` to send its headers (hyper then closes it) and
//! the router's body timeout bounds the body. On stop: no new connections, idle ones closed,
//! in-flight requests finished.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::pin;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{ConnectInfo, Request};
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio_util::task::TaskTracker;
use tower::ServiceExt;

use crate::background::Background;

/// Serves `router` on `listener` until `stop` completes, then lets in-flight requests finish.
/// Handlers see the peer's address as `ConnectInfo<SocketAddr>`.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    header_timeout: Duration,
    background: &Background,
    stop: impl std::future::Future<Output = ()>,
) {
    let connections = TaskTracker::new();
    let mut stop = pin!(stop);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(err) => {
                    // Out of file descriptors and the like: wait a moment rather than spin.
                    tracing::warn!(error = %err, "cannot accept a connection");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut stop => break,
        };
        // A small write (a WebSocket event, a short answer) leaves at once instead of waiting
        // for the peer's ACK of the previous one (Nagle + delayed ACK).
        if let Err(err) = stream.set_nodelay(true) {
            tracing::debug!(error = %err, "TCP_NODELAY not set");
        }
        let service = router
            .clone()
            .map_request(move |request: Request<Incoming>| {
                let mut request = request.map(Body::new);
                request.extensions_mut().insert(ConnectInfo(peer));
                request
            });
        let stopping = background.stopping();
        background.spawn(connections.track_future(connection(
            TokioIo::new(stream),
            TowerToHyperService::new(service),
            header_timeout,
            stopping,
        )));
    }
    drop(listener);
    connections.close();
    connections.wait().await;
}

async fn connection<S>(
    io: TokioIo<tokio::net::TcpStream>,
    service: TowerToHyperService<S>,
    header_timeout: Duration,
    stopping: impl std::future::Future<Output = ()>,
) where
    S: tower::Service<Request<Incoming>, Response = axum::response::Response, Error = Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
{
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(header_timeout);
    let mut connection = pin!(builder.serve_connection(io, service).with_upgrades());
    let mut stopping = pin!(stopping);
    let mut shutting_down = false;
    loop {
        tokio::select! {
            result = connection.as_mut() => {
                if let Err(err) = result {
                    // Timeouts, resets and garbage from clients: theirs to worry about.
                    tracing::debug!(error = %err, "connection ended with an error");
                }
                return;
            }
            () = &mut stopping, if !shutting_down => {
                shutting_down = true;
                connection.as_mut().graceful_shutdown();
            }
        }
    }
}

/// The peer's address, for handlers that want it (rate limiting by client).
pub type Peer = ConnectInfo<SocketAddr>;
