//! Where a request's session token is: `Authorization: Bearer` first, then Clerk's
//! `__session_<suffix>` and `__session` cookies.

use axum::http::request::Parts;
use base64::Engine;
use sha1::{Digest, Sha1};

/// Clerk's cookie suffix: the first 8 characters of URL-safe base64 of SHA-1(publishable key).
pub fn cookie_suffix(publishable_key: &str) -> String {
    let digest = Sha1::digest(publishable_key.as_bytes());
    let enc = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(digest);
    enc.chars().take(8).collect()
}

pub fn cookie<'a>(parts: &'a Parts, name: &str) -> Option<&'a str> {
    cookie_in(&parts.headers, name)
}

/// The non-empty value of cookie `name` in `headers`.
pub fn cookie_in<'a>(headers: &'a axum::http::HeaderMap, name: &str) -> Option<&'a str> {
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
/// `__session_<suffix>`, then `__session`.
pub fn token_from_parts<'a>(parts: &'a Parts, suffix: Option<&str>) -> Option<&'a str> {
    if let Some(auth) = parts.headers.get(axum::http::header::AUTHORIZATION) {
        return auth
            .to_str()
            .ok()
            .and_then(|v| {
                v.strip_prefix("Bearer ")
                    .or_else(|| v.strip_prefix("bearer "))
            })
            .map(str::trim);
    }
    suffix
        .and_then(|s| cookie(parts, &format!("__session_{s}")))
        .or_else(|| cookie(parts, "__session"))
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
