//! Bad configuration stops the start with a message naming the variable (the real binary).

use std::process::Command;

use crate::helpers::{TempDir, PRODUCTION};

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

/// The rules themselves are unit tests (`src/config.rs`); here, that the process applies them:
/// an invalid setting stops the start, naming the variable and what to do.
#[test]
fn an_invalid_setting_stops_the_start_naming_it() {
    let pk = "pk_live_Y2xlcmsuZXhhbXBsZS5jb20k"; // clerk.example.com$
    for (vars, names) in [
        (vec![("DATABASE_URL", "mysql://x")], vec!["DATABASE_URL"]),
        (
            vec![("APP_ENV", "production")],
            vec!["CLERK_PUBLISHABLE_KEY", "demo"],
        ),
        (
            vec![("APP_ENV", "production"), ("CLERK_PUBLISHABLE_KEY", pk)],
            vec!["CLERK_WEBHOOK_SECRET"],
        ),
        (
            vec![("CLERK_WEBHOOK_SIGNING_SECRET", "whsec_dGVzdA==")],
            vec!["CLERK_WEBHOOK_SIGNING_SECRET", "16 bytes"],
        ),
    ] {
        let (ok, err, _) = start(&vars);
        assert!(!ok, "{vars:?} started");
        for n in names {
            assert!(err.contains(n), "{vars:?}: {err}");
        }
    }
    for (k, v) in [
        ("APP_URL", "http://app.example.com"),
        ("CLERK_API_URL", "http://api.clerk.example"),
        ("CLERK_JWKS_URL", "http://clerk.example.com/jwks"),
        ("CLERK_AUTHORIZED_PARTIES", " , "),
    ] {
        let (ok, err, _) = production(&[(k, v)]);
        assert!(!ok, "{k}={v} started");
        assert!(err.contains(k), "{err}");
    }
}

#[test]
fn no_configuration_migrates_an_embedded_sqlite_file() {
    let (ok, err, dir) = start(&[]);
    assert!(ok, "{err}");
    assert!(dir.join("data/plangate.db").exists());
}

/// A production configuration that starts, with `extra` replacing or adding variables.
fn production(extra: &[(&str, &str)]) -> (bool, String, TempDir) {
    let mut vars = PRODUCTION.to_vec();
    vars.extend([
        ("CLERK_PUBLISHABLE_KEY", "pk_live_Y2xlcmsuZXhhbXBsZS5jb20k"),
        (
            "CLERK_WEBHOOK_SECRET",
            "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        ),
    ]);
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

/// A limit the plans file cannot mean stops `serve` before it listens, naming the plan (the
/// rules are unit tests in `src/billing/plans.rs`).
#[test]
fn a_bad_usage_limit_stops_the_start_naming_the_plan() {
    let shipped =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/plans.toml")).unwrap();
    for (bad, says) in [
        ("limits = { premium_api = -5 }", "whole number"),
        ("limits = { premium_api = 2.5 }", "whole number"),
        ("limits = { priority_support = 5 }", "does not have"),
        ("limit = { premium_api = 5 }", "limit"),
    ] {
        let dir = TempDir::new("plangate-cfg-");
        let plans = dir.join("plans.toml");
        let text = shipped.replacen("limits = { premium_api = 10000 }", bad, 1);
        assert_ne!(
            text, shipped,
            "the shipped Pro limit is where the test expects it"
        );
        std::fs::write(&plans, text).unwrap();
        let out = Command::new(env!("CARGO_BIN_EXE_plangate"))
            .current_dir(&*dir)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("LEPTOS_SITE_ADDR", "127.0.0.1:0")
            .env("METRICS_ADDR", "off")
            .env("DATA_DIR", dir.join("data"))
            .env("PLANS_FILE", &plans)
            .arg("serve")
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{bad}: started");
        assert!(err.contains(says), "{bad}: {err}");
        if says != "limit" {
            assert!(err.contains("plan `pro`"), "{bad}: {err}");
        }
    }
}
