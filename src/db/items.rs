//! `subscription_item`: one row per Clerk subscription item, showing the newest state seen.

use sqlx::{any::AnyRow, AnyConnection, Row};

use std::collections::HashSet;

use super::{now_ms, placeholders, DbError, MAX_ROWS};
use crate::billing::{
    subscription::ItemPayer, ItemState, OrderKey, Payer, PayerKind, Standing, Status,
};

const COLUMNS: &str = "id, subscription_id, payer_kind, payer_id, payer_user_id, payer_email, \
    plan_slug, plan_name, status, period_start, period_end, is_free_trial, canceled_at, \
    past_due_at, event_at, inferred, failed_at, paid_at";

fn from_row(r: &AnyRow) -> ItemState {
    ItemState {
        id: r.get("id"),
        subscription_id: r.get("subscription_id"),
        payer: ItemPayer {
            kind: PayerKind::parse(&r.get::<String, _>("payer_kind")),
            id: r.get("payer_id"),
            user_id: r.get("payer_user_id"),
            email: r.get("payer_email"),
        },
        plan_slug: r.get("plan_slug"),
        plan_name: r.get("plan_name"),
        status: Status::parse(&r.get::<String, _>("status")),
        period_start: r.get("period_start"),
        period_end: r.get("period_end"),
        is_free_trial: r.get::<i64, _>("is_free_trial") != 0,
        canceled_at: r.get("canceled_at"),
        past_due_at: r.get("past_due_at"),
        event_at: r.get("event_at"),
        inferred: r.get::<i64, _>("inferred") != 0,
        standing: Standing {
            failed_at: r.get("failed_at"),
            paid_at: r.get("paid_at"),
        },
    }
}

/// Takes the row's write lock before reading it, so two deliveries for the same item cannot
/// both see the old state (a no-op update locks the row on PostgreSQL and the file on SQLite).
pub async fn lock(conn: &mut AnyConnection, id: &str) -> Result<(), DbError> {
    sqlx::query("update subscription_item set updated_at = updated_at where id = $1")
        .bind(id)
        .execute(conn)
        .await?;
    Ok(())
}

pub async fn get(conn: &mut AnyConnection, id: &str) -> Result<Option<ItemState>, DbError> {
    let row = sqlx::query(&format!(
        "select {COLUMNS} from subscription_item where id = $1"
    ))
    .bind(id)
    .fetch_optional(conn)
    .await?;
    Ok(row.as_ref().map(from_row))
}

pub async fn for_payer(conn: &mut AnyConnection, payer: &Payer) -> Result<Vec<ItemState>, DbError> {
    let rows = sqlx::query(&format!(
        "select {COLUMNS} from subscription_item where payer_kind = $1 and payer_id = $2"
    ))
    .bind(payer.kind.as_str())
    .bind(&payer.id)
    .fetch_all(conn)
    .await?;
    Ok(rows.iter().map(from_row).collect())
}

/// Every stored item (the reconciliation sweep compares them with the Backend API's list).
pub async fn all(conn: &mut AnyConnection) -> Result<Vec<ItemState>, DbError> {
    let rows = sqlx::query(&format!("select {COLUMNS} from subscription_item"))
        .fetch_all(conn)
        .await?;
    Ok(rows.iter().map(from_row).collect())
}

/// Writes the item unless the stored state has a greater order key. Payer details missing from
/// the new evidence (payment attempts do not repeat them) are kept from the stored row.
pub async fn upsert_if_newer(
    conn: &mut AnyConnection,
    item: &ItemState,
    key: &OrderKey,
) -> Result<bool, DbError> {
    Ok(!upsert_many_if_newer(conn, &[(item, key)]).await?.is_empty())
}

