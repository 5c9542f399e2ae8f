//! Gates that speak Clerk's `has()` (README, "Plans and gates"): every dimension a gate names
//! (billing, organization role or permission, reverification) must pass, anything missing or
//! malformed fails closed, a refused reverification is Clerk's own `403` body, and the gate
//! probe (`GET /api/gates/{gate}`) answers without spending.

use serde_json::{json, Value};

use crate::helpers::*;

/// Pro (5 premium API calls) and Team; `premium` asks for a plan, the `admin` role and a
/// `strict` reverification; the other gates ask one dimension each.
fn gated_plans(dir: &std::path::Path) -> String {
    let path = dir.join("gated-plans.toml");
    std::fs::write(
        &path,
        r#"
[[plans]]
slug = "free_user"
name = "Free"

[[plans]]
slug = "pro"
name = "Pro"
monthly_cents = 2000
features = ["premium_api"]
limits = { premium_api = 5 }

[[plans]]
slug = "team"
name = "Team"
for = "organization"
monthly_cents = 9900
features = ["premium_api"]

[gates.premium]
plans = ["u:pro", "o:team"]
roles = ["admin"]
reverification = "strict"
meter = "premium_api"

[gates.reports]
permissions = ["org:reports:read"]

[gates.managers]
roles = ["org:admin", "billing_manager"]

[gates.fresh]
reverification = { level = "multi_factor", after_minutes = 5 }

[gates.plain]
plans = ["u:pro"]
meter = "premium_api"
"#,
    )
    .unwrap();
    path.display().to_string()
}

async fn gated_app(dir: &TempDir) -> TestApp {
    spawn_with(Options {
        extra: vec![("PLANS_FILE", gated_plans(dir))],
        ..Default::default()
    })
    .await
}

/// A v2 token of `user` with the claims in `extra` (null removes one).
fn token_with(user: &str, extra: Value) -> String {
    let mut c = claims(user);
    for (k, v) in extra.as_object().unwrap() {
        c = with(c, k, v.clone());
    }
    sign_token(&keys().0, &c)
}

/// An organization member's claims: `org_1`, role `role`, and `fea`/`per`/`fpm` as given.
fn member(role: &str, fea: &str, per: &str, fpm: &str) -> Value {
    json!({"o": {"id": "org_1", "slg": "acme", "rol": role, "per": per, "fpm": fpm}, "fea": fea})
}

