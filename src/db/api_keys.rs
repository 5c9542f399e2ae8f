//! `api_key`: demo mode's API keys (README, "API keys"), each stored as the SHA-256 of its secret.

use sqlx::{AnyPool, Row};

use super::DbError;

/// A key as its owner's page lists it (never its secret).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyRow {
    pub id: String,
    /// `user_…` or `org_…`: whose plan the key opens.
    pub subject: String,
    pub name: String,
    /// `ak_demo_…1a2b`: enough to tell keys apart.
    pub hint: String,
    pub created_at: i64,
    pub revoked_at: Option<i64>,
}

fn row(r: &sqlx::any::AnyRow) -> KeyRow {
    KeyRow {
        id: r.get("id"),
        subject: r.get("subject"),
        name: r.get("name"),
        hint: r.get("hint"),
        created_at: r.get("created_at"),
        revoked_at: r.get("revoked_at"),
    }
}

pub async fn insert(pool: &AnyPool, key: &KeyRow, secret_hash: &str) -> Result<(), DbError> {
    sqlx::query(
        "insert into api_key (id, secret_hash, subject, name, hint, created_at) \
         values ($1, $2, $3, $4, $5, $6)",
    )
    .bind(&key.id)
    .bind(secret_hash)
    .bind(&key.subject)
    .bind(&key.name)
    .bind(&key.hint)
    .bind(key.created_at)
    .execute(pool)
    .await?;
    Ok(())
}

/// The key whose secret hashes to `secret_hash`, revoked or not.
pub async fn by_hash(pool: &AnyPool, secret_hash: &str) -> Result<Option<KeyRow>, DbError> {
    let r = sqlx::query(
        "select id, subject, name, hint, created_at, revoked_at from api_key where secret_hash = $1",
    )
    .bind(secret_hash)
    .fetch_optional(pool)
    .await?;
    Ok(r.as_ref().map(row))
}

/// `subject`'s keys, newest first.
pub async fn for_subject(pool: &AnyPool, subject: &str) -> Result<Vec<KeyRow>, DbError> {
    let rows = sqlx::query(
        "select id, subject, name, hint, created_at, revoked_at from api_key \
         where subject = $1 order by created_at desc, id limit 100",
    )
    .bind(subject)
    .fetch_all(pool)
    .await?;
    Ok(rows.iter().map(row).collect())
}

/// Revokes `subject`'s key `id` (another subject's key is left alone); whether one was revoked.
pub async fn revoke(pool: &AnyPool, id: &str, subject: &str, at: i64) -> Result<bool, DbError> {
    let done = sqlx::query(
        "update api_key set revoked_at = $1 where id = $2 and subject = $3 and revoked_at is null",
    )
    .bind(at)
    .bind(id)
    .bind(subject)
    .execute(pool)
    .await?;
    Ok(done.rows_affected() == 1)
}
