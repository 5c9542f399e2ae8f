//! Token lookup (Bearer header first, then Clerk's `__session` cookies) and the extractors.
//! `MaybeAuthUser` treats a present-but-bad token as an error, not as "signed out".

use axum::{extract::FromRequestParts, http::request::Parts};
use base64::Engine;
use sha1::{Digest, Sha1};

use super::{claims::Session, AuthError};
use crate::{error::ApiError, state::AppState};

/// Clerk's cookie suffix: the first 8 characters of URL-safe base64 of SHA-1(publishable key).
pub fn cookie_suffix(publishable_key: &str) -> String {
    let digest = Sha1::digest(publishable_key.as_bytes());
    let enc = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(digest);
    enc.chars().take(8).collect()
}

pub fn cookie<'a>(parts: &'a Parts, name: &str) -> Option<&'a str> {
    parts
        .headers
        .get_all(axum::http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim())
        .filter(|v| !v.is_empty())
}

/// The session token of a request, if any: `Authorization: Bearer` first, then
/// `__session_<suffix>`, then `__session`.
pub fn token_from_parts<'a>(parts: &'a Parts, suffix: Option<&str>) -> Option<&'a str> {
    if let Some(auth) = parts.headers.get(axum::http::header::AUTHORIZATION) {
        return auth
            .to_str()
            .ok()
            .and_then(|v| {
                v.strip_prefix("Bearer ")
                    .or_else(|| v.strip_prefix("bearer "))
            })
            .map(str::trim);
    }
    suffix
        .and_then(|s| cookie(parts, &format!("__session_{s}")))
        .or_else(|| cookie(parts, "__session"))
}

/// The verdict on the request's session token, as the request guard reached it, so that
/// handlers (and the demo refresh, pages, server functions) do not verify it again. Whatever
/// replaces the request's token afterwards (the demo refresh) removes it.
#[derive(Clone)]
pub struct VerifiedToken(pub Result<Session, AuthError>);

pub fn now_secs() -> i64 {
    crate::db::now_ms() / 1000
}

impl AppState {
    pub fn cookie_suffix(&self) -> Option<&str> {
        self.cookie_suffix.as_deref()
    }

    /// Verifies the request's token (or takes the request guard's verdict on it). `Ok(None)`
    /// when there is none.
    pub async fn session_from_parts(&self, parts: &Parts) -> Result<Option<Session>, AuthError> {
        match token_from_parts(parts, self.cookie_suffix()) {
            None => Ok(None),
            Some(token) => match parts.extensions.get::<VerifiedToken>() {
                Some(v) => v.0.clone().map(Some),
                None => self.verify(token).await.map(Some),
            },
        }
    }

    async fn verify(&self, token: &str) -> Result<Session, AuthError> {
        let result = self.tokens.verify(token, now_secs()).await;
        if let Err(e) = &result {
            tracing::debug!(reason = %e, "session token rejected");
        }
        result
    }
}

/// A signed-in user; rejects with 401 otherwise.
pub struct AuthUser(pub Session);

/// A signed-in user or nobody; a token that is present but invalid is still a 401.
pub struct MaybeAuthUser(pub Option<Session>);

impl FromRequestParts<AppState> for MaybeAuthUser {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let result = match parts.extensions.remove::<VerifiedToken>() {
            // The guard's verdict, taken rather than cloned: an extractor runs once.
            Some(VerifiedToken(r)) if token_from_parts(parts, state.cookie_suffix()).is_some() => {
                r.map(Some)
            }
            _ => state.session_from_parts(parts).await,
        };
        result
            .map(MaybeAuthUser)
            .map_err(|_| ApiError::unauthorized())
    }
}

impl FromRequestParts<AppState> for AuthUser {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        match MaybeAuthUser::from_request_parts(parts, state).await? {
            MaybeAuthUser(Some(s)) => Ok(AuthUser(s)),
            MaybeAuthUser(None) => Err(ApiError::unauthorized()),
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn cookie_suffix_is_eight_url_safe_characters() {
        let s = super::cookie_suffix("pk_test_Y2xlcmsuZXhhbXBsZS5jb20k");
        assert_eq!(s.len(), 8);
        assert!(s
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'));
    }
}
