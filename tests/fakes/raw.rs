//! A provider that answers with exact bytes: for what a real server could send but a
//! well-behaved fake never would (invalid UTF-8, a body larger than it says, one that never
//! ends). Every connection gets the same answer; the request is read and ignored.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// What to send on each connection.
#[derive(Debug, Clone)]
pub struct RawAnswer {
    /// Status line and headers (without the blank line), e.g. `HTTP/1.1 200 OK\r\n…`.
    pub head: String,
    /// The body bytes sent after the head.
    pub body: Vec<u8>,
    /// Repeat `body` this many times (a gigantic body without holding it in memory).
    pub repeat: usize,
    /// After sending, keep the connection open and silent instead of closing it.
    pub stall: bool,
}

impl RawAnswer {
    /// `200 OK` with a JSON content type and a correct Content-Length.
    pub fn json(body: impl Into<Vec<u8>>) -> RawAnswer {
        let body = body.into();
        RawAnswer {
            head: format!(
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\
                 Connection: close",
                body.len()
            ),
            body,
            repeat: 1,
            stall: false,
        }
    }
}

pub struct RawServer {
    port: u16,
    connections: Arc<AtomicUsize>,
}

impl RawServer {
    pub async fn start(answer: RawAnswer) -> RawServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let connections = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&connections);
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                counter.fetch_add(1, Ordering::SeqCst);
                let answer = answer.clone();
                tokio::spawn(async move {
                    // Read the request head (and whatever body fits); its content is irrelevant.
                    let mut buffer = vec![0_u8; 64 * 1024];
                    let _ = stream.read(&mut buffer).await;
                    let head = format!("{}\r\n\r\n", answer.head);
                    if stream.write_all(head.as_bytes()).await.is_err() {
                        return;
                    }
                    for _ in 0..answer.repeat {
                        if stream.write_all(&answer.body).await.is_err() {
                            return;
                        }
                    }
                    if answer.stall {
                        std::future::pending::<()>().await;
                    }
                    let _ = stream.shutdown().await;
                });
            }
        });
        RawServer { port, connections }
    }

    /// `http://127.0.0.1:PORT/v1`, for an OpenAI-compatible provider.
    pub fn base_url(&self) -> String {
        format!("http://127.0.0.1:{}/v1", self.port)
    }

    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }
}
