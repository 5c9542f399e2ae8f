//! The JSON API: `/api/me`, `/api/premium-feature`, and the health checks.

use axum::{
    extract::{Path, State},
    http::StatusCode,
    Json,
};
use serde_json::{json, Value};

use super::{
    error::ApiError,
    extract::{Entitled, Gated, Premium, PremiumApi, Signed},
    metered::Metered,
};
use crate::{
    services::{billing::Billing, usage::Report},
    state::AppState,
};

pub async fn me(Gated(access, _): Gated<Premium>) -> Json<Value> {
    let (a, d) = (&access.account, &access.decision);
    Json(json!({
        "user_id": a.user().map(|u| &u.id),
        "org_id": a.organization().map(|o| &o.id),
        "plan": d.plan,
        "status": d.status.map(|s| s.as_str()),
        "entitled": d.allowed,
        "source": d.source.as_str(),
        "period_end": d.period_end,
    }))
}

/// Gated by `premium`, metered by `premium_api`: one unit per `200` (README, "Usage limits").
pub async fn premium_feature(
    State(state): State<AppState>,
    Entitled(access, _): Entitled<PremiumApi>,
) -> Result<Metered<Json<Value>>, ApiError> {
    let meter = state.usage().consume(&access, "premium_api", 1).await?;
    Ok(Metered(
        meter,
        Json(json!({
            "message": "Premium feature unlocked: here is your advanced report.",
            "plan": access.decision.plan,
        })),
    ))
}

/// The caller's billing: plan, status, the dates that matter and the payment history; with an
/// active organization in the token, the organization's too (README, "Billing page").
pub async fn billing(
    State(state): State<AppState>,
    Signed(account): Signed,
) -> Result<Json<Value>, ApiError> {
    let of = |payer| Billing::of(state.db(), state.entitlements(), payer);
    let mut body = of(&account.caller).await?.json();
    if let Some(org) = &account.org {
        body["organization"] = of(org).await?.json();
    }
    Ok(Json(body))
}

/// The caller's payer's usage this period (README, "Usage limits").
pub async fn usage(
    State(state): State<AppState>,
    Gated(access, _): Gated<Premium>,
) -> Result<Json<Value>, ApiError> {
    let report = state.usage().report_for(&access).await?;
    Ok(Json(usage_json(&report)))
}

/// `GET /api/gates/{gate}`: may the caller open `gate`, without spending anything: whether,
/// the reason in words, and the gate's metered feature's meter (README, "Plans and gates").
pub async fn gate(
    State(state): State<AppState>,
    Path(gate): Path<String>,
    Signed(account): Signed,
) -> Result<Json<Value>, ApiError> {
    let Some(meter) = state
        .entitlements()
        .catalog()
        .gate(&gate)
        .map(|g| g.meter.clone())
    else {
        return Err(ApiError::not_found());
    };
    let access = state.entitlements().access(account, &gate).await?;
    let usage = match meter {
        Some(feature) => {
            let report = state.usage().report_for(&access).await?;
            report
                .features
                .iter()
                .find(|f| f.feature == feature)
                .map(|f| {
                    json!({
                        "feature": f.feature,
                        "limit": f.limit,
                        "used": f.used,
                        "remaining": f.remaining,
                        "period_start": report.period.start,
                        "period_end": report.period.end,
                    })
                })
                .unwrap_or(Value::Null)
        }
        None => Value::Null,
    };
    let d = &access.decision;
    Ok(Json(json!({
        "gate": gate,
        "allowed": d.allowed,
        "reason": crate::billing::entitlement::reason_words(d.reason),
        "code": d.reason,
        "payer": access.payer.label(),
        "usage": usage,
    })))
}

/// DESIGN's shape of `GET /api/usage`: times in ms, `null` limits for unlimited features.
fn usage_json(r: &Report) -> Value {
    let features: serde_json::Map<String, Value> = r
        .features
        .iter()
        .map(|f| {
            (
                f.feature.clone(),
                json!({"limit": f.limit, "used": f.used, "remaining": f.remaining}),
            )
        })
        .collect();
    json!({
        "payer": r.payer.label(),
        "period_start": r.period.start,
        "period_end": r.period.end,
        "features": features,
    })
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
