//! Clerk's handshake (README, "Sessions"), as `@clerk/backend`'s `authenticateRequest` decides it: for a
//! document request, whether the session cookie can be trusted as it is, must be refreshed by
//! a round trip through the Frontend API (`/v1/client/handshake`), or means signed out. Pure:
//! the edge (`http::handshake`) reads the request into `Observed` and acts on the `Step`.

use axum::http::{header, HeaderMap, Method};

use super::{cookies::cookie_in, AuthError};

/// The query parameter (or cookie) the Frontend API returns the signed cookies in.
pub const HANDSHAKE: &str = "__clerk_handshake";
/// Parameters the return URL may carry that the page must not keep.
pub const RETURN_PARAMS: &[&str] = &[HANDSHAKE, "__clerk_handshake_nonce", "__clerk_help"];
/// The development instance's browser token (cookie or query parameter).
pub const DEV_BROWSER: &str = "__clerk_db_jwt";
pub const REDIRECT_COUNT: &str = "__clerk_redirect_count";
/// Handshakes in a row after which the request is served signed out (a key mismatch would
/// otherwise loop forever).
pub const MAX_REDIRECTS: u32 = 3;

/// Where a redirect back into the app goes: `APP_URL` followed by the request's own path and
/// query, whose leading run of slashes and backslashes becomes one `/`. Browsers read `//host`
/// and `/\\host` as another site; an absolute URL on `APP_URL`'s origin with a plain path
/// cannot leave it (README, "Security model": redirects stay home).
pub fn location_on(app_url: &str, path_and_query: &str) -> String {
    let rest = path_and_query.trim_start_matches(['/', '\\']);
    format!("{}/{rest}", app_url.trim_end_matches('/'))
}

/// The cookies a handshake may set: Clerk's session cookies, each optionally `_<suffix>`.
const HANDSHAKE_COOKIES: [&str; 4] = ["__session", "__client_uat", "__refresh", DEV_BROWSER];

