//! Glue between a verified session, the webhook-maintained state and the entitlement decision.
//! Every gated surface (API, server functions, SSR pages) goes through `check`.
//!
//! Payer state is read through a short-lived cache: the gate sits on every request and the
//! state changes only when a webhook commits. This instance's writer clears the cache on every
//! commit; another instance's commits show here within `PAYER_CACHE_TTL`.

use std::{
    collections::HashMap,
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc, Mutex,
    },
    time::{Duration, Instant},
};

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

pub const PAYER_CACHE_TTL: Duration = Duration::from_secs(1);

type Items = Arc<Vec<ItemState>>;

#[derive(Default)]
pub struct PayerCache {
    map: Mutex<HashMap<(PayerKind, String), (Instant, Items)>>,
    /// Bumped on every clear, so a read that raced a commit is not stored.
    generation: AtomicU64,
}

impl PayerCache {
    pub async fn items(
        &self,
        db: &crate::db::Db,
        kind: PayerKind,
        id: &str,
    ) -> Result<Items, DbError> {
        let key = (kind, id.to_string());
        if let Some((at, items)) = self.map.lock().ok().and_then(|m| m.get(&key).cloned()) {
            if at.elapsed() < PAYER_CACHE_TTL {
                return Ok(items);
            }
        }
        let generation = self.generation.load(Ordering::Acquire);
        let mut conn = db.conn().await?;
        let items = Arc::new(db::items::for_payer(&mut conn, kind, id).await?);
        if let Ok(mut m) = self.map.lock() {
            if self.generation.load(Ordering::Acquire) == generation {
                if m.len() > 50_000 {
                    m.clear();
                }
                m.insert(key, (Instant::now(), items.clone()));
            }
        }
        Ok(items)
    }

    /// Called after a commit that changed subscription state.
    pub fn clear(&self) {
        if let Ok(mut m) = self.map.lock() {
            self.generation.fetch_add(1, Ordering::AcqRel);
            m.clear();
        }
    }
}

pub async fn check(
    state: &AppState,
    session: &Session,
    gate_name: &str,
) -> Result<Access, DbError> {
    let now = now_ms();
    let user_items = state
        .payers
        .items(&state.db, PayerKind::User, &session.user_id)
        .await?;
    let org_items = match &session.org_id {
        Some(org) => state.payers.items(&state.db, PayerKind::Org, org).await?,
        None => Arc::new(Vec::new()),
    };
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
