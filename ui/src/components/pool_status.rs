//! The pool's counts in the header, live: "3 workers · 1 busy · 4 queued". Highlighted when
//! no worker is online (runs would wait); a click opens Workers.

use contracts::{Pool, Topic};
use leptos::prelude::*;
use leptos::task::spawn_local;

use crate::api;
use crate::router::{Route, link, use_router};
use crate::ws;

#[component]
pub fn PoolStatus() -> impl IntoView {
    let route = use_router();
    let pool = RwSignal::new(None::<Pool>);
    let refetch = ws::refetch(Topic::Pool);
    Effect::new(move |_| {
        refetch.track();
        spawn_local(async move {
            if let Ok(now) = api::pool().await {
                pool.set(Some(now));
            }
        });
    });
    ws::on_event(Topic::Pool, move |event| {
        if let Ok(now) = serde_json::from_value::<Pool>(event.data.clone()) {
            pool.set(Some(now));
        }
    });
    let text = move || match pool.get() {
        None => "workers…".to_owned(),
        Some(p) => {
            let workers = if p.online == 1 { "worker" } else { "workers" };
            let mut parts = vec![format!("{} {workers}", p.online)];
            if p.busy > 0 {
                parts.push(format!("{} busy", p.busy));
            }
            if p.unhealthy > 0 {
                parts.push(format!("{} unhealthy", p.unhealthy));
            }
            parts.push(format!("{} queued", p.runs_queued));
            parts.join(" · ")
        }
    };
    let class = move || match pool.get() {
        Some(p) if p.online == 0 => "pool pool-none",
        Some(p) if p.unhealthy > 0 => "pool pool-warn",
        _ => "pool",
    };
    let title = move || match pool.get() {
        Some(p) if p.online == 0 => "No worker is online: runs wait in the queue",
        _ => "Workers and queued runs",
    };
    view! {
        <a
            href="/workers"
            id="pool-status"
            class=class
            title=title
            data-testid="pool-status"
            on:click=link(route, Route::Workers)
        >
            {text}
        </a>
    }
}
