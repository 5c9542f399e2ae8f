//! API keys (README, "API keys"): `Authorization: Bearer ak_…`, verified by Clerk's Backend API,
//! open and meter the key owner's plan exactly as a session does (user and organization), are
//! remembered at most 10 s per instance (one verification per key, also under 50 concurrent
//! calls; a revoked key stops within the bound), are `401` when unknown and `503` when the
//! Backend API cannot say, never come from a cookie; machine tokens are refused (template and
//! machine JWTs: `auth.rs`).

use std::sync::atomic::Ordering;

use serde_json::{json, Value};

use crate::helpers::*;

async fn keyed_app(api: &BackendApi, clock: Option<plangate::startup::Clock>) -> TestApp {
    spawn_with(Options {
        extra: vec![
            ("CLERK_SECRET_KEY", SECRET_KEY.to_string()),
            ("CLERK_API_URL", api.url.clone()),
            ("RECONCILE_INTERVAL_SECS", "0".to_string()),
        ],
        clock,
        ..Default::default()
    })
    .await
}

async fn get_bearer(
    app: &TestApp,
    path: &str,
    bearer: &str,
) -> (u16, reqwest::header::HeaderMap, Value) {
    let r = app.get_with_token(path, bearer).await;
    let (status, headers) = (r.status().as_u16(), r.headers().clone());
    (status, headers, r.json().await.unwrap_or(Value::Null))
}

fn remaining(h: &reqwest::header::HeaderMap) -> i64 {
    h["ratelimit-remaining"].to_str().unwrap().parse().unwrap()
}

#[tokio::test]
async fn a_key_opens_and_meters_its_owners_plan_as_a_session_does() {
    let api = backend_api().await;
    let app = keyed_app(&api, None).await;
    let t = now() * 1000 - 60_000;
    deliver_item(&app, "csub_item_k1", "user_k1", "pro", t).await;
    api.add_api_key("ak_user_k1_secret", "user_k1");

    let (status, h, body) = get_bearer(&app, "/api/premium-feature", "ak_user_k1_secret").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["plan"], "pro");
    let first = remaining(&h);
    // The owner's session spends from the same counter, and the key again after it.
    let r = app
        .get_with_token("/api/premium-feature", &token_of("user_k1"))
        .await;
    assert_eq!(remaining(r.headers()), first - 1);
    let (_, h, _) = get_bearer(&app, "/api/premium-feature", "ak_user_k1_secret").await;
    assert_eq!(remaining(&h), first - 2);
    let (_, _, usage) = get_bearer(&app, "/api/usage", "ak_user_k1_secret").await;
    assert_eq!(usage["payer"], "user:user_k1");
    assert_eq!(usage["features"]["premium_api"]["used"], 3);

    // An organization's key: the organization's plan, the organization's counter.
    let mut ev = item_event(
        "subscriptionItem.active",
        "active",
        "csub_item_k2",
        "user_k2",
        t,
    );
    ev["data"]["plan"]["slug"] = json!("team");
    ev["data"]["payer"]["organization_id"] = json!("org_k2");
    assert_eq!(app.deliver(&msg_id(), &ev).await.status(), 200);
    api.add_api_key("ak_org_k2_secret", "org_k2");
    let (status, h, body) = get_bearer(&app, "/api/premium-feature", "ak_org_k2_secret").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["plan"], "team");
    assert_eq!(h["ratelimit-limit"], "50000");
    let (_, _, usage) = get_bearer(&app, "/api/usage", "ak_org_k2_secret").await;
    assert_eq!(usage["payer"], "org:org_k2");
    assert_eq!(usage["features"]["premium_api"]["used"], 1);
    let (_, _, me) = get_bearer(&app, "/api/me", "ak_org_k2_secret").await;
    assert_eq!(
        (me["user_id"].clone(), me["org_id"].clone()),
        (Value::Null, json!("org_k2"))
    );

    // The owner without a plan: the key verifies, the gate stays shut.
    api.add_api_key("ak_user_k3_secret", "user_k3");
    let (status, _, body) = get_bearer(&app, "/api/premium-feature", "ak_user_k3_secret").await;
    assert_eq!(status, 403, "{body}");
    // A key is not a session: routes for a person refuse it.
    let r = app
        .client
        .post(app.url("/demo/action"))
        .bearer_auth("ak_user_k1_secret")
        .send()
        .await
        .unwrap();
    assert_ne!(r.status(), 200);
}

