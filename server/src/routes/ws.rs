//! `/ws`: topic subscriptions over WebSocket. Auth by header or first message, Origin checked,
//! inbound messages capped, slow sockets resynced and then dropped, keepalive pings, and a
//! 1001 close on shutdown.

use std::collections::{BTreeSet, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use axum::Extension;
use axum::Router;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade, close_code};
use axum::extract::{ConnectInfo, Query, State};
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use contracts::{Topic, WsClientMessage, WsServerMessage};
use futures_util::{SinkExt, StreamExt, stream::SplitSink};
use serde::Deserialize;
use tokio::sync::broadcast::error::RecvError;

use crate::auth::{bearer, token_matches, too_many_attempts};
use crate::config::WsSettings;
use crate::error::ApiError;
use crate::state::AppState;

/// Largest inbound message (DESIGN §4); larger ones close the socket with 1009.
pub const MAX_INBOUND_BYTES: usize = 64 * 1024;
/// Per-connection read buffer (see `upgrade`).
const READ_BUFFER_BYTES: usize = 4 * 1024;

pub fn routes() -> Router<AppState> {
    Router::new().route("/ws", get(upgrade))
}

#[derive(Debug, Deserialize)]
struct WsQuery {
    /// Comma-separated topics to subscribe to right away.
    topics: Option<String>,
}

async fn upgrade(
    State(state): State<AppState>,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
    query: Result<Query<WsQuery>, axum::extract::rejection::QueryRejection>,
    ws: Result<WebSocketUpgrade, axum::extract::ws::rejection::WebSocketUpgradeRejection>,
) -> Response {
    if let Err(err) = check_origin(&headers, &state.config.allowed_origins) {
        return err.into_response();
    }
    let ip = peer.map(|Extension(ConnectInfo(addr))| addr.ip());
    if state.config.api_token().is_some()
        && let Some(wait) = ip.and_then(|ip| state.auth_guard.refused(ip))
    {
        return too_many_attempts(wait);
    }
    let authenticated = match state.config.api_token() {
        None => true,
        Some(expected) => match bearer(&headers) {
            Some(token) if token_matches(token, expected) => true,
            // A wrong header is refused outright; no header means the token may come as the
            // first message (browsers cannot set headers on WebSockets).
            Some(_) => {
                if let Some(wait) = ip.and_then(|ip| state.auth_guard.failed(ip)) {
                    return too_many_attempts(wait);
                }
                return ApiError::Unauthorized.into_response();
            }
            None => false,
        },
    };
    let topics = match query.map(|q| q.0.topics) {
        Ok(Some(list)) => match parse_topics(&list) {
            Ok(topics) => topics,
            Err(err) => return err.into_response(),
        },
        Ok(None) => Vec::new(),
        Err(err) => return ApiError::InvalidParameter(err.body_text()).into_response(),
    };
    let Ok(ws) = ws else {
        return ApiError::InvalidParameter("/ws expects a WebSocket upgrade request".to_owned())
            .into_response();
    };
    ws.max_message_size(MAX_INBOUND_BYTES)
        .max_frame_size(MAX_INBOUND_BYTES)
        // tungstenite allocates its whole read buffer per connection up front (128 KiB by
        // default): 1.3 GiB for 10,000 idle clients. Clients send only small control
        // messages; a larger one still arrives, read in several chunks.
        .read_buffer_size(READ_BUFFER_BYTES)
        .on_upgrade(move |socket| {
            // Tracked, so a stop waits for the session's goodbye.
            let background = state.background.clone();
            background.track(Session::new(state, topics, authenticated, ip).run(socket))
        })
}

fn parse_topics(list: &str) -> Result<Vec<Topic>, ApiError> {
    list.split(',')
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(|t| {
            Topic::parse(t).ok_or_else(|| {
                ApiError::InvalidParameter(format!(
                    "unknown topic `{t}`; topics are providers, agents, tasks, runs, workers, pool"
                ))
            })
        })
        .collect()
}

