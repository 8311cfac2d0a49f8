//! The app-wide, dismissible error banner for failures that belong to no form.

use leptos::prelude::*;

/// Handle to the banner, provided as context by the app shell.
#[derive(Clone, Copy)]
pub struct Banner(RwSignal<Option<String>>);

impl Banner {
    pub fn provide() -> Self {
        let banner = Self(RwSignal::new(None));
        provide_context(banner);
        banner
    }

    /// The shell's banner; a detached one when used outside the shell (messages are lost).
    pub fn get() -> Self {
        use_context::<Self>().unwrap_or_else(|| Self(RwSignal::new(None)))
    }

    pub fn show(self, message: impl Into<String>) {
        self.0.set(Some(message.into()));
    }
}

#[component]
pub fn ErrorBanner(banner: Banner) -> impl IntoView {
    move || {
        banner.0.get().map(|message| {
            view! {
                <div class="banner banner-error" role="alert" data-testid="error-banner">
                    <p class="banner-text">{message}</p>
                    <button
                        type="button"
                        class="btn btn-quiet"
                        aria-label="Dismiss error"
                        on:click=move |_| banner.0.set(None)
                    >
                        "Dismiss"
                    </button>
                </div>
            }
        })
    }
}
