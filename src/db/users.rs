//! `app_user`: Clerk users as `user.*` webhooks describe them.

use sqlx::{AnyConnection, Row};

use super::{now_ms, DbError};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserRow {
    pub id: String,
    pub email: Option<String>,
    pub deleted: bool,
    pub event_at: i64,
}

/// Writes the user unless the stored state comes from newer evidence. Returns whether it wrote.
pub async fn upsert_if_newer(
    conn: &mut AnyConnection,
    id: &str,
    email: Option<&str>,
    deleted: bool,
    event_at: i64,
    order_key: &str,
) -> Result<bool, DbError> {
    let now = now_ms();
    let res = sqlx::query(
        "insert into app_user (id, email, deleted, event_at, order_key, created_at, updated_at) \
         values ($1, $2, $3, $4, $5, $6, $6) \
         on conflict (id) do update set \
           email = coalesce(excluded.email, app_user.email), deleted = excluded.deleted, \
           event_at = excluded.event_at, order_key = excluded.order_key, updated_at = excluded.updated_at \
         where app_user.order_key < excluded.order_key",
    )
    .bind(id)
    .bind(email)
    .bind(deleted as i64)
    .bind(event_at)
    .bind(order_key)
    .bind(now)
    .execute(conn)
    .await?;
    Ok(res.rows_affected() > 0)
}

pub async fn get(conn: &mut AnyConnection, id: &str) -> Result<Option<UserRow>, DbError> {
    let row = sqlx::query("select id, email, deleted, event_at from app_user where id = $1")
        .bind(id)
        .fetch_optional(conn)
        .await?;
    Ok(row.map(|r| UserRow {
        id: r.get("id"),
        email: r.get("email"),
        deleted: r.get::<i64, _>("deleted") != 0,
        event_at: r.get("event_at"),
    }))
}
