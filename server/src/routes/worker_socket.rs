//! `GET /api/workers/connect`: the WebSocket transport of the worker protocol. The worker
//! authenticates with its key (`Authorization: Bearer`); an unknown or revoked key is
//! refused with 401 before the upgrade. Each text frame is one protocol message (JSON of
//! `contracts::worker`); the session itself is the same as the built-in worker's.
//!
//! Close codes: 1000 when the session ends normally, 1001 when the server stops, 4001 when the
//! server ended the session for good (worker revoked or disabled; the last message before it
//! is `rejected` with the reason), 1007 for a frame that is not a protocol message.

use std::net::SocketAddr;

use axum::Extension;
use axum::Router;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::{ConnectInfo, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use contracts::worker::{ServerMessage, WorkerMessage};
use futures_util::{SinkExt, StreamExt};

use crate::auth::{bearer, too_many_attempts};
use crate::error::ApiError;
use crate::services::workers::Error;
use crate::state::AppState;
use crate::worker::transport::pair;

/// Largest protocol message (a job or a result with a long answer).
pub const MAX_MESSAGE_BYTES: usize = 16 * 1024 * 1024;
/// Close code of a session the server ended for good.
pub const CLOSE_REFUSED: u16 = 4001;

pub fn routes() -> Router<AppState> {
    Router::new().route("/api/workers/connect", get(upgrade))
}

async fn upgrade(
    State(state): State<AppState>,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
    ws: Result<WebSocketUpgrade, axum::extract::ws::rejection::WebSocketUpgradeRejection>,
) -> Response {
    let ip = peer.map(|Extension(ConnectInfo(addr))| addr);
    if let Some(wait) = ip.and_then(|addr| state.auth_guard.refused(addr.ip())) {
        return too_many_attempts(wait);
    }
    let Some(key) = bearer(&headers) else {
        return ApiError::BadCredential("a worker connects with `Authorization: Bearer <key>`")
            .into_response();
    };
    let worker = match state.workers.authenticate(key).await {
        Ok(worker) => worker,
        Err(Error::Unauthorized(why)) => {
            if let Some(wait) = ip.and_then(|addr| state.auth_guard.failed(addr.ip())) {
                return too_many_attempts(wait);
            }
            return ApiError::BadCredential(why).into_response();
        }
        Err(err) => return ApiError::from(err).into_response(),
    };
    let Ok(ws) = ws else {
        return ApiError::InvalidParameter(
            "/api/workers/connect expects a WebSocket upgrade request".to_owned(),
        )
        .into_response();
    };
    let address = ip.map(|addr| addr.ip().to_string()).unwrap_or_default();
    ws.max_message_size(MAX_MESSAGE_BYTES)
        .max_frame_size(MAX_MESSAGE_BYTES)
        .on_upgrade(move |socket| {
            let background = state.background.clone();
            background.track(pump(state, worker.id, address, socket))
        })
}

/// Carries the session's messages between the socket and the session.
async fn pump(state: AppState, worker_id: uuid::Uuid, address: String, socket: WebSocket) {
    let (worker_side, server_side) = pair();
    state.runs.accept_remote(worker_id, address, server_side);
    let crate::worker::transport::Link {
        tx: to_session,
        rx: mut from_session,
    } = worker_side;
    let (mut sink, mut stream) = socket.split();
    let stopping = state.background.stopping();
    let mut stopping = std::pin::pin!(stopping);
    let mut refused = false;
    let close = loop {
        tokio::select! {
            () = &mut stopping => {
                let draining = serde_json::to_string(&ServerMessage::Draining).unwrap_or_default();
                sink.send(Message::Text(draining.into())).await.ok();
                break (1001, "the server is stopping");
            }
            outbound = from_session.recv() => match outbound {
                Some(message) => {
                    refused = matches!(message, ServerMessage::Rejected { .. });
                    let Ok(text) = serde_json::to_string(&message) else { continue };
                    if sink.send(Message::Text(text.into())).await.is_err() {
                        return;
                    }
                }
                None if refused => break (CLOSE_REFUSED, "refused"),
                None => break (1000, "session ended"),
            },
            inbound = stream.next() => match inbound {
                Some(Ok(Message::Text(text))) => {
                    match serde_json::from_str::<WorkerMessage>(text.as_str()) {
                        Ok(message) => {
                            if to_session.send(message).await.is_err() {
                                break (1000, "session ended");
                            }
                        }
                        Err(err) => {
                            tracing::warn!(worker.id = %worker_id, error = %err,
                                "worker sent a frame that is not a protocol message");
                            break (1007, "not a protocol message");
                        }
                    }
                }
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return,
                Some(Ok(_)) => {} // pings are answered by axum; binary frames are ignored
            },
        }
    };
    let (code, reason) = close;
    sink.send(Message::Close(Some(CloseFrame {
        code,
        reason: reason.into(),
    })))
    .await
    .ok();
}