#[tokio::test]
async fn fifty_concurrent_calls_of_one_key_ask_the_backend_api_once() {
    let api = backend_api().await;
    let app = keyed_app(&api, None).await;
    deliver_item(
        &app,
        "csub_item_c1",
        "user_c1",
        "pro",
        now() * 1000 - 60_000,
    )
    .await;
    api.add_api_key("ak_concurrent_secret", "user_c1");
    // A slow Clerk, so that every call arrives while the first verification is in flight.
    api.delay_ms.store(300, Ordering::SeqCst);
    let calls = (0..50).map(|_| app.get_with_token("/api/gates/premium", "ak_concurrent_secret"));
    let answers = futures::future::join_all(calls).await;
    for r in answers {
        assert_eq!(r.status(), 200);
    }
    assert_eq!(api.key_verifications(), 1);
    // And 50 more, answered from this instance's memory.
    api.delay_ms.store(0, Ordering::SeqCst);
    let calls = (0..50).map(|_| app.get_with_token("/api/premium-feature", "ak_concurrent_secret"));
    for r in futures::future::join_all(calls).await {
        assert_eq!(r.status(), 200);
    }
    assert_eq!(api.key_verifications(), 1);
}

#[tokio::test]
async fn a_revoked_key_stops_within_ten_seconds() {
    let api = backend_api().await;
    let (clock, ahead) = movable_clock();
    let app = keyed_app(&api, Some(clock)).await;
    deliver_item(
        &app,
        "csub_item_r1",
        "user_r1",
        "pro",
        now() * 1000 - 60_000,
    )
    .await;
    api.add_api_key("ak_revoked_secret", "user_r1");
    assert_eq!(premium_status_token(&app, "ak_revoked_secret").await, 200);
    api.revoke_api_key("ak_revoked_secret");
    // Remembered for under 10 s: still served, Clerk not asked again (9 s on this clock, and
    // the test's own run time on the real one).
    ahead.store(9_000, Ordering::SeqCst);
    assert_eq!(premium_status_token(&app, "ak_revoked_secret").await, 200);
    assert_eq!(api.key_verifications(), 1);
    // At 10 s the instance asks again, and the revoked key is refused.
    ahead.store(10_000, Ordering::SeqCst);
    assert_eq!(premium_status_token(&app, "ak_revoked_secret").await, 401);
    assert_eq!(api.key_verifications(), 2);
    // The refusal is remembered as long.
    assert_eq!(premium_status_token(&app, "ak_revoked_secret").await, 401);
    assert_eq!(api.key_verifications(), 2);
}

#[tokio::test]
async fn an_unknown_key_is_401_and_an_outage_is_503_never_200() {
    let api = backend_api().await;
    let app = keyed_app(&api, None).await;
    deliver_item(
        &app,
        "csub_item_o1",
        "user_o1",
        "pro",
        now() * 1000 - 60_000,
    )
    .await;
    let (status, _, body) = get_bearer(&app, "/api/premium-feature", "ak_nobody").await;
    assert_eq!(status, 401, "{body}");
    // Known before the outage: served from memory while it lasts.
    api.add_api_key("ak_known_secret", "user_o1");
    assert_eq!(premium_status_token(&app, "ak_known_secret").await, 200);
    // Clerk down: a key this instance does not hold is 503, never 200 (and never a 401 that
    // would make a customer throw a good key away).
    api.add_api_key("ak_new_secret", "user_o1");
    for status in [500, 503, 502] {
        api.script.lock().unwrap().push_back((status, None));
        let (got, _, body) = get_bearer(&app, "/api/premium-feature", "ak_new_secret").await;
        assert_eq!(got, 503, "{body}");
        assert_eq!(body["error"]["code"], "api_keys_unavailable");
    }
    assert_eq!(premium_status_token(&app, "ak_known_secret").await, 200);
    // Back: the new key works.
    assert_eq!(premium_status_token(&app, "ak_new_secret").await, 200);

    // An unreachable Backend API is an outage too.
    let gone = keyed_app(
        &BackendApi {
            url: "http://127.0.0.1:9".into(),
            ..backend_api().await
        },
        None,
    )
    .await;
    let (status, _, _) = get_bearer(&gone, "/api/premium-feature", "ak_anything").await;
    assert_eq!(status, 503);
}

