//! A payer's billing as the billing page and `GET /api/billing` show it (README, "Billing
//! page"): the item whose plan applies now, its summary in words, and the payment history,
//! newest first.

use crate::{
    billing::{payments::PaymentAttempt, ItemState, Payer, PlanFacts, PlanSummary},
    db::{self, Db, DbError},
};

use super::Entitlements;

/// How many payment attempts the page and the API list.
pub const HISTORY: i64 = 50;

#[derive(Debug, Clone)]
pub struct Billing {
    pub payer: Payer,
    /// The item whose plan applies now (none: no subscription stored).
    pub item: Option<ItemState>,
    /// The plan now, in words.
    pub summary: PlanSummary,
    pub payments: Vec<PaymentAttempt>,
}

impl Billing {
    pub async fn of(
        db: &Db,
        entitlements: &Entitlements,
        payer: &Payer,
    ) -> Result<Billing, DbError> {
        let item = entitlements.current_plan(payer).await?;
        let summary = PlanSummary::of(entitlements.catalog(), PlanFacts::of_item(item.as_ref()));
        Ok(Billing {
            payer: payer.clone(),
            item,
            summary,
            payments: db::payments::for_payer(&db.pool, payer, HISTORY).await?,
        })
    }

    /// `GET /api/billing`'s shape for this payer: the stored facts, and the summary's words.
    pub fn json(&self) -> serde_json::Value {
        let item = self.item.as_ref();
        let s = &self.summary;
        serde_json::json!({
            "payer": self.payer.label(),
            "plan": s.slug,
            "status": s.status.map(|s| s.as_str()),
            "period_end": item.and_then(|i| i.period_end),
            "free_trial_ends_at": item.filter(|i| i.is_free_trial).and_then(|i| i.period_end),
            "plan_name": s.name,
            "price": s.price,
            "status_words": s.status_words,
            "date_line": s.date_line,
            "paid": s.paid,
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
