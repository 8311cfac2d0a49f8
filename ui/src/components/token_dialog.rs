//! Asks for the API token when the server answers 401; the token lasts for the browser
//! session.

use contracts::Topic;
use leptos::prelude::*;

use crate::{api, ws};

#[component]
pub fn TokenDialog() -> impl IntoView {
    let required = RwSignal::from(api::token_required());
    let value = RwSignal::new(String::new());
    let save = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        api::set_token(&value.get_untracked());
        value.set(String::new());
        ws::reconnect_now();
        ws::bump(&Topic::ALL);
    };
    move || {
        required.get().then(|| {
            let had_token = api::token().is_some();
            view! {
                <div class="overlay">
                    <form
                        class="dialog"
                        role="dialog"
                        aria-modal="true"
                        aria-labelledby="token-title"
                        data-testid="token-dialog"
                        on:submit=save
                    >
                        <h2 id="token-title">"API token required"</h2>
                        <p class="muted">
                            {if had_token {
                                "The server refused the stored token. Enter the current one."
                            } else {
                                "This server requires the token set in AGENTRY_API_TOKEN. It is kept for this browser session only."
                            }}
                        </p>
                        <label for="token-input">"Token"</label>
                        <input
                            id="token-input"
                            type="password"
                            autocomplete="off"
                            required
                            autofocus
                            prop:value=move || value.get()
                            on:input=move |ev| value.set(event_target_value(&ev))
                        />
                        <div class="actions">
                            <button type="submit" id="token-save" class="btn btn-primary">
                                "Use token"
                            </button>
                        </div>
                    </form>
                </div>
            }
        })
    }
}
