//! Applies one verified delivery: inbox row, state changes and queued mail in one transaction.

use std::collections::HashMap;

use sqlx::AnyConnection;
use tracing::{info, instrument};

use super::events::{Change, ClerkEvent, Interval};
use crate::{
    billing::{ItemState, OrderKey, Status},
    db::{self, now_ms, DbError},
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
    /// Signed, but a known type whose shape cannot be applied: stored as a dead letter with its
    /// reason (answered 422; a redelivery or a replay tries again).
    Failed,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Applied => "applied",
            Outcome::Stale => "stale",
            Outcome::Recorded => "recorded",
            Outcome::Duplicate => "duplicate",
            Outcome::Failed => "failed",
        }
    }

    pub const ALL: [Outcome; 5] = [
        Outcome::Applied,
        Outcome::Stale,
        Outcome::Recorded,
        Outcome::Duplicate,
        Outcome::Failed,
    ];
}

pub struct ApplyContext<'a> {
    /// Where the payer updates their card (Clerk's hosted account page, or the demo dashboard).
    pub manage_url: &'a str,
    /// The plans (names and prices for the mail).
    pub catalog: &'a crate::billing::Catalog,
    /// Take row locks before reading state. PostgreSQL needs them (other instances write
    /// concurrently); SQLite does not (the transaction already holds the database write lock).
    pub lock_rows: bool,
    /// Announce the payers a commit changed to the other instances (PostgreSQL `NOTIFY`).
    pub announce: bool,
}

/// One verified delivery, ready to apply.
pub struct Delivery {
    pub svix_id: String,
    pub signed_at_ms: i64,
    pub event: ClerkEvent,
    pub changes: Vec<Change>,
    /// The user or organization the event is about, for the events page.
    pub subject_id: Option<String>,
    /// The payload as it may be stored (redacted).
    pub stored_payload: String,
    /// Why its changes could not be read (it is then stored as `failed`, changing nothing).
    pub failure: Option<String>,
    /// Applied again from its stored row (`plangate inbox replay`), not a new delivery: the row
    /// is not inserted, only its outcome updated.
    pub replay: bool,
}

impl Delivery {
    /// The outcome unless every change turns out stale.
    pub fn expected_outcome(&self) -> Outcome {
        if self.failure.is_some() {
            Outcome::Failed
        } else if self.changes.is_empty() {
            Outcome::Recorded
        } else {
            Outcome::Applied
        }
    }
}

/// Applies one delivery inside the caller's transaction: inbox row, state changes, queued
/// mail. Returns the outcome and how many mails were queued.
#[instrument(skip_all, fields(svix_id = %d.svix_id, event_type = %d.event.event_type))]
pub async fn apply(
    conn: &mut AnyConnection,
    d: &Delivery,
    ctx: &ApplyContext<'_>,
) -> Result<(Outcome, usize), DbError> {
    if !d.replay && !db::inbox::insert(conn, &d.new_event("received")).await? {
        db::inbox::count_duplicate(conn, &d.svix_id).await?;
        info!("duplicate delivery");
        return Ok((Outcome::Duplicate, 0));
    }
    let (outcome, mails) = apply_changes(conn, &[d], ctx).await?[0];
    db::inbox::set_outcome(conn, &d.svix_id, outcome.as_str(), d.failure.as_deref()).await?;
    Ok((outcome, mails))
}

impl Delivery {
    pub fn new_event<'a>(&'a self, outcome: &'a str) -> db::inbox::NewEvent<'a> {
        db::inbox::NewEvent {
            svix_id: &self.svix_id,
            event_type: &self.event.event_type,
            event_at: self.event.event_at(self.signed_at_ms),
            subject_id: self.subject_id.as_deref(),
            payload: &self.stored_payload,
            outcome,
            reason: self.failure.as_deref(),
            signed_at: self.signed_at_ms,
        }
    }
}

/// Applies the state changes of deliveries whose inbox rows the caller has just inserted, in
/// the caller's transaction; returns each delivery's outcome and how many mails it queued.
///
/// Item changes that cannot start a past-due episode go to the database in multi-row upserts
/// (an item that appears twice goes in a later statement); user changes and past-due items go
/// one by one after them. The deliveries of one batch arrived concurrently, so any serial
/// order of them is a valid one, and the order keys make the end state the same in all.
pub async fn apply_changes(
    conn: &mut AnyConnection,
    ds: &[&Delivery],
    ctx: &ApplyContext<'_>,
) -> Result<Vec<(Outcome, usize)>, DbError> {
    #[derive(Default, Clone, Copy)]
    struct Tally {
        applied: usize,
        stale: usize,
        mails: usize,
    }
    let mut tally = vec![Tally::default(); ds.len()];
    let mut rounds: Vec<Vec<(usize, &ItemState, OrderKey)>> = Vec::new();
    let mut seen: HashMap<&str, usize> = HashMap::new();
    let mut one_by_one = Vec::new();
    for (i, d) in ds.iter().enumerate() {
        for change in &d.changes {
            match change {
                Change::Item(item) if item.status != Status::PastDue => {
                    let round = seen.entry(item.id.as_str()).or_insert(0);
                    if rounds.len() <= *round {
                        rounds.push(Vec::new());
                    }
                    let key = OrderKey::for_item(item.event_at, item.status, &d.svix_id);
                    rounds[*round].push((i, item, key));
                    *round += 1;
                }
                _ => one_by_one.push((i, change)),
            }
        }
    }
    for round in &rounds {
        let rows: Vec<_> = round.iter().map(|(_, item, key)| (*item, key)).collect();
        let written = db::items::upsert_many_if_newer(conn, &rows).await?;
        for (i, item, _) in round {
            if written.contains(&item.id) {
                tally[*i].applied += 1;
            } else {
                tally[*i].stale += 1;
            }
        }
    }
    for (i, change) in one_by_one {
        let (applied, mails) = apply_one(conn, ds[i], change, ctx).await?;
        let t = &mut tally[i];
        if applied {
            t.applied += 1;
        } else {
            t.stale += 1;
        }
        t.mails += mails;
    }
    Ok(ds
        .iter()
        .zip(tally)
        .map(|(d, t)| {
            let outcome = match (d.changes.is_empty(), t.applied) {
                _ if d.failure.is_some() => Outcome::Failed,
                (true, _) => Outcome::Recorded,
                (false, 0) => Outcome::Stale,
                _ => Outcome::Applied,
            };
            info!(
                svix_id = %d.svix_id,
                event_type = %d.event.event_type,
                outcome = outcome.as_str(),
                applied = t.applied,
                stale = t.stale,
                mails = t.mails,
                "webhook applied"
            );
            (outcome, t.mails)
        })
        .collect())
}

