//! The payment-security promise under hostile input: card data in other spellings, event times
//! that would pin state, withdrawn keys, cross-site posts, file modes, rate limits, headers.

use std::os::unix::fs::PermissionsExt;

use serde_json::{json, Value};

use crate::helpers::*;

const DAY_MS: i64 = 86_400_000;

/// The shared item delivery with no envelope time and `updated_at` as given (any unit or
/// type a hostile sender might try), its period a month from now.
fn item_event_at(kind: &str, status: &str, item: &str, user: &str, updated_at: Value) -> Value {
    let mut v = item_event(kind, status, item, user, now() * 1000);
    v.as_object_mut().unwrap().remove("timestamp");
    v["data"]["updated_at"] = updated_at;
    v
}

async fn stored_payload(app: &TestApp, id: &str) -> String {
    let mut conn = app.db.pool.acquire().await.unwrap();
    plangate::db::inbox::payload(&mut conn, id)
        .await
        .unwrap()
        .unwrap()
}

#[tokio::test]
async fn card_numbers_in_the_reviews_spellings_and_card_fields_are_never_stored_or_mailed() {
    let app = spawn_app().await;
    let mut v = fixture("paymentAttempt.updated");
    let at = now() * 1000;
    v["timestamp"] = json!(at);
    v["data"]["status"] = json!("failed");
    v["data"]["failed_at"] = json!(at);
    v["data"]["payer"]["user_id"] = json!("user_spell");
    v["data"]["payer"]["email"] = json!("spell@example.com");
    v["data"]["subscription_items"][0]["id"] = json!("csub_item_spell");
    v["data"]["subscription_items"][0]["plan"]["slug"] = json!("pro");
    v["data"]["subscription_items"][0]["plan"]["name"] = json!("Pro 3782.822463.10005");
    v["data"]["failed_reason"] = json!({
        "message": "declined: 4242 4242 4242 4242 12/29; card 4111111111111111 123; amex 3782.822463.10005"
    });
    v["data"]["payment_source"]["cardNumber"] = json!("5555555555554444");
    v["data"]["payment_source"]["expMonth"] = json!(12);
    v["data"]["payment_source"]["Exp-Year"] = json!(2029);
    v["data"]["payment_source"]["securityCode"] = json!("737");
    v["data"]["payment_source"]["expiry"] = json!("12/29");
    let id = msg_id();
    assert_eq!(app.deliver(&id, &v).await.status(), 200);

    let stored = stored_payload(&app, &id).await;
    let digits = |s: &str| s.chars().filter(char::is_ascii_digit).collect::<String>();
    for pan in [
        "4242424242424242",
        "4111111111111111",
        "378282246310005",
        "5555555555554444",
    ] {
        assert!(!digits(&stored).contains(pan), "{pan} in {stored}");
    }
    for key in [
        "cardNumber",
        "expMonth",
        "Exp-Year",
        "securityCode",
        "expiry",
        "12/29",
    ] {
        assert!(!stored.contains(key), "{key} in {stored}");
    }
    let p: Value = serde_json::from_str(&stored).unwrap();
    assert_eq!(
        p["data"]["payment_source"]["last4"], "4242",
        "last4 is kept"
    );
    assert!(
        p["data"]["payment_source"]["card_type"].is_string(),
        "brand is kept"
    );
    assert_eq!(p["data"]["id"], v["data"]["id"], "ids are kept");
    assert_eq!(p["data"]["failed_at"], json!(at), "times are kept");

    // The state tables and the mail hold none of it either.
    let item = app.item("csub_item_spell").await.unwrap();
    assert_eq!(item.plan_name.as_deref(), Some("Pro [redacted]"));
    app.mail_drained().await;
    let dir = app.data_dir.join("mail");
    let mail = std::fs::read_dir(&dir)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let text = std::fs::read_to_string(mail)
        .unwrap()
        .replace("=\r\n", "")
        .replace("=\n", "");
    for pan in ["4242424242424242", "4111111111111111", "378282246310005"] {
        assert!(!digits(&text).contains(pan), "{pan} in the mail: {text}");
    }
}

