//! Metered answers (README, "Usage limits"): the `RateLimit-*` headers on every answer of a
//! metered route, and `429 limit_reached` with `Retry-After` when nothing is left.

use axum::{
    http::{HeaderName, HeaderValue, StatusCode},
    response::{IntoResponse, Response},
};

use super::error::ApiError;
use crate::services::usage::{Meter, UsageError};

/// `T` answered with its meter's headers: `Ok(Metered(meter, Json(…)))`.
pub struct Metered<T>(pub Meter, pub T);

impl<T: IntoResponse> IntoResponse for Metered<T> {
    fn into_response(self) -> Response {
        let mut r = self.1.into_response();
        r.headers_mut().extend(headers(&self.0));
        r
    }
}

/// `RateLimit-Limit`, `RateLimit-Remaining`, `RateLimit-Reset` (seconds until the period ends).
/// An unlimited feature has no limit to state and sends none.
fn headers(m: &Meter) -> Vec<(HeaderName, HeaderValue)> {
    let (Some(limit), Some(remaining)) = (m.allowance, m.remaining) else {
        return Vec::new();
    };
    vec![
        (HeaderName::from_static("ratelimit-limit"), limit.into()),
        (
            HeaderName::from_static("ratelimit-remaining"),
            remaining.into(),
        ),
        (
            HeaderName::from_static("ratelimit-reset"),
            m.reset_secs.into(),
        ),
    ]
}

impl From<UsageError> for ApiError {
    fn from(e: UsageError) -> Self {
        match e {
            UsageError::Limited(m) => {
                let name = crate::billing::plans::feature_words(&m.feature);
                let mut err = ApiError::new(
                    StatusCode::TOO_MANY_REQUESTS,
                    "limit_reached",
                    format!(
                        "your plan's {name} for this period is used up; it resets in {} s, or \
                         move to a plan with a higher limit",
                        m.reset_secs
                    ),
                );
                err.headers = headers(&m);
                err.headers.push((
                    axum::http::header::RETRY_AFTER,
                    HeaderValue::from(m.reset_secs),
                ));
                err
            }
            UsageError::PlanNotConfigured(_) => ApiError::new(
                StatusCode::FORBIDDEN,
                "plan_not_configured",
                "your plan is not configured on this service yet, so its usage cannot be \
                 metered; the operator has been told",
            ),
            UsageError::Db(e) => e.into(),
        }
    }
}
