//! The request guard every route passes through: who the client is, whether a state-changing
//! request comes from the app's own pages, who is calling (the session token found and
//! verified once, limited when forged, recorded as an `auth::Caller`), and the security
//! headers of the response (CSP with this response's nonce, HSTS, cacheability).

use std::{
    net::{IpAddr, SocketAddr},
    sync::Arc,
};

use axum::{
    extract::{ConnectInfo, Request, State},
    http::{header, request::Parts, HeaderMap, HeaderValue, Method, StatusCode},
    middleware::Next,
    response::{IntoResponse, Response},
    Extension,
};

use super::{
    error::{too_many, ApiError},
    WEBHOOK_PATH,
};
use crate::{
    auth::Caller,
    security::{client_ip, csp},
    state::AppState,
};

/// The nonce of this response's inline scripts.
#[derive(Debug, Clone)]
pub struct CspNonce(pub Arc<str>);

pub const HSTS: HeaderValue = HeaderValue::from_static("max-age=31536000; includeSubDomains");

/// The socket's peer address, as axum's `ConnectInfo` recorded it.
pub type Peer = Option<Extension<ConnectInfo<SocketAddr>>>;

/// The client address of a request: its peer, or what a trusted proxy forwarded.
pub fn client_of(state: &AppState, peer: &Peer, headers: &HeaderMap) -> IpAddr {
    let peer = peer
        .as_ref()
        .map_or(IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED), |p| p.0 .0.ip());
    client_ip(peer, headers, &state.config().limits.trusted_proxies)
}

/// An origin as a browser serialises it (`scheme://host[:port]`, nothing else), normalised:
/// scheme and host lowercased, the scheme's default port dropped. `None` for anything else
/// (`null`, a path, user info, an empty value).
fn normalized_origin(origin: &str) -> Option<String> {
    let (scheme, rest) = origin.split_once("://")?;
    let scheme = scheme.to_ascii_lowercase();
    if !matches!(scheme.as_str(), "http" | "https")
        || rest.is_empty()
        || rest.contains(['/', '?', '#', '@', '\\'])
    {
        return None;
    }
    let url = reqwest::Url::parse(&format!("{scheme}://{rest}/")).ok()?;
    let host = url.host_str().filter(|h| !h.is_empty())?;
    Some(match url.port() {
        Some(port) => format!("{scheme}://{host}:{port}"),
        None => format!("{scheme}://{host}"),
    })
}

/// Whether a state-changing request comes from the app's own pages: its `Origin` is exactly
/// `APP_URL`'s origin (scheme, host and port; the `Host` header is never consulted, so a
/// rebound DNS name cannot vouch for itself), or, from a browser that sends no `Origin`,
/// `Sec-Fetch-Site` does not say another site. Requests from outside browsers (curl,
/// servers) carry neither and pass: they hold no victim's cookies.
pub fn same_origin(headers: &HeaderMap, app_origin: &str) -> bool {
    let get = |name: header::HeaderName| headers.get(name).and_then(|v| v.to_str().ok());
    match get(header::ORIGIN) {
        Some(origin) => {
            normalized_origin(origin).is_some_and(|o| Some(o) == normalized_origin(app_origin))
        }
        None => !matches!(
            get(header::HeaderName::from_static("sec-fetch-site")),
            Some("cross-site" | "same-site")
        ),
    }
}

/// Spending needs intent (README, "Security model"): a metered call authenticated by the
/// session *cookie* must come from the app's own pages: neither `Sec-Fetch-Site` saying another
/// site (`cross-site`, or `same-site`: a sibling subdomain) nor an `Origin` other than
/// `APP_URL`'s. A Bearer token (it comes first when both are sent) is intent enough.
pub fn spend_intent(headers: &HeaderMap, app_origin: &str) -> Result<(), ApiError> {
    if headers.contains_key(header::AUTHORIZATION) {
        return Ok(());
    }
    let get = |name: header::HeaderName| headers.get(name).and_then(|v| v.to_str().ok());
    let other_site = matches!(
        get(header::HeaderName::from_static("sec-fetch-site")),
        Some("cross-site" | "same-site")
    );
    let own_origin =
        |o: &str| normalized_origin(o).is_some_and(|o| Some(o) == normalized_origin(app_origin));
    let other_origin = headers
        .get(header::ORIGIN)
        .is_some_and(|v| v.to_str().map_or(true, |o| !own_origin(o)));
    if other_site || other_origin {
        tracing::warn!("a cookie-authenticated spend from another site refused");
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "cross_site",
            format!(
                "a metered call with the session cookie must come from the app's own pages at {}; \
                 programs send the token as a Bearer",
                app_origin
            ),
        ));
    }
    Ok(())
}

