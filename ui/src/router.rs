//! The URL router: `window.location` is the source of truth, `history.pushState` moves it
//! and `popstate` (back/forward) is followed.

use leptos::ev;
use leptos::prelude::*;
use uuid::Uuid;

/// A page of the app, addressed by its path (and, for the playground, its query).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Route {
    Agents,
    Tasks,
    Providers,
    /// `/workers`: the built-in and remote workers, and adding one.
    Workers,
    /// `/workers/concurrency`: concurrency groups with their live counts.
    Concurrency,
    /// `/workers/{id}`: one worker's health, tags, keys held and runs.
    Worker(Uuid),
    /// `/runs`: every run across agents.
    Runs,
    /// `/agents/{agent}/run?task=…&run=…`: run a task with an agent, see a run and the
    /// agent's run history.
    Playground {
        agent: Uuid,
        task: Option<Uuid>,
        run: Option<Uuid>,
    },
}

/// Which page component a route shows: the playground stays mounted while its task or run
/// changes, so its form and live views keep their state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Page {
    Agents,
    Tasks,
    Providers,
    Workers,
    Concurrency,
    Worker(Uuid),
    Runs,
    Playground(Uuid),
}

impl Route {
    /// The Agents section's tabs.
    pub const ALL: [Self; 3] = [Self::Agents, Self::Tasks, Self::Providers];
    /// The Workers section's tabs.
    pub const WORKERS: [Self; 2] = [Self::Workers, Self::Concurrency];

    pub fn path(self) -> String {
        match self {
            Self::Agents => "/agents".to_owned(),
            Self::Tasks => "/tasks".to_owned(),
            Self::Providers => "/providers".to_owned(),
            Self::Workers => "/workers".to_owned(),
            Self::Concurrency => "/workers/concurrency".to_owned(),
            Self::Worker(id) => format!("/workers/{id}"),
            Self::Runs => "/runs".to_owned(),
            Self::Playground { agent, task, run } => {
                let mut query = Vec::new();
                if let Some(task) = task {
                    query.push(format!("task={task}"));
                }
                if let Some(run) = run {
                    query.push(format!("run={run}"));
                }
                let query = if query.is_empty() {
                    String::new()
                } else {
                    format!("?{}", query.join("&"))
                };
                format!("/agents/{agent}/run{query}")
            }
        }
    }

    /// The top-level section a route belongs to: Agents (with its Agents, Tasks and
    /// Providers tabs), Workers or Runs.
    pub fn section(self) -> Self {
        match self {
            Self::Workers | Self::Concurrency | Self::Worker(_) => Self::Workers,
            Self::Runs => Self::Runs,
            _ => Self::Agents,
        }
    }

    /// The section tab this route belongs to (the playground is part of Agents).
    pub fn tab(self) -> Self {
        match self {
            Self::Playground { .. } => Self::Agents,
            Self::Worker(_) => Self::Workers,
            other => other,
        }
    }

    pub fn page(self) -> Page {
        match self {
            Self::Agents => Page::Agents,
            Self::Tasks => Page::Tasks,
            Self::Providers => Page::Providers,
            Self::Workers => Page::Workers,
            Self::Concurrency => Page::Concurrency,
            Self::Worker(id) => Page::Worker(id),
            Self::Runs => Page::Runs,
            Self::Playground { agent, .. } => Page::Playground(agent),
        }
    }

    /// `None` for paths the app does not know; `/` is the agents page.
    fn parse(path: &str, search: &str) -> Option<Self> {
        match path.trim_end_matches('/') {
            "" | "/agents" => return Some(Self::Agents),
            "/tasks" => return Some(Self::Tasks),
            "/providers" => return Some(Self::Providers),
            "/workers" => return Some(Self::Workers),
            "/workers/concurrency" => return Some(Self::Concurrency),
            "/runs" => return Some(Self::Runs),
            _ => {}
        }
        if let Some(id) = path.trim_end_matches('/').strip_prefix("/workers/") {
            return Uuid::parse_str(id).ok().map(Self::Worker);
        }
        let agent = path
            .trim_end_matches('/')
            .strip_prefix("/agents/")?
            .strip_suffix("/run")?;
        let agent = Uuid::parse_str(agent).ok()?;
        let param = |name: &str| {
            search
                .trim_start_matches('?')
                .split('&')
                .filter_map(|pair| pair.split_once('='))
                .find(|(key, _)| *key == name)
                .and_then(|(_, value)| Uuid::parse_str(value).ok())
        };
        Some(Self::Playground {
            agent,
            task: param("task"),
            run: param("run"),
        })
    }
}

fn current_location() -> (String, String) {
    let Some(location) = web_sys::window().map(|w| w.location()) else {
        return (String::new(), String::new());
    };
    (
        location.pathname().unwrap_or_default(),
        location.search().unwrap_or_default(),
    )
}

fn history(path: &str, push: bool) {
    let Some(history) = web_sys::window().and_then(|w| w.history().ok()) else {
        return;
    };
    let state = wasm_bindgen::JsValue::NULL;
    // Failing to change the URL only loses back/forward for this step.
    let _ = if push {
        history.push_state_with_url(&state, "", Some(path))
    } else {
        history.replace_state_with_url(&state, "", Some(path))
    };
}

/// The current route as a signal, kept in step with the address bar and provided as context
/// (see [`use_router`]). Unknown paths (and `/`) are rewritten to `/agents` without adding a
/// history entry.
pub fn use_route() -> RwSignal<Route> {
    let read = || {
        let (path, search) = current_location();
        let route = Route::parse(&path, &search).unwrap_or(Route::Agents);
        if route.path() != format!("{path}{search}") {
            history(&route.path(), false);
        }
        route
    };
    let route = RwSignal::new(read());
    let handle = window_event_listener(ev::popstate, move |_| route.set(read()));
    on_cleanup(move || handle.remove());
    provide_context(route);
    route
}

/// The app's route signal, from context; call it while building a component.
pub fn use_router() -> RwSignal<Route> {
    use_context::<RwSignal<Route>>().unwrap_or_else(|| RwSignal::new(Route::Agents))
}

/// Moves to `to`, adding a history entry unless it is already the current page.
pub fn navigate(route: RwSignal<Route>, to: Route) {
    if route.get_untracked() != to {
        history(&to.path(), true);
        route.set(to);
    }
}

/// Moves to `to` in place, without a history entry (e.g. choosing another task).
pub fn replace(route: RwSignal<Route>, to: Route) {
    if route.get_untracked() != to {
        history(&to.path(), false);
        route.set(to);
    }
}

/// A click handler for an `<a href>` that navigates inside the app; modified clicks keep
/// their browser meaning (open in a new tab…).
pub fn link(route: RwSignal<Route>, to: Route) -> impl Fn(ev::MouseEvent) + Copy + 'static {
    move |ev: ev::MouseEvent| {
        if !(ev.ctrl_key() || ev.meta_key() || ev.shift_key() || ev.button() != 0) {
            ev.prevent_default();
            navigate(route, to);
        }
    }
}