#[tokio::test]
async fn a_key_never_comes_from_a_cookie_and_machine_tokens_open_nothing() {
    let api = backend_api().await;
    let app = keyed_app(&api, None).await;
    deliver_item(
        &app,
        "csub_item_m1",
        "user_m1",
        "pro",
        now() * 1000 - 60_000,
    )
    .await;
    api.add_api_key("ak_cookie_secret", "user_m1");
    let r = app
        .client
        .get(app.url("/api/premium-feature"))
        .header("cookie", "__session=ak_cookie_secret")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    // Other spellings of a Bearer key in a cookie, and machine tokens in the header.
    for bearer in [
        "mt_m2m_secret",
        "oat_oauth_token",
        "Ak_cookie_secret",
        "ak_",
        "AK_COOKIE_SECRET",
    ] {
        assert_eq!(premium_status_token(&app, bearer).await, 401, "{bearer}");
    }
    assert_eq!(api.key_verifications(), 1, "only `ak_` went to Clerk");
    // The same key, properly sent: in.
    assert_eq!(premium_status_token(&app, "ak_cookie_secret").await, 200);
}

/// Demo mode: make a key (its secret shown once), call the API with it (metered), revoke it;
/// verified through the same request and cache as Clerk's keys.
#[tokio::test]
async fn a_demo_key_is_made_shown_once_metered_and_revoked() {
    let (clock, ahead) = movable_clock();
    let app = spawn_with(Options {
        demo: true,
        clock: Some(clock),
        ..Default::default()
    })
    .await;
    let alice = demo_sign_in(&app, "alice").await.join("; ");
    let post = |path: String, form: Vec<(&'static str, &'static str)>| {
        app.client
            .post(app.url(&path))
            .header("cookie", &alice)
            .form(&form)
            .send()
    };
    let r = post(
        "/demo/action".into(),
        vec![("action", "subscribe"), ("plan", "pro")],
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 303);
    let r = post("/demo/api-keys".into(), vec![("name", "My server")])
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let to = r.headers()["location"].to_str().unwrap().to_string();
    assert!(to.starts_with("/dashboard/api-keys?created=ak_id_"), "{to}");
    let page = |path: String| {
        let app = &app;
        let alice = alice.clone();
        async move {
            app.client
                .get(app.url(&path))
                .header("cookie", alice)
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap()
        }
    };
    let html = page(to.clone()).await;
    let at = html
        .find("data-testid=\"new-secret\">")
        .expect("the secret, once")
        + 25;
    let secret = html[at..at + html[at..].find('<').unwrap()].to_string();
    assert!(
        secret.starts_with("ak_demo_") && secret.len() > 40,
        "{secret}"
    );
    assert!(html.contains("My server"));
    // Shown once: the same page again has no secret.
    assert!(!page(to).await.contains(&secret));

    let r = app.get_with_token("/api/premium-feature", &secret).await;
    assert_eq!(r.status(), 200);
    let left: i64 = r.headers()["ratelimit-remaining"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    let r = app.get_with_token("/api/premium-feature", &secret).await;
    assert_eq!(
        r.headers()["ratelimit-remaining"]
            .to_str()
            .unwrap()
            .parse::<i64>()
            .unwrap(),
        left - 1
    );
    // Nobody else can use the verification stand-in.
    let r = app
        .client
        .post(app.url("/demo/bapi/v1/api_keys/verify"))
        .bearer_auth("sk_test_guess")
        .json(&json!({"secret": secret}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);

    // Revoke: refused once this instance's memory of the key is 10 s old.
    let id = {
        let html = page("/dashboard/api-keys".into()).await;
        let at = html.find("/demo/api-keys/").unwrap() + "/demo/api-keys/".len();
        html[at..at + html[at..].find('/').unwrap()].to_string()
    };
    let r = post(format!("/demo/api-keys/{id}/revoke"), vec![])
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    assert!(page("/dashboard/api-keys".into())
        .await
        .contains("Revoked on"));
    ahead.store(10_000, Ordering::SeqCst);
    assert_eq!(premium_status_token(&app, &secret).await, 401);
    // Another user cannot revoke (or see) alice's keys.
    let bob = demo_sign_in(&app, "bob").await.join("; ");
    let r = app
        .client
        .post(app.url(&format!("/demo/api-keys/{id}/revoke")))
        .header("cookie", &bob)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
}
