//! `lease`: named leases on background work that must run once across instances (the
//! reconciliation sweep, inbox retention). Whoever takes a free or expired lease runs the work;
//! the others skip it until the lease expires.

use sqlx::AnyPool;

use super::DbError;

/// Takes the lease `name` for `holder` until `now + ttl_ms` when it is free or has expired
/// (by `now`, ms since the epoch); `false` when another holder's lease is still running.
/// One statement, so two instances asking at once cannot both get it.
pub async fn acquire(
    pool: &AnyPool,
    name: &str,
    holder: &str,
    now: i64,
    ttl_ms: i64,
) -> Result<bool, DbError> {
    let res = sqlx::query(
        "insert into lease (name, holder, expires_at) values ($1, $2, $3) \
         on conflict (name) do update set holder = excluded.holder, expires_at = excluded.expires_at \
         where lease.expires_at <= $4",
    )
    .bind(name)
    .bind(holder)
    .bind(now.saturating_add(ttl_ms))
    .bind(now)
    .execute(pool)
    .await?;
    Ok(res.rows_affected() == 1)
}

/// Gives the lease back early (the work failed and should be tried again soon, by anyone).
/// Only the holder's own lease is released.
pub async fn release(pool: &AnyPool, name: &str, holder: &str) -> Result<(), DbError> {
    sqlx::query("update lease set expires_at = 0 where name = $1 and holder = $2")
        .bind(name)
        .bind(holder)
        .execute(pool)
        .await?;
    Ok(())
}
