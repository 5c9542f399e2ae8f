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
}

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, PartialEq)]
pub struct EventRow {
    pub svix_id: String,
    pub event_type: String,
    pub event_at: i64,
    pub received_at: i64,
    pub outcome: String,
    pub duplicates: i64,
}

/// Inserts the delivery; `false` when this `svix_id` was stored before (a duplicate). On
/// PostgreSQL a concurrent copy waits here until the first transaction ends.
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
            "insert into webhook_event (svix_id, event_type, event_at, received_at, outcome, subject_id, payload) \
             values {} on conflict (svix_id) do nothing returning svix_id",
            placeholders(chunk.len(), 7, 1)
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
                .bind(ev.payload);
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
) -> Result<(), DbError> {
    sqlx::query("update webhook_event set outcome = $1 where svix_id = $2")
        .bind(outcome)
        .bind(svix_id)
        .execute(conn)
        .await?;
    Ok(())
}

pub async fn payload(conn: &mut AnyConnection, svix_id: &str) -> Result<Option<String>, DbError> {
    Ok(
        sqlx::query("select payload from webhook_event where svix_id = $1")
            .bind(svix_id)
            .fetch_optional(conn)
            .await?
            .map(|r| r.get("payload")),
    )
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
        let rows = sqlx::query(
            "select svix_id, event_type, event_at, received_at, outcome, duplicates from webhook_event \
             where subject_id = $1 order by received_at desc limit $2",
        )
        .bind(*subject)
        .bind(limit)
        .fetch_all(&mut *conn)
        .await?;
        out.extend(rows.iter().map(|r| EventRow {
            svix_id: r.get("svix_id"),
            event_type: r.get("event_type"),
            event_at: r.get("event_at"),
            received_at: r.get("received_at"),
            outcome: r.get("outcome"),
            duplicates: r.get("duplicates"),
        }));
    }
    out.sort_by_key(|e| std::cmp::Reverse(e.received_at));
    out.truncate(limit as usize);
    Ok(out)
}
