//! Operations (README, "Operations"): reconciliation against a stand-in Backend API, dead letters and
//! replay, retention, and the metrics an operator scrapes.

use std::{sync::Arc, time::Duration};

use plangate::billing::Status;
use serde_json::{json, Value};

use crate::helpers::*;

const DAY_MS: i64 = 86_400_000;

fn entitled_token(user: &str) -> String {
    sign_token(&keys().0, &claims(user))
}

#[tokio::test]
async fn a_missed_cancellation_is_corrected_by_the_sweep() {
    let api = backend_api().await;
    let app = app_with_api(&api, vec![]).await;
    let t = now() * 1000 - 60_000;
    let resp = app
        .deliver(
            &msg_id(),
            &item_event(
                "subscriptionItem.active",
                "active",
                "csub_item_c1",
                "user_c1",
                t,
            ),
        )
        .await;
    assert_eq!(resp.status(), 200);
    let token = entitled_token("user_c1");
    assert_eq!(
        app.get_with_token("/api/premium-feature", &token)
            .await
            .status(),
        200
    );

    // The cancellation's webhook never came; Clerk's Backend API knows the item ended.
    api.items.lock().unwrap().push(api_item(
        "csub_item_c1",
        "user_c1",
        "pro",
        "ended",
        t + 30_000,
    ));
    let (code, out, err) = app.command(&["reconcile", "--all"], &[]).await;
    assert_eq!(code, 0, "{out}{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 2, "{out}");
    assert_eq!(
        lines[0],
        format!(
            "corrected csub_item_c1 (user user_c1): pro active -> pro ended \
             [reconcile_csub_item_c1_{}_ended]",
            t + 30_000
        )
    );
    assert_eq!(lines[1], "1 checked, 1 corrected");

    assert_eq!(
        app.item("csub_item_c1").await.unwrap().status,
        Status::Ended
    );
    // The command ran in another process; this instance's cache lives at most a second.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(
        app.get_with_token("/api/premium-feature", &token)
            .await
            .status(),
        403
    );

    // The correction is an inbox row of its own, and the request was Clerk's.
    let rows = app.state.inbox().list(false, 10).await.unwrap();
    assert!(
        rows.iter()
            .any(|r| r.svix_id.starts_with("reconcile_") && r.outcome == "applied"),
        "{rows:?}"
    );
    let requests = api.requests.lock().unwrap().clone();
    assert_eq!(
        requests.len(),
        1,
        "one page, no per-payer call: {:?}",
        api.paths()
    );
    let (path, headers) = &requests[0];
    assert_eq!(path, "/v1/billing/subscription_items?limit=100&offset=0");
    assert_eq!(headers["authorization"], format!("Bearer {SECRET_KEY}"));
    assert_eq!(headers["clerk-api-version"], "2026-05-12");

    // Run again: nothing left to correct, nothing new stored.
    let before = app.event_count().await;
    let (code, out, _) = app.command(&["reconcile", "--all"], &[]).await;
    assert_eq!((code, out.as_str()), (0, "1 checked, 0 corrected\n"));
    assert_eq!(app.event_count().await, before);
}

#[tokio::test]
async fn an_older_api_state_does_not_overwrite_a_newer_webhook() {
    let api = backend_api().await;
    let app = app_with_api(&api, vec![]).await;
    let t = now() * 1000 - 60_000;
    app.deliver(
        &msg_id(),
        &item_event(
            "subscriptionItem.ended",
            "ended",
            "csub_item_o1",
            "user_o1",
            t,
        ),
    )
    .await;
    // Clerk's API lags behind (an older read): it still says active.
    let sub = json!({
        "object": "commerce_subscription",
        "id": "csub_o1",
        "subscription_items": [api_item("csub_item_o1", "user_o1", "pro", "active", t - 10_000)],
    });
    api.subscriptions
        .lock()
        .unwrap()
        .insert("user_o1".into(), sub);
    let (code, out, err) = app.command(&["reconcile", "--user", "user_o1"], &[]).await;
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(out, "1 checked, 0 corrected\n");
    assert_eq!(
        app.item("csub_item_o1").await.unwrap().status,
        Status::Ended
    );
    assert_eq!(api.paths(), vec!["/v1/users/user_o1/billing/subscription"]);

    // Also when the writer is asked directly: the ordering rule, not the comparison, decides.
    let stale = json!({
        "type": "subscriptionItem.active",
        "timestamp": t - 10_000,
        "data": api_item("csub_item_o1", "user_o1", "pro", "active", t - 10_000),
    });
    let r = app
        .state
        .inbox()
        .correct(
            "reconcile_forced".into(),
            stale.to_string().as_bytes(),
            now() * 1000,
        )
        .await
        .unwrap();
    assert_eq!(r.outcome.as_str(), "stale");
    assert_eq!(
        app.item("csub_item_o1").await.unwrap().status,
        Status::Ended
    );
}

