//! Group commit for the inbox. Every delivery is acknowledged only after a durable commit, and
//! a commit costs an fsync (SQLite WAL with synchronous=FULL; PostgreSQL's WAL flush). One
//! writer (a thread of its own) takes whatever deliveries are waiting, applies them in one
//! transaction with multi-row statements, commits once, and only then answers every waiter.
//! Under load many deliveries share one fsync; alone, a delivery commits at once. A failing
//! batch is retried delivery by delivery under savepoints, so a bad one is rolled back alone.
//!
//! On a SQLite file the fsync is taken out of the commit and pipelined: the writer commits with
//! `synchronous = normal` (the frames are written to the WAL file, not yet synced) and hands the
//! batch to a syncer thread, which `fdatasync`s the WAL and only then answers the batch's
//! waiters. While one fsync runs the writer commits the next batch, and one fsync covers every
//! batch committed before it started. A 2xx still means "on disk" (the guarantee of
//! `synchronous = full`); only the disk's wait is no longer in the writer's path. PostgreSQL's
//! commit is durable when it returns, so its waiters are answered at once.

use std::{
    collections::{HashMap, HashSet},
    sync::Arc,
};

use sqlx::{AnyConnection, Connection, Executor};
use tokio::sync::{mpsc, oneshot, Notify};
use tracing::{error, info, warn};

use super::ingest::{apply, apply_changes, ApplyContext, Delivery, Outcome};
use crate::db::{self, Db, DbError};

/// Called after every commit that changed subscription state, before any of its deliveries
/// is acknowledged (the gate empties its payer cache).
pub type OnCommit = Box<dyn Fn() + Send + Sync>;

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
        mail_notify: Arc<Notify>,
        on_commit: OnCommit,
    ) -> Writer {
        let (tx, rx) = mpsc::channel(4 * MAX_BATCH);
        let answer = match db.wal_file() {
            Some(mut wal) => {
                let (committed, to_sync) = std::sync::mpsc::channel();
                let notify = mail_notify.clone();
                std::thread::Builder::new()
                    .name("webhook-wal-sync".into())
                    .spawn(move || sync_loop(to_sync, || wal.sync(), &notify))
                    .expect("webhook WAL sync thread");
                Answer::AfterSync(committed)
            }
            None => Answer::Now(mail_notify),
        };
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
                rt.block_on(run(db, manage_url, answer, on_commit, rx));
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

/// A committed batch: each waiter with its result, and how many mails it queued.
struct Committed {
    replies: Vec<(Reply, Applied)>,
    mails: usize,
}

impl Committed {
    fn answer(self, mail_notify: &Notify) {
        for (reply, result) in self.replies {
            let _ = reply.send(result);
        }
        if self.mails > 0 {
            mail_notify.notify_one();
        }
    }

    /// Answers every waiter with `e`, whatever its own result was: nothing is acknowledged
    /// that is not known to be on disk.
    fn fail(self, e: &Arc<DbError>) {
        for (reply, _) in self.replies {
            let _ = reply.send(Err(e.clone()));
        }
    }
}

/// How committed batches are answered: at once (the commit was durable), or by the syncer
/// after it synced the WAL.
enum Answer {
    Now(Arc<Notify>),
    AfterSync(std::sync::mpsc::Sender<Committed>),
}

/// The syncer: takes every batch committed so far, syncs once, answers them all. A failed sync
/// answers the batch's deliveries with an error (Svix retries them; a retry of an event that
/// did reach the disk is then acknowledged as a duplicate).
fn sync_loop(
    committed: std::sync::mpsc::Receiver<Committed>,
    mut sync: impl FnMut() -> std::io::Result<()>,
    mail_notify: &Notify,
) {
    while let Ok(first) = committed.recv() {
        let mut batches = vec![first];
        batches.extend(committed.try_iter());
        match sync() {
            Ok(()) => batches.into_iter().for_each(|b| b.answer(mail_notify)),
            Err(e) => {
                error!(error = %e, "syncing the write-ahead log failed; deliveries not acknowledged");
                let e = Arc::new(DbError::Sync(e));
                batches.into_iter().for_each(|b| b.fail(&e));
            }
        }
    }
}

async fn run(
    db: Db,
    manage_url: String,
    answer: Answer,
    on_commit: OnCommit,
    mut rx: mpsc::Receiver<(Delivery, Reply)>,
) {
    let ctx = ApplyContext {
        manage_url: &manage_url,
        lock_rows: db.engine == crate::db::Engine::Postgres,
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
        if results
            .iter()
            .any(|r| matches!(r, Ok((Outcome::Applied, _))))
        {
            on_commit();
        }
        let mails: usize = results
            .iter()
            .filter_map(|r| r.as_ref().ok())
            .map(|(_, m)| m)
            .sum();
        let replies = batch.drain(..).map(|(_, reply)| reply).zip(results);
        let done = Committed {
            replies: replies.collect(),
            mails,
        };
        match &answer {
            Answer::Now(mail_notify) => done.answer(mail_notify),
            Answer::AfterSync(syncer) => {
                if let Err(unsent) = syncer.send(done) {
                    // The syncer is gone (it never exits on its own): nothing can be made durable.
                    unsent
                        .0
                        .fail(&Arc::new(DbError::Sqlx(sqlx::Error::PoolClosed)));
                }
            }
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
    match tx.commit().await {
        Ok(()) => results,
        Err(e) => all_failed(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc;

    use tokio::sync::{oneshot, Notify};

    use super::{sync_loop, Committed, Outcome};

    #[test]
    fn waiters_hear_committed_only_after_the_wal_sync() {
        let (reply, mut wait) = oneshot::channel();
        let (tx, rx) = mpsc::channel();
        let batch = Committed {
            replies: vec![(reply, Ok((Outcome::Applied, 0)))],
            mails: 0,
        };
        tx.send(batch).unwrap();
        drop(tx);
        let mut answered_before_sync = None;
        let sync = || {
            answered_before_sync = Some(wait.try_recv().is_ok());
            Ok(())
        };
        sync_loop(rx, sync, &Notify::new());
        assert_eq!(answered_before_sync, Some(false));
        let answer = wait.try_recv().expect("answered after the sync");
        assert!(matches!(answer, Ok((Outcome::Applied, 0))));
    }

    #[test]
    fn one_failed_sync_fails_every_batch_it_covered() {
        let (tx, rx) = mpsc::channel();
        let mut waits = Vec::new();
        for _ in 0..2 {
            let (reply, wait) = oneshot::channel();
            let batch = Committed {
                replies: vec![(reply, Ok((Outcome::Applied, 1)))],
                mails: 1,
            };
            tx.send(batch).unwrap();
            waits.push(wait);
        }
        drop(tx);
        let mut syncs = 0;
        let sync = || {
            syncs += 1;
            Err(std::io::Error::other("device gone"))
        };
        sync_loop(rx, sync, &Notify::new());
        assert_eq!(syncs, 1, "batches waiting together share one sync");
        for mut wait in waits {
            let answer = wait.try_recv().expect("answered");
            assert!(answer.is_err(), "acknowledged without a durable sync");
        }
    }
}