/// One `subscriptionItem.active` with its clock in microseconds (a unit slip), or a day ahead,
/// must not make the later cancellation stale.
#[tokio::test]
async fn an_event_time_ahead_of_the_signed_timestamp_cannot_pin_access() {
    let app = spawn_app().await;
    let t = now() * 1000;
    for (user, slipped) in [
        ("user_micros", json!(t * 1000)),
        ("user_ahead", json!(t + DAY_MS)),
    ] {
        let item = format!("csub_item_{user}");
        let active = item_event_at("subscriptionItem.active", "active", &item, user, slipped);
        assert_eq!(app.deliver(&msg_id(), &active).await.status(), 200);
        assert_eq!(premium_status(&app, user).await, 200, "{user} subscribed");

        let ended = item_event_at(
            "subscriptionItem.ended",
            "ended",
            &item,
            user,
            json!(t + 1_000),
        );
        let resp = app
            .deliver_signed(&msg_id(), now() + 1, &ended.to_string(), SECRET_A)
            .await;
        let body: Value = resp.json().await.unwrap();
        assert_eq!(body["outcome"], "applied", "{user}: {body}");
        assert_eq!(premium_status(&app, user).await, 403, "{user} ended");
    }
}

/// An `active` item whose period ended long ago, its ending events lost, stops allowing.
#[tokio::test]
async fn an_active_item_long_past_its_period_end_no_longer_entitles() {
    let app = spawn_app().await;
    let t = now() * 1000;
    for (user, period_end, expected) in [
        ("user_lost_end", t - 4 * DAY_MS, 403),
        ("user_renewing", t - DAY_MS, 200),
    ] {
        let mut v = item_event_at(
            "subscriptionItem.active",
            "active",
            &format!("i_{user}"),
            user,
            json!(t - 40 * DAY_MS),
        );
        v["data"]["period_start"] = json!(period_end - 30 * DAY_MS);
        v["data"]["period_end"] = json!(period_end);
        assert_eq!(app.deliver(&msg_id(), &v).await.status(), 200);
        let token = sign_token(&keys().0, &claims(user));
        let me: Value = app
            .get_with_token("/api/me", &token)
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(premium_status(&app, user).await, expected, "{user}: {me}");
    }
}

#[tokio::test]
async fn a_signing_key_withdrawn_from_the_jwks_is_refused_after_one_refetch() {
    let jwks = jwks_server(vec![keys().0.jwk.clone(), keys().1.jwk.clone()]).await;
    let app = spawn_with(Options {
        jwks_url: Some(jwks.url.clone()),
        extra: vec![("JWKS_REFETCH_COOLDOWN_SECS", "0".into())],
        ..Default::default()
    })
    .await;
    let old = sign_token(&keys().0, &with(claims("user_w"), "jti", json!("seen")));
    assert_eq!(
        premium_status_token(&app, &old).await,
        403,
        "verified: signed in, no plan"
    );

    // Clerk withdraws key 0. A token with a kid nobody knows makes the app refetch (the
    // cooldown has a 5 s floor, whatever the setting).
    jwks.keys.lock().unwrap().remove(0);
    let unknown = {
        let mut h = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
        h.kid = Some("ins_unknown".into());
        h.typ = Some("JWT".into());
        jsonwebtoken::encode(&h, &claims("user_w"), &keys().0.encoding).unwrap()
    };
    assert_eq!(premium_status_token(&app, &unknown).await, 401);
    let hits = jwks.hits.load(std::sync::atomic::Ordering::SeqCst);
    assert_eq!(hits, 1, "within the 5 s floor, no refetch");
    tokio::time::sleep(plangate::auth::keys::MIN_COOLDOWN + std::time::Duration::from_millis(200))
        .await;
    assert_eq!(premium_status_token(&app, &unknown).await, 401);
    assert_eq!(
        jwks.hits.load(std::sync::atomic::Ordering::SeqCst),
        2,
        "one refetch"
    );

    // The withdrawn key's tokens are refused now, even one verified (and cached) before.
    assert_eq!(
        premium_status_token(&app, &old).await,
        401,
        "cached token of the withdrawn key"
    );
    let fresh = sign_token(&keys().0, &with(claims("user_w"), "jti", json!("new")));
    assert_eq!(premium_status_token(&app, &fresh).await, 401);
    let current = sign_token(&keys().1, &claims("user_w"));
    assert_eq!(
        premium_status_token(&app, &current).await,
        403,
        "the remaining key verifies"
    );
}

