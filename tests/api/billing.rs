//! The subscriber's billing (README, "Billing page"): `GET /api/billing` and
//! `/dashboard/billing` from the `paymentAttempt.*` deliveries (one row per attempt, the newest
//! evidence winning, no card data), the dates in words, the way to fix a failed payment, and
//! the one trial reminder.

use serde_json::{json, Value};

use crate::helpers::*;

fn attempt(kind: &str, id: &str, user: &str, status: &str, at_ms: i64) -> Value {
    let mut v = fixture("paymentAttempt.updated");
    v["type"] = json!(kind);
    v["timestamp"] = json!(at_ms);
    v["data"]["id"] = json!(id);
    v["data"]["status"] = json!(status);
    v["data"]["created_at"] = json!(at_ms - 1000);
    v["data"]["updated_at"] = json!(at_ms);
    v["data"]["paid_at"] = if status == "paid" {
        json!(at_ms)
    } else {
        Value::Null
    };
    v["data"]["failed_at"] = if status == "failed" {
        json!(at_ms)
    } else {
        Value::Null
    };
    v["data"]["payer"]["user_id"] = json!(user);
    v["data"]["subscription_items"][0]["plan"]["slug"] = json!("pro");
    v
}

async fn billing(app: &TestApp, user: &str) -> (u16, Value) {
    let r = app
        .client
        .get(app.url("/api/billing"))
        .bearer_auth(sign_token(&keys().0, &claims(user)))
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn billing_needs_a_session() {
    let app = spawn_app().await;
    let r = app
        .client
        .get(app.url("/api/billing"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "unauthorized");
    for bad in [
        sign_token(&keys().1, &claims("user_b1")),
        expired("user_b1"),
        "not-a-token".to_string(),
    ] {
        let r = app
            .client
            .get(app.url("/api/billing"))
            .bearer_auth(bad)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401);
    }
}

#[tokio::test]
async fn one_row_per_attempt_and_the_newest_update_wins_in_any_order() {
    let app = spawn_app().await;
    let t = now() * 1000 - 3_600_000;
    let user = "user_b2";
    // Attempt 1: pending, then paid. Delivered paid first, then the older pending one late.
    let paid = attempt("paymentAttempt.updated", "pa_b2_1", user, "paid", t + 2000);
    let pending = attempt(
        "paymentAttempt.created",
        "pa_b2_1",
        user,
        "pending",
        t + 1000,
    );
    assert_eq!(app.deliver(&msg_id(), &paid).await.status(), 200);
    assert_eq!(app.deliver(&msg_id(), &pending).await.status(), 200);
    // Attempt 2, later: failed with a code.
    let mut failed = attempt(
        "paymentAttempt.updated",
        "pa_b2_2",
        user,
        "failed",
        t + 60_000,
    );
    failed["data"]["failed_reason"] =
        json!({"code": "insufficient_funds", "message": "Insufficient funds"});
    assert_eq!(app.deliver(&msg_id(), &failed).await.status(), 200);
    // The same failed update again (a redelivery under another id): nothing new.
    assert_eq!(app.deliver(&msg_id(), &failed).await.status(), 200);

    let (status, body) = billing(&app, user).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["payer"], format!("user:{user}"));
    let payments = body["payments"].as_array().unwrap();
    assert_eq!(payments.len(), 2, "{body}");
    assert_eq!(payments[0]["id"], "pa_b2_2", "newest first");
    assert_eq!(payments[0]["status"], "failed");
    assert_eq!(payments[0]["failed_reason"], "insufficient_funds");
    assert_eq!(payments[0]["at"], t + 60_000);
    assert_eq!(payments[1]["id"], "pa_b2_1");
    assert_eq!(
        payments[1]["status"], "paid",
        "the late pending did not win"
    );
    assert_eq!(payments[1]["amount"], 2200);
    assert_eq!(payments[1]["currency"], "USD");
    assert_eq!(payments[1]["charge_type"], "recurring");
    assert_eq!(payments[1]["failed_reason"], Value::Null);
    assert_eq!(
        payments[1]["card"],
        json!({"brand": "visa", "last4": "4242"})
    );
    // An update at the very same instant as a pending one: the settled state wins.
    let same_pending = attempt(
        "paymentAttempt.updated",
        "pa_b2_3",
        user,
        "pending",
        t + 90_000,
    );
    let same_paid = attempt(
        "paymentAttempt.updated",
        "pa_b2_3",
        user,
        "paid",
        t + 90_000,
    );
    app.deliver(&msg_id(), &same_paid).await;
    app.deliver(&msg_id(), &same_pending).await;
    let (_, body) = billing(&app, user).await;
    assert_eq!(body["payments"][0]["id"], "pa_b2_3");
    assert_eq!(body["payments"][0]["status"], "paid");
}

