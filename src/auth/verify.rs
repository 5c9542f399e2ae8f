//! Session token verification with Clerk's rules. Any failure is "unauthenticated";
//! the precise reason is logged at debug level and never shown.

use std::{collections::HashMap, sync::Mutex};

use jsonwebtoken::{decode, decode_header, Algorithm, Validation};
use sha2::{Digest, Sha256};

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
    #[error("expired")]
    Expired,
    #[error("not valid yet")]
    NotYetValid,
    #[error("issued in the future")]
    IssuedInFuture,
    #[error("authorized party not allowed")]
    AuthorizedParty,
    #[error("no session id")]
    NoSession,
    #[error("session pending")]
    Pending,
    #[error("not a session token (JWT template or machine category)")]
    Category,
    #[error("API key unknown, revoked or expired")]
    ApiKeyRefused,
}

/// Clerk's token categories (the JOSE header's `cat`): only a session token, or a token of the
/// category Clerk says to ignore, may be a session. A JWT template (`cl_B7d4PD222AAA`) or machine
/// token (`cl_B7d4PD333AAA`) is signed by the same instance and may carry `sid`: never a session.
pub const SESSION_CATEGORIES: [&str; 2] = ["cl_B7d4PD111AAA", "cl_I7d4PD111III"];

/// Whether the token's header names no category, or a session's. Anything else (another
/// category, a `cat` that is not a string, a header that is not JSON) is not a session.
pub fn session_category(token: &str) -> bool {
    use base64::Engine;
    let Some(header) = token.split('.').next() else {
        return false;
    };
    let Ok(bytes) = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(header) else {
        return false;
    };
    let Ok(serde_json::Value::Object(h)) = serde_json::from_slice::<serde_json::Value>(&bytes)
    else {
        return false;
    };
    match h.get("cat") {
        None => true,
        Some(serde_json::Value::String(c)) => SESSION_CATEGORIES.contains(&c.as_str()),
        Some(_) => false,
    }
}

impl AuthError {
    /// Whether this failure means someone tried a token that Clerk never signed. A token with a
    /// valid signature that is merely expired (every returning visitor sends one) or not valid
    /// for this app is not an attack on the keys and is not counted against the address.
    pub fn is_forgery(self) -> bool {
        matches!(
            self,
            AuthError::Malformed
                | AuthError::Algorithm
                | AuthError::UnknownKey
                | AuthError::Invalid
                | AuthError::ApiKeyRefused
        )
    }
}

/// Verified tokens, by SHA-256 of the token, until their `exp`: the RSA check is most of a
/// request's cost and a session token is re-sent for its whole (60 s) life.
const CACHE_MAX: usize = 10_000;

pub struct TokenVerifier {
    pub keys: KeyStore,
    issuer: String,
    authorized_parties: Vec<String>,
    cache: Mutex<HashMap<[u8; 32], (Session, i64, u64)>>,
}

