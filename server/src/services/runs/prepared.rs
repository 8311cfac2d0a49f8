//! The prepared agent a new run uses: found by one statement when the pair's last
//! configuration is still prepared, otherwise read and built (and remembered for the pair).

use std::sync::Arc;

use uuid::Uuid;

use super::runnable::{self, RunnableAgent};
use super::{Error, Inner};
use crate::db::{agents, assignments, providers, tasks};

/// Agent/task pairs remembered before the forgotten ones are pruned.
const RECENT_PAIRS: usize = 1024;

impl Inner {
    /// The prepared agent for a run of `task_id` by `agent_id`: the task must be assigned,
    /// and the agent keeps its provider even when that was soft-deleted (until re-pointed).
    pub(super) async fn runnable(
        &self,
        agent_id: Uuid,
        task_id: Uuid,
    ) -> Result<Arc<RunnableAgent>, Error> {
        // The hot path: one statement reads the revisions, and a prepared agent of exactly
        // that configuration is used as it is. Otherwise the rows are read and one is built.
        // Tried only when the pair's last configuration is still prepared, so a miss costs
        // no extra statement.
        let recent = self.recent.lock().get(&(agent_id, task_id)).copied();
        if let Some(key) = recent
            && let Some(live) = self.runnables.registry().live(&key)
            && let Some(found) = assignments::revisions(&self.db, agent_id, task_id).await?
            && key == runnable::Key::current(agent_id, task_id, &found)
        {
            return Ok(live);
        }
        // Independent reads, at once; the task only if it is assigned.
        let (agent, task) = tokio::try_join!(
            agents::find(&self.db, agent_id),
            assignments::assigned_task(&self.db, agent_id, task_id),
        )?;
        let agent = agent.ok_or(Error::NotFound {
            resource: "agent",
            id: agent_id,
        })?;
        let Some(task) = task else {
            return Err(match tasks::find(&self.db, task_id).await? {
                None => Error::NotFound {
                    resource: "task",
                    id: task_id,
                },
                Some(_) => Error::TaskNotAssigned,
            });
        };
        let provider = providers::find(&self.db, agent.provider_id)
            .await?
            .ok_or(Error::ProviderGone)?;
        let built = self.runnables.get(&agent, &task, &provider).await?;
        let mut recent = self.recent.lock();
        if recent.len() >= RECENT_PAIRS {
            let registry = self.runnables.registry();
            recent.retain(|_, key| registry.live(key).is_some());
        }
        recent.insert(
            (agent_id, task_id),
            runnable::Key::of(&agent, &task, &provider),
        );
        Ok(built)
    }
}