#[tokio::test]
async fn the_history_keeps_no_card_data_in_any_spelling() {
    let app = spawn_app().await;
    let t = now() * 1000 - 60_000;
    let mut ev = attempt("paymentAttempt.updated", "pa_b3", "user_b3", "failed", t);
    ev["data"]["failed_reason"] = json!({
        "code": "card_declined",
        "message": "Card 4000 0566 5566 5556 (exp 12/29, cvc 123) was declined",
    });
    ev["data"]["payment_source"]["last4"] = json!("4000056655665556");
    ev["data"]["payment_source"]["card_number"] = json!("4000056655665556");
    ev["data"]["payment_source"]["exp_month"] = json!(12);
    ev["data"]["payment_source"]["cvc"] = json!("123");
    assert_eq!(app.deliver(&msg_id(), &ev).await.status(), 200);
    let (_, body) = billing(&app, "user_b3").await;
    let p = &body["payments"][0];
    assert_eq!(p["status"], "failed");
    assert_eq!(p["failed_reason"], "card_declined");
    assert_eq!(
        p["card"],
        Value::Null,
        "a full number in last4 keeps nothing"
    );
    // Times are numbers that may hold any digits: everything else must hold none of the card.
    let mut shown = p.clone();
    shown.as_object_mut().unwrap().remove("at");
    let text = shown.to_string();
    for leak in ["4000056655665556", "5556", "0566", "12/29", "cvc", "123"] {
        assert!(!text.contains(leak), "{leak} in {text}");
    }
    // Nor in the stored row.
    let row: String = sqlx::query_scalar(
        "select id || ' ' || coalesce(failed_code, '') || ' ' || coalesce(card_brand, '') || ' ' \
         || coalesce(card_last4, '') from payment_attempt where id = 'pa_b3'",
    )
    .fetch_one(&app.db.pool)
    .await
    .unwrap();
    assert_eq!(
        row.trim_end(),
        "pa_b3 card_declined",
        "no brand without a valid last4 either"
    );
    let html = get_page(&app, "/dashboard/billing", Some(&token_of("user_b3")))
        .await
        .1;
    assert!(!html.contains("4000056655665556") && !html.contains("ending in 5556"));
}

