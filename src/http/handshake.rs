//! Clerk's handshake at the edge (README, "Sessions"): document requests whose session cookie cannot
//! be trusted as it is take a `307` round trip through the Frontend API (Clerk's, or the demo
//! issuer's `/demo/v1/client/handshake`), which returns the fresh cookies signed into
//! `__clerk_handshake`; they are set on a `307` back to the page, so its first render is
//! decided on fresh evidence. The rules are `auth::handshake`'s; this file reads the request
//! and writes the responses. API routes, server functions, assets and fetches never redirect.

use axum::{
    body::Body,
    extract::{Request, State},
    http::{header, request::Parts, HeaderValue, StatusCode, Uri},
    middleware::Next,
    response::{IntoResponse, Response},
};

use crate::{
    auth::{
        cookie,
        handshake::{
            decide, handshake_cookie_allowed, is_document, location_on, Cookies, Instance, Step,
            TokenCheck, DEV_BROWSER, HANDSHAKE, REDIRECT_COUNT, RETURN_PARAMS,
        },
        verify::unverified_iat,
        Caller,
    },
    config::InstanceKind,
    state::AppState,
};

/// Paths that are never pages: the API and server functions, assets, health checks, the demo
/// issuer's own routes.
fn is_page_path(path: &str) -> bool {
    !(path.starts_with("/api/")
        || path.starts_with("/pkg/")
        || path.starts_with("/demo/")
        || path.starts_with("/.well-known/")
        || path == "/favicon.ico"
        || path == "/healthz"
        || path == "/readyz")
}

/// The value of query parameter `name`, decoded.
fn query_param(uri: &Uri, name: &str) -> Option<String> {
    let query = uri.query()?;
    url_pairs(query)
        .find(|(k, _)| k == name)
        .map(|(_, v)| v)
        .filter(|v| !v.is_empty())
}

fn url_pairs(query: &str) -> impl Iterator<Item = (String, String)> + '_ {
    reqwest::Url::parse(&format!("http://x/?{query}"))
        .map(|u| u.query_pairs().into_owned().collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
}

/// This request's path and query without the parameters `drop` names.
fn path_without(uri: &Uri, drop: &[&str]) -> String {
    let path = uri.path();
    let Some(query) = uri.query() else {
        return path.to_string();
    };
    let kept: Vec<(String, String)> = url_pairs(query)
        .filter(|(k, _)| !drop.contains(&k.as_str()))
        .collect();
    if kept.is_empty() {
        return path.to_string();
    }
    let mut u = reqwest::Url::parse("http://x/").expect("static URL");
    u.query_pairs_mut().extend_pairs(kept);
    format!("{path}?{}", u.query().unwrap_or_default())
}

/// A `307` to `location` that no cache keeps (every handshake step is one).
pub(super) fn redirect(location: &str) -> Response {
    let mut resp = (
        StatusCode::TEMPORARY_REDIRECT,
        [(header::CACHE_CONTROL, "no-store")],
    )
        .into_response();
    if let Ok(v) = HeaderValue::from_str(location) {
        resp.headers_mut().insert(header::LOCATION, v);
    }
    resp
}

/// The request as signed out: every later reader sees an anonymous caller, whatever session
/// cookie it carries.
fn sign_out(parts: &mut Parts) {
    parts.extensions.insert(Caller::Anonymous);
}

/// A dev-browser token as Clerk issues it (a JWT): anything else is not stored.
fn plausible_token(v: &str) -> bool {
    !v.is_empty()
        && v.len() <= 4096
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'))
}

