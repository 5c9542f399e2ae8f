//! Helpers for `bench/run.sh`.
//!   bench_tool keys <dir>                 test RSA key: <dir>/public.pem, <dir>/token (entitled, 1 h),
//!                                         <dir>/token_metered (Business: a metered payer),
//!                                         <dir>/token_exhausted (Tiny: one unit, then refused)
//!   bench_tool webhooks <file> <n> <secret>  n distinct, validly signed deliveries, one per line:
//!                                          svix-id \t timestamp \t signature \t body
//!   bench_tool startup <url> <cmd…>       starts cmd, polls <url> every ms; prints ms to the first 200
//!   bench_tool invalidation <a> <b> <secret> <token> <n>
//!                                          n changes to user_bench's subscription through
//!                                          instance a; for each, the time from a's answer to
//!                                          the first answer of b's /api/premium-feature that
//!                                          reflects it. Prints p50, p99 and max in ms.
//!   bench_tool bapi <addr>                 a stand-in for Clerk's `POST /v1/api_keys/verify`:
//!                                          `ak_bench_key` is user_bench_key's live key, anything
//!                                          else unknown; counts the verifications it answered
//!                                          (GET /count)
//!   bench_tool subscribe <url> <secret> <user>  one signed delivery: <user> on Pro, active now

use std::{io::Write, time::Instant};

use base64::Engine;
use plangate::demo::{
    delivery::svix_headers,
    events::{build, Spec, DAY_MS},
    SigningKey,
};
use serde_json::json;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("keys") => keys(&args[1]),
        Some("webhooks") => webhooks(&args[1], args[2].parse().unwrap(), &args[3]),
        Some("startup") => startup(&args[1], &args[2..]),
        Some("invalidation") => invalidation(
            &args[1],
            &args[2],
            &args[3],
            &args[4],
            args[5].parse().unwrap(),
        ),
        Some("bapi") => bapi(&args[1]),
        Some("subscribe") => subscribe(&args[1], &args[2], &args[3]),
        _ => eprintln!(
            "usage: bench_tool keys DIR | webhooks FILE N SECRET | startup URL CMD... | invalidation A B SECRET TOKEN N | bapi ADDR | subscribe URL SECRET USER"
        ),
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// A monthly Pro item for `user`, in `status`, its period from `start`, its event at `at`.
fn pro_item(user: &str, item: &str, status: &str, start: i64, at: i64) -> Spec {
    Spec {
        user_id: user.into(),
        email: format!("{user}@example.com"),
        org_id: None,
        plan_slug: "pro".into(),
        plan_name: "Pro".into(),
        amount_cents: 2000,
        annual: false,
        item_id: format!("csub_item_{item}"),
        subscription_id: format!("csub_{item}"),
        status: status.into(),
        period_start: start,
        period_end: Some(start + 30 * DAY_MS),
        canceled_at: None,
        past_due_at: None,
        free_trial: false,
        at,
    }
}

fn now() -> i64 {
    plangate::db::now_ms() / 1000
}

fn keys(dir: &str) {
    let key = SigningKey::generate("ins_bench").unwrap();
    std::fs::write(format!("{dir}/public.pem"), &key.public_pem).unwrap();
    let host =
        std::env::var("BENCH_FAPI_HOST").unwrap_or_else(|_| "bench.clerk.accounts.dev".into());
    let azp = std::env::var("BENCH_APP_URL").unwrap_or_else(|_| "http://127.0.0.1:3901".into());
    let t = now();
    let claims = json!({"sub": "user_bench", "sid": "sess_bench", "iss": format!("https://{host}"), "azp": azp,
        "iat": t, "nbf": t - 10, "exp": t + 3600, "v": 2, "pla": "u:pro", "fea": "u:premium_dashboard", "sts": "active"});
    std::fs::write(format!("{dir}/token"), key.sign(&claims).unwrap()).unwrap();
    // P1m: another payer on Business, whose premium_api is metered (bench/plans.toml).
    let metered = json!({"sub": "user_bench_metered", "sid": "sess_bench_m", "iss": format!("https://{host}"), "azp": azp,
        "iat": t, "nbf": t - 10, "exp": t + 3600, "v": 2, "pla": "u:business", "fea": "u:premium_dashboard", "sts": "active"});
    std::fs::write(format!("{dir}/token_metered"), key.sign(&metered).unwrap()).unwrap();
    // P1x: a payer on Tiny (one unit a period): once it is spent, every call is refused.
    let exhausted = json!({"sub": "user_bench_exhausted", "sid": "sess_bench_x", "iss": format!("https://{host}"), "azp": azp,
        "iat": t, "nbf": t - 10, "exp": t + 3600, "v": 2, "pla": "u:tiny", "fea": "u:premium_dashboard", "sts": "active"});
    std::fs::write(
        format!("{dir}/token_exhausted"),
        key.sign(&exhausted).unwrap(),
    )
    .unwrap();
    let pk = format!(
        "pk_test_{}",
        base64::engine::general_purpose::STANDARD.encode(format!("{host}$"))
    );
    std::fs::write(format!("{dir}/publishable_key"), pk).unwrap();
}

fn webhooks(file: &str, n: usize, secret: &str) {
    let mut out = std::io::BufWriter::new(std::fs::File::create(file).unwrap());
    let t = now();
    let start = t * 1000;
    for i in 0..n {
        let spec = pro_item(
            &format!("user_bench_{i}"),
            &format!("bench_{i}"),
            "active",
            start,
            start + i as i64,
        );
        let body = build("subscriptionItem.active", &spec).unwrap().to_string();
        let id = format!("msg_bench_{t}_{i}");
        let [_, _, (_, sig)] = svix_headers(secret, &id, t, body.as_bytes()).unwrap();
        writeln!(out, "{id}\t{t}\t{sig}\t{body}").unwrap();
    }
}

