//! A run's input: checked against the task's request schema, then rendered into the agent's
//! user prompt — for a run being created, and for a schedule being saved (`check_input`).

use serde_json::Value;
use uuid::Uuid;

use super::runnable::RunnableAgent;
use super::{Error, Runs};
use crate::domain::Invalid;
use crate::domain::fields::{Problems, check_json_text};
use crate::prompt::{RenderError, Renderer};

/// The agent's user prompt filled with `input`, once `input` matches the task's request
/// schema (problems under `/input`).
pub(super) async fn prompt(
    runnable: &RunnableAgent,
    renderer: &Renderer,
    input: &Value,
) -> Result<String, Error> {
    let mut problems = Problems::new();
    check_json_text(&mut problems, "/input", input);
    problems.extend(runnable.check_input(input));
    problems.finish(())?;
    runnable.render(renderer, input).await.map_err(|e| match e {
        RenderError::Template(e) => Error::Invalid(Invalid::field(
            "/input",
            format!("does not fill the agent's user prompt template: {e}"),
        )),
        RenderError::Unavailable(why) => Error::RendererUnavailable(why),
    })
}

impl Runs {
    /// Whether `input` would start a run of the task by the agent: the task is assigned to
    /// it, the agent is runnable, the input matches the task's request schema and fills the
    /// agent's user prompt template.
    pub async fn check_input(
        &self,
        agent_id: Uuid,
        task_id: Uuid,
        input: &Value,
    ) -> Result<(), Error> {
        let runnable = self.inner.runnable(agent_id, task_id).await?;
        prompt(&runnable, &self.inner.renderer, input).await?;
        Ok(())
    }
}
