//! WebSocket messages on `/ws`: topic subscriptions from the client, change events from the
//! server.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

use crate::wire::wire_enum;

wire_enum! {
    /// A stream of change events. Every create, update and delete of a resource, and every
    /// validator transition, is published on its topic.
    #[derive(PartialOrd, Ord)]
    pub enum Topic {
        Providers = "providers",
        Agents = "agents",
        Tasks = "tasks",
        Runs = "runs",
        /// Workers: registered, updated, deleted, connected, disconnected.
        Workers = "workers",
        /// The pool's counts (`Pool`), on every change, coalesced.
        Pool = "pool",
        /// Tags: created, deleted, and their worker counts when workers' tags change.
        Tags = "tags",
        /// Concurrency groups: created, updated, deleted, and their live counts (coalesced).
        Concurrency = "concurrency",
    }
}

wire_enum! {
    /// What happened to the resource an event is about.
    pub enum EventKind {
        Created = "created",
        Updated = "updated",
        Deleted = "deleted",
        /// A provider's connectivity status changed (`pending → validating → connected | error`).
        ValidationUpdate = "validation_update",
    }
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
