//! Agentry web app: a Leptos client-side-rendered page, compiled to wasm32 by
//! `server/build.rs` and embedded in the server binary.

mod api;
mod app;
mod components;
mod pages;
mod router;
mod store;
mod ws;

fn main() {
    console_error_panic_hook::set_once();
    leptos::mount::mount_to_body(app::App);
}
