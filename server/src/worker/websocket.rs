//! The WebSocket transport, worker side: connects to `/api/workers/connect` with the worker's
//! key and carries protocol messages as JSON text frames. Only `wss://` is accepted, except
//! to a loopback address or with `insecure` (keys travel in assignments).

use std::net::IpAddr;
use std::sync::Arc;

use contracts::worker::{ServerMessage, WorkerMessage};
use futures_util::{SinkExt, StreamExt};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::{HeaderValue, header};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{self, Message};
use url::Url;

use super::transport::{ConnectError, Connector, LINK_CAPACITY, Link, WorkerLink};
use crate::background::Background;

/// Largest message accepted from the server (a job with a long prompt).
const MAX_MESSAGE_BYTES: usize = 16 * 1024 * 1024;

/// Why a server URL cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum UrlError {
    #[error("`{0}` is not a URL")]
    Invalid(String),
    #[error("the server URL must start with https:// or http://")]
    Scheme,
    #[error(
        "refusing to send the worker key and provider keys unencrypted to {0}: use https://, \
         or pass --insecure if this network is trusted"
    )]
    Insecure(String),
}

/// Connects to the server's worker endpoint.
pub struct WebSocket {
    url: Url,
    key: String,
    tls: Arc<rustls::ClientConfig>,
    background: Background,
}

/// The worker endpoint for a server base URL (`https://host[:port][/prefix]`), checked
/// against the transport rule.
pub fn endpoint(server: &str, insecure: bool) -> Result<Url, UrlError> {
    let base = Url::parse(server.trim()).map_err(|_| UrlError::Invalid(server.to_owned()))?;
    let scheme = match base.scheme() {
        "https" => "wss",
        "http" => {
            let loopback = match base.host() {
                Some(url::Host::Ipv4(ip)) => IpAddr::V4(ip).is_loopback(),
                Some(url::Host::Ipv6(ip)) => IpAddr::V6(ip).is_loopback(),
                Some(url::Host::Domain(name)) => name.eq_ignore_ascii_case("localhost"),
                None => false,
            };
            if !loopback && !insecure {
                return Err(UrlError::Insecure(server.to_owned()));
            }
            "ws"
        }
        _ => return Err(UrlError::Scheme),
    };
    let mut url = base.clone();
    url.set_scheme(scheme).map_err(|()| UrlError::Scheme)?;
    let path = format!("{}/api/workers/connect", base.path().trim_end_matches('/'));
    url.set_path(&path);
    url.set_query(None);
    Ok(url)
}

impl WebSocket {
    pub fn new(url: Url, key: String, background: Background) -> Result<WebSocket, rustls::Error> {
        use rustls_platform_verifier::ConfigVerifierExt as _;
        let tls = Arc::new(rustls::ClientConfig::with_platform_verifier()?);
        Ok(WebSocket {
            url,
            key,
            tls,
            background,
        })
    }
}

impl Connector for WebSocket {
    async fn connect(&self) -> Result<WorkerLink, ConnectError> {
        let mut request = self
            .url
            .as_str()
            .into_client_request()
            .map_err(|e| ConnectError::Unavailable(e.to_string()))?;
        let bearer = HeaderValue::from_str(&format!("Bearer {}", self.key))
            .map_err(|_| ConnectError::Refused("the worker key is not a valid header".into()))?;
        request.headers_mut().insert(header::AUTHORIZATION, bearer);
        let config = WebSocketConfig::default()
            .max_message_size(Some(MAX_MESSAGE_BYTES))
            .max_frame_size(Some(MAX_MESSAGE_BYTES));
        let connector = tokio_tungstenite::Connector::Rustls(Arc::clone(&self.tls));
        let (socket, _) = match tokio_tungstenite::connect_async_tls_with_config(
            request,
            Some(config),
            true,
            Some(connector),
        )
        .await
        {
            Ok(connected) => connected,
            Err(tungstenite::Error::Http(response)) if response.status() == 401 => {
                let detail = response
                    .body()
                    .as_deref()
                    .and_then(|b| serde_json::from_slice::<contracts::Problem>(b).ok())
                    .and_then(|p| p.detail)
                    .unwrap_or_else(|| "the worker key was refused".to_owned());
                return Err(ConnectError::Refused(detail));
            }
            Err(tungstenite::Error::Http(response)) => {
                return Err(ConnectError::Unavailable(format!(
                    "the server answered {}",
                    response.status()
                )));
            }
            Err(err) => return Err(ConnectError::Unavailable(err.to_string())),
        };
        let (to_server, mut outbound) = mpsc::channel::<WorkerMessage>(LINK_CAPACITY);
        let (inbound, from_server) = mpsc::channel::<ServerMessage>(LINK_CAPACITY);
        let (mut sink, mut stream) = socket.split();
        // One task carries both directions; the session ends when either side does.
        self.background.spawn(async move {
            loop {
                tokio::select! {
                    message = outbound.recv() => {
                        let Some(message) = message else { break };
                        let Ok(text) = serde_json::to_string(&message) else { continue };
                        if sink.send(Message::Text(text.into())).await.is_err() {
                            break;
                        }
                    }
                    frame = stream.next() => match frame {
                        Some(Ok(Message::Text(text))) => {
                            match serde_json::from_str::<ServerMessage>(text.as_str()) {
                                Ok(message) => {
                                    if inbound.send(message).await.is_err() {
                                        break;
                                    }
                                }
                                Err(err) => {
                                    tracing::warn!(error = %err, "the server sent a frame that is not a protocol message");
                                    break;
                                }
                            }
                        }
                        Some(Ok(Message::Close(frame))) => {
                            if let Some(frame) = frame {
                                tracing::info!(code = u16::from(frame.code), reason = %frame.reason, "the server closed the connection");
                            }
                            break;
                        }
                        None | Some(Err(_)) => break,
                        Some(Ok(_)) => {}
                    },
                }
            }
            sink.close().await.ok();
        });
        Ok(Link {
            tx: to_server,
            rx: from_server,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_require_tls_except_to_loopback_or_when_insecure() {
        let ok = |s: &str, insecure| endpoint(s, insecure).map(|u| u.to_string());
        assert_eq!(
            ok("https://agentry.example.com", false).unwrap(),
            "wss://agentry.example.com/api/workers/connect"
        );
        assert_eq!(
            ok("https://example.com/agentry/", false).unwrap(),
            "wss://example.com/agentry/api/workers/connect"
        );
        assert_eq!(
            ok("http://127.0.0.1:8080", false).unwrap(),
            "ws://127.0.0.1:8080/api/workers/connect"
        );
        assert!(ok("http://localhost:8080", false).is_ok());
        assert!(ok("http://[::1]:8080", false).is_ok());
        assert!(matches!(
            endpoint("http://10.0.0.5:8080", false),
            Err(UrlError::Insecure(_))
        ));
        assert!(ok("http://10.0.0.5:8080", true).is_ok());
        assert!(matches!(
            endpoint("ftp://example.com", false),
            Err(UrlError::Scheme)
        ));
        assert!(matches!(
            endpoint("not a url", false),
            Err(UrlError::Invalid(_))
        ));
    }
}
