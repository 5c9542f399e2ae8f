//! `AuthUser`: a signed-in caller, or `401`. A token that is present but does not verify is a
//! `401` too, never "signed out".

use axum::{extract::FromRequestParts, http::request::Parts};

use super::error::ApiError;
use crate::{auth::Session, services::VerifiedToken, state::AppState};

pub struct AuthUser(pub Session);

impl FromRequestParts<AppState> for AuthUser {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let gate = state.gate();
        let result = match parts.extensions.remove::<VerifiedToken>() {
            // The guard's verdict, taken rather than cloned: an extractor runs once.
            Some(VerifiedToken(r)) if gate.token(parts).is_some() => r.map(Some),
            _ => gate.session(parts).await,
        };
        match result {
            Ok(Some(session)) => Ok(AuthUser(session)),
            _ => Err(ApiError::unauthorized()),
        }
    }
}
