//! The instant LLM: an OpenAI-style server (`/v1/models`, `/v1/chat/completions`) that answers
//! every completion with the same schema-valid JSON, at once or after a fixed delay. It runs on
//! its own thread and single-threaded runtime so it stays cheap next to what it is measured
//! against; its answers are serialised once.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context;
use axum::Router;
use axum::body::Bytes;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::serve::ListenerExt;
use serde_json::json;
use tokio::sync::oneshot;

/// The model name the stub lists and the fixtures use.
pub const MODEL: &str = "stub-model";

/// The answer: valid against [`crate::fixtures::response_schema`].
pub const ANSWER: &str = r#"{"sentiment":"positive","score":0.9}"#;

/// A running stub; stopped when dropped.
pub struct Stub {
    pub addr: SocketAddr,
    shutdown: Option<oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Stub {
    /// Starts the stub on 127.0.0.1 (`port` 0 picks a free one).
    pub fn start(port: u16, delay: Duration) -> anyhow::Result<Stub> {
        let listener = std::net::TcpListener::bind(("127.0.0.1", port)).context("bind the stub")?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let (shutdown, stopped) = oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("llm-stub".into())
            .spawn(move || {
                let runtime = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(runtime) => runtime,
                    Err(err) => {
                        eprintln!("stub: no runtime: {err}");
                        return;
                    }
                };
                runtime.block_on(async move {
                    let Ok(listener) = tokio::net::TcpListener::from_std(listener) else {
                        eprintln!("stub: cannot use its listener");
                        return;
                    };
                    // Answers go out at once (no Nagle delay waiting for an ACK).
                    let listener = listener.tap_io(|tcp| {
                        let _ = tcp.set_nodelay(true);
                    });
                    let served = axum::serve(listener, router(delay))
                        .with_graceful_shutdown(async {
                            let _ = stopped.await;
                        })
                        .await;
                    if let Err(err) = served {
                        eprintln!("stub: {err}");
                    }
                });
            })?;
        Ok(Stub {
            addr,
            shutdown: Some(shutdown),
            thread: Some(thread),
        })
    }

    /// Base URL of its OpenAI-style API, e.g. `http://127.0.0.1:18000/v1`.
    pub fn base_url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    /// Runs the stub until the process is stopped.
    pub fn serve_forever(port: u16, delay: Duration) -> anyhow::Result<()> {
        let stub = Stub::start(port, delay)?;
        eprintln!("stub: listening on {}", stub.base_url());
        loop {
            std::thread::park();
        }
    }
}

impl Drop for Stub {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn router(delay: Duration) -> Router {
    let models = Bytes::from(
        json!({"object": "list", "data": [{"id": MODEL, "object": "model", "owned_by": "bench"}]})
            .to_string(),
    );
    let completion = Bytes::from(
        json!({
            "id": "chatcmpl-bench",
            "object": "chat.completion",
            "created": 1_700_000_000,
            "model": MODEL,
            "choices": [{
                "index": 0,
                "message": {"role": "assistant", "content": ANSWER},
                "finish_reason": "stop"
            }],
            "usage": {"prompt_tokens": 24, "completion_tokens": 12, "total_tokens": 36}
        })
        .to_string(),
    );
    Router::new()
        .route("/v1/models", get(move || json_body(models.clone())))
        .route(
            "/v1/chat/completions",
            // The body is read (as a real server must) and ignored: the answer is fixed.
            post(move |_body: Bytes| {
                let completion = completion.clone();
                async move {
                    if !delay.is_zero() {
                        tokio::time::sleep(delay).await;
                    }
                    json_body(completion).await
                }
            }),
        )
        .route("/health", get(|| async { "ok" }))
}

async fn json_body(body: Bytes) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], body)
}
