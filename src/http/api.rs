//! The JSON API: `/api/me`, `/api/premium-feature`, and the health checks.

use axum::{extract::State, http::StatusCode, Json};
use serde_json::{json, Value};

use super::{error::ApiError, extract::AuthUser};
use crate::state::AppState;

pub async fn me(
    State(state): State<AppState>,
    AuthUser(session): AuthUser,
) -> Result<Json<Value>, ApiError> {
    let d = state.entitlements().check(&session, "premium").await?;
    Ok(Json(json!({
        "user_id": session.user_id,
        "org_id": session.org_id,
        "plan": d.plan,
        "status": d.status.map(|s| s.as_str()),
        "entitled": d.allowed,
        "source": d.source.as_str(),
        "period_end": d.period_end,
    })))
}

pub async fn premium_feature(
    State(state): State<AppState>,
    AuthUser(session): AuthUser,
) -> Result<Json<Value>, ApiError> {
    let d = state.entitlements().check(&session, "premium").await?;
    if !d.allowed {
        return Err(ApiError::forbidden(d.reason));
    }
    Ok(Json(json!({
        "message": "Premium feature unlocked: here is your advanced report.",
        "plan": d.plan,
    })))
}

pub async fn healthz() -> Json<Value> {
    Json(json!({"status": "ok"}))
}

pub async fn readyz(State(state): State<AppState>) -> (StatusCode, Json<Value>) {
    match state.db().ping().await {
        Ok(()) => (
            StatusCode::OK,
            Json(json!({"status": "ready", "database": state.db().engine.as_str()})),
        ),
        Err(e) => {
            tracing::warn!(error = %e, "readiness check failed");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(json!({"status": "unavailable"})),
            )
        }
    }
}

pub async fn api_not_found() -> ApiError {
    ApiError::not_found()
}

/// `GET /metrics` on the operator's listener: Prometheus' text format.
pub async fn metrics(
    State(state): State<AppState>,
) -> ([(axum::http::HeaderName, &'static str); 1], String) {
    let text = state.inbox().render_metrics().await;
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        text,
    )
}
