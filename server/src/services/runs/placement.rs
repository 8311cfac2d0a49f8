//! What the dispatcher knows for routing: the facts of every enabled registered worker
//! (name, tags and the credentials it reported; connected or not) and the route keys of runs that may be queued. It tells
//! which keys a worker may claim and why a route has no worker at all (`waiting_reason`),
//! and keeps both current when a worker is registered, renamed, re-tagged, switched or
//! revoked.

use std::collections::{BTreeMap, HashMap};

use contracts::RunStatus;
use sea_orm::DbErr;
use uuid::Uuid;

use super::Inner;
use super::routing::{Facts, Reach, Route};
use crate::db::{queue, tags, workers};

/// Routes are forgotten (and the queued ones read again) past this many.
const MAX_KEYS: usize = 1024;

#[derive(Default)]
pub(super) struct Placement {
    /// Enabled registered workers.
    registered: HashMap<Uuid, Facts>,
    /// Route keys of runs queued since start (and of those queued before it), each with
    /// its rules (`None`: a key this build cannot read; no worker takes it).
    routes: BTreeMap<String, Option<Route>>,
}

impl Placement {
    /// The keys of routes a worker with these facts may take.
    pub fn keys_for(&self, facts: &Facts) -> Vec<String> {
        self.routes
            .iter()
            .filter(|(_, route)| route.as_ref().is_some_and(|route| route.admits(facts)))
            .map(|(key, _)| key.clone())
            .collect()
    }

    /// Why no enabled registered worker can ever take a run of `route` (`None`: one can).
    /// Only routed runs get one: a run any worker may take and no worker at all is the
    /// pool's state (the header shows it), and fails with that reason.
    pub fn waiting_reason(&self, route: &Route) -> Option<String> {
        // Serving the provider's kind (and reaching it, when local) is a rule of every run; with
        // no worker registered at all that is the pool's state, as for a run any worker may
        // take.
        if route.is_any() || (route.only_capabilities() && self.registered.is_empty()) {
            return None;
        }
        route.unroutable(self.registered.values())
    }

    /// Every enabled registered worker's facts.
    pub fn registered(&self) -> impl Iterator<Item = &Facts> {
        self.registered.values()
    }

    /// A route a new run has: remembered for dispatch.
    pub fn remember(&mut self, key: &str, route: &Route) {
        if !self.routes.contains_key(key) {
            self.routes.insert(key.to_owned(), Some(route.clone()));
        }
    }
}

/// A worker's facts as stored: its name, tags and the credentials it reported.
pub(super) async fn facts_of(inner: &Inner, row: workers::Model) -> Result<Facts, DbErr> {
    Ok(Facts {
        tags: tags::of_worker(&inner.db, row.id)
            .await?
            .into_iter()
            .collect(),
        credentials: row.credentials().into_iter().collect(),
        reach: row.outbound().map(Reach::new),
        kinds: row.kinds(),
        name: row.name,
    })
}

impl Inner {
    /// Reads every enabled worker's facts and the routes of queued runs (at start, and when
    /// too many routes were remembered).
    pub(super) async fn load_placement(&self) -> Result<(), DbErr> {
        let mut tags = tags::of_workers(&self.db).await?;
        let registered = workers::list(&self.db)
            .await?
            .into_iter()
            .filter(|row| row.enabled)
            .map(|row| {
                let facts = Facts {
                    credentials: row.credentials().into_iter().collect(),
                    reach: row.outbound().map(Reach::new),
                    kinds: row.kinds(),
                    name: row.name,
                    tags: tags
                        .remove(&row.id)
                        .unwrap_or_default()
                        .into_iter()
                        .collect(),
                };
                (row.id, facts)
            })
            .collect();
        let routes = queue::unfinished_route_keys(&self.db)
            .await?
            .into_iter()
            .map(|key| {
                let route = Route::of_key(&key);
                (key, route)
            })
            .collect();
        let mut placement = self.placement.lock();
        placement.registered = registered;
        placement.routes = routes;
        Ok(())
    }

    /// A worker was registered, renamed, re-tagged, enabled, disabled or revoked: the
    /// dispatcher and the waiting reasons of queued runs follow at once.
    pub(super) async fn facts_changed(&self, worker_id: Uuid) -> Result<(), DbErr> {
        let facts = match workers::find(&self.db, worker_id).await? {
            Some(row) if row.enabled => Some(facts_of(self, row).await?),
            _ => None,
        };
        {
            let mut placement = self.placement.lock();
            match &facts {
                Some(facts) => placement.registered.insert(worker_id, facts.clone()),
                None => placement.registered.remove(&worker_id),
            };
        }
        if let Some(facts) = facts
            && let Some(member) = self.fleet.lock().members.get_mut(&worker_id)
        {
            member.facts = facts;
        }
        self.refresh_waiting_reasons().await?;
        self.wake.notify_one();
        Ok(())
    }

    /// Sets each queued run's waiting reason from the workers registered now, and publishes
    /// the runs whose reason changed.
    pub(super) async fn refresh_waiting_reasons(&self) -> Result<(), DbErr> {
        if self.placement.lock().routes.len() > MAX_KEYS {
            self.load_placement().await?;
        }
        let reasons: Vec<(String, Option<String>)> = {
            let placement = self.placement.lock();
            placement
                .routes
                .iter()
                .filter(|(key, _)| !key.is_empty())
                .map(|(key, route)| {
                    let reason = match route {
                        Some(route) => placement.waiting_reason(route),
                        None => Some("the run's routing rules are unreadable".to_owned()),
                    };
                    (key.clone(), reason)
                })
                .collect()
        };
        for (key, reason) in reasons {
            for row in queue::set_waiting_reason(&self.db, &key, reason.as_deref()).await? {
                debug_assert_eq!(*row.status, RunStatus::Queued);
                self.publish(&row);
            }
        }
        Ok(())
    }
}
