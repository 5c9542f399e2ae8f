//! Errors. `AppError` is shared with the browser and safe to show; `ApiError` (server only) is
//! the HTTP error of the JSON API: a status, a stable code and a short public message, with
//! internals logged but never sent.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum AppError {
    #[error("please sign in")]
    Unauthorized,
    #[error("your plan does not include this")]
    Forbidden,
    #[error("not found")]
    NotFound,
    #[error("{0}")]
    BadRequest(String),
    #[error("something went wrong on our side")]
    Internal,
}

#[cfg(feature = "ssr")]
pub use server::ApiError;

#[cfg(feature = "ssr")]
mod server {
    use axum::{
        http::StatusCode,
        response::{IntoResponse, Response},
        Json,
    };
    use serde_json::json;

    #[derive(Debug)]
    pub struct ApiError {
        pub status: StatusCode,
        pub code: &'static str,
        pub message: String,
    }

    impl ApiError {
        pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
            ApiError {
                status,
                code,
                message: message.into(),
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
            (
                self.status,
                Json(json!({"error": {"code": self.code, "message": self.message}})),
            )
                .into_response()
        }
    }

    impl From<crate::db::DbError> for ApiError {
        fn from(e: crate::db::DbError) -> Self {
            ApiError::unavailable("database", e)
        }
    }
}
