//! The caller as handlers take it, from the request guard's `auth::Caller` (never a second
//! verification), as realworld-axum-sqlx has them: `AuthUser`, a signed-in caller or `401`;
//! `MaybeAuthUser`, a signed-in caller or none. A token that came and did not verify is a
//! `401` for both, never "signed out". A handler takes one of them, once.
//!
//! Above them, the account resolved once per request (`account_of`: a session's user, or an API
//! key's owner): `Signed`, the caller's `Account` (the payers they answer for); `Gated<G>`, its
//! `Access` through gate `G` (the decision and who pays), open or not; `Entitled<G>`, the same
//! once it opened (`403` with the reason otherwise). No handler asks the gate or picks a payer
//! itself. `AuthUser` and `MaybeAuthUser` are for routes that need a person: an API key there
//! is `401`.

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

/// `GET /api/premium-feature`: the `premium` gate, spending `premium_api`.
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

/// The account a caller is: a session's user (and active organization), or an API key's owner
/// (no token claims: its plan is the owner's stored one, and organization roles and
/// reverification fail for it). The one place a request's caller becomes an account.
pub fn account_of(caller: Caller) -> Result<Account, ApiError> {
    match caller {
        Caller::Verified(session) => Ok(session.into_account()),
        Caller::Key(owner) => Ok(Account {
            caller: owner,
            org: None,
            token: None,
        }),
        Caller::KeyUnavailable => Err(ApiError::new(
            axum::http::StatusCode::SERVICE_UNAVAILABLE,
            "api_keys_unavailable",
            "API keys cannot be verified right now (Clerk's Backend API did not answer); retry shortly",
        )),
        Caller::Anonymous | Caller::Rejected(_) => Err(ApiError::unauthorized()),
    }
}

fn take_caller(parts: &mut Parts) -> Caller {
    // Taken rather than cloned (a session's strings, on every API call): a handler takes its
    // caller once.
    parts
        .extensions
        .remove::<Caller>()
        .unwrap_or(Caller::Anonymous)
}

impl FromRequestParts<AppState> for Signed {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &AppState) -> Result<Self, ApiError> {
        account_of(take_caller(parts)).map(Signed)
    }
}

impl<G: GateName> FromRequestParts<AppState> for Gated<G> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let account = account_of(take_caller(parts))?;
        if G::SPENDS.is_some() {
            super::guard::spend_intent(&parts.headers, &state.config().app_url)?;
        }
        match state.entitlements().decision(&account, G::GATE).await {
            Ok(decision) => Ok(Gated(Access::new(account, decision), PhantomData)),
            // Who pays cannot be read: a refusal this instance remembers still stands.
            Err(e) => Err(
                match G::SPENDS.and_then(|f| state.usage().refusal_from_memory(&account, f)) {
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
            // An API key is not a session: routes that need a person refuse it.
            Caller::Rejected(_) | Caller::Key(_) | Caller::KeyUnavailable => {
                Err(ApiError::unauthorized())
            }
        }
    }
}

impl FromRequestParts<AppState> for MaybeAuthUser {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        _state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        MaybeAuthUser::from_caller(take_caller(parts))
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
