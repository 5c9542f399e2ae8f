//! `spawn_app()` and the typed helpers tests use: token minting with a test RSA key served from
//! a local JWKS server, Svix signing, a loopback SMTP sink.

use std::{
    net::SocketAddr,
    sync::{
        atomic::{AtomicUsize, Ordering},
        Arc, Mutex, OnceLock,
    },
};

use axum::{routing::get, Json, Router};
use base64::Engine;
pub use plangate::demo::delivery::svix_headers;
use plangate::{config::Config, db::Db, startup::Application, state::AppState};
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

pub const SECRET_A: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
pub const SECRET_B: &str = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";
pub const FAPI_HOST: &str = "test-app-1.clerk.accounts.dev";
pub const APP_URL: &str = "http://localhost:3000";

pub fn publishable_key() -> String {
    format!(
        "pk_test_{}",
        base64::engine::general_purpose::STANDARD.encode(format!("{FAPI_HOST}$"))
    )
}

pub use plangate::demo::SigningKey as TestKey;

fn make_key(kid: &str) -> TestKey {
    TestKey::generate(kid).unwrap()
}

/// Two keys per test process (generation is the slow part): the current one and the rotated one.
pub fn keys() -> &'static (TestKey, TestKey) {
    static KEYS: OnceLock<(TestKey, TestKey)> = OnceLock::new();
    KEYS.get_or_init(|| (make_key("ins_key_1"), make_key("ins_key_2")))
}

pub fn now() -> i64 {
    plangate::db::now_ms() / 1000
}

/// Standard entitled-looking claims for `user`; tests override what they need.
pub fn claims(user: &str) -> Value {
    let t = now();
    json!({
        "sub": user, "sid": format!("sess_{user}"), "iss": format!("https://{FAPI_HOST}"),
        "azp": APP_URL, "iat": t, "nbf": t - 10, "exp": t + 60, "v": 2, "sts": "active",
    })
}

/// `c` with claim `k` set to `v` (removed when `v` is null).
pub fn with(mut c: Value, k: &str, v: Value) -> Value {
    if v.is_null() {
        c.as_object_mut().unwrap().remove(k);
    } else {
        c[k] = v;
    }
    c
}

pub fn sign_token(key: &TestKey, claims: &Value) -> String {
    key.sign(claims).unwrap()
}

pub struct Jwks {
    pub url: String,
    pub hits: Arc<AtomicUsize>,
    pub keys: Arc<Mutex<Vec<Value>>>,
}

