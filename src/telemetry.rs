//! `tracing` set-up: `RUST_LOG`-style filter, text or JSON (`LOG_FORMAT=json`).

use tracing_subscriber::{fmt, EnvFilter};

pub fn init(json: bool) {
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn,tower_http=info,hyper=warn"));
    let builder = fmt().with_env_filter(filter).with_target(false);
    // `try_init`: tests start many apps in one process.
    let _ = if json {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}
