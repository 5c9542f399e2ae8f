//! Clerk's Backend API (README, "Operations"), the source the database is reconciled from: one payer's
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

use crate::{
    billing::{Payer, PayerKind},
    metrics::Metrics,
};

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
    /// After attempt number `attempt` (from 1) was answered `status`: how long to wait before
    /// the next, or `None` to give up (a status not worth retrying, or a `Retry-After` longer
    /// than `max_retry_after`).
    fn wait(
        &self,
        status: StatusCode,
        retry_after: Option<Duration>,
        attempt: u32,
    ) -> Option<Duration> {
        let n = attempt.saturating_sub(1);
        if status == StatusCode::TOO_MANY_REQUESTS {
            match retry_after {
                Some(d) if d > self.max_retry_after => None,
                Some(d) => Some(d),
                None => Some(self.backoff(n)),
            }
        } else if status.is_server_error() {
            Some(self.backoff(n))
        } else {
            None
        }
    }

    /// The wait before retry number `n` (0 for the first retry): jitter over the upper half
    /// of an exponentially growing, capped window `[w/2, w)`.
    fn backoff(&self, n: u32) -> Duration {
        let window = self
            .base_delay
            .saturating_mul(1u32 << n.min(16))
            .min(self.max_delay);
        let ms = (window.as_millis() as u64).max(2);
        Duration::from_millis(rand::thread_rng().gen_range(ms / 2..ms))
    }
}

pub struct ClerkApi {
    http: reqwest::Client,
    base: String,
    key: SecretString,
    limiter: Limiter,
    /// The share of the budget requests made on a visitor's behalf may take (checkout
    /// returns): a tenth, so that many accounts cannot use up what the sweep needs.
    interactive: Limiter,
    retry: Retry,
    metrics: Arc<Metrics>,
}

