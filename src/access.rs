//! Glue between a verified session, the webhook-maintained state and the entitlement decision.
//! Every gated surface (API, server functions, SSR pages) goes through `check`.
//!
//! Payer state is read through a short-lived cache: the gate sits on every request and the
//! state changes only when a webhook commits. This instance's writer clears the cache on every
//! commit; another instance's commits show here within `PAYER_CACHE_TTL` (plus one read).

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
        if let Some(items) = self.cached(&key, Instant::now()) {
            return Ok(items);
        }
        let generation = self.generation.load(Ordering::Acquire);
        let read = async {
            let mut conn = db.conn().await?;
            db::items::for_payer(&mut conn, kind, id).await
        };
        let items = match read.await {
            Ok(items) => Arc::new(items),
            Err(e) => {
                // Let the next request try again rather than serve the old state longer.
                if let Ok(mut m) = self.map.lock() {
                    m.remove(&key);
                }
                return Err(e);
            }
        };
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

    /// The stored items while fresh. The first caller to find them expired gets `None` and
    /// reads the database; until it stores the result, the others keep getting the stored
    /// items: one query per payer per TTL instead of one per request in flight at expiry.
    fn cached(&self, key: &(PayerKind, String), now: Instant) -> Option<Items> {
        let mut m = self.map.lock().ok()?;
        let (at, items) = m.get_mut(key)?;
        if now.saturating_duration_since(*at) < PAYER_CACHE_TTL {
            return Some(items.clone());
        }
        *at = now;
        None
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_caller_refreshes_an_expired_payer_while_the_others_keep_the_stored_state() {
        let cache = PayerCache::default();
        let key = (PayerKind::User, "user_1".to_string());
        let t0 = Instant::now();
        assert!(cache.cached(&key, t0).is_none(), "nothing stored yet");
        let stored: Items = Arc::new(Vec::new());
        cache
            .map
            .lock()
            .unwrap()
            .insert(key.clone(), (t0, stored.clone()));
        let fresh = cache.cached(&key, t0 + PAYER_CACHE_TTL / 2).unwrap();
        assert!(Arc::ptr_eq(&fresh, &stored));

        let expired = t0 + PAYER_CACHE_TTL + Duration::from_millis(1);
        assert!(
            cache.cached(&key, expired).is_none(),
            "the first caller reads"
        );
        let meanwhile = cache.cached(&key, expired + Duration::from_millis(2));
        assert!(
            meanwhile.is_some_and(|i| Arc::ptr_eq(&i, &stored)),
            "the others are answered from the stored state while it reads"
        );

        cache.clear();
        assert!(
            cache.cached(&key, expired).is_none(),
            "a commit on this instance empties the cache"
        );
    }
}
