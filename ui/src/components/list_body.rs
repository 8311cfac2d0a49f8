//! The four states of a live list: loading, failed, empty and filled.

use contracts::Topic;
use leptos::prelude::*;

use crate::components::{LoadFailed, Loading};
use crate::store::{Item, Live};
use crate::ws;

#[derive(Clone, PartialEq)]
enum State {
    Loading,
    Failed(crate::api::ApiError),
    Empty,
    Filled,
}

/// Shows `empty` or `filled` once `live` has loaded. The views are rebuilt only when the
/// state changes, never on each item update (the filled view follows items itself).
pub fn list_body<T: Item>(
    live: Live<T>,
    topic: Topic,
    what: &'static str,
    empty: impl Fn() -> AnyView + Send + Sync + 'static,
    filled: impl Fn() -> AnyView + Send + Sync + 'static,
) -> impl IntoView {
    let state = Memo::new(move |_| {
        live.items.with(|items| match items {
            Some(items) if items.is_empty() => State::Empty,
            Some(_) => State::Filled,
            None => match live.error.get() {
                Some(error) => State::Failed(error),
                None => State::Loading,
            },
        })
    });
    move || match state.get() {
        State::Loading => view! { <Loading what=what /> }.into_any(),
        State::Failed(error) => {
            view! { <LoadFailed error=error retry=move || ws::bump(&[topic]) /> }.into_any()
        }
        State::Empty => empty(),
        State::Filled => filled(),
    }
}
