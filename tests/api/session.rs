//! The session is decided once per request (README, "Layout"): the request guard finds and
//! verifies the token and records an `auth::Caller`; the handshake edge, the page cache, the
//! extractors and the server functions read it. Counted with the verifier's own counter.

use serde_json::json;

use crate::helpers::*;

#[tokio::test]
async fn each_request_verifies_its_token_at_most_once() {
    let app = spawn_app().await;
    let token = sign_token(&keys().0, &with(claims("user_once"), "pla", json!("u:pro")));
    let count = || app.state.sessions().verifications();
    let page_cookie = format!("__session={token}; __client_uat={}; {DEV}", now() - 5);

    // A page navigation (the handshake edge decides on the cookie, the page renders signed in,
    // its server functions run during the render).
    for path in ["/dashboard", "/dashboard/payment-gated", "/pricing", "/"] {
        let before = count();
        let r = app
            .client
            .get(app.url(path))
            .header("cookie", &page_cookie)
            .header("sec-fetch-dest", "document")
            .header("accept", "text/html")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{path}");
        let body = r.text().await.unwrap();
        assert_eq!(
            count() - before,
            1,
            "{path} verified its token more than once"
        );
        if path.starts_with("/dashboard") {
            assert!(body.contains("user_once"), "{path} signed in");
        }
    }
    // The JSON API, with a Bearer token and with the cookie.
    for path in ["/api/me", "/api/premium-feature"] {
        let before = count();
        assert_eq!(
            app.get_with_token(path, &token).await.status(),
            200,
            "{path}"
        );
        assert_eq!(count() - before, 1, "{path}");
    }
    // A server function called by the hydrated page.
    let before = count();
    let r = app
        .client
        .post(
            app.url(<plangate::pages::dashboard::GetAccount as leptos::server_fn::ServerFn>::PATH),
        )
        .header("cookie", format!("__session={token}"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("reconcile=false")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    assert_eq!(count() - before, 1, "a server function");
    // A forged token: verified once, rejected; no token: never verified.
    let forged = sign_token(&keys().1, &claims("user_once"));
    let before = count();
    assert_eq!(app.get_with_token("/api/me", &forged).await.status(), 401);
    assert_eq!(count() - before, 1);
    let before = count();
    let r = app.client.get(app.url("/pricing")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(count(), before, "no token, nothing to verify");
}
