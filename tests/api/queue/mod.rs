//! The run queue and the worker protocol, against the real server with the built-in worker
//! off: scripted workers speak the protocol and do exactly what a test needs (ignore an
//! offer, answer late, report a result), so every lease and fencing rule is exercised on both
//! databases — and the core exchanges over both transports (in-process and WebSocket).
//! This module holds the scripted worker and the fixtures; the tests are in `offers`
//! (offers, acceptances, claims), `results` (what a worker reports, fencing, cancel) and
//! `liveness` (no worker, protocol refusal, heartbeats).

mod liveness;
mod offers;
mod results;

use std::time::Duration;

use agentry::db::{queue, workers};
use agentry::worker::transport::WorkerLink;
use agentry_tests::fakes::{self};
use agentry_tests::workers::hello;
use agentry_tests::{Backend, TestApp, db_tests};
use contracts::worker::{JobOutcome, JobResult, PROTOCOL_VERSION, ServerMessage, WorkerMessage};
use serde_json::{Value, json};
use uuid::Uuid;

const VALID: &str = r#"{"sentiment":"positive","score":0.9}"#;
/// Long enough that nothing in a test waits for it by accident.
const WAIT: Duration = Duration::from_secs(15);

/// A worker the test drives message by message.
struct Scripted {
    id: Uuid,
    link: WorkerLink,
}

/// How a scripted worker reaches the server.
#[derive(Debug, Clone, Copy)]
enum Transport {
    InProcess,
    WebSocket,
}

const TRANSPORTS: [Transport; 2] = [Transport::InProcess, Transport::WebSocket];

impl Scripted {
    /// Registers a worker named `name` and opens an in-process session with `slots` slots.
    async fn connect(app: &TestApp, name: &str, slots: u32) -> Scripted {
        Scripted::connect_over(app, Transport::InProcess, name, slots).await
    }

    /// Registers a worker and opens a session over `transport`: in-process (registered in
    /// the database directly), or WebSocket (registered with a token, connected with its key
    /// to `/api/workers/connect`, as `agentry worker` does).
    async fn connect_over(app: &TestApp, transport: Transport, name: &str, slots: u32) -> Scripted {
        let (id, link) = match transport {
            Transport::InProcess => app.register_in_process(name).await,
            Transport::WebSocket => {
                let token = app.worker_token().await;
                let registered = app
                    .post(
                        "/api/workers/register",
                        &json!({"token": token, "name": name}),
                    )
                    .await
                    .assert_status(201)
                    .json();
                let id: Uuid = registered["worker_id"].as_str().unwrap().parse().unwrap();
                let key = registered["key"].as_str().unwrap().to_owned();
                let url = agentry::worker::websocket::endpoint(&app.base_url, false).unwrap();
                let connector = agentry::worker::websocket::WebSocket::new(
                    url,
                    key,
                    agentry::background::Background::new(),
                )
                .unwrap();
                use agentry::worker::transport::Connector as _;
                (id, connector.connect().await.unwrap())
            }
        };
        let mut worker = Scripted { id, link };
        worker.send(WorkerMessage::Hello(hello(slots))).await;
        match worker.recv().await {
            ServerMessage::Welcome { worker_id, .. } => assert_eq!(worker_id, id),
            other => panic!("expected welcome, got {other:?}"),
        }
        worker
    }

    async fn send(&self, message: WorkerMessage) {
        self.link.tx.send(message).await.unwrap();
    }

    /// The next message that is not a ping (pings are answered).
    async fn recv(&mut self) -> ServerMessage {
        loop {
            let message = tokio::time::timeout(WAIT, self.link.rx.recv())
                .await
                .expect("no message from the server in time")
                .expect("the server closed the session");
            match message {
                ServerMessage::Ping { nonce } => self.send(WorkerMessage::Pong { nonce }).await,
                other => return other,
            }
        }
    }

    /// The next offer: `(run_id, lease_id)`.
    async fn offer(&mut self) -> (Uuid, Uuid) {
        match self.recv().await {
            ServerMessage::Assign {
                run_id, lease_id, ..
            } => (run_id, lease_id),
            other => panic!("expected assign, got {other:?}"),
        }
    }

    async fn succeed(&mut self, run_id: Uuid, lease_id: Uuid, output: Value) -> bool {
        self.report_success(run_id, lease_id, output).await;
        match self.recv().await {
            ServerMessage::ResultAck {
                run_id: acked,
                accepted,
            } => {
                assert_eq!(acked, run_id);
                accepted
            }
            other => panic!("expected result_ack, got {other:?}"),
        }
    }

    /// Sends a successful result (its acknowledgement is left to the caller).
    async fn report_success(&mut self, run_id: Uuid, lease_id: Uuid, output: Value) {
        let result = JobResult {
            outcome: JobOutcome::Succeeded {
                output,
                attempt: json!({"attempt": 1, "raw_output": VALID}),
            },
            attempts: 1,
            prompt_tokens: Some(3),
            completion_tokens: Some(4),
            raw_output: Some(VALID.to_owned()),
            latency_ms: 5,
        };
        self.send(WorkerMessage::Result {
            run_id,
            lease_id,
            result,
        })
        .await;
    }
}

/// A server without the built-in worker, with short queue timings.
async fn app_without_builtin(backend: Backend) -> TestApp {
    TestApp::spawn_with(backend, |c| {
        c.builtin_worker = false;
        c.queue.ack_timeout = Duration::from_millis(300);
        c.queue.lease = Duration::from_secs(1);
        c.queue.sweep_interval = Duration::from_millis(50);
    })
    .await
}

async fn runs_url(app: &TestApp) -> (fakes::Fake, String) {
    runs_url_with(app, json!({})).await
}

/// An agent on an OpenAI fake with `patch` applied, assigned the sentiment task.
async fn runs_url_with(app: &TestApp, patch: Value) -> (fakes::Fake, String) {
    let openai = fakes::openai::start().await;
    let provider = json!({"name": "o", "kind": "openai", "base_url": openai.url("/v1"),
        "api_key": fakes::openai::KEY});
    let url = app.runnable(&provider, "gpt-4o-mini", patch).await;
    (openai, url)
}

async fn queue_async(app: &TestApp, url: &str) -> Uuid {
    app.post(
        url,
        &json!({"input": {"text": "What a wonderful day!"}, "mode": "async"}),
    )
    .await
    .assert_status(202)
    .id()
}

async fn run(app: &TestApp, id: Uuid) -> Value {
    app.get(&format!("/api/runs/{id}")).await.json()
}
