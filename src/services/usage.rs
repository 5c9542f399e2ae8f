//! Usage limits (README, "Usage limits"): metered features spent per payer and billing period,
//! exact across instances and crashes, without a database round trip per request.
//!
//! The database hands out units in blocks (`db::usage::reserve`: one atomic statement, a share
//! of what remains, single units near the limit) and each instance spends its block in memory
//! under a per-counter lock. Every unit spent was handed out first, and the database never hands
//! out more than the allowance, so no number of instances can spend more. Unspent units go back
//! every `SETTLE_EVERY` and at shutdown; a crashed instance's held units stay counted as used,
//! which is all a crash costs (at most `MAX_BLOCK` units per payer and feature it was serving).
//!
//! A counter is the payer's units of one *counting* period (`billing::usage::counting_period`):
//! only a renewal starts a new one, so a plan switch or a moved end keeps what was used. A
//! refusal at the limit is remembered per counter for `REFUSAL_FRESH_MS` and answered from
//! memory meanwhile, so a client retrying at its limit is no load on the database.

use std::{
    collections::{HashMap, HashSet},
    sync::{Arc, Mutex},
    time::Duration,
};

use tokio::sync::Notify;

use crate::{
    billing::{
        usage::{
            self, alerts_due, allowance, counting_period, period_at, Block, Exhausted, Period,
        },
        Access, Account, Catalog, Limit, Payer,
    },
    clerk_api::ClerkApi,
    db::{
        self,
        usage::{CounterKey, Grant, UNLIMITED},
        Db, DbError,
    },
    metrics::Metrics,
};

/// The clock usage reads (ms since the epoch): `db::now_ms`, or a test's.
pub type Clock = Arc<dyn Fn() -> i64 + Send + Sync>;

/// How often unspent units are given back, so another instance can spend them.
pub const SETTLE_EVERY: Duration = Duration::from_secs(1);
/// How long an alert with no address to mail waits before its address is looked for again.
const NO_ADDRESS_RETRY_MS: i64 = 10 * 60 * 1000;
/// How long a counter refused at its limit is remembered unused.
const FORGET_REFUSALS_MS: i64 = 60_000;

/// A metered answer's standing: what the `RateLimit-*` headers say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Meter {
    pub feature: String,
    /// The plan's limit plus granted units; `None` when unlimited.
    pub allowance: Option<u64>,
    pub remaining: Option<u64>,
    pub period: Period,
    /// Seconds until the period ends (the counter resets).
    pub reset_secs: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum UsageError {
    /// No units left this period: nothing was spent.
    #[error("the limit of {} is reached for this period", .0.feature)]
    Limited(Meter),
    /// The plan that opened the gate is not in `PLANS_FILE`: nothing is known to meter by.
    #[error("plan `{0}` is not configured in PLANS_FILE")]
    PlanNotConfigured(String),
    #[error(transparent)]
    Db(#[from] DbError),
}

/// One feature of `GET /api/usage`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeatureUsage {
    pub feature: String,
    pub limit: Option<u64>,
    pub used: u64,
    pub remaining: Option<u64>,
}

/// A payer's usage this period.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    pub payer: Payer,
    pub period: Period,
    pub features: Vec<FeatureUsage>,
}

/// This instance's units of one counter: the block it spends, and the next one, reserved
/// ahead while the first runs down so that no request waits for the database.
#[derive(Debug, Default)]
struct Local {
    block: Option<Block>,
    next: Option<Block>,
    refilling: bool,
    /// Whether `counting` was read from the database since this counter was made here.
    resolved: bool,
    /// The period of the payer's newest counter of this feature, as this instance last saw it:
    /// what a plan switch or a moved end keeps counting in (`usage::counting_period`).
    counting: Option<Period>,
    /// The database's last "nothing left", answered from memory while fresh.
    exhausted: Option<Exhausted>,
}

