//! The application shell: header with the top navigation (Agents, Workers, Runs), the live
//! pool status and the live-connection indicator; the Agents section's tabs (URL-addressed);
//! the error banner, the token dialog and the page of the active section.

use leptos::prelude::*;

use crate::components::PoolStatus;
use crate::components::{Banner, ErrorBanner, TokenDialog};
use crate::pages::{
    AgentsPage, AllRunsPage, ConcurrencyPage, PlaygroundPage, ProvidersPage, TasksPage, WorkerPage,
    WorkersPage,
};
use crate::router::{Page, Route, link, use_route};
use crate::ws::{self, Status};

/// Id of the single tab panel; every tab controls it and it is labelled by the active tab.
const PANEL_ID: &str = "section-panel";

fn label(route: Route) -> &'static str {
    match route {
        Route::Agents | Route::Playground { .. } => "Agents",
        Route::Tasks => "Tasks",
        Route::Providers => "Providers",
        Route::Workers | Route::Worker(_) => "Workers",
        Route::Concurrency => "Concurrency",
        Route::Runs => "Runs",
    }
}

/// DOM id of the tab; browser tests select tabs by it.
fn tab_id(route: Route) -> &'static str {
    match route {
        Route::Agents | Route::Playground { .. } => "tab-agents",
        Route::Tasks => "tab-tasks",
        Route::Providers => "tab-providers",
        Route::Workers | Route::Worker(_) => "tab-workers",
        Route::Concurrency => "tab-concurrency",
        Route::Runs => "tab-runs",
    }
}

/// The top-level sections in the header.
const SECTIONS: [Route; 3] = [Route::Agents, Route::Workers, Route::Runs];

/// DOM id of a section's link in the header.
fn section_id(section: Route) -> &'static str {
    match section {
        Route::Workers => "nav-workers",
        Route::Runs => "nav-runs",
        _ => "nav-agents",
    }
}

#[component]
fn ConnectionStatus() -> impl IntoView {
    let status = RwSignal::from(ws::status());
    let text = move || match status.get() {
        Status::Connecting => "connecting…",
        Status::Connected => "live",
        Status::Reconnecting => "reconnecting…",
    };
    let class = move || match status.get() {
        Status::Connecting => "conn conn-connecting",
        Status::Connected => "conn conn-live",
        Status::Reconnecting => "conn conn-reconnecting",
    };
    view! {
        <span id="ws-status" class=class data-testid="ws-status" role="status" aria-live="polite">
            <span class="conn-dot" aria-hidden="true"></span>
            {text}
        </span>
    }
}

#[component]
pub fn App() -> impl IntoView {
    let route = use_route();
    // Rebuilt only when the page changes, not when the playground's task or run does.
    let page = Memo::new(move |_| route.get().page());
    let banner = Banner::provide();
    ws::start();

    // The tabs of the current section (the Runs section has none).
    let tabs = move || {
        let section = route.get().section();
        match section {
            Route::Workers => &Route::WORKERS[..],
            Route::Runs => &[][..],
            _ => &Route::ALL[..],
        }
        .iter()
        .copied()
        .map(|tab| {
            let selected = move || {
                if route.get().tab() == tab {
                    "true"
                } else {
                    "false"
                }
            };
            view! {
                <a
                    href=tab.path()
                    role="tab"
                    id=tab_id(tab)
                    class="tab"
                    aria-controls=PANEL_ID
                    aria-selected=selected
                    on:click=link(route, tab)
                >
                    {label(tab)}
                </a>
            }
        })
        .collect_view()
    };

    let sections = SECTIONS
        .into_iter()
        .map(|section| {
            let current = move || (route.get().section() == section).then_some("page");
            view! {
                <a
                    href=section.path()
                    id=section_id(section)
                    class="top-nav-item"
                    aria-current=current
                    on:click=link(route, section)
                >
                    {label(section)}
                </a>
            }
        })
        .collect_view();

    view! {
        <header class="app-header">
            <a class="brand" href="/agents">"Agentry"</a>
            <nav class="top-nav" aria-label="Main">
                {sections}
            </nav>
            <PoolStatus />
            <ConnectionStatus />
        </header>
        <Show when=move || route.get().section() != Route::Runs>
            <nav class="tabs" role="tablist" aria-label="Sections">
                {tabs}
            </nav>
        </Show>
        <ErrorBanner banner=banner />
        <main
            class="panel"
            role="tabpanel"
            id=PANEL_ID
            aria-labelledby=move || tab_id(route.get().tab())
        >
            {move || match page.get() {
                Page::Agents => view! { <AgentsPage /> }.into_any(),
                Page::Tasks => view! { <TasksPage /> }.into_any(),
                Page::Providers => view! { <ProvidersPage /> }.into_any(),
                Page::Workers => view! { <WorkersPage /> }.into_any(),
                Page::Concurrency => view! { <ConcurrencyPage /> }.into_any(),
                Page::Worker(id) => view! { <WorkerPage id=id /> }.into_any(),
                Page::Runs => view! { <AllRunsPage /> }.into_any(),
                Page::Playground(agent) => view! { <PlaygroundPage agent_id=agent /> }.into_any(),
            }}
        </main>
        <TokenDialog />
    }
}
