//! The caller as handlers take it, from the request guard's `auth::Caller` (never a second
//! verification), as realworld-axum-sqlx has them: `AuthUser`, a signed-in caller or `401`;
//! `MaybeAuthUser`, a signed-in caller or none. A token that came and did not verify is a
//! `401` for both, never "signed out". A handler takes one of them, once.
//!
//! Above them, the account resolved once per request: `Signed`, the caller's `Account` (the
//! payers they answer for); `Gated<G>`, its `Access` through gate `G` (the decision and who
//! pays), open or not; `Entitled<G>`, the same once it opened (`403` with the reason
//! otherwise). No handler asks the gate or picks a payer itself.

use std::marker::PhantomData;

use axum::{extract::FromRequestParts, http::request::Parts};

use super::error::ApiError;
use crate::{
    auth::{Caller, Session},
    billing::{Access, Account},
    services::usage::UsageError,
    state::AppState,
};

/// A gate of `PLANS_FILE` a route sits behind.
pub trait GateName: Send + Sync + 'static {
    const GATE: &'static str;
    /// The metered feature a call behind it spends: such a call needs intent
    /// (`guard::spend_intent`), and when the gate's state cannot be read, a refusal remembered
    /// for the caller still stands.
    const SPENDS: Option<&'static str> = None;
}

/// `GET /api/me`, `/api/usage`: the `premium` gate, read without spending.
pub struct Premium;
impl GateName for Premium {
    const GATE: &'static str = "premium";
}

/// `POST /api/premium-feature`: the `premium` gate, spending `premium_api`.
pub struct PremiumApi;
impl GateName for PremiumApi {
    const GATE: &'static str = "premium";
    const SPENDS: Option<&'static str> = Some("premium_api");
}

/// A gate's refusal: `403` with the reason; for a missing reverification, Clerk's own body
/// (`{"clerk_error":{"type":"forbidden","reason":"reverification-error",…}}`), which clerk-js'
/// `useReverification` reads to ask the user to verify again.
pub fn refusal(state: &AppState, gate: &str, reason: &'static str) -> ApiError {
    let mut e = ApiError::forbidden(reason);
    if reason == "reverification_required" {
        let requirement = state
            .entitlements()
            .catalog()
            .gate(gate)
            .and_then(crate::billing::Gate::requirement);
        if let Some(r) = requirement {
            e.code = "reverification_required";
            e.body = Some(r.error_body());
        }
    }
    e
}

/// The signed-in caller's account.
pub struct Signed(pub Account);

/// The signed-in caller's access through gate `G`, whether it opened or not.
pub struct Gated<G>(pub Access, pub PhantomData<G>);

/// The signed-in caller's access through gate `G`, which opened.
pub struct Entitled<G>(pub Access, pub PhantomData<G>);

impl FromRequestParts<AppState> for Signed {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let AuthUser(session) = AuthUser::from_request_parts(parts, state).await?;
        Ok(Signed(session.account()))
    }
}

impl<G: GateName> FromRequestParts<AppState> for Gated<G> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let AuthUser(session) = AuthUser::from_request_parts(parts, state).await?;
        if G::SPENDS.is_some() {
            super::guard::spend_intent(&parts.headers, &state.config().app_url)?;
        }
        match state
            .entitlements()
            .access(session.account(), G::GATE)
            .await
        {
            Ok(access) => Ok(Gated(access, PhantomData)),
            // Who pays cannot be read: a refusal this instance remembers still stands.
            Err(e) => Err(
                match G::SPENDS
                    .and_then(|f| state.usage().refusal_from_memory(&session.account(), f))
                {
                    Some(meter) => UsageError::Limited(meter).into(),
                    None => e.into(),
                },
            ),
        }
    }
}

impl<G: GateName> FromRequestParts<AppState> for Entitled<G> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let Gated(access, _) = Gated::<G>::from_request_parts(parts, state).await?;
        if !access.decision.allowed {
            return Err(refusal(state, G::GATE, access.decision.reason));
        }
        Ok(Entitled(access, PhantomData))
    }
}

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