/// Applies one change; returns whether it was written and how many mails it queued.
async fn apply_one(
    conn: &mut AnyConnection,
    d: &Delivery,
    change: &Change,
    ctx: &ApplyContext<'_>,
) -> Result<(bool, usize), DbError> {
    let svix_id = d.svix_id.as_str();
    match change {
        Change::User {
            id,
            email,
            deleted,
            event_at,
        } => {
            let key = OrderKey::for_user(*event_at, *deleted, svix_id);
            let written = db::users::upsert_if_newer(
                conn,
                id,
                email.as_deref(),
                *deleted,
                *event_at,
                key.as_str(),
            )
            .await?;
            Ok((written, 0))
        }
        Change::Payment(p) => {
            let key = p.order_key(svix_id);
            Ok((
                db::payments::upsert_if_newer(conn, p, key.as_str()).await?,
                0,
            ))
        }
        Change::TrialEnding(item, interval) => queue_trial_ending(conn, item, *interval, ctx)
            .await
            .map(|mails| (true, mails)),
        Change::Item(item) => {
            // Whether a payment failure starts a new past-due episode depends on the stored
            // state, read under the row lock on PostgreSQL so that two instances cannot both
            // see the old state and both mail.
            if ctx.lock_rows {
                db::items::lock(conn, &item.id).await?;
            }
            let previous = db::items::get(conn, &item.id).await?;
            let key = OrderKey::for_item(item.event_at, item.status, svix_id);
            if !db::items::upsert_if_newer(conn, item, &key).await? {
                return Ok((false, 0));
            }
            let mails = if item.starts_past_due_episode(previous.as_ref()) {
                queue_payment_failed(conn, d, item, ctx).await?
            } else {
                0
            };
            Ok((true, mails))
        }
    }
}

/// The trial reminder, once per item and trial end (its outbox id), whatever the redeliveries
/// or duplicate events; 0 or 1 mails.
async fn queue_trial_ending(
    conn: &mut AnyConnection,
    item: &ItemState,
    interval: Interval,
    ctx: &ApplyContext<'_>,
) -> Result<usize, DbError> {
    // The item's state as this delivery left it: newer evidence (canceled, converted, extended)
    // speaks over a late reminder.
    let stored = db::items::get(conn, &item.id).await?;
    let Some(end) = crate::billing::subscription::reminder_due(stored.as_ref(), item, now_ms())
    else {
        tracing::info!(item = %item.id, "trial reminder for a trial no longer running; none sent");
        return Ok(0);
    };
    let Some(to) = recipient(conn, item).await? else {
        tracing::warn!(item = %item.id, "trial ending but no address to mail");
        return Ok(0);
    };
    let m = super::past_due_mail::trial_ending(item, end, interval, ctx.catalog, ctx.manage_url);
    let id = format!("trial_ending:{}:{end}", item.id);
    Ok(db::outbox::enqueue(conn, &id, &to, &m.subject, &m.body).await? as usize)
}

/// Where a payer's mail goes: the item's address, else its user's.
async fn recipient(conn: &mut AnyConnection, item: &ItemState) -> Result<Option<String>, DbError> {
    Ok(match item.payer.email.clone() {
        Some(e) => Some(e),
        None => match &item.payer.user_id {
            Some(uid) => db::users::get(conn, uid).await?.and_then(|u| u.email),
            None => None,
        },
    })
}

/// Queues the payment-failure mail for `item`; returns how many were queued (0 or 1).
async fn queue_payment_failed(
    conn: &mut AnyConnection,
    d: &Delivery,
    item: &ItemState,
    ctx: &ApplyContext<'_>,
) -> Result<usize, DbError> {
    let Some(to) = recipient(conn, item).await? else {
        tracing::warn!(item = %item.id, "past due but no address to mail");
        return Ok(0);
    };
    let m = super::past_due_mail::payment_failed(item, &d.event, ctx.manage_url);
    let id = format!("{}:payment_failed:{}", d.svix_id, item.id);
    Ok(db::outbox::enqueue(conn, &id, &to, &m.subject, &m.body).await? as usize)
}
