//! Bad configuration stops the start with a message naming the variable (the real binary).

use std::process::Command;

use crate::helpers::TempDir;

/// Runs `plangate migrate` in a folder of its own: (succeeded, stderr, the folder).
fn start(vars: &[(&str, &str)]) -> (bool, String, TempDir) {
    let dir = TempDir::new("plangate-cfg-");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_plangate"));
    cmd.current_dir(&*dir)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default());
    cmd.env("LEPTOS_SITE_ADDR", "127.0.0.1:0")
        .env("DATA_DIR", dir.join("data"));
    cmd.env(
        "PLANS_FILE",
        concat!(env!("CARGO_MANIFEST_DIR"), "/plans.toml"),
    );
    for (k, v) in vars {
        cmd.env(k, v);
    }
    // `migrate` does the whole configuration check, then exits instead of serving.
    let out = cmd.arg("migrate").output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
        dir,
    )
}

#[test]
fn an_unsupported_database_url_stops_the_start_naming_database_url() {
    let (ok, err, _) = start(&[("DATABASE_URL", "mysql://x")]);
    assert!(!ok);
    assert!(err.contains("DATABASE_URL"), "{err}");
}

#[test]
fn production_without_a_webhook_secret_stops_the_start() {
    let pk = "pk_live_Y2xlcmsuZXhhbXBsZS5jb20k"; // clerk.example.com$
    let (ok, err, _) = start(&[("APP_ENV", "production"), ("CLERK_PUBLISHABLE_KEY", pk)]);
    assert!(!ok);
    assert!(err.contains("CLERK_WEBHOOK_SECRET"), "{err}");
}

#[test]
fn production_without_clerk_keys_refuses_demo_mode() {
    let (ok, err, _) = start(&[("APP_ENV", "production")]);
    assert!(!ok);
    assert!(
        err.contains("CLERK_PUBLISHABLE_KEY") && err.contains("demo"),
        "{err}"
    );
}

#[test]
fn no_configuration_migrates_an_embedded_sqlite_file() {
    let (ok, err, dir) = start(&[]);
    assert!(ok, "{err}");
    assert!(dir.join("data/plangate.db").exists());
}
