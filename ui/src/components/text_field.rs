//! The labelled input every form repeats: a label, an input (or a textarea) bound to a
//! signal, an optional hint, and the server's messages for the field's JSON pointer.

use contracts::FieldError;
use leptos::prelude::*;

use super::FieldErrors;

/// A text field bound to `value`. `rows` makes it a textarea; `children` go under the input
/// (hints, a datalist).
#[component]
pub fn TextField(
    id: &'static str,
    #[prop(into)] label: Signal<String>,
    value: RwSignal<String>,
    errors: RwSignal<Vec<FieldError>>,
    /// The JSON pointer whose messages are shown here.
    path: &'static str,
    /// The input's `type` (`text`, `url`, `password`, …).
    #[prop(default = "text")]
    kind: &'static str,
    #[prop(optional, into)] required: Signal<bool>,
    #[prop(optional)] maxlength: Option<&'static str>,
    #[prop(optional)] autocomplete: Option<&'static str>,
    #[prop(optional, into)] placeholder: MaybeProp<String>,
    /// The id of a `<datalist>` of suggestions.
    #[prop(optional)]
    list: Option<&'static str>,
    #[prop(optional)] rows: Option<u32>,
    #[prop(optional)] children: Option<Children>,
) -> impl IntoView {
    let input = match rows {
        Some(rows) => view! {
            <textarea
                id=id
                rows=rows
                required=move || required.get()
                placeholder=move || placeholder.get()
                prop:value=move || value.get()
                on:input=move |ev| value.set(event_target_value(&ev))
            ></textarea>
        }
        .into_any(),
        None => view! {
            <input
                id=id
                type=kind
                required=move || required.get()
                maxlength=maxlength
                autocomplete=autocomplete
                list=list
                placeholder=move || placeholder.get()
                prop:value=move || value.get()
                on:input=move |ev| value.set(event_target_value(&ev))
            />
        }
        .into_any(),
    };
    view! {
        <div class="field">
            <label for=id>{move || label.get()}</label>
            {input}
            {children.map(|children| children())}
            <FieldErrors errors=errors path=path />
        </div>
    }
}
