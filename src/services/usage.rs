//! Usage limits (README, "Usage limits"): metered features spent per payer and billing period,
//! exact across instances and crashes, without a database round trip per request.
//!
//! The database hands out units in blocks (`db::usage::reserve`: one atomic statement, a share
//! of what remains, single units near the limit) and each instance spends its block in memory
//! under a per-counter lock. Every unit spent was handed out first, and the database never hands
//! out more than the allowance, so no number of instances can spend more. Unspent units go back
//! every `SETTLE_EVERY` and at shutdown; a crashed instance's held units stay counted as used,
//! which is all a crash costs (at most `MAX_BLOCK` units per payer and feature it was serving).

use std::{
    collections::{HashMap, HashSet},
    sync::{Arc, Mutex},
    time::Duration,
};

use tokio::sync::Notify;

use crate::{
    auth::Session,
    billing::{
        usage::{self, alerts_due, allowance, period_at, Block, Period},
        Catalog, Decision, Limit, PayerKind,
    },
    db::{
        self, now_ms,
        usage::{CounterKey, Grant, UNLIMITED},
        Db, DbError,
    },
    metrics::Metrics,
    page_data::format_date,
};

/// How often unspent units are given back, so another instance can spend them.
pub const SETTLE_EVERY: Duration = Duration::from_secs(1);

/// Who pays for a unit: the payer whose plan opened the gate.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Payer {
    pub kind: PayerKind,
    pub id: String,
}

impl Payer {
    /// The active organization for an organization plan, else the user.
    pub fn of(session: &Session, decision: &Decision) -> Payer {
        match (decision.scope, &session.org_id) {
            (Some(PayerKind::Org), Some(org)) => Payer {
                kind: PayerKind::Org,
                id: org.clone(),
            },
            _ => Payer {
                kind: PayerKind::User,
                id: session.user_id.clone(),
            },
        }
    }

    /// `user:<id>` / `org:<id>`.
    pub fn label(&self) -> String {
        format!("{}:{}", self.kind.as_str(), self.id)
    }
}

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

type Slot = Arc<tokio::sync::Mutex<Option<Block>>>;

pub struct Usage {
    db: Db,
    catalog: Arc<Catalog>,
    metrics: Arc<Metrics>,
    mail_notify: Arc<Notify>,
    pricing_url: String,
    blocks: Mutex<HashMap<CounterKey, Slot>>,
    /// Alerts this instance already queued (the outbox's id keeps them once across instances).
    alerted: Mutex<HashSet<String>>,
}

impl Usage {
    pub fn new(
        db: Db,
        catalog: Arc<Catalog>,
        metrics: Arc<Metrics>,
        mail_notify: Arc<Notify>,
        pricing_url: String,
    ) -> Usage {
        Usage {
            db,
            catalog,
            metrics,
            mail_notify,
            pricing_url,
            blocks: Mutex::new(HashMap::new()),
            alerted: Mutex::new(HashSet::new()),
        }
    }

    /// The plan's limit on `feature` (`None` unlimited); a plan this file does not define
    /// allows none.
    fn limit(&self, plan: Option<&str>, feature: &str) -> Option<u64> {
        match plan
            .and_then(|p| self.catalog.plan(p))
            .map(|p| p.limit(feature))
        {
            Some(Limit::Unlimited) => None,
            Some(Limit::Units(n)) => Some(n),
            None => Some(0),
        }
    }

    /// Spends `units` of `feature` for the payer whose plan opened the gate in `decision`:
    /// the call every metered handler makes once its gate has allowed. With fewer than `units`
    /// left nothing is spent and the answer is `UsageError::Limited`.
    pub async fn consume(
        &self,
        session: &Session,
        decision: &Decision,
        feature: &str,
        units: u64,
    ) -> Result<Meter, UsageError> {
        let now = now_ms();
        let payer = Payer::of(session, decision);
        let period = period_at(decision.period_start.zip(decision.period_end), now);
        let limit = self.limit(decision.plan.as_deref(), feature);
        let key = CounterKey {
            kind: payer.kind,
            payer_id: payer.id.clone(),
            feature: feature.to_string(),
        };
        let slot = self.slot(&key);
        let mut block = slot.lock().await;
        let mut spent = block
            .as_mut()
            .filter(|b| b.serves(period, limit))
            .and_then(|b| b.take(units));
        if spent.is_none() {
            // This counter's units still held here go back in the same step (a plan change
            // within the period); a block of another period is simply dropped.
            let held = block
                .as_ref()
                .filter(|b| b.period == period)
                .map_or(0, Block::unspent);
            let grant = db::usage::reserve(
                &self.db.pool,
                self.db.engine,
                &key,
                period,
                limit.map_or(UNLIMITED, |l| i64::try_from(l).unwrap_or(UNLIMITED)),
                i64::try_from(held).unwrap_or(0),
                i64::try_from(units).unwrap_or(i64::MAX),
            )
            .await?;
            match grant {
                Some(g) => {
                    let mut fresh = new_block(period, limit, g);
                    spent = fresh.take(units);
                    *block = Some(fresh);
                }
                None => {
                    let allowance = block
                        .as_ref()
                        .filter(|b| b.serves(period, limit))
                        .map_or(limit, |b| b.allowance);
                    drop(block);
                    self.metrics
                        .usage_limited
                        .with_label_values(&[feature])
                        .inc();
                    if let Some(a) = allowance {
                        self.alert(session, &payer, decision, feature, period, a, a)
                            .await;
                    }
                    return Err(UsageError::Limited(Meter {
                        feature: feature.to_string(),
                        allowance,
                        remaining: allowance.map(|_| 0),
                        period,
                        reset_secs: period.seconds_left(now),
                    }));
                }
            }
        }
        let b = (*block).expect("a block was just stored");
        drop(block);
        let last = spent.expect("a fresh block holds what it was asked for");
        self.metrics
            .usage_consumed
            .with_label_values(&[feature])
            .inc_by(units);
        if let Some(a) = b.allowance {
            self.alert(session, &payer, decision, feature, period, a, last)
                .await;
        }
        Ok(Meter {
            feature: feature.to_string(),
            allowance: b.allowance,
            remaining: b.remaining(),
            period,
            reset_secs: period.seconds_left(now),
        })
    }

