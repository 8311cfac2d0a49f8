//! Assembles API views that span tables (an agent with its provider and tasks, a task with its
//! agents) in a fixed number of queries per page, not one per row.

use std::collections::HashMap;

use contracts::{Agent, AgentSummary, ProviderSummary, Task, TaskSummary};
use sea_orm::{ConnectionTrait, DbErr};
use uuid::Uuid;

use super::{agents, assignments, corrupt, providers, tasks, to_u64};

pub async fn agents(
    db: &impl ConnectionTrait,
    models: Vec<agents::Model>,
) -> Result<Vec<Agent>, DbErr> {
    let agent_ids: Vec<Uuid> = models.iter().map(|a| a.id).collect();
    let mut provider_ids: Vec<Uuid> = models.iter().map(|a| a.provider_id).collect();
    provider_ids.sort_unstable();
    provider_ids.dedup();
    // Providers and tasks do not depend on each other: fetched at once (one round trip of
    // latency less per agent view).
    let (providers, (links, tasks)) =
        tokio::try_join!(providers::find_many(db, &provider_ids), async {
            let links = assignments::for_agents(db, &agent_ids).await?;
            let task_ids: Vec<Uuid> = links.iter().map(|l| l.task_id).collect();
            let tasks = tasks::find_many(db, &task_ids).await?;
            Ok::<_, DbErr>((links, tasks))
        })?;
    let providers: HashMap<Uuid, providers::Model> =
        providers.into_iter().map(|p| (p.id, p)).collect();
    let tasks: HashMap<Uuid, tasks::Model> = tasks.into_iter().map(|t| (t.id, t)).collect();

    models
        .into_iter()
        .map(|agent| {
            let provider = providers
                .get(&agent.provider_id)
                .ok_or_else(|| corrupt("agent provider", agent.provider_id))?
                .to_summary();
            let agent_tasks = links
                .iter()
                .filter(|l| l.agent_id == agent.id)
                .filter_map(|l| tasks.get(&l.task_id).map(tasks::Model::to_summary))
                .collect();
            Ok(assemble_agent(agent, provider, agent_tasks))
        })
        .collect()
}

/// One agent's view from its row and its provider's row: only its tasks are read.
pub async fn agent_with_provider(
    db: &impl ConnectionTrait,
    model: agents::Model,
    provider: &providers::Model,
) -> Result<Agent, DbErr> {
    let links = assignments::for_agents(db, &[model.id]).await?;
    let task_ids: Vec<Uuid> = links.iter().map(|l| l.task_id).collect();
    let found = tasks::find_many(db, &task_ids).await?;
    let agent_tasks = task_ids
        .iter()
        .filter_map(|id| found.iter().find(|t| t.id == *id))
        .map(tasks::Model::to_summary)
        .collect();
    Ok(assemble_agent(model, provider.to_summary(), agent_tasks))
}

/// An agent's view from parts already at hand.
pub fn assemble_agent(
    agent: agents::Model,
    provider: ProviderSummary,
    tasks: Vec<TaskSummary>,
) -> Agent {
    let (workers, required_tags) = (agent.workers(), agent.tags());
    Agent {
        id: agent.id,
        name: agent.name,
        description: agent.description,
        provider_id: agent.provider_id,
        provider,
        model: agent.model,
        system_prompt: agent.system_prompt,
        user_prompt: agent.user_prompt,
        temperature: agent.temperature,
        max_tokens: agent.max_tokens.and_then(|v| u32::try_from(v).ok()),
        max_retries: u32::try_from(agent.max_retries).unwrap_or(0),
        timeout_secs: u32::try_from(agent.timeout_secs).unwrap_or(0),
        queue_timeout_secs: u32::try_from(agent.queue_timeout_secs).unwrap_or(0),
        workers,
        required_tags,
        concurrency_group_id: agent.concurrency_group_id,
        tasks,
        revision: to_u64(agent.revision),
        created_at: agent.created_at,
        updated_at: agent.updated_at,
    }
}

pub async fn tasks(
    db: &impl ConnectionTrait,
    models: Vec<tasks::Model>,
) -> Result<Vec<Task>, DbErr> {
    let task_ids: Vec<Uuid> = models.iter().map(|t| t.id).collect();
    let links = assignments::for_tasks(db, &task_ids).await?;
    let agent_ids: Vec<Uuid> = links.iter().map(|l| l.agent_id).collect();
    let agents: HashMap<Uuid, agents::Model> = agents::find_many(db, &agent_ids)
        .await?
        .into_iter()
        .map(|a| (a.id, a))
        .collect();
    Ok(models
        .into_iter()
        .map(|task| {
            let task_agents = links
                .iter()
                .filter(|l| l.task_id == task.id)
                .filter_map(|l| agents.get(&l.agent_id).map(agents::Model::to_summary))
                .collect();
            assemble_task(task, task_agents)
        })
        .collect())
}

/// A task's view from parts already at hand.
pub fn assemble_task(task: tasks::Model, agents: Vec<AgentSummary>) -> Task {
    Task {
        agents,
        id: task.id,
        name: task.name,
        description: task.description,
        request_schema: task.request_schema,
        response_schema: task.response_schema,
        revision: to_u64(task.revision),
        created_at: task.created_at,
        updated_at: task.updated_at,
    }
}

/// One agent's view; `None` if it does not exist.
pub async fn agent(db: &impl ConnectionTrait, id: Uuid) -> Result<Option<Agent>, DbErr> {
    let Some(model) = agents::find(db, id).await? else {
        return Ok(None);
    };
    Ok(agents(db, vec![model]).await?.pop())
}

/// One task's view; `None` if it does not exist.
pub async fn task(db: &impl ConnectionTrait, id: Uuid) -> Result<Option<Task>, DbErr> {
    let Some(model) = tasks::find(db, id).await? else {
        return Ok(None);
    };
    Ok(tasks(db, vec![model]).await?.pop())
}
