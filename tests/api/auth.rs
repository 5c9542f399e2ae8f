//! Session tokens and the gate, through the real API: 200 / 401 / 403 as the API promises.

use std::sync::atomic::Ordering;

use base64::Engine;
use serde_json::{json, Value};

use crate::helpers::*;

fn pro(user: &str) -> Value {
    let mut c = claims(user);
    c["pla"] = json!("u:pro");
    c
}

async fn check_matrix(app: &TestApp) {
    let key = &keys().0;
    let ok = sign_token(key, &pro("user_a"));
    let resp = app.get_with_token("/api/premium-feature", &ok).await;
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["plan"], "pro");
    assert!(body["message"].as_str().is_some());

    let t = now();
    let cases: Vec<(&str, String, u16)> = vec![
        (
            "expired",
            sign_token(key, &with(pro("u"), "exp", json!(t - 30))),
            401,
        ),
        (
            "nbf in the future",
            sign_token(key, &with(pro("u"), "nbf", json!(t + 60))),
            401,
        ),
        (
            "iat in the future",
            sign_token(key, &with(pro("u"), "iat", json!(t + 60))),
            401,
        ),
        (
            "wrong iss",
            sign_token(key, &with(pro("u"), "iss", json!("https://evil.example"))),
            401,
        ),
        (
            "azp not allowed",
            sign_token(key, &with(pro("u"), "azp", json!("https://evil.example"))),
            401,
        ),
        (
            "no azp",
            sign_token(key, &with(pro("u"), "azp", Value::Null)),
            401,
        ),
        (
            "missing sid",
            sign_token(key, &with(pro("u"), "sid", Value::Null)),
            401,
        ),
        (
            "sts pending",
            sign_token(key, &with(pro("u"), "sts", json!("pending"))),
            401,
        ),
        (
            "signed by another key",
            sign_token(&keys().1, &pro("u")).replace(&keys().1.kid, &key.kid),
            401,
        ),
        (
            "free plan",
            sign_token(key, &with(claims("u"), "pla", json!("u:free_user"))),
            403,
        ),
        (
            "o:pro while the gate asks for a user plan",
            sign_token(
                key,
                &with(
                    with(claims("u"), "pla", json!("o:pro")),
                    "o",
                    json!({"id": "org_1", "slg": "acme", "rol": "admin"}),
                ),
            ),
            403,
        ),
        (
            "v1 token: verifies, carries no plan",
            sign_token(key, &with(pro("u"), "v", Value::Null)),
            403,
        ),
    ];
    for (name, token, expected) in cases {
        assert_eq!(premium_status_token(app, &token).await, expected, "{name}");
    }

    // Forged tokens.
    let b64 = |v: &Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
    let none = format!(
        "{}.{}.",
        b64(&json!({"alg": "none", "typ": "JWT", "kid": key.kid})),
        b64(&pro("u"))
    );
    assert_eq!(premium_status_token(app, &none).await, 401, "alg none");
    let hs = jsonwebtoken::encode(
        &{
            let mut h = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
            h.kid = Some(key.kid.clone());
            h
        },
        &pro("u"),
        &jsonwebtoken::EncodingKey::from_secret(key.public_pem.as_bytes()),
    )
    .unwrap();
    assert_eq!(
        premium_status_token(app, &hs).await,
        401,
        "HS256 with the public key as secret"
    );
    let mut parts: Vec<String> = ok.split('.').map(str::to_string).collect();
    let mut payload = pro("user_a");
    payload["sub"] = json!("user_admin");
    parts[1] = b64(&payload);
    assert_eq!(
        premium_status_token(app, &parts.join(".")).await,
        401,
        "tampered payload"
    );
    assert_eq!(
        premium_status_token(app, "not-a-token").await,
        401,
        "garbage"
    );

    let no_token = app
        .client
        .get(app.url("/api/premium-feature"))
        .send()
        .await
        .unwrap();
    assert_eq!(no_token.status(), 401);
    let err: Value = no_token.json().await.unwrap();
    assert_eq!(err["error"]["code"], "unauthorized");
    let me = app.client.get(app.url("/api/me")).send().await.unwrap();
    assert_eq!(me.status(), 401);
}

