//! Workers: registration tokens, registration, the worker list with each worker's live
//! state, enable/disable/rename/revoke, and the pool's counts. Owns the `worker_tokens`
//! table, the `workers` table's edits (sessions record what a worker says about itself) and
//! the topics `workers` and `pool`.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use contracts::{
    CreateWorkerToken, CreatedWorkerToken, EventKind, Pool, RegisterWorker, RegisteredWorker,
    SetWorkerTags, Topic, UpdateWorker, Worker, WorkerDetail, WorkerStatus, WorkerToken,
};
use sea_orm::{DatabaseConnection, DbErr, TransactionTrait};
use uuid::Uuid;

use crate::background::Background;
use crate::db::{runs, tags, worker_tokens, workers};
use crate::domain::credentials::{self, KEY_PREFIX, TOKEN_PREFIX};
use crate::domain::fields::{WORKER_NAME_RULE, is_worker_name};
use crate::domain::{Invalid, new_id, now};
use crate::events::EventHub;
use crate::services::runs::Live;
use crate::services::{Runs, Tags};

/// Default and bounds of a registration token's lifetime.
const DEFAULT_TTL_SECS: u32 = 3600;
const MIN_TTL_SECS: u32 = 60;
const MAX_TTL_SECS: u32 = 30 * 24 * 3600;
const MAX_NOTE_CHARS: usize = 200;
/// Runs listed on a worker's detail.
const RECENT_RUNS: u64 = 20;
/// The pool's counts are published at most this often.
const POOL_PERIOD: Duration = Duration::from_millis(250);

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Invalid(#[from] Invalid),
    #[error("no worker with id {0}")]
    NotFound(Uuid),
    #[error("no registration token with id {0}")]
    TokenNotFound(Uuid),
    #[error("the registration token was used; a used token cannot be revoked")]
    TokenUsed,
    #[error("a worker with this name already exists")]
    DuplicateName,
    #[error("the built-in worker cannot be deleted; disable it instead")]
    Builtin,
    #[error("{0}")]
    Unauthorized(&'static str),
    #[error(transparent)]
    Tags(#[from] crate::services::tags::Error),
    #[error(transparent)]
    Db(#[from] DbErr),
}

#[derive(Clone)]
pub struct Workers {
    db: DatabaseConnection,
    events: Arc<EventHub>,
    runs: Runs,
    tags: Tags,
}

impl Workers {
    /// The service, and its publisher of the topics `workers` and `pool`.
    pub fn start(
        db: DatabaseConnection,
        events: Arc<EventHub>,
        runs: Runs,
        tags: Tags,
        background: &Background,
    ) -> Workers {
        let workers = Workers {
            db,
            events,
            runs,
            tags,
        };
        workers.spawn_publisher(background);
        workers
    }

    /// Creates a registration token; the token is in the answer and nowhere else.
    pub async fn create_token(&self, body: CreateWorkerToken) -> Result<CreatedWorkerToken, Error> {
        let ttl = body.ttl_secs.unwrap_or(DEFAULT_TTL_SECS);
        if !(MIN_TTL_SECS..=MAX_TTL_SECS).contains(&ttl) {
            return Err(Invalid::field(
                "/ttl_secs",
                format!("must be between {MIN_TTL_SECS} and {MAX_TTL_SECS} seconds"),
            )
            .into());
        }
        let note = body.note.unwrap_or_default();
        if note.chars().count() > MAX_NOTE_CHARS || note.contains('\0') {
            return Err(Invalid::field(
                "/note",
                format!("at most {MAX_NOTE_CHARS} characters, without NUL"),
            )
            .into());
        }
        let tag_ids = self.tags.resolve("/tags", &body.tags).await?;
        let token = credentials::generate(TOKEN_PREFIX);
        let created = now();
        let row = worker_tokens::Model {
            id: new_id(),
            token_hash: credentials::hash(&token),
            note: note.trim().to_owned(),
            expires_at: crate::db::queue::after(created, Duration::from_secs(u64::from(ttl))),
            used_at: None,
            worker_id: None,
            created_at: created,
        };
        let txn = self.db.begin().await?;
        let row = worker_tokens::insert(&txn, row).await?;
        tags::set_token(&txn, row.id, &tag_ids).await?;
        txn.commit().await?;
        tracing::info!(token.id = %row.id, ttl_secs = ttl, tags = tag_ids.len(),
            "worker registration token created");
        let names = tags::names_of(&self.db, tag_ids).await?;
        Ok(CreatedWorkerToken {
            token,
            details: row.to_contract(now(), names),
        })
    }

    pub async fn list_tokens(&self) -> Result<Vec<WorkerToken>, Error> {
        let at = now();
        let mut tags = tags::of_tokens(&self.db).await?;
        Ok(worker_tokens::list(&self.db)
            .await?
            .iter()
            .map(|t| t.to_contract(at, tags.remove(&t.id).unwrap_or_default()))
            .collect())
    }

    /// Revokes (deletes) an unused token.
    pub async fn revoke_token(&self, id: Uuid) -> Result<(), Error> {
        if worker_tokens::delete_unused(&self.db, id).await? {
            tracing::info!(token.id = %id, "worker registration token revoked");
            return Ok(());
        }
        match worker_tokens::find(&self.db, id).await? {
            Some(_) => Err(Error::TokenUsed),
            None => Err(Error::TokenNotFound(id)),
        }
    }

    /// Registers a worker with a registration token (used up by it) and returns the
    /// worker's key, shown this once.
    pub async fn register(&self, body: RegisterWorker) -> Result<RegisteredWorker, Error> {
        let id = new_id();
        let name = match body.name {
            Some(name) => check_name(&name)?,
            None => format!("worker-{}", &id.simple().to_string()[24..]),
        };
        let token_hash = credentials::hash(&body.token);
        let key = credentials::generate(KEY_PREFIX);
        let txn = self.db.begin().await?;
        let Some(token_id) = worker_tokens::redeem(&txn, &token_hash, id, now()).await? else {
            return Err(Error::Unauthorized(
                match worker_tokens::find_by_hash(&txn, &token_hash).await? {
                    Some(t) if t.used_at.is_some() => {
                        "the registration token was already used; create a new one"
                    }
                    Some(_) => "the registration token expired; create a new one",
                    None => "unknown registration token (revoked, or never issued)",
                },
            ));
        };
        if workers::find_by_name(&txn, &name).await?.is_some() {
            return Err(Error::DuplicateName);
        }
        let row =
            workers::insert_remote(&txn, id, &name, Some(credentials::hash(&key)), now()).await?;
        // The token's tags, and only those: a worker never sets its own.
        let given = tags::ids_of_token(&txn, token_id).await?;
        tags::set_worker(&txn, id, &given).await?;
        txn.commit().await?;
        tracing::info!(worker.id = %id, worker.name = %name, "worker registered");
        self.runs.worker_facts_changed(id).await?;
        let given = tags::of_worker(&self.db, id).await?;
        self.publish_worker(EventKind::Created, &row, None, given);
        Ok(RegisteredWorker {
            worker_id: id,
            name,
            key,
        })
    }

    /// The worker a key belongs to.
    pub async fn authenticate(&self, key: &str) -> Result<workers::Model, Error> {
        workers::find_by_key_hash(&self.db, &credentials::hash(key))
            .await?
            .ok_or(Error::Unauthorized(
                "unknown worker key: the worker was revoked or never registered",
            ))
    }

    pub async fn list(&self) -> Result<Vec<Worker>, Error> {
        let live = self.runs.live();
        let mut tags = tags::of_workers(&self.db).await?;
        Ok(workers::list(&self.db)
            .await?
            .iter()
            .map(|row| {
                view(
                    row,
                    live.get(&row.id),
                    tags.remove(&row.id).unwrap_or_default(),
                )
            })
            .collect())
    }

    pub async fn get(&self, id: Uuid) -> Result<WorkerDetail, Error> {
        let row = workers::find(&self.db, id)
            .await?
            .ok_or(Error::NotFound(id))?;
        let recent = runs::recent_of_worker(&self.db, id, RECENT_RUNS).await?;
        let tags = tags::of_worker(&self.db, id).await?;
        Ok(WorkerDetail {
            worker: view(&row, self.runs.live().get(&id), tags),
            recent_runs: recent
                .iter()
                .map(runs::run::Model::to_contract)
                .collect::<Result<_, _>>()?,
            health_history: crate::db::health::history(&self.db, id).await?,
        })
    }

    /// Renames, enables or disables a worker. Disabling disconnects it and requeues its runs.
    pub async fn update(&self, id: Uuid, body: UpdateWorker) -> Result<Worker, Error> {
        let mut row = workers::find(&self.db, id)
            .await?
            .ok_or(Error::NotFound(id))?;
        if let Some(name) = body.name {
            let name = check_name(&name)?;
            if name != row.name {
                if workers::find_by_name(&self.db, &name).await?.is_some() {
                    return Err(Error::DuplicateName);
                }
                row = workers::rename(&self.db, id, &name, now())
                    .await?
                    .ok_or(Error::NotFound(id))?;
            }
        }
        if let Some(enabled) = body.enabled
            && enabled != row.enabled
        {
            row = workers::set_enabled(&self.db, id, enabled, now())
                .await?
                .ok_or(Error::NotFound(id))?;
            if row.builtin {
                self.runs.set_builtin(&row, enabled).await?;
            } else if !enabled {
                self.runs.disconnect(id, "the worker was disabled").await?;
            }
            tracing::info!(worker.id = %id, enabled, "worker switched");
        }
        self.runs.worker_facts_changed(id).await?;
        let tags = tags::of_worker(&self.db, id).await?;
        let worker = view(&row, self.runs.live().get(&id), tags);
        self.events
            .publish(Topic::Workers, EventKind::Updated, id, &worker);
        Ok(worker)
    }

    /// Replaces a worker's tags with `body.tags` (existing tags; duplicates count once).
    pub async fn set_tags(&self, id: Uuid, body: SetWorkerTags) -> Result<Worker, Error> {
        let row = workers::find(&self.db, id)
            .await?
            .ok_or(Error::NotFound(id))?;
        let wanted = self.tags.resolve("/tags", &body.tags).await?;
        // Read before the transaction, which then starts with its write: on SQLite a
        // transaction that reads first cannot become a writer once another connection has
        // written meanwhile (SQLITE_BUSY_SNAPSHOT, no waiting). `before` only decides which
        // tags' counts are published again.
        let before = tags::ids_of_worker(&self.db, id).await?;
        let txn = self.db.begin().await?;
        tags::set_worker(&txn, id, &wanted).await?;
        txn.commit().await?;
        let names = tags::names_of(&self.db, wanted.clone()).await?;
        tracing::info!(worker.id = %id, tags = ?names, "worker tags set");
        self.runs.worker_facts_changed(id).await?;
        let worker = view(&row, self.runs.live().get(&id), names);
        self.events
            .publish(Topic::Workers, EventKind::Updated, id, &worker);
        let changed: BTreeSet<Uuid> = before
            .iter()
            .copied()
            .collect::<BTreeSet<_>>()
            .symmetric_difference(&wanted.iter().copied().collect())
            .copied()
            .collect();
        self.tags.counts_changed(&changed).await;
        Ok(worker)
    }

    /// Deletes a tag; the workers that carried it are published without it.
    pub async fn delete_tag(&self, id: Uuid) -> Result<(), Error> {
        let carriers = self.tags.delete(id).await?;
        let live = self.runs.live();
        for worker_id in carriers {
            self.runs.worker_facts_changed(worker_id).await?;
            if let Some(row) = workers::find(&self.db, worker_id).await? {
                let names = tags::of_worker(&self.db, worker_id).await?;
                self.publish_worker(EventKind::Updated, &row, live.get(&worker_id), names);
            }
        }
        Ok(())
    }

    /// Revokes a remote worker: its key stops working, its connection closes and its runs
    /// go back to the queue.
    pub async fn delete(&self, id: Uuid) -> Result<(), Error> {
        let row = workers::find(&self.db, id)
            .await?
            .ok_or(Error::NotFound(id))?;
        if row.builtin {
            return Err(Error::Builtin);
        }
        workers::delete_remote(&self.db, id).await?;
        self.runs.disconnect(id, "the worker was revoked").await?;
        self.runs.worker_facts_changed(id).await?;
        tracing::info!(worker.id = %id, "worker revoked");
        self.events.publish(
            Topic::Workers,
            EventKind::Deleted,
            id,
            &serde_json::json!({"id": id}),
        );
        Ok(())
    }

    pub async fn pool(&self) -> Result<Pool, Error> {
        pool(&self.db, &self.runs).await
    }

    fn publish_worker(
        &self,
        kind: EventKind,
        row: &workers::Model,
        live: Option<&Live>,
        tags: Vec<String>,
    ) {
        self.events
            .publish(Topic::Workers, kind, row.id, &view(row, live, tags));
    }

    /// Publishes workers whose connection changed, and the pool's counts when anything
    /// changed (at most every `POOL_PERIOD`).
    fn spawn_publisher(&self, background: &Background) {
        let Some(mut changes) = self.runs.take_worker_changes() else {
            return;
        };
        let this = self.clone();
        let stopping = background.stopping();
        background.spawn(async move {
            let mut stopping = std::pin::pin!(stopping);
            let mut tick = tokio::time::interval(POOL_PERIOD);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut last: Option<Pool> = None;
            loop {
                tokio::select! {
                    () = &mut stopping => return,
                    Some(id) = changes.recv() => {
                        let found = async {
                            let row = workers::find(&this.db, id).await?;
                            Ok::<_, DbErr>((row, tags::of_worker(&this.db, id).await?))
                        };
                        match found.await {
                            Ok((Some(row), tags)) => {
                                let live = this.runs.live();
                                this.publish_worker(EventKind::Updated, &row, live.get(&id), tags);
                            }
                            Ok((None, _)) => {}
                            Err(err) => tracing::warn!(error = %err, "worker event not published"),
                        }
                    }
                    _ = tick.tick() => {
                        if !this.runs.pool_changed() {
                            continue;
                        }
                        match pool(&this.db, &this.runs).await {
                            Ok(now) if last != Some(now) => {
                                this.events.publish(Topic::Pool, EventKind::Updated, Uuid::nil(), &now);
                                last = Some(now);
                            }
                            Ok(_) => {}
                            Err(err) => tracing::warn!(error = %err, "pool counts not published"),
                        }
                    }
                }
            }
        });
    }
}

async fn pool(db: &DatabaseConnection, runs: &Runs) -> Result<Pool, Error> {
    let live = runs.live();
    let rows = workers::list(db).await?;
    let (running, queued) = runs.counts().await?;
    let mut pool = Pool {
        runs_running: running,
        runs_queued: queued,
        ..Pool::default()
    };
    for row in &rows {
        let live = live.get(&row.id);
        match status(row, live) {
            WorkerStatus::Online => {
                pool.online += 1;
                if live.is_some_and(|l| !l.runs.is_empty()) {
                    pool.busy += 1;
                } else {
                    pool.idle += 1;
                }
            }
            WorkerStatus::Unhealthy => pool.unhealthy += 1,
            WorkerStatus::Offline => pool.offline += 1,
            WorkerStatus::Disabled => pool.disabled += 1,
        }
    }
    Ok(pool)
}

fn status(row: &workers::Model, live: Option<&Live>) -> WorkerStatus {
    match live {
        _ if !row.enabled => WorkerStatus::Disabled,
        None => WorkerStatus::Offline,
        Some(live) if live.unhealthy || live.disk_full => WorkerStatus::Unhealthy,
        Some(_) => WorkerStatus::Online,
    }
}

/// A worker as the API shows it: its row and, when connected, its live state.
fn view(row: &workers::Model, live: Option<&Live>, tags: Vec<String>) -> Worker {
    let mut current: Vec<Uuid> = live.map(|l| l.runs.clone()).unwrap_or_default();
    current.sort();
    let slots = live.map_or_else(|| u32::try_from(row.slots).unwrap_or(0), |l| l.slots);
    Worker {
        id: row.id,
        name: row.name.clone(),
        builtin: row.builtin,
        enabled: row.enabled,
        status: status(row, live),
        version: row.build.clone(),
        os: row.os.clone(),
        arch: row.arch.clone(),
        address: row.address.clone(),
        slots,
        slots_in_use: u32::try_from(current.len()).unwrap_or(u32::MAX),
        current_runs: current,
        tags,
        credentials: row.credentials(),
        capabilities: row
            .kinds()
            .map(|k| k.into_iter().collect())
            .unwrap_or_default(),
        local_networks: row.outbound().map(|reach| !reach.block_local),
        health: row.health(),
        health_at: row.health_at,
        unhealthy_reason: live.and_then(|l| {
            if l.disk_full {
                Some(format!(
                    "its disk is full (less than {} MiB free)",
                    crate::services::runs::MIN_FREE_DISK_BYTES / (1024 * 1024)
                ))
            } else if l.unhealthy {
                Some(
                    "it stopped accepting assignments; it gets work again once it accepts one"
                        .to_owned(),
                )
            } else {
                None
            }
        }),
        last_seen_at: row.last_seen_at,
        created_at: row.created_at,
    }
}

/// A worker name (`fields::is_worker_name`).
fn check_name(name: &str) -> Result<String, Invalid> {
    if is_worker_name(name) {
        Ok(name.to_owned())
    } else {
        Err(Invalid::field("/name", WORKER_NAME_RULE))
    }
}
