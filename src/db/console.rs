//! The operator console's tables: `audit_log`, `form_token` and `job_run`, and the lookups its
//! pages make (a payer by id or mail address, a payer's mail).

use sqlx::{AnyPool, Row};

use super::{placeholders, DbError};
use crate::billing::{operator::AuditEntry, Payer, PayerKind};

/// Writes one audit row.
pub async fn audit(pool: &AnyPool, id: &str, e: &AuditEntry) -> Result<(), DbError> {
    sqlx::query(
        "insert into audit_log (id, at, operator, action, target, params, result) \
         values ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(id)
    .bind(e.at)
    .bind(&e.operator)
    .bind(&e.action)
    .bind(&e.target)
    .bind(&e.params)
    .bind(&e.result)
    .execute(pool)
    .await?;
    Ok(())
}

/// Completes an audit row written `pending` before its action ran.
pub async fn complete(pool: &AnyPool, id: &str, result: &str) -> Result<(), DbError> {
    sqlx::query("update audit_log set result = $1 where id = $2")
        .bind(result)
        .bind(id)
        .execute(pool)
        .await?;
    Ok(())
}

/// The newest `limit` audit rows, newest first.
pub async fn audit_log(pool: &AnyPool, limit: i64) -> Result<Vec<AuditEntry>, DbError> {
    let rows = sqlx::query(
        "select at, operator, action, target, params, result from audit_log \
         order by at desc, id desc limit $1",
    )
    .bind(limit)
    .fetch_all(pool)
    .await?;
    Ok(rows
        .iter()
        .map(|r| AuditEntry {
            at: r.get("at"),
            operator: r.get("operator"),
            action: r.get("action"),
            target: r.get("target"),
            params: r.get("params"),
            result: r.get("result"),
        })
        .collect())
}

/// Stores form tokens (their hashes) issued to `operator`, valid until `expires_at`.
pub async fn issue_tokens(
    pool: &AnyPool,
    operator: &str,
    hashes: &[String],
    expires_at: i64,
) -> Result<(), DbError> {
    if hashes.is_empty() {
        return Ok(());
    }
    let mut tx = pool.begin().await?;
    for chunk in hashes.chunks(200) {
        let values = (0..chunk.len())
            .map(|i| format!("(${}, $1, $2)", i + 3))
            .collect::<Vec<_>>()
            .join(", ");
        let sql = format!(
            "insert into form_token (token_hash, operator, expires_at) values {values} \
             on conflict (token_hash) do nothing"
        );
        let mut q = sqlx::query(&sql).bind(operator).bind(expires_at);
        for h in chunk {
            q = q.bind(h);
        }
        q.execute(&mut *tx).await?;
    }
    tx.commit().await?;
    Ok(())
}

/// Accepts a form token once: `true` only for a token issued to `operator`, unexpired at `now`
/// and never accepted before. One statement, so two instances cannot both accept it.
pub async fn use_token(
    pool: &AnyPool,
    hash: &str,
    operator: &str,
    now: i64,
) -> Result<bool, DbError> {
    let res = sqlx::query(
        "update form_token set used_at = $1 \
         where token_hash = $2 and operator = $3 and used_at is null and expires_at > $1",
    )
    .bind(now)
    .bind(hash)
    .bind(operator)
    .execute(pool)
    .await?;
    Ok(res.rows_affected() == 1)
}

/// Removes tokens that expired before `cutoff`.
pub async fn purge_tokens(pool: &AnyPool, cutoff: i64) -> Result<u64, DbError> {
    Ok(sqlx::query("delete from form_token where expires_at < $1")
        .bind(cutoff)
        .execute(pool)
        .await?
        .rows_affected())
}

/// Records how a background job's last run ended.
pub async fn record_run(pool: &AnyPool, name: &str, at: i64, result: &str) -> Result<(), DbError> {
    sqlx::query(
        "insert into job_run (name, at, result) values ($1, $2, $3) \
         on conflict (name) do update set at = excluded.at, result = excluded.result",
    )
    .bind(name)
    .bind(at)
    .bind(result)
    .execute(pool)
    .await?;
    Ok(())
}

/// A background job's last run: (when, result).
pub async fn last_run(pool: &AnyPool, name: &str) -> Result<Option<(i64, String)>, DbError> {
    let row = sqlx::query("select at, result from job_run where name = $1")
        .bind(name)
        .fetch_optional(pool)
        .await?;
    Ok(row.map(|r| (r.get("at"), r.get("result"))))
}

/// A payer found by the console's search.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FoundPayer {
    pub payer: Payer,
    pub email: Option<String>,
}

/// Payers whose id is `q`, or whose mail address is `q` (any case): known users, and payers
/// of stored items.
pub async fn find_payers(pool: &AnyPool, q: &str) -> Result<Vec<FoundPayer>, DbError> {
    let q = q.trim();
    let mut out: Vec<FoundPayer> = Vec::new();
    let mut push = |p: FoundPayer| {
        if !out.iter().any(|o| o.payer == p.payer) {
            out.push(p);
        }
    };
    let users = sqlx::query(
        "select id, email from app_user where id = $1 or lower(email) = lower($1) \
         order by id limit 20",
    )
    .bind(q)
    .fetch_all(pool)
    .await?;
    for r in &users {
        push(FoundPayer {
            payer: Payer::user(r.get::<String, _>("id")),
            email: r.get("email"),
        });
    }
    let payers = sqlx::query(
        "select distinct payer_kind, payer_id, payer_email from subscription_item \
         where payer_id = $1 or payer_user_id = $1 or lower(payer_email) = lower($1) \
         order by payer_kind, payer_id limit 20",
    )
    .bind(q)
    .fetch_all(pool)
    .await?;
    for r in &payers {
        push(FoundPayer {
            payer: Payer {
                kind: PayerKind::parse(&r.get::<String, _>("payer_kind")),
                id: r.get("payer_id"),
            },
            email: r.get("payer_email"),
        });
    }
    Ok(out)
}

/// One queued or sent mail, without its body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailRow {
    pub id: String,
    pub recipient: String,
    pub subject: String,
    pub status: String,
    pub attempts: i64,
    pub created_at: i64,
    pub sent_at: Option<i64>,
    /// Why the last attempt failed (why a failed mail was given up on).
    pub last_error: Option<String>,
}

/// The newest mail to any of `recipients`, newest first.
pub async fn mail_to(
    pool: &AnyPool,
    recipients: &[String],
    limit: i64,
) -> Result<Vec<MailRow>, DbError> {
    if recipients.is_empty() {
        return Ok(Vec::new());
    }
    let sql = format!(
        "select id, recipient, subject, status, attempts, created_at, sent_at, last_error from mail_outbox \
         where recipient in ({}) order by created_at desc, id desc limit {}",
        placeholders(recipients.len(), 1, 1),
        limit.clamp(1, 500)
    );
    let mut q = sqlx::query(&sql);
    for r in recipients {
        q = q.bind(r);
    }
    Ok(q.fetch_all(pool)
        .await?
        .iter()
        .map(|r| MailRow {
            id: r.get("id"),
            recipient: r.get("recipient"),
            subject: r.get("subject"),
            status: r.get("status"),
            attempts: r.get("attempts"),
            created_at: r.get("created_at"),
            sent_at: r.get("sent_at"),
            last_error: r.get("last_error"),
        })
        .collect())
}
