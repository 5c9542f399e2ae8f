//! A payer's billing as the billing page and `GET /api/billing` show it (README, "Billing
//! page"): the item whose plan applies now and the payment history, newest first.

use crate::{
    billing::{payments::PaymentAttempt, ItemState, PayerKind},
    db::{self, Db, DbError},
};

use super::Entitlements;

/// How many payment attempts the page and the API list.
pub const HISTORY: i64 = 50;

#[derive(Debug, Clone)]
pub struct Billing {
    pub kind: PayerKind,
    pub id: String,
    /// The item whose plan applies now (none: no subscription stored).
    pub item: Option<ItemState>,
    pub payments: Vec<PaymentAttempt>,
}

impl Billing {
    pub async fn of(
        db: &Db,
        entitlements: &Entitlements,
        kind: PayerKind,
        id: &str,
    ) -> Result<Billing, DbError> {
        Ok(Billing {
            kind,
            id: id.to_string(),
            item: entitlements.current_plan(kind, id).await?,
            payments: db::payments::for_payer(&db.pool, kind, id, HISTORY).await?,
        })
    }

    /// `GET /api/billing`'s shape for this payer.
    pub fn json(&self) -> serde_json::Value {
        let item = self.item.as_ref();
        serde_json::json!({
            "payer": format!("{}:{}", self.kind.as_str(), self.id),
            "plan": item.map(|i| i.plan_slug.as_str()),
            "status": item.map(|i| i.status.as_str()),
            "period_end": item.and_then(|i| i.period_end),
            "free_trial_ends_at": item.filter(|i| i.is_free_trial).and_then(|i| i.period_end),
            "payments": self.payments.iter().map(|p| serde_json::json!({
                "id": p.id,
                "status": p.status.as_str(),
                "amount": p.amount,
                "currency": p.currency,
                "at": p.at,
                "charge_type": p.charge_type,
                "failed_reason": p.failed_code,
                "card": p.card.as_ref().map(|c| serde_json::json!({"brand": c.brand, "last4": c.last4})),
            })).collect::<Vec<_>>(),
        })
    }
}