#[tokio::test]
async fn tokens_are_checked_by_every_clerk_rule_with_a_pem_key() {
    let app = spawn_with(Options {
        pem: true,
        ..Default::default()
    })
    .await;
    check_matrix(&app).await;
}

#[tokio::test]
async fn tokens_are_checked_by_every_clerk_rule_with_jwks() {
    let jwks = jwks_server(vec![keys().0.jwk.clone()]).await;
    let app = spawn_with(Options {
        jwks_url: Some(jwks.url.clone()),
        ..Default::default()
    })
    .await;
    check_matrix(&app).await;
    let unknown = sign_token(&keys().1, &pro("u"));
    assert_eq!(
        premium_status_token(&app, &unknown).await,
        401,
        "unknown kid"
    );
}

#[tokio::test]
async fn the_session_cookie_and_its_suffixed_form_are_read() {
    let app = spawn_app().await;
    let token = sign_token(&keys().0, &pro("user_c"));
    for name in [
        "__session".to_string(),
        format!(
            "__session_{}",
            plangate::auth::cookie_suffix(&publishable_key())
        ),
    ] {
        let resp = app
            .client
            .get(app.url("/api/premium-feature"))
            .header("cookie", format!("theme=dark; {name}={token}"))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200, "{name}");
    }
}

/// Clerk's JOSE header `cat`: a JWT-template or machine token signed by the instance is never a
/// session, whatever it carries (`sid` included), by Bearer or by cookie.
#[tokio::test]
async fn template_and_machine_tokens_are_not_sessions_by_header_or_cookie() {
    let app = spawn_app().await;
    let signed = |cat: Option<Value>| {
        let mut header = json!({"alg": "RS256", "typ": "JWT", "kid": keys().0.kid});
        if let Some(c) = cat {
            header["cat"] = c;
        }
        keys()
            .0
            .sign_with_header(&header, &pro("user_cat"))
            .unwrap()
    };
    let cookie = |token: &str| {
        app.client
            .get(app.url("/api/premium-feature"))
            .header("cookie", format!("__session={token}"))
            .send()
    };
    for ok in [
        None,
        Some(json!("cl_B7d4PD111AAA")),
        Some(json!("cl_I7d4PD111III")),
    ] {
        let token = signed(ok.clone());
        assert_eq!(premium_status_token(&app, &token).await, 200, "{ok:?}");
        assert_eq!(cookie(&token).await.unwrap().status(), 200, "{ok:?}");
    }
    for refused in [
        json!("cl_B7d4PD222AAA"),
        json!("cl_B7d4PD333AAA"),
        json!("cl_b7d4pd111aaa"),
        json!(" cl_B7d4PD111AAA"),
        json!(""),
        json!(null),
        json!(["cl_B7d4PD111AAA"]),
        json!(111),
    ] {
        let token = signed(Some(refused.clone()));
        assert_eq!(premium_status_token(&app, &token).await, 401, "{refused}");
        assert_eq!(cookie(&token).await.unwrap().status(), 401, "{refused}");
        let me = app.get_with_token("/api/me", &token).await;
        assert_eq!(me.status(), 401, "{refused}");
    }
}

