//! plangate: subscriptions through Clerk Billing, gated on the server.
//!
//! Layers, each using only those below it (a unit test checks there is no cycle):
//! `billing` (pure domain) · `metrics` · `db` (SQL) · `auth` (session tokens) · `webhooks`
//! (Clerk's deliveries) · `clerk_api` (Clerk's Backend API) · `mail`, `demo`, `security` ·
//! `services` (`Gate`, `Inbox`, `Reconciler`) · `state` · the
//! pages (`app`, `pages`, `components`, `page_data`) · `http` (every route) · `startup`.

pub mod app;
pub mod billing;
pub mod components;
pub mod page_data;
pub mod pages;

#[cfg(feature = "ssr")]
pub mod auth;
#[cfg(feature = "ssr")]
pub mod background;
#[cfg(feature = "ssr")]
pub mod clerk_api;
#[cfg(feature = "ssr")]
pub mod cli;
#[cfg(feature = "ssr")]
pub mod config;
#[cfg(feature = "ssr")]
pub mod db;
#[cfg(feature = "ssr")]
pub mod demo;
#[cfg(feature = "ssr")]
pub mod http;
#[cfg(feature = "ssr")]
pub mod mail;
#[cfg(feature = "ssr")]
pub mod metrics;
#[cfg(feature = "ssr")]
pub mod preflight;
#[cfg(feature = "ssr")]
pub mod private_files;
#[cfg(feature = "ssr")]
pub mod security;
#[cfg(feature = "ssr")]
pub mod services;
#[cfg(feature = "ssr")]
pub mod startup;
#[cfg(feature = "ssr")]
pub mod state;
#[cfg(feature = "ssr")]
pub mod telemetry;
#[cfg(feature = "ssr")]
pub mod trigger;
#[cfg(feature = "ssr")]
pub mod webhooks;

#[cfg(feature = "hydrate")]
#[wasm_bindgen::prelude::wasm_bindgen]
pub fn hydrate() {
    console_error_panic_hook::set_once();
    leptos::mount::hydrate_body(app::App);
}