fn is_safe(method: &Method) -> bool {
    matches!(
        *method,
        Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE
    )
}

/// Paths that never render a page or read a session: static files and health checks.
fn is_static(path: &str) -> bool {
    path.starts_with("/pkg/")
        || path == "/favicon.ico"
        || path == "/healthz"
        || path == "/readyz"
        || path == WEBHOOK_PATH
}

pub async fn guard(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let (mut parts, body) = req.into_parts();

    let path = parts.uri.path();
    let (static_path, api_path) = (is_static(path), path.starts_with("/api/"));
    if !is_safe(&parts.method)
        && path != WEBHOOK_PATH
        && !same_origin(&parts.headers, &state.config().app_url)
    {
        tracing::warn!(path, "cross-origin state-changing request refused");
        return ApiError::new(
            StatusCode::FORBIDDEN,
            "cross_origin",
            format!(
                "this request must come from the app's own pages at {}",
                state.config().app_url
            ),
        )
        .into_response();
    }

    // The demo's stand-in for Clerk's Backend API is called by this app with its own Bearer:
    // not a visitor's credential.
    if !static_path && !path.starts_with(crate::http::DEMO_BAPI) {
        if let Err(resp) = check_token(&state, &mut parts).await {
            return resp;
        }
    }
    let nonce = (!static_path && !api_path).then(|| CspNonce(csp::new_nonce().into()));
    if let Some(n) = &nonce {
        parts.extensions.insert(n.clone());
    }

    // Anything that may have been rendered for someone: a credential or any cookie came with
    // it (the handshake reads several), checked before the handshake may sign it out.
    let personal = parts.headers.contains_key(header::AUTHORIZATION)
        || parts.headers.contains_key(header::COOKIE);

    let mut resp = next.run(Request::from_parts(parts, body)).await;
    let headers = resp.headers_mut();
    let html = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("text/html"));
    if !static_path {
        mark_cacheability(headers, personal, html);
    }
    if html {
        headers.insert(
            header::CONTENT_SECURITY_POLICY,
            state.csp().header(nonce.as_ref().map(|n| &*n.0)),
        );
    }
    if state.config().app_url.starts_with("https://") {
        headers.insert(header::STRICT_TRANSPORT_SECURITY, HSTS);
    }
    resp
}

pub const PRIVATE_NO_STORE: HeaderValue = HeaderValue::from_static("private, no-store");

/// Nothing personal is cacheable (README, "Security model"): a response to a request that
/// carried a credential or cookie, or that sets one, is `private, no-store` for every cache on
/// the way; pages also vary on `Cookie`, so only the signed-out render can ever be shared.
fn mark_cacheability(headers: &mut HeaderMap, personal: bool, html: bool) {
    if personal || headers.contains_key(header::SET_COOKIE) {
        headers.insert(header::CACHE_CONTROL, PRIVATE_NO_STORE);
    }
    if html {
        headers.append(header::VARY, HeaderValue::from_static("Cookie"));
    }
}

/// Decides who is calling, once per request: finds the session token, verifies it, and puts
/// the verdict in the request as a [`Caller`] for everything downstream. A forged token counts
/// against the client's address, and an address with no attempts left is refused unread.
async fn check_token(state: &AppState, parts: &mut Parts) -> Result<(), Response> {
    if let Some(secret) = api_key(&parts.headers) {
        let caller = check_api_key(state, parts, secret).await?;
        parts.extensions.insert(caller);
        return Ok(());
    }
    let Some(token) = state.sessions().token(&parts.headers) else {
        parts.extensions.insert(Caller::Anonymous);
        return Ok(());
    };
    let peer = parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| Extension(*c));
    let ip = client_of(state, &peer, &parts.headers);
    if let Some(retry) = state.limiter().blocked(ip) {
        // A session this server verified minutes ago costs nothing to accept: neighbours
        // behind one NAT are not locked out by someone else's forged tokens.
        if let Some(session) = state.sessions().already_verified(token) {
            parts.extensions.insert(Caller::Verified(session));
            return Ok(());
        }
        return Err(too_many(retry));
    }
    let caller = match state.sessions().verify(token).await {
        Ok(session) => Caller::Verified(session),
        Err(e) => {
            if e.is_forgery() {
                state.limiter().count(ip);
            }
            Caller::Rejected(e)
        }
    };
    parts.extensions.insert(caller);
    Ok(())
}

