//! Shared application state, handed to axum routes and to Leptos server functions.

use std::sync::{atomic::AtomicU64, Arc};

use axum::extract::FromRef;
use leptos::config::LeptosOptions;
use tokio::sync::Notify;

use crate::{
    auth::TokenVerifier, billing::Catalog, config::Config, db::Db, demo::DemoIssuer,
    webhooks::verify::Verifier,
};

/// Handed to every request (axum clones the state per request), so it is a single `Arc`.
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

impl AppState {
    pub fn new(shared: Shared) -> AppState {
        AppState(Arc::new(shared))
    }
}

impl std::ops::Deref for AppState {
    type Target = Shared;
    fn deref(&self) -> &Shared {
        &self.0
    }
}

/// Leptos' handlers take their options from the state.
impl FromRef<AppState> for LeptosOptions {
    fn from_ref(state: &AppState) -> LeptosOptions {
        state.leptos_options.clone()
    }
}

pub struct Shared {
    pub leptos_options: LeptosOptions,
    pub db: Db,
    pub tokens: Arc<TokenVerifier>,
    pub webhook: Verifier,
    /// Group-committing writer for webhook deliveries.
    pub writer: crate::webhooks::writer::Writer,
    /// Short-lived cache of payer state for the gate; cleared by the writer on commit.
    pub payers: Arc<crate::access::PayerCache>,
    pub config: Arc<Config>,
    pub catalog: Arc<Catalog>,
    pub mail_notify: Arc<Notify>,
    /// Present only in demo mode.
    pub demo: Option<Arc<DemoIssuer>>,
    pub http: reqwest::Client,
    /// The address this process listens on, e.g. `http://127.0.0.1:3000` (demo self-calls).
    pub self_url: String,
    /// Webhook deliveries rejected before anything was stored.
    pub rejected_webhooks: Arc<AtomicU64>,
    /// Signed-out renders of the public pages.
    pub pages: Arc<crate::page_cache::PageCache>,
    /// Failed attempts per client address.
    pub limiter: crate::security::RateLimiter,
    /// The Content-Security-Policy of HTML responses.
    pub csp: crate::security::csp::Csp,
    /// Clerk's cookie-name suffix for this publishable key (none in demo mode).
    pub cookie_suffix: Option<String>,
}
