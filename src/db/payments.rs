//! `payment_attempt`: the billing page's history, one row per attempt, newest evidence first.

use sqlx::{AnyConnection, AnyPool, Row};

use super::{now_ms, DbError};
use crate::billing::{
    payments::{Card, PaymentAttempt, PaymentStatus},
    subscription::ItemPayer,
    Payer, PayerKind,
};

/// Writes the attempt unless the stored row rests on newer evidence; whether it wrote.
pub async fn upsert_if_newer(
    conn: &mut AnyConnection,
    p: &PaymentAttempt,
    order_key: &str,
) -> Result<bool, DbError> {
    let res = sqlx::query(
        "insert into payment_attempt (id, payer_kind, payer_id, status, amount, currency, \
           charge_type, at, failed_code, card_brand, card_last4, statement_id, event_at, order_key, updated_at) \
         values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15) \
         on conflict (id) do update set \
           payer_kind = excluded.payer_kind, payer_id = excluded.payer_id, status = excluded.status, \
           amount = excluded.amount, currency = excluded.currency, \
           charge_type = coalesce(excluded.charge_type, payment_attempt.charge_type), \
           at = excluded.at, failed_code = excluded.failed_code, \
           card_brand = coalesce(excluded.card_brand, payment_attempt.card_brand), \
           card_last4 = coalesce(excluded.card_last4, payment_attempt.card_last4), \
           statement_id = coalesce(excluded.statement_id, payment_attempt.statement_id), \
           event_at = excluded.event_at, order_key = excluded.order_key, updated_at = excluded.updated_at \
         where payment_attempt.order_key < excluded.order_key",
    )
    .bind(&p.id)
    .bind(p.payer.kind.as_str())
    .bind(&p.payer.id)
    .bind(p.status.as_str())
    .bind(p.amount)
    .bind(&p.currency)
    .bind(p.charge_type.as_deref())
    .bind(p.at)
    .bind(p.failed_code.as_deref())
    .bind(p.card.as_ref().map(|c| c.brand.as_str()))
    .bind(p.card.as_ref().map(|c| c.last4.as_str()))
    .bind(p.statement_id.as_deref())
    .bind(p.event_at)
    .bind(order_key)
    .bind(now_ms())
    .execute(conn)
    .await?;
    Ok(res.rows_affected() > 0)
}

/// The payer's attempts, newest first.
pub async fn for_payer(
    pool: &AnyPool,
    payer: &Payer,
    limit: i64,
) -> Result<Vec<PaymentAttempt>, DbError> {
    let rows = sqlx::query(
        "select id, payer_kind, payer_id, status, amount, currency, charge_type, at, failed_code, \
           card_brand, card_last4, statement_id, event_at from payment_attempt \
         where payer_kind = $1 and payer_id = $2 order by at desc, id desc limit $3",
    )
    .bind(payer.kind.as_str())
    .bind(&payer.id)
    .bind(limit)
    .fetch_all(pool)
    .await?;
    Ok(rows
        .iter()
        .map(|r| {
            let brand: Option<String> = r.get("card_brand");
            let last4: Option<String> = r.get("card_last4");
            PaymentAttempt {
                id: r.get("id"),
                payer: ItemPayer {
                    kind: PayerKind::parse(&r.get::<String, _>("payer_kind")),
                    id: r.get("payer_id"),
                    user_id: None,
                    email: None,
                },
                status: PaymentStatus::parse(&r.get::<String, _>("status"))
                    .unwrap_or(PaymentStatus::Pending),
                amount: r.get("amount"),
                currency: r.get("currency"),
                charge_type: r.get("charge_type"),
                at: r.get("at"),
                failed_code: r.get("failed_code"),
                card: brand.zip(last4).map(|(brand, last4)| Card { brand, last4 }),
                statement_id: r.get("statement_id"),
                event_at: r.get("event_at"),
            }
        })
        .collect())
}
