//! `webhook_event`: the inbox. The primary key on `svix_id` is what makes redelivery a no-op.

use sqlx::{AnyConnection, Row};

use super::{now_ms, placeholders, DbError, MAX_ROWS};

pub struct NewEvent<'a> {
    pub svix_id: &'a str,
    pub event_type: &'a str,
    pub event_at: i64,
    pub subject_id: Option<&'a str>,
    /// Already redacted of card data.
    pub payload: &'a str,
    /// The outcome to store; the writer corrects it after applying if it turns out otherwise.
    pub outcome: &'a str,
    /// Why it could not be applied (outcome `failed`).
    pub reason: Option<&'a str>,
    /// The verified `svix-timestamp`, in ms.
    pub signed_at: i64,
}

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, PartialEq)]
pub struct EventRow {
    pub svix_id: String,
    pub event_type: String,
    pub event_at: i64,
    pub received_at: i64,
    pub outcome: String,
    pub duplicates: i64,
    pub reason: Option<String>,
    /// Retention removed the payload (the row stays for deduplication).
    pub purged: bool,
}

const ROW_COLUMNS: &str =
    "svix_id, event_type, event_at, received_at, outcome, duplicates, reason, purged_at";

fn event_row(r: &sqlx::any::AnyRow) -> EventRow {
    EventRow {
        svix_id: r.get("svix_id"),
        event_type: r.get("event_type"),
        event_at: r.get("event_at"),
        received_at: r.get("received_at"),
        outcome: r.get("outcome"),
        duplicates: r.get("duplicates"),
        reason: r.get("reason"),
        purged: r.get::<Option<i64>, _>("purged_at").is_some(),
    }
}

/// A stored delivery, as replay reads it back.
#[derive(Debug, Clone, PartialEq)]
pub struct Stored {
    pub outcome: String,
    /// `None` once retention removed it.
    pub payload: Option<String>,
    /// The signed time it came with (older rows: when it was received).
    pub signed_at: i64,
}

/// Inserts the delivery; `false` when this `svix_id` was stored before (a duplicate). A row
/// stored as `failed` is no duplicate: the new attempt replaces it. On PostgreSQL a concurrent
/// copy waits here until the first transaction ends.
pub async fn insert(conn: &mut AnyConnection, ev: &NewEvent<'_>) -> Result<bool, DbError> {
    Ok(!insert_many(conn, std::slice::from_ref(ev))
        .await?
        .is_empty())
}

