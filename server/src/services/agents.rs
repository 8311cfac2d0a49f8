//! Agents: a provider, a model, prompts and parameters. Owns the `agent_configs` table's
//! writes and every event on topic `agents`.

use std::sync::Arc;

use contracts::{Agent, CreateAgent, EventKind, Page, Topic, UpdateAgent};
use sea_orm::{DatabaseConnection, DbErr};
use tracing::field::{Empty, display};
use uuid::Uuid;

use crate::db::{Violation, agents, providers, views, violation};
use crate::domain::agents::validate;
use crate::domain::{Invalid, new_id, now};
use crate::events::EventHub;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Invalid(#[from] Invalid),
    #[error("no {resource} with id {id}")]
    NotFound { resource: &'static str, id: Uuid },
    #[error("an agent with this name already exists")]
    DuplicateName,
    #[error(transparent)]
    Db(#[from] DbErr),
}

#[derive(Clone)]
pub struct Agents {
    db: DatabaseConnection,
    events: Arc<EventHub>,
}

impl Agents {
    pub fn new(db: DatabaseConnection, events: Arc<EventHub>) -> Agents {
        Agents { db, events }
    }

    /// Agents, oldest first, each with its provider and assigned tasks.
    pub async fn list(&self, limit: u64, offset: u64) -> Result<Page<Agent>, Error> {
        let (rows, total) = agents::list(&self.db, limit, offset).await?;
        Ok(Page {
            items: views::agents(&self.db, rows).await?,
            total,
            limit,
            offset,
        })
    }

    pub async fn get(&self, id: Uuid) -> Result<Agent, Error> {
        views::agent(&self.db, id).await?.ok_or(Error::NotFound {
            resource: "agent",
            id,
        })
    }

    /// Creates an agent on an active provider. The view is assembled from the rows already
    /// read and written: a new agent has no tasks.
    #[tracing::instrument(name = "agents.create", skip_all, fields(agent.id = Empty))]
    pub async fn create(&self, body: CreateAgent) -> Result<Agent, Error> {
        self.references_exist(&body).await?;
        let valid = validate(body)?;
        let provider = self.provider_for(valid.provider_id, None).await?;
        let id = new_id();
        tracing::Span::current().record("agent.id", display(id));
        let now = now();
        let row = agents::insert(&self.db, to_row(id, valid, 1, now, now))
            .await
            .map_err(write_error)?;
        tracing::info!("agent created");
        let agent = views::assemble_agent(row, provider.to_summary(), Vec::new());
        self.events
            .publish(Topic::Agents, EventKind::Created, id, &agent);
        Ok(agent)
    }

    /// Replaces an agent's configuration and bumps its revision. Runs in flight keep the
    /// configuration they started with.
    #[tracing::instrument(name = "agents.update", skip_all, fields(agent.id = %id))]
    pub async fn update(&self, id: Uuid, body: UpdateAgent) -> Result<Agent, Error> {
        let existing = agents::find(&self.db, id).await?.ok_or(Error::NotFound {
            resource: "agent",
            id,
        })?;
        self.references_exist(&body).await?;
        let valid = validate(body)?;
        let provider = self
            .provider_for(valid.provider_id, Some(existing.provider_id))
            .await?;
        let row = to_row(id, valid, existing.revision, existing.created_at, now());
        let row = agents::update(&self.db, row)
            .await
            .map_err(write_error)?
            .ok_or(Error::NotFound {
                resource: "agent",
                id,
            })?;
        let agent = views::agent_with_provider(&self.db, row, &provider).await?;
        tracing::info!(agent.revision = agent.revision, "agent updated");
        self.events
            .publish(Topic::Agents, EventKind::Updated, id, &agent);
        // Tasks list their agents (name, model): those views changed too.
        let task_ids: Vec<Uuid> = agent.tasks.iter().map(|t| t.id).collect();
        super::tasks::publish_changed(&self.db, &self.events, &task_ids).await;
        Ok(agent)
    }

    /// Deletes an agent and its assignments. Past runs keep their configuration snapshot.
    #[tracing::instrument(name = "agents.delete", skip_all, fields(agent.id = %id))]
    pub async fn delete(&self, id: Uuid) -> Result<(), Error> {
        let last = views::agent(&self.db, id).await?;
        if !agents::delete(&self.db, id).await? {
            return Err(Error::NotFound {
                resource: "agent",
                id,
            });
        }
        tracing::info!("agent deleted");
        self.events
            .publish(Topic::Agents, EventKind::Deleted, id, &last);
        // Tasks list their agents: each task this agent had changed too.
        if let Some(agent) = &last {
            let task_ids: Vec<Uuid> = agent.tasks.iter().map(|t| t.id).collect();
            super::tasks::publish_changed(&self.db, &self.events, &task_ids).await;
        }
        Ok(())
    }

    /// Every required tag must exist (422 at its entry): a typo would otherwise make every
    /// run wait for a tag no worker can get. So must the concurrency group.
    async fn references_exist(&self, body: &CreateAgent) -> Result<(), Error> {
        super::tags::existing(&self.db, "/required_tags", &body.required_tags).await??;
        if let Some(group) = body.concurrency_group_id
            && crate::db::concurrency::find(&self.db, group)
                .await?
                .is_none()
        {
            return Err(Invalid::field(
                "/concurrency_group_id",
                format!("no concurrency group with id {group}"),
            )
            .into());
        }
        Ok(())
    }

    /// The provider must exist and be active (422 on `/provider_id` otherwise) — unless the
    /// agent already uses it: an agent on a soft-deleted provider can still be edited without
    /// being re-pointed. (A 422, not a 404: the request names the agent; the provider is a
    /// field of its body.)
    async fn provider_for(
        &self,
        provider_id: Uuid,
        current: Option<Uuid>,
    ) -> Result<providers::Model, Error> {
        let provider = providers::find(&self.db, provider_id)
            .await?
            .ok_or_else(|| Invalid::field("/provider_id", "refers to no provider"))?;
        if !provider.is_active && current != Some(provider_id) {
            return Err(Invalid::field(
                "/provider_id",
                "refers to a deleted provider; choose an active one",
            )
            .into());
        }
        Ok(provider)
    }
}

/// Publishes the current views of these agents as `updated` (their tasks changed), read in a
/// fixed number of queries. Best effort: the change itself is committed, so a failed read
/// only costs the events.
pub(super) async fn publish_changed(db: &DatabaseConnection, events: &EventHub, ids: &[Uuid]) {
    match agents::find_many(db, ids).await {
        Ok(rows) => publish_rows(db, events, rows).await,
        Err(err) => tracing::warn!(error = %err, "agent events not published"),
    }
}

/// Like `publish_changed`, for rows the caller has already read.
pub(super) async fn publish_rows(
    db: &DatabaseConnection,
    events: &EventHub,
    rows: Vec<agents::Model>,
) {
    match views::agents(db, rows).await {
        Ok(views) => {
            for view in views {
                events.publish(Topic::Agents, EventKind::Updated, view.id, &view);
            }
        }
        Err(err) => tracing::warn!(error = %err, "agent events not published"),
    }
}

/// A duplicate name is a 409; a provider deleted between the check and the write surfaces as
/// a foreign-key violation.
fn write_error(err: DbErr) -> Error {
    match violation(&err) {
        Some(Violation::Unique) => Error::DuplicateName,
        Some(Violation::ForeignKey) => {
            Invalid::field("/provider_id", "refers to a provider that no longer exists").into()
        }
        None => Error::Db(err),
    }
}

fn to_row(
    id: Uuid,
    input: CreateAgent,
    revision: i64,
    created_at: chrono::DateTime<chrono::Utc>,
    updated_at: chrono::DateTime<chrono::Utc>,
) -> agents::Model {
    agents::Model {
        id,
        name: input.name,
        description: input.description,
        provider_id: input.provider_id,
        model: input.model,
        system_prompt: input.system_prompt,
        user_prompt: input.user_prompt,
        temperature: input.temperature,
        max_tokens: input
            .max_tokens
            .map(|v| i32::try_from(v).unwrap_or(i32::MAX)),
        max_retries: i32::try_from(input.max_retries).unwrap_or(i32::MAX),
        timeout_secs: i32::try_from(input.timeout_secs).unwrap_or(i32::MAX),
        queue_timeout_secs: i32::try_from(input.queue_timeout_secs).unwrap_or(i32::MAX),
        worker_names: agents::to_names(&input.workers),
        required_tags: agents::to_names(&input.required_tags),
        concurrency_group_id: input.concurrency_group_id,
        revision,
        created_at,
        updated_at,
    }
}
