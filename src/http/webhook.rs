//! `POST /api/webhooks/clerk`: the signature checked over the raw bytes, then the bytes to the
//! inbox, its verdict to HTTP. A delivery not
//! signed by Clerk is `400` (past the address's limit of failures, `429`); one that cannot be
//! read is `400`; one that is signed but cannot be applied is stored as a dead letter and
//! answered `422` (Svix retries it); a database that cannot take it is `503` (Svix retries).

use axum::{
    body::Bytes,
    extract::State,
    http::{HeaderMap, StatusCode},
    response::{IntoResponse, Response},
    Json,
};
use serde_json::{json, Value};

use super::{
    error::{too_many, ApiError},
    guard::{client_of, Peer},
};
use crate::{services::InboxError, state::AppState, webhooks::ingest::Outcome};

pub const BODY_LIMIT: usize = 256 * 1024;

pub async fn receive(
    State(state): State<AppState>,
    peer: Peer,
    headers: HeaderMap,
    body: Bytes,
) -> Result<(StatusCode, Json<Value>), Response> {
    // Verified over the raw bytes before anything else reads them.
    let signed = match state.verifier().verify(&headers, &body) {
        Ok(signed) => signed,
        // Failed signature checks are limited per address: past the limit a failure is
        // answered 429 rather than 400. A valid delivery is always applied (an HMAC check
        // costs next to nothing, and Clerk's deliveries must never wait on someone else's).
        Err(rejection) => {
            state.inbox().rejected_signature(rejection);
            let ip = client_of(&state, &peer, &headers);
            state.limiter().charge(ip).map_err(too_many)?;
            return Err(
                ApiError::bad_request("invalid_signature", rejection.message()).into_response(),
            );
        }
    };
    match state.inbox().receive(signed, &body).await {
        Ok(r) if r.outcome == Outcome::Failed => Err((
            StatusCode::UNPROCESSABLE_ENTITY,
            Json(json!({
                "error": {
                    "code": "unprocessable_event",
                    "message": r.reason.unwrap_or_else(|| "the event cannot be applied".into()),
                },
                "svix_id": r.svix_id,
                "outcome": "failed",
            })),
        )
            .into_response()),
        Ok(r) => Ok((
            StatusCode::OK,
            Json(json!({"svix_id": r.svix_id, "outcome": r.outcome.as_str()})),
        )),
        Err(InboxError::Payload(e)) => {
            Err(ApiError::bad_request("invalid_payload", e.to_string()).into_response())
        }
        Err(e) => Err(ApiError::unavailable("applying a webhook", e).into_response()),
    }
}
