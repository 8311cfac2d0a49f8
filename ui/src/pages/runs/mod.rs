//! Runs of one agent, live: the run shown in detail (status, result, events) and the history
//! list, both fetched over REST and kept current by WebSocket topic `runs`. This file holds
//! the state and formatting; `detail` and `history` hold the views.

mod all;
mod detail;
mod history;

pub use all::AllRunsPage;
pub use detail::RunDetail;
pub use history::RunHistory;

use std::cell::Cell;
use std::rc::Rc;

use contracts::{Run, RunEvent, RunQuery, RunStatus, Topic};
use leptos::prelude::*;
use leptos::task::spawn_local;
use serde_json::Value;
use uuid::Uuid;

use crate::api::{self, ApiError};
use crate::components::{EmptyState, Loading};
use crate::router::{Route, navigate};
use crate::ws;

/// How many runs the history shows.
const HISTORY_LIMIT: u64 = 50;

/// How far a run has come: a finished run stays finished; before that, a later delivery
/// (a worker lost the run and it was queued again) is further along than an earlier one, and
/// within a delivery status moves forward and attempts only grow. A copy of a run never
/// replaces one that is further along (a late HTTP answer must not undo a WebSocket update).
pub(crate) fn progress(run: &Run) -> (bool, u32, u8, u32) {
    let stage = match run.status {
        RunStatus::Queued => 0,
        RunStatus::Assigned => 1,
        RunStatus::Running => 2,
        RunStatus::Succeeded | RunStatus::Failed | RunStatus::Canceled => 3,
    };
    (
        run.status.is_finished(),
        run.deliveries,
        stage,
        run.attempts,
    )
}

/// Only the newest of overlapping fetches may write.
#[derive(Clone, Default)]
struct Generation(Rc<Cell<u32>>);

impl Generation {
    fn next(&self) -> u32 {
        let n = self.0.get().wrapping_add(1);
        self.0.set(n);
        n
    }

    fn is(&self, n: u32) -> bool {
        self.0.get() == n
    }
}

/// The playground's run state, shared by its views.
#[derive(Clone, Copy)]
pub struct Runs {
    agent_id: Uuid,
    route: RwSignal<Route>,
    /// The run in the URL (`?run=`).
    selected: Memo<Option<Uuid>>,
    /// The history, newest first; `None` until loaded.
    list: RwSignal<Option<Vec<Run>>>,
    list_error: RwSignal<Option<ApiError>>,
    filter: RwSignal<Option<RunStatus>>,
    /// The selected run, once loaded.
    current: RwSignal<Option<Run>>,
    current_error: RwSignal<Option<ApiError>>,
    events: RwSignal<Option<Vec<RunEvent>>>,
}

impl Runs {
    /// Creates the state and starts following the agent's runs.
    pub fn new(agent_id: Uuid, route: RwSignal<Route>) -> Self {
        let selected = Memo::new(move |_| match route.get() {
            Route::Playground { run, .. } => run,
            _ => None,
        });
        let runs = Self {
            agent_id,
            route,
            selected,
            list: RwSignal::new(None),
            list_error: RwSignal::new(None),
            filter: RwSignal::new(None),
            current: RwSignal::new(None),
            current_error: RwSignal::new(None),
            events: RwSignal::new(None),
        };
        runs.follow();
        runs
    }

