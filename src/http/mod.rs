//! The HTTP edges, all in this folder: the JSON API, the webhook endpoint, the demo routes,
//! the Leptos pages, the request guard and the signed-out page cache, with one error type.
//! Handlers are thin: they read the guard's `auth::Caller`, call the services
//! (`Entitlements`, `Inbox`) and map the result.

pub mod admin;
pub mod api;
pub mod demo;
pub mod demo_keys;
pub mod error;
pub mod extract;
pub mod guard;
pub mod handshake;
pub mod metered;
pub mod page_cache;
pub mod serve;
pub mod webhook;

use std::sync::{Arc, OnceLock};

use axum::{
    extract::DefaultBodyLimit,
    http::{header, HeaderValue, Request},
    middleware,
    routing::{get, post},
    Router,
};
use leptos::prelude::*;
use leptos_axum::{generate_route_list, LeptosRoutes};
use tower_http::{
    limit::RequestBodyLimitLayer, set_header::SetResponseHeaderLayer, timeout::TimeoutLayer,
    trace::TraceLayer,
};

use crate::{
    app::{shell, App},
    state::AppState,
};

pub const WEBHOOK_PATH: &str = "/api/webhooks/clerk";
/// Where demo mode's stand-in for Clerk's Backend API answers (API key verification).
pub const DEMO_BAPI: &str = "/demo/bapi/";

/// The app's route list, generated once per process. Generating it sets a process-global flag
/// that makes any resource first polled meanwhile wait forever (leptos issue #4773); generating
/// it again while another `Application` in the process serves pages (tests run many) hung
/// those pages. Once, before anything serves, it cannot overlap a render.
fn route_list() -> Vec<leptos_axum::AxumRouteListing> {
    static ROUTES: OnceLock<Vec<leptos_axum::AxumRouteListing>> = OnceLock::new();
    ROUTES.get_or_init(|| generate_route_list(App)).clone()
}

/// The operator's listener (`METRICS_ADDR`, never the public port): `GET /metrics` only.
pub fn metrics_router(state: AppState) -> Router {
    Router::new()
        .route("/metrics", get(api::metrics))
        .with_state(state)
}

/// What a path no route serves gets: a static file from the site root if there is one, else
/// the app's not-found page (the console answers everyone but its operators with this too).
pub(crate) fn not_found_handler(
    state: &AppState,
) -> impl Fn(
    axum::http::Uri,
    axum::extract::State<AppState>,
    Request<axum::body::Body>,
) -> std::pin::Pin<Box<dyn std::future::Future<Output = axum::response::Response> + Send>>
       + Clone
       + Send
       + 'static {
    let s = state.clone();
    leptos_axum::file_and_error_handler_with_context::<AppState, _>(
        move || {
            provide_context(s.clone());
            guard::provide_request_nonce();
        },
        shell,
    )
}

pub fn router(state: AppState) -> Router {
    let routes = route_list();
    let leptos_options = state.leptos_options().clone();

    let webhook = Router::new()
        .route(WEBHOOK_PATH, post(webhook::receive))
        .layer(DefaultBodyLimit::disable())
        .layer(RequestBodyLimitLayer::new(webhook::BODY_LIMIT));

    let mut app = Router::new()
        .route("/healthz", get(api::healthz))
        .route("/readyz", get(api::readyz))
        .route("/api/me", get(api::me))
        .route("/api/premium-feature", get(api::premium_feature))
        .route("/api/usage", get(api::usage))
        .route("/api/gates/{gate}", get(api::gate))
        .route("/api/billing", get(api::billing))
        // The operator console: its routes behind an operators-only layer (anyone but an
        // operator, and any path or method it does not serve, gets the unknown-path answer).
        .merge(admin::router(&state))
        .merge(webhook);

    if state.demo().is_some() {
        app = app
            .route("/.well-known/jwks.json", get(demo::jwks))
            .route("/demo/sign-in", post(demo::sign_in))
            .route("/demo/sign-out", post(demo::sign_out))
            .route("/demo/refresh", post(demo::refresh))
            .route("/demo/v1/client/handshake", get(demo::handshake))
            .route("/demo/action", post(demo::action))
            .route("/demo/replay", post(demo::replay))
            .route("/demo/bapi/v1/api_keys/verify", post(demo_keys::verify))
            .route("/demo/api-keys", post(demo_keys::create))
            .route("/demo/api-keys/{id}/revoke", post(demo_keys::revoke));
    }

    let ctx_state = state.clone();
    let mut app = app
        .route(
            "/api/{*rest}",
            get(api::api_not_found).post(api::api_not_found),
        )
        .leptos_routes_with_context(
            &state,
            routes,
            move || {
                provide_context(ctx_state.clone());
                guard::provide_request_nonce();
            },
            {
                // Behind an Arc: axum clones a route's handler for every request, and with it
                // whatever this closure holds.
                let leptos_options = Arc::new(leptos_options.clone());
                move || shell(LeptosOptions::clone(&leptos_options))
            },
        )
        .fallback(not_found_handler(&state));
    // Inside the handshake below: a handshake's redirects never reach the page cache.
    app = app.layer(middleware::from_fn_with_state(
        Arc::new(page_cache::PageCache::default()),
        page_cache::middleware,
    ));
    // Clerk's handshake (the demo issuer's in demo mode): a document request with a session
    // cookie that cannot be trusted as it is goes through the Frontend API first.
    app = app.layer(middleware::from_fn_with_state(
        state.clone(),
        handshake::middleware,
    ));
    // Outside the handshake and the page cache: the client address, the origin check, the
    // token verdict and the nonce are in place before either runs.
    app = app.layer(middleware::from_fn_with_state(state.clone(), guard::guard));
    app.layer(SetResponseHeaderLayer::if_not_present(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::REFERRER_POLICY,
            HeaderValue::from_static("strict-origin-when-cross-origin"),
        ))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::X_FRAME_OPTIONS,
            HeaderValue::from_static("DENY"),
        ))
        // A request and its body within 30 s, else 408 (README, "Security model").
        .layer(TimeoutLayer::with_status_code(
            axum::http::StatusCode::REQUEST_TIMEOUT,
            serve::BODY_TIMEOUT,
        ))
        // Outside every layer that answers on its own (405, 408, 413): `/api/…` refusals JSON.
        .layer(error::ApiJsonLayer)
        // Method and path only: never headers (tokens) or bodies.
        .layer(TraceLayer::new_for_http().make_span_with(|req: &Request<_>| {
            tracing::info_span!("http", method = %req.method(), path = %req.uri().path())
        }))
        .with_state(state)
}