async fn post_form(
    app: &TestApp,
    path: &str,
    headers: &[(&str, &str)],
    form: &str,
) -> reqwest::Response {
    let mut req = app
        .client
        .post(app.url(path))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form.to_string());
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    req.send().await.unwrap()
}

#[tokio::test]
async fn demo_posts_from_other_origins_are_refused_and_sign_nobody_in() {
    let app = spawn_with(Options {
        demo: true,
        ..Default::default()
    })
    .await;
    let own = app.url("");
    for path in [
        "/demo/sign-in",
        "/demo/sign-out",
        "/demo/action",
        "/demo/refresh",
    ] {
        for headers in [
            vec![("origin", "https://evil.example")],
            vec![("origin", "null")],
            vec![("origin", "http://localhost:3000.evil.example")],
            // The host the request was sent to is no proof (DNS rebinding): only APP_URL's origin.
            vec![("origin", own.as_str())],
            vec![("origin", "https://localhost:3000")],
            vec![("sec-fetch-site", "cross-site")],
            vec![("sec-fetch-site", "same-site")],
        ] {
            let resp = post_form(&app, path, &headers, "name=mallory&action=cancel").await;
            assert_eq!(resp.status(), 403, "{path} {headers:?}");
            assert!(
                resp.headers().get("set-cookie").is_none(),
                "{path} {headers:?}"
            );
        }
    }
    assert_eq!(app.event_count().await, 0, "no demo webhook was sent");
    // The app's own pages (APP_URL's origin, in any case) still work.
    for origin in [APP_URL, "HTTP://LOCALHOST:3000"] {
        let resp = post_form(
            &app,
            "/demo/sign-in",
            &[("origin", origin), ("sec-fetch-site", "same-origin")],
            "name=alice",
        )
        .await;
        assert_eq!(resp.status(), 303, "{origin}");
        assert!(resp.headers().get("set-cookie").is_some());
    }
    // The webhook is exempt: Svix posts from elsewhere and is authenticated by its signature.
    let resp = app
        .client
        .post(app.url("/api/webhooks/clerk"))
        .header("origin", "https://evil.example")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400, "checked by signature, not by origin");
}

