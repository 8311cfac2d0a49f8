//! The worker protocol: what a worker (the built-in one, in-process, or a remote
//! `agentry worker` over WebSocket) and the server say to each other. One JSON object per
//! message, tagged by `type`. The same values travel over every transport.
//!
//! A session: `hello` → `welcome` (or `rejected`); then, per run, `assign` → `accept` →
//! `event`* → `result` → `result_ack`, with `extend` → `extended` while the worker works.
//! Every run message names the lease it belongs to; a lease id is valid until the next
//! extension replaces it, and only the current one's events and result are accepted
//! (fencing). See docs/workers.md.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

use crate::{ProviderKind, RunEventKind, RunSnapshot};

/// Sent in `hello.protocol`; anything else is refused.
pub const PROTOCOL: &str = "agentry-worker";
/// Sent in `hello.version`; the server refuses versions it cannot speak.
pub const PROTOCOL_VERSION: u32 = 1;

/// Worker → server.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum WorkerMessage {
    /// The first message of a session.
    Hello(Hello),
    /// The worker took the run of `lease_id` and is executing it.
    Accept { run_id: Uuid, lease_id: Uuid },
    /// The worker cannot take the run (no free slot, shutting down): it is requeued at once.
    Decline {
        run_id: Uuid,
        lease_id: Uuid,
        reason: String,
    },
    /// Asks for a fresh lease on a run it is still executing.
    Extend { run_id: Uuid, lease_id: Uuid },
    /// Progress of a run, in order (`seq` counts from 1 per run and delivery).
    Event {
        run_id: Uuid,
        lease_id: Uuid,
        seq: u64,
        events: Vec<JobEvent>,
        /// Attempts made so far and the last answer, when this event changed them.
        progress: Option<JobProgress>,
    },
    /// How the run ended. Resent after a reconnect until `result_ack` arrives.
    Result {
        run_id: Uuid,
        lease_id: Uuid,
        result: JobResult,
    },
    /// Answer to `ping`.
    Pong { nonce: u64 },
    /// The providers whose keys the worker now holds (names), after they changed.
    Credentials { providers: Vec<String> },
    /// Its health, sent after each `pong`.
    Health { health: crate::WorkerHealth },
    /// How the connectivity check the server asked for (`probe`) went.
    Probed {
        probe_id: Uuid,
        outcome: ProbeOutcome,
    },
}

/// The outcome of a connectivity check run on a worker.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case", deny_unknown_fields)]
pub enum ProbeOutcome {
    /// The provider answered with its models.
    Connected {
        models: Vec<String>,
        latency_ms: u64,
    },
    /// It did not (unreachable, key refused, no key held…), said as the server would.
    Failed { error: String },
}

/// The worker introducing itself.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Hello {
    /// Always [`PROTOCOL`].
    pub protocol: String,
    /// [`PROTOCOL_VERSION`] of the worker.
    pub version: u32,
    /// The worker's build (`agentry` package version).
    pub build: String,
    pub os: String,
    pub arch: String,
    /// Runs it executes at once.
    pub slots: u32,
    /// The provider kinds it serves (`ollama`, `openai`, …); runs of another kind are not
    /// offered to it. Empty: it did not say (it is not held against it).
    #[serde(default)]
    pub capabilities: Vec<String>,
    /// The providers (names) whose keys the worker holds in its own store
    /// (`agentry worker credentials`); never the keys.
    #[serde(default)]
    pub credentials: Vec<String>,
    /// What its own outbound policy lets it reach (absent: anything the server's would).
    #[serde(default)]
    pub outbound: Option<OutboundReach>,
    /// Leases it still holds from an earlier session (after a reconnect); the server takes
    /// back every other lease of this worker.
    #[serde(default)]
    pub leases: Vec<HeldLease>,
}

/// A worker's outbound policy, as its settings give it: runs of a provider on a local network
/// go only to workers whose policy lets them reach it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutboundReach {
    /// Loopback and private networks are refused, except `allowlist`
    /// (`--block-local-providers`).
    pub block_local: bool,
    /// `host[:port]` or CIDR entries reachable even so (`--provider-url-allowlist`).
    #[serde(default)]
    pub allowlist: Vec<String>,
}