/// The part of the request budget interactive requests may take, in tenths.
pub const INTERACTIVE_SHARE_PERCENT: u32 = 10;

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
            // The Bearer key goes to the configured host only, never to a redirect's.
            .redirect(reqwest::redirect::Policy::none())
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
            interactive: Limiter::per_ten_seconds(per_10s * INTERACTIVE_SHARE_PERCENT / 100),
            retry: Retry::default(),
            metrics,
        })
    }

    pub fn with_retry(mut self, retry: Retry) -> Self {
        self.retry = retry;
        self
    }

    /// Takes one request from the interactive share, without waiting; whether there was one.
    /// A request made on a visitor's behalf asks this first and is skipped when it says no.
    pub fn admit_interactive(&self) -> bool {
        self.interactive.take(Instant::now()).is_ok()
    }

    /// The payer's subscription (`commerce_subscription`, with `subscription_items`), or `None`
    /// when Clerk says the payer has none (`404`).
    pub async fn payer_subscription(&self, payer: &Payer) -> Result<Option<Value>, ClerkApiError> {
        self.payer_subscription_tries(payer, self.retry.attempts)
            .await
    }

    /// [`Self::payer_subscription`] in one attempt, no retries (a visitor's request: its
    /// share of the budget is one request).
    pub async fn payer_subscription_once(
        &self,
        payer: &Payer,
    ) -> Result<Option<Value>, ClerkApiError> {
        self.payer_subscription_tries(payer, 1).await
    }

    async fn payer_subscription_tries(
        &self,
        payer: &Payer,
        attempts: u32,
    ) -> Result<Option<Value>, ClerkApiError> {
        let id = &payer.id;
        if !is_clerk_id(id) {
            return Err(ClerkApiError::BadId(id.to_string()));
        }
        let path = match payer.kind {
            PayerKind::User => format!("/v1/users/{id}/billing/subscription"),
            PayerKind::Org => format!("/v1/organizations/{id}/billing/subscription"),
        };
        match self.get_tries(&path, attempts).await {
            Ok(v) => Ok(Some(v)),
            Err(ClerkApiError::Status { status: 404, .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The user's primary address (`GET /v1/users/{id}`: the `email_addresses` entry whose id
    /// is `primary_email_address_id`), `None` when Clerk has no such user or no primary address.
    /// One attempt's retries at most, as for any background request.
    pub async fn user_primary_email(&self, user_id: &str) -> Result<Option<String>, ClerkApiError> {
        if !is_clerk_id(user_id) {
            return Err(ClerkApiError::BadId(user_id.to_string()));
        }
        let user = match self.get(&format!("/v1/users/{user_id}")).await {
            Ok(v) => v,
            Err(ClerkApiError::Status { status: 404, .. }) => return Ok(None),
            Err(e) => return Err(e),
        };
        let primary = user.get("primary_email_address_id").and_then(Value::as_str);
        Ok(user
            .get("email_addresses")
            .and_then(Value::as_array)
            .and_then(|list| {
                list.iter()
                    .find(|e| primary.is_some() && e.get("id").and_then(Value::as_str) == primary)
            })
            .and_then(|e| e.get("email_address"))
            .and_then(Value::as_str)
            .map(str::to_string))
    }

    /// Every subscription item of the instance.
    pub async fn subscription_items(&self) -> Result<Vec<Value>, ClerkApiError> {
        self.all_pages("/v1/billing/subscription_items?").await
    }

    /// The instance's plans for one payer type (`user` or `org`).
    pub async fn plans(&self, payer_type: &str) -> Result<Vec<Value>, ClerkApiError> {
        self.all_pages(&format!("/v1/billing/plans?payer_type={payer_type}&"))
            .await
    }

    /// A paginated list (`{data, total_count}`), page by page until `offset ≥ total_count`.
    /// An empty page ends the walk too, so a wrong `total_count` cannot loop forever.
    async fn all_pages(&self, prefix: &str) -> Result<Vec<Value>, ClerkApiError> {
        let mut out = Vec::new();
        loop {
            let path = format!("{prefix}limit={PAGE}&offset={}", out.len());
            let page = self.get(&path).await?;
            let data = page
                .get("data")
                .and_then(Value::as_array)
                .ok_or_else(|| ClerkApiError::Body { path: path.clone() })?;
            let total = page.get("total_count").and_then(Value::as_u64);
            let got = data.len();
            out.extend(data.iter().cloned());
            if got == 0 || total.is_none_or(|t| out.len() as u64 >= t) {
                return Ok(out);
            }
        }
    }

    async fn get(&self, path: &str) -> Result<Value, ClerkApiError> {
        self.get_tries(path, self.retry.attempts).await
    }

    async fn get_tries(&self, path: &str, attempts: u32) -> Result<Value, ClerkApiError> {
        let body = self
            .send(reqwest::Method::GET, path, None, attempts)
            .await?;
        serde_json::from_slice(&body).map_err(|_| ClerkApiError::Body {
            path: path.to_string(),
        })
    }

    /// Cancels a subscription item (`DELETE /v1/billing/subscription_items/{id}`): at the end
    /// of its period, or now with `end_now`. The stored state changes only when Clerk's
    /// webhook (or a reconcile) says so.
    pub async fn cancel_item(&self, item_id: &str, end_now: bool) -> Result<(), ClerkApiError> {
        if !is_clerk_id(item_id) {
            return Err(ClerkApiError::BadId(item_id.to_string()));
        }
        let path = format!("/v1/billing/subscription_items/{item_id}?end_now={end_now}");
        self.send(reqwest::Method::DELETE, &path, None, self.retry.attempts)
            .await
            .map(drop)
    }

    /// Extends an item's free trial to `extend_to` (RFC 3339):
    /// `POST /v1/billing/subscription_items/{id}/extend_free_trial`, body `{"extend_to": …}`.
    pub async fn extend_free_trial(
        &self,
        item_id: &str,
        extend_to: &str,
    ) -> Result<(), ClerkApiError> {
        if !is_clerk_id(item_id) {
            return Err(ClerkApiError::BadId(item_id.to_string()));
        }
        let path = format!("/v1/billing/subscription_items/{item_id}/extend_free_trial");
        let body = serde_json::json!({ "extend_to": extend_to });
        self.send(
            reqwest::Method::POST,
            &path,
            Some(&body),
            self.retry.attempts,
        )
        .await
        .map(drop)
    }

    /// Verifies an API key's secret (`POST /v1/api_keys/verify`, `{"secret": …}`): Clerk's answer
    /// (`subject`, `revoked`, `expired`, `expiration`, …), or `None` when Clerk does not know the
    /// secret (`404`, or a `400`/`422` for one that cannot be a key). One attempt: a caller waits
    /// on it. The secret is sent in the body only and never logged.
    pub async fn verify_api_key(&self, secret: &str) -> Result<Option<Value>, ClerkApiError> {
        let path = "/v1/api_keys/verify";
        let body = serde_json::json!({ "secret": secret });
        match self.send(reqwest::Method::POST, path, Some(&body), 1).await {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|_| ClerkApiError::Body { path: path.into() }),
            Err(ClerkApiError::Status {
                status: 400 | 404 | 422,
                ..
            }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// One request, with the key, the API version, the limiter and the retries; the body of a
    /// 2xx answer, or the error.
    async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        json: Option<&Value>,
        attempts: u32,
    ) -> Result<Vec<u8>, ClerkApiError> {
        let url = format!("{}{path}", self.base);
        let mut attempt = 0;
        loop {
            attempt += 1;
            self.limiter.acquire().await;
            let mut req = self
                .http
                .request(method.clone(), &url)
                .bearer_auth(self.key.expose_secret())
                .header("Clerk-API-Version", API_VERSION)
                .header("Accept", "application/json");
            if let Some(body) = json {
                req = req.json(body);
            }
            let sent = req.send().await;
            let last = attempt >= attempts.min(self.retry.attempts);
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
                    let wait = self.retry.backoff(attempt.saturating_sub(1));
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
                return resp
                    .bytes()
                    .await
                    .map(|b| b.to_vec())
                    .map_err(|_| ClerkApiError::Body {
                        path: path.to_string(),
                    });
            }
            match self.retry.wait(status, retry_after(&resp), attempt) {
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
pub use crate::billing::payer::is_clerk_id;

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
    fn what_is_retried_and_how_long_it_waits() {
        let r = Retry {
            base_delay: Duration::from_millis(1000),
            max_delay: Duration::from_secs(60),
            ..Retry::default()
        };
        let s = |c| StatusCode::from_u16(c).unwrap();
        let first = r.wait(s(503), None, 1).unwrap();
        assert!(
            first >= Duration::from_millis(500) && first < Duration::from_millis(1000),
            "{first:?}"
        );
        let third = r.wait(s(500), None, 3).unwrap();
        assert!(
            third >= Duration::from_millis(2000) && third < Duration::from_millis(4000),
            "{third:?}"
        );
        let limited = r.wait(s(429), None, 1).unwrap();
        assert!(
            limited < Duration::from_millis(1000),
            "no Retry-After: backoff, {limited:?}"
        );
        assert_eq!(
            r.wait(s(429), Some(Duration::from_secs(7)), 1),
            Some(Duration::from_secs(7))
        );
        assert_eq!(
            r.wait(s(429), Some(r.max_retry_after), 2),
            Some(r.max_retry_after)
        );
        assert_eq!(
            r.wait(s(429), Some(r.max_retry_after + Duration::from_secs(1)), 1),
            None
        );
        for c in [400, 401, 403, 404, 302, 200] {
            assert_eq!(r.wait(s(c), None, 1), None, "{c} is not retried");
        }
    }

    #[test]
    fn retry_after_is_read_in_seconds() {
        let resp = |v: &str| {
            reqwest::Response::from(
                axum::http::Response::builder()
                    .status(429)
                    .header("retry-after", v)
                    .body(Vec::<u8>::new())
                    .unwrap(),
            )
        };
        assert_eq!(retry_after(&resp("3")), Some(Duration::from_secs(3)));
        assert_eq!(retry_after(&resp(" 0 ")), Some(Duration::ZERO));
        assert_eq!(retry_after(&resp("Wed, 21 Oct 2026 07:28:00 GMT")), None);
        assert_eq!(retry_after(&resp("-1")), None);
    }

    /// A stand-in Backend API answering `statuses` in turn (then 200), counting requests.
    async fn stand_in(statuses: Vec<u16>) -> (String, Arc<Mutex<usize>>) {
        use axum::response::IntoResponse;
        let seen = Arc::new(Mutex::new(0usize));
        let (counter, plan) = (seen.clone(), Arc::new(Mutex::new(statuses.into_iter())));
        let app = axum::Router::new().fallback(move || {
            let (counter, plan) = (counter.clone(), plan.clone());
            async move {
                *counter.lock().unwrap() += 1;
                let status = plan.lock().unwrap().next().unwrap_or(200);
                let mut r = (
                    StatusCode::from_u16(status).unwrap(),
                    axum::Json(serde_json::json!({"data": [], "total_count": 0})),
                )
                    .into_response();
                if status == 429 {
                    r.headers_mut()
                        .insert("retry-after", "120".parse().unwrap());
                }
                if status == 302 {
                    r.headers_mut()
                        .insert("location", "http://127.0.0.1:1/steal".parse().unwrap());
                }
                r
            }
        });
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", l.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(l, app).await.unwrap() });
        (url, seen)
    }

    fn client(url: &str, metrics: &Arc<Metrics>) -> ClerkApi {
        ClerkApi::new(url, SecretString::from("sk_test_unit"), metrics.clone())
            .unwrap()
            .with_retry(Retry {
                attempts: 3,
                base_delay: Duration::from_millis(2),
                max_delay: Duration::from_millis(4),
                max_retry_after: Duration::from_secs(60),
            })
    }

    fn counted(m: &Metrics, class: &str) -> u64 {
        m.clerk_api_requests.with_label_values(&[class]).get()
    }

    #[tokio::test]
    async fn server_errors_are_retried_a_bounded_number_of_times() {
        let m = Arc::new(Metrics::new());
        let (url, seen) = stand_in(vec![503, 502]).await;
        assert!(client(&url, &m)
            .subscription_items()
            .await
            .unwrap()
            .is_empty());
        assert_eq!(*seen.lock().unwrap(), 3, "two refusals, then the answer");
        assert_eq!((counted(&m, "5xx"), counted(&m, "2xx")), (2, 1));

        let (url, seen) = stand_in(vec![503; 10]).await;
        let e = client(&url, &m).subscription_items().await.unwrap_err();
        assert!(
            matches!(e, ClerkApiError::Status { status: 503, .. }),
            "{e}"
        );
        assert_eq!(*seen.lock().unwrap(), 3, "gives up after its attempts");
    }

    #[tokio::test]
    async fn a_retry_after_beyond_the_bound_gives_up_rather_than_stall() {
        let m = Arc::new(Metrics::new());
        let (url, seen) = stand_in(vec![429]).await;
        let e = client(&url, &m).subscription_items().await.unwrap_err();
        assert!(
            matches!(e, ClerkApiError::Status { status: 429, .. }),
            "{e}"
        );
        assert_eq!(*seen.lock().unwrap(), 1);
        assert_eq!(counted(&m, "429"), 1);
    }

    #[tokio::test]
    async fn client_errors_and_redirects_are_answers_not_retried_or_followed() {
        let m = Arc::new(Metrics::new());
        let (url, seen) = stand_in(vec![404, 302]).await;
        let api = client(&url, &m);
        assert_eq!(
            api.payer_subscription(&Payer::user("user_1"))
                .await
                .unwrap(),
            None,
            "404: no subscription"
        );
        let e = api.subscription_items().await.unwrap_err();
        assert!(
            matches!(e, ClerkApiError::Status { status: 302, .. }),
            "{e}"
        );
        assert_eq!(*seen.lock().unwrap(), 2, "one request each");
        assert_eq!((counted(&m, "4xx"), counted(&m, "3xx")), (1, 1));
        assert!(matches!(
            api.payer_subscription(&Payer::org("../x")).await,
            Err(ClerkApiError::BadId(_))
        ));
        assert_eq!(*seen.lock().unwrap(), 2, "a bad id never leaves");
    }

    #[tokio::test]
    async fn acquiring_takes_the_tokens() {
        let l = Limiter::per_ten_seconds(100);
        for _ in 0..10 {
            l.acquire().await;
        }
        assert!(l.take(Instant::now()).is_err(), "the burst of 10 is spent");
    }

    #[test]
    fn the_key_never_shows_in_debug_output() {
        let api = ClerkApi::new(
            "https://api.clerk.com",
            SecretString::from("sk_live_supersecret"),
            Arc::new(Metrics::new()),
        )
        .unwrap();
        let shown = format!("{api:?}");
        assert!(shown.contains("https://api.clerk.com"), "{shown}");
        assert!(!shown.contains("supersecret"), "{shown}");
    }

    #[test]
    fn backoff_grows_with_jitter_and_stays_bounded() {
        let r = Retry::default();
        for n in 0..20 {
            let d = r.backoff(n);
            assert!(d <= r.max_delay, "{n}: {d:?}");
            let window = r.base_delay.saturating_mul(1 << n.min(16)).min(r.max_delay);
            assert!(d >= window / 2, "{n}: {d:?} below half of {window:?}");
            assert!(d < window, "{n}: {d:?} not below {window:?}");
        }
        assert!(r.backoff(0) < Duration::from_millis(250));
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
