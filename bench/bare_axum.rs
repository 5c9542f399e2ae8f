//! The HTTP ceiling for benchmarks: axum returning a constant JSON, nothing else.
//! `cargo run --release --features ssr,bench-tools --bin bare_axum -- 127.0.0.1:3900`

use axum::{routing::get, Json, Router};

#[tokio::main]
async fn main() {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:3900".into());
    let app = Router::new().route(
        "/",
        get(|| async { Json(serde_json::json!({"message": "ok", "plan": "pro"})) }),
    );
    let listener = tokio::net::TcpListener::bind(&addr).await.expect("bind");
    axum::serve(listener, app).await.expect("serve");
}
