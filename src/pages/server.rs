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

/// The meters of the payer whose plan `decision` names: every limited feature (unlimited ones
/// have nothing to show).
pub async fn meters(
    state: &AppState,
    session: &Session,
    decision: &crate::billing::Decision,
) -> Result<Vec<crate::page_data::MeterView>, ServerFnError> {
    let report = state
        .usage()
        .report(
            crate::services::usage::Payer::of(session, decision),
            decision.plan.as_deref(),
            decision.period_start.zip(decision.period_end),
        )
        .await
        .map_err(internal)?;
    let resets = crate::page_data::format_date(report.period.end);
    Ok(report
        .features
        .into_iter()
        .filter_map(|f| {
            // A plan without the feature (a limit of 0) has nothing to meter.
            let limit = f.limit.filter(|l| *l > 0)?;
            Some(crate::page_data::MeterView {
                name: crate::billing::plans::feature_words(&f.feature),
                feature: f.feature,
                used: f.used,
                limit,
                resets: resets.clone(),
            })
        })
        .collect())
}
