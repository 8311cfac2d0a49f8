//! Live collections: a REST list kept current by WebSocket events and refetched whenever
//! `ws` says events may have been missed.

use std::cell::Cell;
use std::future::Future;
use std::rc::Rc;

use contracts::{Agent, EventKind, Page, Provider, Task, Topic};
use leptos::prelude::*;
use leptos::task::spawn_local;
use serde::de::DeserializeOwned;
use uuid::Uuid;

use crate::api::{self, ApiError};
use crate::ws;

/// A resource that lists can hold.
pub trait Item: Clone + DeserializeOwned + Send + Sync + 'static {
    fn id(&self) -> Uuid;
    /// Grows with every configuration change.
    fn revision(&self) -> u64;
    /// Whether lists show it (soft-deleted providers are hidden).
    fn listed(&self) -> bool {
        true
    }
}

impl Item for Provider {
    fn id(&self) -> Uuid {
        self.id
    }
    fn revision(&self) -> u64 {
        self.revision
    }
    fn listed(&self) -> bool {
        self.is_active
    }
}

impl Item for Agent {
    fn id(&self) -> Uuid {
        self.id
    }
    fn revision(&self) -> u64 {
        self.revision
    }
}

impl Item for Task {
    fn id(&self) -> Uuid {
        self.id
    }
    fn revision(&self) -> u64 {
        self.revision
    }
}

/// One list: `items` is `None` until the first load answers; `error` holds the last failed
/// load (the items, if any, stay as they were).
pub struct Live<T: Item> {
    pub items: RwSignal<Option<Vec<T>>>,
    pub error: RwSignal<Option<ApiError>>,
}

impl<T: Item> Clone for Live<T> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T: Item> Copy for Live<T> {}

impl<T: Item> Live<T> {
    /// Inserts or replaces an item (or removes it when it is no longer listed).
    pub fn upsert(&self, item: T) {
        self.items.update(|items| {
            let Some(items) = items else { return };
            let pos = items.iter().position(|i| i.id() == item.id());
            match (pos, item.listed()) {
                (Some(pos), true) => items[pos] = item,
                (Some(pos), false) => {
                    items.remove(pos);
                }
                (None, true) => items.push(item),
                (None, false) => {}
            }
        });
    }

    /// Applies the answer of our own change request unless the WebSocket already delivered
    /// this revision: its events (e.g. a provider check finishing) can beat the HTTP answer,
    /// and the answer must not roll them back.
    pub fn merge(&self, item: T) {
        let newer = self.items.with_untracked(|items| {
            items.as_ref().is_none_or(|items| {
                items
                    .iter()
                    .find(|i| i.id() == item.id())
                    .is_none_or(|known| known.revision() < item.revision())
            })
        });
        if newer {
            self.upsert(item);
        }
    }

    pub fn remove(&self, id: Uuid) {
        self.items.update(|items| {
            if let Some(items) = items {
                items.retain(|i| i.id() != id);
            }
        });
    }

    /// The item with this id, tracked.
    pub fn find(&self, id: Uuid) -> Option<T> {
        self.items
            .with(|items| items.as_ref()?.iter().find(|i| i.id() == id).cloned())
    }
}

fn live<T, F, Fut>(topic: Topic, fetch: F) -> Live<T>
where
    T: Item,
    F: Fn() -> Fut + 'static,
    Fut: Future<Output = Result<Page<T>, ApiError>> + 'static,
{
    let live = Live {
        items: RwSignal::new(None),
        error: RwSignal::new(None),
    };
    let refetch = ws::refetch(topic);
    let fetch = Rc::new(fetch);
    // Only the newest of overlapping fetches may write, so a slow old answer never wins.
    let generation = Rc::new(Cell::new(0u32));
    // Whether a fetch is in flight, and whether an event arrived meanwhile: the fetch's
    // answer may predate that event and would drop it, so it is followed by another fetch.
    let in_flight = Rc::new(Cell::new(false));
    let missed = Rc::new(Cell::new(false));
    let (fetching, missed_during_fetch) = (Rc::clone(&in_flight), Rc::clone(&missed));
    Effect::new(move |_| {
        refetch.track();
        let fetch = Rc::clone(&fetch);
        let generation = Rc::clone(&generation);
        let (in_flight, missed) = (Rc::clone(&fetching), Rc::clone(&missed_during_fetch));
        let mine = generation.get().wrapping_add(1);
        generation.set(mine);
        in_flight.set(true);
        missed.set(false);
        spawn_local(async move {
            let result = fetch().await;
            if generation.get() != mine {
                return;
            }
            in_flight.set(false);
            if missed.replace(false) {
                ws::bump(&[topic]);
            }
            match result {
                Ok(page) => {
                    let items = page.items.into_iter().filter(Item::listed).collect();
                    live.items.set(Some(items));
                    live.error.set(None);
                }
                Err(error) => live.error.set(Some(error)),
            }
        });
    });
    ws::on_event(topic, move |event| {
        if in_flight.get() {
            missed.set(true);
        }
        match event.event {
            EventKind::Deleted => live.remove(event.id),
            EventKind::Created | EventKind::Updated | EventKind::ValidationUpdate => {
                if let Ok(item) = serde_json::from_value::<T>(event.data.clone()) {
                    live.upsert(item);
                }
            }
        }
    });
    live
}

pub fn providers() -> Live<Provider> {
    live(Topic::Providers, api::list_providers)
}

pub fn agents() -> Live<Agent> {
    live(Topic::Agents, api::list_agents)
}

pub fn tasks() -> Live<Task> {
    live(Topic::Tasks, api::list_tasks)
}
