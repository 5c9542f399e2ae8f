//! Clerk's Backend API (DESIGN §7), the source the database is reconciled from: one payer's
//! subscription and the paginated list of every subscription item.
//!
//! On the reqwest client already in the tree. Every request carries the secret key as a Bearer
//! token and `Clerk-API-Version`; passes a client-side limiter kept under Clerk's rate limits
//! (1000 requests per 10 s in production, 100 in development); honours `429` through
//! `Retry-After`; and retries 5xx and transport errors with jittered, bounded exponential
//! backoff. The key is held as a secret and never logged (errors name the path, not headers).

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use tokio::time::Instant;

use rand::Rng;
use reqwest::StatusCode;
use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;
use tracing::{debug, warn};

use crate::{billing::PayerKind, metrics::Metrics};

/// The API version this client speaks (Clerk's OpenAPI spec of that date).
pub const API_VERSION: &str = "2026-05-12";

/// Items per page of the list endpoint (Clerk's maximum).
const PAGE: usize = 100;

#[derive(Debug, thiserror::Error)]
pub enum ClerkApiError {
    #[error("Clerk's Backend API could not be reached ({path}): {reason}")]
    Unreachable { path: String, reason: String },
    #[error("Clerk's Backend API answered {status} to {path}")]
    Status { path: String, status: u16 },
    #[error("Clerk's Backend API sent {path} a body this app cannot read")]
    Body { path: String },
    #[error("`{0}` is not a Clerk id")]
    BadId(String),
}

/// How hard the client tries before giving up on a request.
#[derive(Debug, Clone, Copy)]
pub struct Retry {
    /// Attempts in all, the first included.
    pub attempts: u32,
    /// The first backoff; each retry doubles it (with full jitter) up to `max_delay`.
    pub base_delay: Duration,
    pub max_delay: Duration,
    /// The longest `Retry-After` honoured; a longer one gives up instead of stalling.
    pub max_retry_after: Duration,
}

impl Default for Retry {
    fn default() -> Self {
        Retry {
            attempts: 4,
            base_delay: Duration::from_millis(250),
            max_delay: Duration::from_secs(4),
            max_retry_after: Duration::from_secs(60),
        }
    }
}

impl Retry {
    /// The wait before retry number `n` (0 for the first retry): full jitter over an
    /// exponentially growing, capped window.
    fn backoff(&self, n: u32) -> Duration {
        let window = self
            .base_delay
            .saturating_mul(1u32 << n.min(16))
            .min(self.max_delay);
        let ms = window.as_millis() as u64;
        Duration::from_millis(rand::thread_rng().gen_range(ms / 2..=ms.max(1)))
    }
}

pub struct ClerkApi {
    http: reqwest::Client,
    base: String,
    key: SecretString,
    limiter: Limiter,
    retry: Retry,
    metrics: Arc<Metrics>,
}

impl std::fmt::Debug for ClerkApi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClerkApi")
            .field("base", &self.base)
            .finish_non_exhaustive()
    }
}

