//! The operator console (README, "Operator console"): only operators see it (everyone else gets
//! the unknown-path answer), each action reaches Clerk's Backend API once with the right
//! request, nothing is done without a recent sign-in, from another origin or with a used form
//! token, and every action is in the audit log.

use serde_json::{json, Value};

use crate::helpers::*;

const OPERATOR: &str = "user_op1";
const ORIGIN: &str = APP_URL;

/// A Clerk-mode app whose operator is [`OPERATOR`] and whose Backend API is `api`.
async fn console_app(api: &BackendApi) -> TestApp {
    app_with_api(
        api,
        vec![("ADMIN_USER_IDS", format!("user_someone_else, {OPERATOR}"))],
    )
    .await
}

/// A session token of `user` whose first factor was verified `fva` minutes ago (`None`: the
/// claim is absent).
fn token(user: &str, fva: Option<i64>) -> String {
    let c = claims(user);
    let c = match fva {
        Some(m) => with(c, "fva", json!([m, -1])),
        None => c,
    };
    sign_token(&keys().0, &c)
}

/// POSTs the form `fields` to `path` as the browser does (same origin unless `origin`).
async fn post(
    app: &TestApp,
    path: &str,
    token: Option<&str>,
    origin: &str,
    fields: &[(&str, &str)],
) -> reqwest::Response {
    let body = fields
        .iter()
        .map(|(k, v)| format!("{k}={}", urlencode(v)))
        .collect::<Vec<_>>()
        .join("&");
    let mut req = app
        .client
        .post(app.url(path))
        .header("origin", origin)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    req.send().await.unwrap()
}

/// Acts as an operator's browser does: signed in as `op`, the page at `page_path`, the one-time
/// token of its form to `action`, and that form POSTed from the app's own origin with `fields`.
async fn act(
    app: &TestApp,
    op: &str,
    page_path: &str,
    action: &str,
    fields: &[(&str, &str)],
) -> reqwest::Response {
    let (status, page) = get_page(app, page_path, Some(op)).await;
    assert_eq!(status, 200, "{page}");
    let t = form_token(&page, action);
    let mut fields = fields.to_vec();
    fields.push(("form_token", &t));
    post(app, action, Some(op), ORIGIN, &fields).await
}

/// The one-time token of the form posting to `action` on a console page.
fn form_token(page: &str, action: &str) -> String {
    let at = page
        .find(&format!("action=\"{action}\""))
        .unwrap_or_else(|| panic!("no form to {action} in {page}"));
    let rest = &page[at..];
    let v = rest.find("name=\"form_token\" value=\"").unwrap() + 25;
    rest[v..v + rest[v..].find('"').unwrap()].to_string()
}

/// The nonce differs per response (Leptos writes it into `nonce` and `crossorigin`); nothing
/// else may.
fn without_nonces(body: &str) -> String {
    let mut out = body.to_string();
    for attr in ["nonce=\"", "crossorigin=\""] {
        let mut done = String::new();
        let mut rest = out.as_str();
        while let Some(i) = rest.find(attr) {
            done.push_str(&rest[..i + attr.len()]);
            rest = &rest[i + attr.len()..];
            rest = &rest[rest.find('"').unwrap_or(0)..];
        }
        done.push_str(rest);
        out = done;
    }
    out
}

/// Item `item` of `user` on Pro in a free trial that ends at `end` (ms).
async fn deliver_trial(app: &TestApp, item: &str, user: &str, end: i64) {
    let mut ev = item_event(
        "subscriptionItem.active",
        "active",
        item,
        user,
        now() * 1000 - 60_000,
    );
    ev["data"]["is_free_trial"] = json!(true);
    ev["data"]["period_end"] = json!(end);
    assert_eq!(app.deliver(&msg_id(), &ev).await.status(), 200);
}

async fn audit_lines(app: &TestApp) -> Vec<String> {
    let (code, out, err) = app.command(&["audit", "--limit", "50"], &[]).await;
    assert_eq!(code, 0, "{out}{err}");
    out.lines().map(str::to_string).collect()
}