#[tokio::test]
async fn a_payer_clerk_has_no_subscription_for_loses_their_live_items() {
    let api = backend_api().await;
    let app = app_with_api(&api, vec![]).await;
    let t = now() * 1000 - 60_000;
    app.deliver(
        &msg_id(),
        &item_event(
            "subscriptionItem.active",
            "active",
            "csub_item_g1",
            "user_g1",
            t,
        ),
    )
    .await;
    // Not in the list and the payer's subscription is gone (404): the item has ended.
    let (code, out, err) = app.command(&["reconcile", "--all"], &[]).await;
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.ends_with("1 checked, 1 corrected\n"), "{out}");
    assert_eq!(
        api.paths(),
        vec![
            "/v1/billing/subscription_items?limit=100&offset=0",
            "/v1/users/user_g1/billing/subscription"
        ],
        "one call for the payer"
    );
    assert_eq!(
        app.item("csub_item_g1").await.unwrap().status,
        Status::Ended
    );
}

/// The API item without its `payer` object (the list may name the payer only by Clerk's id).
fn without_payer(mut v: Value) -> Value {
    v.as_object_mut().unwrap().remove("payer");
    v
}

#[tokio::test]
async fn the_sweep_takes_a_listed_items_payer_from_the_database_and_skips_unknown_ones() {
    let api = backend_api().await;
    let app = app_with_api(&api, vec![]).await;
    let t = now() * 1000 - 60_000;
    app.deliver(
        &msg_id(),
        &item_event(
            "subscriptionItem.active",
            "active",
            "csub_item_k2",
            "user_k2",
            t,
        ),
    )
    .await;
    *api.items.lock().unwrap() = vec![
        without_payer(api_item(
            "csub_item_k2",
            "user_k2",
            "pro",
            "ended",
            t + 1000,
        )),
        without_payer(api_item("csub_item_unknown", "user_u", "pro", "active", t)),
    ];
    let report = app.state.reconciler().unwrap().sweep().await.unwrap();
    assert_eq!(report.lines().last().unwrap(), "2 checked, 1 corrected");
    let item = app.item("csub_item_k2").await.unwrap();
    assert_eq!(
        (item.status, item.payer.id.as_str()),
        (Status::Ended, "user_k2")
    );
    assert!(
        app.item("csub_item_unknown").await.is_none(),
        "no payer: not guessed"
    );
}

#[tokio::test]
async fn reconciling_one_payer_reads_items_that_name_no_payer_and_keeps_what_agrees() {
    let api = backend_api().await;
    let app = app_with_api(&api, vec![]).await;
    let t = now() * 1000 - 60_000;
    let delivered = item_event(
        "subscriptionItem.active",
        "active",
        "csub_item_a1",
        "user_a1",
        t,
    );
    app.deliver(&msg_id(), &delivered).await;
    // Clerk agrees about the first item and knows a second one the webhooks never brought.
    let same = without_payer(delivered["data"].clone());
    let new = without_payer(api_item("csub_item_a2", "user_a1", "team", "active", t + 5));
    api.subscriptions.lock().unwrap().insert(
        "user_a1".into(),
        json!({"object": "commerce_subscription", "subscription_items": [same, new]}),
    );
    let report = app
        .state
        .reconciler()
        .unwrap()
        .payer(&plangate::billing::Payer::user("user_a1"))
        .await
        .unwrap();
    assert_eq!(
        report.lines().last().unwrap(),
        "2 checked, 1 corrected",
        "{report:?}"
    );
    assert_eq!(report.corrected[0].item_id, "csub_item_a2");
    assert_eq!(
        app.item("csub_item_a1").await.unwrap().status,
        Status::Active
    );
    let new = app.item("csub_item_a2").await.unwrap();
    assert_eq!(
        (new.status, new.payer.id.as_str()),
        (Status::Active, "user_a1")
    );
}