impl ClerkApi {
    pub fn new(base: &str, key: SecretString, metrics: Arc<Metrics>) -> anyhow::Result<ClerkApi> {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(10))
            .user_agent(concat!("plangate/", env!("CARGO_PKG_VERSION")))
            .build()?;
        // Clerk's limits: 1000 requests per 10 s for production instances, 100 for development.
        let per_10s = if key.expose_secret().starts_with("sk_live_") {
            1000
        } else {
            100
        };
        Ok(ClerkApi {
            http,
            base: base.trim_end_matches('/').to_string(),
            key,
            limiter: Limiter::per_ten_seconds(per_10s),
            retry: Retry::default(),
            metrics,
        })
    }

    pub fn with_retry(mut self, retry: Retry) -> Self {
        self.retry = retry;
        self
    }

    /// The payer's subscription (`commerce_subscription`, with `subscription_items`), or `None`
    /// when Clerk says the payer has none (`404`).
    pub async fn payer_subscription(
        &self,
        kind: PayerKind,
        id: &str,
    ) -> Result<Option<Value>, ClerkApiError> {
        if !is_clerk_id(id) {
            return Err(ClerkApiError::BadId(id.to_string()));
        }
        let path = match kind {
            PayerKind::User => format!("/v1/users/{id}/billing/subscription"),
            PayerKind::Org => format!("/v1/organizations/{id}/billing/subscription"),
        };
        match self.get(&path).await {
            Ok(v) => Ok(Some(v)),
            Err(ClerkApiError::Status { status: 404, .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Every subscription item of the instance, page by page until `offset ≥ total_count`.
    pub async fn subscription_items(&self) -> Result<Vec<Value>, ClerkApiError> {
        let mut out = Vec::new();
        loop {
            let path = format!(
                "/v1/billing/subscription_items?limit={PAGE}&offset={}",
                out.len()
            );
            let page = self.get(&path).await?;
            let data = page
                .get("data")
                .and_then(Value::as_array)
                .ok_or_else(|| ClerkApiError::Body { path: path.clone() })?;
            let total = page.get("total_count").and_then(Value::as_u64);
            let got = data.len();
            out.extend(data.iter().cloned());
            // An empty page ends the walk too, so a wrong `total_count` cannot loop forever.
            if got == 0 || total.is_none_or(|t| out.len() as u64 >= t) {
                return Ok(out);
            }
        }
    }

    async fn get(&self, path: &str) -> Result<Value, ClerkApiError> {
        let url = format!("{}{path}", self.base);
        let mut attempt = 0;
        loop {
            attempt += 1;
            self.limiter.acquire().await;
            let sent = self
                .http
                .get(&url)
                .bearer_auth(self.key.expose_secret())
                .header("Clerk-API-Version", API_VERSION)
                .header("Accept", "application/json")
                .send()
                .await;
            let last = attempt >= self.retry.attempts;
            let resp = match sent {
                Ok(r) => r,
                Err(e) => {
                    self.count("error");
                    // reqwest's error text names the URL, never the headers.
                    let reason = e.without_url().to_string();
                    if last {
                        return Err(ClerkApiError::Unreachable {
                            path: path.to_string(),
                            reason,
                        });
                    }
                    let wait = self.retry.backoff(attempt - 1);
                    warn!(path, %reason, wait_ms = wait.as_millis() as u64, "Backend API unreachable; retrying");
                    tokio::time::sleep(wait).await;
                    continue;
                }
            };
            let status = resp.status();
            self.count(match status.as_u16() {
                429 => "429",
                200..=299 => "2xx",
                300..=399 => "3xx",
                400..=499 => "4xx",
                _ => "5xx",
            });
            if status.is_success() {
                return resp.json::<Value>().await.map_err(|_| ClerkApiError::Body {
                    path: path.to_string(),
                });
            }
            let retry_after = retry_after(&resp);
            let wait = if status == StatusCode::TOO_MANY_REQUESTS {
                match retry_after {
                    Some(d) if d > self.retry.max_retry_after => None,
                    Some(d) => Some(d),
                    None => Some(self.retry.backoff(attempt - 1)),
                }
            } else if status.is_server_error() {
                Some(self.retry.backoff(attempt - 1))
            } else {
                None
            };
            match wait {
                Some(wait) if !last => {
                    warn!(
                        path,
                        status = status.as_u16(),
                        wait_ms = wait.as_millis() as u64,
                        "Backend API refused; retrying"
                    );
                    tokio::time::sleep(wait).await;
                }
                _ => {
                    debug!(path, status = status.as_u16(), "Backend API error");
                    return Err(ClerkApiError::Status {
                        path: path.to_string(),
                        status: status.as_u16(),
                    });
                }
            }
        }
    }

    fn count(&self, class: &str) {
        self.metrics
            .clerk_api_requests
            .with_label_values(&[class])
            .inc();
    }
}

/// `Retry-After` in seconds (the form Clerk sends); an HTTP date is not honoured (backoff).
fn retry_after(resp: &reqwest::Response) -> Option<Duration> {
    resp.headers()
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse::<u64>()
        .ok()
        .map(Duration::from_secs)
}

/// Clerk ids (`user_…`, `org_…`) are letters, digits and underscores; anything else never
/// reaches a URL path.
pub fn is_clerk_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// A token bucket kept under "`limit` requests per 10 s": refilled at 90% of that rate with
/// a burst of the other 10%, so no 10-second window sees more than `limit` requests.
struct Limiter {
    state: Mutex<(f64, Instant)>,
    per_sec: f64,
    burst: f64,
}

impl Limiter {
    fn per_ten_seconds(limit: u32) -> Limiter {
        let burst = (f64::from(limit) / 10.0).max(1.0);
        Limiter {
            state: Mutex::new((burst, Instant::now())),
            per_sec: f64::from(limit) * 0.9 / 10.0,
            burst,
        }
    }

    /// Waits for a token.
    async fn acquire(&self) {
        while let Err(wait) = self.take(Instant::now()) {
            tokio::time::sleep(wait).await;
        }
    }

    /// Takes a token at `now`, or says how long until one is there.
    fn take(&self, now: Instant) -> Result<(), Duration> {
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let (tokens, at) = *s;
        let elapsed = now.saturating_duration_since(at).as_secs_f64();
        let tokens = (tokens + elapsed * self.per_sec).min(self.burst);
        if tokens >= 1.0 {
            *s = (tokens - 1.0, now);
            return Ok(());
        }
        *s = (tokens, now);
        // At least a millisecond: a wait that rounds to nothing would spin.
        Err(Duration::from_secs_f64((1.0 - tokens) / self.per_sec).max(Duration::from_millis(1)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_clerk_shaped_ids_reach_a_path() {
        assert!(is_clerk_id("user_2g7np7Hrk0SN6kj5EDMLDaKNL0S"));
        assert!(is_clerk_id("org_29w9UfJcYJF1lN1AP5R9w6b2xKA"));
        for bad in [
            "",
            "../v1/jwks",
            "user_1/../../x",
            "user 1",
            "user_1?x=1",
            "user_%2e",
            &"a".repeat(65),
        ] {
            assert!(!is_clerk_id(bad), "{bad}");
        }
    }

    #[test]
    fn backoff_grows_with_jitter_and_stays_bounded() {
        let r = Retry::default();
        for n in 0..20 {
            let d = r.backoff(n);
            assert!(d <= r.max_delay, "{n}: {d:?}");
            let window = r.base_delay.saturating_mul(1 << n.min(16)).min(r.max_delay);
            assert!(d >= window / 2, "{n}: {d:?} below half of {window:?}");
        }
        assert!(r.backoff(0) <= Duration::from_millis(250));
    }

    /// Requests as fast as the bucket allows, on a simulated clock: how many in `secs`.
    fn greedy(limit: u32, secs: u64) -> usize {
        let start = Instant::now();
        let l = Limiter {
            state: Mutex::new(((f64::from(limit) / 10.0).max(1.0), start)),
            ..Limiter::per_ten_seconds(limit)
        };
        let (mut now, mut n) = (start, 0);
        while now < start + Duration::from_secs(secs) {
            match l.take(now) {
                Ok(()) => n += 1,
                Err(wait) => now += wait,
            }
        }
        n
    }

    /// Clerk's windows are 10 s: at most the limit in one, and most of it is usable.
    #[test]
    fn the_limiter_keeps_ten_second_windows_under_clerks_limits() {
        for (limit, key) in [(100, "sk_test_x"), (1000, "sk_live_x")] {
            let n = greedy(limit, 10);
            assert!(n <= limit as usize, "{key}: {n} requests in 10 s");
            assert!(
                n >= limit as usize * 9 / 10,
                "{key}: only {n} requests in 10 s"
            );
            let api = ClerkApi::new(
                "http://x",
                SecretString::from(key),
                Arc::new(Metrics::new()),
            )
            .unwrap();
            let waits = (0..=limit)
                .filter(|_| api.limiter.take(Instant::now()).is_err())
                .count();
            assert_eq!(
                limit as usize + 1 - waits,
                limit as usize / 10,
                "{key}: a burst of a tenth of Clerk's limit goes at once, the rest waits"
            );
        }
    }
}