fn mode(p: &std::path::Path) -> u32 {
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

#[tokio::test]
async fn the_data_folder_and_its_secrets_are_private_also_when_they_existed_loose() {
    let app = spawn_with(Options {
        demo: true,
        ..Default::default()
    })
    .await;
    let dir = app.data_dir.to_path_buf();
    let files = ["demo-key.pem", "demo-webhook-secret"];
    let sqlite = std::env::var("TEST_DATABASE_URL").is_err();
    let check = |dir: &std::path::Path| {
        assert_eq!(mode(dir), 0o700, "data folder");
        for f in files {
            assert_eq!(mode(&dir.join(f)), 0o600, "{f}");
        }
        if sqlite {
            for f in ["test.db", "test.db-wal", "test.db-shm"] {
                if dir.join(f).exists() {
                    assert_eq!(mode(&dir.join(f)), 0o600, "{f}");
                }
            }
            assert!(dir.join("test.db").exists());
        }
    };
    check(&dir);

    // Loosened (as an older version left them), then a restart tightens them again.
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    for f in files.iter().chain(&["test.db"]) {
        if dir.join(f).exists() {
            std::fs::set_permissions(dir.join(f), std::fs::Permissions::from_mode(0o644)).unwrap();
        }
    }
    let mut extra = vec![("DATA_DIR", dir.display().to_string())];
    if sqlite {
        extra.push((
            "DATABASE_URL",
            format!("sqlite://{}/test.db", dir.display()),
        ));
    }
    let _again = spawn_with(Options {
        demo: true,
        extra,
        ..Default::default()
    })
    .await;
    check(&dir);
}

fn bad_signature_delivery(app: &TestApp, xff: Option<&str>) -> reqwest::RequestBuilder {
    let mut req = app
        .client
        .post(app.url("/api/webhooks/clerk"))
        .header("svix-id", msg_id())
        .header("svix-timestamp", now().to_string())
        .header("svix-signature", "v1,Zm9yZ2Vk")
        .body("{}");
    if let Some(x) = xff {
        req = req.header("x-forwarded-for", x);
    }
    req
}

#[tokio::test]
async fn failed_attempts_are_rate_limited_per_address_and_valid_traffic_never_is() {
    // 4 a minute, a burst of 2.
    let app = spawn_with(Options {
        extra: vec![("RATE_LIMIT_PER_MINUTE", "4".into())],
        ..Default::default()
    })
    .await;
    // Valid traffic, far more than the limit: never counted.
    let token = sign_token(&keys().0, &claims("user_valid"));
    for i in 0..20 {
        assert_eq!(
            premium_status_token(&app, &token).await,
            403,
            "valid token {i}"
        );
    }
    for i in 0..20 {
        let ev = item_event_at(
            "subscriptionItem.active",
            "active",
            &format!("i_valid_{i}"),
            "user_valid",
            json!(now() * 1000),
        );
        assert_eq!(
            app.deliver(&msg_id(), &ev).await.status(),
            200,
            "valid webhook {i}"
        );
    }
    // Expired tokens are Clerk's own, only old: not counted either.
    let expired = sign_token(
        &keys().0,
        &with(claims("user_valid"), "exp", json!(now() - 120)),
    );
    for _ in 0..5 {
        assert_eq!(premium_status_token(&app, &expired).await, 401);
    }

    // Bad signatures: the burst, then 429 with Retry-After.
    for _ in 0..2 {
        assert_eq!(
            bad_signature_delivery(&app, None)
                .send()
                .await
                .unwrap()
                .status(),
            400
        );
    }
    let limited = bad_signature_delivery(&app, None).send().await.unwrap();
    assert_eq!(limited.status(), 429);
    let retry: u64 = limited.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry), "{retry}");
    let body: Value = limited.json().await.unwrap();
    assert_eq!(body["error"]["code"], "rate_limited");
    // A valid delivery from that address is still applied: Clerk's never wait on failures.
    let ev = item_event_at(
        "subscriptionItem.active",
        "active",
        "i_after_limit",
        "user_valid",
        json!(now() * 1000),
    );
    assert_eq!(app.deliver(&msg_id(), &ev).await.status(), 200);
    // Tokens from the address are refused unread until its bucket refills.
    let forged = "eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCIsImtpZCI6Imluc19rZXlfMSJ9.e30.AAAA";
    assert_eq!(premium_status_token(&app, forged).await, 429);
    // An X-Forwarded-For from an untrusted peer changes nothing.
    let spoofed = bad_signature_delivery(&app, Some("203.0.113.77"))
        .send()
        .await
        .unwrap();
    assert_eq!(spoofed.status(), 429);
}

#[tokio::test]
async fn forged_tokens_and_demo_sign_ins_are_limited_too() {
    let app = spawn_with(Options {
        extra: vec![("RATE_LIMIT_PER_MINUTE", "4".into())],
        ..Default::default()
    })
    .await;
    let forged = sign_token(&keys().1, &claims("user_forger")); // a key this app does not trust
    assert_eq!(premium_status_token(&app, &forged).await, 401);
    assert_eq!(premium_status_token(&app, "not.a.token").await, 401);
    assert_eq!(premium_status_token(&app, &forged).await, 429);
    let page = app
        .client
        .get(app.url("/dashboard"))
        .header("cookie", format!("__session={forged}"))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 429, "pages too");

    let demo = spawn_with(Options {
        demo: true,
        extra: vec![("RATE_LIMIT_PER_MINUTE", "4".into())],
        ..Default::default()
    })
    .await;
    for name in ["a1", "a2"] {
        assert_eq!(
            post_form(&demo, "/demo/sign-in", &[], &format!("name={name}"))
                .await
                .status(),
            303
        );
    }
    let third = post_form(&demo, "/demo/sign-in", &[], "name=a3").await;
    assert_eq!(third.status(), 429);
    assert!(third.headers().get("set-cookie").is_none());
}