#[tokio::test]
async fn the_sweep_pages_through_250_items() {
    let api = backend_api().await;
    let app = app_with_api(&api, vec![]).await;
    let t = now() * 1000 - 60_000;
    *api.items.lock().unwrap() = (0..250)
        .map(|n| {
            api_item(
                &format!("csub_item_p{n}"),
                &format!("user_p{n}"),
                "pro",
                "active",
                t,
            )
        })
        .collect();
    let report = app.state.reconciler().unwrap().sweep().await.unwrap();
    assert_eq!((report.checked, report.corrected.len()), (250, 250));
    assert_eq!(
        api.paths(),
        vec![
            "/v1/billing/subscription_items?limit=100&offset=0",
            "/v1/billing/subscription_items?limit=100&offset=100",
            "/v1/billing/subscription_items?limit=100&offset=200",
        ]
    );
    for n in [0, 99, 100, 249] {
        let item = app.item(&format!("csub_item_p{n}")).await.unwrap();
        assert_eq!(
            (item.status, item.payer.id.as_str()),
            (Status::Active, format!("user_p{n}").as_str())
        );
    }
}

#[tokio::test]
async fn a_429_is_waited_out_and_the_request_then_succeeds() {
    let api = backend_api().await;
    let app = app_with_api(&api, vec![]).await;
    let t = now() * 1000;
    api.items
        .lock()
        .unwrap()
        .push(api_item("csub_item_r1", "user_r1", "pro", "active", t));
    api.script.lock().unwrap().push_back((429, Some(1)));
    let (code, out, err) = app.command(&["reconcile", "--all"], &[]).await;
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.ends_with("1 checked, 1 corrected\n"), "{out}");
    assert_eq!(
        api.paths().len(),
        2,
        "the refused request, then the same again"
    );
    assert_eq!(api.paths()[0], api.paths()[1]);
}

#[tokio::test]
async fn an_unreachable_api_exits_1_and_the_background_sweep_tries_again() {
    // Nothing listens here.
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead_url = format!("http://{}", dead.local_addr().unwrap());
    drop(dead);
    let api = backend_api().await;
    let app = app_with_api(&api, vec![("RECONCILE_INTERVAL_SECS", "1".into())]).await;
    let (code, out, err) = app
        .command(&["reconcile", "--all"], &[("CLERK_API_URL", &dead_url)])
        .await;
    assert_eq!(code, 1, "{out}{err}");
    assert!(err.contains("could not be reached"), "{err}");
    assert!(
        !err.contains(SECRET_KEY),
        "the key never reaches the output: {err}"
    );

    // The background sweep meets a failing API first (every retry of one sweep refused),
    // and corrects the state on a later sweep.
    let t = now() * 1000;
    api.items
        .lock()
        .unwrap()
        .push(api_item("csub_item_b1", "user_b1", "pro", "active", t));
    for _ in 0..4 {
        api.script.lock().unwrap().push_back((503, None));
    }
    let mut corrected = false;
    for _ in 0..150 {
        if app.item("csub_item_b1").await.is_some() {
            corrected = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(corrected, "requests: {:?}", api.paths());
    assert!(
        api.paths().len() >= 5,
        "4 refused, then one that worked: {:?}",
        api.paths()
    );
}

#[tokio::test]
async fn the_checkout_return_reconciles_that_payer_instead_of_waiting() {
    let api = backend_api().await;
    let app = app_with_api(&api, vec![]).await;
    let t = now() * 1000;
    // Paid a moment ago; the webhook has not come.
    api.subscriptions.lock().unwrap().insert(
        "user_k1".into(),
        json!({"object": "commerce_subscription", "subscription_items": [
            api_item("csub_item_k1", "user_k1", "pro", "active", t)
        ]}),
    );
    // The browser's `__client_uat` is never newer than its session token: fixed once, before
    // signing, so a second that ticks over during the test cannot ask for a handshake.
    let uat = now() - 5;
    let token = entitled_token("user_k1");
    let page = |path: &'static str| {
        let (client, url, token) = (app.client.clone(), app.url(path), token.clone());
        async move {
            client
                .get(url)
                // As a browser on a development instance holds them (README, "Sessions").
                .header(
                    "cookie",
                    format!("__session={token}; __client_uat={uat}; __clerk_db_jwt=dvb_1"),
                )
                .header("accept", "text/html")
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap()
        }
    };
    let first = page("/dashboard?checkout=1").await;
    assert!(
        first.contains("data-testid=\"activating\""),
        "first look: activating, got {first}"
    );
    assert!(api.paths().is_empty(), "the first look does not call Clerk");

    let later = page("/dashboard?checkout=1&waited=1").await;
    assert!(!later.contains("data-testid=\"activating\""), "{later}");
    assert!(later.contains("Pro"), "the plan shows");
    assert_eq!(api.paths(), vec!["/v1/users/user_k1/billing/subscription"]);
    // Reloading again within the cooldown does not call Clerk again.
    page("/dashboard?checkout=1&waited=2").await;
    api.subscriptions.lock().unwrap().clear();
    assert_eq!(api.paths().len(), 1);
}

#[tokio::test]
async fn a_dead_letter_is_listed_and_applied_on_redelivery() {
    let app = spawn_with(Options {
        extra: vec![("METRICS_ADDR", "127.0.0.1:0".into())],
        ..Default::default()
    })
    .await;
    let t = now() * 1000;
    let good = item_event(
        "subscriptionItem.active",
        "active",
        "csub_item_d1",
        "user_d1",
        t,
    );
    let mut broken = good.clone();
    broken["data"]["plan"]
        .as_object_mut()
        .unwrap()
        .remove("slug");
    let id = msg_id();
    let resp = app.deliver(&id, &broken).await;
    assert_eq!(resp.status(), 422);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"]["code"], "unprocessable_event");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("plan.slug"),
        "{body}"
    );
    assert!(app.item("csub_item_d1").await.is_none(), "nothing applied");
    assert!(app.metrics().await.contains("plangate_inbox_failed 1"));

    let (code, out, _) = app.command(&["inbox", "list", "--failed"], &[]).await;
    assert_eq!(code, 0);
    let fields: Vec<&str> = out.trim().split(' ').collect();
    assert_eq!(
        fields[..3],
        [id.as_str(), "subscriptionItem.active", "failed"],
        "{out}"
    );
    assert!(
        fields[3].ends_with('Z') && fields[3].contains('T'),
        "RFC 3339: {out}"
    );

    // Svix retries; the redelivery (the parser now reads it) is attempted, not a duplicate.
    let resp = app.deliver(&id, &good).await;
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["outcome"], "applied");
    assert_eq!(
        app.item("csub_item_d1").await.unwrap().status,
        Status::Active
    );
    let (_, out, _) = app.command(&["inbox", "list", "--failed"], &[]).await;
    assert_eq!(out, "", "no dead letter left");
    assert!(app.metrics().await.contains("plangate_inbox_failed 0"));
    // And now it is a duplicate.
    let body: Value = app.deliver(&id, &good).await.json().await.unwrap();
    assert_eq!(body["outcome"], "duplicate");
}