impl Local {
    /// Spends from the block, or from the next one once the block is used up.
    fn spend(&mut self, period: Period, limit: Option<u64>, units: u64) -> Option<(u64, Block)> {
        let serves = |b: &Block| b.serves(period, limit);
        if let Some(b) = self.block.as_mut().filter(|b| serves(b)) {
            if let Some(last) = b.take(units) {
                return Some((last, *b));
            }
        }
        // Promoted only over a block with nothing of this counter left to give back.
        let spent_out = self
            .block
            .is_none_or(|b| !b.same_counter(period) || b.unspent() == 0);
        if spent_out && self.next.is_some_and(|n| serves(&n)) {
            self.block = self.next.take();
            let b = self.block.as_mut()?;
            return b.take(units).map(|last| (last, *b));
        }
        None
    }

    /// `spend`, with what the meter shows and whether to reserve the next block.
    fn spend_to(&mut self, period: Period, limit: Option<u64>, units: u64) -> Option<Spent> {
        let (last, block) = self.spend(period, limit, units)?;
        let handed_out = self
            .next
            .map_or(block.handed_out, |n| n.handed_out.max(block.handed_out));
        let remaining = usage::remaining(block.allowance, handed_out, self.held(period));
        let refill = block.wants_next() && self.next.is_none() && !self.refilling;
        if refill {
            self.refilling = true;
        }
        Some(Spent {
            last,
            block,
            remaining,
            refill,
        })
    }

    /// Units held here for the counter of `period`, in both blocks.
    fn held(&self, period: Period) -> u64 {
        [self.block, self.next]
            .iter()
            .flatten()
            .filter(|b| b.same_counter(period))
            .map(Block::unspent)
            .sum()
    }

    /// The period a request whose item period is `current` counts in, once resolved.
    fn counting(&self, current: Period) -> Option<Period> {
        self.resolved
            .then(|| counting_period(self.counting, current))
    }

    /// The remembered refusal for `period` and `limit`, if any (`fresh_at`: only one younger
    /// than [`usage::REFUSAL_FRESH_MS`] at that time).
    fn refusal(
        &self,
        period: Period,
        limit: Option<u64>,
        fresh_at: Option<i64>,
    ) -> Option<Exhausted> {
        self.exhausted
            .filter(|e| e.covers(period, limit) && fresh_at.is_none_or(|now| e.fresh(now)))
    }
}

/// One counter's units here: spent under a plain lock (never held across an await, so a hot
/// payer's requests do not queue through the scheduler), refilled from the database by one
/// request at a time under the async `refill` lock.
#[derive(Debug, Default)]
struct Counter {
    local: Mutex<Local>,
    refill: tokio::sync::Mutex<()>,
}

impl Counter {
    fn local(&self) -> std::sync::MutexGuard<'_, Local> {
        self.local.lock().unwrap_or_else(|e| e.into_inner())
    }
}

type Slot = Arc<Counter>;

/// A spend: the number of the last unit, the block it came from, and what the meter shows.
struct Spent {
    last: u64,
    block: Block,
    remaining: Option<u64>,
    /// The block is half spent and nothing is on its way: reserve the next one.
    refill: bool,
}

/// A block from the database under the plan's `limit` (`None` unlimited), giving back `held`.
async fn reserve(
    db: &Db,
    key: &CounterKey,
    period: Period,
    limit: Option<u64>,
    held: u64,
    want: u64,
) -> Result<Option<Grant>, DbError> {
    db::usage::reserve(
        &db.pool,
        db.engine,
        key,
        period,
        limit.map_or(UNLIMITED, |l| i64::try_from(l).unwrap_or(UNLIMITED)),
        i64::try_from(held).unwrap_or(0),
        i64::try_from(want).unwrap_or(i64::MAX),
    )
    .await
}

/// Counts of unlimited features not yet written, by counter and period.
type Tally = HashMap<(CounterKey, Period), u64>;

/// Who asked, for a refusal remembered by caller: the caller, the active organization, the
/// feature.
type CallerKey = (Payer, Option<Payer>, String);