    fn slot(&self, key: &CounterKey) -> Slot {
        let mut map = self.blocks.lock().unwrap_or_else(|e| e.into_inner());
        map.entry(key.clone()).or_default().clone()
    }

    /// Units of every held block this instance has not spent: what it would give back.
    fn held(&self, key: &CounterKey, period: Period) -> u64 {
        let slot = {
            let map = self.blocks.lock().unwrap_or_else(|e| e.into_inner());
            map.get(key).cloned()
        };
        slot.and_then(|s| {
            s.try_lock()
                .ok()
                .and_then(|b| b.filter(|b| b.period == period).map(|b| b.unspent()))
        })
        .unwrap_or(0)
    }

    /// Gives every unspent unit back to the database (every `SETTLE_EVERY`, and at shutdown),
    /// so that another instance can spend it. A counter being refilled is left for next time.
    pub async fn settle(&self) -> Result<(), DbError> {
        let slots: Vec<(CounterKey, Slot)> = {
            let mut map = self.blocks.lock().unwrap_or_else(|e| e.into_inner());
            // Forget counters nobody is using and nothing is held for.
            map.retain(|_, slot| {
                Arc::strong_count(slot) > 1
                    || slot
                        .try_lock()
                        .map_or(true, |b| b.is_some_and(|b| b.unspent() > 0))
            });
            map.iter().map(|(k, s)| (k.clone(), s.clone())).collect()
        };
        for (key, slot) in slots {
            let Ok(mut guard) = slot.try_lock() else {
                continue;
            };
            let Some(b) = guard.as_mut().filter(|b| b.unspent() > 0) else {
                continue;
            };
            let units = i64::try_from(b.unspent()).unwrap_or(0);
            db::usage::give_back(&self.db.pool, &key, b.period.start, units).await?;
            b.handed_out = b.handed_out.saturating_sub(b.unspent());
            b.end = b.next;
        }
        Ok(())
    }

    /// What `payer` used this period, for `GET /api/usage` and `plangate usage`: every metered
    /// feature, under the limits of `plan`.
    pub async fn report(
        &self,
        payer: Payer,
        plan: Option<&str>,
        item_period: Option<(i64, i64)>,
    ) -> Result<Report, DbError> {
        let period = period_at(item_period, now_ms());
        let counters =
            db::usage::counters(&self.db.pool, payer.kind, &payer.id, period.start).await?;
        let features = self
            .catalog
            .metered_features()
            .into_iter()
            .map(|feature| {
                let counter = counters.iter().find(|c| c.feature == feature);
                let key = CounterKey {
                    kind: payer.kind,
                    payer_id: payer.id.clone(),
                    feature: feature.to_string(),
                };
                let handed_out = counter.map_or(0, |c| c.used.max(0) as u64);
                let granted = counter.map_or(0, |c| c.extra.max(0) as u64);
                let held = self.held(&key, period);
                let a = self
                    .limit(plan, feature)
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
            payer,
            period,
            features,
        })
    }

    /// Queues the 80 % and 100 % mails due once unit `last` of `allowance` is spent: one per
    /// payer, feature, period and threshold, by the outbox id, whichever instance gets there.
    #[allow(clippy::too_many_arguments)]
    async fn alert(
        &self,
        session: &Session,
        payer: &Payer,
        decision: &Decision,
        feature: &str,
        period: Period,
        allowance: u64,
        last: u64,
    ) {
        for pct in alerts_due(Some(allowance), last) {
            let id = format!("usage:{}:{feature}:{}:{pct}", payer.label(), period.start);
            if self
                .alerted
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .contains(&id)
            {
                continue;
            }
            match self
                .queue_alert(&id, session, decision, feature, period, allowance, pct)
                .await
            {
                Ok(()) => {
                    self.alerted
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .insert(id);
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
        session: &Session,
        decision: &Decision,
        feature: &str,
        period: Period,
        allowance: u64,
        pct: u8,
    ) -> Result<(), DbError> {
        let mut conn = self.db.conn().await?;
        // The payer's address; for an organization, the member whose request crossed the line.
        let Some(to) = db::users::get(&mut conn, &session.user_id)
            .await?
            .and_then(|u| u.email)
        else {
            tracing::warn!(user = %session.user_id, "usage alert but no address to mail");
            return Ok(());
        };
        let plan = decision
            .plan
            .as_deref()
            .and_then(|p| self.catalog.plan(p))
            .map_or_else(|| "your".to_string(), |p| format!("the {}", p.name));
        let (subject, body) = alert_mail(&plan, feature, pct, allowance, period, &self.pricing_url);
        if db::outbox::enqueue(&mut conn, id, &to, &subject, &body).await? {
            self.mail_notify.notify_one();
        }
        Ok(())
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
    let name = feature.replace('_', " ");
    let resets = format_date(period.end);
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
