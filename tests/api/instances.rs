//! Several instances on one PostgreSQL database (README, "Several instances"): what one applies the other
//! serves, exactly-once across them, background work leased to one, and a database outage cut
//! by a proxy between the instances and PostgreSQL. The PostgreSQL tests need
//! `TEST_DATABASE_URL` (CI's PostgreSQL run); the lease rules run on both engines.

use std::{
    net::SocketAddr,
    time::{Duration, Instant},
};

use serde_json::Value;
use tokio::{
    net::{TcpListener, TcpStream},
    sync::watch,
};

use crate::helpers::*;

/// `None` (the test is skipped) unless the tests run on PostgreSQL.
fn postgres() -> Option<String> {
    match std::env::var("TEST_DATABASE_URL") {
        Ok(url) if url.starts_with("postgres") => Some(url),
        _ => {
            eprintln!("skipped: several instances need TEST_DATABASE_URL=postgres://…");
            None
        }
    }
}

/// Two applications on one fresh PostgreSQL database, reached at `url`'s host (the proxy's,
/// when a test puts one between them and the database).
async fn two_instances(
    dir: &TempDir,
    through: Option<SocketAddr>,
    extra: Vec<(&'static str, String)>,
) -> (TestApp, TestApp) {
    let mut url = test_database_url(dir).await;
    if let Some(proxy) = through {
        let (scheme_auth, rest) = url.split_once('@').unwrap();
        let (_, db) = rest.split_once('/').unwrap();
        url = format!("{scheme_auth}@{proxy}/{db}");
    }
    let spawn = |url: String| {
        let extra = extra.clone();
        async move {
            spawn_with(Options {
                reuse: Some((url, dir.to_path_buf())),
                extra: [vec![("METRICS_ADDR", "127.0.0.1:0".to_string())], extra].concat(),
                ..Default::default()
            })
            .await
        }
    };
    let a = spawn(url.clone()).await;
    let b = spawn(url).await;
    (a, b)
}

/// Polls `app`'s `/api/premium-feature` with `token` until it answers `status`, for at most
/// `within`; returns the last status seen.
async fn until_status(app: &TestApp, token: &str, status: u16, within: Duration) -> u16 {
    let deadline = Instant::now() + within;
    loop {
        let got = app
            .get_with_token("/api/premium-feature", token)
            .await
            .status()
            .as_u16();
        if got == status || Instant::now() > deadline {
            return got;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The value of an unlabelled series in Prometheus text.
fn gauge(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
}

/// Waits (bounded) until `app` listens for the other instances' changes.
async fn until_listening(app: &TestApp, listening: bool, within: Duration) -> bool {
    let want = if listening { 1.0 } else { 0.0 };
    let deadline = Instant::now() + within;
    loop {
        if gauge(&app.metrics().await, "plangate_invalidation_listening") == Some(want) {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn what_one_instance_applies_the_other_serves_and_an_end_is_refused_there_soon_after() {
    let Some(_) = postgres() else { return };
    let dir = TempDir::new("plangate-two-");
    let (a, b) = two_instances(&dir, None, vec![]).await;
    assert!(until_listening(&b, true, Duration::from_secs(5)).await);
    let token = sign_token(&keys().0, &claims("user_two"));
    // B has looked the payer up (and cached "nothing") before A hears of the subscription.
    for _ in 0..3 {
        assert_eq!(
            b.get_with_token("/api/premium-feature", &token)
                .await
                .status(),
            403
        );
    }
    let t = now() * 1000;
    let active = item_event(
        "subscriptionItem.active",
        "active",
        "csub_item_two",
        "user_two",
        t,
    );
    assert_eq!(a.deliver(&msg_id(), &active).await.status(), 200);
    assert_eq!(
        until_status(&b, &token, 200, Duration::from_secs(2)).await,
        200,
        "B serves the activation A applied"
    );
    // B keeps the payer cached while it serves it; A ends the subscription.
    let ended = item_event(
        "subscriptionItem.ended",
        "ended",
        "csub_item_two",
        "user_two",
        t + 1000,
    );
    assert_eq!(a.deliver(&msg_id(), &ended).await.status(), 200);
    assert_eq!(
        until_status(&b, &token, 403, Duration::from_secs(2)).await,
        403,
        "B refuses the payer soon after A applied the end, not when its cache expires"
    );
}

#[tokio::test]
async fn the_same_delivery_sent_to_both_instances_at_once_is_applied_once_with_one_mail() {
    let Some(_) = postgres() else { return };
    let dir = TempDir::new("plangate-two-");
    let (a, b) = two_instances(&dir, None, vec![]).await;
    let t = now() * 1000;
    let active = item_event(
        "subscriptionItem.active",
        "active",
        "csub_item_once",
        "user_once",
        t,
    );
    assert_eq!(a.deliver(&msg_id(), &active).await.status(), 200);
    let id = msg_id();
    let body = failed_payment("csub_item_once", "user_once", t + 10).to_string();
    let ts = now();
    let sends: Vec<_> = (0..10)
        .flat_map(|_| {
            [
                a.deliver_signed(&id, ts, &body, SECRET_A),
                b.deliver_signed(&id, ts, &body, SECRET_A),
            ]
        })
        .collect();
    let mut outcomes = Vec::new();
    for r in futures::future::join_all(sends).await {
        assert_eq!(r.status(), 200);
        outcomes.push(r.json::<Value>().await.unwrap()["outcome"].clone());
    }
    let applied = outcomes.iter().filter(|o| *o == "applied").count();
    let duplicate = outcomes.iter().filter(|o| *o == "duplicate").count();
    assert_eq!((applied, duplicate), (1, 19), "{outcomes:?}");
    a.mail_drained().await;
    b.mail_drained().await;
    let sent = plangate::db::outbox::count_by_status(&a.db.pool, "sent")
        .await
        .unwrap();
    assert_eq!(sent, 1, "one mail between the two instances");
    let files = std::fs::read_dir(dir.join("mail")).unwrap().count();
    assert_eq!(files, 1, "one mail written");
}

#[tokio::test]
async fn background_sweeps_run_on_one_instance_of_two() {
    let Some(_) = postgres() else { return };
    let api = backend_api().await;
    let dir = TempDir::new("plangate-two-");
    let (_a, _b) = two_instances(
        &dir,
        None,
        vec![
            ("CLERK_SECRET_KEY", SECRET_KEY.to_string()),
            ("CLERK_API_URL", api.url.clone()),
            ("RECONCILE_INTERVAL_SECS", "3".to_string()),
        ],
    )
    .await;
    // Each instance's first sweep is due 3 s after its start, the next 3 s after that.
    tokio::time::sleep(Duration::from_millis(4500)).await;
    let sweeps = api
        .paths()
        .iter()
        .filter(|p| p.starts_with("/v1/billing/subscription_items"))
        .count();
    assert_eq!(sweeps, 1, "one sweep per interval between two instances");
}

/// A lease is one holder's until it expires; then anyone may take it (an instance killed while
/// holding it is replaced); a released lease is free at once.
#[tokio::test]
async fn a_lease_is_one_holders_until_it_expires_or_is_released() {
    use plangate::db::leases::{acquire, release};
    let app = spawn_app().await;
    let pool = &app.db.pool;
    let t = 1_000_000;
    assert!(acquire(pool, "work", "a", t, 1000).await.unwrap());
    assert!(!acquire(pool, "work", "b", t + 999, 1000).await.unwrap());
    assert!(
        !acquire(pool, "work", "a", t + 999, 1000).await.unwrap(),
        "not even its holder takes a running lease twice"
    );
    assert!(
        acquire(pool, "other", "b", t, 1000).await.unwrap(),
        "leases are named"
    );
    assert!(
        acquire(pool, "work", "b", t + 1000, 1000).await.unwrap(),
        "expired: taken over"
    );
    release(pool, "work", "a").await.unwrap();
    assert!(
        !acquire(pool, "work", "c", t + 1500, 1000).await.unwrap(),
        "only the holder releases"
    );
    release(pool, "work", "b").await.unwrap();
    assert!(acquire(pool, "work", "c", t + 1500, 1000).await.unwrap());
}

/// A TCP proxy to PostgreSQL that can stall every connection (bytes stop flowing, sockets stay
/// open: a network that silently drops packets), cut them all and refuse new ones, and restore.
struct Proxy {
    addr: SocketAddr,
    /// `Stall` or `Cut` until set back to `Flow`.
    mode: watch::Sender<Mode>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Flow,
    Stall,
    Cut,
}

async fn proxy(upstream: SocketAddr) -> Proxy {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (mode, rx) = watch::channel(Mode::Flow);
    tokio::spawn(async move {
        loop {
            let Ok((mut inbound, _)) = listener.accept().await else {
                return;
            };
            let mut rx = rx.clone();
            tokio::spawn(async move {
                let mode = *rx.borrow_and_update();
                match mode {
                    Mode::Cut => return, // dropped: the database is "down"
                    Mode::Stall => {
                        // Held open, never answered, until the cut.
                        let _ = rx.wait_for(|m| *m == Mode::Cut).await;
                        return;
                    }
                    Mode::Flow => {}
                }
                let Ok(mut outbound) = TcpStream::connect(upstream).await else {
                    return;
                };
                tokio::select! {
                    _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => return,
                    _ = rx.wait_for(|m| *m != Mode::Flow) => {}
                }
                let _ = rx.wait_for(|m| *m == Mode::Cut).await;
                drop((inbound, outbound));
            });
        }
    });
    Proxy { addr, mode }
}

#[tokio::test]
async fn both_instances_answer_503_while_the_database_is_cut_and_recover_without_a_restart() {
    let Some(admin) = postgres() else { return };
    let host = admin.split_once('@').unwrap().1.split('/').next().unwrap();
    let upstream = tokio::net::lookup_host(host).await.unwrap().next().unwrap();
    let proxy = proxy(upstream).await;
    let dir = TempDir::new("plangate-two-");
    let (a, b) = two_instances(&dir, Some(proxy.addr), vec![]).await;
    assert!(until_listening(&b, true, Duration::from_secs(5)).await);
    let token = sign_token(&keys().0, &claims("user_cut"));
    let t = now() * 1000;
    let active = item_event(
        "subscriptionItem.active",
        "active",
        "csub_item_cut",
        "user_cut",
        t,
    );
    assert_eq!(a.deliver(&msg_id(), &active).await.status(), 200);
    assert_eq!(
        until_status(&b, &token, 200, Duration::from_secs(2)).await,
        200
    );

    // The network stalls: no error anywhere, the connections just stop answering. B's cached
    // entitlement must not outlive the bound on what it may have missed.
    proxy.mode.send(Mode::Stall).unwrap();
    tokio::time::sleep(Duration::from_millis(600)).await;
    let during_stall = tokio::time::timeout(
        Duration::from_secs(1),
        b.get_with_token("/api/premium-feature", &token),
    )
    .await;
    assert!(
        during_stall.as_ref().map_or(true, |r| r.status() != 200),
        "served from a cache that cannot hear about changes: {during_stall:?}"
    );

    proxy.mode.send(Mode::Cut).unwrap();
    for app in [&a, &b] {
        assert!(
            until_listening(app, false, Duration::from_secs(5)).await,
            "the lost listening connection is noticed"
        );
        let text = app.metrics().await;
        assert_eq!(gauge(&text, "plangate_database_up"), Some(0.0), "{text}");
        let r = app
            .deliver(
                &msg_id(),
                &item_event(
                    "subscriptionItem.active",
                    "active",
                    "csub_item_x",
                    "user_x",
                    t,
                ),
            )
            .await;
        assert_eq!(r.status(), 503, "a delivery is refused, so Svix retries it");
        let ready = app.client.get(app.url("/readyz")).send().await.unwrap();
        assert_eq!(ready.status(), 503);
        // Not answered from a cache that can no longer hear about changes.
        assert_eq!(
            app.get_with_token("/api/premium-feature", &token)
                .await
                .status(),
            503
        );
    }

    proxy.mode.send(Mode::Flow).unwrap();
    for app in [&a, &b] {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let ready = app.client.get(app.url("/readyz")).send().await.unwrap();
            if ready.status() == 200 {
                break;
            }
            assert!(Instant::now() < deadline, "/readyz recovers by itself");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(
            until_listening(app, true, Duration::from_secs(10)).await,
            "listening again without a restart"
        );
        assert_eq!(
            gauge(&app.metrics().await, "plangate_database_up"),
            Some(1.0)
        );
    }
    // The retried delivery is taken, and changes cross instances again.
    let ended = item_event(
        "subscriptionItem.ended",
        "ended",
        "csub_item_cut",
        "user_cut",
        t + 1000,
    );
    assert_eq!(a.deliver(&msg_id(), &ended).await.status(), 200);
    assert_eq!(
        until_status(&b, &token, 403, Duration::from_secs(2)).await,
        403
    );
}
