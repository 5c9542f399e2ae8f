//! Applies one verified delivery: inbox row, state changes and queued mail in one transaction.

use tracing::{info, instrument};

use super::events::{Change, ClerkEvent};
use crate::{
    billing::OrderKey,
    db::{self, Db, DbError},
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

pub struct MailContext<'a> {
    /// Where the payer updates their card (Clerk's hosted account page, or the demo dashboard).
    pub manage_url: &'a str,
}

#[instrument(skip_all, fields(svix_id = svix_id, event_type = %event.event_type))]
pub async fn ingest(
    db: &Db,
    svix_id: &str,
    signed_at_ms: i64,
    event: &ClerkEvent,
    changes: &[Change],
    stored_payload: &str,
    mail_ctx: &MailContext<'_>,
) -> Result<(Outcome, usize), DbError> {
    let mut tx = db.begin().await?;
    let subject = event.subject_id();
    let inserted = db::inbox::insert(
        &mut tx,
        &db::inbox::NewEvent {
            svix_id,
            event_type: &event.event_type,
            event_at: event.event_at(signed_at_ms),
            subject_id: subject.as_deref(),
            payload: stored_payload,
        },
    )
    .await?;
    if !inserted {
        tx.rollback().await?;
        info!("duplicate delivery");
        if let Err(e) = db::inbox::count_duplicate(&db.pool, svix_id).await {
            tracing::warn!(error = %e, "could not count a duplicate delivery");
        }
        return Ok((Outcome::Duplicate, 0));
    }

    let (mut applied, mut stale, mut mails) = (0usize, 0usize, 0usize);
    for change in changes {
        match change {
            Change::User {
                id,
                email,
                deleted,
                event_at,
            } => {
                let key = OrderKey::for_user(*event_at, *deleted, svix_id);
                if db::users::upsert_if_newer(
                    &mut tx,
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
                db::items::lock(&mut tx, &item.id).await?;
                let previous = db::items::get(&mut tx, &item.id).await?;
                let key = OrderKey::for_item(item.event_at, item.status, svix_id);
                if !db::items::upsert_if_newer(&mut tx, item, &key).await? {
                    stale += 1;
                    continue;
                }
                applied += 1;
                if item.starts_past_due_episode(previous.as_ref()) {
                    let recipient = match item.payer.email.clone() {
                        Some(e) => Some(e),
                        None => match &item.payer.user_id {
                            Some(uid) => db::users::get(&mut tx, uid).await?.and_then(|u| u.email),
                            None => None,
                        },
                    };
                    match recipient {
                        Some(to) => {
                            let m = mail::payment_failed(item, event, mail_ctx.manage_url);
                            let id = format!("{svix_id}:payment_failed:{}", item.id);
                            if db::outbox::enqueue(&mut tx, &id, &to, &m.subject, &m.body).await? {
                                mails += 1;
                            }
                        }
                        None => tracing::warn!(item = %item.id, "past due but no address to mail"),
                    }
                }
            }
        }
    }
    let outcome = match (changes.is_empty(), applied) {
        (true, _) => Outcome::Recorded,
        (false, 0) => Outcome::Stale,
        _ => Outcome::Applied,
    };
    db::inbox::set_outcome(&mut tx, svix_id, outcome.as_str()).await?;
    tx.commit().await?;
    info!(
        outcome = outcome.as_str(),
        applied, stale, mails, "webhook applied"
    );
    Ok((outcome, mails))
}