    fn follow(self) {
        let refetch = ws::refetch(Topic::Runs);

        // The history: on filter change, and whenever events may have been missed.
        let generation = Generation::default();
        let refetch_list = refetch.clone();
        Effect::new(move |_| {
            refetch_list.track();
            let query = RunQuery {
                agent_id: Some(self.agent_id),
                status: self.filter.get(),
                limit: Some(HISTORY_LIMIT),
                ..RunQuery::default()
            };
            let generation = generation.clone();
            let mine = generation.next();
            spawn_local(async move {
                let result = api::list_runs(&query).await;
                if !generation.is(mine) {
                    return;
                }
                match result {
                    Ok(page) => {
                        self.list.set(Some(page.items));
                        self.list_error.set(None);
                    }
                    Err(e) => self.list_error.set(Some(e)),
                }
            });
        });

        // The selected run: when it changes, and once after every (re)connect.
        let generation = Generation::default();
        Effect::new(move |_| {
            refetch.track();
            let mine = generation.next();
            let Some(id) = self.selected.get() else {
                self.current.set(None);
                self.events.set(None);
                return;
            };
            if self.current.with_untracked(|r| r.as_ref().map(|r| r.id)) != Some(id) {
                self.current.set(None);
                self.events.set(None);
            }
            self.current_error.set(None);
            let generation = generation.clone();
            spawn_local(async move {
                let result = api::get_run(id).await;
                if !generation.is(mine) {
                    return;
                }
                match result {
                    Ok(run) => self.merge(run),
                    Err(e) => self.current_error.set(Some(e)),
                }
            });
        });

        // Its events: again whenever it moves (each move follows new events).
        let moved = Memo::new(move |_| {
            self.current
                .with(|r| r.as_ref().map(|r| (r.id, r.status, r.attempts)))
        });
        let generation = Generation::default();
        Effect::new(move |_| {
            let Some((id, _, _)) = moved.get() else {
                return;
            };
            let generation = generation.clone();
            let mine = generation.next();
            spawn_local(async move {
                if let Ok(events) = api::run_events(id).await
                    && generation.is(mine)
                {
                    self.events.set(Some(events));
                }
            });
        });

        ws::on_event(Topic::Runs, move |event| {
            let Ok(run) = serde_json::from_value::<Run>(event.data.clone()) else {
                return;
            };
            if run.agent_id != self.agent_id {
                return;
            }
            self.merge(run.clone());
            self.upsert(run);
        });
    }

    /// Shows `run` as the selected run unless a copy further along is already shown.
    fn merge(self, run: Run) {
        if self.selected.get_untracked() != Some(run.id) {
            return;
        }
        let newer = self.current.with_untracked(|known| {
            known
                .as_ref()
                .is_none_or(|k| k.id != run.id || progress(k) <= progress(&run))
        });
        if newer {
            self.current.set(Some(run));
        }
    }

    /// Puts `run` into the history (or takes it out when it no longer passes the filter).
    fn upsert(self, run: Run) {
        let shown = self.filter.get_untracked().is_none_or(|s| s == run.status);
        self.list.update(|list| {
            let Some(list) = list else { return };
            let pos = list.iter().position(|r| r.id == run.id);
            match (pos, shown) {
                (Some(pos), true) => {
                    if progress(&list[pos]) <= progress(&run) {
                        list[pos] = run;
                    }
                }
                (Some(pos), false) => {
                    list.remove(pos);
                }
                (None, true) => {
                    list.push(run);
                    list.sort_by_key(|r| std::cmp::Reverse(r.created_at));
                }
                (None, false) => {}
            }
        });
    }

    /// A run this page just started: show it at once, before any event arrives.
    pub fn started(self, run: Run) {
        self.current.set(Some(run.clone()));
        self.events.set(None);
        self.upsert(run);
    }

    fn open(self, run: Uuid) {
        if let Route::Playground { agent, task, .. } = self.route.get_untracked() {
            navigate(
                self.route,
                Route::Playground {
                    agent,
                    task,
                    run: Some(run),
                },
            );
        }
    }

    fn href(self, run: Uuid) -> String {
        let task = match self.route.get_untracked() {
            Route::Playground { task, .. } => task,
            _ => None,
        };
        Route::Playground {
            agent: self.agent_id,
            task,
            run: Some(run),
        }
        .path()
    }
}

fn js_date(millis: i64) -> js_sys::Date {
    js_sys::Date::new(&wasm_bindgen::JsValue::from_f64(millis as f64))
}

/// A date and time in the browser's locale and time zone.
pub(crate) fn local_time(millis: i64) -> String {
    String::from(js_date(millis).to_locale_string("default", &wasm_bindgen::JsValue::UNDEFINED))
}

/// The time of day only, for events (their run's date is shown above them).
fn local_clock(millis: i64) -> String {
    String::from(js_date(millis).to_locale_time_string("default"))
}

pub(crate) fn duration(ms: u64) -> String {
    if ms < 1_000 {
        format!("{ms} ms")
    } else {
        format!("{:.1} s", ms as f64 / 1_000.0)
    }
}

fn pretty(value: &Value) -> String {
    serde_json::to_string_pretty(value).unwrap_or_default()
}

pub(crate) fn badge_class(status: RunStatus) -> String {
    format!("badge badge-run-{}", status.as_str())
}