/// Browsers send `Origin`; a page from another site must not open a socket with the user's
/// reach (cross-site WebSocket hijacking). Clients without `Origin` (CLIs, servers) pass.
fn check_origin(headers: &HeaderMap, allowed: &[String]) -> Result<(), ApiError> {
    let Some(origin) = headers.get(header::ORIGIN) else {
        return Ok(());
    };
    let origin = origin.to_str().unwrap_or("").trim_end_matches('/');
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("");
    let same_origin = origin
        .strip_prefix("http://")
        .or_else(|| origin.strip_prefix("https://"))
        .is_some_and(|rest| rest.eq_ignore_ascii_case(host));
    let listed = allowed
        .iter()
        .any(|a| a.trim_end_matches('/').eq_ignore_ascii_case(origin));
    if same_origin || listed {
        Ok(())
    } else {
        Err(ApiError::Forbidden(format!(
            "origin `{origin}` may not open a WebSocket here; add it to AGENTRY_ALLOWED_ORIGINS"
        )))
    }
}

/// Why a socket is closed by the server.
enum Close {
    /// The peer went away or the connection broke: nothing to send.
    Silent,
    Code(u16, &'static str),
}

struct Session {
    state: AppState,
    settings: WsSettings,
    topics: BTreeSet<Topic>,
    /// Topics from `?topics=`, applied once authenticated.
    requested: Vec<Topic>,
    authenticated: bool,
    /// The client's address, for the failed-token limit of first-message auth.
    ip: Option<IpAddr>,
    lags: VecDeque<Instant>,
}

type Sink = SplitSink<WebSocket, Message>;

impl Session {
    fn new(
        state: AppState,
        requested: Vec<Topic>,
        authenticated: bool,
        ip: Option<IpAddr>,
    ) -> Session {
        Session {
            ip,
            settings: state.config.ws.clone(),
            state,
            topics: BTreeSet::new(),
            requested,
            authenticated,
            lags: VecDeque::new(),
        }
    }

    async fn run(mut self, socket: WebSocket) {
        let mut stopping = std::pin::pin!(self.state.background.stopping());
        let mut events = self.state.events.subscribe();
        let (mut sink, mut stream) = socket.split();
        let mut ping = tokio::time::interval(self.settings.ping_interval);
        ping.tick().await;
        let mut last_pong = Instant::now();
        let auth_deadline = tokio::time::sleep(self.settings.auth_timeout);
        tokio::pin!(auth_deadline);

        if self.authenticated && self.apply_requested(&mut sink).await.is_err() {
            return;
        }
        let close = loop {
            tokio::select! {
                () = &mut stopping => break Close::Code(close_code::AWAY, "server shutting down"),
                () = &mut auth_deadline, if !self.authenticated => {
                    break Close::Code(close_code::POLICY, "authentication required");
                }
                inbound = stream.next() => match inbound {
                    None => break Close::Silent,
                    Some(Err(err)) => break classify_read_error(err),
                    Some(Ok(Message::Text(text))) => {
                        if let Some(close) = self.on_text(text.as_str(), &mut sink).await {
                            break close;
                        }
                    }
                    Some(Ok(Message::Binary(_))) => {
                        let error = server_error("unsupported", "binary messages are not supported; send JSON text");
                        if self.send(&mut sink, &error).await.is_err() { break Close::Silent; }
                    }
                    Some(Ok(Message::Pong(_))) => last_pong = Instant::now(),
                    Some(Ok(Message::Ping(_))) => {}
                    Some(Ok(Message::Close(_))) => break Close::Silent,
                },
                event = events.recv(), if self.authenticated => match event {
                    Ok(envelope) => {
                        if self.topics.contains(&envelope.topic)
                            && self.send_raw(&mut sink, Message::Text(envelope.text)).await.is_err()
                        {
                            break Close::Silent;
                        }
                    }
                    Err(RecvError::Lagged(missed)) => {
                        if let Some(close) = self.on_lag(missed, &mut sink).await {
                            break close;
                        }
                    }
                    Err(RecvError::Closed) => break Close::Code(close_code::AWAY, "server shutting down"),
                },
                _ = ping.tick() => {
                    if last_pong.elapsed() > self.settings.ping_interval * 3 {
                        break Close::Silent;
                    }
                    if self.send_raw(&mut sink, Message::Ping(Default::default())).await.is_err() {
                        break Close::Silent;
                    }
                }
            }
        };
        if let Close::Code(code, reason) = close {
            let frame = Message::Close(Some(CloseFrame {
                code,
                reason: reason.into(),
            }));
            let _ = tokio::time::timeout(self.settings.send_timeout, sink.send(frame)).await;
        }
    }

