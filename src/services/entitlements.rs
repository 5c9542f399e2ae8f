//! Entitlements: what a verified caller may open (the entitlement decision over the
//! webhook-maintained state and the token's claims). Every gated surface (API, server
//! functions, SSR pages, the demo issuer) asks through it, with the caller's `billing::Account`
//! (built once per request at the edge). No HTTP type reaches this layer.
//!
//! Payer state is read through a short-lived cache: the check sits on every request and the
//! state changes only when a webhook commits. The inbox's commit hook empties the cache before
//! a delivery is acknowledged. On PostgreSQL other instances' commits arrive as notifications
//! (`services::invalidation`), and the cache answers only while the listening connection has
//! answered within `STALENESS_BOUND`: no entry older than that bound can have missed a change.
//! On SQLite (one instance per file) another process's writes (`plangate reconcile`) show
//! within `PAYER_CACHE_TTL`.

use std::{
    collections::HashMap,
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc, Mutex,
    },
    time::{Duration, Instant},
};

use crate::{
    billing::{
        self, current_item, current_plan, Access, Account, Catalog, Decision, ItemState, Payer,
        Policy,
    },
    db::{self, notify::Changed, now_ms, Db, DbError},
    metrics::Metrics,
};

/// How long a payer's state is kept on SQLite, where nothing announces another process's writes.
pub const PAYER_CACHE_TTL: Duration = Duration::from_secs(1);
/// How long it is kept on PostgreSQL, where every commit through plangate is announced: only a
/// write from outside plangate (an operator's SQL) waits this long.
pub const PAYER_CACHE_TTL_ANNOUNCED: Duration = Duration::from_secs(10);
/// How long a cached display name (a user's mail address) is shown.
pub const NAME_TTL: Duration = Duration::from_secs(60);
/// Names cached at most; past it the cache starts again.
const MAX_NAMES: usize = 10_000;
/// No instance serves a cached entitlement that may be older than this (README, "Several instances").
pub const STALENESS_BOUND: Duration = Duration::from_millis(250);

/// What a verified caller may open: the entitlement decision over the payer state (through
/// its cache) and the token's claims, the payer's current plan, and the cache's invalidation.
pub struct Entitlements {
    db: Db,
    payers: PayerCache,
    /// Users' mail addresses as the pages name people, for [`NAME_TTL`] (a display name may lag
    /// a `user.updated` by that long; every signed-in render reads it).
    names: std::sync::Mutex<HashMap<String, (Option<String>, Instant)>>,
    catalog: Arc<Catalog>,
    policy: Policy,
    metrics: Arc<Metrics>,
}

impl Entitlements {
    pub fn new(
        db: Db,
        catalog: Arc<Catalog>,
        policy: Policy,
        metrics: Arc<Metrics>,
    ) -> Entitlements {
        let payers = match db.engine {
            db::Engine::Sqlite => PayerCache::new(PAYER_CACHE_TTL, false),
            db::Engine::Postgres => PayerCache::new(PAYER_CACHE_TTL_ANNOUNCED, true),
        };
        Entitlements {
            db,
            payers,
            names: Default::default(),
            catalog,
            policy,
            metrics,
        }
    }

    pub fn catalog(&self) -> &Catalog {
        &self.catalog
    }

    /// The account's access through `gate_name`: may it open, and who pays for what it
    /// opened. An unknown gate opens for nobody.
    pub async fn access(&self, account: Account, gate_name: &str) -> Result<Access, DbError> {
        let decision = self.decision(&account, gate_name).await?;
        Ok(Access::new(account, decision))
    }

    /// The decision for `account` through `gate_name` (what [`Self::access`] wraps).
    pub async fn decision(&self, account: &Account, gate_name: &str) -> Result<Decision, DbError> {
        let now = now_ms();
        let none = || Arc::new(Vec::new());
        let user_items = match account.user() {
            Some(user) => self.items(user).await?,
            None => none(),
        };
        let org_items = match account.organization() {
            Some(org) => self.items(org).await?,
            None => none(),
        };
        let empty = billing::Gate::default();
        let gate = self.catalog.gate(gate_name).unwrap_or(&empty);
        // Clerk's auth object only for a gate that asks more than billing (built on demand: a
        // few strings the common path does without).
        let auth = gate
            .names_authorization()
            .then(|| account.auth_object())
            .flatten();
        let ev = account.evidence(
            current_item(&user_items, now),
            current_item(&org_items, now),
            auth.as_ref(),
        );
        let decision = billing::decide(&ev, &self.catalog, gate, now, self.policy);
        self.metrics
            .gate_decisions
            .with_label_values(&[if decision.allowed { "true" } else { "false" }])
            .inc();
        Ok(decision)
    }