async fn probe(app: &TestApp, gate: &str, token: Option<&str>) -> (u16, Value) {
    let mut req = app.client.get(app.url(&format!("/api/gates/{gate}")));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let r = req.send().await.unwrap();
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

async fn allowed(app: &TestApp, gate: &str, token: &str) -> bool {
    let (status, body) = probe(app, gate, Some(token)).await;
    assert_eq!(status, 200, "{body}");
    body["allowed"].as_bool().unwrap()
}

#[tokio::test]
async fn each_dimension_a_gate_names_must_pass() {
    let dir = TempDir::new("plangate-authz-");
    let app = gated_app(&dir).await;
    let admin = |fva: Value, pla: &str| {
        let mut m = member("admin", "", "", "");
        m["fva"] = fva;
        m["pla"] = json!(pla);
        token_with("user_a1", m)
    };
    // Plan, role and a second-factor-or-first verification under 10 minutes: in.
    assert!(allowed(&app, "premium", &admin(json!([3, -1]), "u:pro")).await);
    // Any one dimension missing keeps the gate shut, whatever the others say.
    let stale = admin(json!([10, -1]), "u:pro");
    let (_, body) = probe(&app, "premium", Some(&stale)).await;
    assert_eq!(body["allowed"], false);
    assert_eq!(body["code"], "reverification_required");
    assert!(
        !allowed(&app, "premium", &admin(Value::Null, "u:pro")).await,
        "no fva"
    );
    assert!(!allowed(&app, "premium", &admin(json!(["0", "0"]), "u:pro")).await);
    assert!(!allowed(&app, "premium", &admin(json!([-1, -1]), "u:pro")).await);
    let unpaid = admin(json!([0, -1]), "u:free_user");
    let (_, body) = probe(&app, "premium", Some(&unpaid)).await;
    assert_eq!(body["code"], "plan_not_in_gate");
    let mut m = member("member", "", "", "");
    m["fva"] = json!([0, -1]);
    m["pla"] = json!("u:pro");
    let (_, body) = probe(&app, "premium", Some(&token_with("user_a1", m))).await;
    assert_eq!(body["code"], "organization_not_allowed");
    let no_org = token_with("user_a1", json!({"fva": [0, -1], "pla": "u:pro"}));
    assert!(
        !allowed(&app, "premium", &no_org).await,
        "a role needs an organization"
    );

    // Roles: any one of the list, with or without `org:`.
    for (role, ok) in [
        ("admin", true),
        ("billing_manager", true),
        ("member", false),
        ("", false),
    ] {
        let t = token_with("user_a2", member(role, "", "", ""));
        assert_eq!(allowed(&app, "managers", &t).await, ok, "{role}");
    }

    // Permissions, decoded from `o.per` + `o.fpm` against the organization's `fea` entries.
    for (fea, fpm, ok) in [
        ("o:reports", "1", true),
        ("o:reports", "2", false),
        ("o:billing,o:reports", "3,1", true),
        ("o:billing,o:reports", "x,1", true),
        ("o:billing,o:reports", "1,x", false),
        ("u:reports", "1", false),
        ("o:reports", "", false),
        // 2^64 + 1: past 64 bits, the lowest bit still counts.
        ("o:reports", "18446744073709551617", true),
    ] {
        let t = token_with("user_a3", member("member", fea, "read,manage", fpm));
        assert_eq!(allowed(&app, "reports", &t).await, ok, "{fea} {fpm}");
    }

    // A custom level: multi factor within 5 minutes (the first alone when no second is enrolled).
    for (fva, ok) in [
        (json!([1, 2]), true),
        (json!([1, -1]), true),
        (json!([6, 2]), false),
        (json!([1, 5]), false),
        (json!([-1, 1]), false),
        (json!([1]), false),
        (Value::Null, false),
    ] {
        let t = token_with("user_a4", json!({"fva": fva.clone()}));
        assert_eq!(allowed(&app, "fresh", &t).await, ok, "{fva}");
    }
}

#[tokio::test]
async fn a_refused_reverification_on_a_json_route_is_clerks_own_body() {
    let dir = TempDir::new("plangate-authz-");
    let app = gated_app(&dir).await;
    let mut m = member("admin", "", "", "");
    m["pla"] = json!("u:pro");
    m["fva"] = json!([11, -1]);
    let r = app
        .get_with_token("/api/premium-feature", &token_with("user_r1", m.clone()))
        .await;
    assert_eq!(r.status(), 403);
    let body: Value = r.json().await.unwrap();
    assert_eq!(
        body,
        json!({"clerk_error": {"type": "forbidden", "reason": "reverification-error",
            "metadata": {"reverification": {"level": "second_factor", "afterMinutes": 10}}}})
    );
    // Verified again: the same caller is served (and metered).
    m["fva"] = json!([0, -1]);
    let r = app
        .get_with_token("/api/premium-feature", &token_with("user_r1", m.clone()))
        .await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["ratelimit-remaining"], "4");
    // A refusal for another dimension is plangate's own error, not Clerk's reverification hint.
    m["o"]["rol"] = json!("member");
    let r = app
        .get_with_token("/api/premium-feature", &token_with("user_r1", m))
        .await;
    assert_eq!(r.status(), 403);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "forbidden", "{body}");
}