fn caller_key(account: &Account, feature: &str) -> CallerKey {
    (
        account.caller.clone(),
        account.org.clone(),
        feature.to_string(),
    )
}

pub struct Usage {
    db: Db,
    catalog: Arc<Catalog>,
    metrics: Arc<Metrics>,
    mail_notify: Arc<Notify>,
    pricing_url: String,
    clock: Clock,
    /// Where an alert's address comes from when no `user.*` event gave one.
    clerk: Option<Arc<ClerkApi>>,
    /// Plans Clerk named that `PLANS_FILE` lacks, logged once each.
    unconfigured: Mutex<HashSet<String>>,
    /// The counter each caller was last refused on: with the database unreachable, their next
    /// request is still refused from memory (`refusal_from_memory`).
    refused: Mutex<HashMap<CallerKey, CounterKey>>,
    blocks: Mutex<HashMap<CounterKey, Slot>>,
    /// Unlimited features are only counted: in memory, written every `SETTLE_EVERY` (a crash
    /// forgets at most that second's count; nothing is refused on it).
    tally: Mutex<Tally>,
    /// Alerts this instance already queued (the outbox's id keeps them once across instances),
    /// with the end of their period, after which they are forgotten.
    alerted: Mutex<HashMap<String, i64>>,
}

impl Usage {
    pub fn new(
        db: Db,
        catalog: Arc<Catalog>,
        metrics: Arc<Metrics>,
        mail_notify: Arc<Notify>,
        pricing_url: String,
        clock: Clock,
        clerk: Option<Arc<ClerkApi>>,
    ) -> Usage {
        Usage {
            db,
            catalog,
            metrics,
            mail_notify,
            pricing_url,
            clock,
            clerk,
            unconfigured: Mutex::new(HashSet::new()),
            refused: Mutex::new(HashMap::new()),
            blocks: Mutex::new(HashMap::new()),
            tally: Mutex::new(HashMap::new()),
            alerted: Mutex::new(HashMap::new()),
        }
    }

    /// The plan's limit on `feature` (`None` unlimited). A plan Clerk named that this file does
    /// not define is an error (logged once per plan): nothing is known to meter it by. No plan
    /// at all allows none.
    fn limit(&self, plan: Option<&str>, feature: &str) -> Result<Option<u64>, String> {
        let Some(slug) = plan else {
            return Ok(Some(0));
        };
        match self.catalog.plan(slug).map(|p| p.limit(feature)) {
            Some(Limit::Unlimited) => Ok(None),
            Some(Limit::Units(n)) => Ok(Some(n)),
            None => {
                let first = self
                    .unconfigured
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert(slug.to_string());
                if first {
                    tracing::error!(
                        plan = slug,
                        "Clerk names a plan that PLANS_FILE does not define: its metered features \
                         answer 403 plan_not_configured until it is added"
                    );
                }
                Err(slug.to_string())
            }
        }
    }