/// Spawns the server command itself, so the figure runs from process start to the first 200.
fn startup(url: &str, cmd: &[String]) {
    runtime().block_on(async {
        let client = reqwest::Client::new();
        let start = Instant::now();
        let mut child = tokio::process::Command::new(&cmd[0])
            .args(&cmd[1..])
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        loop {
            if let Ok(r) = client.get(url).send().await {
                if r.status() == 200 {
                    println!("{}", start.elapsed().as_millis());
                    break;
                }
            }
            tokio::time::sleep(std::time::Duration::from_millis(1)).await;
            if start.elapsed().as_secs() > 30 {
                println!("timeout");
                break;
            }
        }
        let _ = child.kill().await;
    });
}

/// Cross-instance invalidation latency (README, "Several instances": at most 250 ms). The token says `pro`; each
/// change is newer than it, so b's answer follows the database: `ended` 403, `active` 200.
fn invalidation(a: &str, b: &str, secret: &str, token: &str, n: usize) {
    runtime().block_on(async {
        let client = reqwest::Client::new();
        let gated = format!("{b}/api/premium-feature");
        let status = || async {
            client
                .get(&gated)
                .bearer_auth(token)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        };
        let mut latencies = Vec::with_capacity(n);
        let start = plangate::db::now_ms();
        for i in 0..n {
            let (event, item_status, want) = if i % 2 == 0 {
                ("subscriptionItem.ended", "ended", 403)
            } else {
                ("subscriptionItem.active", "active", 200)
            };
            // Changes come at random moments, not in step with b's 50 ms listening round
            // trips (back to back, each would land just after one and wait the whole period).
            let pause = rand::random::<u64>() % 100;
            tokio::time::sleep(std::time::Duration::from_millis(pause)).await;
            // b has the payer cached in the state before this change.
            for _ in 0..3 {
                assert_ne!(status().await, want, "b answers {want} before the change");
            }
            let at = plangate::db::now_ms().max(start + i as i64 + 1);
            let spec = pro_item("user_bench", "invalidation", item_status, start, at);
            let body = build(event, &spec).unwrap().to_string();
            let id = format!("msg_invalidation_{start}_{i}");
            let headers = svix_headers(secret, &id, now(), body.as_bytes()).unwrap();
            let mut post = client
                .post(format!("{a}/api/webhooks/clerk"))
                .header("content-type", "application/json")
                .body(body);
            for (k, v) in headers {
                post = post.header(k, v);
            }
            let r = post.send().await.unwrap();
            assert!(
                r.status().is_success(),
                "a refused the change: {}",
                r.status()
            );
            let applied = Instant::now();
            loop {
                if status().await == want {
                    break;
                }
                assert!(applied.elapsed().as_secs() < 30, "b never saw change {i}");
            }
            latencies.push(applied.elapsed().as_secs_f64() * 1000.0);
        }
        latencies.sort_by(f64::total_cmp);
        let at =
            |q: f64| latencies[((latencies.len() as f64 * q) as usize).min(latencies.len() - 1)];
        println!(
            "RESULT n={} p50_ms={:.2} p99_ms={:.2} max_ms={:.2}",
            latencies.len(),
            at(0.5),
            at(0.99),
            latencies[latencies.len() - 1]
        );
    });
}

/// Clerk's key verification, as the API keys scenario (P1k) needs it.
fn bapi(addr: &str) {
    use std::sync::{
        atomic::{AtomicU64, Ordering},
        Arc,
    };
    let count = Arc::new(AtomicU64::new(0));
    runtime().block_on(async move {
        let counted = count.clone();
        let app = axum::Router::new()
            .route(
                "/v1/api_keys/verify",
                axum::routing::post(move |axum::Json(body): axum::Json<serde_json::Value>| {
                    let counted = counted.clone();
                    async move {
                        counted.fetch_add(1, Ordering::Relaxed);
                        if body["secret"] == "ak_bench_key" {
                            (
                                axum::http::StatusCode::OK,
                                axum::Json(json!({"object": "api_key", "id": "ak_id_bench",
                                    "subject": "user_bench_key", "revoked": false, "expired": false,
                                    "expiration": null})),
                            )
                        } else {
                            (
                                axum::http::StatusCode::NOT_FOUND,
                                axum::Json(json!({"errors": []})),
                            )
                        }
                    }
                }),
            )
            .route(
                "/count",
                axum::routing::get(move || {
                    let count = count.clone();
                    async move { count.load(Ordering::Relaxed).to_string() }
                }),
            );
        let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
        axum::serve(listener, app).await.unwrap();
    });
}

/// `user` on Pro, active from now: one signed delivery to `url`'s webhook endpoint.
fn subscribe(url: &str, secret: &str, user: &str) {
    runtime().block_on(async {
        let at = plangate::db::now_ms();
        let spec = pro_item(user, user, "active", at - 1000, at);
        let body = build("subscriptionItem.active", &spec).unwrap().to_string();
        let id = format!("msg_subscribe_{user}_{at}");
        let headers = svix_headers(secret, &id, now(), body.as_bytes()).unwrap();
        let mut post = reqwest::Client::new()
            .post(format!("{url}/api/webhooks/clerk"))
            .header("content-type", "application/json")
            .body(body);
        for (k, v) in headers {
            post = post.header(k, v);
        }
        let r = post.send().await.unwrap();
        assert!(r.status().is_success(), "subscribe: {}", r.status());
    });
}