#[tokio::test]
async fn everyone_but_an_operator_gets_exactly_what_an_unknown_path_gets() {
    let api = backend_api().await;
    let app = console_app(&api).await;
    let other = token("user_alice", Some(0));
    let expired = sign_token(
        &keys().0,
        &with(
            with(claims("user_op1"), "exp", json!(now() - 120)),
            "fva",
            json!([0, -1]),
        ),
    );
    let forged = sign_token(&keys().1, &with(claims(OPERATOR), "fva", json!([0, -1])));
    let callers: Vec<(&str, Option<&str>)> = vec![
        ("signed out", None),
        ("another user", Some(&other)),
        ("the operator's expired token", Some(&expired)),
        ("a token signed with another key", Some(&forged)),
    ];
    for (who, t) in &callers {
        // What this caller gets for a path nothing serves (signed out on a development
        // instance, that is the dev-browser handshake's redirect).
        let (unknown_status, unknown_body) = get_page(&app, "/no-such-page", *t).await;
        let unknown_body = without_nonces(&unknown_body);
        for path in [
            "/admin",
            "/admin/audit",
            "/admin/dead-letters",
            "/admin/payers/user/user_alice",
            "/admin/payers/org/org_1",
            "/admin/items/csub_item_1/cancel",
            "/admin/nothing-here",
        ] {
            let (status, body) = get_page(&app, path, *t).await;
            assert_eq!(status, unknown_status, "{who} GET {path}");
            assert_eq!(without_nonces(&body), unknown_body, "{who} GET {path}");
        }
        // Actions: the same answer as a POST to an unknown path, and nothing is done.
        let unknown_post = post(&app, "/no-such-page", *t, ORIGIN, &[("end_now", "true")]).await;
        let (us, ub) = (unknown_post.status(), unknown_post.text().await.unwrap());
        for path in [
            "/admin/items/csub_item_1/cancel",
            "/admin/items/csub_item_1/extend-trial",
            "/admin/payers/user/user_alice/reconcile",
            "/admin/payers/user/user_alice/grant",
            "/admin/deliveries/msg_1/replay",
        ] {
            let r = post(&app, path, *t, ORIGIN, &[("end_now", "true")]).await;
            assert_eq!(r.status(), us, "{who} POST {path}");
            assert_eq!(
                without_nonces(&r.text().await.unwrap()),
                without_nonces(&ub),
                "{who} POST {path}"
            );
        }
    }
    assert!(api.calls.lock().unwrap().is_empty(), "no Backend API call");
    assert!(audit_lines(&app).await.is_empty(), "nothing to audit");
    // The operator sees the console; nothing on the public pages links there.
    let op = token(OPERATOR, Some(0));
    let (status, body) = get_page(&app, "/admin", Some(&op)).await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("Operator console"));
    for page in ["/", "/pricing", "/dashboard", "/sign-in"] {
        let (_, body) = get_page(&app, page, Some(&op)).await;
        assert!(!body.contains("/admin"), "{page} links the console");
    }
}

#[tokio::test]
async fn without_operators_there_is_no_console_at_all() {
    let app = spawn_app().await;
    let op = token(OPERATOR, Some(0));
    let (unknown_status, unknown_body) = get_page(&app, "/no-such-page", Some(&op)).await;
    let (status, body) = get_page(&app, "/admin", Some(&op)).await;
    assert_eq!(status, 404);
    assert_eq!(
        (status, without_nonces(&body)),
        (unknown_status, without_nonces(&unknown_body))
    );
}

