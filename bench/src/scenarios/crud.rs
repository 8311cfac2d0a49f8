//! Scenario 2, CRUD: read one agent, list a page of 50 among 1,000 agents, create a task with
//! a mid-size schema; each at concurrency 1 and at the plan's higher concurrency.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use reqwest::{Client, StatusCode};
use serde::Serialize;
use uuid::Uuid;

use crate::fixtures::{self, Runnable};
use crate::load::{self, Bound, MakeRequest, Request, Summary};
use crate::plan::Plan;

#[derive(Debug, Clone, Serialize)]
pub struct Crud {
    pub database: String,
    /// Creating the agents the list reads (closed loop), for reference.
    pub create_agents: Summary,
    pub operations: Vec<Operation>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Operation {
    pub name: String,
    pub sequential: Summary,
    pub concurrent: Summary,
}

pub async fn run(
    database: &str,
    client: &Client,
    base: &str,
    fixture: &Runnable,
    plan: &Plan,
) -> anyhow::Result<Crud> {
    eprintln!("[crud] {database}: {} agents", plan.crud_agents);
    let nonce = Uuid::new_v4().simple().to_string();
    let create_agent: MakeRequest = {
        let (base, provider, nonce) = (base.to_owned(), fixture.provider_id.clone(), nonce.clone());
        Arc::new(move |i| {
            let body = fixtures::agent_body(&format!("crud-{nonce}-{i}"), &provider);
            Request::post(format!("{base}/api/agents"), &body, StatusCode::CREATED)
        })
    };
    let create_agents =
        load::closed_loop(client, &create_agent, 8, Bound::Requests(plan.crud_agents)).await?;
    if create_agents.errors > 0 {
        anyhow::bail!("creating agents failed: {:?}", create_agents.first_error);
    }

    let get_one = load::same(Request::get(format!(
        "{base}/api/agents/{}",
        fixture.agent_id
    )));
    let list = load::same(Request::get(format!("{base}/api/agents?limit=50")));
    let create_task: MakeRequest = {
        let base = base.to_owned();
        // Every phase numbers its requests from 0: names come from one counter instead.
        let counter = AtomicU64::new(0);
        Arc::new(move |_| {
            let i = counter.fetch_add(1, Ordering::Relaxed);
            let body = fixtures::mid_size_task(&format!("invoice-{nonce}-{i}"));
            Request::post(format!("{base}/api/tasks"), &body, StatusCode::CREATED)
        })
    };
    let mut operations = Vec::new();
    for (name, make) in [
        ("GET /api/agents/{id}", get_one),
        ("GET /api/agents?limit=50 (1,000 agents)", list),
        ("POST /api/tasks (mid-size schema)", create_task),
    ] {
        eprintln!("[crud] {database}: {name}");
        load::closed_loop(client, &make, 1, Bound::Requests(plan.warmup)).await?;
        let sequential =
            load::closed_loop(client, &make, 1, Bound::Requests(plan.sequential)).await?;
        let concurrent = load::closed_loop(
            client,
            &make,
            plan.crud_concurrency,
            Bound::Duration(plan.crud_duration),
        )
        .await?;
        eprintln!("  c=1  {}", sequential.line());
        eprintln!("  c={} {}", plan.crud_concurrency, concurrent.line());
        operations.push(Operation {
            name: name.to_owned(),
            sequential,
            concurrent,
        });
    }
    Ok(Crud {
        database: database.to_owned(),
        create_agents,
        operations,
    })
}
