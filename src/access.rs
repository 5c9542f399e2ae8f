//! Glue between a verified session, the webhook-maintained state and the entitlement decision.
//! Every gated surface (API, server functions, SSR pages) goes through `check`.

use crate::{
    auth::Session,
    billing::{
        self,
        subscription::{current_item, PayerKind},
        Decision, Evidence, ItemState, Policy,
    },
    db::{self, now_ms, DbError},
    state::AppState,
};

pub struct Access {
    pub decision: Decision,
    pub user_item: Option<ItemState>,
    pub org_item: Option<ItemState>,
}

pub async fn check(
    state: &AppState,
    session: &Session,
    gate_name: &str,
) -> Result<Access, DbError> {
    let now = now_ms();
    let mut conn = state.db.pool.acquire().await?;
    let user_items = db::items::for_payer(&mut conn, PayerKind::User, &session.user_id).await?;
    let org_items = match &session.org_id {
        Some(org) => db::items::for_payer(&mut conn, PayerKind::Org, org).await?,
        None => Vec::new(),
    };
    drop(conn);
    let user_item = current_item(&user_items, now).cloned();
    let org_item = current_item(&org_items, now).cloned();
    let ev = Evidence {
        user_item: user_item.as_ref(),
        org_item: org_item.as_ref(),
        active_org: session.org_id.is_some(),
        token_plan: session.token_plan.clone(),
        token_features: session.features.clone(),
        token_iat_ms: session.iat_ms,
    };
    let empty = billing::Gate::default();
    let gate = state.catalog.gate(gate_name).unwrap_or(&empty);
    let decision = billing::decide(
        &ev,
        &state.catalog,
        gate,
        now,
        Policy::with_grace_days(state.config.past_due_grace_days),
    );
    Ok(Access {
        decision,
        user_item,
        org_item,
    })
}
