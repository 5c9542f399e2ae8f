//! Group commit for the inbox. Every delivery is acknowledged only after a durable commit, and
//! a commit costs an fsync (SQLite WAL with `synchronous = full`; PostgreSQL's WAL flush). One
//! writer (a thread of its own) takes whatever deliveries are waiting, applies them in one
//! transaction with multi-row statements, commits once, runs the commit hook, and only then
//! answers every waiter. Under load many deliveries share one fsync; alone, a delivery commits
//! at once. A failing batch is retried delivery by delivery under savepoints, so a bad one is
//! rolled back alone.

use std::{
    collections::{HashMap, HashSet},
    sync::Arc,
};

use sqlx::{AnyConnection, Connection, Executor};
use tokio::sync::{mpsc, oneshot, Notify};
use tracing::{info, warn};

use super::{
    events::Change,
    ingest::{apply, apply_changes, ApplyContext, Delivery, Outcome},
};
use crate::db::{self, Db, DbError};

/// Called after every commit, before any of its deliveries is acknowledged, with whether the
/// commit changed subscription state (the gate then empties its payer cache).
pub type OnCommit = Box<dyn Fn(bool) + Send + Sync>;

/// The most deliveries one transaction takes.
const MAX_BATCH: usize = 256;

/// What a delivery's waiter hears: its outcome and how many mails it queued, or the error.
type Applied = Result<(Outcome, usize), Arc<DbError>>;
type Reply = oneshot::Sender<Applied>;

#[derive(Clone)]
pub struct Writer {
    tx: mpsc::Sender<(Delivery, Reply)>,
}

impl Writer {
    pub fn start(
        db: Db,
        manage_url: String,
        catalog: Arc<crate::billing::Catalog>,
        mail_notify: Arc<Notify>,
        on_commit: OnCommit,
    ) -> Writer {
        let (tx, rx) = mpsc::channel(4 * MAX_BATCH);
        // A thread and a connection of its own: on the shared runtime every statement's reply
        // would wait behind the request handlers in the run queue, under load many times what
        // the statements themselves take.
        std::thread::Builder::new()
            .name("webhook-writer".into())
            .spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("webhook writer runtime");
                rt.block_on(run(db, manage_url, catalog, mail_notify, on_commit, rx));
            })
            .expect("webhook writer thread");
        Writer { tx }
    }

    /// Applies the delivery; resolves once the transaction holding it is committed and on disk.
    pub async fn submit(&self, d: Delivery) -> Applied {
        let (reply, wait) = oneshot::channel();
        let closed = || Arc::new(DbError::Sqlx(sqlx::Error::PoolClosed));
        self.tx.send((d, reply)).await.map_err(|_| closed())?;
        wait.await.map_err(|_| closed())?
    }
}

async fn run(
    db: Db,
    manage_url: String,
    catalog: Arc<crate::billing::Catalog>,
    mail_notify: Arc<Notify>,
    on_commit: OnCommit,
    mut rx: mpsc::Receiver<(Delivery, Reply)>,
) {
    let postgres = db.engine == crate::db::Engine::Postgres;
    let ctx = ApplyContext {
        manage_url: &manage_url,
        catalog: &catalog,
        lock_rows: postgres,
        announce: postgres,
    };
    let mut batch = Vec::with_capacity(MAX_BATCH);
    let mut conn = None;
    while rx.recv_many(&mut batch, MAX_BATCH).await > 0 {
        let results = match &mut conn {
            Some(c) => commit_batch(c, &batch, &ctx).await,
            None => match db.connect_writer().await {
                Ok(c) => commit_batch(conn.insert(c), &batch, &ctx).await,
                Err(e) => {
                    let e = Arc::new(e);
                    batch.iter().map(|_| Err(e.clone())).collect()
                }
            },
        };
        if results.iter().any(Result::is_err) {
            // Start the next batch on a fresh connection, in case this one is broken.
            conn = None;
        }
        // Before anyone hears "committed", so no reader can see the old state afterwards.
        let changed = results
            .iter()
            .any(|r| matches!(r, Ok((Outcome::Applied, _))));
        if results.iter().any(Result::is_ok) {
            on_commit(changed);
        }
        let mut mails = 0;
        for ((_, reply), result) in batch.drain(..).zip(results) {
            mails += result.as_ref().map_or(0, |(_, m)| *m);
            let _ = reply.send(result);
        }
        if mails > 0 {
            mail_notify.notify_one();
        }
    }
}

type Results = Vec<Applied>;

/// One transaction for the whole batch, a few multi-row statements for the inbox. When any
/// statement fails the batch is rolled back and retried delivery by delivery, so one bad
/// delivery (or a PostgreSQL deadlock with another instance) fails only itself.
async fn commit_batch(
    conn: &mut AnyConnection,
    batch: &[(Delivery, Reply)],
    ctx: &ApplyContext<'_>,
) -> Results {
    // Replays (an operator's command, rare) update their stored rows rather than insert them.
    if batch.iter().any(|(d, _)| d.replay) {
        return commit_one_by_one(conn, batch, ctx).await;
    }
    match commit_together(conn, batch, ctx).await {
        Ok(results) => results,
        Err(e) => {
            warn!(error = %e, deliveries = batch.len(), "batch rolled back; applying one by one");
            commit_one_by_one(conn, batch, ctx).await
        }
    }
}