pub async fn middleware(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let (parts, body) = req.into_parts();
    let applies = parts.method == axum::http::Method::GET
        && is_page_path(parts.uri.path())
        && !parts.headers.contains_key(header::AUTHORIZATION);
    if !applies {
        return next.run(Request::from_parts(parts, body)).await;
    }

    // Back from the Frontend API: set what it signed, then show the page without the token.
    let returned = match query_param(&parts.uri, HANDSHAKE) {
        Some(t) => Some((t, false)),
        None => cookie(&parts, HANDSHAKE).map(|t| (t.to_string(), true)),
    };
    let app_url = state.config().app_url.clone();
    // A rejected handshake cookie is cleared on whatever answer the request then gets.
    let mut clear_handshake_cookie = false;
    if let Some((token, in_cookie)) = returned {
        match state.sessions().verify_handshake(&token).await {
            Ok(set_cookies) => {
                let mut resp = redirect(&location_on(
                    &app_url,
                    &path_without(&parts.uri, RETURN_PARAMS),
                ));
                let host = app_host(&app_url);
                let h = resp.headers_mut();
                let mut dropped = 0;
                for c in &set_cookies {
                    if !handshake_cookie_allowed(c, &host) {
                        dropped += 1;
                        continue;
                    }
                    if let Ok(v) = HeaderValue::from_str(c) {
                        h.append(header::SET_COOKIE, v);
                    }
                }
                if dropped > 0 {
                    tracing::warn!(dropped, "handshake listed cookies that are not Clerk's session cookies for this host; not set");
                }
                if in_cookie {
                    append_handshake_clears(h, &app_url);
                }
                tracing::debug!(cookies = set_cookies.len() - dropped, "handshake resolved");
                return resp;
            }
            Err(e) => {
                // As Clerk's SDK does: the request is decided on its other cookies.
                tracing::warn!(reason = %e, "handshake token rejected; deciding on the other cookies");
                clear_handshake_cookie = in_cookie;
            }
        }
    }
    let mut resp = decide_and_run(&state, parts, body, next).await;
    if clear_handshake_cookie {
        append_handshake_clears(resp.headers_mut(), &app_url);
    }
    resp
}

/// `APP_URL`'s host, lowercased, without a port.
fn app_host(app_url: &str) -> String {
    reqwest::Url::parse(app_url)
        .ok()
        .and_then(|u| u.host_str().map(str::to_ascii_lowercase))
        .unwrap_or_default()
}

/// Clears `__clerk_handshake` on this host and on each parent domain it could have been set on
/// (a sibling subdomain can plant it on the parent; clearing needs the same `Domain`).
fn append_handshake_clears(h: &mut axum::http::HeaderMap, app_url: &str) {
    let host = app_host(app_url);
    let mut values = vec![format!("{HANDSHAKE}=; Path=/; Max-Age=0")];
    let mut rest = host.as_str();
    while let Some((_, parent)) = rest.split_once('.') {
        if !parent.contains('.') {
            break;
        }
        values.push(format!("{HANDSHAKE}=; Path=/; Max-Age=0; Domain={parent}"));
        rest = parent;
    }
    for v in values {
        if let Ok(v) = HeaderValue::from_str(&v) {
            h.append(header::SET_COOKIE, v);
        }
    }
}