/// An API key's secret: `Authorization: Bearer ak_…` (only ever from that header: a cookie is
/// never a key).
fn api_key(headers: &HeaderMap) -> Option<String> {
    crate::auth::bearer(headers)
        .filter(|secret| secret.starts_with(crate::auth::api_keys::PREFIX))
        .map(str::to_string)
}

/// The caller an API key makes: its owner when the Backend API (or this instance's memory of its
/// answer, at most 10 s old) vouches for it; refused keys count against the client's address.
async fn check_api_key(
    state: &AppState,
    parts: &Parts,
    secret: String,
) -> Result<Caller, Response> {
    let peer = parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| Extension(*c));
    let ip = client_of(state, &peer, &parts.headers);
    if let Some(retry) = state.limiter().blocked(ip) {
        return Err(too_many(retry));
    }
    Ok(match state.api_keys().verify(&secret).await {
        Ok(crate::auth::KeyVerdict::Valid(owner)) => Caller::Key(owner),
        Ok(crate::auth::KeyVerdict::Refused) => {
            state.limiter().count(ip);
            Caller::Rejected(crate::auth::AuthError::ApiKeyRefused)
        }
        Err(e) => {
            tracing::warn!(error = %e, "an API key could not be verified");
            Caller::KeyUnavailable
        }
    })
}

/// Inside a Leptos render: use the nonce the guard chose, so the response's CSP names it.
pub fn provide_request_nonce() {
    use leptos::prelude::{provide_context, use_context};
    if let Some(n) = use_context::<Parts>()
        .as_ref()
        .and_then(|p| p.extensions.get::<CspNonce>())
    {
        provide_context(leptos::nonce::Nonce::from_value(n.0.clone()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_static(v));
        }
        h
    }

    const APP: &str = "https://app.example.com";

    #[test]
    fn the_apps_own_origin_passes_and_every_other_is_refused() {
        let ok = [
            vec![("origin", "https://app.example.com")],
            vec![("origin", "HTTPS://APP.EXAMPLE.COM")],
            vec![("origin", "https://app.example.com:443")],
            vec![("sec-fetch-site", "same-origin")],
            vec![("sec-fetch-site", "none")],
            vec![],
        ];
        for h in ok {
            assert!(same_origin(&headers(&h), APP), "{h:?}");
        }
        let refused = [
            vec![("origin", "https://evil.example")],
            vec![
                ("origin", "https://evil.example"),
                ("host", "app.example.com"),
            ],
            vec![("origin", "https://app.example.com.evil.example")],
            vec![("origin", "https://app.example.com:444")],
            vec![("origin", "http://app.example.com")],
            // DNS rebinding: the Host header names the attacker's own origin.
            vec![
                ("origin", "http://rebind.example"),
                ("host", "rebind.example"),
            ],
            vec![
                ("origin", "http://127.0.0.1:3000"),
                ("host", "127.0.0.1:3000"),
            ],
            vec![("origin", "https://app.example.com/")],
            vec![("origin", "https://app.example.com\\@evil.example")],
            vec![("origin", "app.example.com")],
            vec![("origin", "ftp://app.example.com")],
            vec![("origin", "null")],
            vec![("origin", "")],
            vec![
                ("origin", "https://app.example.com@evil.example"),
                ("host", "evil.example"),
            ],
            vec![("sec-fetch-site", "cross-site")],
            vec![("sec-fetch-site", "same-site")],
            vec![
                ("origin", "https://evil.example"),
                ("sec-fetch-site", "same-origin"),
            ],
        ];
        for h in refused {
            assert!(!same_origin(&headers(&h), APP), "{h:?}");
        }
        // An http app refuses an https Origin for the same host, and takes its own port only.
        let http_app = "http://localhost:3000";
        assert!(same_origin(
            &headers(&[("origin", "http://localhost:3000")]),
            http_app
        ));
        for o in [
            "https://localhost:3000",
            "http://localhost",
            "http://localhost:3001",
        ] {
            let mut h = HeaderMap::new();
            h.insert("origin", HeaderValue::from_str(o).unwrap());
            assert!(!same_origin(&h, http_app), "{o}");
        }
    }
}
