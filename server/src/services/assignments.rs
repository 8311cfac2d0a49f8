//! Assignments: which tasks an agent may run. Owns the `agent_task_assignments` table's
//! writes; an assignment changes the views of its agent and its task, published by their
//! services.

use std::sync::Arc;

use contracts::{Assignment, Page, TaskSummary};
use sea_orm::{DatabaseConnection, DbErr};
use uuid::Uuid;

use crate::db::{Violation, agents, assignments, tasks, violation};
use crate::domain::{Invalid, now};
use crate::events::EventHub;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Invalid(#[from] Invalid),
    #[error("no {resource} with id {id}")]
    NotFound { resource: &'static str, id: String },
    #[error("the task is already assigned to this agent")]
    Duplicate,
    #[error(transparent)]
    Db(#[from] DbErr),
}

#[derive(Clone)]
pub struct Assignments {
    db: DatabaseConnection,
    events: Arc<EventHub>,
}

impl Assignments {
    pub fn new(db: DatabaseConnection, events: Arc<EventHub>) -> Assignments {
        Assignments { db, events }
    }

    /// The tasks assigned to an agent, in assignment order.
    pub async fn list(
        &self,
        agent_id: Uuid,
        limit: u64,
        offset: u64,
    ) -> Result<Page<TaskSummary>, Error> {
        agents::find(&self.db, agent_id)
            .await?
            .ok_or_else(|| not_found("agent", agent_id))?;
        let links = assignments::for_agents(&self.db, &[agent_id]).await?;
        let total = links.len() as u64;
        let ids: Vec<Uuid> = links
            .iter()
            .skip(usize::try_from(offset).unwrap_or(usize::MAX))
            .take(usize::try_from(limit).unwrap_or(usize::MAX))
            .map(|l| l.task_id)
            .collect();
        let found = tasks::find_many(&self.db, &ids).await?;
        let items = ids
            .iter()
            .filter_map(|id| found.iter().find(|t| t.id == *id))
            .map(tasks::Model::to_summary)
            .collect();
        Ok(Page {
            items,
            total,
            limit,
            offset,
        })
    }

    #[tracing::instrument(name = "assignments.create", skip_all,
        fields(agent.id = %agent_id, task.id = %task_id))]
    pub async fn assign(&self, agent_id: Uuid, task_id: Uuid) -> Result<Assignment, Error> {
        let (agent, task) = tokio::try_join!(
            agents::find(&self.db, agent_id),
            tasks::find(&self.db, task_id),
        )?;
        let agent = agent.ok_or_else(|| not_found("agent", agent_id))?;
        // The task is a field of the body, so a missing one is a 422 naming it.
        let task = task.ok_or_else(|| Invalid::field("/task_id", "refers to no task"))?;
        let link = assignments::Model {
            agent_id,
            task_id,
            created_at: now(),
        };
        let saved =
            assignments::insert(&self.db, link)
                .await
                .map_err(|err| match violation(&err) {
                    Some(Violation::Unique) => Error::Duplicate,
                    // The agent or task was deleted between the checks and the insert.
                    Some(Violation::ForeignKey) => Error::NotFound {
                        resource: "agent or task",
                        id: format!("{agent_id}/{task_id}"),
                    },
                    None => Error::Db(err),
                })?;
        tracing::info!("task assigned");
        let summary = task.to_summary();
        // The agent lists its tasks and the task its agents: both views changed. Their rows
        // are at hand; only what the views add is read.
        super::agents::publish_rows(&self.db, &self.events, vec![agent]).await;
        super::tasks::publish_rows(&self.db, &self.events, vec![task]).await;
        Ok(Assignment {
            agent_id,
            task_id,
            task: summary,
            created_at: saved.created_at,
        })
    }

    #[tracing::instrument(name = "assignments.delete", skip_all,
        fields(agent.id = %agent_id, task.id = %task_id))]
    pub async fn unassign(&self, agent_id: Uuid, task_id: Uuid) -> Result<(), Error> {
        if !assignments::delete(&self.db, agent_id, task_id).await? {
            return Err(Error::NotFound {
                resource: "assignment",
                id: format!("{agent_id}/{task_id}"),
            });
        }
        tracing::info!("task unassigned");
        // The agent lists its tasks and the task its agents: both views changed.
        super::agents::publish_changed(&self.db, &self.events, &[agent_id]).await;
        super::tasks::publish_changed(&self.db, &self.events, &[task_id]).await;
        Ok(())
    }
}

fn not_found(resource: &'static str, id: Uuid) -> Error {
    Error::NotFound {
        resource,
        id: id.to_string(),
    }
}
