//! Clerk's handshake (README, "Sessions"): which page requests go through the Frontend API, what the
//! redirect says, what comes back, and what never redirects. A stand-in Frontend API signs
//! handshake tokens with the test key, as Clerk's does with the instance key.

use std::net::SocketAddr;

use axum::{
    extract::{Query, State},
    http::{header, StatusCode},
    response::IntoResponse,
    routing::get,
    Router,
};
use serde_json::{json, Value};

use crate::helpers::*;

/// Clerk's Frontend API `/v1/client/handshake`, as far as plangate sees it: back to
/// `redirect_url` with `__clerk_handshake`, a token whose `handshake` claim sets a fresh
/// session for `user` (the Clerk client signed in on Clerk's domain).
async fn frontend_api(user: &'static str) -> String {
    async fn handshake(
        State(user): State<&'static str>,
        Query(q): Query<std::collections::HashMap<String, String>>,
    ) -> impl IntoResponse {
        let t = now();
        let session = sign_token(&keys().0, &claims(user));
        let token = sign_token(
            &keys().0,
            &json!({"handshake": [
                format!("__session={session}; Path=/; SameSite=Lax"),
                format!("__client_uat={t}; Path=/; SameSite=Lax"),
            ], "iat": t, "exp": t + 60}),
        );
        let mut back = reqwest::Url::parse(&q["redirect_url"]).unwrap();
        back.query_pairs_mut()
            .append_pair("__clerk_handshake", &token);
        (
            StatusCode::TEMPORARY_REDIRECT,
            [(header::LOCATION, back.to_string())],
        )
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr: SocketAddr = listener.local_addr().unwrap();
    let router = Router::new()
        .route("/v1/client/handshake", get(handshake))
        .with_state(user);
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    format!("http://{addr}")
}

async fn app_with_fapi(fapi: &str, extra: Vec<(&'static str, String)>) -> TestApp {
    spawn_with(Options {
        extra: [vec![("CLERK_FRONTEND_API_URL", fapi.to_string())], extra].concat(),
        ..Default::default()
    })
    .await
}

/// A page navigation, as a browser sends it, with these cookies.
async fn navigate(app: &TestApp, path_or_url: &str, cookies: &str) -> reqwest::Response {
    let url = match path_or_url.strip_prefix(APP_URL) {
        Some(path) => app.url(path),
        None if path_or_url.starts_with('/') => app.url(path_or_url),
        None => path_or_url.to_string(),
    };
    app.client
        .get(url)
        .header("sec-fetch-dest", "document")
        .header("accept", "text/html")
        .header("cookie", cookies)
        .send()
        .await
        .unwrap()
}

fn location(r: &reqwest::Response) -> String {
    r.headers()
        .get("location")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default()
}

fn query(url: &str) -> std::collections::HashMap<String, String> {
    reqwest::Url::parse(url)
        .unwrap()
        .query_pairs()
        .into_owned()
        .collect()
}

#[tokio::test]
async fn an_expired_session_goes_through_the_handshake_and_the_first_render_is_signed_in() {
    let fapi = frontend_api("user_hs1").await;
    let app = app_with_fapi(&fapi, vec![]).await;
    let uat = now() - 600;
    let cookies = format!(
        "__session={}; __client_uat={uat}; {DEV}",
        expired("user_hs1")
    );

    let first = navigate(&app, "/dashboard?tab=plan", &cookies).await;
    assert_eq!(first.status(), 307);
    assert_eq!(first.headers()["cache-control"], "private, no-store");
    let to = location(&first);
    assert!(
        to.starts_with(&format!("{fapi}/v1/client/handshake?")),
        "{to}"
    );
    let q = query(&to);
    assert_eq!(q["redirect_url"], format!("{APP_URL}/dashboard?tab=plan"));
    assert_eq!(q["suffixed_cookies"], "false");
    assert_eq!(q["__clerk_hs_reason"], "session-token-expired");
    assert_eq!(
        q["__clerk_db_jwt"], "dvb_test",
        "a development instance's browser travels along"
    );
    let counter = set_cookies(&first);
    assert!(
        counter.contains(&"__clerk_redirect_count=1".to_string()),
        "{counter:?}"
    );

    // The Frontend API sends the browser back with the signed cookies.
    let from_fapi = app.client.get(&to).send().await.unwrap();
    assert_eq!(from_fapi.status(), 307);
    let back = location(&from_fapi);
    assert!(back.starts_with(&format!("{APP_URL}/dashboard?tab=plan&__clerk_handshake=")));

    let resolved = navigate(&app, &back, &cookies).await;
    assert_eq!(resolved.status(), 307);
    assert_eq!(resolved.headers()["cache-control"], "private, no-store");
    assert_eq!(
        location(&resolved),
        format!("{APP_URL}/dashboard?tab=plan"),
        "the same page, without the token"
    );
    let set = set_cookies(&resolved);
    let fresh = set
        .iter()
        .find_map(|c| c.strip_prefix("__session="))
        .expect("a fresh session cookie")
        .to_string();
    let fresh_uat = set
        .iter()
        .find_map(|c| c.strip_prefix("__client_uat="))
        .unwrap()
        .to_string();

    let page = navigate(
        &app,
        "/dashboard?tab=plan",
        &format!("__session={fresh}; __client_uat={fresh_uat}; {DEV}"),
    )
    .await;
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(html.contains("user_hs1"), "rendered signed in: {html}");
}

#[tokio::test]
async fn each_cookie_state_gets_clerks_answer() {
    let fapi = frontend_api("user_hs2").await;
    let app = app_with_fapi(&fapi, vec![]).await;
    let t = now();
    let valid = sign_token(&keys().0, &claims("user_hs2"));
    let reason = |r: &reqwest::Response| query(&location(r)).get("__clerk_hs_reason").cloned();
    let cases: Vec<(String, Option<&str>)> = vec![
        (DEV.to_string(), None),
        (format!("__client_uat=0; {DEV}"), None),
        (
            format!("__client_uat={t}; {DEV}"),
            Some("client-uat-but-no-session-token"),
        ),
        (
            format!("__session={valid}; {DEV}"),
            Some("session-token-but-no-client-uat"),
        ),
        (
            format!("__session={valid}; __client_uat={}; {DEV}", t + 30),
            Some("session-token-iat-before-client-uat"),
        ),
        (format!("__session={valid}; __client_uat={t}; {DEV}"), None),
        (
            format!("__session={valid}; __client_uat={t}"),
            Some("dev-browser-missing"),
        ),
        (String::new(), Some("dev-browser-missing")),
    ];
    for (cookies, want) in cases {
        let r = navigate(&app, "/dashboard", &cookies).await;
        match want {
            Some(w) => {
                assert_eq!(r.status(), 307, "{cookies}");
                assert_eq!(reason(&r).as_deref(), Some(w), "{cookies}");
            }
            None => assert_eq!(r.status(), 200, "{cookies}: {}", location(&r)),
        }
    }
    // The valid, fresh session is served signed in, the others signed out.
    let html = navigate(
        &app,
        "/dashboard",
        &format!("__session={valid}; __client_uat={t}; {DEV}"),
    )
    .await
    .text()
    .await
    .unwrap();
    assert!(html.contains("user_hs2"));
    let html = navigate(&app, "/dashboard", DEV)
        .await
        .text()
        .await
        .unwrap();
    assert!(!html.contains("user_hs2"));
}

#[tokio::test]
async fn a_dev_browser_value_in_the_url_moves_into_the_cookie() {
    let fapi = frontend_api("user_hs3").await;
    let app = app_with_fapi(&fapi, vec![]).await;
    let r = navigate(&app, "/pricing?plan=pro&__clerk_db_jwt=dvb_fresh.x-y_z", "").await;
    assert_eq!(r.status(), 307);
    assert_eq!(location(&r), format!("{APP_URL}/pricing?plan=pro"));
    assert!(set_cookies(&r).contains(&"__clerk_db_jwt=dvb_fresh.x-y_z".to_string()));
    // Anything but a token is not stored.
    let r = navigate(&app, "/pricing?__clerk_db_jwt=%3Cscript%3E", "").await;
    assert_eq!(r.status(), 307);
    assert_eq!(
        query(&location(&r))["__clerk_hs_reason"],
        "dev-browser-missing"
    );
}

#[tokio::test]
async fn a_production_instance_needs_no_dev_browser_and_suffixed_cookies_come_first() {
    use base64::Engine;
    let fapi = frontend_api("user_hs4").await;
    let pk = format!(
        "pk_live_{}",
        base64::engine::general_purpose::STANDARD.encode(format!("{FAPI_HOST}$"))
    );
    let suffix = plangate::auth::cookie_suffix(&pk);
    let app = app_with_fapi(&fapi, vec![("CLERK_PUBLISHABLE_KEY", pk)]).await;
    assert_eq!(navigate(&app, "/dashboard", "").await.status(), 200);
    let t = now();
    let valid = sign_token(&keys().0, &claims("user_hs4"));
    // The plain cookies say signed in; the suffixed ones (this instance's) say the session is
    // older than the last sign-in: the suffixed ones decide.
    let cookies = format!(
        "__session={valid}; __client_uat={t}; __session_{suffix}={valid}; __client_uat_{suffix}={}",
        t + 30
    );
    let r = navigate(&app, "/dashboard", &cookies).await;
    assert_eq!(r.status(), 307);
    let q = query(&location(&r));
    assert_eq!(
        q["__clerk_hs_reason"],
        "session-token-iat-before-client-uat"
    );
    assert_eq!(q["suffixed_cookies"], "true");
    assert!(!q.contains_key("__clerk_db_jwt"));
}

#[tokio::test]
async fn the_third_handshake_in_a_row_is_served_signed_out() {
    let fapi = frontend_api("user_hs5").await;
    let app = app_with_fapi(&fapi, vec![]).await;
    let base = format!("__session={}; __client_uat=1; {DEV}", expired("user_hs5"));
    for n in 0..3 {
        let r = navigate(
            &app,
            "/dashboard",
            &format!("{base}; __clerk_redirect_count={n}"),
        )
        .await;
        assert_eq!(r.status(), 307, "handshake {}", n + 1);
        assert!(set_cookies(&r).contains(&format!("__clerk_redirect_count={}", n + 1)));
    }
    let r = navigate(
        &app,
        "/dashboard",
        &format!("{base}; __clerk_redirect_count=3"),
    )
    .await;
    assert_eq!(r.status(), 200, "no fourth redirect");
    assert!(!r.text().await.unwrap().contains("user_hs5"), "signed out");
}

#[tokio::test]
async fn a_forged_or_expired_handshake_token_sets_nothing_and_the_page_is_signed_out() {
    let fapi = frontend_api("user_hs6").await;
    let app = app_with_fapi(&fapi, vec![]).await;
    let t = now();
    let session = sign_token(&keys().0, &claims("user_hs6"));
    let payload = |exp: i64| {
        json!({"handshake": [format!("__session={session}; Path=/"), format!("__client_uat={t}; Path=/")],
            "iat": t, "exp": exp})
    };
    let forged = sign_token(&keys().1, &payload(t + 60)); // not the instance key
    let stale = sign_token(&keys().0, &payload(t - 120));
    let mut tampered = sign_token(&keys().0, &payload(t + 60));
    tampered.push('A');
    let unsigned = {
        use base64::Engine;
        let b = |v: &Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
        format!(
            "{}.{}.",
            b(&json!({"alg": "none", "typ": "JWT"})),
            b(&payload(t + 60))
        )
    };
    for token in [forged, stale, tampered, unsigned, "garbage".to_string()] {
        for (url, cookies) in [
            (
                format!("/dashboard?__clerk_handshake={token}"),
                DEV.to_string(),
            ),
            (
                "/dashboard".to_string(),
                format!("__clerk_handshake={token}; {DEV}"),
            ),
        ] {
            let r = navigate(&app, &url, &cookies).await;
            assert_eq!(r.status(), 200, "{url} {cookies}");
            assert!(set_cookies(&r).iter().all(|c| !c.starts_with("__session=")));
            assert!(!r.text().await.unwrap().contains("user_hs6"), "signed out");
        }
    }
    // Beside a session cookie that verifies, a rejected handshake sets nothing and the request
    // is decided on that cookie, as Clerk's SDK does (a planted handshake cookie cannot keep a
    // user signed out).
    let beside = format!("__session={session}; __client_uat={t}; {DEV}");
    assert!(navigate(&app, "/dashboard", &beside)
        .await
        .text()
        .await
        .unwrap()
        .contains("user_hs6"));
    let bad = sign_token(&keys().1, &payload(t + 60));
    let r = navigate(
        &app,
        &format!("/dashboard?__clerk_handshake={bad}"),
        &beside,
    )
    .await;
    assert_eq!(r.status(), 200);
    assert!(set_cookies(&r).iter().all(|c| !c.starts_with("__session=")));
    assert!(
        r.text().await.unwrap().contains("user_hs6"),
        "the session decides"
    );
    // The genuine token, as a cookie, is resolved and the cookie cleared.
    let genuine = sign_token(&keys().0, &payload(t + 60));
    let r = navigate(
        &app,
        "/dashboard",
        &format!("__clerk_handshake={genuine}; {DEV}"),
    )
    .await;
    assert_eq!(r.status(), 307);
    let set = set_cookies(&r);
    assert!(set.iter().any(|c| c.starts_with("__session=ey")), "{set:?}");
    assert!(set.contains(&"__clerk_handshake=".to_string()), "{set:?}");
}

#[tokio::test]
async fn apis_server_functions_and_fetches_never_redirect() {
    let fapi = frontend_api("user_hs7").await;
    let app = app_with_fapi(&fapi, vec![]).await;
    let cookies = format!("__session={}; __client_uat=1; {DEV}", expired("user_hs7"));
    let me = app
        .client
        .get(app.url("/api/me"))
        .header("sec-fetch-dest", "document")
        .header("cookie", &cookies)
        .send()
        .await
        .unwrap();
    assert_eq!(me.status(), 401);
    // A fetch of a page (Sec-Fetch-Dest: empty), a POST, and a request with no hint at all.
    let fetch = app
        .client
        .get(app.url("/dashboard"))
        .header("sec-fetch-dest", "empty")
        .header("accept", "text/html")
        .header("cookie", &cookies)
        .send()
        .await
        .unwrap();
    assert_eq!(fetch.status(), 200);
    let plain = app
        .client
        .get(app.url("/dashboard"))
        .header("cookie", &cookies)
        .send()
        .await
        .unwrap();
    assert_eq!(plain.status(), 200);
    let bearer = app
        .client
        .get(app.url("/dashboard"))
        .header("sec-fetch-dest", "document")
        .bearer_auth(expired("user_hs7"))
        .send()
        .await
        .unwrap();
    assert_ne!(
        bearer.status(),
        307,
        "a header token is the caller's to refresh"
    );
}

#[tokio::test]
async fn demo_mode_hands_a_stale_session_to_its_own_issuer_and_back() {
    let app = spawn_with(Options {
        demo: true,
        ..Default::default()
    })
    .await;
    let cookies = demo_sign_in(&app, "hana").await;
    assert!(
        cookies.iter().any(|c| c.starts_with("__client_uat=")),
        "{cookies:?}"
    );
    // The session cookie is gone (expired in the browser); the client is still signed in.
    let jar: Vec<String> = cookies
        .iter()
        .filter(|c| !c.starts_with("__session="))
        .cloned()
        .collect();
    let jar = jar.join("; ");
    let r = navigate(&app, "/dashboard", &jar).await;
    assert_eq!(r.status(), 307);
    let to = location(&r);
    assert!(
        to.starts_with(&format!("{APP_URL}/demo/v1/client/handshake?")),
        "{to}"
    );
    assert_eq!(
        query(&to)["__clerk_hs_reason"],
        "client-uat-but-no-session-token"
    );
    let issuer = navigate(&app, &to, &jar).await;
    assert_eq!(issuer.status(), 307);
    let back = location(&issuer);
    assert!(back.starts_with(&format!("{APP_URL}/dashboard?__clerk_handshake=")));
    let resolved = navigate(&app, &back, &jar).await;
    assert_eq!(location(&resolved), format!("{APP_URL}/dashboard"));
    let set = set_cookies(&resolved);
    let fresh = set.iter().find(|c| c.starts_with("__session=ey")).unwrap();
    let page = navigate(&app, "/dashboard", &format!("{jar}; {fresh}")).await;
    assert_eq!(page.status(), 200);
    assert!(page.text().await.unwrap().contains("user_demo_hana"));

    // The issuer sends nobody anywhere but this app.
    let away = navigate(
        &app,
        "/demo/v1/client/handshake?redirect_url=https%3A%2F%2Fevil.example%2F",
        &jar,
    )
    .await;
    assert_eq!(away.status(), 400);
    let lookalike = navigate(
        &app,
        &format!(
            "/demo/v1/client/handshake?redirect_url={}",
            urlencode(&format!("{APP_URL}.evil.example/"))
        ),
        &jar,
    )
    .await;
    assert_eq!(lookalike.status(), 400);
}