    /// Spends `units` of `feature` for the payer whose plan opened the gate (`access.payer`):
    /// the call every metered handler makes once its gate has allowed. With fewer than `units`
    /// left nothing is spent and the answer is `UsageError::Limited`. A request spends at
    /// least one unit (`0` counts as 1).
    pub async fn consume(
        &self,
        access: &Access,
        feature: &str,
        units: u64,
    ) -> Result<Meter, UsageError> {
        let units = units.max(1);
        let now = (self.clock)();
        let (payer, decision) = (&access.payer, &access.decision);
        let current = period_at(decision.period_start.zip(decision.period_end), now);
        let limit = self
            .limit(decision.plan.as_deref(), feature)
            .map_err(UsageError::PlanNotConfigured)?;
        let key = CounterKey {
            payer: payer.clone(),
            feature: feature.to_string(),
        };
        let meter = |period: Period, allowance: Option<u64>, remaining: Option<u64>| Meter {
            feature: feature.to_string(),
            allowance,
            remaining,
            period,
            reset_secs: period.seconds_left(now),
        };
        if limit.is_none() {
            *self
                .tally
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .entry((key, current))
                .or_default() += units;
            self.consumed(feature, units);
            return Ok(meter(current, None, None));
        }
        let slot = self.slot(&key);
        let refused = |e: Exhausted| {
            // Remembered on refusals only (a spend clears the counter's refusal, which is what
            // `refusal_from_memory` reads): nothing is built or locked for this on a spend.
            self.refused
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(caller_key(&access.account, feature), key.clone());
            self.metrics
                .usage_limited
                .with_label_values(&[feature])
                .inc();
            UsageError::Limited(meter(e.period, e.allowance, e.allowance.map(|_| 0)))
        };
        // From memory: a spend, or a refusal the database gave less than a moment ago.
        let fast = {
            let mut l = slot.local();
            match l.counting(current) {
                Some(period) => match l.spend_to(period, limit, units) {
                    Some(spent) => Ok((period, spent)),
                    None => Err(l.refusal(period, limit, Some(now))),
                },
                None => Err(None),
            }
        };
        let (period, spent) = match fast {
            Ok(found) => found,
            Err(Some(e)) => return Err(refused(e)),
            Err(None) => {
                // One request at a time asks the database. While one is asking, a refusal it
                // gave before answers the others (a database that stopped answering cannot
                // turn refusals into waits); without one they wait and spend what it brings.
                let _refill = match slot.refill.try_lock() {
                    Ok(guard) => guard,
                    Err(_) => {
                        let remembered = {
                            let l = slot.local();
                            l.counting(current).and_then(|p| l.refusal(p, limit, None))
                        };
                        if let Some(e) = remembered {
                            return Err(refused(e));
                        }
                        slot.refill.lock().await
                    }
                };
                match self
                    .spend_or_reserve(&slot, &key, current, limit, units, now)
                    .await
                {
                    Ok(Ok(found)) => found,
                    Ok(Err(e)) => {
                        if let Some(a) = e.allowance {
                            self.alert(access, feature, e.period, a, a).await;
                        }
                        return Err(refused(e));
                    }
                    Err(err) => {
                        // Nothing could be asked: a refusal remembered for this counter still
                        // stands (refusing is always safe), asked again in a moment.
                        let mut l = slot.local();
                        let remembered =
                            l.counting(current).and_then(|p| l.refusal(p, limit, None));
                        return match remembered {
                            Some(e) => {
                                if let Some(x) = l.exhausted.as_mut() {
                                    x.at = now;
                                }
                                drop(l);
                                Err(refused(e))
                            }
                            None => Err(UsageError::Db(err)),
                        };
                    }
                }
            }
        };
        if spent.refill {
            self.refill(slot.clone(), key, period, limit);
        }
        self.consumed(feature, units);
        if let Some(a) = spent.block.allowance {
            self.alert(access, feature, period, a, spent.last).await;
        }
        Ok(meter(period, spent.block.allowance, spent.remaining))
    }

    /// With the refill lock held: the counting period resolved (from the database the first
    /// time), then a spend from what another request just brought, a fresh refusal, or a new
    /// block. `Ok(Err(_))` is the database's "nothing left", remembered.
    async fn spend_or_reserve(
        &self,
        slot: &Counter,
        key: &CounterKey,
        current: Period,
        limit: Option<u64>,
        units: u64,
        now: i64,
    ) -> Result<Result<(Period, Spent), Exhausted>, DbError> {
        let resolved = slot.local().resolved;
        if !resolved {
            let last = db::usage::latest_period(&self.db.pool, key).await?;
            let mut l = slot.local();
            if !l.resolved {
                l.counting = last;
                l.resolved = true;
            }
        }
        let period = {
            let mut l = slot.local();
            let period = counting_period(l.counting, current);
            if let Some(spent) = l.spend_to(period, limit, units) {
                return Ok(Ok((period, spent)));
            }
            if let Some(e) = l.refusal(period, limit, Some(now)) {
                return Ok(Err(e));
            }
            period
        };
        let spent = self.reserve_now(slot, key, period, limit, units).await?;
        let mut l = slot.local();
        l.counting = Some(period);
        Ok(match spent {
            Some(spent) => {
                l.exhausted = None;
                Ok((period, spent))
            }
            None => {
                let e = Exhausted {
                    period,
                    limit,
                    allowance: l
                        .block
                        .filter(|b| b.serves(period, limit))
                        .map_or(limit, |b| b.allowance),
                    at: now,
                };
                l.exhausted = Some(e);
                Err(e)
            }
        })
    }

