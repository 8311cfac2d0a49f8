//! WebSocket clients for the fan-out and memory scenarios: many connections to `/ws`, each
//! subscribed and read by its own task (reading also answers the server's pings).

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use futures_util::StreamExt;
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio_tungstenite::tungstenite::Message;

/// Connections opened at once while connecting many clients.
const CONNECT_BATCH: usize = 256;
const DEADLINE: Duration = Duration::from_secs(30);

/// Connected clients; dropping them closes every socket.
pub struct Clients {
    readers: JoinSet<()>,
}

impl Clients {
    pub fn len(&self) -> usize {
        self.readers.len()
    }

    pub fn is_empty(&self) -> bool {
        self.readers.is_empty()
    }

    /// Closes every connection.
    pub async fn close(mut self) {
        self.readers.shutdown().await;
    }
}

/// Opens `count` connections subscribed to `topics`. Every text frame a client receives is
/// passed to `on_text` (with the receipt instant) on that client's own task.
pub async fn connect<F>(
    base_url: &str,
    topics: &str,
    count: usize,
    on_text: F,
) -> anyhow::Result<Clients>
where
    F: Fn(&str, Instant) + Clone + Send + Sync + 'static,
{
    let url = format!(
        "{}/ws?topics={topics}",
        base_url.replacen("http://", "ws://", 1)
    );
    let mut readers = JoinSet::new();
    let mut remaining = count;
    while remaining > 0 {
        let batch = remaining.min(CONNECT_BATCH);
        let mut connecting = JoinSet::new();
        for _ in 0..batch {
            let url = url.clone();
            connecting.spawn(async move {
                let (mut stream, _) =
                    tokio::time::timeout(DEADLINE, tokio_tungstenite::connect_async(url.as_str()))
                        .await
                        .context("connect timed out")??;
                // The first message confirms the subscription.
                match tokio::time::timeout(DEADLINE, stream.next()).await {
                    Ok(Some(Ok(Message::Text(text)))) if text.contains("\"subscribed\"") => {
                        Ok(stream)
                    }
                    other => bail!("no subscription confirmation: {other:?}"),
                }
            });
        }
        while let Some(joined) = connecting.join_next().await {
            let mut stream = joined??;
            let on_text = on_text.clone();
            readers.spawn(async move {
                while let Some(Ok(message)) = stream.next().await {
                    if let Message::Text(text) = message {
                        on_text(text.as_str(), Instant::now());
                    }
                }
            });
        }
        remaining -= batch;
    }
    Ok(Clients { readers })
}

/// A channel the clients report receipts on.
pub fn receipts<T: Send + 'static>() -> (mpsc::UnboundedSender<T>, mpsc::UnboundedReceiver<T>) {
    mpsc::unbounded_channel()
}