#[tokio::test]
async fn the_billing_page_says_the_date_that_matters_in_words() {
    let app = spawn_app().await;
    let t = now() * 1000 - 60_000;
    let end = t + 20 * 86_400_000;
    let words = plangate::billing::dates::day_in_words(end);
    let cases = [
        (
            "user_d1",
            "subscriptionItem.active",
            "active",
            false,
            format!("Renews on {words}"),
        ),
        (
            "user_d2",
            "subscriptionItem.active",
            "active",
            true,
            format!("Trial ends on {words}"),
        ),
        (
            "user_d3",
            "subscriptionItem.canceled",
            "canceled",
            false,
            format!("Ends on {words}"),
        ),
    ];
    for (user, kind, status, trial, expected) in &cases {
        let mut ev = item_event(kind, status, &format!("csub_item_{user}"), user, t);
        ev["data"]["period_start"] = json!(t - 10 * 86_400_000);
        ev["data"]["period_end"] = json!(end);
        ev["data"]["is_free_trial"] = json!(trial);
        assert_eq!(app.deliver(&msg_id(), &ev).await.status(), 200);
        let html = get_page(&app, "/dashboard/billing", Some(&token_of(user)))
            .await
            .1;
        assert!(
            html.contains(expected.as_str()),
            "{user}: {expected}\n{html}"
        );
        assert!(
            html.contains("Pro") && html.contains("$20.00 a month"),
            "{user}"
        );
        assert!(
            !html.contains("2027-") && !html.contains("2026-"),
            "no ISO dates: {user}"
        );
        let (_, body) = billing(&app, user).await;
        assert_eq!(body["period_end"], end);
        assert_eq!(body["plan"], "pro");
        assert_eq!(body["status"], *status);
        assert_eq!(
            body["free_trial_ends_at"],
            if *trial { json!(end) } else { Value::Null }
        );
    }
    // The dashboard says it the same way.
    let html = get_page(&app, "/dashboard", Some(&token_of("user_d2")))
        .await
        .1;
    assert!(html.contains(&format!("Trial ends on {words}")), "{html}");
    assert!(html.contains("Free trial"));
}

#[tokio::test]
async fn a_past_due_subscriber_is_shown_how_to_fix_the_payment_never_an_upsell() {
    let app = spawn_app().await;
    let t = now() * 1000 - 60_000;
    let user = "user_p1";
    app.deliver(
        &msg_id(),
        &item_event(
            "subscriptionItem.active",
            "active",
            "csub_item_p1",
            user,
            t - 10_000,
        ),
    )
    .await;
    let mut failed = failed_payment("csub_item_p1", user, t);
    failed["data"]["failed_reason"] = json!({"code": "card_declined", "message": "declined"});
    assert_eq!(app.deliver(&msg_id(), &failed).await.status(), 200);
    let portal = app.state.config().clerk().unwrap().account_portal_url();
    let portal = portal.as_str();
    for path in [
        "/dashboard",
        "/dashboard/payment-gated",
        "/dashboard/billing",
    ] {
        let html = get_page(&app, path, Some(&token_of(user))).await.1;
        assert!(
            html.contains("Your card was declined."),
            "{path}: the failure in words"
        );
        assert!(html.contains("Update your payment method"), "{path}");
        assert!(
            html.contains(portal),
            "{path}: Clerk's account portal\n{html}"
        );
        assert!(
            !html.contains(">past_due<"),
            "{path}: no status code on the page"
        );
    }
    let gated = get_page(&app, "/dashboard/payment-gated", Some(&token_of(user)))
        .await
        .1;
    for upsell in ["Upgrade", "Choose a plan", "Business", "Subscribe"] {
        assert!(!gated.contains(upsell), "no upsell to a payer: {upsell}");
    }
    // The mail leads to the same place.
    let mail: String = sqlx::query_scalar("select body from mail_outbox where recipient = $1")
        .bind(format!("{user}@example.com"))
        .fetch_one(&app.db.pool)
        .await
        .unwrap();
    assert!(
        mail.contains("update your payment method") && mail.contains(portal),
        "{mail}"
    );
}

