//! Signed-out renders of the public pages, kept for a few seconds.
//!
//! Without a session token `/` and `/pricing` render the same bytes for everyone (plans come
//! from `PLANS_FILE`, read at start), and a full SSR pass costs ~200 µs. A request that carries
//! a token (cookie or `Authorization`), valid or not, is always rendered, as is any response
//! that is not a plain 200 or that sets a cookie. No Content-Security-Policy nonce is in use
//! (the nonce Leptos writes on its scripts is not enforced); a per-request nonce would rule
//! this cache out.

use std::{
    collections::HashMap,
    sync::RwLock,
    time::{Duration, Instant},
};

use axum::{
    body::{to_bytes, Body, Bytes},
    extract::{Request, State},
    http::{header, response::Parts, Method, StatusCode},
    middleware::Next,
    response::{IntoResponse, Response},
};

use crate::{auth::extract::token_from_parts, state::AppState};

/// Pages whose signed-out render depends on nothing in the request but its query.
const PUBLIC_PAGES: [&str; 2] = ["/", "/pricing"];
const TTL: Duration = Duration::from_secs(10);
/// Query strings are part of the key; this bounds what random ones can take.
const MAX_ENTRIES: usize = 32;
const MAX_BODY: usize = 1 << 20;

#[derive(Default)]
pub struct PageCache {
    entries: RwLock<HashMap<String, Entry>>,
}

struct Entry {
    at: Instant,
    parts: Parts,
    body: Bytes,
}

impl PageCache {
    fn get(&self, key: &str) -> Option<Response> {
        let entries = self.entries.read().unwrap_or_else(|e| e.into_inner());
        let e = entries.get(key).filter(|e| e.at.elapsed() < TTL)?;
        Some(Response::from_parts(
            e.parts.clone(),
            Body::from(e.body.clone()),
        ))
    }

    fn put(&self, key: String, parts: Parts, body: Bytes) {
        let mut entries = self.entries.write().unwrap_or_else(|e| e.into_inner());
        entries.retain(|_, e| e.at.elapsed() < TTL);
        if entries.len() < MAX_ENTRIES || entries.contains_key(&key) {
            let at = Instant::now();
            entries.insert(key, Entry { at, parts, body });
        }
    }
}

pub async fn middleware(State(state): State<AppState>, req: Request, next: Next) -> Response {
    if req.method() != Method::GET || !PUBLIC_PAGES.contains(&req.uri().path()) {
        return next.run(req).await;
    }
    let (parts, body) = req.into_parts();
    let suffix = state.cookie_suffix();
    if token_from_parts(&parts, suffix.as_deref()).is_some() {
        return next.run(Request::from_parts(parts, body)).await;
    }
    let key = parts.uri.to_string();
    if let Some(hit) = state.pages.get(&key) {
        return hit;
    }
    let response = next.run(Request::from_parts(parts, body)).await;
    if response.status() != StatusCode::OK || response.headers().contains_key(header::SET_COOKIE) {
        return response;
    }
    let (parts, body) = response.into_parts();
    match to_bytes(body, MAX_BODY).await {
        Ok(bytes) => {
            state.pages.put(key, parts.clone(), bytes.clone());
            Response::from_parts(parts, Body::from(bytes))
        }
        Err(e) => {
            tracing::error!(error = %e, "reading a rendered page");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}