#[tokio::test]
async fn non_json_is_400_and_stores_nothing() {
    let app = spawn_app().await;
    for body in ["{not json", "[1, 2]", r#"{"data": {}}"#] {
        let resp = app.deliver_signed(&msg_id(), now(), body, SECRET_A).await;
        assert_eq!(resp.status(), 400, "{body}");
    }
    assert_eq!(app.event_count().await, 0);
}

#[tokio::test]
async fn replay_respects_ordering_and_sends_no_second_mail() {
    let sink = smtp_sink().await;
    let app = spawn_with(Options {
        extra: vec![("SMTP_URL", format!("smtp://127.0.0.1:{}", sink.port))],
        ..Default::default()
    })
    .await;
    let t = now() * 1000 - 60_000;
    app.deliver(
        &msg_id(),
        &item_event(
            "subscriptionItem.active",
            "active",
            "csub_item_y1",
            "user_y1",
            t,
        ),
    )
    .await;
    let failure_id = msg_id();
    let resp = app
        .deliver(
            &failure_id,
            &failed_payment("csub_item_y1", "user_y1", t + 1000),
        )
        .await;
    assert_eq!(resp.status(), 200);
    app.mail_drained().await;
    // Recovered later.
    app.deliver(
        &msg_id(),
        &item_event(
            "subscriptionItem.active",
            "active",
            "csub_item_y1",
            "user_y1",
            t + 2000,
        ),
    )
    .await;

    let (code, out, err) = app
        .command(&["inbox", "replay", &failure_id, "msg_not_there"], &[])
        .await;
    assert_eq!(code, 1, "one of them was not found: {out}{err}");
    assert_eq!(
        out,
        format!(
            "{failure_id} stale\nmsg_not_there not replayed: no delivery msg_not_there is stored\n"
        )
    );
    assert_eq!(
        app.item("csub_item_y1").await.unwrap().status,
        Status::Active
    );
    tokio::time::sleep(Duration::from_millis(1500)).await;
    app.mail_drained().await;
    assert_eq!(sink.messages.lock().unwrap().len(), 1, "one mail, not two");
}

