//! `plangate check` against stand-in JWKS and Backend API servers, and `plangate backup` under
//! webhook load (README, "Going live with Clerk").

use std::{
    collections::HashSet,
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc, Mutex,
    },
    time::Duration,
};

use serde_json::json;

use crate::helpers::*;

/// Clerk's plans for the shipped plans.toml: every paid one under its slug and payer type.
fn clerk_plans(api: &BackendApi, skip: &str) {
    let mut plans = api.plans.lock().unwrap();
    for (kind, slug) in [
        ("user", "free_user"),
        ("user", "starter"),
        ("user", "pro"),
        ("user", "business"),
        ("org", "free_org"),
        ("org", "team"),
    ] {
        if slug != skip {
            plans.push((
                kind.to_string(),
                json!({"object": "commerce_plan", "slug": slug}),
            ));
        }
    }
}

/// An app with a Clerk test instance whose JWKS and Backend API are stand-ins; `check`'s
/// settings for it.
async fn instance() -> (TestApp, BackendApi, Jwks) {
    let api = backend_api().await;
    let jwks = jwks_server(vec![keys().0.jwk.clone()]).await;
    let app = spawn_with(Options {
        jwks_url: Some(jwks.url.clone()),
        extra: vec![
            ("CLERK_SECRET_KEY", SECRET_KEY.to_string()),
            ("CLERK_API_URL", api.url.clone()),
        ],
        ..Default::default()
    })
    .await;
    (app, api, jwks)
}

fn fails(out: &str) -> Vec<&str> {
    out.lines().filter(|l| l.starts_with("FAIL")).collect()
}

#[tokio::test]
async fn a_good_configuration_passes_every_check() {
    let (app, api, _jwks) = instance().await;
    clerk_plans(&api, "");
    let (code, out, err) = app.command(&["check"], &[]).await;
    assert_eq!(code, 0, "{out}{err}");
    assert!(fails(&out).is_empty(), "{out}");
    for expected in [
        "settings parse and agree",
        "frontend API host test-app-1.clerk.accounts.dev",
        "has 1 RSA key(s)",
        "CLERK_SECRET_KEY accepted",
        "every paid plan and gate of PLANS_FILE exists in Clerk",
        "reachable and migrated",
    ] {
        assert!(out.contains(expected), "{expected}: {out}");
    }
    let paths = api.paths();
    assert!(
        paths.iter().any(|p| p.contains("payer_type=user")),
        "{paths:?}"
    );
    assert!(
        paths.iter().any(|p| p.contains("payer_type=org")),
        "{paths:?}"
    );
    assert!(!out.contains(SECRET_KEY) && !err.contains(SECRET_KEY));
}

#[tokio::test]
async fn a_paid_plan_clerk_lacks_fails_naming_the_slug() {
    let (app, api, _jwks) = instance().await;
    clerk_plans(&api, "business");
    let (code, out, _) = app.command(&["check"], &[]).await;
    assert_eq!(code, 1, "{out}");
    let f = fails(&out);
    assert_eq!(f.len(), 2, "the plan, and the gate naming it: {out}");
    assert!(
        f[0].contains("`business`") && f[0].contains("not in Clerk"),
        "{out}"
    );
    assert!(
        f[1].contains("gate `premium`") && f[1].contains("`business`"),
        "{out}"
    );
}

#[tokio::test]
async fn a_plan_clerk_has_and_the_file_lacks_fails_naming_it() {
    let (app, api, _jwks) = instance().await;
    clerk_plans(&api, "");
    api.plans.lock().unwrap().extend([
        (
            "user".to_string(),
            json!({"object": "commerce_plan", "slug": "enterprise"}),
        ),
        (
            "org".to_string(),
            json!({"object": "commerce_plan", "slug": "pro"}),
        ),
    ]);
    let (code, out, _) = app.command(&["check"], &[]).await;
    assert_eq!(code, 1, "{out}");
    let f = fails(&out);
    assert_eq!(f.len(), 2, "{out}");
    assert!(
        f[0].contains("`enterprise` (user)") && f[0].contains("not in PLANS_FILE"),
        "{out}"
    );
    assert!(
        f[1].contains("`pro` (organization)") && f[1].contains("plan_not_configured"),
        "a user plan's slug is not the organization's: {out}"
    );
}

#[tokio::test]
async fn an_unreachable_jwks_fails_naming_the_jwks() {
    let (app, api, _jwks) = instance().await;
    clerk_plans(&api, "");
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!(
        "http://{}/.well-known/jwks.json",
        dead.local_addr().unwrap()
    );
    drop(dead);
    let (code, out, _) = app.command(&["check"], &[("CLERK_JWKS_URL", &url)]).await;
    assert_eq!(code, 1, "{out}");
    let f = fails(&out);
    assert_eq!(f.len(), 1, "{out}");
    assert!(f[0].contains("JWKS") && f[0].contains(&url), "{out}");
}

