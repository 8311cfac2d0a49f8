//! The URL router: `window.location` is the source of truth, `history.pushState` moves it
//! and `popstate` (back/forward) is followed.

use leptos::ev;
use leptos::prelude::*;

/// A page of the app, addressed by its path.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Route {
    Agents,
    Tasks,
    Providers,
}

impl Route {
    pub const ALL: [Self; 3] = [Self::Agents, Self::Tasks, Self::Providers];

    pub fn path(self) -> &'static str {
        match self {
            Self::Agents => "/agents",
            Self::Tasks => "/tasks",
            Self::Providers => "/providers",
        }
    }

    /// `None` for paths the app does not know; `/` is the agents page.
    fn parse(path: &str) -> Option<Self> {
        match path.trim_end_matches('/') {
            "" | "/agents" => Some(Self::Agents),
            "/tasks" => Some(Self::Tasks),
            "/providers" => Some(Self::Providers),
            _ => None,
        }
    }
}

fn current_path() -> String {
    web_sys::window()
        .and_then(|w| w.location().pathname().ok())
        .unwrap_or_default()
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

/// The current route as a signal, kept in step with the address bar. Unknown paths (and `/`)
/// are rewritten to `/agents` without adding a history entry.
pub fn use_route() -> RwSignal<Route> {
    let read = || {
        let path = current_path();
        let route = Route::parse(&path).unwrap_or(Route::Agents);
        if route.path() != path {
            history(route.path(), false);
        }
        route
    };
    let route = RwSignal::new(read());
    let handle = window_event_listener(ev::popstate, move |_| route.set(read()));
    on_cleanup(move || handle.remove());
    route
}

/// Moves to `to`, adding a history entry unless it is already the current page.
pub fn navigate(route: RwSignal<Route>, to: Route) {
    if route.get_untracked() != to {
        history(to.path(), true);
        route.set(to);
    }
}
