//! The instance's session tokens as the edges use them: where a request's token is (with this
//! publishable key's cookie suffix), and its verification through the cached verifier. The
//! request guard asks once per request; the handshake edge verifies returned handshake tokens.

use std::sync::atomic::{AtomicU64, Ordering};

use axum::http::HeaderMap;

use super::{now_secs, session_token, AuthError, Session, TokenVerifier};

pub struct Sessions {
    verifier: TokenVerifier,
    /// Clerk's cookie-name suffix for this publishable key (none in demo mode).
    cookie_suffix: Option<String>,
    /// Session tokens verified (from the cache or in full) since start.
    verifications: AtomicU64,
}

impl Sessions {
    /// The finder and verifier for this configuration: the instance's keys (`demo_keys`, the
    /// demo issuer's, in demo mode), its issuer, the authorized parties and Clerk's cookie suffix.
    pub fn for_config(
        config: &crate::config::Config,
        demo_keys: Option<std::collections::HashMap<String, jsonwebtoken::DecodingKey>>,
        http: reqwest::Client,
    ) -> anyhow::Result<Sessions> {
        let keys = super::KeyStore::for_config(config, demo_keys, http)?;
        Ok(Sessions::new(
            TokenVerifier::new(
                keys,
                config.issuer(),
                config.tokens.authorized_parties.clone(),
            ),
            config.clerk().map(|c| c.cookie_suffix()),
        ))
    }

    pub fn new(verifier: TokenVerifier, cookie_suffix: Option<String>) -> Sessions {
        Sessions {
            verifier,
            cookie_suffix,
            verifications: AtomicU64::new(0),
        }
    }

    /// Clerk's cookie-name suffix for this publishable key (none in demo mode).
    pub fn cookie_suffix(&self) -> Option<&str> {
        self.cookie_suffix.as_deref()
    }

    /// The request's session token, if it carries one.
    pub fn token<'a>(&self, headers: &'a HeaderMap) -> Option<&'a str> {
        session_token(headers, self.cookie_suffix())
    }

    /// Verifies a session token now.
    pub async fn verify(&self, token: &str) -> Result<Session, AuthError> {
        self.verifications.fetch_add(1, Ordering::Relaxed);
        let result = self.verifier.verify(token, now_secs()).await;
        if let Err(e) = &result {
            tracing::debug!(reason = %e, "session token rejected");
        }
        result
    }

    /// The session of a token that verified recently, from the cache alone (free to accept).
    pub fn already_verified(&self, token: &str) -> Option<Session> {
        self.verifier.cached(token, now_secs())
    }

    /// Verifies a returned handshake token now; its `Set-Cookie` values.
    pub async fn verify_handshake(&self, token: &str) -> Result<Vec<String>, AuthError> {
        self.verifier.verify_handshake(token, now_secs()).await
    }

    /// How many session tokens were verified since start (each request verifies at most one).
    pub fn verifications(&self) -> u64 {
        self.verifications.load(Ordering::Relaxed)
    }

    /// The key store behind the verifier (preflight reads it).
    pub fn verifier(&self) -> &TokenVerifier {
        &self.verifier
    }
}
