//! Server-side helpers of the server functions: the app state and the caller's session.

use leptos::prelude::*;

use crate::{
    auth::{Caller, Session},
    state::AppState,
};

pub fn state() -> Result<AppState, ServerFnError> {
    use_context::<AppState>().ok_or_else(|| ServerFnError::new("app state missing"))
}

/// The caller's verified session, as the request guard decided it; `None` when signed out or
/// the token did not verify (pages show the signed-out state; the JSON API is stricter and
/// answers 401).
pub async fn session(_state: &AppState) -> Option<Session> {
    let parts = use_context::<axum::http::request::Parts>()?;
    Caller::of(&parts.extensions).session().cloned()
}

pub fn internal(e: impl std::fmt::Display) -> ServerFnError {
    tracing::error!(error = %e, "server function failed");
    ServerFnError::new("internal error")
}
