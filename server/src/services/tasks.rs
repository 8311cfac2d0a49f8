//! Tasks: request and response JSON Schemas. Owns the `task_configs` table's writes and every
//! event on topic `tasks`.

use std::sync::Arc;

use contracts::{CreateTask, EventKind, Page, Task, Topic, UpdateTask};
use sea_orm::{DatabaseConnection, DbErr};
use tracing::field::{Empty, display};
use uuid::Uuid;

use crate::db::{Violation, assignments, tasks, views, violation};
use crate::domain::tasks::validate;
use crate::domain::{Invalid, new_id, now};
use crate::events::EventHub;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Invalid(#[from] Invalid),
    #[error("no task with id {0}")]
    NotFound(Uuid),
    #[error("a task with this name already exists")]
    DuplicateName,
    #[error("the task is assigned to {0} agent(s)")]
    Assigned(u64),
    #[error(transparent)]
    Db(#[from] DbErr),
}

#[derive(Clone)]
pub struct Tasks {
    db: DatabaseConnection,
    events: Arc<EventHub>,
}

impl Tasks {
    pub fn new(db: DatabaseConnection, events: Arc<EventHub>) -> Tasks {
        Tasks { db, events }
    }

    /// Tasks, oldest first, each with the agents it is assigned to.
    pub async fn list(&self, limit: u64, offset: u64) -> Result<Page<Task>, Error> {
        let (rows, total) = tasks::list(&self.db, limit, offset).await?;
        Ok(Page {
            items: views::tasks(&self.db, rows).await?,
            total,
            limit,
            offset,
        })
    }

    pub async fn get(&self, id: Uuid) -> Result<Task, Error> {
        views::task(&self.db, id).await?.ok_or(Error::NotFound(id))
    }

    /// Creates a task; both schemas are checked against their meta-schema and compiled. A new
    /// task has no agents, so its view is the row it was stored as.
    #[tracing::instrument(name = "tasks.create", skip_all, fields(task.id = Empty))]
    pub async fn create(&self, body: CreateTask) -> Result<Task, Error> {
        let valid = validate(body)?;
        let id = new_id();
        tracing::Span::current().record("task.id", display(id));
        let now = now();
        let row = tasks::insert(&self.db, to_row(id, valid, 1, now, now))
            .await
            .map_err(duplicate)?;
        tracing::info!("task created");
        let task = views::assemble_task(row, Vec::new());
        self.events
            .publish(Topic::Tasks, EventKind::Created, id, &task);
        Ok(task)
    }

    /// Replaces a task's configuration (schemas re-validated) and bumps its revision.
    #[tracing::instrument(name = "tasks.update", skip_all, fields(task.id = %id))]
    pub async fn update(&self, id: Uuid, body: UpdateTask) -> Result<Task, Error> {
        let existing = tasks::find(&self.db, id)
            .await?
            .ok_or(Error::NotFound(id))?;
        let valid = validate(body)?;
        let row = to_row(id, valid, existing.revision, existing.created_at, now());
        let row = tasks::update(&self.db, row)
            .await
            .map_err(duplicate)?
            .ok_or(Error::NotFound(id))?;
        let task = views::tasks(&self.db, vec![row])
            .await?
            .pop()
            .ok_or(Error::NotFound(id))?;
        tracing::info!(task.revision = task.revision, "task updated");
        self.events
            .publish(Topic::Tasks, EventKind::Updated, id, &task);
        // Agents list their tasks (name, description): they changed too.
        let agent_ids: Vec<Uuid> = task.agents.iter().map(|a| a.id).collect();
        super::agents::publish_changed(&self.db, &self.events, &agent_ids).await;
        Ok(task)
    }

    /// Deletes a task no agent is assigned.
    #[tracing::instrument(name = "tasks.delete", skip_all, fields(task.id = %id))]
    pub async fn delete(&self, id: Uuid) -> Result<(), Error> {
        let assigned = assignments::count_for_task(&self.db, id).await?;
        if assigned > 0 {
            return Err(Error::Assigned(assigned));
        }
        let last = views::task(&self.db, id).await?;
        // An assignment made between the count and the delete trips the foreign key instead.
        let deleted = tasks::delete(&self.db, id)
            .await
            .map_err(|err| match violation(&err) {
                Some(Violation::ForeignKey) => Error::Assigned(1),
                _ => Error::Db(err),
            })?;
        if !deleted {
            return Err(Error::NotFound(id));
        }
        tracing::info!("task deleted");
        self.events
            .publish(Topic::Tasks, EventKind::Deleted, id, &last);
        Ok(())
    }
}

/// Publishes the current views of these tasks as `updated` (their agents changed), read in a
/// fixed number of queries. Best effort: the change itself is committed, so a failed read
/// only costs the events.
pub(super) async fn publish_changed(db: &DatabaseConnection, events: &EventHub, ids: &[Uuid]) {
    match tasks::find_many(db, ids).await {
        Ok(rows) => publish_rows(db, events, rows).await,
        Err(err) => tracing::warn!(error = %err, "task events not published"),
    }
}

/// Like `publish_changed`, for rows the caller has already read.
pub(super) async fn publish_rows(
    db: &DatabaseConnection,
    events: &EventHub,
    rows: Vec<tasks::Model>,
) {
    match views::tasks(db, rows).await {
        Ok(views) => {
            for view in views {
                events.publish(Topic::Tasks, EventKind::Updated, view.id, &view);
            }
        }
        Err(err) => tracing::warn!(error = %err, "task events not published"),
    }
}

fn duplicate(err: DbErr) -> Error {
    match violation(&err) {
        Some(Violation::Unique) => Error::DuplicateName,
        _ => Error::Db(err),
    }
}

fn to_row(
    id: Uuid,
    input: CreateTask,
    revision: i64,
    created_at: chrono::DateTime<chrono::Utc>,
    updated_at: chrono::DateTime<chrono::Utc>,
) -> tasks::Model {
    tasks::Model {
        id,
        name: input.name,
        description: input.description,
        request_schema: input.request_schema,
        response_schema: input.response_schema,
        revision,
        created_at,
        updated_at,
    }
}
