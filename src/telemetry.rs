//! `tracing` set-up: `RUST_LOG`-style filter, text or JSON (`LOG_FORMAT=json`).

use tracing_subscriber::{fmt, fmt::writer::BoxMakeWriter, EnvFilter};

pub fn init(json: bool) {
    init_with(json, "info", false)
}

/// For the operator commands: their output is stdout, so logs go to stderr, warnings only
/// unless `RUST_LOG` asks for more.
pub fn init_for_command(json: bool) {
    init_with(json, "warn", true)
}

fn init_with(json: bool, level: &str, to_stderr: bool) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        EnvFilter::new(format!("{level},sqlx=warn,tower_http=info,hyper=warn"))
    });
    let builder = fmt()
        .with_env_filter(filter)
        .with_target(false)
        .with_writer(if to_stderr {
            BoxMakeWriter::new(std::io::stderr)
        } else {
            BoxMakeWriter::new(std::io::stdout)
        });
    // `try_init`: tests start many apps in one process.
    let _ = if json {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}
