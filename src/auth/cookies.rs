//! Where a request's session token is: `Authorization: Bearer` first, then Clerk's
//! `__session_<suffix>` and `__session` cookies.

use axum::http::{request::Parts, HeaderMap};

/// Clerk's cookie suffix, derived from the publishable key with the rest of the instance.
pub use crate::config::cookie_suffix;

pub fn cookie<'a>(parts: &'a Parts, name: &str) -> Option<&'a str> {
    cookie_in(&parts.headers, name)
}

/// The non-empty value of cookie `name` in `headers`.
pub fn cookie_in<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(axum::http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim())
        .filter(|v| !v.is_empty())
}

/// The session token of a request, if any: `Authorization: Bearer` first, then
/// `__session_<suffix>`, then `__session`. The one place that says where a token is; the request
/// guard asks it once per request and records its verdict as a [`super::Caller`].
pub fn session_token<'a>(headers: &'a HeaderMap, suffix: Option<&str>) -> Option<&'a str> {
    if headers.contains_key(axum::http::header::AUTHORIZATION) {
        return bearer(headers);
    }
    suffix
        .and_then(|s| cookie_in(headers, &format!("__session_{s}")))
        .or_else(|| cookie_in(headers, "__session"))
}

/// The credential of an `Authorization: Bearer …` (or `bearer …`) header, trimmed.
pub fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(axum::http::header::AUTHORIZATION)?
        .to_str()
        .ok()
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(str::trim)
}

pub fn now_secs() -> i64 {
    crate::db::now_ms() / 1000
}

#[cfg(test)]
mod tests {
    #[test]
    fn cookie_suffix_is_eight_url_safe_characters() {
        let s = super::cookie_suffix("pk_test_Y2xlcmsuZXhhbXBsZS5jb20k");
        assert_eq!(s.len(), 8);
        assert!(s
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'));
    }
}