#[tokio::test]
async fn each_action_reaches_the_backend_api_once_and_is_audited() {
    let api = backend_api().await;
    let app = console_app(&api).await;
    deliver_trial(
        &app,
        "csub_item_c1",
        "user_pay1",
        now() * 1000 + 3 * 86_400_000,
    )
    .await;
    // What Clerk says of the payer when reconciled: the same item, as stored.
    api.subscriptions.lock().unwrap().insert(
        "user_pay1".into(),
        json!({
            "object": "commerce_subscription",
            "id": "csub_p1",
            "subscription_items": [api_item("csub_item_c1", "user_pay1", "pro", "active", now() * 1000 - 60_000)],
        }),
    );
    let op = token(OPERATOR, Some(2));
    let page_path = "/admin/payers/user/user_pay1";
    let (status, page) = get_page(&app, page_path, Some(&op)).await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("csub_item_c1"));

    // Cancel at period end.
    let t = form_token(&page, "/admin/items/csub_item_c1/cancel");
    let r = post(
        &app,
        "/admin/items/csub_item_c1/cancel",
        Some(&op),
        ORIGIN,
        &[
            ("form_token", &t),
            ("end_now", "false"),
            ("back", page_path),
        ],
    )
    .await;
    assert_eq!(r.status(), 303);
    assert_eq!(
        r.headers()["location"],
        format!("{APP_URL}{page_path}?done=1").as_str()
    );
    // Extend a trial (the form is on trial items only; a fresh page's token serves any form).
    let (_, page) = get_page(&app, page_path, Some(&op)).await;
    let t2 = form_token(&page, "/admin/items/csub_item_c1/cancel");
    let r = post(
        &app,
        "/admin/items/csub_item_c1/extend-trial",
        Some(&op),
        ORIGIN,
        &[("form_token", &t2), ("extend_to", "2099-01-01T00:00:00Z")],
    )
    .await;
    assert_eq!(
        r.status(),
        400,
        "more than a year ahead is refused before Clerk"
    );
    let to = plangate::billing::operator::rfc3339(now() * 1000 + 10 * 86_400_000);
    let r = post(
        &app,
        "/admin/items/csub_item_c1/extend-trial",
        Some(&op),
        ORIGIN,
        &[("form_token", &t2), ("extend_to", &to)],
    )
    .await;
    assert_eq!(r.status(), 303);
    // Reconcile this payer.
    let r = act(
        &app,
        &op,
        page_path,
        "/admin/payers/user/user_pay1/reconcile",
        &[],
    )
    .await;
    assert_eq!(r.status(), 303);

    let calls = api.calls.lock().unwrap().clone();
    assert_eq!(
        calls,
        vec![
            (
                "DELETE".to_string(),
                "/v1/billing/subscription_items/csub_item_c1?end_now=false".to_string(),
                String::new()
            ),
            (
                "POST".to_string(),
                "/v1/billing/subscription_items/csub_item_c1/extend_free_trial".to_string(),
                json!({ "extend_to": to }).to_string()
            ),
            (
                "GET".to_string(),
                "/v1/users/user_pay1/billing/subscription".to_string(),
                String::new()
            ),
        ]
    );
    for (_, headers) in api.requests.lock().unwrap().iter() {
        assert_eq!(headers["authorization"], format!("Bearer {SECRET_KEY}"));
        assert_eq!(headers["clerk-api-version"], "2026-05-12");
    }
    // Nothing was guessed: the item stays active until Clerk's webhook says otherwise.
    assert_eq!(
        app.item("csub_item_c1").await.unwrap().status,
        plangate::billing::Status::Active
    );

    let lines = audit_lines(&app).await;
    assert_eq!(lines.len(), 4, "{lines:?}");
    let tail = |l: &str| l.split_once(' ').unwrap().1.to_string();
    assert!(
        tail(&lines[0]).starts_with(&format!(
            "{OPERATOR} reconcile user:user_pay1 done: 1 checked, "
        )),
        "{lines:?}"
    );
    assert_eq!(
        lines[1..].iter().map(|l| tail(l)).collect::<Vec<_>>(),
        vec![
            format!("{OPERATOR} extend_trial item:csub_item_c1 done"),
            format!("{OPERATOR} extend_trial item:csub_item_c1 refused: invalid_extend_to"),
            format!("{OPERATOR} cancel item:csub_item_c1 done"),
        ]
    );
    let time = lines[0].split(' ').next().unwrap();
    assert!(
        time.len() == 20 && time.ends_with('Z') && time.as_bytes()[10] == b'T',
        "RFC 3339: {time}"
    );
    // The page shows the newest audit row; /admin/audit lists them with their parameters.
    let (_, page) = get_page(&app, &format!("{page_path}?done=1"), Some(&op)).await;
    assert!(page.contains("reconcile user:user_pay1: done"), "{page}");
    let (_, audit) = get_page(&app, "/admin/audit", Some(&op)).await;
    assert!(audit.contains("end_now=false") && audit.contains(&format!("extend_to={to}")));
}

#[tokio::test]
async fn clerks_refusal_is_audited_and_changes_nothing() {
    let api = backend_api().await;
    let app = console_app(&api).await;
    deliver_item(
        &app,
        "csub_item_r1",
        "user_pay2",
        "pro",
        now() * 1000 - 60_000,
    )
    .await;
    let op = token(OPERATOR, Some(0));
    api.script.lock().unwrap().push_back((422, None));
    let r = act(
        &app,
        &op,
        "/admin/payers/user/user_pay2",
        "/admin/items/csub_item_r1/cancel",
        &[("end_now", "true")],
    )
    .await;
    assert_eq!(r.status(), 303);
    assert_eq!(
        api.calls.lock().unwrap().len(),
        1,
        "a 422 is an answer, not retried"
    );
    let lines = audit_lines(&app).await;
    assert!(
        lines[0].ends_with(&format!(
            "{OPERATOR} cancel item:csub_item_r1 refused_by_clerk: 422"
        )),
        "{lines:?}"
    );
    let (_, page) = get_page(&app, "/admin/payers/user/user_pay2?done=1", Some(&op)).await;
    assert!(page.contains("refused_by_clerk: 422"));
}

