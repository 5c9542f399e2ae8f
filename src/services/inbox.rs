//! The inbox: a Clerk delivery verified over its raw bytes, parsed, redacted, and handed to
//! the webhook writer, which stores it once per `svix-id`, applies it in the same
//! transaction and answers only after a durable commit. The HTTP edge only maps the result.

use std::sync::atomic::{AtomicU64, Ordering};

use axum::http::HeaderMap;
use tracing::warn;

use crate::{
    db::{self, inbox::EventRow, now_ms, Db, DbError},
    webhooks::{
        events::{self, EventError},
        ingest::{Delivery, Outcome},
        redact,
        verify::{Rejection, Verifier},
        writer::Writer,
    },
};

pub struct Inbox {
    db: Db,
    verifier: Verifier,
    writer: Writer,
    /// Deliveries rejected before anything was stored.
    rejected: AtomicU64,
}

#[derive(Debug, thiserror::Error)]
pub enum InboxError {
    /// Not signed by Clerk (under any configured secret): nothing was stored.
    #[error("{}", .0.message())]
    Signature(Rejection),
    /// Signed, but not a Clerk event this app can read: nothing was stored.
    #[error(transparent)]
    Payload(#[from] EventError),
    /// The database could not store or apply it: not acknowledged, Svix retries.
    #[error(transparent)]
    Unavailable(std::sync::Arc<DbError>),
}

impl Inbox {
    pub fn new(db: Db, verifier: Verifier, writer: Writer) -> Inbox {
        Inbox {
            db,
            verifier,
            writer,
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

    /// Verifies, stores and applies one delivery; returns its svix-id and what became of it.
    pub async fn receive(
        &self,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Result<(String, Outcome), InboxError> {
        let svix_id = self.verifier.verify(headers, body).map_err(|rejection| {
            let n = self.rejected.fetch_add(1, Ordering::Relaxed) + 1;
            warn!(
                reason = rejection.message(),
                rejected_total = n,
                "webhook rejected"
            );
            InboxError::Signature(rejection)
        })?;
        let signed_at_ms = headers
            .get("svix-timestamp")
            .or_else(|| headers.get("webhook-timestamp"))
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<i64>().ok())
            .map_or_else(now_ms, |s| s * 1000);

        let mut event = events::parse(body)?;
        let changes = event.changes(signed_at_ms)?;
        let changes = changes.into_iter().map(redact::redact_change).collect();
        redact::redact_in_place(&mut event.event_type);
        // Redacted in place: nothing downstream (the stored payload, the mail) needs card data.
        event.raw = redact::redact(std::mem::take(&mut event.raw));
        let stored_payload = event.raw.to_string();
        let delivery = Delivery {
            svix_id: svix_id.clone(),
            signed_at_ms,
            subject_id: event.subject_id().map(|s| redact::redact_text(&s)),
            event,
            changes,
            stored_payload,
        };
        let (outcome, _mails) = self
            .writer
            .submit(delivery)
            .await
            .map_err(InboxError::Unavailable)?;
        Ok((svix_id, outcome))
    }
}