/// A run a reconnecting worker is still executing, or whose result it still holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HeldLease {
    pub run_id: Uuid,
    pub lease_id: Uuid,
}

/// Server → worker.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum ServerMessage {
    /// The session is open; the timings the worker must keep.
    Welcome {
        worker_id: Uuid,
        /// The server pings this often; two missed pongs mark the worker offline.
        heartbeat_secs: u64,
        /// How long a lease lasts; the worker extends well before.
        lease_secs: u64,
        /// How long the worker has to accept an assignment.
        ack_timeout_secs: u64,
    },
    /// The session is refused; the connection closes.
    Rejected { reason: String },
    /// A run to execute under `lease_id`: answer with `accept` or `decline` within the ack
    /// timeout.
    Assign {
        run_id: Uuid,
        lease_id: Uuid,
        job: Box<Job>,
    },
    /// The lease of `run_id` was extended: use `lease_id` from now on.
    Extended { run_id: Uuid, lease_id: Uuid },
    /// The worker no longer holds the run (lease expired, run canceled or taken back): stop
    /// executing it and drop its result.
    LeaseLost { run_id: Uuid, reason: String },
    /// Abort the run's provider call and report `canceled`.
    Cancel { run_id: Uuid },
    /// The result of `run_id` was received; `accepted` is false when it was refused (stale
    /// lease, run already finished), and either way the worker forgets it.
    ResultAck { run_id: Uuid, accepted: bool },
    /// Answer with `pong` and the same nonce.
    Ping { nonce: u64 },
    /// The server is stopping: reconnect with backoff.
    Draining,
    /// Check that the provider answers, with the key the worker holds for it; answer with
    /// `probed` and the same id. The server asks a worker when the provider's key lives on
    /// workers.
    Probe {
        probe_id: Uuid,
        provider: ProviderEndpoint,
    },
}

/// Everything a worker needs to execute a run: the rendered prompt, the response schema, the
/// agent's parameters and how to reach the provider.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Job {
    /// The system message, with the response schema spelled out.
    pub system_prompt: String,
    /// The user message (the rendered template, or the input as JSON).
    pub prompt: String,
    pub response_schema: Value,
    pub model: String,
    pub temperature: Option<f64>,
    pub max_tokens: Option<u32>,
    /// Repairs after an invalid answer.
    pub max_retries: u32,
    /// Bound on the whole attempt loop.
    pub timeout_secs: u32,
    pub provider: ProviderEndpoint,
    /// The configuration the run uses (ids and revisions key the worker's runnable agents).
    pub snapshot: RunSnapshot,
}

/// How to reach a provider. The key is present only when the server stores it; workers never
/// write it to disk or logs.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProviderEndpoint {
    pub kind: ProviderKind,
    pub base_url: Option<String>,
    pub api_key: Option<String>,
    /// The key lives on the worker: it uses the one it holds for this provider (name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credential: Option<String>,
}

impl std::fmt::Debug for ProviderEndpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProviderEndpoint")
            .field("kind", &self.kind)
            .field("base_url", &self.base_url)
            .field("api_key", &self.api_key.as_ref().map(|_| "<redacted>"))
            .field("credential", &self.credential)
            .finish()
    }
}

/// One entry of a run's history, as the worker reports it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobEvent {
    pub kind: RunEventKind,
    pub data: Value,
}

/// A run's progress between attempts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobProgress {
    pub attempts: u32,
    pub raw_output: Option<String>,
}

/// How a run ended on the worker, with what its attempts cost.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobResult {
    pub outcome: JobOutcome,
    /// Model calls made.
    pub attempts: u32,
    pub prompt_tokens: Option<u64>,
    pub completion_tokens: Option<u64>,
    /// The last answer's text (also on failure).
    pub raw_output: Option<String>,
    /// Time spent executing on the worker.
    pub latency_ms: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case", deny_unknown_fields)]
pub enum JobOutcome {
    /// `output` validated against the response schema; `attempt` is the winning answer's
    /// event data.
    Succeeded {
        output: Value,
        attempt: Value,
    },
    Failed {
        error: String,
    },
    /// Aborted on `cancel`.
    Canceled,
}
