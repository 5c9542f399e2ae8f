//! `POST /api/webhooks/clerk`: verify over the raw bytes, parse, then hand to `ingest`.
//! Thin on purpose: decisions live in `billing`, SQL in `db`.

pub mod events;
pub mod ingest;
pub mod redact;
pub mod verify;
pub mod writer;

use std::sync::atomic::Ordering;

use axum::{
    body::Bytes,
    extract::State,
    http::{HeaderMap, StatusCode},
    response::{IntoResponse, Response},
    Json,
};
use serde_json::{json, Value};
use tracing::warn;

use crate::{
    db::now_ms,
    error::ApiError,
    security::{client_of, too_many, Peer},
    state::AppState,
};

pub const BODY_LIMIT: usize = 256 * 1024;

/// Where a payer fixes their card: Clerk's hosted account page, or the demo dashboard.
pub fn manage_url(clerk: Option<&crate::config::ClerkConfig>, app_url: &str) -> String {
    match clerk {
        Some(c) => {
            let host = &c.frontend_api_host;
            let accounts = if let Some(rest) = host.strip_prefix("clerk.") {
                format!("accounts.{rest}")
            } else {
                host.replace(".clerk.accounts.dev", ".accounts.dev")
            };
            format!("https://{accounts}/user")
        }
        None => format!("{app_url}/dashboard"),
    }
}

pub async fn receive(
    State(state): State<AppState>,
    peer: Peer,
    headers: HeaderMap,
    body: Bytes,
) -> Result<(StatusCode, Json<Value>), Response> {
    // Failed signature checks are limited per address: past the limit a failure is answered
    // 429 rather than 400. A valid delivery is always applied (an HMAC check costs next to
    // nothing, and Clerk's deliveries must never wait on someone else's failures).
    let svix_id = match state.webhook.verify(&headers, &body) {
        Ok(id) => id,
        Err(rejection) => {
            let n = state.rejected_webhooks.fetch_add(1, Ordering::Relaxed) + 1;
            warn!(
                reason = rejection.message(),
                rejected_total = n,
                "webhook rejected"
            );
            let ip = client_of(&state, &peer, &headers);
            state.limiter.charge(ip).map_err(too_many)?;
            return Err(
                ApiError::bad_request("invalid_signature", rejection.message()).into_response(),
            );
        }
    };
    let signed_at_ms = headers
        .get("svix-timestamp")
        .or_else(|| headers.get("webhook-timestamp"))
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<i64>().ok())
        .map_or_else(now_ms, |s| s * 1000);

    let invalid = |e: events::EventError| {
        ApiError::bad_request("invalid_payload", e.to_string()).into_response()
    };
    let mut event = events::parse(&body).map_err(invalid)?;
    let changes = event.changes(signed_at_ms).map_err(invalid)?;
    let changes = changes.into_iter().map(redact::redact_change).collect();
    redact::redact_in_place(&mut event.event_type);
    // Redacted in place: nothing downstream (the stored payload, the mail) needs card data.
    event.raw = redact::redact(std::mem::take(&mut event.raw));
    let stored_payload = event.raw.to_string();
    let delivery = ingest::Delivery {
        svix_id: svix_id.clone(),
        signed_at_ms,
        subject_id: event.subject_id().map(|s| redact::redact_text(&s)),
        event,
        changes,
        stored_payload,
    };
    let (outcome, _mails) = state
        .writer
        .submit(delivery)
        .await
        .map_err(|e| ApiError::unavailable("applying a webhook", e).into_response())?;
    Ok((
        StatusCode::OK,
        Json(json!({"svix_id": svix_id, "outcome": outcome.as_str()})),
    ))
}