impl TokenVerifier {
    pub fn new(keys: KeyStore, issuer: String, authorized_parties: Vec<String>) -> Self {
        TokenVerifier {
            keys,
            issuer,
            authorized_parties,
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// The session of a token that verified before and has not expired since, from the cache
    /// alone (no signature check, no key fetch): what accepting it costs nothing.
    pub fn cached(&self, token: &str, now_secs: i64) -> Option<Session> {
        let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        self.cached_digest(&digest, self.keys.generation(), now_secs)
    }

    fn cached_digest(&self, digest: &[u8; 32], generation: u64, now_secs: i64) -> Option<Session> {
        let (session, exp, g) = self.cache.lock().ok()?.get(digest).cloned()?;
        (now_secs <= exp + SKEW_SECS as i64 && g == generation).then_some(session)
    }

    /// Verifies, answering from the cache when this exact token verified before and has not
    /// expired since (every other check is independent of time).
    pub async fn verify(&self, token: &str, now_secs: i64) -> Result<Session, AuthError> {
        let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        // Read before verifying: a replacement during the check makes the entry stale, not fresh.
        let generation = self.keys.generation();
        if let Some(session) = self.cached_digest(&digest, generation, now_secs) {
            return Ok(session);
        }
        let (session, exp) = self.verify_uncached(token, now_secs).await?;
        if let Ok(mut cache) = self.cache.lock() {
            if cache.len() >= CACHE_MAX {
                cache.retain(|_, (_, e, _)| *e + SKEW_SECS as i64 >= now_secs);
                if cache.len() >= CACHE_MAX {
                    cache.clear();
                }
            }
            cache.insert(digest, (session.clone(), exp, generation));
        }
        Ok(session)
    }

    /// The full check, every time. Returns the session and the token's `exp`.
    pub async fn verify_uncached(
        &self,
        token: &str,
        now_secs: i64,
    ) -> Result<(Session, i64), AuthError> {
        let (key, mut validation) = self.signed_by_instance(token, Typ::Required).await?;
        if !session_category(token) {
            return Err(AuthError::Category);
        }
        validation.set_issuer(&[&self.issuer]);
        validation.set_required_spec_claims(&["exp", "iat", "iss", "sub"]);
        let claims = decode::<Claims>(token, &key, &validation)
            .map_err(|_| AuthError::Invalid)?
            .claims;

        let skew = SKEW_SECS as i64;
        if claims.exp + skew < now_secs {
            return Err(AuthError::Expired);
        }
        if claims.nbf.is_some_and(|nbf| nbf > now_secs + skew) {
            return Err(AuthError::NotYetValid);
        }
        if claims.iat > now_secs + skew {
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
        let exp = claims.exp;
        Ok((Session::from_claims(claims, sid), exp))
    }
}

/// Whether a token's header must say `typ: JWT` (session tokens) or may leave it out (handshake
/// tokens, as `@clerk/backend` allows).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Typ {
    Required,
    Optional,
}

impl TokenVerifier {
    /// The header checks every token of this instance passes (RS256 only, `typ`, a `kid` the
    /// key store knows), its key, and a validation with the time claims left to the caller's
    /// clock (one clock for the cache too) and no audience.
    async fn signed_by_instance(
        &self,
        token: &str,
        typ: Typ,
    ) -> Result<(std::sync::Arc<jsonwebtoken::DecodingKey>, Validation), AuthError> {
        let header = decode_header(token).map_err(|_| AuthError::Malformed)?;
        if header.alg != Algorithm::RS256 {
            return Err(AuthError::Algorithm);
        }
        let typ_ok = match header.typ.as_deref() {
            Some(t) => t == "JWT",
            None => typ == Typ::Optional,
        };
        if !typ_ok {
            return Err(AuthError::Malformed);
        }
        let kid = header.kid.ok_or(AuthError::UnknownKey)?;
        let key = self.keys.key(&kid).await.ok_or(AuthError::UnknownKey)?;
        let mut validation = Validation::new(Algorithm::RS256);
        validation.validate_exp = false;
        validation.validate_nbf = false;
        validation.validate_aud = false;
        Ok((key, validation))
    }
}

/// What a handshake token carries: the `Set-Cookie` values to set, and its lifetime.
#[derive(serde::Deserialize)]
struct HandshakeClaims {
    handshake: Vec<String>,
    exp: Option<i64>,
    nbf: Option<i64>,
}

/// At most this many cookies, each at most this long, from one handshake.
const HANDSHAKE_MAX_COOKIES: usize = 16;
const HANDSHAKE_MAX_COOKIE_LEN: usize = 8192;

impl TokenVerifier {
    /// Verifies a handshake token (`__clerk_handshake`) as `@clerk/backend` does: RS256 under
    /// one of the instance's keys (the session tokens' key store), `typ` absent or `JWT`, not
    /// expired; returns its `handshake` claim, the `Set-Cookie` values to send.
    pub async fn verify_handshake(
        &self,
        token: &str,
        now_secs: i64,
    ) -> Result<Vec<String>, AuthError> {
        let (key, mut validation) = self.signed_by_instance(token, Typ::Optional).await?;
        validation.set_required_spec_claims::<&str>(&[]);
        let claims = decode::<HandshakeClaims>(token, &key, &validation)
            .map_err(|_| AuthError::Invalid)?
            .claims;
        let skew = SKEW_SECS as i64;
        if claims.exp.is_some_and(|exp| exp + skew < now_secs) {
            return Err(AuthError::Expired);
        }
        if claims.nbf.is_some_and(|nbf| nbf > now_secs + skew) {
            return Err(AuthError::NotYetValid);
        }
        if claims.handshake.len() > HANDSHAKE_MAX_COOKIES
            || claims
                .handshake
                .iter()
                .any(|c| c.len() > HANDSHAKE_MAX_COOKIE_LEN || !c.contains('='))
        {
            return Err(AuthError::Invalid);
        }
        Ok(claims.handshake)
    }
}

/// A token's `iat`, read without verifying it (to compare with `__client_uat`, as Clerk does
/// before verifying; never trusted for anything else).
pub fn unverified_iat(token: &str) -> Option<i64> {
    use base64::Engine;
    let payload = token.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()?;
    serde_json::from_slice::<serde_json::Value>(&bytes)
        .ok()?
        .get("iat")?
        .as_i64()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[tokio::test]
    async fn a_cached_token_stops_verifying_once_it_expires() {
        let key = crate::demo::SigningKey::generate("k").unwrap();
        let t = crate::db::now_ms() / 1000;
        let token = key
            .sign(
                &json!({"sub": "user_1", "sid": "sess_1", "iss": "https://i", "azp": "http://a",
                    "iat": t, "nbf": t, "exp": t + 60}),
            )
            .unwrap();
        let v = TokenVerifier::new(
            KeyStore::pem(&key.public_pem).unwrap(),
            "https://i".into(),
            vec!["http://a".into()],
        );
        assert_eq!(v.verify(&token, t).await.unwrap().user_id, "user_1");
        assert_eq!(
            v.verify(&token, t + 30).await.unwrap().user_id,
            "user_1",
            "from the cache"
        );
        assert!(
            v.verify(&token, t + 120).await.is_err(),
            "expired, even though cached"
        );
    }
}
