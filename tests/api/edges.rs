//! Edges that hold under hostile traffic, second round (README, "Security model"): redirects
//! stay home, slow clients cannot hold the server, nothing personal is cacheable, the origin
//! check trusts no `Host`, handshake cookies are Clerk's only, a reconcile answer that cannot be
//! read ends nobody, a canceled unpaid period grants nothing, and demo users see their own mail.

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

use crate::helpers::*;

/// Sends `raw` as it is (no client normalises the request line) and reads what comes back
/// until the server closes or `wait` passes.
async fn raw(app: &TestApp, raw: &[u8], wait: Duration) -> String {
    let mut s = TcpStream::connect(app.addr).await.unwrap();
    s.write_all(raw).await.unwrap();
    let mut out = Vec::new();
    let _ = tokio::time::timeout(wait, s.read_to_end(&mut out)).await;
    String::from_utf8_lossy(&out).to_string()
}

fn header_of(response: &str, name: &str) -> Option<String> {
    response.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.eq_ignore_ascii_case(name).then(|| v.trim().to_string())
    })
}

/// A document navigation with these cookies, whose request target is sent byte for byte.
async fn navigate_raw(app: &TestApp, target: &str, cookies: &str) -> String {
    let req = format!(
        "GET {target} HTTP/1.1\r\nHost: {}\r\nSec-Fetch-Dest: document\r\nAccept: text/html\r\n\
         Cookie: {cookies}\r\nConnection: close\r\n\r\n",
        app.addr
    );
    raw(app, req.as_bytes(), Duration::from_secs(10)).await
}

/// Every `Location` the handshake builds from the request's path stays on `APP_URL`, whatever
/// the path's leading slashes and backslashes say.
fn assert_home(response: &str, what: &str) {
    assert!(response.starts_with("HTTP/1.1 307"), "{what}: {response}");
    let location = header_of(response, "location").unwrap_or_default();
    assert!(
        location.starts_with(&format!("{APP_URL}/")),
        "{what}: Location {location}"
    );
    let url = reqwest::Url::parse(&location).unwrap();
    assert_eq!(url.host_str(), Some("localhost"), "{what}: {location}");
}

#[tokio::test]
async fn redirects_built_from_the_request_path_stay_on_the_apps_origin() {
    let app = spawn_with(Options {
        extra: vec![("CLERK_FRONTEND_API_URL", "http://127.0.0.1:9".into())],
        ..Default::default()
    })
    .await;
    let t = now();
    let session = sign_token(&keys().0, &claims("user_r1"));
    let handshake = sign_token(
        &keys().0,
        &json!({"handshake": [format!("__session={session}; Path=/"), format!("__client_uat={t}; Path=/")],
            "iat": t, "exp": t + 60}),
    );
    for lead in ["//", "/\\", "/\\/", "///", "/\\\\"] {
        let evil = format!("{lead}evil.example/login");
        // The dev-browser value moves into the cookie by a redirect to the same path.
        let r = navigate_raw(&app, &format!("{evil}?__clerk_db_jwt=abc.def"), "").await;
        assert_home(&r, &format!("dev browser {evil}"));
        // Back from the handshake.
        let r = navigate_raw(&app, &format!("{evil}?__clerk_handshake={handshake}"), DEV).await;
        assert_home(&r, &format!("handshake return {evil}"));
        // The handshake's own redirect_url names the app, not the path's host.
        let r = navigate_raw(&app, &evil, &format!("__client_uat={t}; {DEV}")).await;
        assert!(r.starts_with("HTTP/1.1 307"), "{r}");
        let to = reqwest::Url::parse(&header_of(&r, "location").unwrap()).unwrap();
        let back = to
            .query_pairs()
            .find(|(k, _)| k == "redirect_url")
            .unwrap()
            .1
            .to_string();
        assert!(back.starts_with(&format!("{APP_URL}/")), "{back}");
        assert_eq!(
            reqwest::Url::parse(&back).unwrap().host_str(),
            Some("localhost")
        );
    }

    // Demo mode: its issuer's handshake, and the return to the app.
    let demo = spawn_with(Options {
        demo: true,
        ..Default::default()
    })
    .await;
    let cookie = demo_sign_in(&demo, "rita").await.join("; ");
    for lead in ["//", "/\\"] {
        let evil = format!("{lead}evil.example/x");
        let r = navigate_raw(
            &demo,
            &format!(
                "/demo/v1/client/handshake?redirect_url={}",
                urlencode(&format!("{APP_URL}{evil}"))
            ),
            &cookie,
        )
        .await;
        assert_home(&r, &format!("demo issuer {evil}"));
        let back = header_of(&r, "location").unwrap();
        let token = reqwest::Url::parse(&back)
            .unwrap()
            .query_pairs()
            .find(|(k, _)| k == "__clerk_handshake")
            .unwrap()
            .1
            .to_string();
        let r = navigate_raw(&demo, &format!("{evil}?__clerk_handshake={token}"), "").await;
        assert_home(&r, &format!("demo return {evil}"));
    }
}

