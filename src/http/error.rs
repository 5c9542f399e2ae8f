//! The one error type of the HTTP edges: a status, a stable code and a short public message
//! as JSON. Internals are logged, never sent.

use axum::{
    http::{header, HeaderName, HeaderValue, StatusCode},
    response::{IntoResponse, Response},
    Json,
};
use serde_json::json;

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    /// Sent with the error (`Retry-After`, `RateLimit-*`).
    pub headers: Vec<(HeaderName, HeaderValue)>,
    /// A body another party defines, sent instead of plangate's (Clerk's reverification
    /// error, which clerk-js reads).
    pub body: Option<serde_json::Value>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
            headers: Vec::new(),
            body: None,
        }
    }
    pub fn unauthorized() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "a valid session token is required",
        )
    }
    pub fn forbidden(reason: &str) -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            format!("your plan does not include this feature ({reason})"),
        )
    }
    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }
    pub fn not_found() -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", "no such route")
    }
    /// Logs the cause with context and answers an opaque 500.
    pub fn internal(context: &str, err: impl std::fmt::Display) -> Self {
        tracing::error!(error = %err, "{context}");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "internal error",
        )
    }
    pub fn unavailable(context: &str, err: impl std::fmt::Display) -> Self {
        tracing::error!(error = %err, "{context}");
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "temporarily unavailable, retry later",
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = self
            .body
            .unwrap_or_else(|| json!({"error": {"code": self.code, "message": self.message}}));
        let mut r = (self.status, Json(body)).into_response();
        r.headers_mut().extend(self.headers);
        r
    }
}

impl From<crate::db::DbError> for ApiError {
    fn from(e: crate::db::DbError) -> Self {
        ApiError::unavailable("database", e)
    }
}

/// `429 Too Many Requests` with `Retry-After`.
pub fn too_many(retry_after_secs: u64) -> Response {
    let mut r = ApiError::new(
        StatusCode::TOO_MANY_REQUESTS,
        "rate_limited",
        "too many failed attempts from this address; retry later",
    )
    .into_response();
    r.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(retry_after_secs));
    r
}

/// The code and words of an `/api/…` refusal that no handler wrote (the router's `405`, the
/// body limit's `413`, the timeout's `408`, …), by status.
fn code_of(status: StatusCode) -> (&'static str, &'static str) {
    match status.as_u16() {
        400 => ("bad_request", "the request could not be read"),
        401 => ("unauthorized", "a valid session token is required"),
        403 => ("forbidden", "not allowed"),
        404 => ("not_found", "no such route"),
        405 => ("method_not_allowed", "this route does not take that method"),
        408 => ("timeout", "the request did not arrive in time"),
        413 => ("too_large", "the request body is too large"),
        415 => (
            "unsupported_media_type",
            "the request body is not of a type this route takes",
        ),
        422 => ("unprocessable", "the request could not be applied"),
        429 => ("rate_limited", "too many requests; retry later"),
        s if s >= 500 => ("unavailable", "temporarily unavailable, retry later"),
        _ => ("error", "the request was refused"),
    }
}

/// Every `/api/…` refusal is JSON (README, "Security model"): an error answer under `/api/`
/// whose body is not JSON already (empty, plain text) is replaced by `{"error":{"code","message"}}`
/// for its status, its other headers (`Allow`, `Retry-After`) kept.
pub fn api_error_as_json(r: Response) -> Response {
    let status = r.status();
    let json = r
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|c| c.starts_with("application/json"));
    if json || !(status.is_client_error() || status.is_server_error()) {
        return r;
    }
    let (mut parts, _) = r.into_parts();
    let (code, message) = code_of(status);
    let body = json!({"error": {"code": code, "message": message}}).to_string();
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    Response::from_parts(parts, axum::body::Body::from(body))
}

/// The layer that applies [`api_error_as_json`] to `/api/…` answers, outside every layer that
/// answers on its own (`405`, `408`, `413`). A plain tower service: the future is the inner
/// one, mapped by a function pointer for `/api/` paths and left alone otherwise (no box, no
/// allocation on the hot path).
#[derive(Clone, Copy, Default)]
pub struct ApiJsonLayer;

impl<S> tower::Layer<S> for ApiJsonLayer {
    type Service = ApiJson<S>;
    fn layer(&self, inner: S) -> ApiJson<S> {
        ApiJson(inner)
    }
}

#[derive(Clone)]
pub struct ApiJson<S>(S);

type Mapped<E> = fn(Result<Response, E>) -> Result<Response, E>;

impl<S, B> tower::Service<axum::http::Request<B>> for ApiJson<S>
where
    S: tower::Service<axum::http::Request<B>, Response = Response>,
{
    type Response = Response;
    type Error = S::Error;
    type Future = futures_util::future::Either<
        S::Future,
        futures_util::future::Map<S::Future, Mapped<S::Error>>,
    >;

    fn poll_ready(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        self.0.poll_ready(cx)
    }

    fn call(&mut self, req: axum::http::Request<B>) -> Self::Future {
        use futures_util::FutureExt;
        let path = req.uri().path();
        let api = path.starts_with("/api/") || path == "/api";
        let fut = self.0.call(req);
        if api {
            let f: Mapped<S::Error> = |r| r.map(api_error_as_json);
            futures_util::future::Either::Right(fut.map(f))
        } else {
            futures_util::future::Either::Left(fut)
        }
    }
}