/// The handshake decision for a request that brought no handshake token (or a rejected one).
async fn decide_and_run(state: &AppState, mut parts: Parts, body: Body, next: Next) -> Response {
    if !is_document(&parts.method, &parts.headers) {
        return next.run(Request::from_parts(parts, body)).await;
    }
    let config = state.config();
    let instance = match config.clerk().map(|c| c.kind()) {
        None => Instance::Demo,
        Some(InstanceKind::Development) => Instance::Development,
        Some(InstanceKind::Production) => Instance::Production,
    };
    let dev_in_query = query_param(&parts.uri, DEV_BROWSER).filter(|v| plausible_token(v));
    let sessions = state.sessions();
    let cookies = Cookies::read(&parts.headers, sessions.cookie_suffix());
    let check = match cookies.session {
        Some(token) => {
            // The guard's verdict when it is this cookie's (the usual case); Clerk's cookie
            // rule can pick another cookie than the guard's (a suffixed session without its
            // suffixed __client_uat), and only then is that one verified here.
            let verified = match Caller::of(&parts.extensions).verdict() {
                Some(verdict) if sessions.token(&parts.headers) == Some(token) => {
                    verdict.map(|s| s.iat_ms / 1000).map_err(|e| *e)
                }
                _ => sessions.verify(token).await.map(|s| s.iat_ms / 1000),
            };
            Some(TokenCheck::from_result(verified, unverified_iat(token)))
        }
        None => None,
    };
    let step = decide(instance, &cookies, dev_in_query.is_some(), check);
    match step {
        Step::Serve => next.run(Request::from_parts(parts, body)).await,
        Step::SignedOut => {
            sign_out(&mut parts);
            next.run(Request::from_parts(parts, body)).await
        }
        Step::StoreDevBrowser => {
            let value = dev_in_query.unwrap_or_default();
            let mut resp = redirect(&location_on(
                &config.app_url,
                &path_without(&parts.uri, &[DEV_BROWSER]),
            ));
            let mut names = vec![DEV_BROWSER.to_string()];
            if let Some(s) = state.sessions().cookie_suffix() {
                names.push(format!("{DEV_BROWSER}_{s}"));
            }
            for name in names {
                if let Ok(v) =
                    HeaderValue::from_str(&format!("{name}={value}; Path=/; SameSite=Lax"))
                {
                    resp.headers_mut().append(header::SET_COOKIE, v);
                }
            }
            resp
        }
        Step::Handshake(reason) => {
            let mut target = match reqwest::Url::parse(&format!(
                "{}/v1/client/handshake",
                config.identity.frontend_api_url()
            )) {
                Ok(u) => u,
                Err(_) => return next.run(Request::from_parts(parts, body)).await,
            };
            let here = location_on(
                &config.app_url,
                &path_without(&parts.uri, &[DEV_BROWSER, "__dev_session"]),
            );
            {
                let mut q = target.query_pairs_mut();
                q.append_pair("redirect_url", &here)
                    .append_pair("suffixed_cookies", &cookies.suffixed.to_string())
                    .append_pair("__clerk_hs_reason", reason);
                if instance == Instance::Development {
                    if let Some(db) = cookies.dev_browser {
                        q.append_pair(DEV_BROWSER, db);
                    }
                }
            }
            let count = cookies.redirect_count + 1;
            tracing::debug!(reason, count, "handshake");
            let mut resp = redirect(target.as_str());
            if let Ok(v) = HeaderValue::from_str(&format!(
                "{REDIRECT_COUNT}={count}; Path=/; SameSite=Lax; HttpOnly; Max-Age=3"
            )) {
                resp.headers_mut().append(header::SET_COOKIE, v);
            }
            resp
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_return_url_loses_only_the_handshake_parameters() {
        let uri: Uri = "/dashboard?tab=plan&__clerk_handshake=abc&x=%20y"
            .parse()
            .unwrap();
        assert_eq!(
            path_without(&uri, RETURN_PARAMS),
            "/dashboard?tab=plan&x=+y"
        );
        let uri: Uri = "/dashboard?__clerk_handshake=abc".parse().unwrap();
        assert_eq!(path_without(&uri, RETURN_PARAMS), "/dashboard");
        assert_eq!(
            query_param(&"/p?__clerk_db_jwt=a.b_c".parse().unwrap(), DEV_BROWSER).as_deref(),
            Some("a.b_c")
        );
    }

    #[test]
    fn only_pages_take_part() {
        for p in ["/", "/dashboard", "/dashboard/payment-gated", "/pricing"] {
            assert!(is_page_path(p), "{p}");
        }
        for p in [
            "/api/me",
            "/api/get_account",
            "/pkg/plangate.js",
            "/demo/sign-in",
            "/.well-known/jwks.json",
            "/favicon.ico",
            "/healthz",
            "/readyz",
        ] {
            assert!(!is_page_path(p), "{p}");
        }
    }
}
