//! Usage limits (README, "Usage limits"): the metered premium API spends exactly the plan's
//! limit per payer and period, under concurrency, across instances and through a SIGKILL; the
//! period, the payer, the headers, `/api/usage`, `plangate usage` and the alerts.

use std::time::Duration;

use serde_json::{json, Value};

use crate::helpers::*;

/// A plans file with small limits: Pro 50 premium API calls, Business 80, Team 30; Max has
/// the feature unlimited.
fn metered_plans(dir: &std::path::Path) -> String {
    let path = dir.join("metered-plans.toml");
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
limits = { premium_api = 50 }
[[plans]]
slug = "business"
name = "Business"
monthly_cents = 5000
features = ["premium_api"]
limits = { premium_api = 80 }
[[plans]]
slug = "scale"
name = "Scale"
monthly_cents = 7000
features = ["premium_api"]
limits = { premium_api = 2000 }
[[plans]]
slug = "max"
name = "Max"
monthly_cents = 9000
features = ["premium_api"]
[[plans]]
slug = "team"
name = "Team"
for = "organization"
monthly_cents = 9900
features = ["premium_api"]
limits = { premium_api = 30 }
[gates.premium]
plans = ["u:pro", "u:business", "u:scale", "u:max", "o:team"]
"#,
    )
    .unwrap();
    path.display().to_string()
}

