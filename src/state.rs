//! The application's wiring: what `startup` built, handed to axum routes and to Leptos server
//! functions. Its parts are reached through accessors; only `startup` puts them together.

use std::sync::Arc;

use axum::extract::FromRef;
use leptos::config::LeptosOptions;

use crate::{
    auth::{ApiKeys, Sessions},
    config::Config,
    db::Db,
    demo::{api_keys::DemoKeys, DemoIssuer},
    security::{csp::Csp, RateLimiter},
    services::{Console, Entitlements, Inbox, Reconciler, Services, Usage},
    webhooks::verify::Verifier,
};

/// Handed to every request (axum clones the state per request), so it is a single `Arc`.
#[derive(Clone)]
pub struct AppState(Arc<Wiring>);

/// What `startup` builds.
pub struct Wiring {
    pub leptos_options: LeptosOptions,
    /// The service layer, held once: the database, entitlements, metered usage
    /// (`usage().consume(…)` in a handler), the inbox, the reconciler.
    pub services: Arc<Services>,
    /// Where a request's session token is, and its verification (the guard's).
    pub sessions: Arc<Sessions>,
    /// API keys' verification and its per-instance memory (the guard's).
    pub api_keys: Arc<ApiKeys>,
    /// Demo mode's stand-in for Clerk's API keys.
    pub demo_keys: Option<Arc<DemoKeys>>,
    /// The operator console (README, "Operator console").
    pub console: Arc<Console>,
    /// Clerk's webhook signatures (the webhook edge checks them before the inbox sees a byte).
    pub verifier: Arc<Verifier>,
    pub config: Arc<Config>,
    /// Present only in demo mode.
    pub demo: Option<Arc<DemoIssuer>>,
    pub http: reqwest::Client,
    /// The address this process listens on, e.g. `http://127.0.0.1:3000` (demo self-calls).
    pub self_url: String,
    /// Failed attempts per client address.
    pub limiter: RateLimiter,
    /// The Content-Security-Policy of HTML responses.
    pub csp: Csp,
}

impl AppState {
    pub fn new(wiring: Wiring) -> AppState {
        AppState(Arc::new(wiring))
    }
    pub fn leptos_options(&self) -> &LeptosOptions {
        &self.0.leptos_options
    }
    pub fn db(&self) -> &Db {
        &self.0.services.db
    }
    pub fn sessions(&self) -> &Sessions {
        &self.0.sessions
    }
    pub fn api_keys(&self) -> &ApiKeys {
        &self.0.api_keys
    }
    pub fn demo_keys(&self) -> Option<&DemoKeys> {
        self.0.demo_keys.as_deref()
    }
    pub fn entitlements(&self) -> &Entitlements {
        &self.0.services.entitlements
    }
    pub fn usage(&self) -> &Usage {
        &self.0.services.usage
    }
    pub fn console(&self) -> &Arc<Console> {
        &self.0.console
    }
    pub fn verifier(&self) -> &Verifier {
        &self.0.verifier
    }
    pub fn inbox(&self) -> &Inbox {
        &self.0.services.inbox
    }
    pub fn reconciler(&self) -> Option<&Reconciler> {
        self.0.services.reconciler.as_deref()
    }
    pub fn config(&self) -> &Config {
        &self.0.config
    }
    pub fn demo(&self) -> Option<&DemoIssuer> {
        self.0.demo.as_deref()
    }
    pub fn http(&self) -> &reqwest::Client {
        &self.0.http
    }
    pub fn self_url(&self) -> &str {
        &self.0.self_url
    }
    pub fn limiter(&self) -> &RateLimiter {
        &self.0.limiter
    }
    pub fn csp(&self) -> &Csp {
        &self.0.csp
    }
}

/// Leptos' handlers take their options from the state.
impl FromRef<AppState> for LeptosOptions {
    fn from_ref(state: &AppState) -> LeptosOptions {
        state.0.leptos_options.clone()
    }
}
