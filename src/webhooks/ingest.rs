//! Applies one verified delivery: inbox row, state changes and queued mail in one transaction.

use sqlx::AnyConnection;
use tracing::{info, instrument};

use super::events::{Change, ClerkEvent};
use crate::{
    billing::OrderKey,
    db::{self, DbError},
    mail,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// At least one change was written.
    Applied,
    /// Every change was older than the stored state: recorded, nothing overwritten.
    Stale,
    /// Stored; nothing to change (unknown type, paid attempt, …).
    Recorded,
    /// This svix-id was processed before.
    Duplicate,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Applied => "applied",
            Outcome::Stale => "stale",
            Outcome::Recorded => "recorded",
            Outcome::Duplicate => "duplicate",
        }
    }
}

pub struct ApplyContext<'a> {
    /// Where the payer updates their card (Clerk's hosted account page, or the demo dashboard).
    pub manage_url: &'a str,
    /// Take row locks before reading state. PostgreSQL needs them (other instances write
    /// concurrently); SQLite does not (the transaction already holds the database write lock).
    pub lock_rows: bool,
}

/// One verified delivery, ready to apply.
pub struct Delivery {
    pub svix_id: String,
    pub signed_at_ms: i64,
    pub event: ClerkEvent,
    pub changes: Vec<Change>,
    /// The payload as it may be stored (redacted).
    pub stored_payload: String,
}

/// Applies one delivery inside the caller's transaction: inbox row, state changes, queued
/// mail. Returns the outcome and how many mails were queued.
#[instrument(skip_all, fields(svix_id = %d.svix_id, event_type = %d.event.event_type))]
pub async fn apply(
    conn: &mut AnyConnection,
    d: &Delivery,
    ctx: &ApplyContext<'_>,
) -> Result<(Outcome, usize), DbError> {
    let svix_id = d.svix_id.as_str();
    let event = &d.event;
    let subject = event.subject_id();
    let inserted = db::inbox::insert(
        conn,
        &db::inbox::NewEvent {
            svix_id,
            event_type: &event.event_type,
            event_at: event.event_at(d.signed_at_ms),
            subject_id: subject.as_deref(),
            payload: &d.stored_payload,
        },
    )
    .await?;
    if !inserted {
        db::inbox::count_duplicate(conn, svix_id).await?;
        info!("duplicate delivery");
        return Ok((Outcome::Duplicate, 0));
    }

    let (mut applied, mut stale, mut mails) = (0usize, 0usize, 0usize);
    for change in &d.changes {
        match change {
            Change::User {
                id,
                email,
                deleted,
                event_at,
            } => {
                let key = OrderKey::for_user(*event_at, *deleted, svix_id);
                if db::users::upsert_if_newer(
                    conn,
                    id,
                    email.as_deref(),
                    *deleted,
                    *event_at,
                    key.as_str(),
                )
                .await?
                {
                    applied += 1;
                } else {
                    stale += 1;
                }
            }
            Change::Item(item) => {
                if ctx.lock_rows {
                    db::items::lock(conn, &item.id).await?;
                }
                let previous = db::items::get(conn, &item.id).await?;
                let key = OrderKey::for_item(item.event_at, item.status, svix_id);
                if !db::items::upsert_if_newer(conn, item, &key).await? {
                    stale += 1;
                    continue;
                }
                applied += 1;
                if item.starts_past_due_episode(previous.as_ref()) {
                    let recipient = match item.payer.email.clone() {
                        Some(e) => Some(e),
                        None => match &item.payer.user_id {
                            Some(uid) => db::users::get(conn, uid).await?.and_then(|u| u.email),
                            None => None,
                        },
                    };
                    match recipient {
                        Some(to) => {
                            let m = mail::payment_failed(item, event, ctx.manage_url);
                            let id = format!("{svix_id}:payment_failed:{}", item.id);
                            if db::outbox::enqueue(conn, &id, &to, &m.subject, &m.body).await? {
                                mails += 1;
                            }
                        }
                        None => tracing::warn!(item = %item.id, "past due but no address to mail"),
                    }
                }
            }
        }
    }
    let outcome = match (d.changes.is_empty(), applied) {
        (true, _) => Outcome::Recorded,
        (false, 0) => Outcome::Stale,
        _ => Outcome::Applied,
    };
    db::inbox::set_outcome(conn, svix_id, outcome.as_str()).await?;
    info!(
        outcome = outcome.as_str(),
        applied, stale, mails, "webhook applied"
    );
    Ok((outcome, mails))
}
