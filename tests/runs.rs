//! Run helpers of the harness: a runnable agent on a provider, and waiting for a run.

use serde_json::{Value, json};

use crate::{TestApp, agent_body, closed_schema, task_body};

impl TestApp {
    /// A provider, an agent on it with `model`, a task with `closed_schema`, assigned:
    /// returns the runs URL of the pair.
    pub async fn runnable(&self, provider: &Value, model: &str, agent_patch: Value) -> String {
        let provider = self.create_provider(provider).await.assert_status(201).id();
        let mut agent = agent_body("runner", provider);
        agent["model"] = json!(model);
        agent["temperature"] = json!(0);
        if let Value::Object(patch) = agent_patch {
            for (k, v) in patch {
                agent[k] = v;
            }
        }
        let agent = self.create_agent(&agent).await.assert_status(201).id();
        let mut task = task_body("sentiment");
        task["response_schema"] = closed_schema();
        let task = self.create_task(&task).await.assert_status(201).id();
        self.assign(agent, task).await.assert_status(201);
        format!("/api/agents/{agent}/tasks/{task}/runs")
    }

    /// Polls a run until it has finished (deadline: 60 s).
    pub async fn run_finished(&self, id: &str) -> Value {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        loop {
            let run = self.get(&format!("/api/runs/{id}")).await.json();
            if matches!(
                run["status"].as_str(),
                Some("succeeded" | "failed" | "canceled")
            ) {
                return run;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "run never finished: {run}"
            );
            tokio::time::sleep(std::time::Duration::from_millis(25)).await;
        }
    }

    pub async fn run_events(&self, id: &str) -> Vec<Value> {
        self.get(&format!("/api/runs/{id}/events"))
            .await
            .json()
            .as_array()
            .cloned()
            .unwrap_or_default()
    }
}
