//! Registry micro-benchmarks: `get_or_create` when the instance is alive (hit), when eight
//! tasks ask for the same key at once (hit under contention), and when every call is a new
//! revision (build: client, validators, template). `just bench` reads the estimates into
//! docs/benchmarks.md.
#![expect(clippy::unwrap_used, reason = "benchmark set-up")]
#![expect(
    clippy::disallowed_methods,
    reason = "contending callers on their own tasks"
)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use agentry::db::{Wire, agents, providers, tasks};
use agentry::outbound::{GuardedClient, OutboundPolicy, Timeouts};
use agentry::secrets::Keyring;
use agentry::services::runs::runnable::Runnables;
use chrono::Utc;
use contracts::{ProviderKind, ValidationStatus};
use criterion::{Criterion, criterion_group, criterion_main};
use serde_json::json;
use uuid::Uuid;

fn registry() -> Runnables {
    let policy = Arc::new(OutboundPolicy::new(false, &[]).unwrap());
    let timeouts = Timeouts {
        connect: Duration::from_secs(1),
        total: Duration::from_secs(1),
    };
    let client = GuardedClient::new(policy, timeouts).unwrap();
    Runnables::new(Arc::new(Keyring::new([7; 32], Vec::new())), client)
}

/// Rows shaped like the harness's fixtures: an OpenAI-compatible provider, an agent with a
/// prompt template, the sentiment task.
fn rows(revision: i64) -> (agents::Model, tasks::Model, providers::Model) {
    let now = Utc::now();
    let provider = providers::Model {
        id: Uuid::from_u128(3),
        name: "stub".into(),
        kind: Wire(ProviderKind::OpenaiCompatible),
        base_url: Some("http://127.0.0.1:9/v1".into()),
        api_key_ciphertext: None,
        api_key_hint: None,
        credential_location: Wire(contracts::CredentialLocation::Server),
        credential_workers: "[]".into(),
        checked_by: None,
        validation_status: Wire(ValidationStatus::Connected),
        validation_error: None,
        validated_at: None,
        latency_ms: None,
        models: json!([]),
        is_active: true,
        revision: 1,
        created_at: now,
        updated_at: now,
    };
    let agent = agents::Model {
        id: Uuid::from_u128(1),
        name: "classifier".into(),
        description: String::new(),
        provider_id: provider.id,
        model: "stub-model".into(),
        system_prompt: "You classify the sentiment of texts.".into(),
        user_prompt: Some("Text: {{ text }}".into()),
        temperature: Some(0.0),
        max_tokens: None,
        max_retries: 2,
        timeout_secs: 30,
        queue_timeout_secs: 300,
        worker_names: "[]".into(),
        required_tags: "[]".into(),
        concurrency_group_id: None,
        revision,
        created_at: now,
        updated_at: now,
    };
    let task = tasks::Model {
        id: Uuid::from_u128(2),
        name: "sentiment".into(),
        description: String::new(),
        request_schema: Some(json!({"type": "object",
            "properties": {"text": {"type": "string", "minLength": 1}}, "required": ["text"]})),
        response_schema: json!({"type": "object", "properties": {
            "sentiment": {"enum": ["positive", "negative", "neutral"]},
            "score": {"type": "number", "minimum": 0, "maximum": 1}},
            "required": ["sentiment", "score"], "additionalProperties": false}),
        revision: 1,
        created_at: now,
        updated_at: now,
    };
    (agent, task, provider)
}

fn benches(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let mut group = c.benchmark_group("registry");

    let registry = Arc::new(registry());
    let (agent, task, provider) = rows(1);
    // Held for the whole benchmark, so every lookup finds it alive.
    let _alive = runtime
        .block_on(registry.get(&agent, &task, &provider))
        .unwrap();
    group.bench_function("hit", |b| {
        b.iter_custom(|iters| {
            runtime.block_on(async {
                let started = Instant::now();
                for _ in 0..iters {
                    let found = registry.get(&agent, &task, &provider).await;
                    std::hint::black_box(found.unwrap());
                }
                started.elapsed()
            })
        });
    });

    group.bench_function("hit_contended", |b| {
        b.iter_custom(|iters| {
            runtime.block_on(async {
                let started = Instant::now();
                let mut workers = Vec::new();
                for _ in 0..8 {
                    let (registry, agent, task, provider) = (
                        Arc::clone(&registry),
                        agent.clone(),
                        task.clone(),
                        provider.clone(),
                    );
                    workers.push(tokio::spawn(async move {
                        for _ in 0..iters.div_ceil(8) {
                            let found = registry.get(&agent, &task, &provider).await;
                            std::hint::black_box(found.unwrap());
                        }
                    }));
                }
                for worker in workers {
                    worker.await.unwrap();
                }
                started.elapsed()
            })
        });
    });

    group.bench_function("build", |b| {
        let mut revision = 1_000;
        b.iter_custom(|iters| {
            let rows: Vec<_> = (0..iters)
                .map(|_| {
                    revision += 1;
                    rows(revision)
                })
                .collect();
            runtime.block_on(async {
                let started = Instant::now();
                for (agent, task, provider) in &rows {
                    // Dropped at once: the next call's key is new anyway.
                    let built = registry.get(agent, task, provider).await;
                    std::hint::black_box(built.unwrap());
                }
                started.elapsed()
            })
        });
    });
    group.finish();
}

criterion_group!(registry_benches, benches);
criterion_main!(registry_benches);
