//! Demo mode's API keys (README, "API keys"): the stand-in for Clerk's `POST
//! /v1/api_keys/verify` (called by this app's own verification client, with its own Bearer), and
//! the `/dashboard/api-keys` page's forms (make a key, its secret shown once; revoke one).

use axum::{
    extract::{Path, State},
    http::{HeaderMap, StatusCode},
    response::{IntoResponse, Redirect, Response},
    Form, Json,
};
use serde::Deserialize;

use super::{error::ApiError, extract::AuthUser};
use crate::{demo::api_keys::DemoKeys, state::AppState};

fn keys(state: &AppState) -> Result<&DemoKeys, ApiError> {
    state.demo_keys().ok_or_else(ApiError::not_found)
}

#[derive(Deserialize)]
pub struct VerifyBody {
    secret: String,
}

/// `POST /demo/bapi/v1/api_keys/verify`, as Clerk answers it: `200` with the key, `404` unknown,
/// `401` without this process's Backend API Bearer.
pub async fn verify(
    State(state): State<AppState>,
    headers: HeaderMap,
    Json(body): Json<VerifyBody>,
) -> Result<Response, ApiError> {
    let keys = keys(&state)?;
    if !keys.is_backend(crate::auth::bearer(&headers).unwrap_or_default()) {
        return Err(ApiError::unauthorized());
    }
    Ok(match keys.verify(&body.secret).await? {
        Some(answer) => Json(answer).into_response(),
        None => (
            StatusCode::NOT_FOUND,
            Json(serde_json::json!({"errors": [{"code": "resource_not_found", "message": "not found"}]})),
        )
            .into_response(),
    })
}

#[derive(Deserialize)]
pub struct CreateForm {
    name: String,
}

/// `POST /demo/api-keys`: a key for the signed-in user; the page then shows its secret once.
pub async fn create(
    State(state): State<AppState>,
    AuthUser(session): AuthUser,
    Form(form): Form<CreateForm>,
) -> Result<Response, ApiError> {
    use crate::demo::api_keys::KeyError;
    let key = match keys(&state)?.create(&session.user_id, &form.name).await {
        Ok(k) => k,
        Err(KeyError::Db(e)) => return Err(e.into()),
        Err(e @ KeyError::Name) => {
            return Err(ApiError::bad_request("invalid_name", e.to_string()))
        }
        Err(e @ KeyError::TooMany) => {
            return Err(ApiError::bad_request("too_many_keys", e.to_string()))
        }
    };
    Ok(Redirect::to(&format!("/dashboard/api-keys?created={}", key.id)).into_response())
}

/// `POST /demo/api-keys/{id}/revoke`: revokes one of the signed-in user's keys (another's is
/// left alone, answered as unknown).
pub async fn revoke(
    State(state): State<AppState>,
    AuthUser(session): AuthUser,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    if !keys(&state)?.revoke(&id, &session.user_id).await? {
        return Err(ApiError::not_found());
    }
    Ok(Redirect::to("/dashboard/api-keys?revoked=1").into_response())
}