#[tokio::test]
async fn replay_applies_a_dead_letter_the_current_code_can_read() {
    let app = spawn_app().await;
    let t = now() * 1000;
    // A handled type with its data as a string: this version cannot apply it.
    let id = msg_id();
    let resp = app
        .deliver(&id, &json!({"type": "user.created", "data": "later"}))
        .await;
    assert_eq!(resp.status(), 422);
    let r = app.state.inbox().replay(&id).await.unwrap();
    assert_eq!(r.outcome.as_str(), "failed", "still cannot: {r:?}");
    assert!(r.reason.unwrap().contains("data"));

    // A correct delivery that was stored: replay goes through the same path and is stale
    // against itself (it is already the state shown).
    let ok = msg_id();
    app.deliver(
        &ok,
        &item_event(
            "subscriptionItem.active",
            "active",
            "csub_item_z1",
            "user_z1",
            t,
        ),
    )
    .await;
    assert_eq!(
        app.state
            .inbox()
            .replay(&ok)
            .await
            .unwrap()
            .outcome
            .as_str(),
        "stale"
    );
}

#[tokio::test]
async fn retention_removes_old_payloads_and_keeps_the_rows() {
    let first = spawn_app().await;
    let id = msg_id();
    let event = item_event(
        "subscriptionItem.active",
        "active",
        "csub_item_t1",
        "user_t1",
        now() * 1000,
    );
    first.deliver(&id, &event).await;
    let url = first
        .env
        .iter()
        .find(|(k, _)| k == "DATABASE_URL")
        .unwrap()
        .1
        .clone();
    let start = |days_ahead: i64| {
        let url = url.clone();
        let data = first.data_dir.to_path_buf();
        async move {
            let clock: plangate::startup::Clock =
                Arc::new(move || plangate::db::now_ms() + days_ahead * DAY_MS);
            spawn_with(Options {
                clock: Some(clock),
                reuse: Some((url, data)),
                ..Default::default()
            })
            .await
        }
    };
    // 29 days later (the default keeps 30): the payload is still there.
    let later = start(29).await;
    let mut conn = later.db.pool.acquire().await.unwrap();
    assert!(plangate::db::inbox::payload(&mut conn, &id)
        .await
        .unwrap()
        .is_some());
    drop(conn);
    // 31 days later, at start-up: gone; the row stays and a late redelivery is a duplicate.
    let much_later = start(31).await;
    let mut conn = much_later.db.pool.acquire().await.unwrap();
    assert_eq!(
        plangate::db::inbox::payload(&mut conn, &id).await.unwrap(),
        None
    );
    drop(conn);
    let body: Value = much_later.deliver(&id, &event).await.json().await.unwrap();
    assert_eq!(body["outcome"], "duplicate");
    let rows = much_later.state.inbox().list(false, 10).await.unwrap();
    assert!(rows.iter().any(|r| r.svix_id == id && r.purged), "{rows:?}");
    assert!(matches!(
        much_later.state.inbox().replay(&id).await,
        Err(plangate::services::InboxError::Purged(_))
    ));
}

/// The value of the series `name` (with its labels) in Prometheus text, 0 when absent.
fn series(text: &str, name: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or(0.0)
}

