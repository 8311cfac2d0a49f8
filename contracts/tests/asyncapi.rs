//! Keeps contracts/asyncapi.json honest: every protocol message type is documented under its
//! tag, in the right direction, and a sample of each validates against its documented
//! payload (and nothing documented is missing from the types).
#![expect(clippy::unwrap_used, reason = "tests")]

use std::collections::BTreeSet;

use contracts::worker::{
    HeldLease, Hello, Job, JobEvent, JobOutcome, JobProgress, JobResult, OutboundReach, PROTOCOL,
    PROTOCOL_VERSION, ProbeOutcome, ProviderEndpoint, ServerMessage, WorkerMessage,
};
use contracts::{ProviderKind, RunEventKind, RunSnapshot};
use serde_json::{Value, json};
use uuid::Uuid;

/// The tag of each worker message; exhaustive, so a new variant must be added here (and to
/// the samples and the document).
fn worker_tag(message: &WorkerMessage) -> &'static str {
    match message {
        WorkerMessage::Hello(_) => "hello",
        WorkerMessage::Accept { .. } => "accept",
        WorkerMessage::Decline { .. } => "decline",
        WorkerMessage::Extend { .. } => "extend",
        WorkerMessage::Event { .. } => "event",
        WorkerMessage::Result { .. } => "result",
        WorkerMessage::Pong { .. } => "pong",
        WorkerMessage::Credentials { .. } => "credentials",
        WorkerMessage::Probed { .. } => "probed",
        WorkerMessage::Health { .. } => "health",
    }
}

fn server_tag(message: &ServerMessage) -> &'static str {
    match message {
        ServerMessage::Welcome { .. } => "welcome",
        ServerMessage::Rejected { .. } => "rejected",
        ServerMessage::Assign { .. } => "assign",
        ServerMessage::Extended { .. } => "extended",
        ServerMessage::LeaseLost { .. } => "lease_lost",
        ServerMessage::Cancel { .. } => "cancel",
        ServerMessage::ResultAck { .. } => "result_ack",
        ServerMessage::Ping { .. } => "ping",
        ServerMessage::Draining => "draining",
        ServerMessage::Probe { .. } => "probe",
    }
}

fn job() -> Job {
    Job {
        system_prompt: "s".into(),
        prompt: "p".into(),
        response_schema: json!({"type": "object"}),
        model: "m".into(),
        temperature: Some(0.2),
        max_tokens: None,
        max_retries: 2,
        timeout_secs: 60,
        provider: ProviderEndpoint {
            kind: ProviderKind::Openai,
            base_url: None,
            api_key: Some("sk-x".into()),
            credential: None,
        },
        snapshot: RunSnapshot {
            agent_id: Uuid::nil(),
            agent_name: "a".into(),
            agent_revision: 1,
            model: "m".into(),
            temperature: None,
            max_tokens: None,
            max_retries: 2,
            timeout_secs: 60,
            task_id: Uuid::nil(),
            task_name: "t".into(),
            task_revision: 1,
            provider_id: Uuid::nil(),
            provider_name: "p".into(),
            provider_kind: ProviderKind::Openai,
            provider_revision: 1,
        },
    }
}

fn result(outcome: JobOutcome) -> JobResult {
    JobResult {
        outcome,
        attempts: 1,
        prompt_tokens: Some(1),
        completion_tokens: None,
        raw_output: Some("{}".into()),
        latency_ms: 3,
    }
}

fn worker_samples() -> Vec<WorkerMessage> {
    let (run_id, lease_id) = (Uuid::from_u128(1), Uuid::from_u128(2));
    vec![
        WorkerMessage::Hello(Hello {
            protocol: PROTOCOL.into(),
            version: PROTOCOL_VERSION,
            build: "0.1.0".into(),
            os: "linux".into(),
            arch: "x86_64".into(),
            slots: 4,
            capabilities: vec!["ollama".into(), "openai".into()],
            credentials: vec!["openai".into()],
            outbound: Some(OutboundReach {
                block_local: true,
                allowlist: vec!["10.0.0.0/8".into()],
            }),
            leases: vec![HeldLease { run_id, lease_id }],
        }),
        WorkerMessage::Credentials {
            providers: vec!["openai".into(), "local llama".into()],
        },
        WorkerMessage::Health {
            health: contracts::WorkerHealth {
                cpu_percent: Some(12.5),
                memory_percent: Some(40.0),
                disk_free_bytes: Some(1 << 30),
                disk_total_bytes: Some(1 << 34),
                load_1m: Some(0.7),
            },
        },
        WorkerMessage::Health {
            health: contracts::WorkerHealth::default(),
        },
        WorkerMessage::Probed {
            probe_id: run_id,
            outcome: ProbeOutcome::Connected {
                models: vec!["gpt-4o-mini".into()],
                latency_ms: 12,
            },
        },
        WorkerMessage::Probed {
            probe_id: run_id,
            outcome: ProbeOutcome::Failed {
                error: "credentials_rejected: 401".into(),
            },
        },
        WorkerMessage::Accept { run_id, lease_id },
        WorkerMessage::Decline {
            run_id,
            lease_id,
            reason: "no free slot".into(),
        },
        WorkerMessage::Extend { run_id, lease_id },
        WorkerMessage::Event {
            run_id,
            lease_id,
            seq: 1,
            events: vec![JobEvent {
                kind: RunEventKind::ValidationError,
                data: json!({"attempt": 1}),
            }],
            progress: Some(JobProgress {
                attempts: 1,
                raw_output: Some("x".into()),
            }),
        },
        WorkerMessage::Result {
            run_id,
            lease_id,
            result: result(JobOutcome::Succeeded {
                output: json!({}),
                attempt: json!({"attempt": 1}),
            }),
        },
        WorkerMessage::Result {
            run_id,
            lease_id,
            result: result(JobOutcome::Failed { error: "e".into() }),
        },
        WorkerMessage::Result {
            run_id,
            lease_id,
            result: result(JobOutcome::Canceled),
        },
        WorkerMessage::Pong { nonce: 7 },
    ]
}

