//! Signature check over the raw body with the svix crate, under any configured secret.

use axum::http::HeaderMap;
use secrecy::ExposeSecret;
use svix::webhooks::{Webhook, WebhookError};

/// The verifier for every configured secret (more than one while rotating).
#[derive(Clone)]
pub struct Verifier {
    hooks: Vec<std::sync::Arc<Webhook>>,
}

/// A delivery whose signature verified: its id and the time it was signed (ms).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signed {
    pub svix_id: String,
    pub signed_at_ms: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rejection {
    NoSecret,
    MissingHeaders,
    BadTimestamp,
    BadSignature,
}

impl Rejection {
    /// A short label for metrics and logs.
    pub fn code(self) -> &'static str {
        match self {
            Rejection::NoSecret => "no_secret",
            Rejection::MissingHeaders => "missing_headers",
            Rejection::BadTimestamp => "bad_timestamp",
            Rejection::BadSignature => "bad_signature",
        }
    }

    pub fn message(self) -> &'static str {
        match self {
            Rejection::NoSecret => "webhook secret not configured",
            Rejection::MissingHeaders => "missing or malformed svix headers",
            Rejection::BadTimestamp => "timestamp outside the 5-minute tolerance",
            Rejection::BadSignature => "signature does not match",
        }
    }
}

impl Verifier {
    pub fn new(secrets: &[secrecy::SecretString]) -> Self {
        let hooks = secrets
            .iter()
            .filter_map(|s| Webhook::new(s.expose_secret()).ok())
            .map(std::sync::Arc::new)
            .collect();
        Verifier { hooks }
    }

    /// Verifies; the delivery id (`svix-id` or `webhook-id`) and the signed time.
    pub fn verify(&self, headers: &HeaderMap, body: &[u8]) -> Result<Signed, Rejection> {
        if self.hooks.is_empty() {
            return Err(Rejection::NoSecret);
        }
        let mut worst = Rejection::BadSignature;
        for hook in &self.hooks {
            match hook.verify(body, headers) {
                Ok(()) => {
                    let id = headers
                        .get("svix-id")
                        .or_else(|| headers.get("webhook-id"))
                        .and_then(|v| v.to_str().ok())
                        .filter(|v| !v.is_empty() && v.len() <= 200)
                        .ok_or(Rejection::MissingHeaders)?;
                    // The signature covered it, and the svix crate checked it is a number
                    // within the tolerance.
                    let signed_at_ms = headers
                        .get("svix-timestamp")
                        .or_else(|| headers.get("webhook-timestamp"))
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| v.parse::<i64>().ok())
                        .ok_or(Rejection::MissingHeaders)?
                        .saturating_mul(1000);
                    return Ok(Signed {
                        svix_id: id.to_string(),
                        signed_at_ms,
                    });
                }
                Err(WebhookError::MissingHeader(_) | WebhookError::InvalidHeader(_)) => {
                    return Err(Rejection::MissingHeaders)
                }
                Err(
                    WebhookError::InvalidTimestamp
                    | WebhookError::TimestampTooOldError
                    | WebhookError::FutureTimestampError,
                ) => worst = Rejection::BadTimestamp,
                Err(_) => {}
            }
        }
        Err(worst)
    }
}