    async fn on_text(&mut self, text: &str, sink: &mut Sink) -> Option<Close> {
        let message = match serde_json::from_str::<WsClientMessage>(text) {
            Ok(message) => message,
            Err(err) => {
                if !self.authenticated {
                    return Some(Close::Code(close_code::POLICY, "authentication required"));
                }
                let error = server_error("bad_message", &format!("not a valid message: {err}"));
                return self.send(sink, &error).await.err().map(|()| Close::Silent);
            }
        };
        let reply = match message {
            WsClientMessage::Auth { token } => {
                let expected = self.state.config.api_token().unwrap_or("");
                if token_matches(&token, expected) {
                    self.authenticated = true;
                    return self
                        .apply_requested(sink)
                        .await
                        .err()
                        .map(|()| Close::Silent);
                }
                if let Some(ip) = self.ip {
                    self.state.auth_guard.failed(ip);
                }
                return Some(Close::Code(close_code::POLICY, "invalid token"));
            }
            _ if !self.authenticated => {
                return Some(Close::Code(close_code::POLICY, "authentication required"));
            }
            WsClientMessage::Subscribe { topics } => {
                self.topics.extend(topics);
                self.subscribed()
            }
            WsClientMessage::Unsubscribe { topics } => {
                for topic in topics {
                    self.topics.remove(&topic);
                }
                self.subscribed()
            }
            WsClientMessage::Ping => WsServerMessage::Pong,
        };
        self.send(sink, &reply).await.err().map(|()| Close::Silent)
    }

    async fn apply_requested(&mut self, sink: &mut Sink) -> Result<(), ()> {
        if self.requested.is_empty() {
            return Ok(());
        }
        self.topics.extend(self.requested.drain(..));
        let reply = self.subscribed();
        self.send(sink, &reply).await
    }

    fn subscribed(&self) -> WsServerMessage {
        WsServerMessage::Subscribed {
            topics: self.topics.iter().copied().collect(),
        }
    }

    /// Missed events: tell the client to refetch; a client that keeps falling behind is
    /// closed rather than served an ever-stale stream.
    async fn on_lag(&mut self, missed: u64, sink: &mut Sink) -> Option<Close> {
        let now = Instant::now();
        self.lags.push_back(now);
        while self
            .lags
            .front()
            .is_some_and(|t| now.duration_since(*t) > self.settings.lag_window)
        {
            self.lags.pop_front();
        }
        tracing::debug!(
            missed,
            lags = self.lags.len(),
            "websocket client fell behind"
        );
        if self.lags.len() > self.settings.max_lags {
            return Some(Close::Code(close_code::POLICY, "client too slow"));
        }
        let resync = WsServerMessage::Resync {
            topics: self.topics.iter().copied().collect(),
        };
        self.send(sink, &resync).await.err().map(|()| Close::Silent)
    }

    async fn send(&self, sink: &mut Sink, message: &WsServerMessage) -> Result<(), ()> {
        let text = serde_json::to_string(message).map_err(|_| ())?;
        self.send_raw(sink, Message::Text(text.into())).await
    }

    /// A socket that cannot take a message within the send timeout is not reading: drop it
    /// so it holds no memory and delays nobody.
    async fn send_raw(&self, sink: &mut Sink, message: Message) -> Result<(), ()> {
        match tokio::time::timeout(self.settings.send_timeout, sink.send(message)).await {
            Ok(Ok(())) => Ok(()),
            _ => Err(()),
        }
    }
}

fn server_error(code: &str, message: &str) -> WsServerMessage {
    WsServerMessage::Error {
        code: code.to_owned(),
        message: message.to_owned(),
    }
}

fn classify_read_error(err: axum::Error) -> Close {
    let too_big = err
        .into_inner()
        .downcast::<tungstenite::Error>()
        .is_ok_and(|e| matches!(*e, tungstenite::Error::Capacity(_)));
    if too_big {
        Close::Code(close_code::SIZE, "message too big (limit 64 KiB)")
    } else {
        Close::Silent
    }
}

/// How long shutdown waits for sockets to send their close frames.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);