#[tokio::test]
async fn jwks_is_fetched_once_refetched_on_rotation_and_not_flooded_by_unknown_kids() {
    let jwks = jwks_server(vec![keys().0.jwk.clone()]).await;
    let app = spawn_with(Options {
        jwks_url: Some(jwks.url.clone()),
        extra: vec![("JWKS_REFETCH_COOLDOWN_SECS", "1".into())],
        ..Default::default()
    })
    .await;
    let token = sign_token(&keys().0, &pro("user_j"));
    for _ in 0..30 {
        assert_eq!(premium_status_token(&app, &token).await, 200);
    }
    assert_eq!(
        jwks.hits.load(Ordering::SeqCst),
        1,
        "cached after the first fetch"
    );

    // Rotation: the new key appears in the JWKS; the first token with its kid refetches (once
    // the cooldown, never under its 5 s floor, has passed).
    tokio::time::sleep(plangate::auth::keys::MIN_COOLDOWN + std::time::Duration::from_millis(100))
        .await;
    jwks.keys.lock().unwrap().push(keys().1.jwk.clone());
    let rotated = sign_token(&keys().1, &pro("user_j"));
    assert_eq!(premium_status_token(&app, &rotated).await, 200);
    assert_eq!(jwks.hits.load(Ordering::SeqCst), 2);
    let fresh_old = sign_token(&keys().0, &with(pro("user_j"), "jti", json!("old-key")));
    assert_eq!(
        premium_status_token(&app, &fresh_old).await,
        200,
        "the old key keeps working"
    );

    // A flood of random kids right after: at most one refetch per cooldown.
    for i in 0..40 {
        let mut c = pro("user_j");
        c["jti"] = json!(i);
        let mut h = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
        h.kid = Some(format!("random_{i}"));
        h.typ = Some("JWT".into());
        let t = jsonwebtoken::encode(&h, &c, &keys().0.encoding).unwrap();
        assert_eq!(premium_status_token(&app, &t).await, 401);
    }
    assert!(
        jwks.hits.load(Ordering::SeqCst) <= 3,
        "hits: {}",
        jwks.hits.load(Ordering::SeqCst)
    );

    // An outage keeps the known keys serving.
    jwks.keys.lock().unwrap().clear();
    // A token never seen before (no cache), signed with a known key.
    let unseen = sign_token(
        &keys().1,
        &with(pro("user_j"), "jti", json!("after-outage")),
    );
    assert_eq!(premium_status_token(&app, &unseen).await, 200);
}

/// Item `csub_item_<user>` of `user` on Pro in `status` as of `at_ms`, its period already over.
async fn deliver_state(app: &TestApp, user: &str, status: &str, at_ms: i64) {
    let mut v = fixture("subscriptionItem.active");
    v["type"] = json!(format!("subscriptionItem.{status}"));
    v["timestamp"] = json!(at_ms);
    v["data"]["id"] = json!(format!("csub_item_{user}"));
    v["data"]["status"] = json!(status);
    v["data"]["updated_at"] = json!(at_ms);
    v["data"]["period_end"] = json!(at_ms - 1000);
    v["data"]["plan"]["slug"] = json!("pro");
    v["data"]["payer"]["user_id"] = json!(user);
    assert_eq!(app.deliver(&msg_id(), &v).await.status(), 200);
}

#[tokio::test]
async fn newest_evidence_wins_between_the_database_and_the_token() {
    let app = spawn_app().await;
    let t = now();
    // Canceled (period over) in the database after the token was minted: denied.
    deliver_state(&app, "user_x", "canceled", t * 1000).await;
    let older = sign_token(
        &keys().0,
        &with(
            with(pro("user_x"), "iat", json!(t - 20)),
            "nbf",
            json!(t - 30),
        ),
    );
    assert_eq!(premium_status_token(&app, &older).await, 403);
    let me: Value = app
        .get_with_token("/api/me", &older)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(me["source"], "database");
    assert_eq!(me["status"], "canceled");

    // Paid in the token, no webhook yet: allowed, from the token.
    let fresh = sign_token(&keys().0, &pro("user_new"));
    assert_eq!(premium_status_token(&app, &fresh).await, 200);
    let me: Value = app
        .get_with_token("/api/me", &fresh)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(me["source"], "token");
    assert_eq!(me["entitled"], true);
}
