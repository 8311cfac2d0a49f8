//! A WebSocket test client for `/ws`: connect with headers, send messages, await the next
//! JSON message with a deadline.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{Error, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::TestApp;

/// Longest a test waits for an expected message.
pub const DEADLINE: Duration = Duration::from_secs(15);

pub struct WsClient {
    pub stream: WebSocketStream<MaybeTlsStream<TcpStream>>,
}

/// What the server did when we waited for a message.
#[derive(Debug)]
pub enum Next {
    Json(Value),
    Closed(Option<u16>),
}

impl TestApp {
    /// Connects to `/ws{query}` with the app's token (if any) and extra headers.
    pub async fn ws_with(&self, query: &str, headers: &[(&str, &str)]) -> Result<WsClient, Error> {
        let url = format!("{}/ws{query}", self.base_url.replacen("http", "ws", 1));
        let mut request = url.into_client_request()?;
        if let Some(token) = &self.token {
            request.headers_mut().insert(
                "authorization",
                format!("Bearer {token}").parse().expect("header"),
            );
        }
        for (name, value) in headers {
            request.headers_mut().insert(
                reqwest::header::HeaderName::from_bytes(name.as_bytes()).expect("name"),
                value.parse().expect("value"),
            );
        }
        let (stream, _) = tokio_tungstenite::connect_async(request).await?;
        Ok(WsClient { stream })
    }

    /// Connects and subscribes through `?topics=`, waiting for the `subscribed` answer.
    pub async fn ws(&self, topics: &str) -> WsClient {
        let mut client = self
            .ws_with(&format!("?topics={topics}"), &[])
            .await
            .expect("connect /ws");
        let ack = client.next_json().await;
        assert_eq!(ack["type"], "subscribed", "{ack}");
        client
    }
}

impl WsClient {
    pub async fn send_json(&mut self, value: &Value) {
        self.stream
            .send(Message::Text(value.to_string().into()))
            .await
            .expect("send");
    }

    /// The next JSON message, or how the socket closed, within the deadline.
    pub async fn next(&mut self) -> Next {
        let result = tokio::time::timeout(DEADLINE, async {
            loop {
                match self.stream.next().await {
                    Some(Ok(Message::Text(text))) => {
                        return Next::Json(serde_json::from_str(text.as_str()).expect("JSON"));
                    }
                    Some(Ok(Message::Close(frame))) => {
                        return Next::Closed(frame.map(|f| u16::from(f.code)));
                    }
                    Some(Ok(_)) => continue,
                    Some(Err(_)) | None => return Next::Closed(None),
                }
            }
        })
        .await;
        result.unwrap_or_else(|_| panic!("no WebSocket message within {DEADLINE:?}"))
    }

    pub async fn next_json(&mut self) -> Value {
        match self.next().await {
            Next::Json(value) => value,
            Next::Closed(code) => panic!("socket closed ({code:?}) while a message was expected"),
        }
    }

    /// The next `event` message (skipping nothing else: any other message fails the test).
    pub async fn next_event(&mut self) -> Value {
        let message = self.next_json().await;
        assert_eq!(message["type"], "event", "{message}");
        message
    }

    /// The next `event` that is not a validator transition (those arrive at any moment
    /// after a provider changes).
    pub async fn next_change(&mut self) -> Value {
        loop {
            let event = self.next_event().await;
            if event["event"] != "validation_update" {
                return event;
            }
        }
    }

    /// Reads until the socket closes; returns the close code (None: dropped without one).
    pub async fn closed(&mut self) -> Option<u16> {
        loop {
            match self.next().await {
                Next::Json(_) => continue,
                Next::Closed(code) => return code,
            }
        }
    }
}

pub fn code(close: CloseCode) -> u16 {
    u16::from(close)
}
