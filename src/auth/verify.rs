//! Session token verification with Clerk's rules (DESIGN §3). Any failure is "unauthenticated";
//! the precise reason is logged at debug level and never shown.

use jsonwebtoken::{decode, decode_header, Algorithm, Validation};

use super::{
    claims::{Claims, Session},
    keys::KeyStore,
};

const SKEW_SECS: u64 = 5;

#[derive(Debug, thiserror::Error, Clone, Copy, PartialEq, Eq)]
pub enum AuthError {
    #[error("no session token")]
    Missing,
    #[error("malformed token")]
    Malformed,
    #[error("algorithm not allowed")]
    Algorithm,
    #[error("unknown signing key")]
    UnknownKey,
    #[error("signature or claims invalid")]
    Invalid,
    #[error("issued in the future")]
    IssuedInFuture,
    #[error("authorized party not allowed")]
    AuthorizedParty,
    #[error("no session id")]
    NoSession,
    #[error("session pending")]
    Pending,
}

pub struct TokenVerifier {
    pub keys: KeyStore,
    issuer: String,
    authorized_parties: Vec<String>,
}

impl TokenVerifier {
    pub fn new(keys: KeyStore, issuer: String, authorized_parties: Vec<String>) -> Self {
        TokenVerifier {
            keys,
            issuer,
            authorized_parties,
        }
    }

    pub async fn verify(&self, token: &str, now_secs: i64) -> Result<Session, AuthError> {
        let header = decode_header(token).map_err(|_| AuthError::Malformed)?;
        if header.alg != Algorithm::RS256 {
            return Err(AuthError::Algorithm);
        }
        if header.typ.as_deref() != Some("JWT") {
            return Err(AuthError::Malformed);
        }
        let kid = header.kid.ok_or(AuthError::UnknownKey)?;
        let key = self.keys.key(&kid).await.ok_or(AuthError::UnknownKey)?;

        let mut validation = Validation::new(Algorithm::RS256);
        validation.leeway = SKEW_SECS;
        validation.validate_exp = true;
        validation.validate_nbf = true;
        validation.validate_aud = false;
        validation.set_issuer(&[&self.issuer]);
        validation.set_required_spec_claims(&["exp", "iat", "iss", "sub"]);
        let claims = decode::<Claims>(token, &key, &validation)
            .map_err(|_| AuthError::Invalid)?
            .claims;

        if claims.iat > now_secs + SKEW_SECS as i64 {
            return Err(AuthError::IssuedInFuture);
        }
        if !self.authorized_parties.is_empty() {
            let azp = claims.azp.as_deref().map(|a| a.trim_end_matches('/'));
            if !azp.is_some_and(|a| self.authorized_parties.iter().any(|p| p == a)) {
                return Err(AuthError::AuthorizedParty);
            }
        }
        if claims.sts.as_deref() == Some("pending") {
            return Err(AuthError::Pending);
        }
        let sid = claims
            .sid
            .clone()
            .filter(|s| !s.is_empty())
            .ok_or(AuthError::NoSession)?;
        Ok(Session::from_claims(claims, sid))
    }
}
