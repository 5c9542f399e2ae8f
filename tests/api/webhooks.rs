//! The webhook inbox: verification, durability, exactly-once, ordering, redaction, mail.

use std::collections::HashMap;

use plangate::billing::Status;
use serde_json::{json, Value};

use crate::helpers::*;

type Headers = Vec<(&'static str, String)>;

#[tokio::test]
async fn every_clerk_example_payload_is_accepted_and_produces_its_state() {
    let app = spawn_app().await;
    let mut expected: HashMap<&str, &str> = HashMap::new();
    for (name, status) in [
        ("subscriptionItem.active", "active"),
        ("subscriptionItem.updated", "active"),
        ("subscriptionItem.canceled", "canceled"),
        ("subscriptionItem.upcoming", "upcoming"),
        ("subscriptionItem.ended", "ended"),
        ("subscriptionItem.abandoned", "abandoned"),
        ("subscriptionItem.incomplete", "incomplete"),
        ("subscriptionItem.pastDue", "past_due"),
        ("subscriptionItem.freeTrialEnding", "active"),
    ] {
        expected.insert(name, status);
    }
    let all = [
        "user.created",
        "user.updated",
        "user.deleted",
        "subscription.created",
        "subscription.updated",
        "subscription.active",
        "subscription.pastDue",
        "paymentAttempt.created",
        "paymentAttempt.updated",
        "subscriptionItem.active",
        "subscriptionItem.updated",
        "subscriptionItem.canceled",
        "subscriptionItem.upcoming",
        "subscriptionItem.ended",
        "subscriptionItem.abandoned",
        "subscriptionItem.incomplete",
        "subscriptionItem.pastDue",
        "subscriptionItem.freeTrialEnding",
    ];
    for name in all {
        let mut v = fixture(name);
        // One item per example, so each one's state can be checked on its own.
        let item = format!("csub_item_{}", name.replace('.', "_"));
        if v["data"]["object"] == "subscription_item" {
            v["data"]["id"] = json!(item);
        }
        let resp = app.deliver(&msg_id(), &v).await;
        assert_eq!(resp.status(), 200, "{name}: {}", resp.text().await.unwrap());
        if let Some(status) = expected.get(name) {
            let stored = app
                .item(&item)
                .await
                .unwrap_or_else(|| panic!("{name} stored no item"));
            assert_eq!(stored.status.as_str(), *status, "{name}");
            assert_eq!(stored.payer.id, "user_34D368EufHwugfYh4yyGNEheM0S");
        }
    }
    assert_eq!(app.event_count().await, all.len() as i64);
    // The subscription examples all describe the same item; the newest (pastDue) wins.
    let sub_item = app
        .item("csub_item_2g7np7Hrk0SN6kj5EDMLDaKNL0S")
        .await
        .unwrap();
    assert_eq!(sub_item.status, Status::PastDue);
    let free_trial = app
        .item("csub_item_subscriptionItem_freeTrialEnding")
        .await
        .unwrap();
    assert!(free_trial.is_free_trial);
    let mut conn = app.db.pool.acquire().await.unwrap();
    let user = plangate::db::users::get(&mut conn, "user_2g7np7Hrk0SN6kj5EDMLDaKNL0S")
        .await
        .unwrap()
        .unwrap();
    assert!(user.deleted, "user.deleted is the newest user event");
}

#[tokio::test]
async fn bad_deliveries_are_rejected_with_400_and_change_nothing() {
    let app = spawn_app().await;
    let body = item_event(
        "subscriptionItem.active",
        "active",
        "csub_item_bad",
        "user_bad",
        now() * 1000,
    )
    .to_string();
    let t = now();
    let sign = |id: &str, ts: i64, b: &str, s: &str| {
        let [_, _, (_, signature)] =
            plangate::demo::delivery::svix_headers(s, id, ts, b.as_bytes()).unwrap();
        signature
    };
    let url = app.url("/api/webhooks/clerk");
    let post = |headers: Headers, b: String| {
        let mut r = app.client.post(&url).body(b);
        for (k, v) in headers {
            r = r.header(k, v);
        }
        r.send()
    };
    let id = msg_id();
    let cases: Vec<(&str, Headers, String)> = vec![
        ("missing headers", vec![], body.clone()),
        (
            "wrong secret",
            vec![
                ("svix-id", id.clone()),
                ("svix-timestamp", t.to_string()),
                (
                    "svix-signature",
                    sign(&id, t, &body, "whsec_dGhpcyBpcyBub3QgdGhlIHNlY3JldCBrZXk="),
                ),
            ],
            body.clone(),
        ),
        (
            "tampered body",
            vec![
                ("svix-id", id.clone()),
                ("svix-timestamp", t.to_string()),
                ("svix-signature", sign(&id, t, &body, SECRET_A)),
            ],
            body.replace("active", "ended"),
        ),
        (
            "stale timestamp",
            vec![
                ("svix-id", id.clone()),
                ("svix-timestamp", (t - 600).to_string()),
                ("svix-signature", sign(&id, t - 600, &body, SECRET_A)),
            ],
            body.clone(),
        ),
        (
            "future timestamp",
            vec![
                ("svix-id", id.clone()),
                ("svix-timestamp", (t + 600).to_string()),
                ("svix-signature", sign(&id, t + 600, &body, SECRET_A)),
            ],
            body.clone(),
        ),
        (
            "signature for another svix-id",
            vec![
                ("svix-id", id.clone()),
                ("svix-timestamp", t.to_string()),
                ("svix-signature", sign("msg_other", t, &body, SECRET_A)),
            ],
            body.clone(),
        ),
        (
            "malformed JSON under a valid signature",
            vec![
                ("svix-id", id.clone()),
                ("svix-timestamp", t.to_string()),
                ("svix-signature", sign(&id, t, "{not json", SECRET_A)),
            ],
            "{not json".into(),
        ),
    ];
    for (name, headers, b) in cases {
        let resp = post(headers, b).await.unwrap();
        assert_eq!(resp.status(), 400, "{name}");
        let err: Value = resp.json().await.unwrap();
        assert!(
            err["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty()),
            "{name}: {err}"
        );
    }
    assert_eq!(app.event_count().await, 0);
    assert!(app.item("csub_item_bad").await.is_none());
    assert_eq!(app.state.inbox().rejected(), 6);

    // The same delivery, signed properly with the second configured secret, goes through.
    let resp = app.deliver_signed(&id, t, &body, SECRET_B).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(
        app.item("csub_item_bad").await.unwrap().status,
        Status::Active
    );
}

#[tokio::test]
async fn webhook_headers_without_the_svix_brand_are_accepted() {
    let app = spawn_app().await;
    let body = item_event(
        "subscriptionItem.active",
        "active",
        "csub_item_wh",
        "user_wh",
        now() * 1000,
    )
    .to_string();
    let (id, t) = (msg_id(), now());
    let sig = svix::webhooks::Webhook::new(SECRET_A)
        .unwrap()
        .sign(&id, t, body.as_bytes())
        .unwrap();
    let resp = app
        .client
        .post(app.url("/api/webhooks/clerk"))
        .header("webhook-id", &id)
        .header("webhook-timestamp", t.to_string())
        .header("webhook-signature", sig)
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert!(app.item("csub_item_wh").await.is_some());
}

#[tokio::test]
async fn bodies_over_256_kib_get_413() {
    let app = spawn_app().await;
    let big = format!(
        "{{\"type\":\"x\",\"data\":{{\"pad\":\"{}\"}}}}",
        "a".repeat(300 * 1024)
    );
    let resp = app.deliver_signed(&msg_id(), now(), &big, SECRET_A).await;
    assert_eq!(resp.status(), 413);
    assert_eq!(app.event_count().await, 0);
}

#[tokio::test]
async fn duplicate_delivery_is_acknowledged_and_applied_once() {
    let app = spawn_app().await;
    let id = msg_id();
    let at = now() * 1000;
    let first = app
        .deliver(
            &id,
            &item_event(
                "subscriptionItem.active",
                "active",
                "csub_item_dup",
                "user_dup",
                at,
            ),
        )
        .await;
    assert_eq!(first.json::<Value>().await.unwrap()["outcome"], "applied");
    // A different payload under the same svix-id is the same delivery: nothing changes.
    let again = app
        .deliver(
            &id,
            &item_event(
                "subscriptionItem.ended",
                "ended",
                "csub_item_dup",
                "user_dup",
                at + 5,
            ),
        )
        .await;
    assert_eq!(again.status(), 200);
    assert_eq!(again.json::<Value>().await.unwrap()["outcome"], "duplicate");
    assert_eq!(
        app.item("csub_item_dup").await.unwrap().status,
        Status::Active
    );
    assert_eq!(app.event_count().await, 1);
    let unknown = app
        .deliver(
            &msg_id(),
            &json!({"type": "organization.created", "data": {"id": "org_1"}}),
        )
        .await;
    assert_eq!(
        unknown.json::<Value>().await.unwrap()["outcome"],
        "recorded"
    );
}

#[tokio::test]
async fn fifty_concurrent_copies_of_a_failure_change_state_once_and_queue_one_mail() {
    let app = spawn_app().await;
    let at = now() * 1000;
    app.deliver(
        &msg_id(),
        &item_event(
            "subscriptionItem.active",
            "active",
            "csub_item_c",
            "user_c",
            at,
        ),
    )
    .await;
    let id = msg_id();
    let body = failed_payment("csub_item_c", "user_c", at + 10).to_string();
    let t = now();
    let futures: Vec<_> = (0..50)
        .map(|_| app.deliver_signed(&id, t, &body, SECRET_A))
        .collect();
    let responses = futures::future::join_all(futures).await;
    let mut outcomes: HashMap<String, usize> = HashMap::new();
    for r in responses {
        assert_eq!(r.status(), 200);
        *outcomes
            .entry(
                r.json::<Value>().await.unwrap()["outcome"]
                    .as_str()
                    .unwrap()
                    .to_string(),
            )
            .or_default() += 1;
    }
    assert_eq!(outcomes.get("applied"), Some(&1), "{outcomes:?}");
    assert_eq!(outcomes.get("duplicate"), Some(&49), "{outcomes:?}");
    assert_eq!(
        app.item("csub_item_c").await.unwrap().status,
        Status::PastDue
    );
    app.mail_drained().await;
    let sent = plangate::db::outbox::count_by_status(&app.db.pool, "sent")
        .await
        .unwrap();
    assert_eq!(sent, 1);
}

/// A delivery the database refuses (here: a trigger standing in for any statement error) fails
/// alone with a 503 and leaves nothing behind; the deliveries committed beside it are all kept.
#[tokio::test]
async fn a_delivery_the_database_refuses_fails_alone_in_a_concurrent_burst() {
    let app = spawn_app().await;
    let poison = match app.db.engine {
        plangate::db::Engine::Sqlite => vec![
            "create trigger poison before insert on subscription_item \
             when new.id = 'csub_item_poison' begin select raise(abort, 'poison'); end",
        ],
        plangate::db::Engine::Postgres => vec![
            "create function poison() returns trigger language plpgsql as $$ begin \
             if new.id = 'csub_item_poison' then raise exception 'poison'; end if; \
             return new; end $$",
            "create trigger poison before insert on subscription_item \
             for each row execute function poison()",
        ],
    };
    for sql in poison {
        sqlx::query(sql).execute(&app.db.pool).await.unwrap();
    }
    let at = now() * 1000;
    let items: Vec<String> = (0..40)
        .map(|i| match i {
            17 => "csub_item_poison".to_string(),
            _ => format!("csub_item_burst_{i}"),
        })
        .collect();
    let ids: Vec<String> = items.iter().map(|_| msg_id()).collect();
    let bodies: Vec<Value> = items
        .iter()
        .enumerate()
        .map(|(i, item)| {
            item_event(
                "subscriptionItem.active",
                "active",
                item,
                &format!("user_burst_{i}"),
                at,
            )
        })
        .collect();
    let responses =
        futures::future::join_all(ids.iter().zip(&bodies).map(|(id, b)| app.deliver(id, b))).await;
    for (i, r) in responses.iter().enumerate() {
        let want = if i == 17 { 503 } else { 200 };
        assert_eq!(r.status(), want, "delivery {i} ({})", items[i]);
    }
    assert!(app.item("csub_item_poison").await.is_none());
    for item in items.iter().filter(|i| *i != "csub_item_poison") {
        assert_eq!(
            app.item(item).await.unwrap().status,
            Status::Active,
            "{item}"
        );
    }
    assert_eq!(
        app.event_count().await,
        39,
        "the refused delivery left no inbox row"
    );
}

#[tokio::test]
async fn a_shuffled_lifecycle_converges_to_the_in_order_state() {
    let app = spawn_app().await;
    let base = now() * 1000 - 60_000;
    let lifecycle = |item: &str, user: &str| -> Vec<Value> {
        let mut created = fixture("subscription.created");
        created["timestamp"] = json!(base);
        created["data"]["items"][0]["id"] = json!(item);
        created["data"]["items"][0]["plan"]["slug"] = json!("pro");
        created["data"]["items"][0]["updated_at"] = json!(base);
        created["data"]["payer"]["user_id"] = json!(user);
        vec![
            created,
            item_event(
                "subscriptionItem.active",
                "active",
                item,
                user,
                base + 1_000,
            ),
            failed_payment(item, user, base + 1_500),
            item_event(
                "subscriptionItem.pastDue",
                "past_due",
                item,
                user,
                base + 2_000,
            ),
            item_event(
                "subscriptionItem.active",
                "active",
                item,
                user,
                base + 3_000,
            ),
            item_event(
                "subscriptionItem.canceled",
                "canceled",
                item,
                user,
                base + 4_000,
            ),
            item_event("subscriptionItem.ended", "ended", item, user, base + 5_000),
        ]
    };
    // In order first.
    for e in lifecycle("csub_item_ref", "user_ref") {
        assert_eq!(app.deliver(&msg_id(), &e).await.status(), 200);
    }
    let reference = app.item("csub_item_ref").await.unwrap();
    assert_eq!(reference.status, Status::Ended);

    let mut seed: u64 = 0x2545_f491_4f6c_dd1d;
    let rounds = if std::env::var("TEST_DATABASE_URL").is_ok() {
        12
    } else {
        25
    };
    for round in 0..rounds {
        let item = format!("csub_item_shuffle_{round}");
        let user = format!("user_shuffle_{round}");
        let mut events = lifecycle(&item, &user);
        for i in (1..events.len()).rev() {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            events.swap(i, (seed % (i as u64 + 1)) as usize);
        }
        for e in &events {
            assert_eq!(app.deliver(&msg_id(), e).await.status(), 200);
        }
        let got = app.item(&item).await.unwrap();
        assert_eq!(got.status, reference.status, "round {round}");
        assert_eq!(got.plan_slug, reference.plan_slug);
        assert_eq!(got.period_end, reference.period_end);
        assert_eq!(got.event_at, reference.event_at);
        assert_eq!(got.canceled_at, reference.canceled_at);
    }
}

#[tokio::test]
async fn a_stale_event_is_recorded_but_does_not_overwrite_newer_state() {
    let app = spawn_app().await;
    let at = now() * 1000;
    app.deliver(
        &msg_id(),
        &item_event(
            "subscriptionItem.canceled",
            "canceled",
            "csub_item_s",
            "user_s",
            at,
        ),
    )
    .await;
    let resp = app
        .deliver(
            &msg_id(),
            &item_event(
                "subscriptionItem.active",
                "active",
                "csub_item_s",
                "user_s",
                at - 5_000,
            ),
        )
        .await;
    assert_eq!(resp.json::<Value>().await.unwrap()["outcome"], "stale");
    assert_eq!(
        app.item("csub_item_s").await.unwrap().status,
        Status::Canceled
    );
    assert_eq!(app.event_count().await, 2);
    // The stored outcome says so too (the events page shows it).
    let mut conn = app.db.conn().await.unwrap();
    let stored = plangate::db::inbox::recent_for(&mut conn, &["user_s"], 10)
        .await
        .unwrap();
    let mut outcomes: Vec<&str> = stored.iter().map(|e| e.outcome.as_str()).collect();
    outcomes.sort();
    assert_eq!(outcomes, ["applied", "stale"]);
}

#[tokio::test]
async fn card_numbers_in_a_payload_are_never_stored() {
    let app = spawn_app().await;
    let mut v = failed_payment("csub_item_card", "user_card", now() * 1000);
    v["data"]["failed_reason"] = json!({"message": "card 4242424242424242 declined", "cvc": "123"});
    v["data"]["payment_source"]["number"] = json!(4242424242424242u64);
    v["data"]["payment_source"]["exp_month"] = json!(12);
    let id = msg_id();
    assert_eq!(app.deliver(&id, &v).await.status(), 200);
    let mut conn = app.db.pool.acquire().await.unwrap();
    let stored = plangate::db::inbox::payload(&mut conn, &id)
        .await
        .unwrap()
        .unwrap();
    assert!(!stored.contains("4242424242424242"), "{stored}");
    assert!(
        !stored.contains("exp_month") && !stored.contains("\"cvc\""),
        "{stored}"
    );
    assert!(
        stored.contains("\"last4\":\"4242\""),
        "brand and last4 are kept"
    );
    app.mail_drained().await;
    let mails = std::fs::read_dir(app.data_dir.join("mail"))
        .unwrap()
        .count();
    assert_eq!(mails, 1);
    let text = std::fs::read_to_string(
        std::fs::read_dir(app.data_dir.join("mail"))
            .unwrap()
            .next()
            .unwrap()
            .unwrap()
            .path(),
    )
    .unwrap();
    assert!(
        !text.contains("4242424242424242"),
        "the mail carries no card number either"
    );
}

#[tokio::test]
async fn a_redelivered_failure_sends_exactly_one_mail_over_smtp() {
    let sink = smtp_sink().await;
    let app = spawn_with(Options {
        extra: vec![
            ("SMTP_URL", format!("smtp://127.0.0.1:{}", sink.port)),
            ("MAIL_FROM", "Billing <billing@plangate.test>".into()),
        ],
        ..Default::default()
    })
    .await;
    let at = now() * 1000;
    app.deliver(
        &msg_id(),
        &item_event(
            "subscriptionItem.active",
            "active",
            "csub_item_m",
            "user_m",
            at,
        ),
    )
    .await;
    let id = msg_id();
    let failure = failed_payment("csub_item_m", "user_m", at + 100);
    for _ in 0..3 {
        assert_eq!(app.deliver(&id, &failure).await.status(), 200);
    }
    // The later pastDue event for the same episode is not a new failure.
    app.deliver(
        &msg_id(),
        &item_event(
            "subscriptionItem.pastDue",
            "past_due",
            "csub_item_m",
            "user_m",
            at + 200,
        ),
    )
    .await;
    app.mail_drained().await;
    let messages = sink.messages.lock().unwrap().clone();
    assert_eq!(messages.len(), 1, "{messages:?}");
    let m = &messages[0];
    assert!(m.contains("To: user_m@example.com"), "{m}");
    assert!(m.contains("Payment failed"), "{m}");
    assert!(m.contains("Stripe will retry"), "{m}");
    assert!(m.contains("https://test-app-1.accounts.dev/user"), "{m}");
}

#[tokio::test]
async fn mail_that_cannot_be_sent_stays_queued_for_retry() {
    // Nothing listens on this port: every attempt fails.
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = dead.local_addr().unwrap().port();
    drop(dead);
    let app = spawn_with(Options {
        extra: vec![("SMTP_URL", format!("smtp://127.0.0.1:{port}"))],
        ..Default::default()
    })
    .await;
    let at = now() * 1000;
    app.deliver(&msg_id(), &failed_payment("csub_item_r", "user_r", at))
        .await;
    for _ in 0..100 {
        let row = sqlx::query_scalar::<_, i64>("select attempts from mail_outbox")
            .fetch_one(&app.db.pool)
            .await
            .unwrap();
        if row > 0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let (status, attempts, error): (String, i64, Option<String>) =
        sqlx::query_as("select status, attempts, last_error from mail_outbox")
            .fetch_one(&app.db.pool)
            .await
            .unwrap();
    assert_eq!(status, "queued");
    assert!(attempts >= 1);
    assert!(error.is_some());
}

#[tokio::test]
async fn me_shows_the_state_a_webhook_produced() {
    let app = spawn_app().await;
    let at = now() * 1000;
    app.deliver(
        &msg_id(),
        &item_event(
            "subscriptionItem.active",
            "active",
            "csub_item_me",
            "user_me",
            at,
        ),
    )
    .await;
    let token = sign_token(&keys().0, &claims("user_me"));
    let me: Value = app
        .get_with_token("/api/me", &token)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(me["user_id"], "user_me");
    assert_eq!(me["plan"], "pro");
    assert_eq!(me["status"], "active");
    assert_eq!(me["entitled"], true);
    assert_eq!(me["source"], "database");
    assert_eq!(me["period_end"], json!(at + 30 * 86_400_000));
}

#[tokio::test]
async fn plangate_trigger_changes_me_and_repeats_show_one_applied_and_four_duplicates() {
    let app = spawn_app().await;
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_plangate"))
        .args([
            "trigger",
            "subscriptionItem.active",
            "--url",
            &app.url("/api/webhooks/clerk"),
            "--secret",
            SECRET_A,
            "--user",
            "user_trig",
            "--plan",
            "business",
            "--repeat",
            "5",
        ])
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        stdout.matches("\"outcome\":\"applied\"").count(),
        1,
        "{stdout}"
    );
    assert_eq!(
        stdout.matches("\"outcome\":\"duplicate\"").count(),
        4,
        "{stdout}"
    );
    let token = sign_token(&keys().0, &claims("user_trig"));
    let me: Value = app
        .get_with_token("/api/me", &token)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(me["plan"], "business");
    assert_eq!(me["entitled"], true);

    let refused = tokio::process::Command::new(env!("CARGO_BIN_EXE_plangate"))
        .args([
            "trigger",
            "subscriptionItem.ended",
            "--url",
            &app.url("/api/webhooks/clerk"),
            "--secret",
            "whsec_dGhpcyBpcyBub3QgdGhlIHNlY3JldCBrZXk=",
            "--user",
            "user_trig",
            "--plan",
            "business",
        ])
        .output()
        .await
        .unwrap();
    assert!(
        !refused.status.success(),
        "a refused delivery fails the command"
    );
    let me: Value = app
        .get_with_token("/api/me", &token)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(me["status"], "active");
}

/// A permanent refusal (an SMTP `5xx`) ends a mail at once as failed, with its reason on the
/// console's payer page and in `plangate_outbox_failed`; temporary trouble is retried.
#[tokio::test]
async fn a_mail_refused_for_good_ends_at_once_and_a_busy_server_is_retried() {
    let sink = smtp_sink().await;
    let app = spawn_with(Options {
        extra: vec![
            ("SMTP_URL", format!("smtp://127.0.0.1:{}", sink.port)),
            ("METRICS_ADDR", "127.0.0.1:0".into()),
            ("ADMIN_USER_IDS", "user_op_mail".into()),
        ],
        ..Default::default()
    })
    .await;
    let t = now() * 1000 - 60_000;
    for (item, user) in [
        ("csub_item_bo", "user_bounce"),
        ("csub_item_bu", "user_busy"),
    ] {
        deliver_item(&app, item, user, "pro", t - 10_000).await;
        assert_eq!(
            app.deliver(&msg_id(), &failed_payment(item, user, t))
                .await
                .status(),
            200
        );
    }
    let status_of = |recipient: &'static str| {
        let pool = app.db.pool.clone();
        async move {
            sqlx::query_as::<_, (String, i64, Option<String>)>(
                "select status, attempts, last_error from mail_outbox where recipient = $1",
            )
            .bind(recipient)
            .fetch_one(&pool)
            .await
            .unwrap()
        }
    };
    let mut bounced = status_of("user_bounce@example.com").await;
    for _ in 0..100 {
        if bounced.0 != "queued" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        bounced = status_of("user_bounce@example.com").await;
    }
    assert_eq!(bounced.0, "failed", "{bounced:?}");
    assert_eq!(bounced.1, 1, "one attempt, never retried");
    assert!(
        bounced.2.as_deref().is_some_and(|e| e.contains("550")),
        "{bounced:?}"
    );
    // The busy server's mail waits for its next try.
    let mut busy = status_of("user_busy@example.com").await;
    for _ in 0..100 {
        if busy.1 >= 1 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        busy = status_of("user_busy@example.com").await;
    }
    assert_eq!(busy.0, "queued", "{busy:?}");
    assert!(
        busy.2.as_deref().is_some_and(|e| e.contains("451")),
        "{busy:?}"
    );
    // Two seconds later the bounced mail was still not tried again.
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    assert_eq!(status_of("user_bounce@example.com").await.1, 1);
    assert!(sink.messages.lock().unwrap().is_empty());
    let metrics = app.metrics().await;
    assert!(metrics.contains("plangate_outbox_failed 1"), "{metrics}");
    // The operator sees why.
    let op = sign_token(&keys().0, &claims("user_op_mail"));
    let page = app
        .client
        .get(app.url("/admin/payers/user/user_bounce"))
        .bearer_auth(op)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("failed") && page.contains("550"), "{page}");
}