#[tokio::test]
async fn the_trial_reminder_is_sent_once_whatever_the_redeliveries() {
    let app = spawn_app().await;
    let t = now() * 1000 - 60_000;
    let end = t + 3 * 86_400_000;
    let mut ev = fixture("subscriptionItem.freeTrialEnding");
    ev["timestamp"] = json!(t);
    ev["data"]["id"] = json!("csub_item_t1");
    ev["data"]["plan"]["slug"] = json!("pro");
    ev["data"]["period_end"] = json!(end);
    ev["data"]["updated_at"] = json!(t);
    ev["data"]["payer"]["user_id"] = json!("user_t1");
    ev["data"]["payer"]["email"] = json!("t1@example.com");
    let id = msg_id();
    for _ in 0..3 {
        assert_eq!(app.deliver(&id, &ev).await.status(), 200);
    }
    // Clerk sending the event again under new ids (and a later copy) changes nothing.
    for bump in [0, 5_000] {
        let mut again = ev.clone();
        again["timestamp"] = json!(t + bump);
        again["data"]["updated_at"] = json!(t + bump);
        assert_eq!(app.deliver(&msg_id(), &again).await.status(), 200);
    }
    let rows: Vec<(String, String, String, String)> = sqlx::query_as(
        "select id, recipient, subject, body from mail_outbox where id like 'trial_ending:%'",
    )
    .fetch_all(&app.db.pool)
    .await
    .unwrap();
    assert_eq!(rows.len(), 1, "{rows:?}");
    let (mail_id, to, subject, body) = &rows[0];
    assert_eq!(mail_id, &format!("trial_ending:csub_item_t1:{end}"));
    assert_eq!(to, "t1@example.com");
    let day = plangate::billing::dates::day_in_words(end);
    assert_eq!(subject, &format!("Your Pro trial ends on {day}"));
    assert!(
        body.contains("$20.00 a month"),
        "the price after it: {body}"
    );
    assert!(
        body.contains("To cancel") || body.contains("cancel"),
        "{body}"
    );
    // An extended trial is a new trial: one more reminder for the new end.
    let mut extended = ev.clone();
    extended["data"]["period_end"] = json!(end + 7 * 86_400_000);
    extended["data"]["updated_at"] = json!(t + 10_000);
    extended["timestamp"] = json!(t + 10_000);
    app.deliver(&msg_id(), &extended).await;
    let n: i64 =
        sqlx::query_scalar("select count(*) from mail_outbox where id like 'trial_ending:%'")
            .fetch_one(&app.db.pool)
            .await
            .unwrap();
    assert_eq!(n, 2);
}

/// A `freeTrialEnding` for item `item` of `user` on Pro, its trial ending at `end`, stamped `t`.
fn trial_ending(item: &str, user: &str, t: i64, end: i64) -> Value {
    let mut ev = fixture("subscriptionItem.freeTrialEnding");
    ev["timestamp"] = json!(t);
    ev["data"]["id"] = json!(item);
    ev["data"]["plan"]["slug"] = json!("pro");
    ev["data"]["period_end"] = json!(end);
    ev["data"]["updated_at"] = json!(t);
    ev["data"]["payer"]["user_id"] = json!(user);
    ev["data"]["payer"]["email"] = json!(format!("{user}@example.com"));
    ev
}

async fn trial_mails(app: &TestApp, item: &str) -> Vec<String> {
    sqlx::query_scalar("select body from mail_outbox where id like $1")
        .bind(format!("trial_ending:{item}:%"))
        .fetch_all(&app.db.pool)
        .await
        .unwrap()
}

#[tokio::test]
async fn the_trial_reminder_quotes_the_price_of_the_items_own_interval() {
    let app = spawn_app().await;
    let t = now() * 1000 - 60_000;
    let mut annual = trial_ending("csub_item_ta", "user_ta", t, t + 3 * 86_400_000);
    annual["data"]["interval"] = json!("annual");
    assert_eq!(app.deliver(&msg_id(), &annual).await.status(), 200);
    let bodies = trial_mails(&app, "csub_item_ta").await;
    assert_eq!(bodies.len(), 1);
    assert!(bodies[0].contains("$192.00 a year"), "{}", bodies[0]);
    assert!(!bodies[0].contains("a month"), "{}", bodies[0]);
    let monthly = trial_ending("csub_item_tm", "user_tm", t, t + 3 * 86_400_000);
    app.deliver(&msg_id(), &monthly).await;
    assert!(trial_mails(&app, "csub_item_tm").await[0].contains("$20.00 a month"));
}

