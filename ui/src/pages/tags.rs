//! The tag manager on the Workers page: every tag with how many workers carry it, live;
//! create one (name and note) and delete one (a tag agents require is refused, and the
//! server's reason is shown).

use contracts::{CreateTag, FieldError, Tag, Topic};
use leptos::prelude::*;
use leptos::task::spawn_local;
use uuid::Uuid;

use crate::api;
use crate::components::Banner;
use crate::ws;

#[component]
pub fn TagManager() -> impl IntoView {
    let tags = RwSignal::new(None::<Vec<Tag>>);
    let banner = Banner::get();
    let reload = move || {
        spawn_local(async move {
            match api::list_tags().await {
                Ok(list) => tags.set(Some(list)),
                Err(e) => banner.show(format!("Could not load the tags: {e}")),
            }
        });
    };
    let refetch = ws::refetch(Topic::Tags);
    Effect::new(move |_| {
        refetch.track();
        reload();
    });
    ws::on_event(Topic::Tags, move |_| reload());
    // A worker's tags changed: the counts did too.
    ws::on_event(Topic::Workers, move |_| reload());

    let name = RwSignal::new(String::new());
    let note = RwSignal::new(String::new());
    let errors = RwSignal::new(Vec::<FieldError>::new());
    let create = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let body = CreateTag {
            name: name.get_untracked().trim().to_owned(),
            note: Some(note.get_untracked()),
        };
        spawn_local(async move {
            match api::create_tag(&body).await {
                Ok(_) => {
                    name.set(String::new());
                    note.set(String::new());
                    errors.set(Vec::new());
                    reload();
                }
                Err(e) if !e.errors.is_empty() => errors.set(e.errors),
                Err(e) => errors.set(vec![FieldError {
                    path: "/name".into(),
                    message: e.detail,
                }]),
            }
        });
    };
    let delete = move |id: Uuid| {
        spawn_local(async move {
            match api::delete_tag(id).await {
                Ok(()) => reload(),
                Err(e) => banner.show(format!("Could not delete the tag: {e}")),
            }
        });
    };
    let rows = move || {
        tags.get()
            .unwrap_or_default()
            .into_iter()
            .map(|tag| {
                let id = tag.id;
                let carriers = match tag.workers {
                    1 => "1 worker".to_owned(),
                    n => format!("{n} workers"),
                };
                view! {
                    <li class="tag-row" data-testid="tag-row" data-tag=tag.name.clone()>
                        <span class="tag mono">{tag.name.clone()}</span>
                        <span class="hint">{tag.note.clone()}</span>
                        <span data-testid="tag-workers">{carriers}</span>
                        <button
                            type="button"
                            class="btn btn-danger"
                            data-testid="tag-delete"
                            on:click=move |_| delete(id)
                        >
                            "Delete"
                        </button>
                    </li>
                }
            })
            .collect_view()
    };
    let messages = move || {
        errors
            .get()
            .into_iter()
            .map(|e| view! { <p class="field-error" role="alert">{format!("{}: {}", e.path.trim_start_matches('/'), e.message)}</p> })
            .collect_view()
    };
    view! {
        <section class="card tag-manager" data-testid="tag-manager" aria-label="Tags">
            <h3>"Tags"</h3>
            <p class="hint">
                "Workers carry tags (set here on each worker, or by the registration token); an agent's required tags send its runs only to workers with all of them."
            </p>
            <ul class="tag-list">{rows}</ul>
            <form class="field-row" id="tag-form" on:submit=create>
                <input id="tag-name" aria-label="Tag name" placeholder="gpu" prop:value=move || name.get()
                    on:input=move |ev| name.set(event_target_value(&ev)) />
                <input id="tag-note" aria-label="Tag note" placeholder="what it means" prop:value=move || note.get()
                    on:input=move |ev| note.set(event_target_value(&ev)) />
                <button type="submit" id="tag-create" class="btn">"Create tag"</button>
            </form>
            {messages}
        </section>
    }
}
