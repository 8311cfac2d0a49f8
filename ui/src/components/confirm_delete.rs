//! The inline "really delete?" dialog a card opens from its Delete button.

use leptos::prelude::*;

/// Shown while `open` is set: what deleting means (`text`), the confirming button
/// (`confirm_label`, runs `on_confirm`) and Cancel.
#[component]
pub fn ConfirmDelete(
    open: RwSignal<bool>,
    #[prop(into)] text: Signal<String>,
    confirm_label: &'static str,
    on_confirm: impl Fn() + Copy + Send + Sync + 'static,
) -> impl IntoView {
    view! {
        <Show when=move || open.get()>
            <div class="confirm" role="alertdialog" aria-label="Confirm delete">
                <p>{move || text.get()}</p>
                <div class="actions">
                    <button
                        type="button"
                        class="btn btn-danger"
                        data-testid="confirm-delete"
                        on:click=move |_| on_confirm()
                    >
                        {confirm_label}
                    </button>
                    <button type="button" class="btn" on:click=move |_| open.set(false)>
                        "Cancel"
                    </button>
                </div>
            </div>
        </Show>
    }
}
