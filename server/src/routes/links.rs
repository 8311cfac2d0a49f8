//! OpenAPI `links`: from each operation that creates something to the operations that take its
//! id, so a client (or a stateful fuzzer) can follow real resources instead of guessing ids.

use serde_json::{Value, json};
use utoipa::openapi::{HttpMethod, OpenApi, RefOr, link::LinkBuilder};

/// (source operation, status, link name, target operation id, parameters, request body).
type LinkSpec = (
    (&'static str, HttpMethod),
    &'static str,
    &'static str,
    &'static str,
    &'static [(&'static str, &'static str)],
    Option<fn() -> Value>,
);

const ID: &[(&str, &str)] = &[("id", "$response.body#/id")];
const AGENT: &[(&str, &str)] = &[("id", "$response.body#/id")];
const ASSIGNMENT: &[(&str, &str)] = &[
    ("agent_id", "$response.body#/agent_id"),
    ("task_id", "$response.body#/task_id"),
];
const UNASSIGN: &[(&str, &str)] = &[
    ("id", "$response.body#/agent_id"),
    ("task_id", "$response.body#/task_id"),
];

fn provider_in_body() -> Value {
    json!({"provider_id": "$response.body#/id"})
}

fn task_in_body() -> Value {
    json!({"task_id": "$response.body#/id"})
}

const PROVIDERS: (&str, HttpMethod) = ("/api/providers", HttpMethod::Post);
const TASKS: (&str, HttpMethod) = ("/api/tasks", HttpMethod::Post);
const AGENTS: (&str, HttpMethod) = ("/api/agents", HttpMethod::Post);
const ASSIGN: (&str, HttpMethod) = ("/api/agents/{id}/tasks", HttpMethod::Post);
const RUN: (&str, HttpMethod) = (
    "/api/agents/{agent_id}/tasks/{task_id}/runs",
    HttpMethod::Post,
);
const CANCEL: (&str, HttpMethod) = ("/api/runs/{id}/cancel", HttpMethod::Post);

const LINKS: &[LinkSpec] = &[
    (PROVIDERS, "201", "GetProvider", "get_provider", ID, None),
    (
        PROVIDERS,
        "201",
        "UpdateProvider",
        "update_provider",
        ID,
        None,
    ),
    (
        PROVIDERS,
        "201",
        "DeleteProvider",
        "delete_provider",
        ID,
        None,
    ),
    (
        PROVIDERS,
        "201",
        "ValidateProvider",
        "validate_provider",
        ID,
        None,
    ),
    (
        PROVIDERS,
        "201",
        "CreateAgentOnIt",
        "create_agent",
        &[],
        Some(provider_in_body),
    ),
    (TASKS, "201", "GetTask", "get_task", ID, None),
    (TASKS, "201", "UpdateTask", "update_task", ID, None),
    (TASKS, "201", "DeleteTask", "delete_task", ID, None),
    (
        TASKS,
        "201",
        "AssignIt",
        "assign_task",
        &[],
        Some(task_in_body),
    ),
    (AGENTS, "201", "GetAgent", "get_agent", AGENT, None),
    (AGENTS, "201", "UpdateAgent", "update_agent", AGENT, None),
    (AGENTS, "201", "DeleteAgent", "delete_agent", AGENT, None),
    (
        AGENTS,
        "201",
        "ListAgentTasks",
        "list_agent_tasks",
        AGENT,
        None,
    ),
    (AGENTS, "201", "AssignTask", "assign_task", AGENT, None),
    (ASSIGN, "201", "RunIt", "create_run", ASSIGNMENT, None),
    (ASSIGN, "201", "Unassign", "unassign_task", UNASSIGN, None),
    (RUN, "201", "GetRun", "get_run", ID, None),
    (RUN, "201", "RunEvents", "run_events", ID, None),
    (RUN, "201", "CancelRun", "cancel_run", ID, None),
    (RUN, "202", "GetRun", "get_run", ID, None),
    (RUN, "202", "RunEvents", "run_events", ID, None),
    (RUN, "202", "CancelRun", "cancel_run", ID, None),
    (CANCEL, "202", "GetRun", "get_run", ID, None),
    (CANCEL, "202", "RunEvents", "run_events", ID, None),
];

/// Adds every link of `LINKS` to the document. A link whose source response is missing is a
/// programming error caught by the contract tests (the document would lack it).
pub fn add(openapi: &mut OpenApi) {
    for ((path, method), status, name, target, parameters, body) in LINKS {
        let Some(item) = openapi.paths.paths.get_mut(*path) else {
            continue;
        };
        let operation = match method {
            HttpMethod::Post => item.post.as_mut(),
            HttpMethod::Get => item.get.as_mut(),
            HttpMethod::Put => item.put.as_mut(),
            HttpMethod::Delete => item.delete.as_mut(),
            HttpMethod::Options | HttpMethod::Head | HttpMethod::Patch | HttpMethod::Trace => None,
        };
        let Some(RefOr::T(response)) =
            operation.and_then(|op| op.responses.responses.get_mut(*status))
        else {
            continue;
        };
        let mut link = LinkBuilder::new().operation_id(*target);
        for (parameter, expression) in *parameters {
            link = link.parameter(*parameter, *expression);
        }
        link = link.request_body(body.map(|make| make()));
        response
            .links
            .insert((*name).to_owned(), RefOr::T(link.build()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every link starts at a documented response and names a documented operation.
    #[test]
    fn every_link_has_a_source_and_a_target() {
        let openapi = super::super::openapi();
        let operations: Vec<String> = openapi
            .paths
            .paths
            .values()
            .flat_map(|item| {
                [&item.get, &item.post, &item.put, &item.delete]
                    .into_iter()
                    .flatten()
                    .filter_map(|op| op.operation_id.clone())
            })
            .collect();
        let mut count = 0;
        for item in openapi.paths.paths.values() {
            for op in [&item.get, &item.post, &item.put, &item.delete]
                .into_iter()
                .flatten()
            {
                for response in op.responses.responses.values() {
                    if let RefOr::T(response) = response {
                        for link in response.links.values() {
                            if let RefOr::T(link) = link {
                                assert!(
                                    operations.contains(&link.operation_id),
                                    "{}",
                                    link.operation_id
                                );
                                count += 1;
                            }
                        }
                    }
                }
            }
        }
        assert_eq!(count, LINKS.len(), "a link's source response is missing");
    }
}
