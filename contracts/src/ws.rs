//! WebSocket messages on `/ws`: topic subscriptions from the client, change events from the
//! server.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

/// A stream of change events. Every create, update and delete of a resource, and every
/// validator transition, is published on its topic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Topic {
    Providers,
    Agents,
    Tasks,
    Runs,
}

impl Topic {
    pub const ALL: [Topic; 4] = [Topic::Providers, Topic::Agents, Topic::Tasks, Topic::Runs];

    pub fn as_str(self) -> &'static str {
        match self {
            Topic::Providers => "providers",
            Topic::Agents => "agents",
            Topic::Tasks => "tasks",
            Topic::Runs => "runs",
        }
    }

    pub fn parse(s: &str) -> Option<Topic> {
        Topic::ALL.into_iter().find(|t| t.as_str() == s)
    }
}

/// What happened to the resource an event is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    Created,
    Updated,
    Deleted,
    /// A provider's connectivity status changed (`pending → validating → connected | error`).
    ValidationUpdate,
}

/// Client → server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum WsClientMessage {
    /// Start receiving events of these topics (in addition to current ones).
    Subscribe { topics: Vec<Topic> },
    /// Stop receiving events of these topics.
    Unsubscribe { topics: Vec<Topic> },
    /// Answered with `pong`.
    Ping,
    /// The API token, for clients that cannot send an `Authorization` header (browsers).
    /// Must be the first message when the server requires a token.
    Auth { token: String },
}

/// Server → client.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum WsServerMessage {
    /// A change on a subscribed topic.
    Event(Event),
    /// The current subscriptions, after each `subscribe` or `unsubscribe`.
    Subscribed { topics: Vec<Topic> },
    /// Answer to `ping`.
    Pong,
    /// Events of these topics were dropped because the client fell behind: refetch them over
    /// the REST API, then continue with the events that follow.
    Resync { topics: Vec<Topic> },
    /// A message the server could not accept; the socket stays open unless it closes.
    Error { code: String, message: String },
}

/// One change event. `seq` grows by one per event on each topic, so a gap means missed events.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Event {
    pub topic: Topic,
    pub event: EventKind,
    /// Id of the resource.
    pub id: Uuid,
    pub seq: u64,
    /// The resource as the REST API returns it (for `deleted`, its last state).
    pub data: Value,
}