/// The ordering rule applies to reminders: one that arrives after newer state for its item
/// (canceled, converted to paid, or a trial end already past) mails nothing.
#[tokio::test]
async fn a_late_or_stale_trial_reminder_mails_nothing() {
    let app = spawn_app().await;
    let t = now() * 1000 - 60_000;
    let end = t + 3 * 86_400_000;
    // Canceled after the reminder was sent, delivered before it.
    let mut canceled = item_event(
        "subscriptionItem.canceled",
        "canceled",
        "csub_item_l1",
        "user_l1",
        t + 1_000,
    );
    canceled["data"]["is_free_trial"] = json!(true);
    canceled["data"]["period_end"] = json!(end);
    app.deliver(&msg_id(), &canceled).await;
    app.deliver(&msg_id(), &trial_ending("csub_item_l1", "user_l1", t, end))
        .await;
    assert!(
        trial_mails(&app, "csub_item_l1").await.is_empty(),
        "canceled"
    );
    // Converted to paid first.
    let mut paid = item_event(
        "subscriptionItem.active",
        "active",
        "csub_item_l2",
        "user_l2",
        t + 1_000,
    );
    paid["data"]["is_free_trial"] = json!(false);
    app.deliver(&msg_id(), &paid).await;
    app.deliver(&msg_id(), &trial_ending("csub_item_l2", "user_l2", t, end))
        .await;
    assert!(
        trial_mails(&app, "csub_item_l2").await.is_empty(),
        "converted"
    );
    // A trial already over.
    let over = trial_ending(
        "csub_item_l3",
        "user_l3",
        t - 10 * 86_400_000,
        t - 86_400_000,
    );
    app.deliver(&msg_id(), &over).await;
    assert!(trial_mails(&app, "csub_item_l3").await.is_empty(), "over");
    // And the ordinary case still mails.
    app.deliver(&msg_id(), &trial_ending("csub_item_l4", "user_l4", t, end))
        .await;
    assert_eq!(trial_mails(&app, "csub_item_l4").await.len(), 1);
}

/// Free text about a payment can carry an expiry or a CVC no pattern sees: it is dropped at
/// ingest (the stored payload keeps `[redacted]`) and never mailed; the failure is told from
/// its code.
#[tokio::test]
async fn a_payments_free_text_is_never_stored_or_mailed() {
    let app = spawn_app().await;
    let t = now() * 1000 - 60_000;
    deliver_item(&app, "csub_item_ft", "user_ft", "pro", t - 10_000).await;
    let mut failed = failed_payment("csub_item_ft", "user_ft", t);
    failed["data"]["failed_reason"] =
        json!({"code": "card_declined", "message": "exp 12/29 cvc 314"});
    failed["data"]["description"] = json!("charge for card exp 12/29");
    let id = msg_id();
    assert_eq!(app.deliver(&id, &failed).await.status(), 200);
    let stored: String = sqlx::query_scalar("select payload from webhook_event where svix_id = $1")
        .bind(&id)
        .fetch_one(&app.db.pool)
        .await
        .unwrap();
    assert!(
        !stored.contains("12/29") && !stored.contains("314"),
        "{stored}"
    );
    assert!(stored.contains("[redacted]") && stored.contains("card_declined"));
    let bodies: Vec<String> =
        sqlx::query_scalar("select body from mail_outbox where id like '%payment_failed%'")
            .fetch_all(&app.db.pool)
            .await
            .unwrap();
    assert_eq!(bodies.len(), 1);
    assert!(
        !bodies[0].contains("12/29") && !bodies[0].contains("314"),
        "{}",
        bodies[0]
    );
    assert!(!bodies[0].contains("[redacted]"), "{}", bodies[0]);
    assert!(
        bodies[0].contains("Your card was declined."),
        "{}",
        bodies[0]
    );
}