pub async fn jwks_server(initial: Vec<Value>) -> Jwks {
    let hits = Arc::new(AtomicUsize::new(0));
    let keys = Arc::new(Mutex::new(initial));
    let (h, k) = (hits.clone(), keys.clone());
    let app = Router::new().route(
        "/.well-known/jwks.json",
        get(move || {
            let (h, k) = (h.clone(), k.clone());
            async move {
                h.fetch_add(1, Ordering::SeqCst);
                Json(json!({"keys": k.lock().unwrap().clone()}))
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    Jwks {
        url: format!("http://{addr}/.well-known/jwks.json"),
        hits,
        keys,
    }
}

pub struct TestApp {
    pub addr: SocketAddr,
    /// The operator's metrics listener, when `METRICS_ADDR` was given.
    pub metrics_port: Option<u16>,
    /// The settings the app was built from, for running `plangate` commands against it.
    pub env: Vec<(String, String)>,
    pub client: reqwest::Client,
    pub db: Db,
    pub state: AppState,
    pub data_dir: TempDir,
}

fn unique(prefix: &str) -> String {
    use rand::Rng;
    format!("{prefix}{:016x}", rand::thread_rng().gen::<u64>())
}

/// A fresh folder in the temp dir, removed on drop (Linux lets an open SQLite file be
/// unlinked, so a server still holding it does not stop this).
pub struct TempDir(std::path::PathBuf);

impl TempDir {
    pub fn new(prefix: &str) -> TempDir {
        let dir = std::env::temp_dir().join(unique(prefix));
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }
}

impl std::ops::Deref for TempDir {
    type Target = std::path::Path;
    fn deref(&self) -> &std::path::Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A fresh database per test: a new SQLite file in `dir`, or with `TEST_DATABASE_URL` a new
/// PostgreSQL database named after this process, so the next run can drop what this one left.
pub async fn test_database_url(dir: &std::path::Path) -> String {
    match std::env::var("TEST_DATABASE_URL") {
        Ok(admin) if admin.starts_with("postgres") => {
            let pool = sqlx::PgPool::connect(&admin)
                .await
                .expect("TEST_DATABASE_URL reachable");
            drop_stale_databases(&pool).await;
            let name = unique(&format!("plangate_test_{}_", std::process::id()));
            sqlx::query(&format!("create database {name}"))
                .execute(&pool)
                .await
                .unwrap();
            let (base, _) = admin.rsplit_once('/').unwrap();
            format!("{base}/{name}")
        }
        _ => format!("sqlite://{}/test.db", dir.display()),
    }
}

/// Once per process: drops the test databases of test processes that are gone. Left alone they
/// pile up run after run, and every `create database` grows slower.
async fn drop_stale_databases(pool: &sqlx::PgPool) {
    static SWEPT: tokio::sync::OnceCell<()> = tokio::sync::OnceCell::const_new();
    SWEPT
        .get_or_init(|| async {
            let names: Vec<String> = sqlx::query_scalar(
                "select datname from pg_database where datname like 'plangate\\_test\\_%'",
            )
            .fetch_all(pool)
            .await
            .unwrap();
            for name in names {
                let owner = name.split('_').nth(2).and_then(|p| p.parse::<u32>().ok());
                let alive = owner.is_some_and(|pid| {
                    pid == std::process::id()
                        || std::path::Path::new(&format!("/proc/{pid}")).exists()
                });
                if !alive {
                    let _ = sqlx::query(&format!("drop database if exists {name} with (force)"))
                        .execute(pool)
                        .await;
                }
            }
        })
        .await;
}

#[derive(Default)]
pub struct Options {
    pub extra: Vec<(&'static str, String)>,
    pub jwks_url: Option<String>,
    pub pem: bool,
    pub demo: bool,
    /// Runs in the webhook writer after each commit, before its deliveries are answered.
    pub after_commit: Option<Box<dyn Fn() + Send + Sync>>,
    /// The clock background work reads.
    pub clock: Option<plangate::startup::Clock>,
    /// Reuse this database (and data folder) rather than a fresh one.
    pub reuse: Option<(String, std::path::PathBuf)>,
}

pub async fn spawn_app() -> TestApp {
    spawn_with(Options::default()).await
}

pub async fn spawn_with(opts: Options) -> TestApp {
    let dir = TempDir::new("plangate-test-");
    let (database_url, data_dir) = match &opts.reuse {
        Some((url, data)) => (url.clone(), data.clone()),
        None => (test_database_url(&dir).await, dir.to_path_buf()),
    };
    let mut vars: Vec<(&str, String)> = vec![
        ("DATABASE_URL", database_url),
        ("LEPTOS_SITE_ADDR", "127.0.0.1:0".into()),
        ("DATA_DIR", data_dir.display().to_string()),
        // Many apps share a test process: no fixed metrics port unless a test asks for one.
        ("METRICS_ADDR", "off".into()),
        ("APP_URL", APP_URL.into()),
        (
            "PLANS_FILE",
            concat!(env!("CARGO_MANIFEST_DIR"), "/plans.toml").into(),
        ),
        ("CLERK_WEBHOOK_SECRET", format!("{SECRET_A} {SECRET_B}")),
    ];
    if !opts.demo {
        vars.push(("CLERK_PUBLISHABLE_KEY", publishable_key()));
        if opts.pem || opts.jwks_url.is_none() {
            vars.push(("CLERK_JWT_KEY", keys().0.public_pem.clone()));
        }
        if let Some(u) = &opts.jwks_url {
            vars.push(("CLERK_JWKS_URL", u.clone()));
        }
    } else {
        vars.retain(|(k, _)| *k != "CLERK_WEBHOOK_SECRET");
    }
    for (k, v) in opts.extra {
        vars.retain(|(n, _)| *n != k);
        vars.push((k, v));
    }
    let config =
        Config::from_lookup(|k| vars.iter().find(|(n, _)| *n == k).map(|(_, v)| v.clone()))
            .unwrap();
    let seams = plangate::startup::Seams {
        after_commit: opts.after_commit,
        clock: opts.clock,
    };
    let app = Application::build_with(config, seams)
        .await
        .expect("app builds");
    let addr: SocketAddr = format!("127.0.0.1:{}", app.port()).parse().unwrap();
    let metrics_port = app.metrics_port();
    let env = vars
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect();
    let db = app.state.db().clone();
    let state = app.state.clone();
    tokio::spawn(app.run_until_stopped());
    TestApp {
        addr,
        metrics_port,
        env,
        client: reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap(),
        db,
        state,
        data_dir: dir,
    }
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// Runs `plangate <args>` on this app's settings and database, as an operator would;
    /// returns the exit code, stdout and stderr.
    pub async fn command(&self, args: &[&str], extra: &[(&str, &str)]) -> (i32, String, String) {
        let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_plangate"));
        cmd.env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("RUST_LOG", "warn")
            // No `.env` of the developer's is read from here.
            .current_dir(&*self.data_dir)
            .args(args);
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        for (k, v) in extra {
            cmd.env(k, v);
        }
        let out = tokio::time::timeout(std::time::Duration::from_secs(120), cmd.output())
            .await
            .expect("the command finishes")
            .expect("the command runs");
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// The metrics listener's text.
    pub async fn metrics(&self) -> String {
        let port = self.metrics_port.expect("METRICS_ADDR set for this app");
        self.client
            .get(format!("http://127.0.0.1:{port}/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    /// Posts `body` signed with `secret` under delivery id `id`, timestamped `ts` (seconds).
    pub async fn deliver_signed(
        &self,
        id: &str,
        ts: i64,
        body: &str,
        secret: &str,
    ) -> reqwest::Response {
        let mut request = self
            .client
            .post(self.url("/api/webhooks/clerk"))
            .header("content-type", "application/json")
            .body(body.to_string());
        for (name, value) in svix_headers(secret, id, ts, body.as_bytes()).unwrap() {
            request = request.header(name, value);
        }
        request.send().await.unwrap()
    }

    pub async fn deliver(&self, id: &str, body: &Value) -> reqwest::Response {
        self.deliver_signed(id, now(), &body.to_string(), SECRET_A)
            .await
    }

    pub async fn get_with_token(&self, path: &str, token: &str) -> reqwest::Response {
        self.client
            .get(self.url(path))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
    }

    pub async fn item(&self, id: &str) -> Option<plangate::billing::ItemState> {
        let mut conn = self.db.pool.acquire().await.unwrap();
        plangate::db::items::get(&mut conn, id).await.unwrap()
    }

    pub async fn event_count(&self) -> i64 {
        let mut conn = self.db.pool.acquire().await.unwrap();
        plangate::db::inbox::count(&mut conn).await.unwrap()
    }

    /// Waits (bounded) until the outbox has no queued mail left.
    pub async fn mail_drained(&self) {
        for _ in 0..100 {
            if plangate::db::outbox::count_by_status(&self.db.pool, "queued")
                .await
                .unwrap()
                == 0
            {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        panic!("mail outbox never drained");
    }
}

/// The cookies a response sets, as `name=value` pairs.
pub fn set_cookies(resp: &reqwest::Response) -> Vec<String> {
    resp.headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().split(';').next().unwrap().to_string())
        .collect()
}

/// Demo sign-in as `name`: returns the cookies it set, as `name=value` pairs.
pub async fn demo_sign_in(app: &TestApp, name: &str) -> Vec<String> {
    let resp = app
        .client
        .post(app.url("/demo/sign-in"))
        .form(&[("name", name)])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 303);
    set_cookies(&resp)
}

pub fn fixture(name: &str) -> Value {
    let path = format!(
        "{}/tests/fixtures/clerk/{name}.json",
        env!("CARGO_MANIFEST_DIR")
    );
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

pub fn msg_id() -> String {
    unique("msg_")
}

/// A loopback SMTP sink that accepts everything and keeps each message's DATA.
pub struct SmtpSink {
    pub port: u16,
    pub messages: Arc<Mutex<Vec<String>>>,
}

pub async fn smtp_sink() -> SmtpSink {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let messages = Arc::new(Mutex::new(Vec::new()));
    let store = messages.clone();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let store = store.clone();
            tokio::spawn(async move {
                let (r, mut w) = stream.into_split();
                let mut lines = BufReader::new(r).lines();
                w.write_all(b"220 sink ESMTP\r\n").await.ok();
                let mut in_data = false;
                let mut data = String::new();
                while let Ok(Some(line)) = lines.next_line().await {
                    if in_data {
                        if line == "." {
                            in_data = false;
                            store.lock().unwrap().push(std::mem::take(&mut data));
                            w.write_all(b"250 OK queued\r\n").await.ok();
                        } else {
                            data.push_str(&line);
                            data.push('\n');
                        }
                        continue;
                    }
                    let cmd = line.to_ascii_uppercase();
                    // Addresses that say how to answer: `bounce` is refused for good, `busy`
                    // for now.
                    let reply: &[u8] = if cmd.starts_with("RCPT") && cmd.contains("BOUNCE") {
                        b"550 5.1.1 no such user here\r\n"
                    } else if cmd.starts_with("RCPT") && cmd.contains("BUSY") {
                        b"451 4.3.0 try again later\r\n"
                    } else if cmd.starts_with("EHLO") {
                        b"250-sink\r\n250 8BITMIME\r\n"
                    } else if cmd.starts_with("DATA") {
                        in_data = true;
                        b"354 go ahead\r\n"
                    } else if cmd.starts_with("QUIT") {
                        w.write_all(b"221 bye\r\n").await.ok();
                        return;
                    } else {
                        b"250 OK\r\n"
                    };
                    w.write_all(reply).await.ok();
                }
            });
        }
    });
    SmtpSink { port, messages }
}

/// A stand-in for Clerk's Backend API: serves the subscription items and payer subscriptions a
/// test puts in, records every request with its headers, and answers scripted failures first.
pub struct BackendApi {
    pub url: String,
    pub requests: Arc<Mutex<Vec<(String, axum::http::HeaderMap)>>>,
    pub items: Arc<Mutex<Vec<Value>>>,
    /// Payer id → its `commerce_subscription`.
    pub subscriptions: Arc<Mutex<std::collections::HashMap<String, Value>>>,
    /// (status, Retry-After seconds) answered before anything else, in order.
    pub script: Script,
    /// (payer type `user`/`org`, plan) for `GET /v1/billing/plans?payer_type=…`.
    pub plans: Arc<Mutex<Vec<(String, Value)>>>,
    /// Every request as (method, path and query, body).
    pub calls: Arc<Mutex<Vec<(String, String, String)>>>,
    /// User id → its `GET /v1/users/{id}` answer.
    pub users: Arc<Mutex<std::collections::HashMap<String, Value>>>,
    /// How long every answer waits (ms): a slow Clerk.
    pub delay_ms: Arc<std::sync::atomic::AtomicU64>,
    /// API key secret → its `POST /v1/api_keys/verify` answer (unknown secrets: `404`).
    pub api_keys: Arc<Mutex<std::collections::HashMap<String, Value>>>,
}

/// Responses a stand-in answers first: (status, `Retry-After` seconds).
pub type Script = Arc<Mutex<std::collections::VecDeque<(u16, Option<u64>)>>>;

pub async fn backend_api() -> BackendApi {
    use axum::{
        extract::Request,
        http::StatusCode,
        response::{IntoResponse, Response},
    };
    let requests: Arc<Mutex<Vec<(String, axum::http::HeaderMap)>>> = Default::default();
    let items: Arc<Mutex<Vec<Value>>> = Default::default();
    let subscriptions: Arc<Mutex<std::collections::HashMap<String, Value>>> = Default::default();
    let script: Script = Default::default();
    let plans: Arc<Mutex<Vec<(String, Value)>>> = Default::default();
    let calls: Arc<Mutex<Vec<(String, String, String)>>> = Default::default();
    let users: Arc<Mutex<std::collections::HashMap<String, Value>>> = Default::default();
    let delay_ms: Arc<std::sync::atomic::AtomicU64> = Default::default();
    let api_keys: Arc<Mutex<std::collections::HashMap<String, Value>>> = Default::default();
    let ak = api_keys.clone();
    let (r, i, s, sc, pl, ca, us, dl) = (
        requests.clone(),
        items.clone(),
        subscriptions.clone(),
        script.clone(),
        plans.clone(),
        calls.clone(),
        users.clone(),
        delay_ms.clone(),
    );
    let app =
        Router::new().fallback(move |req: Request| {
            let ak = ak.clone();
            let (r, i, s, sc, pl, ca, us, dl) = (
                r.clone(),
                i.clone(),
                s.clone(),
                sc.clone(),
                pl.clone(),
                ca.clone(),
                us.clone(),
                dl.clone(),
            );
            async move {
                let uri = req.uri().clone();
                let method = req.method().to_string();
                r.lock()
                    .unwrap()
                    .push((uri.to_string(), req.headers().clone()));
                let body = axum::body::to_bytes(req.into_body(), 1 << 20)
                    .await
                    .unwrap_or_default();
                ca.lock().unwrap().push((
                    method.clone(),
                    uri.to_string(),
                    String::from_utf8_lossy(&body).into_owned(),
                ));
                // A slow Clerk: the request is recorded as it arrives, answered later.
                let wait = dl.load(Ordering::SeqCst);
                if wait > 0 {
                    tokio::time::sleep(std::time::Duration::from_millis(wait)).await;
                }
                if let Some((status, retry_after)) = sc.lock().unwrap().pop_front() {
                    let mut resp: Response = (
                        StatusCode::from_u16(status).unwrap(),
                        Json(json!({"errors": [{"code": "scripted"}]})),
                    )
                        .into_response();
                    if let Some(secs) = retry_after {
                        resp.headers_mut()
                            .insert("retry-after", secs.to_string().parse().unwrap());
                    }
                    return resp;
                }
                let path = uri.path();
                let q: std::collections::HashMap<String, String> = uri
                    .query()
                    .unwrap_or_default()
                    .split('&')
                    .filter_map(|kv| kv.split_once('='))
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect();
                if path == "/v1/billing/plans" {
                    let kind = q.get("payer_type").cloned().unwrap_or_default();
                    let data: Vec<Value> = pl
                        .lock()
                        .unwrap()
                        .iter()
                        .filter(|(k, _)| *k == kind)
                        .map(|(_, p)| p.clone())
                        .collect();
                    return Json(json!({"data": data, "total_count": data.len()})).into_response();
                }
                if path == "/v1/billing/subscription_items" {
                    let limit: usize = q.get("limit").and_then(|v| v.parse().ok()).unwrap_or(10);
                    let offset: usize = q.get("offset").and_then(|v| v.parse().ok()).unwrap_or(0);
                    let all = i.lock().unwrap().clone();
                    let page: Vec<Value> = all.iter().skip(offset).take(limit).cloned().collect();
                    return Json(json!({"data": page, "total_count": all.len()})).into_response();
                }
                if path == "/v1/api_keys/verify" && method == "POST" {
                    let secret = serde_json::from_slice::<Value>(&body)
                        .ok()
                        .and_then(|b| b["secret"].as_str().map(str::to_string))
                        .unwrap_or_default();
                    return match ak.lock().unwrap().get(&secret) {
                        Some(answer) => Json(answer.clone()).into_response(),
                        None => (
                            StatusCode::NOT_FOUND,
                            Json(json!({"errors": [{"code": "resource_not_found"}]})),
                        )
                            .into_response(),
                    };
                }
                let parts: Vec<&str> = path.split('/').collect();
                // Cancel and extend a trial: the item, as Clerk answers them.
                match (method.as_str(), &parts[..]) {
                    ("DELETE", ["", "v1", "billing", "subscription_items", id])
                    | (
                        "POST",
                        ["", "v1", "billing", "subscription_items", id, "extend_free_trial"],
                    ) => {
                        return Json(json!({"object": "commerce_subscription_item", "id": id}))
                            .into_response()
                    }
                    _ => {}
                }
                if let ["", "v1", "users", id] = parts[..] {
                    return match us.lock().unwrap().get(id) {
                        Some(user) => Json(user.clone()).into_response(),
                        None => {
                            (StatusCode::NOT_FOUND, Json(json!({"errors": []}))).into_response()
                        }
                    };
                }
                if let ["", "v1", "users" | "organizations", id, "billing", "subscription"] =
                    parts[..]
                {
                    return match s.lock().unwrap().get(id) {
                        Some(sub) => Json(sub.clone()).into_response(),
                        None => {
                            (StatusCode::NOT_FOUND, Json(json!({"errors": []}))).into_response()
                        }
                    };
                }
                (StatusCode::NOT_FOUND, Json(json!({"errors": []}))).into_response()
            }
        });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    BackendApi {
        url: format!("http://{addr}"),
        requests,
        items,
        subscriptions,
        script,
        plans,
        calls,
        users,
        delay_ms,
        api_keys,
    }
}

impl BackendApi {
    /// Registers a live API key `secret` of `subject` (`user_…` / `org_…`).
    pub fn add_api_key(&self, secret: &str, subject: &str) {
        self.api_keys.lock().unwrap().insert(
            secret.to_string(),
            json!({"object": "api_key", "id": format!("ak_id_{subject}"), "type": "api_key",
                   "subject": subject, "name": "test", "claims": null, "scopes": [],
                   "revoked": false, "expired": false, "expiration": null,
                   "created_at": 1, "updated_at": 1}),
        );
    }

    /// Marks key `secret` revoked, as Clerk answers afterwards.
    pub fn revoke_api_key(&self, secret: &str) {
        if let Some(k) = self.api_keys.lock().unwrap().get_mut(secret) {
            k["revoked"] = json!(true);
        }
    }

    /// How many key verifications reached the Backend API.
    pub fn key_verifications(&self) -> usize {
        self.calls
            .lock()
            .unwrap()
            .iter()
            .filter(|(_, path, _)| path == "/v1/api_keys/verify")
            .count()
    }

    pub fn paths(&self) -> Vec<String> {
        self.requests
            .lock()
            .unwrap()
            .iter()
            .map(|(p, _)| p.clone())
            .collect()
    }
}

pub const SECRET_KEY: &str = "sk_test_plangatestandinbackendkey0001";

/// An app (not demo) whose Backend API is `api` (no background sweep), with `extra` settings.
pub async fn app_with_api(api: &BackendApi, extra: Vec<(&'static str, String)>) -> TestApp {
    let mut vars = vec![
        ("CLERK_SECRET_KEY", SECRET_KEY.to_string()),
        ("CLERK_API_URL", api.url.clone()),
        ("RECONCILE_INTERVAL_SECS", "0".to_string()),
    ];
    vars.extend(extra);
    spawn_with(Options {
        extra: vars,
        ..Default::default()
    })
    .await
}

/// Delivers item `item` of `user` active on `plan` as of `at_ms` (its period a month from then).
pub async fn deliver_item(app: &TestApp, item: &str, user: &str, plan: &str, at_ms: i64) {
    let mut ev = item_event("subscriptionItem.active", "active", item, user, at_ms);
    ev["data"]["plan"]["slug"] = serde_json::json!(plan);
    assert_eq!(app.deliver(&msg_id(), &ev).await.status(), 200);
}

/// A Backend API subscription item, as the list endpoint and the payer's subscription carry it.
pub fn api_item(id: &str, user: &str, plan: &str, status: &str, updated_at: i64) -> Value {
    json!({
        "object": "commerce_subscription_item",
        "id": id,
        "status": status,
        "plan": {"id": format!("cplan_{plan}"), "slug": plan, "name": plan},
        "plan_id": format!("cplan_{plan}"),
        "period_start": updated_at - 1000,
        "period_end": updated_at + 30 * 86_400_000,
        "is_free_trial": false,
        "created_at": updated_at - 1000,
        "updated_at": updated_at,
        "payer_id": format!("cpayer_{user}"),
        "payer": {"user_id": user, "organization_id": null},
    })
}

/// A `subscriptionItem.<x>` delivery: item `item` of `user` on Pro in `status`, stamped
/// `at_ms` (envelope and `updated_at`), its period a month from then.
pub fn item_event(kind: &str, status: &str, item: &str, user: &str, at_ms: i64) -> Value {
    let mut v = fixture("subscriptionItem.active");
    v["type"] = json!(kind);
    v["timestamp"] = json!(at_ms);
    v["data"]["id"] = json!(item);
    v["data"]["status"] = json!(status);
    v["data"]["updated_at"] = json!(at_ms);
    v["data"]["plan"]["slug"] = json!("pro");
    v["data"]["period_end"] = json!(at_ms + 30 * 86_400_000);
    v["data"]["payer"]["user_id"] = json!(user);
    v
}

pub fn failed_payment(item: &str, user: &str, at_ms: i64) -> Value {
    let mut v = fixture("paymentAttempt.updated");
    v["timestamp"] = json!(at_ms);
    v["data"]["status"] = json!("failed");
    v["data"]["failed_at"] = json!(at_ms);
    v["data"]["updated_at"] = json!(at_ms);
    v["data"]["payer"]["user_id"] = json!(user);
    v["data"]["payer"]["email"] = json!(format!("{user}@example.com"));
    v["data"]["subscription_items"][0]["id"] = json!(item);
    v["data"]["subscription_items"][0]["plan"]["slug"] = json!("pro");
    v
}

/// What makes a configuration a production one: `APP_ENV` and an `https` `APP_URL`.
pub const PRODUCTION: [(&str, &str); 2] = [
    ("APP_ENV", "production"),
    ("APP_URL", "https://app.example.com"),
];

/// A clock for usage and background work that a test can move ahead (ms added to now).
pub fn movable_clock() -> (
    plangate::startup::Clock,
    std::sync::Arc<std::sync::atomic::AtomicI64>,
) {
    let ahead = std::sync::Arc::new(std::sync::atomic::AtomicI64::new(0));
    let a = ahead.clone();
    let clock: plangate::startup::Clock = std::sync::Arc::new(move || {
        plangate::db::now_ms() + a.load(std::sync::atomic::Ordering::SeqCst)
    });
    (clock, ahead)
}

/// A fresh session token of `user` (no plan claim: the database decides).
pub fn token_of(user: &str) -> String {
    sign_token(&keys().0, &claims(user))
}

/// How a request shows who sends it: a program's Bearer token, a browser's `__session` cookie.
#[derive(Clone, Copy)]
pub enum Who<'a> {
    Bearer(&'a str),
    Cookie(&'a str),
}

impl<'a> From<&'a str> for Who<'a> {
    fn from(token: &'a str) -> Who<'a> {
        Who::Bearer(token)
    }
}

impl<'a> From<&'a String> for Who<'a> {
    fn from(token: &'a String) -> Who<'a> {
        Who::Bearer(token)
    }
}

/// `GET path` as a browser asks for a document (`accept: text/html`), from `who` (`None`:
/// signed out): its status and body.
pub async fn get_page<'a>(
    app: &TestApp,
    path: &str,
    who: Option<impl Into<Who<'a>>>,
) -> (u16, String) {
    fetch(app, path, who.map(Into::into), true).await
}

/// `GET path` as curl asks for it (no `Accept`), from `who`: its status and body.
pub async fn get_plain<'a>(
    app: &TestApp,
    path: &str,
    who: Option<impl Into<Who<'a>>>,
) -> (u16, String) {
    fetch(app, path, who.map(Into::into), false).await
}

async fn fetch(app: &TestApp, path: &str, who: Option<Who<'_>>, document: bool) -> (u16, String) {
    let mut req = app.client.get(app.url(path));
    if document {
        req = req.header("accept", "text/html");
    }
    match who {
        Some(Who::Bearer(t)) => req = req.bearer_auth(t),
        Some(Who::Cookie(t)) => req = req.header("cookie", format!("__session={t}")),
        None => {}
    }
    let resp = req.send().await.unwrap();
    (resp.status().as_u16(), resp.text().await.unwrap())
}

/// The status `/api/premium-feature` answers this token.
pub async fn premium_status_token(app: &TestApp, token: &str) -> u16 {
    app.get_with_token("/api/premium-feature", token)
        .await
        .status()
        .as_u16()
}

/// The status `/api/premium-feature` answers a fresh token of `user` (no plan claim: the
/// database decides).
pub async fn premium_status(app: &TestApp, user: &str) -> u16 {
    premium_status_token(app, &token_of(user)).await
}

/// `plangate serve` as a separate process on a free port, on `db_url` and data folder `dir`,
/// started through `launcher` (e.g. `prlimit --nofile=…` then the binary) when given; `clerk`
/// adds the test instance's keys; `extra` sets or overrides variables. Returns the child (killed on drop) once `/readyz` answers 200,
/// and its base URL.
pub async fn serve_process(
    db_url: &str,
    dir: &std::path::Path,
    launcher: &[String],
    clerk: bool,
    extra: &[(&str, &str)],
) -> (tokio::process::Child, String) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let bin = env!("CARGO_BIN_EXE_plangate").to_string();
    let argv: Vec<String> = launcher
        .iter()
        .cloned()
        .chain([bin, "serve".to_string()])
        .collect();
    let mut cmd = tokio::process::Command::new(&argv[0]);
    cmd.args(&argv[1..])
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("RUST_LOG", "error")
        .env("DATABASE_URL", db_url)
        .env("DATA_DIR", dir)
        .env("LEPTOS_SITE_ADDR", format!("127.0.0.1:{port}"))
        // Tests run side by side: no fixed metrics port.
        .env("METRICS_ADDR", "off")
        .env("APP_URL", APP_URL)
        .env(
            "PLANS_FILE",
            concat!(env!("CARGO_MANIFEST_DIR"), "/plans.toml"),
        )
        .kill_on_drop(true);
    if clerk {
        cmd.env("CLERK_PUBLISHABLE_KEY", publishable_key())
            .env("CLERK_JWT_KEY", &keys().0.public_pem)
            .env("CLERK_WEBHOOK_SECRET", SECRET_A);
    }
    for (k, v) in extra {
        cmd.env(k, v);
    }
    let child = cmd.spawn().expect("the server process starts");
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    for _ in 0..300 {
        if client
            .get(format!("{base}/readyz"))
            .send()
            .await
            .is_ok_and(|r| r.status() == 200)
        {
            return (child, base);
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    panic!("server did not start");
}

/// The development instance's dev-browser cookie, as a browser on it holds one.
pub const DEV: &str = "__clerk_db_jwt=dvb_test";

/// A token of `user`, genuine but expired ten minutes ago (its `iat` 10 minutes back).
pub fn expired(user: &str) -> String {
    let t = now() - 600;
    let c = with(claims(user), "iat", json!(t));
    let c = with(c, "nbf", json!(t - 10));
    sign_token(&keys().0, &with(c, "exp", json!(t + 60)))
}

/// `s` percent-encoded as a query value.
pub fn urlencode(s: &str) -> String {
    let mut u = reqwest::Url::parse("http://x/").unwrap();
    u.query_pairs_mut().append_pair("v", s);
    u.query().unwrap()[2..].to_string()
}