#[tokio::test]
async fn the_gate_probe_answers_without_spending() {
    let dir = TempDir::new("plangate-authz-");
    let app = gated_app(&dir).await;
    deliver_item(
        &app,
        "csub_item_p1",
        "user_p1",
        "pro",
        now() * 1000 - 60_000,
    )
    .await;
    let t = token_of("user_p1");
    for _ in 0..20 {
        let (status, body) = probe(&app, "plain", Some(&t)).await;
        assert_eq!(status, 200);
        assert_eq!(body["allowed"], true);
        assert_eq!(body["gate"], "plain");
        assert_eq!(body["usage"]["feature"], "premium_api");
        assert_eq!(body["usage"]["limit"], 5);
        assert_eq!(body["usage"]["used"], 0, "the probe spends nothing");
        assert_eq!(body["usage"]["remaining"], 5);
    }
    // Refused: the reason in words, and still the meter.
    let (status, body) = probe(&app, "premium", Some(&t)).await;
    assert_eq!((status, body["allowed"].clone()), (200, json!(false)));
    assert!(
        body["reason"].as_str().unwrap().ends_with('.')
            && !body["reason"].as_str().unwrap().contains('_'),
        "{body}"
    );
    let (_, body) = probe(&app, "managers", Some(&t)).await;
    assert_eq!(body["usage"], Value::Null, "a gate without a meter");
    // Unknown gate 404 (also for odd spellings), signed out 401.
    for gate in ["nope", "Premium", "premium%20", "..%2Fpremium"] {
        assert_eq!(probe(&app, gate, Some(&t)).await.0, 404, "{gate}");
    }
    assert_eq!(probe(&app, "premium", None).await.0, 401);
    assert_eq!(probe(&app, "nope", None).await.0, 401);
    assert_eq!(probe(&app, "premium", Some("not-a-token")).await.0, 401);
}

/// An API key opens the billing dimension from its owner's stored plan; the organization and
/// reverification dimensions fail for it (a key carries neither a role nor a sign-in).
#[tokio::test]
async fn a_key_passes_billing_and_fails_the_organization_and_reverification_dimensions() {
    let dir = TempDir::new("plangate-authz-");
    let api = backend_api().await;
    let app = spawn_with(Options {
        extra: vec![
            ("PLANS_FILE", gated_plans(&dir)),
            ("CLERK_SECRET_KEY", SECRET_KEY.to_string()),
            ("CLERK_API_URL", api.url.clone()),
            ("RECONCILE_INTERVAL_SECS", "0".to_string()),
        ],
        ..Default::default()
    })
    .await;
    deliver_item(
        &app,
        "csub_item_k9",
        "user_k9",
        "pro",
        now() * 1000 - 60_000,
    )
    .await;
    api.add_api_key("ak_k9_secret", "user_k9");
    assert!(allowed(&app, "plain", "ak_k9_secret").await);
    for (gate, code) in [
        ("managers", "organization_not_allowed"),
        ("reports", "organization_not_allowed"),
        ("fresh", "reverification_required"),
        ("premium", "organization_not_allowed"),
    ] {
        let (status, body) = probe(&app, gate, Some("ak_k9_secret")).await;
        assert_eq!(
            (status, body["allowed"].clone()),
            (200, json!(false)),
            "{gate}"
        );
        assert_eq!(body["code"], code, "{gate}");
    }
}

/// The premium page, refused for a role or a stale sign-in while the plan opens it, says what is
/// missing: no pricing table, no premium markup.
#[tokio::test]
async fn the_premium_page_says_what_is_missing_when_the_plan_is_not_it() {
    let dir = TempDir::new("plangate-authz-");
    let app = gated_app(&dir).await;
    let as_member = |role: &str, fva: Value| {
        let mut m = member(role, "", "", "");
        m["fva"] = fva;
        m["pla"] = json!("u:pro");
        token_with("user_g1", m)
    };
    for (token, says) in [
        (
            as_member("member", json!([0, -1])),
            "Your role in the active organization",
        ),
        (
            as_member("admin", json!([30, -1])),
            "Verify your identity again",
        ),
    ] {
        let (status, html) =
            get_plain(&app, "/dashboard/payment-gated", Some(Who::Cookie(&token))).await;
        assert_eq!(status, 200);
        assert!(html.contains("data-testid=\"not-authorized\""), "{html}");
        assert!(html.contains(says), "{says}");
        assert!(!html.contains("Upgrade to open Premium") && !html.contains("Premium insights"));
    }
    let ok = as_member("admin", json!([0, -1]));
    let (_, html) = get_plain(&app, "/dashboard/payment-gated", Some(Who::Cookie(&ok))).await;
    assert!(html.contains("Premium insights"), "{html}");
}
