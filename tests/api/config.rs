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

/// A production configuration that starts, with `extra` replacing or adding variables.
fn production(extra: &[(&str, &str)]) -> (bool, String, TempDir) {
    let mut vars = vec![
        ("APP_ENV", "production"),
        ("APP_URL", "https://app.example.com"),
        ("CLERK_PUBLISHABLE_KEY", "pk_live_Y2xlcmsuZXhhbXBsZS5jb20k"),
        (
            "CLERK_WEBHOOK_SECRET",
            "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        ),
    ];
    for (k, v) in extra {
        vars.retain(|(n, _)| n != k);
        vars.push((k, v));
    }
    start(&vars)
}

#[test]
fn a_complete_production_configuration_starts() {
    let (ok, err, _) = production(&[]);
    assert!(ok, "{err}");
}

#[test]
fn a_guessable_webhook_secret_stops_the_start_naming_its_variable() {
    // `whsec_dGVzdA==` is a 4-byte key: anyone could forge subscriptionItem.active with it.
    for var in ["CLERK_WEBHOOK_SECRET", "CLERK_WEBHOOK_SIGNING_SECRET"] {
        let (ok, err, _) = production(&[("CLERK_WEBHOOK_SECRET", ""), (var, "whsec_dGVzdA==")]);
        assert!(!ok, "{var} accepted a 4-byte secret");
        assert!(err.contains(var) && err.contains("16 bytes"), "{err}");
    }
    let (ok, err, _) = start(&[("CLERK_WEBHOOK_SECRET", "whsec_dGVzdA==")]);
    assert!(
        !ok && err.contains("CLERK_WEBHOOK_SECRET"),
        "development too: {err}"
    );
}

#[test]
fn an_authorized_party_list_of_nothing_stops_the_start() {
    for v in [" , ", ",,", "*"] {
        let (ok, err, _) = production(&[("CLERK_AUTHORIZED_PARTIES", v)]);
        assert!(!ok, "{v:?} switched the azp check off");
        assert!(err.contains("CLERK_AUTHORIZED_PARTIES"), "{err}");
    }
}

#[test]
fn production_refuses_plain_http_for_the_app_and_the_backend_api() {
    for (k, v) in [
        ("APP_URL", "http://app.example.com"),
        ("CLERK_API_URL", "http://api.clerk.example"),
    ] {
        let (ok, err, _) = production(&[(k, v)]);
        assert!(!ok, "{k}={v} started");
        assert!(err.contains(k) && err.contains("https"), "{err}");
    }
}

/// `.env.example` is copied to `.env`, which both the app and cargo-leptos read with a dotenv
/// parser that stops at the first line it cannot parse: every line must parse, and the values
/// must be a configuration that starts.
#[test]
fn every_line_of_the_example_environment_parses_and_starts() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/.env.example");
    let vars: Vec<(String, String)> = dotenvy::from_path_iter(path)
        .unwrap()
        .map(|item| item.unwrap_or_else(|e| panic!(".env.example: {e}")))
        .collect();
    let get = |k: &str| vars.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    assert_eq!(get("MAIL_FROM"), Some("plangate <billing@localhost>"));
    // Run in a folder of its own: the plans file is the repository's.
    let pairs: Vec<(&str, &str)> = vars
        .iter()
        .filter(|(k, _)| k != "PLANS_FILE")
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let (ok, stderr, _dir) = start(&pairs);
    assert!(ok, "{stderr}");
}