/// Whether one `Set-Cookie` value from a verified handshake may be set on this app (README,
/// "Sessions"): its name is one of Clerk's session cookies (optionally `_<suffix>`), and its
/// `Domain`, if any, is `app_host` or a parent of it with at least one dot. Anything else
/// the token lists (a tracking cookie, a cookie scoped to another site) is dropped.
pub fn handshake_cookie_allowed(set_cookie: &str, app_host: &str) -> bool {
    let mut parts = set_cookie.split(';');
    let Some((name, _)) = parts.next().and_then(|nv| nv.split_once('=')) else {
        return false;
    };
    let name = name.trim();
    let known = HANDSHAKE_COOKIES.iter().any(|base| {
        name.strip_prefix(base).is_some_and(|rest| {
            rest.is_empty()
                || rest.strip_prefix('_').is_some_and(|s| {
                    !s.is_empty()
                        && s.len() <= 64
                        && s.bytes()
                            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
                })
        })
    });
    if !known {
        return false;
    }
    let host = app_host.to_ascii_lowercase();
    parts.all(|attr| {
        let (key, value) = attr.split_once('=').unwrap_or((attr, ""));
        if !key.trim().eq_ignore_ascii_case("domain") {
            return true;
        }
        let domain = value.trim().trim_start_matches('.').to_ascii_lowercase();
        !domain.is_empty()
            && (domain == host || (domain.contains('.') && host.ends_with(&format!(".{domain}"))))
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Instance {
    /// `pk_test_`: the dev-browser token must be present.
    Development,
    Production,
    /// plangate's own issuer (no Clerk account): no dev-browser token.
    Demo,
}

/// A navigation that renders a page: `Sec-Fetch-Dest: document` or `iframe`; without the
/// header (older browsers, curl), an `Accept` starting with `text/html`. `GET` only.
pub fn is_document(method: &Method, headers: &HeaderMap) -> bool {
    if method != Method::GET {
        return false;
    }
    let get = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    match get("sec-fetch-dest") {
        Some(dest) => dest == "document" || dest == "iframe",
        None => get(header::ACCEPT.as_str()).is_some_and(|a| a.starts_with("text/html")),
    }
}

/// Clerk's cookies on a request: the suffixed ones (`__client_uat_<suffix>`, …) when the
/// suffixed `__client_uat` is there, else the plain ones.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cookies<'a> {
    pub session: Option<&'a str>,
    /// Seconds; 0 when absent or unreadable (signed out).
    pub client_uat: i64,
    pub dev_browser: Option<&'a str>,
    pub suffixed: bool,
    pub redirect_count: u32,
}

impl<'a> Cookies<'a> {
    pub fn read(headers: &'a HeaderMap, suffix: Option<&str>) -> Cookies<'a> {
        let get = |name: &str| cookie_in(headers, name);
        let suffixed_name = |name: &str| suffix.map(|s| format!("{name}_{s}"));
        let suffixed_uat = suffixed_name("__client_uat").and_then(|n| get(&n));
        let suffixed = suffixed_uat.is_some();
        let pick = |name: &str| {
            if suffixed {
                suffixed_name(name).and_then(|n| get(&n))
            } else {
                get(name)
            }
        };
        Cookies {
            session: pick("__session"),
            client_uat: pick("__client_uat")
                .and_then(|v| v.parse::<i64>().ok())
                .unwrap_or(0)
                .max(0),
            // The dev-browser cookie is never suffixed by older clerk-js: either name counts.
            dev_browser: pick(DEV_BROWSER).or_else(|| get(DEV_BROWSER)),
            suffixed,
            redirect_count: get(REDIRECT_COUNT)
                .and_then(|v| v.parse().ok())
                .unwrap_or(0),
        }
    }
}

/// What verifying the session cookie said.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenCheck {
    Valid {
        iat: i64,
    },
    /// Expired, not valid yet, or issued in the future: a fresh token may fix it.
    Refreshable {
        iat: Option<i64>,
        reason: &'static str,
    },
    /// Forged, another instance's, malformed: signed out, no round trip.
    Invalid,
}

impl TokenCheck {
    pub fn from_result(result: Result<i64, AuthError>, unverified_iat: Option<i64>) -> TokenCheck {
        match result {
            Ok(iat) => TokenCheck::Valid { iat },
            Err(AuthError::Expired) => TokenCheck::Refreshable {
                iat: unverified_iat,
                reason: "session-token-expired",
            },
            Err(AuthError::NotYetValid) => TokenCheck::Refreshable {
                iat: unverified_iat,
                reason: "session-token-nbf",
            },
            Err(AuthError::IssuedInFuture) => TokenCheck::Refreshable {
                iat: unverified_iat,
                reason: "session-token-iat-in-the-future",
            },
            Err(_) => TokenCheck::Invalid,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Handle the request with its session as it is (signed in, or no session at all).
    Serve,
    /// Handle it signed out: its session cookie is not to be believed.
    SignedOut,
    /// `307` to the Frontend API's handshake, with this reason.
    Handshake(&'static str),
    /// Development: `307` to the same URL without `__clerk_db_jwt`, which goes into the cookie.
    StoreDevBrowser,
}

/// The decision for a document request (the caller has already resolved a returned handshake).
/// `dev_browser_in_query` is whether the URL carries `__clerk_db_jwt`; `check` is the session
/// cookie's verification, when there is one.
pub fn decide(
    instance: Instance,
    cookies: &Cookies<'_>,
    dev_browser_in_query: bool,
    check: Option<TokenCheck>,
) -> Step {
    let handshake = |reason| {
        if cookies.redirect_count >= MAX_REDIRECTS {
            Step::SignedOut
        } else {
            Step::Handshake(reason)
        }
    };
    if instance == Instance::Development {
        if dev_browser_in_query {
            return Step::StoreDevBrowser;
        }
        if cookies.dev_browser.is_none() {
            return handshake("dev-browser-missing");
        }
    }
    let uat = cookies.client_uat;
    match (uat > 0, cookies.session.is_some()) {
        (false, false) => return Step::Serve,
        (false, true) => return handshake("session-token-but-no-client-uat"),
        (true, false) => return handshake("client-uat-but-no-session-token"),
        (true, true) => {}
    }
    let iat = match check {
        Some(TokenCheck::Valid { iat }) => Some(iat),
        Some(TokenCheck::Refreshable { iat, .. }) => iat,
        Some(TokenCheck::Invalid) | None => return Step::SignedOut,
    };
    if iat.is_some_and(|iat| iat < uat) {
        return handshake("session-token-iat-before-client-uat");
    }
    match check {
        Some(TokenCheck::Valid { .. }) => Step::Serve,
        Some(TokenCheck::Refreshable { reason, .. }) => handshake(reason),
        _ => Step::SignedOut,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;
    use proptest::prelude::*;

    fn jar(pairs: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::COOKIE, HeaderValue::from_str(pairs).unwrap());
        h
    }

    const VALID: Option<TokenCheck> = Some(TokenCheck::Valid { iat: 100 });
    const EXPIRED: Option<TokenCheck> = Some(TokenCheck::Refreshable {
        iat: Some(100),
        reason: "session-token-expired",
    });

    fn cookies(session: bool, uat: i64) -> Cookies<'static> {
        Cookies {
            session: session.then_some("t"),
            client_uat: uat,
            dev_browser: Some("db"),
            suffixed: false,
            redirect_count: 0,
        }
    }

    #[test]
    fn each_cookie_state_gets_clerks_answer() {
        let p = Instance::Production;
        assert_eq!(decide(p, &cookies(false, 0), false, None), Step::Serve);
        assert_eq!(
            decide(p, &cookies(true, 0), false, VALID),
            Step::Handshake("session-token-but-no-client-uat")
        );
        assert_eq!(
            decide(p, &cookies(false, 50), false, None),
            Step::Handshake("client-uat-but-no-session-token")
        );
        assert_eq!(decide(p, &cookies(true, 50), false, VALID), Step::Serve);
        assert_eq!(
            decide(p, &cookies(true, 100), false, VALID),
            Step::Serve,
            "issued in the same second as the sign-in"
        );
        assert_eq!(
            decide(p, &cookies(true, 101), false, VALID),
            Step::Handshake("session-token-iat-before-client-uat")
        );
        assert_eq!(
            decide(p, &cookies(true, 50), false, EXPIRED),
            Step::Handshake("session-token-expired")
        );
        assert_eq!(
            decide(p, &cookies(true, 50), false, Some(TokenCheck::Invalid)),
            Step::SignedOut,
            "a forged token is never refreshed"
        );
    }

    #[test]
    fn a_development_instance_needs_its_dev_browser_token_first() {
        let d = Instance::Development;
        let mut c = cookies(false, 0);
        c.dev_browser = None;
        assert_eq!(
            decide(d, &c, false, None),
            Step::Handshake("dev-browser-missing")
        );
        assert_eq!(decide(d, &c, true, None), Step::StoreDevBrowser);
        assert_eq!(
            decide(Instance::Production, &c, false, None),
            Step::Serve,
            "production has no dev-browser token"
        );
        assert_eq!(decide(Instance::Demo, &c, false, None), Step::Serve);
    }

    #[test]
    fn the_third_handshake_in_a_row_is_the_last() {
        for (count, want) in [
            (0, Step::Handshake("session-token-expired")),
            (2, Step::Handshake("session-token-expired")),
            (3, Step::SignedOut),
            (9, Step::SignedOut),
        ] {
            let mut c = cookies(true, 50);
            c.redirect_count = count;
            assert_eq!(decide(Instance::Production, &c, false, EXPIRED), want);
        }
    }

    #[test]
    fn suffixed_cookies_win_when_their_client_uat_is_there() {
        let h = jar("__session=plain; __client_uat=5; __session_abc=suffixed; __client_uat_abc=7");
        let c = Cookies::read(&h, Some("abc"));
        assert_eq!(
            (c.session, c.client_uat, c.suffixed),
            (Some("suffixed"), 7, true)
        );
        let h = jar("__session=plain; __client_uat=5; __session_abc=suffixed");
        let c = Cookies::read(&h, Some("abc"));
        assert_eq!(
            (c.session, c.client_uat, c.suffixed),
            (Some("plain"), 5, false)
        );
        let h = jar("__client_uat=junk; __clerk_redirect_count=2; __clerk_db_jwt=db");
        let c = Cookies::read(&h, None);
        assert_eq!(
            (c.client_uat, c.redirect_count, c.dev_browser),
            (0, 2, Some("db"))
        );
    }

    #[test]
    fn only_page_navigations_are_documents() {
        let with = |pairs: &[(&'static str, &'static str)]| {
            let mut h = HeaderMap::new();
            for (k, v) in pairs {
                h.insert(*k, HeaderValue::from_static(v));
            }
            h
        };
        let get = Method::GET;
        assert!(is_document(&get, &with(&[("sec-fetch-dest", "document")])));
        assert!(is_document(&get, &with(&[("sec-fetch-dest", "iframe")])));
        assert!(!is_document(
            &get,
            &with(&[("sec-fetch-dest", "empty"), ("accept", "text/html")])
        ));
        assert!(is_document(
            &get,
            &with(&[("accept", "text/html,application/xhtml+xml")])
        ));
        assert!(!is_document(&get, &with(&[("accept", "*/*")])));
        assert!(!is_document(&get, &with(&[])));
        assert!(!is_document(
            &Method::POST,
            &with(&[("sec-fetch-dest", "document")])
        ));
    }

    #[test]
    fn a_location_keeps_the_path_and_query_on_app_urls_origin() {
        let app = "https://app.example.com";
        assert_eq!(
            location_on(app, "/dashboard?x=1"),
            "https://app.example.com/dashboard?x=1"
        );
        assert_eq!(
            location_on("http://localhost:3000/", "/"),
            "http://localhost:3000/"
        );
        assert_eq!(location_on(app, ""), "https://app.example.com/");
        for evil in [
            "//evil.example/login",
            "/\\evil.example/login",
            "\\\\evil.example/login",
            "///evil.example/login",
            "/\\/\\evil.example/login",
        ] {
            assert_eq!(
                location_on(app, evil),
                "https://app.example.com/evil.example/login",
                "{evil}"
            );
        }
        assert_eq!(
            location_on(app, "/a//b\\c"),
            "https://app.example.com/a//b\\c",
            "only the leading run is folded"
        );
    }

    #[test]
    fn only_clerks_session_cookies_for_this_host_are_set_by_a_handshake() {
        let host = "app.example.com";
        for ok in [
            "__session=eyJ; Path=/; SameSite=Lax",
            "__session_Ab3-x_9z=eyJ; Path=/",
            "__client_uat=1700000000; Path=/; Domain=example.com",
            "__client_uat=0; Domain=.example.com; Max-Age=0",
            "__refresh=r; HttpOnly; Domain=APP.EXAMPLE.COM",
            "__clerk_db_jwt=dvb_1; Path=/",
            " __session = eyJ; Path=/",
        ] {
            assert!(handshake_cookie_allowed(ok, host), "{ok}");
        }
        for bad in [
            "tracking=1; Max-Age=315360000",
            "__session_x=eyJ; Domain=evil.example",
            "__session=eyJ; Domain=.evil.example",
            "__session=eyJ; Domain=com",
            "__session=eyJ; Domain=.com",
            "__session=eyJ; Domain=",
            "__session=eyJ; Domain=xample.com",
            "__session=eyJ; Domain=app.example.com.evil.example",
            "__session=eyJ; Path=/; Domain=example.com; Domain=evil.example",
            "__sessionx=1",
            "__session_=1",
            "__session_a.b=1",
            "__clerk_handshake=x",
            "__clerk_redirect_count=0",
            "__Secure-__session=1",
            "__session",
            "",
            "=__session",
        ] {
            assert!(!handshake_cookie_allowed(bad, host), "{bad}");
        }
        assert!(handshake_cookie_allowed(
            "__session=1; Domain=localhost",
            "localhost"
        ));
    }

    proptest! {
        /// Whatever a request path holds, the location it becomes is on the app's origin.
        #[test]
        fn no_request_path_leaves_the_apps_origin(path in "[/\\\\a-z.:@%?#]{0,24}") {
            let loc = location_on("https://app.example.com", &path);
            let url = reqwest::Url::parse(&loc).unwrap();
            prop_assert_eq!(url.host_str(), Some("app.example.com"));
            prop_assert_eq!(url.scheme(), "https");
            prop_assert_eq!(url.port(), None);
        }

        /// A cookie with a `Domain` is set only when that domain is the app's host or a parent.
        #[test]
        fn a_handshake_cookie_for_another_domain_is_never_set(
            name in "(__session|__client_uat|__refresh|__clerk_db_jwt|x|__sess)(_[a-zA-Z0-9]{1,3})?",
            domain in "\\.?[a-z]{1,6}(\\.[a-z]{1,6}){0,2}",
        ) {
            let host = "app.example.com";
            let allowed = handshake_cookie_allowed(&format!("{name}=v; Domain={domain}"), host);
            let d = domain.trim_start_matches('.');
            let parent = d == host || (d.contains('.') && host.ends_with(&format!(".{d}")));
            if allowed {
                prop_assert!(parent, "{} {}", name, domain);
                prop_assert!(!name.starts_with("x") && !name.starts_with("__sess_"));
            }
        }

        /// Whatever the cookies say, an invalid token is never served signed in, a valid one
        /// newer than `__client_uat` always is, and no state redirects past the loop limit.
        #[test]
        fn no_cookie_state_trusts_a_bad_token_or_loops(
            session in any::<bool>(), uat in 0i64..200, count in 0u32..6,
            dev in any::<bool>(), in_query in any::<bool>(), kind in 0u8..3, check in 0u8..4,
        ) {
            let instance = [Instance::Development, Instance::Production, Instance::Demo][kind as usize];
            let c = Cookies {
                session: session.then_some("t"),
                client_uat: uat,
                dev_browser: dev.then_some("db"),
                suffixed: false,
                redirect_count: count,
            };
            let check = session.then_some(match check {
                0 => TokenCheck::Valid { iat: 100 },
                1 => TokenCheck::Refreshable { iat: Some(100), reason: "session-token-expired" },
                2 => TokenCheck::Refreshable { iat: None, reason: "session-token-nbf" },
                _ => TokenCheck::Invalid,
            });
            let step = decide(instance, &c, in_query, check);
            if check == Some(TokenCheck::Invalid) {
                prop_assert_ne!(step, Step::Serve);
            }
            if matches!(step, Step::Handshake(_)) {
                prop_assert!(count < MAX_REDIRECTS);
            }
            let dev_ok = instance != Instance::Development || (dev && !in_query);
            if dev_ok && matches!(check, Some(TokenCheck::Valid { .. })) && (1..=100).contains(&uat) {
                prop_assert_eq!(step, Step::Serve);
            }
        }
    }
}