#[tokio::test]
async fn a_request_head_sent_a_byte_at_a_time_is_cut_off() {
    let app = spawn_app().await;
    let mut s = TcpStream::connect(app.addr).await.unwrap();
    s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    let started = Instant::now();
    let mut buf = [0u8; 256];
    let mut closed = false;
    // One byte every two seconds, for up to 40 s: the server must close well before.
    for _ in 0..20 {
        if s.write_all(b"X").await.is_err() {
            closed = true;
            break;
        }
        match tokio::time::timeout(Duration::from_secs(2), s.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => {
                closed = true;
                break;
            }
            Ok(Ok(_)) => {
                closed = true; // an error status, then the close
                break;
            }
            Err(_) => {}
        }
    }
    assert!(closed, "the half-sent head held the connection for 40 s");
    assert!(started.elapsed() < Duration::from_secs(30));
}

#[tokio::test]
async fn a_webhook_body_trickled_one_byte_at_a_time_is_refused() {
    let app = spawn_app().await;
    let mut s = TcpStream::connect(app.addr).await.unwrap();
    s.write_all(
        b"POST /api/webhooks/clerk HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
          Content-Length: 200\r\n\r\n{",
    )
    .await
    .unwrap();
    let mut out = Vec::new();
    let mut buf = [0u8; 1024];
    // A byte every 3 s for up to 60 s (the whole body would take 10 minutes).
    for _ in 0..20 {
        if s.write_all(b" ").await.is_err() {
            break;
        }
        match tokio::time::timeout(Duration::from_secs(3), s.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => break,
            Ok(Ok(n)) => {
                out.extend_from_slice(&buf[..n]);
                break;
            }
            Err(_) => {}
        }
    }
    // The rest of the answer, if it came in pieces.
    while let Ok(Ok(n)) = tokio::time::timeout(Duration::from_secs(2), s.read(&mut buf)).await {
        if n == 0 {
            break;
        }
        out.extend_from_slice(&buf[..n]);
    }
    let text = String::from_utf8_lossy(&out);
    assert!(
        text.starts_with("HTTP/1.1 408"),
        "the trickled body was not cut off with 408 within 60 s: {text:?}"
    );
    assert!(
        text.contains(r#"{"error":{"code":"timeout","#),
        "an /api/ refusal is JSON: {text:?}"
    );
}

/// Every `/api/…` refusal is `{"error":{"code","message"}}`, whoever wrote it: the router's
/// 405 and unknown path, the body limit's 413.
#[tokio::test]
async fn every_api_refusal_is_json() {
    let app = spawn_app().await;
    let token = sign_token(&keys().0, &claims("user_json"));
    let cases: Vec<(reqwest::RequestBuilder, u16, &str)> = vec![
        (
            app.client
                .delete(app.url("/api/premium-feature"))
                .bearer_auth(&token),
            405,
            "method_not_allowed",
        ),
        (
            app.client.put(app.url("/api/me")),
            405,
            "method_not_allowed",
        ),
        (
            app.client.get(app.url("/api/webhooks/clerk")),
            405,
            "method_not_allowed",
        ),
        (
            app.client.delete(app.url("/api/no-such-thing")),
            405,
            "method_not_allowed",
        ),
        (
            app.client.get(app.url("/api/no-such-thing")),
            404,
            "not_found",
        ),
        (app.client.get(app.url("/api/")), 404, "not_found"),
        (
            app.client
                .post(app.url("/api/webhooks/clerk"))
                .header("content-type", "application/json")
                .body(vec![b' '; 300 * 1024]),
            413,
            "too_large",
        ),
    ];
    for (request, status, code) in cases {
        let r = request.send().await.unwrap();
        let what = format!("{} {}", r.status(), r.url());
        assert_eq!(r.status().as_u16(), status, "{what}");
        assert!(
            r.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("application/json"),
            "{what}"
        );
        let body: Value = r.json().await.unwrap_or_else(|e| panic!("{what}: {e}"));
        assert_eq!(body["error"]["code"], code, "{what}: {body}");
        assert!(
            body["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty()),
            "{what}"
        );
    }
}

#[tokio::test]
async fn an_idle_kept_alive_connection_is_closed() {
    let app = spawn_app().await;
    let mut s = TcpStream::connect(app.addr).await.unwrap();
    s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut buf = vec![0u8; 4096];
    let n = s.read(&mut buf).await.unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
    // Then nothing: the server closes the connection within the idle limit (75 s).
    let closed = tokio::time::timeout(Duration::from_secs(80), async {
        loop {
            match s.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await;
    assert!(closed.is_ok(), "an idle connection stayed open past 80 s");
}

/// Idle sockets from one client cannot use up the descriptors: the server raises its soft
/// open-file limit to the hard one at start (here it starts with a soft limit of 1024).
#[tokio::test]
async fn a_thousand_idle_sockets_do_not_lock_others_out() {
    let hard = rlimit_hard();
    if hard < 4096 {
        eprintln!("hard open-file limit {hard} < 4096: nothing to raise; not checked here");
        return;
    }
    let dir = TempDir::new("plangate-fd-");
    let db = format!("sqlite://{}/fd.db", dir.display());
    let launcher = [
        "prlimit".to_string(),
        format!("--nofile=1024:{hard}"),
        "--".into(),
    ];
    let (mut child, base) = serve_process(&db, &dir, &launcher, false, &[]).await;
    let port: u16 = base.rsplit(':').next().unwrap().parse().unwrap();
    let mut idle = Vec::new();
    for _ in 0..1100 {
        idle.push(
            TcpStream::connect(("127.0.0.1", port))
                .await
                .expect("connect"),
        );
    }
    // The accepts have happened (or failed) by now; a fresh client still gets an answer.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let fresh = reqwest::Client::builder()
        .timeout(Duration::from_secs(3))
        .build()
        .unwrap();
    let health = fresh.get(format!("{base}/healthz")).send().await;
    assert!(
        health.as_ref().is_ok_and(|r| r.status() == 200),
        "/healthz beside 1,100 idle sockets: {health:?}"
    );
    drop(idle);
    child.kill().await.ok();
}

fn rlimit_hard() -> u64 {
    std::fs::read_to_string("/proc/self/limits")
        .ok()
        .and_then(|l| {
            l.lines()
                .find(|l| l.starts_with("Max open files"))
                .and_then(|l| l.split_whitespace().nth(4).map(str::to_string))
        })
        .and_then(|h| h.parse().ok())
        .unwrap_or(0)
}

#[tokio::test]
async fn nothing_rendered_for_a_session_is_cacheable_and_pages_vary_on_cookie() {
    let app = spawn_app().await;
    let token = sign_token(&keys().0, &claims("user_cc1"));
    let cc = |r: &reqwest::Response| {
        r.headers()
            .get("cache-control")
            .map(|v| v.to_str().unwrap().to_string())
            .unwrap_or_default()
    };
    let vary = |r: &reqwest::Response| {
        r.headers()
            .get_all("vary")
            .iter()
            .map(|v| v.to_str().unwrap().to_ascii_lowercase())
            .collect::<Vec<_>>()
            .join(",")
    };
    for path in ["/dashboard", "/dashboard/payment-gated", "/", "/pricing"] {
        let r = app
            .client
            .get(app.url(path))
            .header(
                "cookie",
                format!("__session={token}; __client_uat={}; {DEV}", now() - 5),
            )
            .header("accept", "text/html")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{path}");
        assert_eq!(cc(&r), "private, no-store", "{path} signed in");
        assert!(vary(&r).contains("cookie"), "{path}: Vary {}", vary(&r));
        let body = r.text().await.unwrap();
        assert!(
            !path.starts_with("/dashboard") || body.contains("user_cc1"),
            "{path} rendered for the session"
        );
    }
    for path in ["/api/me", "/api/premium-feature"] {
        let r = app.get_with_token(path, &token).await;
        assert_eq!(cc(&r), "private, no-store", "{path} with a Bearer token");
        let r = app
            .client
            .get(app.url(path))
            .header("cookie", format!("__session={token}"))
            .send()
            .await
            .unwrap();
        assert_eq!(cc(&r), "private, no-store", "{path} with the cookie");
    }
    // A handshake answer (a stale session goes through the Frontend API).
    let stale = expired("user_cc1");
    let r = app
        .client
        .get(app.url("/dashboard"))
        .header(
            "cookie",
            format!("__session={stale}; __client_uat={}; {DEV}", now() - 600),
        )
        .header("sec-fetch-dest", "document")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 307);
    assert_eq!(cc(&r), "private, no-store", "the handshake redirect");
    // Only the signed-out render may be shared; it still varies on Cookie.
    let r = app.client.get(app.url("/pricing")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(!cc(&r).contains("no-store"), "{}", cc(&r));
    assert!(vary(&r).contains("cookie"));
}

async fn post_sign_in(app: &TestApp, headers: &[(&str, &str)]) -> reqwest::Response {
    let mut req = app
        .client
        .post(app.url("/demo/sign-in"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("name=ori");
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    req.send().await.unwrap()
}

#[tokio::test]
async fn the_origin_must_be_app_urls_origin_whatever_the_host_header_says() {
    let app = spawn_with(Options {
        demo: true,
        ..Default::default()
    })
    .await;
    for (origin, host) in [
        ("http://rebind.example", "rebind.example"),
        ("https://localhost:3000", "localhost:3000"),
        ("http://localhost:3001", "localhost:3001"),
        ("http://127.0.0.1:3000", "127.0.0.1:3000"),
        ("null", "localhost:3000"),
        ("", "localhost:3000"),
    ] {
        let r = post_sign_in(&app, &[("origin", origin), ("host", host)]).await;
        assert_eq!(r.status(), 403, "Origin {origin:?} with Host {host}");
        assert!(r.headers().get("set-cookie").is_none());
    }
    let r = post_sign_in(&app, &[("origin", APP_URL)]).await;
    assert_eq!(r.status(), 303, "the app's own origin");
}

/// A handshake token the instance signed, setting `cookies`.
fn handshake_setting(cookies: &[String]) -> String {
    let t = now();
    sign_token(
        &keys().0,
        &json!({"handshake": cookies, "iat": t, "exp": t + 60}),
    )
}

#[tokio::test]
async fn a_handshake_sets_only_clerks_cookies_for_this_host() {
    let app = spawn_app().await;
    let t = now();
    let session = sign_token(&keys().0, &claims("user_hc1"));
    let listed = vec![
        format!("__session={session}; Path=/; SameSite=Lax"),
        format!("__client_uat={t}; Path=/; Domain=localhost"),
        format!("__client_uat_Ab3-x_9z={t}; Path=/"),
        "__refresh=r1; Path=/; HttpOnly".to_string(),
        "tracking=1; Max-Age=315360000".to_string(),
        format!("__session_x={session}; Domain=evil.example"),
        format!("__session={session}; Domain=.evil.example"),
        format!("__client_uat={t}; Domain=calhost"),
        format!("__client_uat={t}; Domain=localhost.evil.example"),
        "__sessionx=1; Path=/".to_string(),
        "__session_=1; Path=/".to_string(),
        "__clerk_redirect_count=0; Path=/".to_string(),
        "__Host-x=1; Path=/; Secure".to_string(),
    ];
    let token = handshake_setting(&listed);
    let r = app
        .client
        .get(app.url(&format!("/dashboard?__clerk_handshake={token}")))
        .header("cookie", DEV)
        .header("sec-fetch-dest", "document")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 307);
    let set: Vec<String> = r
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .collect();
    assert_eq!(
        set,
        listed[..4].to_vec(),
        "only Clerk's cookies for this host"
    );
}

#[tokio::test]
async fn a_rejected_handshake_cookie_is_cleared_and_the_session_beside_it_decides() {
    let app = spawn_app().await;
    let t = now();
    let session = sign_token(&keys().0, &claims("user_hc2"));
    let forged = sign_token(
        &keys().1,
        &json!({"handshake": ["__session=x; Path=/"], "iat": t, "exp": t + 60}),
    );
    let r = app
        .client
        .get(app.url("/dashboard"))
        .header(
            "cookie",
            format!("__clerk_handshake={forged}; __session={session}; __client_uat={t}; {DEV}"),
        )
        .header("sec-fetch-dest", "document")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let set = set_cookies(&r);
    assert!(
        set.contains(&"__clerk_handshake=".to_string()),
        "the rejected cookie is cleared: {set:?}"
    );
    assert!(
        r.text().await.unwrap().contains("user_hc2"),
        "the valid session beside it is signed in"
    );
}

#[tokio::test]
async fn an_unreadable_backend_api_answer_ends_nobody_and_an_inferred_end_is_overridden() {
    let api = backend_api().await;
    let app = app_with_api(&api, vec![("METRICS_ADDR", "127.0.0.1:0".into())]).await;
    let t = now() * 1000 - 60_000;
    deliver_item(&app, "csub_item_m1", "user_m1", "pro", t).await;
    assert_eq!(premium_status(&app, "user_m1").await, 200);
    let reconciler = app.state.reconciler().unwrap();
    let user = &plangate::billing::Payer::user("user_m1");

    for answer in [
        json!({"object": "commerce_subscription"}),
        json!({"object": "commerce_subscription", "subscription_items": null}),
        json!({"object": "commerce_subscription", "subscription_items": "oops"}),
        json!({"object": "commerce_subscription", "subscription_items": [{"status": "active"}]}),
        json!({"subscription_items": [{"id": ""}]}),
        json!([]),
        json!("<html>proxy error</html>"),
    ] {
        api.subscriptions
            .lock()
            .unwrap()
            .insert("user_m1".into(), answer.clone());
        let result = reconciler.payer(user).await;
        assert!(result.is_err(), "{answer} read as {result:?}");
        assert_eq!(
            premium_status(&app, "user_m1").await,
            200,
            "{answer} ended the payer"
        );
    }
    let (code, out, _) = app.command(&["reconcile", "--user", "user_m1"], &[]).await;
    assert_eq!(code, 1, "the command fails: {out}");
    let metrics = app.metrics().await;
    assert!(
        metrics.contains("plangate_reconcile_runs_total{result=\"error\"}"),
        "counted"
    );

    // Clerk says "no subscription" (404): the item is inferred ended ...
    api.subscriptions.lock().unwrap().clear();
    reconciler.payer(user).await.unwrap();
    assert_eq!(premium_status(&app, "user_m1").await, 403);
    // ... and when Clerk lists it again, active as of its old updated_at, Clerk wins.
    api.subscriptions.lock().unwrap().insert(
        "user_m1".into(),
        json!({"object": "commerce_subscription", "subscription_items": [
            api_item("csub_item_m1", "user_m1", "pro", "active", t)
        ]}),
    );
    let report = reconciler.payer(user).await.unwrap();
    assert_eq!(report.corrected.len(), 1, "{report:?}");
    assert_eq!(
        premium_status(&app, "user_m1").await,
        200,
        "the inference was overridden"
    );
    // A real, older webhook does not override an inference.
    api.subscriptions.lock().unwrap().clear();
    reconciler.payer(user).await.unwrap();
    let old = item_event(
        "subscriptionItem.active",
        "active",
        "csub_item_m1",
        "user_m1",
        t - 1,
    );
    app.deliver(&msg_id(), &old).await;
    assert_eq!(premium_status(&app, "user_m1").await, 403);
}

#[tokio::test]
async fn canceling_a_period_that_was_never_paid_grants_nothing() {
    let app = spawn_app().await;
    let t = now() * 1000 - 600_000;
    let deliver = |kind: &'static str, status: &'static str, item: &'static str, at: i64| {
        let mut ev = item_event(kind, status, item, "user_u1", at);
        // One period for the whole story, a year long.
        ev["data"]["period_start"] = json!(t - 1000);
        ev["data"]["period_end"] = json!(t + 365 * 86_400_000);
        let app = &app;
        async move {
            assert_eq!(app.deliver(&msg_id(), &ev).await.status(), 200);
        }
    };
    deliver("subscriptionItem.active", "active", "csub_item_u1", t).await;
    assert_eq!(premium_status(&app, "user_u1").await, 200);
    deliver(
        "subscriptionItem.pastDue",
        "past_due",
        "csub_item_u1",
        t + 1000,
    )
    .await;
    assert_eq!(
        premium_status(&app, "user_u1").await,
        403,
        "past due, no grace"
    );
    deliver(
        "subscriptionItem.canceled",
        "canceled",
        "csub_item_u1",
        t + 2000,
    )
    .await;
    assert_eq!(
        premium_status(&app, "user_u1").await,
        403,
        "canceling the unpaid period"
    );

    // Out of order: the cancellation first, the failure late (stale, still evidence).
    deliver("subscriptionItem.active", "active", "csub_item_u2", t).await;
    deliver(
        "subscriptionItem.canceled",
        "canceled",
        "csub_item_u2",
        t + 2000,
    )
    .await;
    deliver(
        "subscriptionItem.pastDue",
        "past_due",
        "csub_item_u2",
        t + 1000,
    )
    .await;
    assert_eq!(
        premium_status(&app, "user_u1").await,
        403,
        "whatever the order"
    );

    // A period that was paid after its failure runs to its end when canceled.
    let app2 = spawn_app().await;
    for (kind, status, at) in [
        ("subscriptionItem.active", "active", t),
        ("subscriptionItem.pastDue", "past_due", t + 1000),
        ("subscriptionItem.active", "active", t + 2000),
        ("subscriptionItem.canceled", "canceled", t + 3000),
    ] {
        let mut ev = item_event(kind, status, "csub_item_u3", "user_u3", at);
        ev["data"]["period_end"] = json!(t + 365 * 86_400_000);
        assert_eq!(app2.deliver(&msg_id(), &ev).await.status(), 200);
    }
    assert_eq!(
        premium_status(&app2, "user_u3").await,
        200,
        "paid, canceled in period"
    );
}

#[tokio::test]
async fn a_checkout_return_spends_only_a_share_of_the_budget_and_only_for_unpaid_payers() {
    let api = backend_api().await;
    let app = app_with_api(&api, vec![("METRICS_ADDR", "127.0.0.1:0".into())]).await;
    let page = |user: String| {
        let (client, url) = (
            app.client.clone(),
            app.url("/dashboard?checkout=1&waited=1"),
        );
        let token = sign_token(&keys().0, &claims(&user));
        async move {
            client
                .get(url)
                .header(
                    "cookie",
                    format!("__session={token}; __client_uat={}; {DEV}", now() - 5),
                )
                .header("accept", "text/html")
                .send()
                .await
                .unwrap()
                .status()
        }
    };
    // A payer already paid here: a plain GET never calls Clerk.
    let t = now() * 1000 - 60_000;
    deliver_item(&app, "csub_item_b1", "user_b_paid", "pro", t).await;
    assert_eq!(page("user_b_paid".into()).await, 200);
    assert!(api.paths().is_empty(), "{:?}", api.paths());

    // Many free accounts at once: a tenth of the development budget (10 per 10 s).
    let started = Instant::now();
    let mut calls = Vec::new();
    for i in 0..40 {
        calls.push(page(format!("user_b{i}")));
    }
    for c in futures::future::join_all(calls).await {
        assert_eq!(c, 200);
    }
    let elapsed = started.elapsed().as_secs_f64();
    let allowed = 1 + (elapsed * 0.9).ceil() as usize;
    let made = api.paths().len();
    assert!(
        made <= allowed,
        "{made} Backend API calls in {elapsed:.1} s (share: {allowed})"
    );
    assert!(made >= 1, "a checkout return still reconciles");
}

#[tokio::test]
async fn a_demo_user_sees_only_their_own_mail_and_deliveries() {
    let app = spawn_with(Options {
        demo: true,
        ..Default::default()
    })
    .await;
    let alice = demo_sign_in(&app, "alice").await.join("; ");
    let bob = demo_sign_in(&app, "bob").await.join("; ");
    let act = |cookie: &str, form: &'static [(&'static str, &'static str)]| {
        let req = app
            .client
            .post(app.url("/demo/action"))
            .header("origin", APP_URL)
            .header("cookie", cookie.to_string())
            .form(form);
        async move { req.send().await.unwrap().status() }
    };
    assert_eq!(
        act(
            &alice,
            &[
                ("action", "subscribe"),
                ("plan", "pro"),
                ("period", "month")
            ]
        )
        .await,
        303
    );
    assert_eq!(act(&alice, &[("action", "fail_payment")]).await, 303);
    // A dead letter about alice.
    let secret = std::fs::read_to_string(app.data_dir.join("demo-webhook-secret")).unwrap();
    let dead = msg_id();
    let resp = app
        .deliver_signed(
            &dead,
            now(),
            &json!({"type": "subscriptionItem.active",
                    "data": {"id": "csub_item_d1", "payer": {"user_id": "user_demo_alice"}}})
            .to_string(),
            secret.trim(),
        )
        .await;
    assert_eq!(resp.status(), 422);

    let get = |path: &'static str, cookie: Option<&str>| {
        let mut req = app.client.get(app.url(path));
        if let Some(c) = cookie {
            req = req.header("cookie", c.to_string());
        }
        async move { req.send().await.unwrap().text().await.unwrap() }
    };
    let mut mine = String::new();
    for _ in 0..100 {
        mine = get("/demo/mailbox", Some(&alice)).await;
        if mine.contains("Payment failed") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(mine.contains("Payment failed"), "alice reads her mail");
    assert!(mine.contains("alice@demo.plangate.test"));
    let theirs = get("/demo/mailbox", Some(&bob)).await;
    assert!(
        !theirs.contains("Payment failed"),
        "bob does not read alice's mail"
    );
    assert!(!theirs.contains("alice@"));
    let nobody = get("/demo/mailbox", None).await;
    assert!(!nobody.contains("Payment failed") && !nobody.contains("alice@"));

    let events = get("/demo/events", Some(&alice)).await;
    assert!(events.contains(&dead), "alice sees her dead letter");
    let events = get("/demo/events", Some(&bob)).await;
    assert!(!events.contains(&dead), "bob does not");
    assert!(
        !events.contains("paymentAttempt") && !events.contains("subscriptionItem"),
        "nor alice's deliveries"
    );
    let replay = app
        .client
        .post(app.url("/demo/replay"))
        .header("origin", APP_URL)
        .header("cookie", bob.clone())
        .form(&[("svix_id", dead.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(replay.status(), 404, "bob cannot replay alice's delivery");
}

#[tokio::test]
async fn a_blocked_address_still_serves_a_session_verified_before_the_block() {
    let app = spawn_with(Options {
        extra: vec![("RATE_LIMIT_PER_MINUTE", "4".into())],
        ..Default::default()
    })
    .await;
    let known = sign_token(&keys().0, &claims("user_nat1"));
    assert_eq!(app.get_with_token("/api/me", &known).await.status(), 200);
    // A neighbour behind the same address forges tokens until the address is blocked.
    let forged = sign_token(&keys().1, &claims("user_forger"));
    let mut blocked = false;
    for _ in 0..10 {
        if app.get_with_token("/api/me", &forged).await.status() == 429 {
            blocked = true;
            break;
        }
    }
    assert!(blocked);
    let r = app.get_with_token("/api/me", &known).await;
    assert_eq!(r.status(), 200, "a session verified before costs nothing");
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["user_id"], "user_nat1");
    // A token this server never verified still waits out the block.
    let fresh = sign_token(&keys().0, &claims("user_nat2"));
    assert_eq!(app.get_with_token("/api/me", &fresh).await.status(), 429);
    assert_eq!(app.get_with_token("/api/me", &forged).await.status(), 429);
}
