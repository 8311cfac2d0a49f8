//! The application shell: header, section tabs and the page of the active section.

use leptos::prelude::*;

use crate::pages::{AgentsPage, ProvidersPage, TasksPage};

/// Id of the single tab panel; every tab controls it and it is labelled by the active tab.
const PANEL_ID: &str = "section-panel";

/// Top-level sections of the app, one tab each.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Section {
    Agents,
    Tasks,
    Providers,
}

impl Section {
    const ALL: [Self; 3] = [Self::Agents, Self::Tasks, Self::Providers];

    fn label(self) -> &'static str {
        match self {
            Self::Agents => "Agents",
            Self::Tasks => "Tasks",
            Self::Providers => "Providers",
        }
    }

    /// DOM id of the tab button; browser tests select tabs by it.
    fn tab_id(self) -> &'static str {
        match self {
            Self::Agents => "tab-agents",
            Self::Tasks => "tab-tasks",
            Self::Providers => "tab-providers",
        }
    }
}

#[component]
pub fn App() -> impl IntoView {
    let (section, set_section) = signal(Section::Agents);

    let tabs = Section::ALL
        .into_iter()
        .map(|tab| {
            let selected = move || {
                if section.get() == tab {
                    "true"
                } else {
                    "false"
                }
            };
            view! {
                <button
                    type="button"
                    role="tab"
                    id=tab.tab_id()
                    class="tab"
                    aria-controls=PANEL_ID
                    aria-selected=selected
                    on:click=move |_| set_section.set(tab)
                >
                    {tab.label()}
                </button>
            }
        })
        .collect_view();

    view! {
        <header class="app-header">
            <h1 class="brand">"Agentry"</h1>
        </header>
        <nav class="tabs" role="tablist" aria-label="Sections">
            {tabs}
        </nav>
        <main
            class="panel"
            role="tabpanel"
            id=PANEL_ID
            aria-labelledby=move || section.get().tab_id()
        >
            {move || match section.get() {
                Section::Agents => view! { <AgentsPage /> }.into_any(),
                Section::Tasks => view! { <TasksPage /> }.into_any(),
                Section::Providers => view! { <ProvidersPage /> }.into_any(),
            }}
        </main>
    }
}
