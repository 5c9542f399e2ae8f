//! Every webhook that got a 2xx survives the server being killed (SIGKILL) mid-burst.

use std::{
    sync::{
        atomic::{AtomicUsize, Ordering},
        Arc, Mutex,
    },
    time::Duration,
};

use serde_json::json;

use crate::helpers::*;

async fn start_server(db_url: &str, dir: &std::path::Path) -> (tokio::process::Child, String) {
    serve_process(db_url, dir, &[], true, &[]).await
}

fn event(i: usize) -> String {
    let mut v = fixture("subscriptionItem.active");
    v["data"]["id"] = json!(format!("csub_item_kill_{i}"));
    v["data"]["payer"]["user_id"] = json!(format!("user_kill_{i}"));
    v.to_string()
}

#[tokio::test]
async fn every_acknowledged_webhook_survives_a_sigkill_mid_burst() {
    let dir = TempDir::new("plangate-kill-");
    let db_url = test_database_url(&dir).await;
    let (mut child, base) = start_server(&db_url, &dir).await;

    let acked = Arc::new(Mutex::new(Vec::new()));
    let next = Arc::new(AtomicUsize::new(0));
    let total = 3_000;
    let mut workers = Vec::new();
    for _ in 0..16 {
        let (acked, next, base) = (acked.clone(), next.clone(), base.clone());
        workers.push(tokio::spawn(async move {
            let client = reqwest::Client::new();
            loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                if i >= total {
                    return;
                }
                let id = format!("msg_kill_{i}");
                let body = event(i);
                let ts = now();
                let mut request = client.post(format!("{base}/api/webhooks/clerk"));
                for (name, value) in svix_headers(SECRET_A, &id, ts, body.as_bytes()).unwrap() {
                    request = request.header(name, value);
                }
                let resp = request.body(body).send().await;
                match resp {
                    Ok(r) if r.status().is_success() => acked.lock().unwrap().push(id),
                    Ok(_) => {}
                    Err(_) => return, // the server is gone
                }
            }
        }));
    }
    // Kill once a good part of the burst has been acknowledged, while requests are in flight.
    for _ in 0..1_000 {
        if acked.lock().unwrap().len() >= 200 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    child.kill().await.unwrap();
    for w in workers {
        w.await.unwrap();
    }
    let acked = acked.lock().unwrap().clone();
    assert!(
        acked.len() >= 200,
        "the burst was acknowledged before the kill: {}",
        acked.len()
    );
    assert!(acked.len() < total, "the kill happened mid-burst");

    // Restart on the same database: it starts, and every acknowledged event is there.
    let (_child, base) = start_server(&db_url, &dir).await;
    assert_eq!(
        reqwest::get(format!("{base}/readyz"))
            .await
            .unwrap()
            .status(),
        200
    );
    let db = plangate::db::Db::connect(&db_url).await.unwrap();
    let mut missing = Vec::new();
    for id in &acked {
        let mut conn = db.pool.acquire().await.unwrap();
        if plangate::db::inbox::payload(&mut conn, id)
            .await
            .unwrap()
            .is_none()
        {
            missing.push(id.clone());
        }
    }
    assert!(
        missing.is_empty(),
        "{} acknowledged events lost: {:?}",
        missing.len(),
        &missing[..missing.len().min(5)]
    );
    let i: usize = acked[0].trim_start_matches("msg_kill_").parse().unwrap();
    let mut conn = db.pool.acquire().await.unwrap();
    let item = plangate::db::items::get(&mut conn, &format!("csub_item_kill_{i}"))
        .await
        .unwrap();
    assert!(item.is_some(), "the state change committed with the event");
    drop(conn);
}

/// A 2xx means the delivery's commit returned (on SQLite with `synchronous = full`, so its log
/// is on disk): the writer's after-commit step is held here, and the webhook stays unanswered
/// until the test lets it go.
#[tokio::test]
async fn no_webhook_is_acknowledged_before_its_commit_is_done() {
    let (entered_tx, entered_rx) = std::sync::mpsc::channel::<()>();
    let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
    let (entered_tx, release_rx) = (Mutex::new(entered_tx), Mutex::new(release_rx));
    let app = spawn_with(Options {
        after_commit: Some(Box::new(move || {
            let _ = entered_tx.lock().unwrap().send(());
            let _ = release_rx.lock().unwrap().recv();
        })),
        ..Default::default()
    })
    .await;
    let (id, body) = (msg_id(), event(0));
    let mut request = app
        .client
        .post(app.url("/api/webhooks/clerk"))
        .body(body.clone());
    for (name, value) in svix_headers(SECRET_A, &id, now(), body.as_bytes()).unwrap() {
        request = request.header(name, value);
    }
    let pending = tokio::spawn(request.send());
    tokio::task::spawn_blocking(move || entered_rx.recv_timeout(Duration::from_secs(30)))
        .await
        .unwrap()
        .expect("the writer committed the delivery");
    assert!(
        app.item("csub_item_kill_0").await.is_some(),
        "the hook runs after the commit"
    );
    // Time for an early answer to arrive, were there one.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        !pending.is_finished(),
        "answered before its commit was done"
    );
    release_tx.send(()).unwrap();
    let resp = pending.await.unwrap().unwrap();
    assert_eq!(resp.status(), 200);
}