fn server_samples() -> Vec<ServerMessage> {
    let (run_id, lease_id) = (Uuid::from_u128(1), Uuid::from_u128(2));
    vec![
        ServerMessage::Welcome {
            worker_id: Uuid::from_u128(3),
            heartbeat_secs: 30,
            lease_secs: 30,
            ack_timeout_secs: 5,
        },
        ServerMessage::Rejected {
            reason: "revoked".into(),
        },
        ServerMessage::Assign {
            run_id,
            lease_id,
            job: Box::new(job()),
        },
        ServerMessage::Extended { run_id, lease_id },
        ServerMessage::LeaseLost {
            run_id,
            reason: "expired".into(),
        },
        ServerMessage::Cancel { run_id },
        ServerMessage::ResultAck {
            run_id,
            accepted: true,
        },
        ServerMessage::Ping { nonce: 7 },
        ServerMessage::Draining,
        ServerMessage::Probe {
            probe_id: Uuid::from_u128(9),
            provider: ProviderEndpoint {
                kind: ProviderKind::Openai,
                base_url: None,
                api_key: None,
                credential: Some("openai".into()),
            },
        },
    ]
}

fn document() -> Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/asyncapi.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// The tags an operation of the document lists.
fn operation(doc: &Value, name: &str) -> BTreeSet<String> {
    doc["operations"][name]["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            let reference = m["$ref"].as_str().unwrap();
            reference.rsplit('/').next().unwrap().to_owned()
        })
        .collect()
}

fn check(doc: &Value, tag: &str, sample: Value) {
    let payload = &doc["components"]["messages"][tag]["payload"];
    assert!(payload.is_object(), "{tag} is not documented");
    let validator = jsonschema::validator_for(payload).unwrap();
    let errors: Vec<String> = validator
        .iter_errors(&sample)
        .map(|e| e.to_string())
        .collect();
    assert!(errors.is_empty(), "{tag}: {errors:?}\n{sample}");
    // Every documented property exists in the type (a sample with all of them set).
    let documented: BTreeSet<&str> = payload["properties"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    let actual: BTreeSet<&str> = sample
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        documented, actual,
        "{tag}: documented vs. serialized fields"
    );
}

#[test]
fn every_message_is_documented_in_its_direction_and_matches_its_payload() {
    let doc = document();
    let sent = operation(&doc, "sendToServer");
    let received = operation(&doc, "receiveFromServer");
    let mut worker_tags = BTreeSet::new();
    for sample in worker_samples() {
        let tag = worker_tag(&sample);
        worker_tags.insert(tag.to_owned());
        check(&doc, tag, serde_json::to_value(&sample).unwrap());
    }
    let mut server_tags = BTreeSet::new();
    for sample in server_samples() {
        let tag = server_tag(&sample);
        server_tags.insert(tag.to_owned());
        check(&doc, tag, serde_json::to_value(&sample).unwrap());
    }
    assert_eq!(sent, worker_tags, "worker → server messages");
    assert_eq!(received, server_tags, "server → worker messages");
    let all: BTreeSet<String> = doc["components"]["messages"]
        .as_object()
        .unwrap()
        .keys()
        .cloned()
        .collect();
    assert_eq!(
        all,
        worker_tags.union(&server_tags).cloned().collect(),
        "nothing documented beyond the types"
    );
}

#[test]
fn a_message_that_differs_from_the_document_is_caught() {
    let doc = document();
    let mut wrong = serde_json::to_value(WorkerMessage::Pong { nonce: 1 }).unwrap();
    wrong["nonce"] = json!("one");
    let validator =
        jsonschema::validator_for(&doc["components"]["messages"]["pong"]["payload"]).unwrap();
    assert!(!validator.is_valid(&wrong));
}