#[tokio::test]
async fn acting_needs_a_recent_sign_in_and_the_apps_own_origin() {
    let api = backend_api().await;
    let app = console_app(&api).await;
    deliver_item(
        &app,
        "csub_item_f1",
        "user_pay3",
        "pro",
        now() * 1000 - 60_000,
    )
    .await;
    let fresh = token(OPERATOR, Some(9));
    let (_, page) = get_page(&app, "/admin/payers/user/user_pay3", Some(&fresh)).await;
    let t = form_token(&page, "/admin/items/csub_item_f1/cancel");
    let cancel = |tok: String, origin: &'static str| {
        let app = &app;
        let t = t.clone();
        async move {
            post(
                app,
                "/admin/items/csub_item_f1/cancel",
                Some(&tok),
                origin,
                &[("form_token", &t), ("end_now", "true")],
            )
            .await
        }
    };
    // Viewing needs no recent sign-in; acting does.
    for stale in [
        token(OPERATOR, Some(10)),
        sign_token(&keys().0, &with(claims(OPERATOR), "fva", json!([0, 500]))),
        token(OPERATOR, Some(11)),
        token(OPERATOR, Some(600)),
        token(OPERATOR, None),
        token(OPERATOR, Some(-1)),
        sign_token(&keys().0, &with(claims(OPERATOR), "fva", json!(["0", -1]))),
    ] {
        let (status, _) = get_page(&app, "/admin", Some(&stale)).await;
        assert_eq!(status, 200);
        let r = cancel(stale, ORIGIN).await;
        assert_eq!(r.status(), 403);
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["error"]["code"], "reverification_required");
        assert!(body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("/sign-in"));
    }
    // A browser is offered a way to sign in again.
    let r = app
        .client
        .post(app.url("/admin/items/csub_item_f1/cancel"))
        .header("origin", ORIGIN)
        .header("accept", "text/html")
        .header("content-type", "application/x-www-form-urlencoded")
        .bearer_auth(token(OPERATOR, Some(30)))
        .body(format!("form_token={t}&end_now=true"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let html = r.text().await.unwrap();
    assert!(html.contains("reverification_required") && html.contains("href=\"/sign-in\""));
    // Another origin, however fresh the sign-in: refused before the console reads the form.
    for origin in ["https://evil.example", "http://localhost:3001", "null"] {
        let r = cancel(fresh.clone(), origin).await;
        assert_eq!(r.status(), 403, "{origin}");
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["error"]["code"], "cross_origin");
    }
    assert!(
        api.calls.lock().unwrap().is_empty(),
        "no Backend API call was made"
    );
    // The refusals for the sign-in's age are audited (the cross-origin ones never reached it).
    let lines = audit_lines(&app).await;
    assert_eq!(lines.len(), 8, "{lines:?}");
    assert!(lines
        .iter()
        .all(|l| l.ends_with("cancel item:csub_item_f1 refused: reverification_required")));
    // The token was not spent by the refusals: with a fresh sign-in it acts.
    let r = cancel(fresh, ORIGIN).await;
    assert_eq!(r.status(), 303);
    assert_eq!(api.calls.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn a_form_acts_once_and_only_for_the_operator_it_was_issued_to() {
    let api = backend_api().await;
    let app = spawn_with(Options {
        extra: vec![
            ("CLERK_SECRET_KEY", SECRET_KEY.to_string()),
            ("CLERK_API_URL", api.url.clone()),
            ("RECONCILE_INTERVAL_SECS", "0".to_string()),
            ("ADMIN_USER_IDS", format!("{OPERATOR},user_op2")),
        ],
        ..Default::default()
    })
    .await;
    deliver_item(
        &app,
        "csub_item_o1",
        "user_pay4",
        "pro",
        now() * 1000 - 60_000,
    )
    .await;
    let op = token(OPERATOR, Some(0));
    let (_, page) = get_page(&app, "/admin/payers/user/user_pay4", Some(&op)).await;
    let t = form_token(&page, "/admin/items/csub_item_o1/cancel");
    let fields = [("form_token", t.as_str()), ("end_now", "false")];
    // Submitted twice at once and once more later: one acts.
    let (a, b) = tokio::join!(
        post(
            &app,
            "/admin/items/csub_item_o1/cancel",
            Some(&op),
            ORIGIN,
            &fields
        ),
        post(
            &app,
            "/admin/items/csub_item_o1/cancel",
            Some(&op),
            ORIGIN,
            &fields
        ),
    );
    let mut statuses = vec![a.status().as_u16(), b.status().as_u16()];
    let again = post(
        &app,
        "/admin/items/csub_item_o1/cancel",
        Some(&op),
        ORIGIN,
        &fields,
    )
    .await;
    statuses.push(again.status().as_u16());
    statuses.sort();
    assert_eq!(statuses, vec![303, 409, 409]);
    // Another operator cannot use this operator's token; no token, or a made-up one, acts neither.
    let (_, page) = get_page(&app, "/admin/payers/user/user_pay4", Some(&op)).await;
    let unused = form_token(&page, "/admin/items/csub_item_o1/cancel");
    let op2 = token("user_op2", Some(0));
    for (who, fields) in [
        (
            "another operator",
            vec![("form_token", unused.as_str()), ("end_now", "false")],
        ),
        ("no token", vec![("end_now", "false")]),
        (
            "an empty token",
            vec![("form_token", ""), ("end_now", "false")],
        ),
        (
            "a made-up token",
            vec![
                (
                    "form_token",
                    "00112233445566778899aabbccddeeff0011223344556677",
                ),
                ("end_now", "false"),
            ],
        ),
    ] {
        let r = post(
            &app,
            "/admin/items/csub_item_o1/cancel",
            Some(&op2),
            ORIGIN,
            &fields,
        )
        .await;
        assert_eq!(r.status(), 409, "{who}");
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["error"]["code"], "form_token", "{who}");
    }
    assert_eq!(
        api.calls.lock().unwrap().len(),
        1,
        "one Backend API call in all"
    );
    let lines = audit_lines(&app).await;
    assert_eq!(
        lines
            .iter()
            .filter(|l| l.ends_with("refused: form_token"))
            .count(),
        6,
        "{lines:?}"
    );
    assert_eq!(lines.iter().filter(|l| l.ends_with(" done")).count(), 1);
    // The operator's unused token still acts (it was never theirs to lose).
    let r = post(
        &app,
        "/admin/items/csub_item_o1/cancel",
        Some(&op),
        ORIGIN,
        &[("form_token", unused.as_str()), ("end_now", "false")],
    )
    .await;
    assert_eq!(r.status(), 303);
}

#[tokio::test]
async fn bad_fields_are_refused_before_anything_is_done() {
    let api = backend_api().await;
    let app = console_app(&api).await;
    deliver_item(
        &app,
        "csub_item_b1",
        "user_pay5",
        "pro",
        now() * 1000 - 60_000,
    )
    .await;
    let op = token(OPERATOR, Some(0));
    let (_, page) = get_page(&app, "/admin/payers/user/user_pay5", Some(&op)).await;
    let t = form_token(&page, "/admin/items/csub_item_b1/cancel");
    for (path, fields, code) in [
        (
            "/admin/items/csub_item_b1/cancel",
            vec![("end_now", "yes")],
            "invalid_end_now",
        ),
        (
            "/admin/items/csub_item_b1/cancel",
            vec![],
            "invalid_end_now",
        ),
        (
            "/admin/items/csub_item_b1/extend-trial",
            vec![("extend_to", "next week")],
            "invalid_extend_to",
        ),
        (
            "/admin/items/csub_item_b1/extend-trial",
            vec![("extend_to", "2001-01-01T00:00:00Z")],
            "invalid_extend_to",
        ),
        (
            "/admin/payers/user/user_pay5/grant",
            vec![("feature", "premium_api"), ("units", "0")],
            "invalid_units",
        ),
        (
            "/admin/payers/user/user_pay5/grant",
            vec![("feature", "premium_api"), ("units", "-5")],
            "invalid_units",
        ),
        (
            "/admin/payers/user/user_pay5/grant",
            vec![("feature", "premium"), ("units", "5")],
            "invalid_feature",
        ),
    ] {
        let mut f = fields.clone();
        f.push(("form_token", &t));
        let r = post(&app, path, Some(&op), ORIGIN, &f).await;
        assert_eq!(r.status(), 400, "{path} {fields:?}");
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["error"]["code"], code, "{path} {fields:?}");
    }
    // Every refusal is in the audit log, nothing asked of Clerk.
    let lines = audit_lines(&app).await;
    assert_eq!(lines.len(), 7, "{lines:?}");
    assert!(lines
        .iter()
        .any(|l| l.ends_with("cancel item:csub_item_b1 refused: invalid_end_now")));
    assert!(lines
        .iter()
        .any(|l| l.ends_with("grant user:user_pay5 refused: invalid_units")));
    assert!(api.calls.lock().unwrap().is_empty());
    // The token was not spent on a bad form.
    let r = post(
        &app,
        "/admin/items/csub_item_b1/cancel",
        Some(&op),
        ORIGIN,
        &[
            ("form_token", &t),
            ("end_now", "false"),
            ("back", "//evil.example/admin"),
        ],
    )
    .await;
    assert_eq!(r.status(), 303);
    assert_eq!(
        r.headers()["location"],
        format!("{APP_URL}/admin?done=1").as_str()
    );
    assert_eq!(api.calls.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn granted_units_are_spendable_this_period_at_once() {
    let api = backend_api().await;
    let app = console_app(&api).await;
    // Starter: 20 premium API calls a month.
    deliver_item(
        &app,
        "csub_item_g1",
        "user_pay6",
        "starter",
        now() * 1000 - 60_000,
    )
    .await;
    let user = sign_token(&keys().0, &claims("user_pay6"));
    let mut ok = 0;
    for _ in 0..25 {
        if app
            .get_with_token("/api/premium-feature", &user)
            .await
            .status()
            == 200
        {
            ok += 1;
        }
    }
    assert_eq!(ok, 20);
    let op = token(OPERATOR, Some(0));
    let (_, page) = get_page(&app, "/admin/payers/user/user_pay6", Some(&op)).await;
    assert!(page.contains("data-testid=\"usage\""), "usage is shown");
    let r = act(
        &app,
        &op,
        "/admin/payers/user/user_pay6",
        "/admin/payers/user/user_pay6/grant",
        &[("feature", "premium_api"), ("units", "5")],
    )
    .await;
    assert_eq!(r.status(), 303);
    let mut more = 0;
    for _ in 0..8 {
        if app
            .get_with_token("/api/premium-feature", &user)
            .await
            .status()
            == 200
        {
            more += 1;
        }
    }
    assert_eq!(more, 5, "exactly the granted units, at once");
    let usage: Value = app
        .client
        .get(app.url("/api/usage"))
        .bearer_auth(&user)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(usage["features"]["premium_api"]["limit"], 25, "{usage}");
    let lines = audit_lines(&app).await;
    assert!(
        lines[0].contains(&format!(
            "{OPERATOR} grant user:user_pay6 done: 5 extra until "
        )),
        "{lines:?}"
    );
    // (The usage alerts asked who the user is, having no address stored.)
    assert!(
        api.calls
            .lock()
            .unwrap()
            .iter()
            .all(|(m, p, _)| m == "GET" && p == "/v1/users/user_pay6"),
        "a grant is this app's own"
    );
}

#[tokio::test]
async fn a_dead_letter_is_replayed_from_the_console() {
    let api = backend_api().await;
    let app = console_app(&api).await;
    // A well-signed event that cannot be applied (its plan has no slug): a dead letter.
    let mut bad = item_event(
        "subscriptionItem.active",
        "active",
        "csub_item_d1",
        "user_pay7",
        now() * 1000,
    );
    bad["data"]["plan"].as_object_mut().unwrap().remove("slug");
    let id = msg_id();
    assert_eq!(app.deliver(&id, &bad).await.status(), 422);
    let op = token(OPERATOR, Some(0));
    let (_, page) = get_page(&app, "/admin/dead-letters", Some(&op)).await;
    assert!(page.contains(&id), "{page}");
    let (_, home) = get_page(&app, "/admin", Some(&op)).await;
    assert!(home.contains("data-testid=\"dead-letters\"><a href=\"/admin/dead-letters\">1</a>"));
    let r = act(
        &app,
        &op,
        "/admin/dead-letters",
        &format!("/admin/deliveries/{id}/replay"),
        &[("back", "/admin/dead-letters")],
    )
    .await;
    assert_eq!(r.status(), 303);
    let lines = audit_lines(&app).await;
    assert!(
        lines[0].ends_with(&format!(
            "{OPERATOR} replay delivery:{id} failed: the delivery still cannot be applied"
        )),
        "still unreadable, and said so: {lines:?}"
    );
}

#[tokio::test]
async fn the_demo_operator_cancels_through_the_demo_clerk_and_its_webhooks() {
    let app = spawn_with(Options {
        demo: true,
        ..Default::default()
    })
    .await;
    let alice = demo_sign_in(&app, "alice").await;
    let cookie = alice.join("; ");
    let r = app
        .client
        .post(app.url("/demo/action"))
        .header("cookie", &cookie)
        .form(&[("action", "subscribe"), ("plan", "pro")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let operator = demo_sign_in(&app, "operator").await.join("; ");
    let page = app
        .client
        .get(app.url("/admin/payers/user/user_demo_alice"))
        .header("cookie", &operator)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let item = page
        .split("/admin/items/")
        .nth(1)
        .and_then(|s| s.split('/').next())
        .expect("an item form")
        .to_string();
    let action = format!("/admin/items/{item}/cancel");
    let t = form_token(&page, &action);
    let r = app
        .client
        .post(app.url(&action))
        .header("cookie", &operator)
        .form(&[("form_token", t.as_str()), ("end_now", "false")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    // The demo's Clerk answered with signed webhooks: the item is canceled the production way.
    assert_eq!(
        app.item(&item).await.unwrap().status,
        plangate::billing::Status::Canceled
    );
    let lines = audit_lines(&app).await;
    assert!(lines[0].ends_with(&format!("user_demo_operator cancel item:{item} done")));
    // A trial is extended the same way: the new end arrives by the demo Clerk's webhook.
    let dana = demo_sign_in(&app, "dana").await.join("; ");
    let r = app
        .client
        .post(app.url("/demo/action"))
        .header("cookie", &dana)
        .form(&[("action", "trial"), ("plan", "pro")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let page = app
        .client
        .get(app.url("/admin/payers/user/user_demo_dana"))
        .header("cookie", &operator)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let trial_item = page
        .split("/admin/items/")
        .skip(1)
        .find_map(|s| s.split_once("/extend-trial").map(|(id, _)| id.to_string()))
        .filter(|id| !id.contains('/'))
        .expect("an extend form for the trial");
    let action = format!("/admin/items/{trial_item}/extend-trial");
    let to_ms = (now() + 30 * 86_400) * 1000;
    let to = plangate::billing::operator::rfc3339(to_ms);
    let r = app
        .client
        .post(app.url(&action))
        .header("cookie", &operator)
        .form(&[
            ("form_token", form_token(&page, &action).as_str()),
            ("extend_to", to.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let extended = app.item(&trial_item).await.unwrap();
    assert!(extended.is_free_trial);
    assert_eq!(extended.period_end, Some(to_ms));
    // The paid item of alice has no trial: the demo Clerk refuses, as Clerk does.
    let alice_page = app
        .client
        .get(app.url("/admin/payers/user/user_demo_alice"))
        .header("cookie", &operator)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let r = app
        .client
        .post(app.url(&format!("/admin/items/{item}/extend-trial")))
        .header("cookie", &operator)
        .form(&[
            (
                "form_token",
                form_token(&alice_page, &format!("/admin/items/{item}/cancel")).as_str(),
            ),
            ("extend_to", to.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        400,
        "no trial to extend: refused before anyone is asked"
    );
    let lines = audit_lines(&app).await;
    assert!(
        lines[0].ends_with(&format!(
            "extend_trial item:{item} refused: invalid_extend_to"
        )),
        "{lines:?}"
    );
    assert!(
        lines[1].ends_with(&format!("extend_trial item:{trial_item} done")),
        "{lines:?}"
    );
    // Alice is no operator.
    let r = app
        .client
        .get(app.url("/admin"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
}

/// The audit row of an action that waits on Clerk is written before Clerk is asked and
/// completed after it answers, though the operator's browser left long before.
#[tokio::test]
async fn an_action_waiting_on_a_slow_clerk_is_audited_first_and_completed_after_the_browser_left() {
    let api = backend_api().await;
    let app = console_app(&api).await;
    deliver_item(
        &app,
        "csub_item_w1",
        "user_payw",
        "pro",
        now() * 1000 - 60_000,
    )
    .await;
    let op = token(OPERATOR, Some(0));
    let (_, page) = get_page(&app, "/admin/payers/user/user_payw", Some(&op)).await;
    let t = form_token(&page, "/admin/items/csub_item_w1/cancel");
    api.delay_ms
        .store(3_000, std::sync::atomic::Ordering::SeqCst);
    // The browser gives up (a closed tab) half a second in.
    let gone = app
        .client
        .post(app.url("/admin/items/csub_item_w1/cancel"))
        .header("origin", ORIGIN)
        .header("content-type", "application/x-www-form-urlencoded")
        .bearer_auth(&op)
        .body(format!("form_token={t}&end_now=true"))
        .timeout(std::time::Duration::from_millis(500))
        .send()
        .await;
    assert!(gone.is_err(), "the request was cut: {gone:?}");
    let lines = audit_lines(&app).await;
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(
        lines[0].ends_with("cancel item:csub_item_w1 pending"),
        "{lines:?}"
    );
    let mut last = String::new();
    for _ in 0..100 {
        last = audit_lines(&app).await.remove(0);
        if !last.ends_with("pending") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(last.ends_with("cancel item:csub_item_w1 done"), "{last}");
    assert_eq!(api.calls.lock().unwrap().len(), 1, "asked once");
    // Posting the form again says it was used, not that nothing happened at Clerk.
    api.delay_ms.store(0, std::sync::atomic::Ordering::SeqCst);
    let again = post(
        &app,
        "/admin/items/csub_item_w1/cancel",
        Some(&op),
        ORIGIN,
        &[("form_token", &t), ("end_now", "true")],
    )
    .await;
    assert_eq!(again.status(), 409);
}

/// A 5xx (after the retries) or no answer leaves what Clerk did unknown: never "nothing
/// changed".
#[tokio::test]
async fn a_5xx_from_clerk_is_unknown_not_nothing_changed() {
    let api = backend_api().await;
    let app = console_app(&api).await;
    deliver_item(
        &app,
        "csub_item_u5",
        "user_payu",
        "pro",
        now() * 1000 - 60_000,
    )
    .await;
    let op = token(OPERATOR, Some(0));
    let (_, page) = get_page(&app, "/admin/payers/user/user_payu", Some(&op)).await;
    for _ in 0..8 {
        api.script.lock().unwrap().push_back((503, None));
    }
    let t = form_token(&page, "/admin/items/csub_item_u5/cancel");
    let r = post(
        &app,
        "/admin/items/csub_item_u5/cancel",
        Some(&op),
        ORIGIN,
        &[("form_token", &t), ("end_now", "false")],
    )
    .await;
    assert_eq!(r.status(), 303);
    let lines = audit_lines(&app).await;
    assert!(
        lines[0].ends_with("cancel item:csub_item_u5 unknown: Clerk answered 503"),
        "{lines:?}"
    );
    let (_, page) = get_page(&app, "/admin/payers/user/user_payu?done=1", Some(&op)).await;
    assert!(page.contains("unknown: Clerk answered 503"), "{page}");
    assert!(!page.contains("nothing changed"));
}

/// Extending a trial only extends it: an end at or before the current one is refused before
/// Clerk is asked, and audited.
#[tokio::test]
async fn a_trial_is_only_ever_extended() {
    let api = backend_api().await;
    let app = console_app(&api).await;
    let end = (now() + 10 * 86_400) * 1000;
    deliver_trial(&app, "csub_item_t1", "user_payt", end).await;
    let op = token(OPERATOR, Some(0));
    let (_, page) = get_page(&app, "/admin/payers/user/user_payt", Some(&op)).await;
    let t = form_token(&page, "/admin/items/csub_item_t1/cancel");
    let rfc = plangate::billing::operator::rfc3339;
    for earlier in [end - 86_400_000, end, end + 366 * 86_400_000] {
        let r = post(
            &app,
            "/admin/items/csub_item_t1/extend-trial",
            Some(&op),
            ORIGIN,
            &[("form_token", &t), ("extend_to", &rfc(earlier))],
        )
        .await;
        assert_eq!(r.status(), 400, "{}", rfc(earlier));
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["error"]["code"], "invalid_extend_to");
    }
    assert!(api.calls.lock().unwrap().is_empty(), "nobody was asked");
    let lines = audit_lines(&app).await;
    assert_eq!(lines.len(), 3);
    assert!(lines
        .iter()
        .all(|l| l.ends_with("extend_trial item:csub_item_t1 refused: invalid_extend_to")));
    let r = post(
        &app,
        "/admin/items/csub_item_t1/extend-trial",
        Some(&op),
        ORIGIN,
        &[("form_token", &t), ("extend_to", &rfc(end + 86_400_000))],
    )
    .await;
    assert_eq!(r.status(), 303);
    assert_eq!(api.calls.lock().unwrap().len(), 1);
}

/// A Clerk slower than the request timeout (30 s): the request is cut with `408`, and the action
/// goes on in its own task to its own deadline; its audit row ends `unknown`, never "nothing
/// changed" (each attempt timed out: whether Clerk acted cannot be known).
#[tokio::test]
async fn a_clerk_slower_than_the_request_timeout_leaves_an_audit_row_that_says_unknown() {
    let api = backend_api().await;
    let app = console_app(&api).await;
    deliver_item(
        &app,
        "csub_item_s9",
        "user_pays",
        "pro",
        now() * 1000 - 60_000,
    )
    .await;
    let op = token(OPERATOR, Some(0));
    let (_, page) = get_page(&app, "/admin/payers/user/user_pays", Some(&op)).await;
    let t = form_token(&page, "/admin/items/csub_item_s9/cancel");
    // Longer than the client's 10 s per attempt: every attempt times out.
    api.delay_ms
        .store(11_000, std::sync::atomic::Ordering::SeqCst);
    let r = post(
        &app,
        "/admin/items/csub_item_s9/cancel",
        Some(&op),
        ORIGIN,
        &[("form_token", &t), ("end_now", "true")],
    )
    .await;
    assert_eq!(r.status(), 408, "the request timeout cut the request");
    assert!(audit_lines(&app).await[0].ends_with("cancel item:csub_item_s9 pending"));
    let mut last = String::new();
    for _ in 0..400 {
        last = audit_lines(&app).await.remove(0);
        if !last.ends_with("pending") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(
        last.contains("cancel item:csub_item_s9 unknown: "),
        "completed, and not as a refusal: {last}"
    );
    assert!(
        api.calls.lock().unwrap().len() >= 2,
        "every attempt timed out and was retried"
    );
}

/// One summary of a payer's plan: the console's payer page and `GET /api/billing` word it as
/// the subscriber's own billing page does.
#[tokio::test]
async fn the_payer_page_words_the_plan_as_the_subscribers_own_pages_do() {
    let api = backend_api().await;
    let app = console_app(&api).await;
    let t = now() * 1000 - 60_000;
    let end = t + 20 * 86_400_000;
    let mut ev = item_event(
        "subscriptionItem.active",
        "active",
        "csub_item_s1",
        "user_sum1",
        t,
    );
    ev["data"]["period_start"] = json!(t - 10 * 86_400_000);
    ev["data"]["period_end"] = json!(end);
    ev["data"]["is_free_trial"] = json!(true);
    assert_eq!(app.deliver(&msg_id(), &ev).await.status(), 200);
    let date = format!(
        "Trial ends on {}",
        plangate::billing::dates::day_in_words(end)
    );

    let op = token(OPERATOR, Some(0));
    let (status, page) = get_page(&app, "/admin/payers/user/user_sum1", Some(&op)).await;
    assert_eq!(status, 200);
    let line = format!("Pro · $20.00 a month · Free trial · {date}");
    assert!(
        page.contains(&format!("data-testid=\"plan-summary\">{line}<")),
        "{page}"
    );

    let subscriber = token("user_sum1", None);
    let (_, own) = get_page(&app, "/dashboard/billing", Some(&subscriber)).await;
    for words in ["Pro", "$20.00 a month", "Free trial", date.as_str()] {
        assert!(own.contains(words), "{words}: {own}");
    }
    let body: Value = app
        .client
        .get(app.url("/api/billing"))
        .bearer_auth(&subscriber)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(body["plan_name"], "Pro");
    assert_eq!(body["price"], "$20.00 a month");
    assert_eq!(body["status_words"], "Free trial");
    assert_eq!(body["date_line"], date.as_str());
    assert_eq!(body["paid"], true);
    // A payer with nothing stored: no plan, in words too.
    let (_, none) = get_page(&app, "/admin/payers/user/user_sum2", Some(&op)).await;
    assert!(
        none.contains("data-testid=\"plan-summary\">No plan<"),
        "{none}"
    );
}
