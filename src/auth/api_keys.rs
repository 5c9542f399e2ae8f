//! API keys (README, "API keys"): `Authorization: Bearer ak_…`, verified by Clerk's Backend API
//! (`POST /v1/api_keys/verify`; in demo mode the demo's stand-in, through the same request). The
//! key's subject is the caller: a user or an organization, whose mirrored plan opens gates.
//!
//! Each instance keeps a key's answer for at most [`KEY_TTL_MS`]: a revoked key stops within it,
//! and the Backend API is asked at most once per key per TTL, also under concurrency (callers of
//! one key wait on one request). Refusals are kept as long; an outage is not kept (the next
//! caller asks again) and is never an answer that opens anything.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

use sha2::{Digest, Sha256};

use crate::{
    billing::api_key::{verdict, KeyVerdict},
    clerk_api::ClerkApi,
};

/// How long an instance keeps a key's answer (ms).
pub const KEY_TTL_MS: i64 = 10_000;
/// Keys remembered at most; past it the memory starts again.
const MAX_KEYS: usize = 10_000;

/// The prefix of Clerk's API key secrets.
pub const PREFIX: &str = "ak_";

/// The clock the cache reads (ms since the epoch).
pub type Clock = Arc<dyn Fn() -> i64 + Send + Sync>;

#[derive(Debug, thiserror::Error)]
#[error("API keys cannot be verified now: {0}")]
pub struct Unavailable(pub String);

/// One key's last answer and when it came.
type Slot = Arc<tokio::sync::Mutex<Option<(i64, KeyVerdict)>>>;

pub struct ApiKeys {
    api: Option<Arc<ClerkApi>>,
    clock: Clock,
    /// By SHA-256 of the secret (the secret itself is never kept).
    slots: Mutex<HashMap<[u8; 32], Slot>>,
}

impl ApiKeys {
    /// Keys verified by `api`; without one (no `CLERK_SECRET_KEY`) every key is unavailable.
    pub fn new(api: Option<Arc<ClerkApi>>, clock: Clock) -> ApiKeys {
        ApiKeys {
            api,
            clock,
            slots: Mutex::new(HashMap::new()),
        }
    }

    /// The keys of this configuration: verified by Clerk's Backend API when a key is configured,
    /// else, in demo mode, by the demo's stand-in at `demo` (its URL and Bearer) through the same
    /// client; else none can be.
    pub fn for_config(
        clerk: Option<Arc<ClerkApi>>,
        demo: Option<(String, secrecy::SecretString)>,
        metrics: Arc<crate::metrics::Metrics>,
        clock: Clock,
    ) -> anyhow::Result<ApiKeys> {
        let api = match (clerk, demo) {
            (Some(api), _) => Some(api),
            (None, Some((base, key))) => Some(Arc::new(ClerkApi::new(&base, key, metrics)?)),
            (None, None) => None,
        };
        Ok(ApiKeys::new(api, clock))
    }

    /// The verdict on `secret`: from this instance's memory while under [`KEY_TTL_MS`] old,
    /// else from one Backend API request (the other callers of the same key wait for it).
    pub async fn verify(&self, secret: &str) -> Result<KeyVerdict, Unavailable> {
        let hash: [u8; 32] = Sha256::digest(secret.as_bytes()).into();
        let slot = {
            let mut slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
            if slots.len() >= MAX_KEYS && !slots.contains_key(&hash) {
                slots.clear();
            }
            slots.entry(hash).or_default().clone()
        };
        let mut last = slot.lock().await;
        let now = (self.clock)();
        if let Some((at, v)) = last.as_ref() {
            if now.saturating_sub(*at) < KEY_TTL_MS {
                return Ok(v.clone());
            }
        }
        let Some(api) = &self.api else {
            return Err(Unavailable(
                "no CLERK_SECRET_KEY: API keys need Clerk's Backend API".into(),
            ));
        };
        let answer = api
            .verify_api_key(secret)
            .await
            .map_err(|e| Unavailable(e.to_string()))?;
        let now = (self.clock)();
        let v = answer.map_or(KeyVerdict::Refused, |a| verdict(&a, now));
        *last = Some((now, v.clone()));
        Ok(v)
    }
}