    /// A refusal this instance remembers for the caller's last refused counter of `feature`,
    /// whatever its age: what a metered request is answered when the database cannot be asked
    /// who pays (a refusal is always safe; an answer never comes from it).
    pub fn refusal_from_memory(&self, account: &Account, feature: &str) -> Option<Meter> {
        let key = self
            .refused
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&caller_key(account, feature))
            .cloned()?;
        let slot = self
            .blocks
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&key)
            .cloned()?;
        let e = slot.local().exhausted?;
        let now = (self.clock)();
        self.metrics
            .usage_limited
            .with_label_values(&[feature])
            .inc();
        Some(Meter {
            feature: feature.to_string(),
            allowance: e.allowance,
            remaining: e.allowance.map(|_| 0),
            period: e.period,
            reset_secs: e.period.seconds_left(now),
        })
    }

    /// Reserves a block now (the caller holds the refill lock), giving back in the same step
    /// the units of this counter still held here (a plan change, or an end that moved, within
    /// the period). They are taken out of the counter first, so that no request spends what is
    /// being given back, and put back if the database refuses or fails. Units held for another
    /// counter (the period before a renewal) go back to theirs.
    async fn reserve_now(
        &self,
        slot: &Counter,
        key: &CounterKey,
        period: Period,
        limit: Option<u64>,
        units: u64,
    ) -> Result<Option<Spent>, DbError> {
        let (old_block, old_next) = {
            let mut l = slot.local();
            (l.block.take(), l.next.take())
        };
        let old = Local {
            block: old_block,
            next: old_next,
            ..Local::default()
        };
        let held = old.held(period);
        let restore = |slot: &Counter| {
            let mut l = slot.local();
            if l.block.is_none() && l.next.is_none() {
                l.block = old_block;
                l.next = old_next;
            }
        };
        let grant = match reserve(&self.db, key, period, limit, held, units).await {
            Ok(Some(g)) => g,
            Ok(None) => {
                restore(slot);
                return Ok(None);
            }
            Err(e) => {
                restore(slot);
                return Err(e);
            }
        };
        for b in [old_block, old_next]
            .into_iter()
            .flatten()
            .filter(|b| !b.same_counter(period) && b.unspent() > 0)
        {
            let units = i64::try_from(b.unspent()).unwrap_or(0);
            if let Err(e) = db::usage::give_back(&self.db.pool, key, b.period.start, units).await {
                tracing::warn!(error = %e, "units of an earlier period could not go back");
            }
        }
        let mut l = slot.local();
        l.block = Some(new_block(period, limit, grant));
        // Nothing else wrote the counter meanwhile: refills only fill `next` beside a block
        // that serves, and there was none.
        Ok(l.spend_to(period, limit, units))
    }

    fn consumed(&self, feature: &str, units: u64) {
        self.metrics
            .usage_consumed
            .with_label_values(&[feature])
            .inc_by(units);
    }

    /// Reserves the next block in the background; it becomes `next` if the block it follows
    /// is still the one in use, else it goes straight back.
    fn refill(&self, slot: Slot, key: CounterKey, period: Period, limit: Option<u64>) {
        let db = self.db.clone();
        tokio::spawn(async move {
            let grant = reserve(&db, &key, period, limit, 0, 1).await;
            let g = {
                let mut local = slot.local();
                local.refilling = false;
                let Ok(Some(g)) = grant else { return };
                let current = local.block.is_some_and(|b| b.serves(period, limit));
                if current && local.next.is_none() {
                    local.next = Some(new_block(period, limit, g));
                    return;
                }
                g
            };
            if let Err(e) = db::usage::give_back(&db.pool, &key, period.start, g.granted).await {
                tracing::warn!(error = %e, "a block reserved ahead could not go back");
            }
        });
    }

    fn slot(&self, key: &CounterKey) -> Slot {
        let mut map = self.blocks.lock().unwrap_or_else(|e| e.into_inner());
        match map.get(key) {
            Some(slot) => slot.clone(),
            None => map.entry(key.clone()).or_default().clone(),
        }
    }

    /// Units held here for `period` and not spent, and counts of an unlimited feature not yet
    /// written: what this instance knows that the database does not.
    fn unwritten(&self, key: &CounterKey, period: Period) -> (u64, u64) {
        let slot = {
            let map = self.blocks.lock().unwrap_or_else(|e| e.into_inner());
            map.get(key).cloned()
        };
        let held = slot.map_or(0, |s| s.local().held(period));
        // Unlimited counts not yet written are this period's (the tally is written every second).
        let counted = self
            .tally
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .filter(|((k, _), _)| k == key)
            .map(|(_, n)| *n)
            .sum();
        (held, counted)
    }

    /// Gives every unspent unit back to the database and writes the counts of unlimited
    /// features (every `SETTLE_EVERY`, and at shutdown), so that another instance can spend
    /// what this one holds. A counter being refilled is left for next time.
    pub async fn settle(&self) -> Result<(), DbError> {
        let now = (self.clock)();
        self.alerted
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|_, end| *end > now);
        let counts: Vec<((CounterKey, Period), u64)> = {
            let mut tally = self.tally.lock().unwrap_or_else(|e| e.into_inner());
            tally.drain().collect()
        };
        let mut failed = None;
        for ((key, current), n) in counts {
            let units = i64::try_from(n).unwrap_or(i64::MAX);
            // Counted where a limited feature would be: a plan switch keeps the count.
            let written = match db::usage::latest_period(&self.db.pool, &key).await {
                Ok(last) => {
                    let period = counting_period(last, current);
                    db::usage::count(&self.db.pool, &key, period, units).await
                }
                Err(e) => Err(e),
            };
            if let Err(e) = written {
                *self
                    .tally
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .entry((key, current))
                    .or_default() += n;
                failed = Some(e);
            }
        }
        let slots: Vec<(CounterKey, Slot)> = {
            let mut map = self.blocks.lock().unwrap_or_else(|e| e.into_inner());
            // Forget counters nobody is using, nothing is held for and no refusal was given
            // for in the last minute.
            map.retain(|_, slot| {
                let l = slot.local();
                Arc::strong_count(slot) > 1
                    || l.refilling
                    || l.next.is_some()
                    || l.block.is_some_and(|b| b.unspent() > 0)
                    || l.exhausted.is_some_and(|e| now - e.at < FORGET_REFUSALS_MS)
            });
            // Callers refused on a counter forgotten here are forgotten with it.
            self.refused
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .retain(|_, key| map.contains_key(key));
            map.iter().map(|(k, s)| (k.clone(), s.clone())).collect()
        };
        for (key, slot) in slots {
            // A counter being refilled is left for next time.
            let Ok(_refill) = slot.refill.try_lock() else {
                continue;
            };
            let (next, block) = {
                let mut l = slot.local();
                let next = l.next.take();
                let block = l.block.as_mut().map(|b| {
                    let unspent = *b;
                    b.handed_out = b.handed_out.saturating_sub(b.unspent());
                    b.end = b.next;
                    unspent
                });
                (next, block)
            };
            for b in [next, block]
                .into_iter()
                .flatten()
                .filter(|b| b.unspent() > 0)
            {
                let units = i64::try_from(b.unspent()).unwrap_or(0);
                db::usage::give_back(&self.db.pool, &key, b.period.start, units).await?;
            }
        }
        match failed {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// What the payer an access names used this period, under the plan and period it read.
    pub async fn report_for(&self, access: &Access) -> Result<Report, DbError> {
        let d = &access.decision;
        self.report(
            &access.payer,
            d.plan.as_deref(),
            d.period_start.zip(d.period_end),
        )
        .await
    }

    /// What `payer` used this period, for `GET /api/usage` and `plangate usage`: every metered
    /// feature, under the limits of `plan`, in the period its units count in.
    pub async fn report(
        &self,
        payer: &Payer,
        plan: Option<&str>,
        item_period: Option<(i64, i64)>,
    ) -> Result<Report, DbError> {
        let current = period_at(item_period, (self.clock)());
        let counters = db::usage::latest(&self.db.pool, payer).await?;
        let newest = counters.iter().map(|c| c.period).max_by_key(|p| p.start);
        let period = counting_period(newest, current);
        let features = self
            .catalog
            .metered_features()
            .into_iter()
            .map(|feature| {
                let counter = counters
                    .iter()
                    .find(|c| c.feature == feature && c.period.start == period.start);
                let key = CounterKey {
                    payer: payer.clone(),
                    feature: feature.to_string(),
                };
                let handed_out = counter.map_or(0, |c| c.used.max(0) as u64);
                let granted = counter.map_or(0, |c| c.extra.max(0) as u64);
                let (held, counted) = self.unwritten(&key, period);
                let handed_out = handed_out + counted;
                let a = self
                    .limit(plan, feature)
                    .unwrap_or(Some(0))
                    .map(|l| allowance(Limit::Units(l), granted))
                    .unwrap_or(None);
                FeatureUsage {
                    feature: feature.to_string(),
                    limit: a,
                    used: handed_out.saturating_sub(held),
                    remaining: usage::remaining(a, handed_out, held),
                }
            })
            .collect();
        Ok(Report {
            payer: payer.clone(),
            period,
            features,
        })
    }

    /// Adds `units` of `feature` to what `payer` may use in the period its units count in now
    /// (an operator's grant): every instance sees it at its next look at the database, a payer
    /// refused at the limit within [`usage::REFUSAL_FRESH_MS`]. The units granted so far this
    /// period and the period's end.
    pub async fn grant(
        &self,
        payer: &Payer,
        item_period: Option<(i64, i64)>,
        feature: &str,
        units: u64,
    ) -> Result<(i64, i64), DbError> {
        let key = CounterKey {
            payer: payer.clone(),
            feature: feature.to_string(),
        };
        let current = period_at(item_period, (self.clock)());
        let last = db::usage::latest_period(&self.db.pool, &key).await?;
        let period = counting_period(last, current);
        let units = i64::try_from(units.min(usage::MAX_UNITS)).unwrap_or(0);
        let extra = db::usage::grant(&self.db.pool, &key, period, units).await?;
        // This instance asks again at once; the others within `REFUSAL_FRESH_MS`.
        let slot = self
            .blocks
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&key)
            .cloned();
        if let Some(slot) = slot {
            slot.local().exhausted = None;
        }
        Ok((extra, period.end))
    }

    /// Queues the 80 % and 100 % mails due once unit `last` of `allowance` is spent: one per
    /// payer, feature, period and threshold, by the outbox id, whichever instance gets there.
    #[allow(clippy::too_many_arguments)]
    async fn alert(
        &self,
        access: &Access,
        feature: &str,
        period: Period,
        allowance: u64,
        last: u64,
    ) {
        for pct in alerts_due(Some(allowance), last) {
            let id = format!(
                "usage:{}:{feature}:{}:{pct}",
                access.payer.label(),
                period.start
            );
            if self
                .alerted
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .contains_key(&id)
            {
                continue;
            }
            match self
                .queue_alert(&id, access, feature, period, allowance, pct)
                .await
            {
                // No address anywhere yet: asked again once the memo forgets it, not on every
                // unit (or refusal) meanwhile.
                Ok(false) => {
                    let again = (self.clock)() + NO_ADDRESS_RETRY_MS;
                    self.alerted
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .insert(id, again.min(period.end));
                }
                Ok(true) => {
                    self.alerted
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .insert(id, period.end);
                }
                // The next unit spent asks again.
                Err(e) => tracing::warn!(error = %e, "queueing a usage alert failed"),
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    async fn queue_alert(
        &self,
        id: &str,
        access: &Access,
        feature: &str,
        period: Period,
        allowance: u64,
        pct: u8,
    ) -> Result<bool, DbError> {
        // The payer's address; for an organization, the member whose request crossed the line.
        let Some(user) = access.account.user() else {
            tracing::warn!(payer = %access.payer, "usage alert but no user to mail");
            return Ok(false);
        };
        let stored = {
            let mut conn = self.db.conn().await?;
            db::users::get(&mut conn, &user.id)
                .await?
                .and_then(|u| u.email)
        };
        let to = match stored {
            Some(to) => to,
            None => match self.primary_address(&user.id).await {
                Some(to) => to,
                None => {
                    // Not queued: the next unit spent asks again.
                    tracing::warn!(user = %user.id, "usage alert but no address to mail");
                    return Ok(false);
                }
            },
        };
        let mut conn = self.db.conn().await?;
        let plan = access
            .decision
            .plan
            .as_deref()
            .and_then(|p| self.catalog.plan(p))
            .map_or_else(|| "your".to_string(), |p| format!("the {}", p.name));
        let (subject, body) = alert_mail(&plan, feature, pct, allowance, period, &self.pricing_url);
        if db::outbox::enqueue(&mut conn, id, &to, &subject, &body).await? {
            self.mail_notify.notify_one();
        }
        Ok(true)
    }
}

impl Usage {
    /// The user's primary address from Clerk's Backend API (`GET /v1/users/{id}`), when a key
    /// is configured: for a member no `user.*` event has told about yet.
    async fn primary_address(&self, user_id: &str) -> Option<String> {
        let api = self.clerk.as_ref()?;
        match api.user_primary_email(user_id).await {
            Ok(found) => found,
            Err(e) => {
                tracing::warn!(user = %user_id, error = %e, "the Backend API did not give the user's address");
                None
            }
        }
    }
}

fn new_block(period: Period, limit: Option<u64>, g: Grant) -> Block {
    let used = g.used.max(0) as u64;
    let granted = g.granted.max(0) as u64;
    Block {
        period,
        limit,
        allowance: limit.and_then(|l| allowance(Limit::Units(l), g.extra.max(0) as u64)),
        handed_out: used,
        size: granted,
        next: used - granted + 1,
        end: used + 1,
    }
}

/// The words of a usage alert.
pub fn alert_mail(
    plan: &str,
    feature: &str,
    pct: u8,
    allowance: u64,
    period: Period,
    pricing_url: &str,
) -> (String, String) {
    let name = crate::billing::plans::feature_words(feature);
    let resets = crate::billing::dates::day_in_words(period.end);
    if pct >= 100 {
        (
            format!("You have used all of your {name} this period"),
            format!(
                "Hello,\n\nYou have used all {allowance} units of {name} included in {plan} plan \
                 this period. Further requests are refused until the period resets on {resets}.\n\n\
                 To keep going now, move to a plan with a higher limit:\n{pricing_url}\n\n\
                 plangate billing\n"
            ),
        )
    } else {
        (
            format!("You have used {pct}% of your {name} this period"),
            format!(
                "Hello,\n\nYou have used {pct}% of the {allowance} units of {name} included in \
                 {plan} plan this period. The count resets on {resets}.\n\n\
                 If you need more, plans with higher limits are here:\n{pricing_url}\n\n\
                 plangate billing\n"
            ),
        )
    }
}
