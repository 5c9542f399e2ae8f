//! The inbox: a Clerk delivery (its signature verified by the webhook edge over the raw
//! bytes), parsed, redacted, and handed to the webhook writer, which stores it once per
//! `svix-id`, applies it in the same transaction and answers only after a durable commit.
//!
//! Three kinds of input take that one path: deliveries (`receive`), stored deliveries applied
//! again (`replay`) and corrections from Clerk's Backend API (`correct`, README, "Operations"), so
//! the ordering rule and the exactly-once side effects hold for all of them.

use std::{
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc,
    },
    time::Instant,
};

use tracing::warn;

use crate::{
    db::{self, inbox::EventRow, Db, DbError},
    metrics::Metrics,
    webhooks::{
        events::{self, EventError},
        ingest::{Delivery, Outcome},
        redact,
        verify::{Rejection, Signed},
        writer::Writer,
    },
};

pub struct Inbox {
    db: Db,
    writer: Writer,
    metrics: Arc<Metrics>,
    /// Deliveries rejected before anything was stored.
    rejected: AtomicU64,
}

/// What became of one delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Receipt {
    pub svix_id: String,
    pub outcome: Outcome,
    /// Why it could not be applied (outcome `failed`).
    pub reason: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum InboxError {
    /// Signed, but not a Clerk event at all (not a JSON object with a `type`): nothing stored.
    #[error(transparent)]
    Payload(#[from] EventError),
    /// The database could not store or apply it: not acknowledged, Svix retries.
    #[error(transparent)]
    Unavailable(Arc<DbError>),
    /// Replay: no delivery with this svix-id is stored.
    #[error("no delivery {0} is stored")]
    NotFound(String),
    /// Replay: retention removed the payload (INBOX_RETENTION_DAYS).
    #[error("the payload of {0} was removed by retention")]
    Purged(String),
}

impl From<DbError> for InboxError {
    fn from(e: DbError) -> Self {
        InboxError::Unavailable(Arc::new(e))
    }
}

impl Inbox {
    pub fn new(db: Db, writer: Writer, metrics: Arc<Metrics>) -> Inbox {
        Inbox {
            db,
            writer,
            metrics,
            rejected: AtomicU64::new(0),
        }
    }

    /// How many deliveries failed their signature check since start.
    pub fn rejected(&self) -> u64 {
        self.rejected.load(Ordering::Relaxed)
    }

    /// The newest deliveries about a user or an organization, newest first.
    pub async fn recent(&self, subject_id: &str, limit: i64) -> Result<Vec<EventRow>, DbError> {
        let mut conn = self.db.conn().await?;
        db::inbox::recent_for(&mut conn, &[subject_id], limit).await
    }

    /// The newest deliveries (only the dead letters with `failed_only`), newest first.
    pub async fn list(&self, failed_only: bool, limit: i64) -> Result<Vec<EventRow>, DbError> {
        let mut conn = self.db.conn().await?;
        db::inbox::list(&mut conn, failed_only, limit).await
    }

    /// Counts a delivery whose signature did not verify (nothing of it is stored).
    pub fn rejected_signature(&self, rejection: Rejection) {
        let n = self.rejected.fetch_add(1, Ordering::Relaxed) + 1;
        self.reject(rejection.code());
        warn!(
            reason = rejection.message(),
            rejected_total = n,
            "webhook rejected"
        );
    }

    /// Stores and applies one delivery whose signature the webhook edge verified.
    pub async fn receive(&self, signed: Signed, body: &[u8]) -> Result<Receipt, InboxError> {
        let Signed {
            svix_id,
            signed_at_ms,
        } = signed;
        let started = Instant::now();
        let delivery = self
            .prepare(svix_id, signed_at_ms, body, false)
            .inspect_err(|e| {
                if let InboxError::Payload(e) = e {
                    self.reject(e.code());
                }
            })?;
        let label = if events::is_handled(&delivery.event.event_type) {
            delivery.event.event_type.clone()
        } else {
            "other".to_string()
        };
        let receipt = self.submit(delivery).await?;
        self.metrics
            .webhook_apply_seconds
            .observe(started.elapsed().as_secs_f64());
        self.metrics
            .webhooks
            .with_label_values(&[label.as_str(), receipt.outcome.as_str()])
            .inc();
        Ok(receipt)
    }

    /// Applies a stored delivery again, through the same path as a delivery: the ordering rule
    /// decides, and side effects already taken are not taken twice.
    pub async fn replay(&self, svix_id: &str) -> Result<Receipt, InboxError> {
        let stored = {
            let mut conn = self.db.conn().await?;
            db::inbox::stored(&mut conn, svix_id).await?
        }
        .ok_or_else(|| InboxError::NotFound(svix_id.to_string()))?;
        let payload = stored
            .payload
            .ok_or_else(|| InboxError::Purged(svix_id.to_string()))?;
        let delivery = self.prepare(
            svix_id.to_string(),
            stored.signed_at,
            payload.as_bytes(),
            true,
        )?;
        self.submit(delivery).await
    }

    /// Stores and applies a correction from the Backend API, written as the Clerk event that
    /// would have carried it (its JSON `body`), under the delivery id `svix_id` (`reconcile_…`).
    pub async fn correct(
        &self,
        svix_id: String,
        body: &[u8],
        at_ms: i64,
    ) -> Result<Receipt, InboxError> {
        let delivery = self.prepare(svix_id, at_ms, body, false)?;
        self.submit(delivery).await
    }

    /// Removes the payloads of deliveries received before `cutoff_ms` (the rows stay, so a late
    /// redelivery is still a duplicate); returns how many.
    pub async fn purge_payloads(&self, cutoff_ms: i64, now_ms: i64) -> Result<u64, DbError> {
        let mut conn = self.db.conn().await?;
        db::inbox::purge_payloads(&mut conn, cutoff_ms, now_ms).await
    }

    /// Sets the inbox and outbox gauges from the database (every instance reports the shared
    /// truth) and renders every series.
    /// The metrics text. The database-backed gauges are read now; when the database cannot be
    /// read they keep their last values and `plangate_database_up` says 0 (an outage is when an
    /// operator needs the rest of the metrics most).
    pub async fn render_metrics(&self) -> String {
        let read = async {
            let mut conn = self.db.conn().await?;
            let failed = db::inbox::count_failed(&mut conn).await?;
            drop(conn);
            let pending = db::outbox::count_by_status(&self.db.pool, "queued").await?;
            let undeliverable = db::outbox::count_by_status(&self.db.pool, "failed").await?;
            Ok::<_, DbError>((failed, pending, undeliverable))
        };
        match read.await {
            Ok((failed, pending, undeliverable)) => {
                self.metrics.inbox_failed.set(failed);
                self.metrics.outbox_pending.set(pending);
                self.metrics.outbox_failed.set(undeliverable);
                self.metrics.database_up.set(1);
            }
            Err(e) => {
                tracing::warn!(error = %e, "metrics: the database cannot be read");
                self.metrics.database_up.set(0);
            }
        }
        self.metrics.render()
    }

    fn reject(&self, reason: &str) {
        self.metrics
            .webhook_rejections
            .with_label_values(&[reason])
            .inc();
    }

    /// Parses and redacts; a handled type whose data cannot be read becomes a dead letter
    /// (stored `failed` with its reason, changing nothing).
    fn prepare(
        &self,
        svix_id: String,
        signed_at_ms: i64,
        body: &[u8],
        replay: bool,
    ) -> Result<Delivery, InboxError> {
        let mut event = events::parse(body)?;
        let (changes, failure) = match event.changes(signed_at_ms) {
            Ok(changes) => (
                changes.into_iter().map(redact::redact_change).collect(),
                None,
            ),
            Err(e) => {
                warn!(svix_id = %svix_id, event_type = %redact::redact_text(&event.event_type), reason = %e, "delivery cannot be applied; stored as failed");
                (Vec::new(), Some(redact::redact_text(&e.to_string())))
            }
        };
        redact::redact_in_place(&mut event.event_type);
        // Redacted in place: nothing downstream (the stored payload, the mail) needs card data.
        event.raw = redact::redact(std::mem::take(&mut event.raw));
        let stored_payload = event.raw.to_string();
        Ok(Delivery {
            svix_id,
            signed_at_ms,
            subject_id: event.subject_id().map(|s| redact::redact_text(&s)),
            event,
            changes,
            stored_payload,
            failure,
            replay,
        })
    }

    async fn submit(&self, delivery: Delivery) -> Result<Receipt, InboxError> {
        let svix_id = delivery.svix_id.clone();
        let reason = delivery.failure.clone();
        let (outcome, _mails) = self
            .writer
            .submit(delivery)
            .await
            .map_err(InboxError::Unavailable)?;
        Ok(Receipt {
            svix_id,
            reason: (outcome == Outcome::Failed).then_some(reason).flatten(),
            outcome,
        })
    }
}