#[tokio::test]
async fn each_metric_is_counted_on_the_operators_listener_only() {
    let api = backend_api().await;
    let app = app_with_api(&api, vec![("METRICS_ADDR", "127.0.0.1:0".into())]).await;
    let t = now() * 1000 - 60_000;
    let applied = item_event(
        "subscriptionItem.active",
        "active",
        "csub_item_m1",
        "user_m1",
        t,
    );
    let id = msg_id();
    app.deliver(&id, &applied).await;
    app.deliver(&id, &applied).await; // duplicate
    app.deliver(
        &msg_id(),
        &item_event(
            "subscriptionItem.active",
            "active",
            "csub_item_m1",
            "user_m1",
            t - 5,
        ),
    )
    .await; // stale
    app.deliver(&msg_id(), &json!({"type": "email.created", "data": {}}))
        .await; // recorded
    app.deliver(&msg_id(), &json!({"type": "user.created", "data": 1}))
        .await; // failed
    app.deliver_signed(
        &msg_id(),
        now(),
        "{}",
        "whsec_dGhpcyBpcyBub3QgdGhlIHNlY3JldCBrZXk=",
    )
    .await; // rejected
    let token = entitled_token("user_m1");
    assert_eq!(
        app.get_with_token("/api/premium-feature", &token)
            .await
            .status(),
        200
    );
    let other = entitled_token("user_m2");
    assert_eq!(
        app.get_with_token("/api/premium-feature", &other)
            .await
            .status(),
        403
    );
    api.items.lock().unwrap().push(api_item(
        "csub_item_m1",
        "user_m1",
        "pro",
        "canceled",
        t + 1000,
    ));
    app.state.reconciler().unwrap().sweep().await.unwrap();

    let text = app.metrics().await;
    let w = |outcome: &str, ty: &str| {
        series(
            &text,
            &format!("plangate_webhooks_total{{outcome=\"{outcome}\",type=\"{ty}\"}}"),
        )
    };
    assert_eq!(w("applied", "subscriptionItem.active"), 1.0, "{text}");
    assert_eq!(w("duplicate", "subscriptionItem.active"), 1.0);
    assert_eq!(w("stale", "subscriptionItem.active"), 1.0);
    assert_eq!(w("recorded", "other"), 1.0);
    assert_eq!(w("failed", "user.created"), 1.0);
    assert_eq!(
        series(
            &text,
            "plangate_webhook_rejections_total{reason=\"bad_signature\"}"
        ),
        1.0
    );
    assert_eq!(series(&text, "plangate_webhook_apply_seconds_count"), 5.0);
    assert_eq!(series(&text, "plangate_inbox_failed"), 1.0);
    assert_eq!(series(&text, "plangate_outbox_pending"), 0.0);
    assert_eq!(
        series(&text, "plangate_gate_decisions_total{allowed=\"true\"}"),
        1.0
    );
    assert_eq!(
        series(&text, "plangate_gate_decisions_total{allowed=\"false\"}"),
        1.0
    );
    assert_eq!(series(&text, "plangate_reconcile_corrections_total"), 1.0);
    assert_eq!(
        series(&text, "plangate_reconcile_runs_total{result=\"ok\"}"),
        1.0
    );
    let last = series(&text, "plangate_reconcile_last_success_timestamp_seconds");
    assert!((last - now() as f64).abs() < 60.0, "{last}");
    assert_eq!(
        series(&text, "plangate_clerk_api_requests_total{status=\"2xx\"}"),
        1.0
    );

    // Never on the public port.
    let resp = app.client.get(app.url("/metrics")).send().await.unwrap();
    assert_eq!(resp.status(), 404);
}

#[tokio::test]
async fn the_demo_events_page_shows_a_dead_letter_with_replay_and_a_readable_time() {
    let app = spawn_with(Options {
        demo: true,
        ..Default::default()
    })
    .await;
    let secret = std::fs::read_to_string(app.data_dir.join("demo-webhook-secret")).unwrap();
    let id = msg_id();
    let resp = app
        .deliver_signed(
            &id,
            now(),
            &json!({"type": "subscriptionItem.active",
                    "data": {"id": "csub_item_e1", "payer": {"user_id": "user_demo_alice"}}})
            .to_string(),
            secret.trim(),
        )
        .await;
    assert_eq!(resp.status(), 422);
    let cookie = demo_sign_in(&app, "alice").await.join("; ");
    assert!(cookie.contains("__session="), "{cookie}");
    let html = app
        .client
        .get(app.url("/demo/events"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(html.contains(&id), "the dead letter is listed");
    assert!(
        html.contains("user.created"),
        "beside the user's own deliveries (the sign-in's user.created)"
    );
    assert!(
        html.contains("data-testid=\"replay\""),
        "with its Replay button"
    );
    assert!(html.contains("missing `plan.slug`"), "and its reason");
    let today = plangate::billing::dates::day_in_words(now() * 1000);
    assert!(
        html.contains(&format!("{today}, ")) && html.contains(" UTC"),
        "a readable time, in words: {today}"
    );
    assert!(!html.contains("ms<"), "no raw milliseconds");

    let replayed = app
        .client
        .post(app.url("/demo/replay"))
        .header("origin", APP_URL)
        .header("cookie", &cookie)
        .form(&[("svix_id", id.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(replayed.status(), 303, "back to the events page");
    let cross = app
        .client
        .post(app.url("/demo/replay"))
        .header("origin", "https://evil.example")
        .header("cookie", &cookie)
        .form(&[("svix_id", id.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(cross.status(), 403, "other origins are refused");
}