    /// The user's mail address, as the pages show who is signed in (cached for [`NAME_TTL`]).
    pub async fn email(&self, user_id: &str) -> Result<Option<String>, DbError> {
        let now = Instant::now();
        if let Some((email, at)) = self.names.lock().expect("names").get(user_id) {
            // An address not known yet (its `user.*` webhook still on the way) is asked for again
            // sooner.
            let ttl = if email.is_some() {
                NAME_TTL
            } else {
                NAME_TTL / 12
            };
            if now.duration_since(*at) < ttl {
                return Ok(email.clone());
            }
        }
        let email = {
            let mut conn = self.db.conn().await?;
            db::users::get(&mut conn, user_id)
                .await?
                .and_then(|u| u.email)
        };
        let mut names = self.names.lock().expect("names");
        if names.len() >= MAX_NAMES {
            names.clear();
        }
        names.insert(user_id.to_string(), (email.clone(), now));
        Ok(email)
    }

    /// The payer's plan now (see `billing::current_plan`).
    pub async fn current_plan(&self, payer: &Payer) -> Result<Option<ItemState>, DbError> {
        let items = self.items(payer).await?;
        Ok(current_plan(&items, now_ms()).cloned())
    }

    async fn items(&self, payer: &Payer) -> Result<Items, DbError> {
        self.payers.items(&self.db, payer).await
    }

    /// Drops every cached payer state: called when a commit changed subscription state, and
    /// when the listening connection is lost or (re)established.
    pub fn invalidate(&self) {
        self.payers.clear();
    }

    /// Drops what another instance's commit changed.
    pub fn forget(&self, changed: &Changed) {
        match changed {
            Changed::All => self.payers.clear(),
            Changed::Payers(keys) => self.payers.remove(keys),
        }
    }

    /// Every notification committed before `sent` has been applied: the cache may answer
    /// until `sent + STALENESS_BOUND`.
    pub fn confirm(&self, sent: Instant) {
        self.payers.confirm(sent);
    }
}

type Items = Arc<Vec<ItemState>>;

struct PayerCache {
    map: Mutex<HashMap<Payer, (Instant, Items)>>,
    /// Bumped on every clear or removal, so a read that raced a commit is not stored.
    generation: AtomicU64,
    ttl: Duration,
    /// Present when other instances' commits are announced: the cache answers only while the
    /// announcements are confirmed up to date.
    freshness: Option<Freshness>,
}

/// When the listening connection last proved that every announcement before it was applied.
struct Freshness {
    base: Instant,
    /// Milliseconds after `base`, plus one (0 = never).
    confirmed: AtomicU64,
}

impl Freshness {
    fn fresh(&self, now: Instant) -> bool {
        let confirmed = self.confirmed.load(Ordering::Acquire);
        if confirmed == 0 {
            return false;
        }
        let at = self.base + Duration::from_millis(confirmed - 1);
        now.saturating_duration_since(at) < STALENESS_BOUND
    }
}

impl PayerCache {
    fn new(ttl: Duration, announced: bool) -> PayerCache {
        PayerCache {
            map: Mutex::new(HashMap::new()),
            generation: AtomicU64::new(0),
            ttl,
            freshness: announced.then(|| Freshness {
                base: Instant::now(),
                confirmed: AtomicU64::new(0),
            }),
        }
    }

    fn confirm(&self, sent: Instant) {
        if let Some(f) = &self.freshness {
            let ms = sent.saturating_duration_since(f.base).as_millis() as u64 + 1;
            f.confirmed.fetch_max(ms, Ordering::AcqRel);
        }
    }

    async fn items(&self, db: &Db, payer: &Payer) -> Result<Items, DbError> {
        if let Some(items) = self.cached(payer, Instant::now()) {
            return Ok(items);
        }
        let generation = self.generation.load(Ordering::Acquire);
        let read = async {
            let mut conn = db.conn().await?;
            db::items::for_payer(&mut conn, payer).await
        };
        let items = match read.await {
            Ok(items) => Arc::new(items),
            Err(e) => {
                // Let the next request try again rather than serve the old state longer.
                if let Ok(mut m) = self.map.lock() {
                    m.remove(payer);
                }
                return Err(e);
            }
        };
        if let Ok(mut m) = self.map.lock() {
            if self.generation.load(Ordering::Acquire) == generation {
                if m.len() > 50_000 {
                    m.clear();
                }
                m.insert(payer.clone(), (Instant::now(), items.clone()));
            }
        }
        Ok(items)
    }

