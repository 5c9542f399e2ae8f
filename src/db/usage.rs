//! `usage_counter`: units of a metered feature handed out per payer and period (README, "Usage
//! limits"). Each statement is one atomic step, so any number of instances may run them at once
//! and the sum of what they hand out never passes the allowance.

use sqlx::{AnyPool, Row};

use super::{now_ms, DbError, Engine};
use crate::billing::{
    usage::{Period, BLOCK_FRACTION, MAX_BLOCK},
    Payer,
};

/// Stands for "no limit" in the statement (far above anything countable, far below overflow).
pub const UNLIMITED: i64 = 1 << 60;

/// One payer's counter of one feature.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CounterKey {
    pub payer: Payer,
    pub feature: String,
}

/// A block the database handed out: units `used - granted + 1 ..= used` of the period.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Grant {
    pub used: i64,
    pub granted: i64,
    pub extra: i64,
}

// R, what remains once the caller's held units ($6) are given back:
//   $7 (the plan's limit) + extra - (used - $6)
// G, the block: a 1/$10 share of R, at least $8 (what the request needs), at most $9, never
// more than R. The update runs only when R covers the request; otherwise nothing changes.
/// The statement, with the engine's names for the two-argument minimum and maximum.
macro_rules! reserve_sql {
    ($min:literal, $max:literal) => {
        concat!(
            "insert into usage_counter (payer_kind, payer_id, feature, period_start, period_end, used, extra, last_grant, updated_at) ",
            "values ($1, $2, $3, $4, $5, ",
            "case when $7 >= $8 then ", $min, "(", $max, "($8, ", $min, "($9, $7 / $10)), $7) else 0 end, 0, ",
            "case when $7 >= $8 then ", $min, "(", $max, "($8, ", $min, "($9, $7 / $10)), $7) else 0 end, $11) ",
            "on conflict (payer_kind, payer_id, feature, period_start) do update set ",
            "period_end = $5, ",
            "used = usage_counter.used - $6 + ", $min, "(", $max, "($8, ", $min,
            "($9, ($7 + usage_counter.extra - (usage_counter.used - $6)) / $10)), ",
            "$7 + usage_counter.extra - (usage_counter.used - $6)), ",
            "last_grant = ", $min, "(", $max, "($8, ", $min,
            "($9, ($7 + usage_counter.extra - (usage_counter.used - $6)) / $10)), ",
            "$7 + usage_counter.extra - (usage_counter.used - $6)), ",
            "updated_at = $11 ",
            "where $7 + usage_counter.extra - (usage_counter.used - $6) >= $8 ",
            "returning used, last_grant, extra"
        )
    };
}

const RESERVE_SQLITE: &str = reserve_sql!("min", "max");
const RESERVE_POSTGRES: &str = reserve_sql!("least", "greatest");

/// Hands out a block of at least `want` units of `period` under the plan's `limit`
/// (`UNLIMITED` for none), giving back the `held` units the caller still had from this period's
/// counter in the same step. `None` when fewer than `want` remain: nothing changed, and the
/// caller still holds its `held` units.
#[allow(clippy::too_many_arguments)]
pub async fn reserve(
    pool: &AnyPool,
    engine: Engine,
    key: &CounterKey,
    period: Period,
    limit: i64,
    held: i64,
    want: i64,
) -> Result<Option<Grant>, DbError> {
    let sql = match engine {
        Engine::Sqlite => RESERVE_SQLITE,
        Engine::Postgres => RESERVE_POSTGRES,
    };
    let row = sqlx::query(sql)
        .bind(key.payer.kind.as_str())
        .bind(&key.payer.id)
        .bind(&key.feature)
        .bind(period.start)
        .bind(period.end)
        .bind(held)
        .bind(limit)
        .bind(want)
        .bind(MAX_BLOCK as i64)
        .bind(BLOCK_FRACTION as i64)
        .bind(now_ms())
        .fetch_optional(pool)
        .await?;
    Ok(row
        .map(|r| Grant {
            used: r.get("used"),
            granted: r.get("last_grant"),
            extra: r.get("extra"),
        })
        .filter(|g| g.granted >= want))
}