async fn commit_together(
    conn: &mut AnyConnection,
    batch: &[(Delivery, Reply)],
    ctx: &ApplyContext<'_>,
) -> Result<Results, DbError> {
    let mut tx = conn.begin().await?;
    // The first copy of a svix-id in the batch is a candidate; later copies are duplicates.
    // Rows go in with the outcome expected; only the few that turn out stale are updated.
    let mut seen = HashSet::with_capacity(batch.len());
    let first: Vec<bool> = batch
        .iter()
        .map(|(d, _)| seen.insert(d.svix_id.as_str()))
        .collect();
    let candidates: Vec<_> = batch
        .iter()
        .zip(&first)
        .filter(|(_, first)| **first)
        .map(|((d, _), _)| d.new_event(d.expected_outcome().as_str()))
        .collect();
    let inserted: HashSet<String> = db::inbox::insert_many(&mut tx, &candidates)
        .await?
        .into_iter()
        .collect();
    let fresh: Vec<bool> = batch
        .iter()
        .zip(first)
        .map(|((d, _), first)| first && inserted.contains(&d.svix_id))
        .collect();
    let to_apply: Vec<&Delivery> = batch
        .iter()
        .zip(&fresh)
        .filter(|(_, f)| **f)
        .map(|((d, _), _)| d)
        .collect();
    let mut applied = apply_changes(&mut tx, &to_apply, ctx).await?.into_iter();
    let mut results = Vec::with_capacity(batch.len());
    let mut by_outcome: HashMap<&'static str, Vec<&str>> = HashMap::new();
    for ((d, _), fresh) in batch.iter().zip(fresh) {
        let id = d.svix_id.as_str();
        if fresh {
            let (outcome, mails) = applied.next().expect("one result per applied delivery");
            if outcome != d.expected_outcome() {
                by_outcome.entry(outcome.as_str()).or_default().push(id);
            }
            results.push(Ok((outcome, mails)));
        } else {
            db::inbox::count_duplicate(&mut tx, id).await?;
            info!(svix_id = id, "duplicate delivery");
            results.push(Ok((Outcome::Duplicate, 0)));
        }
    }
    for (outcome, ids) in by_outcome {
        db::inbox::set_outcome_many(&mut tx, &ids, outcome).await?;
    }
    announce(&mut tx, batch, &results, ctx).await?;
    tx.commit().await?;
    Ok(results)
}

/// The slow path: each delivery under its own savepoint, one commit.
async fn commit_one_by_one(
    conn: &mut AnyConnection,
    batch: &[(Delivery, Reply)],
    ctx: &ApplyContext<'_>,
) -> Results {
    let all_failed = |e: DbError| {
        let e = Arc::new(e);
        batch.iter().map(|_| Err(e.clone())).collect()
    };
    let mut tx = match conn.begin().await {
        Ok(tx) => tx,
        Err(e) => return all_failed(e.into()),
    };
    let mut results = Vec::with_capacity(batch.len());
    for (delivery, _) in batch {
        if let Err(e) = tx.execute("savepoint delivery").await {
            return all_failed(e.into());
        }
        match apply(&mut tx, delivery, ctx).await {
            Ok(r) => {
                if let Err(e) = tx.execute("release savepoint delivery").await {
                    return all_failed(e.into());
                }
                results.push(Ok(r));
            }
            Err(e) => {
                warn!(svix_id = %delivery.svix_id, error = %e, "delivery rolled back");
                if let Err(e) = tx.execute("rollback to savepoint delivery").await {
                    return all_failed(e.into());
                }
                let _ = tx.execute("release savepoint delivery").await;
                results.push(Err(Arc::new(e)));
            }
        }
    }
    if let Err(e) = announce(&mut tx, batch, &results, ctx).await {
        return all_failed(e);
    }
    match tx.commit().await {
        Ok(()) => results,
        Err(e) => all_failed(e.into()),
    }
}

/// Tells the other instances (PostgreSQL's `NOTIFY`, sent when the transaction commits) which
/// payers' state the applied deliveries changed, so that they drop those from their caches.
async fn announce(
    conn: &mut AnyConnection,
    batch: &[(Delivery, Reply)],
    results: &Results,
    ctx: &ApplyContext<'_>,
) -> Result<(), DbError> {
    if !ctx.announce {
        return Ok(());
    }
    let payers = batch
        .iter()
        .zip(results)
        .filter(|(_, r)| matches!(r, Ok((Outcome::Applied, _))))
        .flat_map(|((d, _), _)| &d.changes)
        .filter_map(|c| match c {
            Change::Item(item) => Some(item.payer.payer()),
            Change::User { .. } | Change::Payment(_) | Change::TrialEnding(..) => None,
        });
    let payload = db::notify::encode(payers);
    if payload.is_empty() {
        return Ok(());
    }
    db::notify::announce(conn, &payload).await
}