    /// The stored items while fresh. The first caller to find them expired gets `None` and
    /// reads the database; until it stores the result, the others keep getting the stored
    /// items: one query per payer per TTL instead of one per request in flight at expiry.
    fn cached(&self, key: &Payer, now: Instant) -> Option<Items> {
        if self.freshness.as_ref().is_some_and(|f| !f.fresh(now)) {
            return None;
        }
        let mut m = self.map.lock().ok()?;
        let (at, items) = m.get_mut(key)?;
        if now.saturating_duration_since(*at) < self.ttl {
            return Some(items.clone());
        }
        *at = now;
        None
    }

    fn clear(&self) {
        if let Ok(mut m) = self.map.lock() {
            self.generation.fetch_add(1, Ordering::AcqRel);
            m.clear();
        }
    }

    fn remove(&self, keys: &[Payer]) {
        if let Ok(mut m) = self.map.lock() {
            self.generation.fetch_add(1, Ordering::AcqRel);
            for key in keys {
                m.remove(key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_caller_refreshes_an_expired_payer_while_the_others_keep_the_stored_state() {
        let cache = PayerCache::new(PAYER_CACHE_TTL, false);
        let key = Payer::user("user_1");
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

    fn store(cache: &PayerCache, key: &Payer, at: Instant) -> Items {
        let items: Items = Arc::new(Vec::new());
        cache
            .map
            .lock()
            .unwrap()
            .insert(key.clone(), (at, items.clone()));
        items
    }

    #[test]
    fn an_announced_cache_answers_only_within_the_bound_of_its_last_confirmation() {
        let cache = PayerCache::new(PAYER_CACHE_TTL_ANNOUNCED, true);
        let key = Payer::org("org_1");
        let t0 = Instant::now();
        store(&cache, &key, t0);
        assert!(
            cache.cached(&key, t0).is_none(),
            "never confirmed: the database answers"
        );
        cache.confirm(t0);
        assert!(cache.cached(&key, t0 + STALENESS_BOUND / 2).is_some());
        assert!(
            cache
                .cached(&key, t0 + STALENESS_BOUND + Duration::from_millis(1))
                .is_none(),
            "the listening connection has not answered within the bound"
        );
        // An older confirmation arriving late does not move the bound back.
        cache.confirm(t0 + Duration::from_secs(5));
        cache.confirm(t0 + Duration::from_secs(1));
        let later = t0 + Duration::from_secs(5) + STALENESS_BOUND / 2;
        assert!(
            cache.cached(&key, later).is_some(),
            "confirmed again: answers, within the longer TTL of an announced cache"
        );
        cache.confirm(t0 + PAYER_CACHE_TTL_ANNOUNCED);
        assert!(
            cache
                .cached(
                    &key,
                    t0 + PAYER_CACHE_TTL_ANNOUNCED + Duration::from_millis(1)
                )
                .is_none(),
            "fresh, but older than the TTL"
        );
    }

    /// Exactly at the bound (and exactly at the TTL) the cache no longer answers.
    #[test]
    fn the_bound_and_the_ttl_are_exclusive() {
        let cache = PayerCache::new(PAYER_CACHE_TTL_ANNOUNCED, true);
        let base = cache.freshness.as_ref().unwrap().base;
        let key = Payer::user("user_b");
        let t0 = base + Duration::from_millis(10);
        store(&cache, &key, t0);
        cache.confirm(t0);
        assert!(cache
            .cached(&key, t0 + STALENESS_BOUND - Duration::from_millis(1))
            .is_some());
        assert!(cache.cached(&key, t0 + STALENESS_BOUND).is_none());
        let plain = PayerCache::new(PAYER_CACHE_TTL, false);
        store(&plain, &key, t0);
        assert!(plain
            .cached(&key, t0 + PAYER_CACHE_TTL - Duration::from_millis(1))
            .is_some());
        assert!(plain.cached(&key, t0 + PAYER_CACHE_TTL).is_none());
    }

    #[test]
    fn an_announcement_drops_only_the_payers_it_names() {
        let cache = PayerCache::new(PAYER_CACHE_TTL, false);
        let (a, b) = (Payer::user("user_a"), Payer::user("user_b"));
        let t0 = Instant::now();
        store(&cache, &a, t0);
        store(&cache, &b, t0);
        cache.remove(std::slice::from_ref(&a));
        assert!(cache.cached(&a, t0).is_none());
        assert!(cache.cached(&b, t0).is_some());
    }
}