/// Inserts many deliveries in a few statements; returns the svix-ids that were new. Rows go in
/// svix-id order so two PostgreSQL writers take the key locks in one order and cannot deadlock
/// on them.
pub async fn insert_many(
    conn: &mut AnyConnection,
    events: &[NewEvent<'_>],
) -> Result<Vec<String>, DbError> {
    let mut sorted: Vec<&NewEvent> = events.iter().collect();
    sorted.sort_by_key(|e| e.svix_id);
    let now = now_ms();
    let mut inserted = Vec::with_capacity(events.len());
    for chunk in sorted.chunks(MAX_ROWS) {
        let sql = format!(
            "insert into webhook_event (svix_id, event_type, event_at, received_at, outcome, \
               subject_id, payload, reason, signed_at) \
             values {} on conflict (svix_id) do update set event_type = excluded.event_type, \
               event_at = excluded.event_at, received_at = excluded.received_at, \
               outcome = excluded.outcome, subject_id = excluded.subject_id, \
               payload = excluded.payload, reason = excluded.reason, \
               signed_at = excluded.signed_at, purged_at = null \
             where webhook_event.outcome = 'failed' \
             returning svix_id",
            placeholders(chunk.len(), 9, 1)
        );
        let mut q = sqlx::query(&sql);
        for ev in chunk {
            q = q
                .bind(ev.svix_id)
                .bind(ev.event_type)
                .bind(ev.event_at)
                .bind(now)
                .bind(ev.outcome)
                .bind(ev.subject_id)
                .bind(ev.payload)
                .bind(ev.reason)
                .bind(ev.signed_at);
        }
        for row in q.fetch_all(&mut *conn).await? {
            inserted.push(row.get::<String, _>(0));
        }
    }
    Ok(inserted)
}

/// Sets one outcome on many events, a few statements in all.
pub async fn set_outcome_many(
    conn: &mut AnyConnection,
    svix_ids: &[&str],
    outcome: &str,
) -> Result<(), DbError> {
    for chunk in svix_ids.chunks(MAX_ROWS) {
        let sql = format!(
            "update webhook_event set outcome = $1 where svix_id in ({})",
            placeholders(chunk.len(), 1, 2)
        );
        let mut q = sqlx::query(&sql).bind(outcome);
        for id in chunk {
            q = q.bind(*id);
        }
        q.execute(&mut *conn).await?;
    }
    Ok(())
}

/// Counts a redelivery of a stored event.
pub async fn count_duplicate(conn: &mut AnyConnection, svix_id: &str) -> Result<(), DbError> {
    sqlx::query("update webhook_event set duplicates = duplicates + 1 where svix_id = $1")
        .bind(svix_id)
        .execute(conn)
        .await?;
    Ok(())
}

pub async fn set_outcome(
    conn: &mut AnyConnection,
    svix_id: &str,
    outcome: &str,
    reason: Option<&str>,
) -> Result<(), DbError> {
    sqlx::query("update webhook_event set outcome = $1, reason = $2 where svix_id = $3")
        .bind(outcome)
        .bind(reason)
        .bind(svix_id)
        .execute(conn)
        .await?;
    Ok(())
}

pub async fn payload(conn: &mut AnyConnection, svix_id: &str) -> Result<Option<String>, DbError> {
    Ok(stored(conn, svix_id).await?.and_then(|s| s.payload))
}

/// The stored delivery `svix_id`, if there is one.
pub async fn stored(conn: &mut AnyConnection, svix_id: &str) -> Result<Option<Stored>, DbError> {
    let row = sqlx::query(
        "select outcome, payload, purged_at, coalesce(signed_at, received_at) as signed_at \
         from webhook_event where svix_id = $1",
    )
    .bind(svix_id)
    .fetch_optional(conn)
    .await?;
    Ok(row.map(|r| Stored {
        outcome: r.get("outcome"),
        payload: match r.get::<Option<i64>, _>("purged_at") {
            Some(_) => None,
            None => Some(r.get("payload")),
        },
        signed_at: r.get("signed_at"),
    }))
}

/// The newest deliveries, newest first; with `failed_only`, only those that could not be
/// applied.
pub async fn list(
    conn: &mut AnyConnection,
    failed_only: bool,
    limit: i64,
) -> Result<Vec<EventRow>, DbError> {
    let filter = if failed_only {
        "where outcome = 'failed'"
    } else {
        ""
    };
    let rows = sqlx::query(&format!(
        "select {ROW_COLUMNS} from webhook_event {filter} \
         order by received_at desc, svix_id desc limit $1"
    ))
    .bind(limit)
    .fetch_all(conn)
    .await?;
    Ok(rows.iter().map(event_row).collect())
}

/// How many deliveries are stored as `failed` (dead letters).
pub async fn count_failed(conn: &mut AnyConnection) -> Result<i64, DbError> {
    Ok(
        sqlx::query("select count(*) from webhook_event where outcome = 'failed'")
            .fetch_one(conn)
            .await?
            .get::<i64, _>(0),
    )
}

/// Removes the payloads of deliveries received before `cutoff_ms`, a bounded number per
/// statement so that no transaction holds the write lock for long; keeps the rows. Returns how
/// many payloads went.
pub async fn purge_payloads(
    conn: &mut AnyConnection,
    cutoff_ms: i64,
    now_ms: i64,
) -> Result<u64, DbError> {
    let mut total = 0;
    loop {
        let done = sqlx::query(
            "update webhook_event set payload = '', purged_at = $1 where svix_id in \
             (select svix_id from webhook_event where received_at < $2 and purged_at is null \
              limit 500)",
        )
        .bind(now_ms)
        .bind(cutoff_ms)
        .execute(&mut *conn)
        .await?
        .rows_affected();
        total += done;
        if done == 0 {
            return Ok(total);
        }
    }
}

pub async fn count(conn: &mut AnyConnection) -> Result<i64, DbError> {
    Ok(sqlx::query("select count(*) from webhook_event")
        .fetch_one(conn)
        .await?
        .get::<i64, _>(0))
}

/// The newest events about one subject (a user or an organization), newest first.
pub async fn recent_for(
    conn: &mut AnyConnection,
    subject_ids: &[&str],
    limit: i64,
) -> Result<Vec<EventRow>, DbError> {
    let mut out = Vec::new();
    for subject in subject_ids {
        let rows = sqlx::query(&format!(
            "select {ROW_COLUMNS} from webhook_event \
             where subject_id = $1 order by received_at desc limit $2"
        ))
        .bind(*subject)
        .bind(limit)
        .fetch_all(&mut *conn)
        .await?;
        out.extend(rows.iter().map(event_row));
    }
    out.sort_by_key(|e| std::cmp::Reverse(e.received_at));
    out.truncate(limit as usize);
    Ok(out)
}