async fn metered_app(dir: &TempDir, extra: Vec<(&'static str, String)>) -> TestApp {
    metered_app_at(dir, extra, None).await
}

async fn metered_app_at(
    dir: &TempDir,
    extra: Vec<(&'static str, String)>,
    clock: Option<plangate::startup::Clock>,
) -> TestApp {
    spawn_with(Options {
        extra: [
            vec![
                ("PLANS_FILE", metered_plans(dir)),
                ("METRICS_ADDR", "127.0.0.1:0".into()),
            ],
            extra,
        ]
        .concat(),
        clock,
        ..Default::default()
    })
    .await
}

/// An active item of `user` on `plan` for the period `[start, end)`, stamped `at`.
fn item_on(plan: &str, item: &str, user: &str, at: i64, start: i64, end: i64) -> Value {
    let mut v = item_event("subscriptionItem.active", "active", item, user, at);
    v["data"]["plan"]["slug"] = json!(plan);
    v["data"]["period_start"] = json!(start);
    v["data"]["period_end"] = json!(end);
    v
}

async fn subscribe(app: &TestApp, body: &Value) {
    assert_eq!(app.deliver(&msg_id(), body).await.status(), 200);
}

async fn usage(app: &TestApp, token: &str) -> Value {
    let r = app.get_with_token("/api/usage", token).await;
    assert_eq!(r.status(), 200);
    r.json().await.unwrap()
}

fn header(r: &reqwest::Response, name: &str) -> Option<u64> {
    r.headers().get(name)?.to_str().ok()?.parse().ok()
}

/// `n` requests at once with `token`; the statuses, in no particular order.
async fn burst(apps: &[&TestApp], token: &str, n: usize) -> Vec<u16> {
    let calls = (0..n).map(|i| {
        let app = apps[i % apps.len()];
        let (client, url, token) = (
            app.client.clone(),
            app.url("/api/premium-feature"),
            token.to_string(),
        );
        async move {
            client
                .get(url)
                .bearer_auth(token)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    });
    futures::future::join_all(calls).await
}

fn count(statuses: &[u16], status: u16) -> usize {
    statuses.iter().filter(|s| **s == status).count()
}

#[tokio::test]
async fn two_hundred_concurrent_requests_get_exactly_the_limit_and_then_429() {
    let dir = TempDir::new("plangate-usage-");
    let app = metered_app(&dir, vec![]).await;
    let t = now() * 1000;
    let (start, end) = (t - 86_400_000, t + 29 * 86_400_000);
    subscribe(
        &app,
        &item_on("pro", "csub_item_u1", "user_u1", t, start, end),
    )
    .await;
    let token = token_of("user_u1");

    let statuses = burst(&[&app], &token, 200).await;
    assert_eq!(count(&statuses, 200), 50, "{statuses:?}");
    assert_eq!(count(&statuses, 429), 150, "{statuses:?}");

    // Past the limit: 429 with the reason, the reset, and nothing more consumed.
    let r = app.get_with_token("/api/premium-feature", &token).await;
    assert_eq!(r.status(), 429);
    let reset = header(&r, "retry-after").expect("Retry-After");
    let until_end = (end / 1000 - now()) as u64;
    assert!(reset.abs_diff(until_end) <= 2, "{reset} vs {until_end}");
    assert_eq!(header(&r, "ratelimit-limit"), Some(50));
    assert_eq!(header(&r, "ratelimit-remaining"), Some(0));
    assert_eq!(header(&r, "ratelimit-reset"), Some(reset));
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "limit_reached", "{body}");

    let u = usage(&app, &token).await;
    assert_eq!(u["payer"], "user:user_u1");
    assert_eq!(
        (u["period_start"].as_i64(), u["period_end"].as_i64()),
        (Some(start), Some(end))
    );
    assert_eq!(
        u["features"]["premium_api"],
        json!({"limit": 50, "used": 50, "remaining": 0})
    );
    let metrics = app.metrics().await;
    assert!(
        metrics.contains("plangate_usage_consumed_total{feature=\"premium_api\"} 50"),
        "{metrics}"
    );
    assert!(
        metrics.contains("plangate_usage_limited_total{feature=\"premium_api\"} 151"),
        "{metrics}"
    );
}

/// With a limit of 2,000 the instance spends blocks of up to 62 units and reserves the next one
/// while the current one runs down: still exactly the limit, and the count agrees.
#[tokio::test]
async fn blocks_reserved_ahead_still_spend_exactly_the_limit() {
    let dir = TempDir::new("plangate-usage-");
    let app = metered_app(&dir, vec![]).await;
    let t = now() * 1000;
    subscribe(
        &app,
        &item_on(
            "scale",
            "csub_item_u9",
            "user_u9",
            t,
            t - 1000,
            t + 3_600_000,
        ),
    )
    .await;
    let token = token_of("user_u9");
    let mut served = 0;
    for _ in 0..21 {
        served += count(&burst(&[&app], &token, 100).await, 200);
    }
    assert!(served <= 2000, "{served}");
    // A block reserved ahead that was still on its way when the bursts ended is given back
    // within a second; then the rest can be spent, and never more.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    served += count(&burst(&[&app], &token, 100).await, 200);
    assert_eq!(served, 2000);
    let u = usage(&app, &token).await;
    assert_eq!(
        u["features"]["premium_api"],
        json!({"limit": 2000, "used": 2000, "remaining": 0})
    );
}

#[tokio::test]
async fn every_metered_answer_counts_down_in_its_headers() {
    let dir = TempDir::new("plangate-usage-");
    let app = metered_app(&dir, vec![]).await;
    let t = now() * 1000;
    subscribe(
        &app,
        &item_on("pro", "csub_item_u2", "user_u2", t, t - 1000, t + 3_600_000),
    )
    .await;
    let token = token_of("user_u2");
    for left in (45..50).rev() {
        let r = app.get_with_token("/api/premium-feature", &token).await;
        assert_eq!(r.status(), 200);
        assert_eq!(header(&r, "ratelimit-limit"), Some(50));
        assert_eq!(header(&r, "ratelimit-remaining"), Some(left));
        let reset = header(&r, "ratelimit-reset").unwrap();
        assert!((3590..=3600).contains(&reset), "{reset}");
    }
    let u = usage(&app, &token).await;
    assert_eq!(
        u["features"]["premium_api"],
        json!({"limit": 50, "used": 5, "remaining": 45})
    );
    // A caller without a token learns nothing and spends nothing.
    assert_eq!(
        app.client
            .get(app.url("/api/usage"))
            .send()
            .await
            .unwrap()
            .status(),
        401
    );
    assert_eq!(
        app.client
            .get(app.url("/api/premium-feature"))
            .send()
            .await
            .unwrap()
            .status(),
        401
    );
    // Someone whose plan does not open the gate spends nothing either.
    assert_eq!(premium_status(&app, "user_nobody").await, 403);
    let nobody = usage(&app, &token_of("user_nobody")).await;
    assert_eq!(nobody["features"]["premium_api"]["used"], 0);
}

#[tokio::test]
async fn a_renewal_starts_from_zero_and_an_upgrade_keeps_what_was_used() {
    let dir = TempDir::new("plangate-usage-");
    let (clock, ahead) = movable_clock();
    let app = metered_app_at(&dir, vec![], Some(clock)).await;
    let t = now() * 1000;
    let (start, end) = (t - 1000, t + 3_600_000);
    subscribe(
        &app,
        &item_on("pro", "csub_item_u3", "user_u3", t - 10, start, end),
    )
    .await;
    let token = token_of("user_u3");
    assert_eq!(count(&burst(&[&app], &token, 60).await, 200), 50);

    // An upgrade within the period: the 50 used stay, Business's 80 apply at once.
    subscribe(
        &app,
        &item_on("business", "csub_item_u3", "user_u3", t, start, end),
    )
    .await;
    let u = usage(&app, &token).await;
    assert_eq!(
        u["features"]["premium_api"],
        json!({"limit": 80, "used": 50, "remaining": 30})
    );
    let after = burst(&[&app], &token, 40).await;
    assert_eq!(count(&after, 200), 30, "{after:?}");

    // A downgrade within the period applies the lower limit at once: 80 used of 50.
    let down = item_on("pro", "csub_item_u3", "user_u3", t + 5, start, end);
    subscribe(&app, &down).await;
    assert_eq!(premium_status_token(&app, &token).await, 429);
    let u = usage(&app, &token).await;
    assert_eq!(
        u["features"]["premium_api"],
        json!({"limit": 50, "used": 80, "remaining": 0})
    );

    // A renewal: the next period, starting where the counted one ends, starts from zero.
    let next = item_on(
        "pro",
        "csub_item_u3",
        "user_u3",
        t + 10,
        end,
        end + 3_600_000,
    );
    subscribe(&app, &next).await;
    ahead.store(end - t + 1_000, std::sync::atomic::Ordering::SeqCst);
    let u = usage(&app, &token).await;
    assert_eq!(u["period_start"].as_i64(), Some(end));
    assert_eq!(
        u["features"]["premium_api"],
        json!({"limit": 50, "used": 0, "remaining": 50})
    );
    assert_eq!(count(&burst(&[&app], &token, 60).await, 200), 50);
}

#[tokio::test]
async fn without_an_item_the_period_is_the_calendar_month_and_an_unlimited_feature_is_counted() {
    let dir = TempDir::new("plangate-usage-");
    let app = metered_app(&dir, vec![]).await;
    // Token-only evidence: `pla` names Max, the database knows nothing yet.
    let token = sign_token(&keys().0, &with(claims("user_u4"), "pla", json!("u:max")));
    let statuses = burst(&[&app], &token, 30).await;
    assert_eq!(count(&statuses, 200), 30);
    let r = app.get_with_token("/api/premium-feature", &token).await;
    assert_eq!(r.status(), 200);
    assert!(
        r.headers().get("ratelimit-limit").is_none(),
        "no limit to state"
    );
    let u = usage(&app, &token).await;
    assert_eq!(u["features"]["premium_api"]["limit"], Value::Null);
    assert_eq!(u["features"]["premium_api"]["used"], 31);
    // Counted in memory, written within a second: the same count once written.
    tokio::time::sleep(Duration::from_millis(2200)).await;
    let written = usage(&app, &token).await;
    assert_eq!(written["features"]["premium_api"]["used"], 31);
    // The UTC month that holds now: from the 1st at midnight to the next 1st.
    let (s, e) = (
        u["period_start"].as_i64().unwrap(),
        u["period_end"].as_i64().unwrap(),
    );
    assert_eq!(s % 86_400_000, 0, "midnight UTC");
    assert!(s <= now() * 1000 && now() * 1000 < e);
    assert!((28..=31).contains(&((e - s) / 86_400_000)));
    let day_of_month = |ms: i64| plangate::billing::dates::civil_from_days(ms / 86_400_000).2;
    assert_eq!((day_of_month(s), day_of_month(e)), (1, 1));
}

#[tokio::test]
async fn an_organization_plan_spends_the_organizations_units_whoever_calls() {
    let dir = TempDir::new("plangate-usage-");
    let app = metered_app(&dir, vec![]).await;
    let member = |user: &str| {
        let c = with(claims(user), "pla", json!("o:team"));
        let c = with(
            c,
            "o",
            json!({"id": "org_u5", "slg": "acme", "rol": "admin"}),
        );
        sign_token(&keys().0, &c)
    };
    let (a, b) = (member("user_u5a"), member("user_u5b"));
    let statuses = [burst(&[&app], &a, 20).await, burst(&[&app], &b, 20).await].concat();
    assert_eq!(count(&statuses, 200), 30, "{statuses:?}");
    let u = usage(&app, &a).await;
    assert_eq!(u["payer"], "org:org_u5");
    assert_eq!(u["features"]["premium_api"]["used"], 30);
    // The member's own (free) account is untouched.
    let own = usage(&app, &token_of("user_u5a")).await;
    assert_eq!(own["payer"], "user:user_u5a");
    assert_eq!(own["features"]["premium_api"]["used"], 0);
}

#[tokio::test]
async fn the_eighty_and_hundred_percent_alerts_are_mailed_once_each() {
    let dir = TempDir::new("plangate-usage-");
    let sink = smtp_sink().await;
    let app = metered_app(
        &dir,
        vec![("SMTP_URL", format!("smtp://127.0.0.1:{}", sink.port))],
    )
    .await;
    let t = now() * 1000;
    let mut user = fixture("user.created");
    user["data"]["id"] = json!("user_u6");
    user["data"]["primary_email_address_id"] = json!("idn_u6");
    user["data"]["email_addresses"] =
        json!([{"id": "idn_u6", "object": "email_address", "email_address": "u6@example.com"}]);
    subscribe(&app, &user).await;
    subscribe(
        &app,
        &item_on("pro", "csub_item_u6", "user_u6", t, t - 1000, t + 3_600_000),
    )
    .await;
    let token = token_of("user_u6");

    assert_eq!(count(&burst(&[&app], &token, 39).await, 200), 39);
    app.mail_drained().await;
    assert!(sink.messages.lock().unwrap().is_empty(), "below 80 %");
    assert_eq!(count(&burst(&[&app], &token, 5).await, 200), 5);
    app.mail_drained().await;
    {
        let m = sink.messages.lock().unwrap();
        assert_eq!(m.len(), 1, "{m:?}");
        assert!(
            m[0].contains("u6@example.com") && m[0].contains("80%"),
            "{}",
            m[0]
        );
    }
    assert_eq!(count(&burst(&[&app], &token, 30).await, 200), 6);
    app.mail_drained().await;
    let m = sink.messages.lock().unwrap().clone();
    assert_eq!(m.len(), 2, "{m:?}");
    assert!(m[1].contains("used all"), "{}", m[1]);
    assert!(m[1].contains("/pricing"), "the way to more: {}", m[1]);
}

/// The SQLite file (or PostgreSQL database) outlives the server process killed mid-burst.
#[tokio::test]
async fn a_sigkill_mid_burst_never_lets_more_than_the_limit_through() {
    let dir = TempDir::new("plangate-usage-kill-");
    let db_url = test_database_url(&dir).await;
    let plans = metered_plans(&dir);
    let extra = [("PLANS_FILE", plans.as_str())];
    let (child, base) = serve_process(&db_url, &dir, &[], true, &extra).await;
    let t = now() * 1000;
    let client = reqwest::Client::new();
    let body = item_on("pro", "csub_item_u7", "user_u7", t, t - 1000, t + 3_600_000).to_string();
    let id = msg_id();
    let mut req = client
        .post(format!("{base}/api/webhooks/clerk"))
        .header("content-type", "application/json")
        .body(body.clone());
    for (k, v) in svix_headers(SECRET_A, &id, now(), body.as_bytes()).unwrap() {
        req = req.header(k, v);
    }
    assert_eq!(req.send().await.unwrap().status(), 200);
    let token = token_of("user_u7");

    // A steady stream, and the process killed while it runs.
    let ok = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let streams = (0..8).map(|_| {
        let (client, url, token, ok) = (
            client.clone(),
            format!("{base}/api/premium-feature"),
            token.clone(),
            ok.clone(),
        );
        tokio::spawn(async move {
            for _ in 0..40 {
                match client.get(&url).bearer_auth(&token).send().await {
                    Ok(r) if r.status() == 200 => {
                        ok.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    }
                    Ok(_) => {}
                    Err(_) => return,
                }
            }
        })
    });
    let streams: Vec<_> = streams.collect();
    while ok.load(std::sync::atomic::Ordering::SeqCst) < 10 {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let mut child = child;
    child.kill().await.unwrap();
    for s in streams {
        let _ = s.await;
    }
    let before = ok.load(std::sync::atomic::Ordering::SeqCst);
    assert!(before < 50, "killed mid-burst: {before} answered 200");

    let (_child, base) = serve_process(&db_url, &dir, &[], true, &extra).await;
    let mut after = 0;
    for _ in 0..60 {
        let r = client
            .get(format!("{base}/api/premium-feature"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        after += usize::from(r.status() == 200);
    }
    assert!(
        before + after <= 50,
        "{before} before the kill + {after} after > the limit of 50"
    );
    // Near a limit of 50 blocks are single units: the crash stranded at most the one held
    // unit and the units of the (at most 8) requests in flight when it struck.
    assert!(
        before + after >= 50 - 9,
        "{before} + {after}: more was lost than was held"
    );
    // The operator's view agrees with the refusals.
    let (code, out, err) = command_with(&db_url, &dir, &plans, &["usage", "--user", "user_u7"]);
    assert_eq!(code, 0, "{err}");
    let line = out.lines().next().unwrap_or_default().to_string();
    assert!(line.starts_with("premium_api 50/50 "), "{out}");
    assert!(line.contains("Z.."), "RFC 3339 bounds: {line}");
}

/// `plangate <args>` on the given database and plans, as an operator runs it.
fn command_with(
    db_url: &str,
    dir: &std::path::Path,
    plans: &str,
    args: &[&str],
) -> (i32, String, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_plangate"))
        .args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("DATABASE_URL", db_url)
        .env("DATA_DIR", dir)
        .env("PLANS_FILE", plans)
        .env("RUST_LOG", "error")
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test]
async fn two_instances_on_one_postgresql_never_spend_more_than_the_limit_between_them() {
    let Ok(url) = std::env::var("TEST_DATABASE_URL") else {
        eprintln!("skipped: several instances need TEST_DATABASE_URL=postgres://…");
        return;
    };
    if !url.starts_with("postgres") {
        return;
    }
    let dir = TempDir::new("plangate-usage-two-");
    let db = test_database_url(&dir).await;
    let plans = metered_plans(&dir);
    let spawn = || instance_on(&db, &dir, &plans);
    let (a, b) = (spawn().await, spawn().await);
    let t = now() * 1000;
    subscribe(
        &a,
        &item_on("pro", "csub_item_u8", "user_u8", t, t - 1000, t + 3_600_000),
    )
    .await;
    let token = token_of("user_u8");
    let first = burst(&[&a, &b], &token, 200).await;
    let served = count(&first, 200);
    assert!(served <= 50, "{served} > 50 across two instances");
    // Whatever one instance held and did not spend goes back within a second; asking again
    // then reaches the limit exactly, never past it.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let second = burst(&[&a, &b], &token, 100).await;
    assert_eq!(served + count(&second, 200), 50, "{first:?} {second:?}");
}

/// One more instance on the database `db` (and data folder `dir`) with the plans file `plans`.
async fn instance_on(db: &str, dir: &std::path::Path, plans: &str) -> TestApp {
    spawn_with(Options {
        reuse: Some((db.to_string(), dir.to_path_buf())),
        extra: vec![("PLANS_FILE", plans.to_string())],
        ..Default::default()
    })
    .await
}

/// A payer's used units, as `/api/usage` says.
async fn used(app: &TestApp, token: &str) -> Value {
    usage(app, token).await["features"]["premium_api"].clone()
}

#[tokio::test]
async fn an_end_that_moves_costs_only_the_units_requests_spent() {
    let dir = TempDir::new("plangate-usage-");
    let app = metered_app(&dir, vec![]).await;
    let t = now() * 1000;
    let start = t - 1000;
    let mut trial = item_on("scale", "csub_item_m1", "user_m1", t, start, t + 3_600_000);
    trial["data"]["is_free_trial"] = json!(true);
    subscribe(&app, &trial).await;
    let token = token_of("user_m1");
    assert_eq!(count(&burst(&[&app], &token, 2).await, 200), 2);
    assert_eq!(used(&app, &token).await["used"], 2);

    // The trial is extended: same start, a later end. The units this instance held under the
    // old end go back; only the requests count.
    let mut extended = item_on(
        "scale",
        "csub_item_m1",
        "user_m1",
        t + 5,
        start,
        t + 7_200_000,
    );
    extended["data"]["is_free_trial"] = json!(true);
    subscribe(&app, &extended).await;
    assert_eq!(count(&burst(&[&app], &token, 1).await, 200), 1);
    let u = used(&app, &token).await;
    assert_eq!(u, json!({"limit": 2000, "used": 3, "remaining": 1997}));
    let usage = usage(&app, &token).await;
    assert_eq!(usage["period_end"].as_i64(), Some(t + 7_200_000), "{usage}");
    // And what the database counts once everything held is given back.
    app.state.usage().settle().await.unwrap();
    let mut conn = app.db.pool.acquire().await.unwrap();
    let rows: Vec<(i64, i64)> = sqlx::query_as::<_, (i64, i64)>(
        "select period_start, used from usage_counter where payer_id = 'user_m1'",
    )
    .fetch_all(&mut *conn)
    .await
    .unwrap();
    assert_eq!(rows, vec![(start, 3)]);
}

#[tokio::test]
async fn switching_plans_up_and_back_never_yields_a_fresh_allowance() {
    let dir = TempDir::new("plangate-usage-");
    let app = metered_app(&dir, vec![]).await;
    let t = now() * 1000;
    let end = t + 3_600_000;
    subscribe(
        &app,
        &item_on("pro", "csub_item_s1", "user_s1", t - 20, t - 1000, end),
    )
    .await;
    let token = token_of("user_s1");
    let mut served = count(&burst(&[&app], &token, 60).await, 200);
    assert_eq!(served, 50);

    // Up to Business: a new item with a new period; the old one ends.
    let mut old = item_event(
        "subscriptionItem.ended",
        "ended",
        "csub_item_s1",
        "user_s1",
        t - 10,
    );
    old["data"]["plan"]["slug"] = json!("pro");
    subscribe(&app, &old).await;
    subscribe(
        &app,
        &item_on(
            "business",
            "csub_item_s2",
            "user_s1",
            t - 9,
            t - 500,
            end + 1000,
        ),
    )
    .await;
    let up = burst(&[&app], &token, 60).await;
    assert_eq!(count(&up, 200), 30, "80 less the 50 used: {up:?}");
    served += count(&up, 200);

    // And back to Pro: a third item, its own period. Nothing more until a renewal.
    let mut ended = item_event(
        "subscriptionItem.ended",
        "ended",
        "csub_item_s2",
        "user_s1",
        t - 5,
    );
    ended["data"]["plan"]["slug"] = json!("business");
    subscribe(&app, &ended).await;
    subscribe(
        &app,
        &item_on("pro", "csub_item_s3", "user_s1", t - 4, t - 100, end + 2000),
    )
    .await;
    let back = burst(&[&app], &token, 30).await;
    assert_eq!(count(&back, 200), 0, "{back:?}");
    assert_eq!(count(&back, 429), 30);
    let u = used(&app, &token).await;
    assert_eq!(
        u["used"].as_u64(),
        Some(served as u64),
        "used equals the 200s: {u}"
    );
    assert_eq!(u["limit"], 50);
}

/// The plan file says nothing of `enterprise`; Clerk's token names it and its features open
/// the gate.
#[tokio::test]
async fn a_plan_missing_from_the_file_is_refused_as_not_configured_not_metered_at_zero() {
    let app = spawn_app().await;
    let token = sign_token(
        &keys().0,
        &with(
            with(claims("user_pn"), "pla", json!("u:enterprise")),
            "fea",
            json!("u:premium_dashboard,u:premium_api"),
        ),
    );
    for _ in 0..2 {
        let r = app.get_with_token("/api/premium-feature", &token).await;
        assert_eq!(r.status(), 403);
        assert!(r.headers().get("retry-after").is_none());
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["error"]["code"], "plan_not_configured", "{body}");
    }
}

#[tokio::test]
async fn an_alert_for_a_member_without_a_stored_address_asks_the_backend_api() {
    let dir = TempDir::new("plangate-usage-");
    let sink = smtp_sink().await;
    let api = backend_api().await;
    api.users.lock().unwrap().insert(
        "user_na".into(),
        json!({
            "object": "user", "id": "user_na", "primary_email_address_id": "idn_2",
            "email_addresses": [
                {"id": "idn_1", "email_address": "old@example.com"},
                {"id": "idn_2", "email_address": "na@example.com"}
            ]
        }),
    );
    let app = metered_app(
        &dir,
        vec![
            ("SMTP_URL", format!("smtp://127.0.0.1:{}", sink.port)),
            ("CLERK_SECRET_KEY", SECRET_KEY.into()),
            ("CLERK_API_URL", api.url.clone()),
            ("RECONCILE_INTERVAL_SECS", "0".into()),
        ],
    )
    .await;
    let t = now() * 1000;
    subscribe(
        &app,
        &item_on("pro", "csub_item_na", "user_na", t, t - 1000, t + 3_600_000),
    )
    .await;
    let token = token_of("user_na");
    assert_eq!(count(&burst(&[&app], &token, 40).await, 200), 40);
    app.mail_drained().await;
    let m = sink.messages.lock().unwrap().clone();
    assert_eq!(m.len(), 1, "{m:?}");
    assert!(
        m[0].contains("na@example.com") && m[0].contains("80%"),
        "{}",
        m[0]
    );
    assert!(!m[0].contains("old@example.com"), "the primary address");
    assert!(api.paths().iter().any(|p| p == "/v1/users/user_na"));
}

/// Refusals at the limit are answered from memory: with the database gone they still come
/// (on SQLite; with `TEST_DATABASE_URL`, on two PostgreSQL instances). A grant is seen within
/// a second first.
#[tokio::test]
async fn refusals_at_the_limit_come_from_memory_even_with_the_database_gone() {
    let dir = TempDir::new("plangate-usage-refuse-");
    let two = std::env::var("TEST_DATABASE_URL").is_ok_and(|u| u.starts_with("postgres"));
    let db = test_database_url(&dir).await;
    let plans = metered_plans(&dir);
    let spawn = || instance_on(&db, &dir, &plans);
    let a = spawn().await;
    let b = if two { Some(spawn().await) } else { None };
    let apps: Vec<&TestApp> = std::iter::once(&a).chain(b.as_ref()).collect();
    let t = now() * 1000;
    subscribe(
        &a,
        &item_on("pro", "csub_item_r1", "user_r1", t, t - 1000, t + 3_600_000),
    )
    .await;
    let token = token_of("user_r1");
    assert_eq!(count(&burst(&apps, &token, 80).await, 200), 50);
    // Every instance has been refused once since.
    for app in &apps {
        assert_eq!(premium_status_token(app, &token).await, 429);
    }

    // An operator grants 3 more: every instance sees them within a second, and no more.
    a.state
        .usage()
        .grant(
            &plangate::billing::Payer::user("user_r1"),
            Some((t - 1000, t + 3_600_000)),
            "premium_api",
            3,
        )
        .await
        .unwrap();
    let mut granted = 0;
    let deadline = std::time::Instant::now() + Duration::from_millis(1500);
    while granted < 3 && std::time::Instant::now() < deadline {
        granted += count(&burst(&apps, &token, 2).await, 200);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(granted, 3, "the grant is seen within a second");
    assert_eq!(count(&burst(&apps, &token, 20).await, 429), 20);

    // The database stops answering: refusals still come, from memory, on every instance.
    for app in &apps {
        app.db.pool.close().await;
    }
    for _ in 0..3 {
        let statuses = burst(&apps, &token, 30).await;
        assert_eq!(count(&statuses, 429), 30, "{statuses:?}");
        tokio::time::sleep(Duration::from_millis(400)).await;
    }
    let r = a.get_with_token("/api/premium-feature", &token).await;
    assert_eq!(r.headers().get("ratelimit-remaining").unwrap(), "0");
    assert_eq!(r.headers().get("ratelimit-limit").unwrap(), "53");
}

/// Spending needs intent: a page on another site (or a sibling subdomain) cannot spend a
/// customer's units with their cookie; the app's own pages and Bearer callers can.
#[tokio::test]
async fn the_session_cookie_spends_only_from_the_apps_own_pages() {
    let dir = TempDir::new("plangate-usage-");
    let app = metered_app(&dir, vec![]).await;
    let t = now() * 1000;
    subscribe(
        &app,
        &item_on("pro", "csub_item_x1", "user_x1", t, t - 1000, t + 3_600_000),
    )
    .await;
    let token = token_of("user_x1");
    let with_cookie = |headers: &[(&str, &str)]| {
        let mut r = app
            .client
            .get(app.url("/api/premium-feature"))
            .header("cookie", format!("__session={token}"));
        for (k, v) in headers {
            r = r.header(*k, *v);
        }
        r.send()
    };
    for refused in [
        vec![("sec-fetch-site", "cross-site")],
        vec![("sec-fetch-site", "same-site")],
        vec![("origin", "https://evil.example")],
        vec![("origin", "http://localhost:3001")],
        vec![("origin", "https://localhost:3000")],
        vec![("origin", "null")],
        vec![("origin", "")],
        vec![("origin", APP_URL), ("sec-fetch-site", "cross-site")],
    ] {
        let r = with_cookie(&refused).await.unwrap();
        assert_eq!(r.status(), 403, "{refused:?}");
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["error"]["code"], "cross_site", "{refused:?}");
    }
    assert_eq!(used(&app, &token).await["used"], 0, "nothing spent");
    for allowed in [
        vec![("sec-fetch-site", "same-origin"), ("origin", APP_URL)],
        vec![("sec-fetch-site", "same-origin")],
        vec![("sec-fetch-site", "none")],
        vec![],
    ] {
        assert_eq!(
            with_cookie(&allowed).await.unwrap().status(),
            200,
            "{allowed:?}"
        );
    }
    // A Bearer token is intent enough, whatever else the request says.
    let r = app
        .client
        .get(app.url("/api/premium-feature"))
        .bearer_auth(&token)
        .header("sec-fetch-site", "cross-site")
        .header("origin", "https://evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(used(&app, &token).await["used"], 5);
}
