//! Concurrency groups: caps on how many runs of a set of agents workers hold at once (offered
//! or running), across every worker. Owns the `concurrency_groups` table and the topic
//! `concurrency`; the dispatcher enforces the limits (runs/dispatch.rs, db/queue.rs `claim`)
//! and this service publishes the groups' live counts, coalesced.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use contracts::{
    ConcurrencyGroup, CreateConcurrencyGroup, EventKind, MAX_GROUP_LIMIT, Topic,
    UpdateConcurrencyGroup,
};
use sea_orm::{DatabaseConnection, DbErr};
use uuid::Uuid;

use super::Runs;
use crate::background::Background;
use crate::db::concurrency::{self, Counts, group};
use crate::domain::fields::Problems;
use crate::domain::{Invalid, new_id, now};
use crate::events::EventHub;

/// Counts are published at most this often per group.
const COUNTS_PERIOD: Duration = Duration::from_millis(250);

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Invalid(#[from] Invalid),
    #[error("no concurrency group with id {0}")]
    NotFound(Uuid),
    #[error("a concurrency group with this name already exists")]
    DuplicateName,
    #[error("agents are in this concurrency group ({0}); move them out of it first")]
    InUse(String),
    #[error(transparent)]
    Db(#[from] DbErr),
}

#[derive(Clone)]
pub struct ConcurrencyGroups {
    db: DatabaseConnection,
    events: Arc<EventHub>,
    runs: Runs,
}

impl ConcurrencyGroups {
    /// The service, and its publisher of live counts.
    pub fn start(
        db: DatabaseConnection,
        events: Arc<EventHub>,
        runs: Runs,
        background: &Background,
    ) -> ConcurrencyGroups {
        let groups = ConcurrencyGroups { db, events, runs };
        groups.spawn_publisher(background);
        groups
    }

    /// Every group by name, with its counts.
    pub async fn list(&self) -> Result<Vec<ConcurrencyGroup>, Error> {
        let rows = concurrency::list(&self.db).await?;
        let counts = concurrency::counts(&self.db, None).await?;
        let agents = concurrency::agent_counts(&self.db).await?;
        Ok(rows
            .iter()
            .map(|row| view(row, counts.get(&row.id).copied(), &agents))
            .collect())
    }

    pub async fn get(&self, id: Uuid) -> Result<ConcurrencyGroup, Error> {
        let row = concurrency::find(&self.db, id)
            .await?
            .ok_or(Error::NotFound(id))?;
        self.view_of(&row).await
    }

    pub async fn create(&self, body: CreateConcurrencyGroup) -> Result<ConcurrencyGroup, Error> {
        let (name, limit, note) = validate(body)?;
        if concurrency::find_by_name(&self.db, &name).await?.is_some() {
            return Err(Error::DuplicateName);
        }
        let at = now();
        let row = group::Model {
            id: new_id(),
            name,
            max_running: limit,
            note,
            created_at: at,
            updated_at: at,
        };
        let row = concurrency::insert(&self.db, row)
            .await
            .map_err(write_error)?;
        tracing::info!(group.id = %row.id, group.name = %row.name, limit = row.max_running,
            "concurrency group created");
        self.runs.groups_changed(true);
        let group = view(&row, None, &HashMap::new());
        self.events
            .publish(Topic::Concurrency, EventKind::Created, row.id, &group);
        Ok(group)
    }

    /// Replaces name, limit and note. A lower limit stops new starts until the group is under
    /// it (runs already running finish); a higher one lets queued runs start at once.
    pub async fn update(
        &self,
        id: Uuid,
        body: UpdateConcurrencyGroup,
    ) -> Result<ConcurrencyGroup, Error> {
        let existing = concurrency::find(&self.db, id)
            .await?
            .ok_or(Error::NotFound(id))?;
        let (name, limit, note) = validate(body)?;
        if name != existing.name && concurrency::find_by_name(&self.db, &name).await?.is_some() {
            return Err(Error::DuplicateName);
        }
        let row = group::Model {
            name,
            max_running: limit,
            note,
            updated_at: now(),
            ..existing
        };
        let row = concurrency::update(&self.db, row)
            .await
            .map_err(write_error)?
            .ok_or(Error::NotFound(id))?;
        tracing::info!(group.id = %id, limit = row.max_running, "concurrency group updated");
        self.runs.groups_changed(true);
        let group = self.view_of(&row).await?;
        self.events
            .publish(Topic::Concurrency, EventKind::Updated, id, &group);
        Ok(group)
    }

    /// Deletes a group no agent is in; its unfinished runs count against nothing from now on.
    pub async fn delete(&self, id: Uuid) -> Result<(), Error> {
        let row = concurrency::find(&self.db, id)
            .await?
            .ok_or(Error::NotFound(id))?;
        let agents = crate::db::agents::in_group(&self.db, id).await?;
        if !agents.is_empty() {
            return Err(Error::InUse(agents.join(", ")));
        }
        let last = self.view_of(&row).await?;
        if !concurrency::delete(&self.db, id).await? {
            return Err(Error::NotFound(id));
        }
        tracing::info!(group.id = %id, "concurrency group deleted");
        let any = concurrency::any(&self.db).await?;
        self.runs.group_deleted(id, any).await?;
        self.events
            .publish(Topic::Concurrency, EventKind::Deleted, id, &last);
        Ok(())
    }

    async fn view_of(&self, row: &group::Model) -> Result<ConcurrencyGroup, Error> {
        let counts = concurrency::counts(&self.db, Some(&[row.id])).await?;
        let agents = concurrency::agent_counts(&self.db).await?;
        Ok(view(row, counts.get(&row.id).copied(), &agents))
    }

    /// Publishes the counts of groups whose runs changed, at most every `COUNTS_PERIOD`.
    fn spawn_publisher(&self, background: &Background) {
        let this = self.clone();
        let stopping = background.stopping();
        background.spawn(async move {
            let mut stopping = std::pin::pin!(stopping);
            let mut tick = tokio::time::interval(COUNTS_PERIOD);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut last: HashMap<Uuid, Counts> = HashMap::new();
            loop {
                tokio::select! {
                    () = &mut stopping => return,
                    _ = tick.tick() => {
                        let changed = this.runs.take_group_changes();
                        if changed.is_empty() {
                            continue;
                        }
                        if let Err(err) = this.publish_counts(&changed, &mut last).await {
                            tracing::warn!(error = %err, "concurrency counts not published");
                        }
                    }
                }
            }
        });
    }

    async fn publish_counts(
        &self,
        changed: &[Uuid],
        last: &mut HashMap<Uuid, Counts>,
    ) -> Result<(), DbErr> {
        let counts = concurrency::counts(&self.db, Some(changed)).await?;
        let mut agents = None;
        for &id in changed {
            let now = counts.get(&id).copied().unwrap_or_default();
            if last.get(&id) == Some(&now) {
                continue;
            }
            let Some(row) = concurrency::find(&self.db, id).await? else {
                last.remove(&id);
                continue;
            };
            if agents.is_none() {
                agents = Some(concurrency::agent_counts(&self.db).await?);
            }
            let group = view(&row, Some(now), agents.as_ref().unwrap_or(&HashMap::new()));
            self.events
                .publish(Topic::Concurrency, EventKind::Updated, id, &group);
            last.insert(id, now);
        }
        Ok(())
    }
}

/// Name, limit and trimmed note of a valid body.
fn validate(body: CreateConcurrencyGroup) -> Result<(String, i32, String), Invalid> {
    let mut problems = Problems::new();
    if let Err(why) = super::tags::check_name(&body.name) {
        problems.add("/name", why);
    }
    if !(1..=MAX_GROUP_LIMIT).contains(&body.limit) {
        problems.add("/limit", format!("must be between 1 and {MAX_GROUP_LIMIT}"));
    }
    let note = super::tags::check_note(&mut problems, body.note);
    problems.finish(())?;
    let limit = i32::try_from(body.limit).unwrap_or(i32::MAX);
    Ok((body.name, limit, note))
}

/// Two requests racing for one name: the unique index refuses the second.
fn write_error(err: DbErr) -> Error {
    match crate::db::violation(&err) {
        Some(crate::db::Violation::Unique) => Error::DuplicateName,
        _ => Error::Db(err),
    }
}

fn view(
    row: &group::Model,
    counts: Option<Counts>,
    agents: &HashMap<Uuid, u32>,
) -> ConcurrencyGroup {
    let counts = counts.unwrap_or_default();
    ConcurrencyGroup {
        id: row.id,
        name: row.name.clone(),
        limit: u32::try_from(row.max_running).unwrap_or(0),
        note: row.note.clone(),
        active: counts.active,
        queued: counts.queued,
        agents: agents.get(&row.id).copied().unwrap_or(0),
        created_at: row.created_at,
        updated_at: row.updated_at,
    }
}