/// [`upsert_if_newer`] for many items with distinct ids, a few statements in all; returns the
/// ids that were written. Rows go in id order so two PostgreSQL writers lock them in one order.
pub async fn upsert_many_if_newer(
    conn: &mut AnyConnection,
    items: &[(&ItemState, &OrderKey)],
) -> Result<HashSet<String>, DbError> {
    const PER_ROW: usize = 21;
    let mut sorted = items.to_vec();
    sorted.sort_by(|a, b| a.0.id.cmp(&b.0.id));
    let now = now_ms();
    let mut written = HashSet::with_capacity(items.len());
    for chunk in sorted.chunks(MAX_ROWS) {
        let values = placeholders(chunk.len(), PER_ROW, 1);
        let sql = format!(
            "insert into subscription_item (id, subscription_id, payer_kind, payer_id, payer_user_id, \
               payer_email, plan_slug, plan_name, status, period_start, period_end, is_free_trial, \
               canceled_at, past_due_at, event_at, inferred, failed_at, paid_at, order_key, \
               created_at, updated_at) \
             values {values} \
             on conflict (id) do update set \
               subscription_id = coalesce(excluded.subscription_id, subscription_item.subscription_id), \
               payer_user_id = coalesce(excluded.payer_user_id, subscription_item.payer_user_id), \
               payer_email = coalesce(excluded.payer_email, subscription_item.payer_email), \
               plan_slug = excluded.plan_slug, plan_name = coalesce(excluded.plan_name, subscription_item.plan_name), \
               status = excluded.status, period_start = excluded.period_start, \
               period_end = excluded.period_end, is_free_trial = excluded.is_free_trial, \
               canceled_at = excluded.canceled_at, past_due_at = excluded.past_due_at, \
               event_at = excluded.event_at, inferred = excluded.inferred, \
               failed_at = {FAILED_AT}, paid_at = {PAID_AT}, \
               order_key = excluded.order_key, updated_at = excluded.updated_at \
             where subscription_item.order_key < excluded.order_key \
             returning id"
        );
        let mut q = sqlx::query(&sql);
        for (item, key) in chunk {
            q = q
                .bind(&item.id)
                .bind(&item.subscription_id)
                .bind(item.payer.kind.as_str())
                .bind(&item.payer.id)
                .bind(&item.payer.user_id)
                .bind(&item.payer.email)
                .bind(&item.plan_slug)
                .bind(&item.plan_name)
                .bind(item.status.as_str())
                .bind(item.period_start)
                .bind(item.period_end)
                .bind(item.is_free_trial as i64)
                .bind(item.canceled_at)
                .bind(item.past_due_at)
                .bind(item.event_at)
                .bind(item.inferred as i64)
                .bind(item.standing.failed_at)
                .bind(item.standing.paid_at)
                .bind(key.as_str())
                .bind(now) // created_at
                .bind(now); // updated_at
        }
        for row in q.fetch_all(&mut *conn).await? {
            written.insert(row.get::<String, _>(0));
        }
    }
    // Stale evidence still counts for payment standing (its registers only grow).
    for (item, _) in items {
        if !written.contains(&item.id) && !item.standing.is_empty() {
            merge_standing(conn, &item.id, &item.standing).await?;
        }
    }
    Ok(written)
}

/// The larger of the stored and the new value of a standing register (`billing::standing`),
/// in SQL both engines read: a null on either side keeps the other.
macro_rules! later {
    ($col:literal, $new:literal) => {
        concat!(
            "coalesce(case when ",
            $new,
            " > subscription_item.",
            $col,
            " then ",
            $new,
            " else subscription_item.",
            $col,
            " end, ",
            $new,
            ")"
        )
    };
}
const FAILED_AT: &str = later!("failed_at", "excluded.failed_at");
const PAID_AT: &str = later!("paid_at", "excluded.paid_at");

/// Merges `standing` into the stored item's registers without touching its state.
async fn merge_standing(
    conn: &mut AnyConnection,
    id: &str,
    standing: &Standing,
) -> Result<(), DbError> {
    const SQL: &str = concat!(
        "update subscription_item set failed_at = ",
        later!("failed_at", "$1"),
        ", paid_at = ",
        later!("paid_at", "$2"),
        " where id = $3"
    );
    sqlx::query(SQL)
        .bind(standing.failed_at)
        .bind(standing.paid_at)
        .bind(id)
        .execute(conn)
        .await?;
    Ok(())
}