#[tokio::test]
async fn behind_a_trusted_proxy_each_forwarded_client_has_its_own_limit() {
    let app = spawn_with(Options {
        extra: vec![
            ("RATE_LIMIT_PER_MINUTE", "2".into()),
            ("TRUSTED_PROXIES", "127.0.0.1, ::1".into()),
        ],
        ..Default::default()
    })
    .await;
    let send = |xff: &'static str| bad_signature_delivery(&app, Some(xff)).send();
    assert_eq!(send("198.51.100.1").await.unwrap().status(), 400);
    assert_eq!(send("198.51.100.1").await.unwrap().status(), 429);
    // The client's own claim left of the real one is ignored: still 198.51.100.1.
    assert_eq!(send("10.9.9.9, 198.51.100.1").await.unwrap().status(), 429);
    assert_eq!(
        send("198.51.100.2").await.unwrap().status(),
        400,
        "another client"
    );
}

/// The nonce of the page's scripts.
pub fn nonce_in(body: &str) -> String {
    let start = body.find("nonce=\"").expect("a nonced script") + 7;
    body[start..].split('"').next().unwrap().to_string()
}

#[tokio::test]
async fn every_page_has_a_content_security_policy_naming_its_own_nonce() {
    for demo in [true, false] {
        let app = spawn_with(Options {
            demo,
            ..Default::default()
        })
        .await;
        let mut seen = Vec::new();
        for path in [
            "/",
            "/pricing",
            "/pricing",
            "/sign-in",
            "/dashboard",
            "/dashboard/payment-gated",
            "/nowhere",
        ] {
            let resp = app.client.get(app.url(path)).send().await.unwrap();
            let csp = resp.headers()["content-security-policy"]
                .to_str()
                .unwrap()
                .to_string();
            assert!(
                resp.headers().get("strict-transport-security").is_none(),
                "http APP_URL"
            );
            let body = resp.text().await.unwrap();
            let nonce = nonce_in(&body);
            assert!(csp.contains(&format!("'nonce-{nonce}'")), "{path}: {csp}");
            for d in [
                "object-src 'none'",
                "base-uri 'self'",
                "frame-ancestors 'none'",
            ] {
                assert!(csp.contains(d), "{path}: {csp}");
            }
            let script_src = csp
                .split(';')
                .find(|d| d.trim().starts_with("script-src"))
                .unwrap();
            assert!(!script_src.contains("unsafe-inline"), "{script_src}");
            // Every script in the page carries the nonce; no inline handlers.
            assert_eq!(
                body.matches("<script").count(),
                body.matches(&format!("<script nonce=\"{nonce}\"")).count()
                    + body
                        .matches(&format!("<script type=\"module\" nonce=\"{nonce}\""))
                        .count(),
                "{path}: {body}"
            );
            assert!(!body.contains(" onclick="), "{path}");
            if !demo {
                assert!(csp.contains(&format!("https://{FAPI_HOST}")), "{csp}");
            }
            seen.push(nonce);
        }
        let mut unique = seen.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(
            unique.len(),
            seen.len(),
            "a fresh nonce per response, cached pages too: {seen:?}"
        );
    }
}

#[tokio::test]
async fn an_https_app_sends_hsts() {
    let app = spawn_with(Options {
        extra: vec![("APP_URL", "https://app.example.com".into())],
        ..Default::default()
    })
    .await;
    for path in ["/", "/api/me", "/healthz"] {
        let resp = app.client.get(app.url(path)).send().await.unwrap();
        assert_eq!(
            resp.headers()["strict-transport-security"],
            "max-age=31536000; includeSubDomains",
            "{path}"
        );
    }
    let csp = app.client.get(app.url("/")).send().await.unwrap().headers()
        ["content-security-policy"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(csp.contains("upgrade-insecure-requests"), "{csp}");
}
