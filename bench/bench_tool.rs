//! Helpers for `bench/run.sh`.
//!   bench_tool keys <dir>                 test RSA key: <dir>/public.pem, <dir>/token (entitled, 1 h)
//!   bench_tool webhooks <file> <n> <secret>  n distinct, validly signed deliveries, one per line:
//!                                          svix-id \t timestamp \t signature \t body
//!   bench_tool startup <url> <cmd…>       starts cmd, polls <url> every ms; prints ms to the first 200

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
        _ => eprintln!("usage: bench_tool keys DIR | webhooks FILE N SECRET | startup URL CMD..."),
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
        let spec = Spec {
            user_id: format!("user_bench_{i}"),
            email: format!("bench{i}@example.com"),
            org_id: None,
            plan_slug: "pro".into(),
            plan_name: "Pro".into(),
            amount_cents: 2000,
            annual: false,
            item_id: format!("csub_item_bench_{i}"),
            subscription_id: format!("csub_bench_{i}"),
            status: "active".into(),
            period_start: start,
            period_end: Some(start + 30 * DAY_MS),
            canceled_at: None,
            past_due_at: None,
            at: start + i as i64,
        };
        let body = build("subscriptionItem.active", &spec).unwrap().to_string();
        let id = format!("msg_bench_{t}_{i}");
        let [_, _, (_, sig)] = svix_headers(secret, &id, t, body.as_bytes()).unwrap();
        writeln!(out, "{id}\t{t}\t{sig}\t{body}").unwrap();
    }
}

/// Spawns the server command itself, so the figure runs from process start to the first 200.
fn startup(url: &str, cmd: &[String]) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
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
