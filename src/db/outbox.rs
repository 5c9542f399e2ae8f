//! `mail_outbox`: mail queued inside the webhook transaction, sent later by the worker.

use sqlx::{AnyConnection, AnyPool, Row};

use super::{now_ms, DbError};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mail {
    pub id: String,
    pub recipient: String,
    pub subject: String,
    pub body: String,
    pub attempts: i64,
    pub next_attempt_at: i64,
    pub created_at: i64,
}

/// Queues a mail under its (event, effect) id; a second enqueue of the same id does nothing.
pub async fn enqueue(
    conn: &mut AnyConnection,
    id: &str,
    recipient: &str,
    subject: &str,
    body: &str,
) -> Result<bool, DbError> {
    let now = now_ms();
    let res = sqlx::query(
        "insert into mail_outbox (id, recipient, subject, body, status, attempts, next_attempt_at, created_at) \
         values ($1, $2, $3, $4, 'queued', 0, $5, $5) on conflict (id) do nothing",
    )
    .bind(id)
    .bind(recipient)
    .bind(subject)
    .bind(body)
    .bind(now)
    .execute(conn)
    .await?;
    Ok(res.rows_affected() == 1)
}

pub async fn due(pool: &AnyPool, now: i64, limit: i64) -> Result<Vec<Mail>, DbError> {
    let rows = sqlx::query(
        "select id, recipient, subject, body, attempts, next_attempt_at, created_at from mail_outbox \
         where status = 'queued' and next_attempt_at <= $1 order by next_attempt_at limit $2",
    )
    .bind(now)
    .bind(limit)
    .fetch_all(pool)
    .await?;
    Ok(rows
        .iter()
        .map(|r| Mail {
            id: r.get("id"),
            recipient: r.get("recipient"),
            subject: r.get("subject"),
            body: r.get("body"),
            attempts: r.get("attempts"),
            next_attempt_at: r.get("next_attempt_at"),
            created_at: r.get("created_at"),
        })
        .collect())
}

/// Claims a due mail for `lease_ms` so that another instance's worker skips it; `false` when
/// someone else claimed it first.
pub async fn claim(pool: &AnyPool, mail: &Mail, lease_until: i64) -> Result<bool, DbError> {
    let res = sqlx::query(
        "update mail_outbox set next_attempt_at = $1 \
         where id = $2 and status = 'queued' and next_attempt_at = $3",
    )
    .bind(lease_until)
    .bind(&mail.id)
    .bind(mail.next_attempt_at)
    .execute(pool)
    .await?;
    Ok(res.rows_affected() == 1)
}

pub async fn mark_sent(pool: &AnyPool, id: &str) -> Result<(), DbError> {
    sqlx::query("update mail_outbox set status = 'sent', sent_at = $1, attempts = attempts + 1 where id = $2")
        .bind(now_ms())
        .bind(id)
        .execute(pool)
        .await?;
    Ok(())
}

pub async fn mark_failed(
    pool: &AnyPool,
    id: &str,
    retry_at: i64,
    error: &str,
) -> Result<(), DbError> {
    sqlx::query(
        "update mail_outbox set attempts = attempts + 1, next_attempt_at = $1, last_error = $2 where id = $3",
    )
    .bind(retry_at)
    .bind(error)
    .bind(id)
    .execute(pool)
    .await?;
    Ok(())
}

/// Ends a mail as failed: it is not tried again (`plangate_outbox_failed`, the console's payer
/// page show it with `error`).
pub async fn give_up(pool: &AnyPool, id: &str, error: &str) -> Result<(), DbError> {
    sqlx::query(
        "update mail_outbox set status = 'failed', attempts = attempts + 1, last_error = $1 where id = $2",
    )
    .bind(error)
    .bind(id)
    .execute(pool)
    .await?;
    Ok(())
}

pub async fn count_by_status(pool: &AnyPool, status: &str) -> Result<i64, DbError> {
    Ok(
        sqlx::query("select count(*) from mail_outbox where status = $1")
            .bind(status)
            .fetch_one(pool)
            .await?
            .get::<i64, _>(0),
    )
}