#[tokio::test]
async fn a_refused_secret_key_fails_saying_so() {
    let (app, api, _jwks) = instance().await;
    clerk_plans(&api, "");
    api.script.lock().unwrap().push_back((401, None));
    let (code, out, _) = app.command(&["check"], &[]).await;
    assert_eq!(code, 1, "{out}");
    let f = fails(&out);
    assert_eq!(f.len(), 1, "{out}");
    assert!(f[0].contains("CLERK_SECRET_KEY was refused"), "{out}");
}

#[tokio::test]
async fn a_production_configuration_with_a_test_key_fails_naming_the_variable() {
    let (app, _api, _jwks) = instance().await;
    let (code, out, _) = app.command(&["check"], &PRODUCTION).await;
    assert_eq!(code, 1, "{out}");
    let f = fails(&out);
    assert_eq!(f.len(), 1, "{out}");
    assert!(
        f[0].contains("CLERK_SECRET_KEY") && f[0].contains("test key"),
        "{out}"
    );
}

#[tokio::test]
async fn a_database_without_migrations_fails_saying_what_to_run() {
    let (app, api, _jwks) = instance().await;
    clerk_plans(&api, "");
    let empty = format!("sqlite://{}/empty.db", app.data_dir.display());
    let (code, out, _) = app.command(&["check"], &[("DATABASE_URL", &empty)]).await;
    assert_eq!(code, 1, "{out}");
    let f = fails(&out);
    assert_eq!(f.len(), 1, "{out}");
    let migrations = std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/migrations"))
        .unwrap()
        .count();
    assert!(
        f[0].contains(&format!("lacks {migrations} migration(s)"))
            && f[0].contains("plangate migrate"),
        "{out}"
    );
}

#[tokio::test]
async fn a_backup_taken_under_webhook_load_holds_every_delivery_acknowledged_before_it() {
    // The backup copies the SQLite default, whatever TEST_DATABASE_URL says.
    let dir = TempDir::new("plangate-backup-");
    let app = spawn_with(Options {
        extra: vec![(
            "DATABASE_URL",
            format!("sqlite://{}/live.db", dir.display()),
        )],
        ..Default::default()
    })
    .await;
    let app = Arc::new(app);
    let acked: Arc<Mutex<Vec<String>>> = Default::default();
    let stop = Arc::new(AtomicBool::new(false));
    let mut senders = Vec::new();
    for s in 0..4 {
        let (app, acked, stop) = (app.clone(), acked.clone(), stop.clone());
        senders.push(tokio::spawn(async move {
            let mut n = 0;
            while !stop.load(Ordering::Relaxed) {
                let id = msg_id();
                let item = format!("csub_item_bk{s}_{n}");
                let event = item_event(
                    "subscriptionItem.active",
                    "active",
                    &item,
                    "user_bk",
                    now() * 1000,
                );
                if app.deliver(&id, &event).await.status() == 200 {
                    acked.lock().unwrap().push(id);
                }
                n += 1;
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before: HashSet<String> = acked.lock().unwrap().iter().cloned().collect();
    let file = dir.join("backups/plangate-backup.db");
    let file_s = file.display().to_string();
    let (code, out, err) = app.command(&["backup", &file_s], &[]).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    stop.store(true, Ordering::Relaxed);
    for s in senders {
        s.await.unwrap();
    }
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.starts_with(&format!("backup written to {file_s}")),
        "{out}"
    );
    assert!(before.len() > 20, "load was running: {}", before.len());
    let total_acked = acked.lock().unwrap().len();

    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "the backup is private");

    let copy = sqlx::SqlitePool::connect(&format!("sqlite://{file_s}?mode=ro"))
        .await
        .unwrap();
    let check: String = sqlx::query_scalar("pragma integrity_check")
        .fetch_one(&copy)
        .await
        .unwrap();
    assert_eq!(check, "ok");
    let stored: HashSet<String> = sqlx::query_scalar("select svix_id from webhook_event")
        .fetch_all(&copy)
        .await
        .unwrap()
        .into_iter()
        .collect();
    let lost: Vec<_> = before.difference(&stored).collect();
    assert!(
        lost.is_empty(),
        "acknowledged before the backup, missing from it: {lost:?}"
    );
    assert!(
        stored.len() <= total_acked,
        "nothing that was never acknowledged"
    );
    copy.close().await;

    // A second backup to the same file is refused: an old backup is never overwritten.
    let (code, _, err) = app.command(&["backup", &file_s], &[]).await;
    assert_eq!(code, 1);
    assert!(err.contains("exists already"), "{err}");
}