/// Gives back `units` this instance held and will not spend.
pub async fn give_back(
    pool: &AnyPool,
    key: &CounterKey,
    period_start: i64,
    units: i64,
) -> Result<(), DbError> {
    sqlx::query(
        "update usage_counter set used = used - $1, updated_at = $2 \
         where payer_kind = $3 and payer_id = $4 and feature = $5 and period_start = $6",
    )
    .bind(units)
    .bind(now_ms())
    .bind(key.payer.kind.as_str())
    .bind(&key.payer.id)
    .bind(&key.feature)
    .bind(period_start)
    .execute(pool)
    .await?;
    Ok(())
}

/// Adds `units` of an unlimited feature, counted in memory, to the period's counter.
pub async fn count(
    pool: &AnyPool,
    key: &CounterKey,
    period: Period,
    units: i64,
) -> Result<(), DbError> {
    sqlx::query(
        "insert into usage_counter (payer_kind, payer_id, feature, period_start, period_end, used, extra, last_grant, updated_at) \
         values ($1, $2, $3, $4, $5, $6, 0, 0, $7) \
         on conflict (payer_kind, payer_id, feature, period_start) do update set \
           used = usage_counter.used + $6, period_end = $5, updated_at = $7",
    )
    .bind(key.payer.kind.as_str())
    .bind(&key.payer.id)
    .bind(&key.feature)
    .bind(period.start)
    .bind(period.end)
    .bind(units)
    .bind(now_ms())
    .execute(pool)
    .await?;
    Ok(())
}

/// A payer's counter of one feature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Counter {
    pub feature: String,
    pub period: Period,
    pub used: i64,
    pub extra: i64,
}

/// The period of the payer's newest counter of the feature (by start), if it has one: where a
/// plan switch or a moved end keeps counting (`billing::usage::counting_period`).
pub async fn latest_period(pool: &AnyPool, key: &CounterKey) -> Result<Option<Period>, DbError> {
    let row = sqlx::query(
        "select period_start, period_end from usage_counter \
         where payer_kind = $1 and payer_id = $2 and feature = $3 \
         order by period_start desc limit 1",
    )
    .bind(key.payer.kind.as_str())
    .bind(&key.payer.id)
    .bind(&key.feature)
    .fetch_optional(pool)
    .await?;
    Ok(row.map(|r| Period {
        start: r.get("period_start"),
        end: r.get("period_end"),
    }))
}

/// The payer's newest counter of each feature.
pub async fn latest(pool: &AnyPool, payer: &Payer) -> Result<Vec<Counter>, DbError> {
    let rows = sqlx::query(
        "select c.feature, c.period_start, c.period_end, c.used, c.extra from usage_counter c \
         where c.payer_kind = $1 and c.payer_id = $2 and c.period_start = ( \
           select max(n.period_start) from usage_counter n \
           where n.payer_kind = c.payer_kind and n.payer_id = c.payer_id and n.feature = c.feature) \
         order by c.feature",
    )
    .bind(payer.kind.as_str())
    .bind(&payer.id)
    .fetch_all(pool)
    .await?;
    Ok(rows
        .iter()
        .map(|r| Counter {
            feature: r.get("feature"),
            period: Period {
                start: r.get("period_start"),
                end: r.get("period_end"),
            },
            used: r.get("used"),
            extra: r.get("extra"),
        })
        .collect())
}

/// Adds `units` to what the payer may use of `feature` in `period` (an operator's grant). The
/// reservation statement reads `extra` every time, so every instance sees it at its next
/// refill.
pub async fn grant(
    pool: &AnyPool,
    key: &CounterKey,
    period: Period,
    units: i64,
) -> Result<i64, DbError> {
    let row = sqlx::query(
        "insert into usage_counter (payer_kind, payer_id, feature, period_start, period_end, used, extra, last_grant, updated_at) \
         values ($1, $2, $3, $4, $5, 0, $6, 0, $7) \
         on conflict (payer_kind, payer_id, feature, period_start) do update set \
           extra = usage_counter.extra + $6, updated_at = $7 \
         returning extra",
    )
    .bind(key.payer.kind.as_str())
    .bind(&key.payer.id)
    .bind(&key.feature)
    .bind(period.start)
    .bind(period.end)
    .bind(units)
    .bind(now_ms())
    .fetch_one(pool)
    .await?;
    Ok(row.get::<i64, _>(0))
}

#[cfg(test)]
mod tests {
    /// The two engines' statements differ only in the names of minimum and maximum.
    #[test]
    fn both_engines_reserve_with_the_same_statement() {
        let pg = super::RESERVE_POSTGRES
            .replace("least(", "min(")
            .replace("greatest(", "max(");
        assert_eq!(pg, super::RESERVE_SQLITE);
    }
}
