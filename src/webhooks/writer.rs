//! Group commit for the inbox. Every delivery is acknowledged only after a durable commit, and
//! a commit costs an fsync (SQLite WAL with synchronous=FULL; PostgreSQL's WAL flush). One
//! writer task takes whatever deliveries are waiting, applies each under its own savepoint
//! (a failing one is rolled back alone), commits once, and only then answers every waiter.
//! Under load many deliveries share one fsync; alone, a delivery commits at once.

use std::sync::Arc;

use sqlx::Executor;
use tokio::sync::{mpsc, oneshot, Notify};
use tracing::warn;

use super::ingest::{apply, ApplyContext, Delivery, Outcome};
use crate::{
    access::PayerCache,
    db::{Db, DbError},
};

/// The most deliveries one transaction takes.
const MAX_BATCH: usize = 256;

type Reply = oneshot::Sender<Result<(Outcome, usize), Arc<DbError>>>;

#[derive(Clone)]
pub struct Writer {
    tx: mpsc::Sender<(Delivery, Reply)>,
}

impl Writer {
    pub fn start(
        db: Db,
        manage_url: String,
        mail_notify: Arc<Notify>,
        payers: Arc<PayerCache>,
    ) -> Writer {
        let (tx, rx) = mpsc::channel(4 * MAX_BATCH);
        tokio::spawn(run(db, manage_url, mail_notify, payers, rx));
        Writer { tx }
    }

    /// Applies the delivery; resolves after the transaction holding it committed.
    pub async fn submit(&self, d: Delivery) -> Result<(Outcome, usize), Arc<DbError>> {
        let (reply, wait) = oneshot::channel();
        let closed = || Arc::new(DbError::Sqlx(sqlx::Error::PoolClosed));
        self.tx.send((d, reply)).await.map_err(|_| closed())?;
        wait.await.map_err(|_| closed())?
    }
}

async fn run(
    db: Db,
    manage_url: String,
    mail_notify: Arc<Notify>,
    payers: Arc<PayerCache>,
    mut rx: mpsc::Receiver<(Delivery, Reply)>,
) {
    let ctx = ApplyContext {
        manage_url: &manage_url,
        lock_rows: db.engine == crate::db::Engine::Postgres,
    };
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while rx.recv_many(&mut batch, MAX_BATCH).await > 0 {
        let results = commit_batch(&db, &batch, &ctx).await;
        // Before anyone hears "committed", so no reader can see the old state afterwards.
        if results
            .iter()
            .any(|r| matches!(r, Ok((Outcome::Applied, _))))
        {
            payers.clear();
        }
        let mails: usize = results
            .iter()
            .filter_map(|r| r.as_ref().ok())
            .map(|(_, m)| m)
            .sum();
        for ((_, reply), result) in batch.drain(..).zip(results) {
            let _ = reply.send(result);
        }
        if mails > 0 {
            mail_notify.notify_one();
        }
    }
}

async fn commit_batch(
    db: &Db,
    batch: &[(Delivery, Reply)],
    ctx: &ApplyContext<'_>,
) -> Vec<Result<(Outcome, usize), Arc<DbError>>> {
    let all_failed = |e: DbError| {
        let e = Arc::new(e);
        batch.iter().map(|_| Err(e.clone())).collect()
    };
    let mut tx = match db.begin().await {
        Ok(tx) => tx,
        Err(e) => return all_failed(e),
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
    match tx.commit().await {
        Ok(()) => results,
        Err(e) => all_failed(e.into()),
    }
}
