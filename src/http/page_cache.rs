//! Signed-out renders of the public pages, kept for a few seconds.
//!
//! Without a session token `/` and `/pricing` render the same bytes for everyone (plans come
//! from `PLANS_FILE`, read at start), so rendering them once per TTL is enough. A request whose
//! caller brought a token (cookie or `Authorization`), valid or not, is always rendered, as is
//! any response that is not a plain 200 or that sets a cookie.
//!
//! Every response has a fresh Content-Security-Policy nonce (the request guard picks it). A
//! cached render holds the nonce of the request that rendered it, so the entry keeps the body
//! cut at that nonce and a hit joins the pieces with the hit's own nonce: no two responses
//! share a nonce, and the CSP header the guard sets names the one in the body.

use std::{
    collections::HashMap,
    sync::{Arc, RwLock},
    time::{Duration, Instant},
};

use axum::{
    body::{to_bytes, Body, Bytes},
    extract::{Request, State},
    http::{header, response::Parts, Method, StatusCode},
    middleware::Next,
    response::{IntoResponse, Response},
};

use super::guard::CspNonce;
use crate::auth::Caller;

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
    /// The body cut at every occurrence of the nonce it was rendered with.
    pieces: Vec<Bytes>,
    nonce: Option<Arc<str>>,
}

/// `body` cut at every occurrence of `nonce`.
fn cut(body: Bytes, nonce: Option<&str>) -> Vec<Bytes> {
    let Some(n) = nonce.map(str::as_bytes).filter(|n| !n.is_empty()) else {
        return vec![body];
    };
    let mut pieces = Vec::new();
    let mut start = 0;
    let mut i = 0;
    while i + n.len() <= body.len() {
        if &body[i..i + n.len()] == n {
            pieces.push(body.slice(start..i));
            i += n.len();
            start = i;
        } else {
            i += 1;
        }
    }
    pieces.push(body.slice(start..));
    pieces
}

/// The pieces joined with `nonce` between them: one buffer, so the response leaves in one
/// write (a body of many small chunks meets Nagle's algorithm and delayed ACKs on a
/// kept-alive connection).
fn join(pieces: &[Bytes], nonce: &str) -> Bytes {
    if let [only] = pieces {
        return only.clone();
    }
    let len = pieces.iter().map(Bytes::len).sum::<usize>() + nonce.len() * (pieces.len() - 1);
    let mut out = Vec::with_capacity(len);
    for (i, p) in pieces.iter().enumerate() {
        if i > 0 {
            out.extend_from_slice(nonce.as_bytes());
        }
        out.extend_from_slice(p);
    }
    out.into()
}

impl PageCache {
    /// A fresh entry for `key`, its nonce replaced by `nonce` (this response's).
    fn get(&self, key: &str, nonce: Option<&str>) -> Option<Response> {
        let entries = self.entries.read().unwrap_or_else(|e| e.into_inner());
        let e = entries.get(key).filter(|e| e.at.elapsed() < TTL)?;
        let nonce = nonce.or(e.nonce.as_deref()).unwrap_or_default();
        Some(Response::from_parts(
            e.parts.clone(),
            Body::from(join(&e.pieces, nonce)),
        ))
    }

    fn put(&self, key: String, parts: Parts, body: Bytes, nonce: Option<Arc<str>>) {
        let mut entries = self.entries.write().unwrap_or_else(|e| e.into_inner());
        entries.retain(|_, e| e.at.elapsed() < TTL);
        if entries.len() < MAX_ENTRIES || entries.contains_key(&key) {
            let at = Instant::now();
            let pieces = cut(body, nonce.as_deref());
            entries.insert(
                key,
                Entry {
                    at,
                    parts,
                    pieces,
                    nonce,
                },
            );
        }
    }
}

pub async fn middleware(State(pages): State<Arc<PageCache>>, req: Request, next: Next) -> Response {
    if req.method() != Method::GET || !PUBLIC_PAGES.contains(&req.uri().path()) {
        return next.run(req).await;
    }
    let (parts, body) = req.into_parts();
    if Caller::of(&parts.extensions).has_token() {
        return next.run(Request::from_parts(parts, body)).await;
    }
    let key = parts.uri.to_string();
    let nonce = parts.extensions.get::<CspNonce>().map(|n| n.0.clone());
    if let Some(hit) = pages.get(&key, nonce.as_deref()) {
        return hit;
    }
    let response = next.run(Request::from_parts(parts, body)).await;
    if response.status() != StatusCode::OK || response.headers().contains_key(header::SET_COOKIE) {
        return response;
    }
    let (parts, body) = response.into_parts();
    match to_bytes(body, MAX_BODY).await {
        Ok(bytes) => {
            pages.put(key, parts.clone(), bytes.clone(), nonce);
            Response::from_parts(parts, Body::from(bytes))
        }
        Err(e) => {
            tracing::error!(error = %e, "reading a rendered page");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bytes(b: Bytes) -> Vec<u8> {
        b.to_vec()
    }

    #[test]
    fn a_cached_body_is_served_with_the_hits_own_nonce() {
        let body = Bytes::from_static(b"<script nonce=\"N1N1\">a</script><link nonce=\"N1N1\">N1N");
        let pieces = cut(body.clone(), Some("N1N1"));
        assert_eq!(pieces.len(), 3);
        assert_eq!(
            bytes(join(&pieces, "fresh")),
            b"<script nonce=\"fresh\">a</script><link nonce=\"fresh\">N1N"
        );
        assert_eq!(bytes(join(&cut(body.clone(), None), "x")), body);
        assert_eq!(
            bytes(join(&pieces, "N1N1")),
            body,
            "the same nonce gives back the same bytes"
        );
        let whole = cut(Bytes::from_static(b"N1N1"), Some("N1N1"));
        assert_eq!(bytes(join(&whole, "z")), b"z");
    }
}
