//! The caller as handlers take it, from the request guard's `auth::Caller` (never a second
//! verification), as realworld-axum-sqlx has them: `AuthUser`, a signed-in caller or `401`;
//! `MaybeAuthUser`, a signed-in caller or none. A token that came and did not verify is a
//! `401` for both, never "signed out". A handler takes one of them, once.

use axum::{extract::FromRequestParts, http::request::Parts};

use super::error::ApiError;
use crate::{
    auth::{Caller, Session},
    state::AppState,
};

pub struct AuthUser(pub Session);

pub struct MaybeAuthUser(pub Option<Session>);

impl MaybeAuthUser {
    /// The extractor's answer for a caller.
    pub fn from_caller(caller: Caller) -> Result<MaybeAuthUser, ApiError> {
        match caller {
            Caller::Anonymous => Ok(MaybeAuthUser(None)),
            Caller::Verified(session) => Ok(MaybeAuthUser(Some(session))),
            Caller::Rejected(_) => Err(ApiError::unauthorized()),
        }
    }
}

impl FromRequestParts<AppState> for MaybeAuthUser {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        _state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        // Taken rather than cloned (a session's strings, on every API call): a handler takes
        // its caller once.
        let caller = parts
            .extensions
            .remove::<Caller>()
            .unwrap_or(Caller::Anonymous);
        MaybeAuthUser::from_caller(caller)
    }
}

impl FromRequestParts<AppState> for AuthUser {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        match MaybeAuthUser::from_request_parts(parts, state).await? {
            MaybeAuthUser(Some(session)) => Ok(AuthUser(session)),
            MaybeAuthUser(None) => Err(ApiError::unauthorized()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::AuthError;

    fn session() -> Session {
        Session::example("user_1")
    }

    #[test]
    fn a_token_that_did_not_verify_is_an_error_not_signed_out() {
        assert!(matches!(
            MaybeAuthUser::from_caller(Caller::Anonymous),
            Ok(MaybeAuthUser(None))
        ));
        assert!(matches!(
            MaybeAuthUser::from_caller(Caller::Verified(session())),
            Ok(MaybeAuthUser(Some(_)))
        ));
        let rejected = MaybeAuthUser::from_caller(Caller::Rejected(AuthError::Invalid));
        assert_eq!(
            rejected.err().map(|e| e.status),
            Some(axum::http::StatusCode::UNAUTHORIZED)
        );
    }
}
