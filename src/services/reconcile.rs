//! Reconciliation with Clerk's Backend API (README, "Operations"): webhooks may arrive late or never, so
//! the database is compared with what Clerk says and corrected.
//!
//! A correction is written as the Clerk event that would have carried it
//! (`subscriptionItem.<status>`, stamped with the item's `updated_at`) and goes through the
//! inbox under the delivery id `reconcile_<item>_<updated_at>_<status>`: the ordering rule
//! decides (older API state never overwrites a newer webhook), side effects stay exactly-once,
//! and two instances offering the same correction store it once.

use std::{
    collections::{HashMap, HashSet},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use serde_json::{json, Value};
use tracing::{info, warn};

use super::inbox::{Inbox, InboxError};
use crate::{
    billing::{listed_event_at, needs_correction, ItemState, Payer, PayerKind, Status},
    clerk_api::{is_clerk_id, ClerkApi, ClerkApiError},
    db::{self, now_ms, Db, DbError},
    metrics::Metrics,
    webhooks::{events, ingest::Outcome},
};

/// How often one payer may be reconciled from the dashboard's "activating…" state.
pub const PAYER_COOLDOWN: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    #[error(transparent)]
    Api(#[from] ClerkApiError),
    #[error(transparent)]
    Db(#[from] DbError),
    #[error(transparent)]
    Inbox(#[from] InboxError),
    /// A `200` whose shape cannot be read (no item list, or an item without an id): never
    /// taken as "no items", which would end every paying item of the payer.
    #[error("the Backend API's answer for {payer} has no readable subscription_items list; the payer is left as it is")]
    Unreadable { payer: String },
}

/// The items of a payer's subscription as the Backend API answered it: `subscription_items`
/// (or `items`), a list whose every entry is an object with a string id; `None` when the
/// answer has any other shape.
fn listed_items(subscription: &Value) -> Option<Vec<Value>> {
    let list = subscription
        .get("subscription_items")
        .or_else(|| subscription.get("items"))?
        .as_array()?;
    list.iter()
        .all(|i| {
            i.get("id")
                .and_then(Value::as_str)
                .is_some_and(|s| !s.is_empty())
        })
        .then(|| list.clone())
}

/// One item the run corrected.
#[derive(Debug, Clone, PartialEq)]
pub struct Corrected {
    pub item_id: String,
    pub payer: String,
    /// `plan status` before, if the item was known.
    pub before: Option<String>,
    pub after: String,
    pub svix_id: String,
    pub outcome: Outcome,
}

#[derive(Debug, Default, Clone, PartialEq)]
pub struct Report {
    /// Items compared with the Backend API.
    pub checked: usize,
    pub corrected: Vec<Corrected>,
}

impl Report {
    /// What `plangate reconcile` prints: one line per corrected item, then the totals.
    pub fn lines(&self) -> Vec<String> {
        let mut out: Vec<String> = self
            .corrected
            .iter()
            .map(|c| {
                format!(
                    "corrected {} ({}): {} -> {} [{}]",
                    c.item_id,
                    c.payer,
                    c.before.as_deref().unwrap_or("unknown"),
                    c.after,
                    c.svix_id
                )
            })
            .collect();
        out.push(format!(
            "{} checked, {} corrected",
            self.checked,
            self.corrected.len()
        ));
        out
    }
}

/// The background job name the sweep records its runs under (the console's start page reads it).
pub const SWEEP_JOB: &str = "reconcile_sweep";

pub struct Reconciler {
    api: Arc<ClerkApi>,
    db: Db,
    inbox: Arc<Inbox>,
    metrics: Arc<Metrics>,
    /// When each payer was last reconciled on the dashboard's behalf.
    recent: Mutex<HashMap<Payer, Instant>>,
}

fn describe(i: &ItemState) -> String {
    format!("{} {}", i.plan_slug, i.status.as_str())
}

/// `user user_1`: how a report and the logs name a payer.
fn payer_label(payer: &Payer) -> String {
    format!("{} {}", payer.kind.as_str(), payer.id)
}

/// The payer object of a correction event, as Clerk's webhooks carry it.
fn payer_json(payer: &Payer, user_id: Option<&str>, email: Option<&str>) -> Value {
    let id = &payer.id;
    match payer.kind {
        PayerKind::User => json!({"user_id": id, "email": email}),
        PayerKind::Org => json!({"organization_id": id, "user_id": user_id, "email": email}),
    }
}

/// The webhook event type that announces an item in `status` (the API's spelling).
fn event_type(status: &str) -> &'static str {
    Status::parse(status).item_event_type()
}

/// A correction: its delivery id, the event's JSON, and the state it describes (read by the
/// same parser as a delivery). `None` when the API item cannot be ordered (no `updated_at`) or has
/// no usable id or payer.
fn correction(
    data: Value,
    stored: Option<&ItemState>,
    inferred: bool,
    now: i64,
) -> Option<(String, Vec<u8>, ItemState)> {
    let id = data.get("id")?.as_str()?.to_string();
    let updated_at = events::to_ms(
        data.get("updated_at")
            .or_else(|| data.get("created_at"))?
            .as_i64()?,
    );
    if !is_clerk_id(&id) {
        return None;
    }
    let updated_at = if inferred {
        updated_at
    } else {
        listed_event_at(stored, updated_at)
    };
    let status = data.get("status")?.as_str()?.to_string();
    let mut event = json!({
        "object": "event",
        "type": event_type(&status),
        "timestamp": updated_at,
        "data": data,
        "plangate_source": "reconcile",
    });
    if inferred {
        event[events::INFERRED] = Value::Bool(true);
    }
    let body = serde_json::to_vec(&event).ok()?;
    let parsed = events::parse(&body).ok()?;
    let item = match parsed.changes(now).ok()?.pop()? {
        events::Change::Item(item) => item,
        _ => return None,
    };
    let status_code: String = status
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
        .take(20)
        .collect();
    let svix_id = format!("reconcile_{id}_{updated_at}_{status_code}");
    Some((svix_id, body, item))
}

impl Reconciler {
    pub fn new(api: Arc<ClerkApi>, db: Db, inbox: Arc<Inbox>, metrics: Arc<Metrics>) -> Reconciler {
        Reconciler {
            api,
            db,
            inbox,
            metrics,
            recent: Mutex::new(HashMap::new()),
        }
    }

    /// Reconciles one payer: their subscription as Clerk has it, against the stored items.
    pub async fn payer(&self, payer: &Payer) -> Result<Report, ReconcileError> {
        let result = self.payer_inner(payer, false).await;
        self.count_run(&result, false);
        result
    }

    async fn payer_inner(
        &self,
        payer: &Payer,
        interactive: bool,
    ) -> Result<Report, ReconcileError> {
        let subscription = if interactive {
            self.api.payer_subscription_once(payer).await?
        } else {
            self.api.payer_subscription(payer).await?
        };
        let stored = {
            let mut conn = self.db.conn().await?;
            db::items::for_payer(&mut conn, payer).await?
        };
        let mut report = Report::default();
        self.correct_payer(&mut report, payer, subscription, &stored)
            .await?;
        Ok(report)
    }

    /// Reconciles one payer on the dashboard's behalf, at most once per [`PAYER_COOLDOWN`] and
    /// within the interactive share of the Backend API budget (one attempt, no retries), so
    /// that visitors cannot stall the sweep; whether it ran. The caller asks only for a payer
    /// whose stored state is not yet paid.
    pub async fn payer_after_checkout(&self, payer: &Payer) -> bool {
        let admitted = admit(
            &mut self.recent.lock().unwrap_or_else(|p| p.into_inner()),
            payer.clone(),
            Instant::now(),
        );
        if !admitted {
            return false;
        }
        if !self.api.admit_interactive() {
            self.metrics
                .reconcile_runs
                .with_label_values(&["skipped"])
                .inc();
            info!(payer = %payer_label(payer), "checkout reconcile skipped: the interactive share of the Backend API budget is used up");
            return false;
        }
        let result = self.payer_inner(payer, true).await;
        self.count_run(&result, false);
        match result {
            Ok(r) => {
                info!(payer = %payer_label(payer), corrected = r.corrected.len(), "reconciled after checkout");
                true
            }
            Err(e) => {
                warn!(payer = %payer_label(payer), error = %e, "reconciling after checkout failed");
                false
            }
        }
    }

    /// The sweep: every item Clerk lists, compared with the database; a live item here that
    /// Clerk does not list is checked through its payer's subscription (one call per payer).
    pub async fn sweep(&self) -> Result<Report, ReconcileError> {
        let result = self.sweep_inner().await;
        self.count_run(&result, true);
        // Recorded for the operator console's start page, whichever instance or command ran it.
        let recorded = match &result {
            Ok(r) => format!("ok: {} checked, {} corrected", r.checked, r.corrected.len()),
            Err(e) => format!("error: {e}"),
        };
        if let Err(e) = db::console::record_run(&self.db.pool, SWEEP_JOB, now_ms(), &recorded).await
        {
            warn!(error = %e, "the sweep's result could not be recorded");
        }
        result
    }

    /// The Backend API client (the operator console's cancel and extend go through it).
    pub fn api(&self) -> &ClerkApi {
        &self.api
    }

    async fn sweep_inner(&self) -> Result<Report, ReconcileError> {
        let listed = self.api.subscription_items().await?;
        let stored: HashMap<String, ItemState> = {
            let mut conn = self.db.conn().await?;
            db::items::all(&mut conn).await?
        }
        .into_iter()
        .map(|i| (i.id.clone(), i))
        .collect();
        let now = now_ms();
        let mut report = Report::default();
        let mut seen = HashSet::new();
        for mut data in listed {
            let Some(id) = data.get("id").and_then(Value::as_str).map(str::to_string) else {
                continue;
            };
            seen.insert(id.clone());
            let known = stored.get(&id);
            // The list may name the payer only by Clerk's payer id: take ours when we have it.
            if !has_payer(&data) {
                match known {
                    Some(k) => {
                        data["payer"] = payer_json(
                            &k.payer.payer(),
                            k.payer.user_id.as_deref(),
                            k.payer.email.as_deref(),
                        )
                    }
                    None => {
                        warn!(item = %id, "listed item without a payer this app knows; skipped");
                        report.checked += 1;
                        continue;
                    }
                }
            }
            self.offer(&mut report, data, known, false, now).await?;
        }
        // Live here, absent from Clerk's list: ask each such payer once.
        let mut missing: HashMap<Payer, Vec<&ItemState>> = HashMap::new();
        for item in stored.values() {
            if item.is_live(now) && !seen.contains(&item.id) {
                missing.entry(item.payer.payer()).or_default().push(item);
            }
        }
        for (payer, items) in missing {
            let subscription = self.api.payer_subscription(&payer).await?;
            let owned: Vec<ItemState> = items.into_iter().cloned().collect();
            self.correct_payer(&mut report, &payer, subscription, &owned)
                .await?;
        }
        self.metrics.reconcile_last_success.set(now / 1000);
        Ok(report)
    }

    /// Corrects `stored` (one payer's items) from the payer's subscription as Clerk has it:
    /// every item it lists is offered, and a stored live item it does not list has ended.
    async fn correct_payer(
        &self,
        report: &mut Report,
        payer: &Payer,
        subscription: Option<Value>,
        stored: &[ItemState],
    ) -> Result<(), ReconcileError> {
        let now = now_ms();
        let items = match &subscription {
            None => Vec::new(),
            Some(s) => listed_items(s).ok_or_else(|| ReconcileError::Unreadable {
                payer: payer_label(payer),
            })?,
        };
        let by_id: HashMap<&str, &ItemState> = stored.iter().map(|i| (i.id.as_str(), i)).collect();
        let mut listed = HashSet::new();
        for mut data in items {
            let Some(item_id) = data.get("id").and_then(Value::as_str).map(str::to_string) else {
                continue;
            };
            let known = by_id.get(item_id.as_str()).copied();
            if !has_payer(&data) {
                let (user_id, email) = known
                    .map(|k| (k.payer.user_id.as_deref(), k.payer.email.as_deref()))
                    .unwrap_or((None, None));
                data["payer"] = payer_json(payer, user_id, email);
            }
            listed.insert(item_id);
            self.offer(report, data, known, false, now).await?;
        }
        for item in stored {
            if item.is_live(now) && !listed.contains(&item.id) {
                let data = json!({
                    "object": "subscription_item",
                    "id": item.id,
                    "subscription_id": item.subscription_id,
                    "status": "ended",
                    "plan": {"slug": item.plan_slug, "name": item.plan_name},
                    "period_start": item.period_start,
                    "period_end": item.period_end,
                    "is_free_trial": item.is_free_trial,
                    "ended_at": now,
                    "updated_at": now,
                    "payer": payer_json(payer, item.payer.user_id.as_deref(), item.payer.email.as_deref()),
                });
                self.offer(report, data, Some(item), true, now).await?;
            }
        }
        Ok(())
    }

    /// Compares one API item with the stored one and, when Clerk's is new here or newer and
    /// different, applies it through the inbox.
    async fn offer(
        &self,
        report: &mut Report,
        data: Value,
        stored: Option<&ItemState>,
        inferred: bool,
        now: i64,
    ) -> Result<(), ReconcileError> {
        report.checked += 1;
        let Some((svix_id, body, item)) = correction(data, stored, inferred, now) else {
            warn!("Backend API item without id, status, time or payer; skipped");
            return Ok(());
        };
        if !needs_correction(stored, &item) {
            return Ok(());
        }
        let receipt = self.inbox.correct(svix_id.clone(), &body, now).await?;
        if receipt.outcome == Outcome::Applied {
            self.metrics.reconcile_corrections.inc();
            info!(item = %item.id, svix_id = %svix_id, from = ?stored.map(describe), to = %describe(&item), "reconciled from the Backend API");
            report.corrected.push(Corrected {
                item_id: item.id.clone(),
                payer: payer_label(&item.payer.payer()),
                before: stored.map(describe),
                after: describe(&item),
                svix_id,
                outcome: receipt.outcome,
            });
        }
        Ok(())
    }

    fn count_run<T>(&self, result: &Result<T, ReconcileError>, sweep: bool) {
        let label = match result {
            Ok(_) => "ok",
            Err(_) => "error",
        };
        self.metrics
            .reconcile_runs
            .with_label_values(&[label])
            .inc();
        if let (Err(e), true) = (result, sweep) {
            warn!(error = %e, "reconciliation sweep failed; the next one tries again");
        }
    }
}

/// Lets `payer` through unless it went through within [`PAYER_COOLDOWN`] of `now`; forgets
/// the payers whose cooldown is over.
fn admit(recent: &mut HashMap<Payer, Instant>, payer: Payer, now: Instant) -> bool {
    recent.retain(|_, at| now.saturating_duration_since(*at) < PAYER_COOLDOWN);
    if recent.contains_key(&payer) {
        return false;
    }
    recent.insert(payer, now);
    true
}

/// Whether the item names its payer the way the event parser reads it.
fn has_payer(data: &Value) -> bool {
    data.get("payer").is_some_and(|p| {
        ["user_id", "organization_id"].iter().any(|k| {
            p.get(*k)
                .and_then(Value::as_str)
                .is_some_and(|s| !s.is_empty())
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_correction_is_the_clerk_event_that_would_have_carried_it() {
        let data = json!({
            "id": "csub_item_1", "status": "ended", "plan": {"slug": "pro"},
            "updated_at": 1_800_000_000_000i64, "period_end": 1_800_000_100_000i64,
            "payer": {"user_id": "user_1"},
        });
        let (svix_id, body, item) = correction(data, None, false, 1_800_000_500_000).unwrap();
        let event: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(svix_id, "reconcile_csub_item_1_1800000000000_ended");
        assert_eq!(event["type"], "subscriptionItem.ended");
        assert_eq!(item.status, Status::Ended);
        assert_eq!(item.event_at, 1_800_000_000_000);
        assert_eq!(item.payer.kind, PayerKind::User);
        assert_eq!(item.payer.id, "user_1");
    }

    #[test]
    fn an_item_without_a_time_a_clerk_id_or_a_payer_is_no_correction() {
        let ok = json!({"id": "csub_item_1", "status": "active", "plan": {"slug": "pro"},
                        "updated_at": 5, "payer": {"user_id": "user_1"}});
        assert!(correction(ok.clone(), None, false, 10).is_some());
        let mut no_time = ok.clone();
        no_time.as_object_mut().unwrap().remove("updated_at");
        assert!(correction(no_time, None, false, 10).is_none());
        let mut bad_id = ok.clone();
        bad_id["id"] = json!("../x");
        assert!(correction(bad_id, None, false, 10).is_none());
        let mut no_payer = ok;
        no_payer.as_object_mut().unwrap().remove("payer");
        assert!(correction(no_payer, None, false, 10).is_none());
    }

    #[test]
    fn statuses_map_to_their_webhook_types() {
        for (status, ty) in [
            ("active", "subscriptionItem.active"),
            ("canceled", "subscriptionItem.canceled"),
            ("ended", "subscriptionItem.ended"),
            ("past_due", "subscriptionItem.pastDue"),
            ("upcoming", "subscriptionItem.upcoming"),
            ("abandoned", "subscriptionItem.abandoned"),
            ("incomplete", "subscriptionItem.incomplete"),
            ("something_new", "subscriptionItem.updated"),
        ] {
            assert_eq!(event_type(status), ty);
        }
    }

    #[test]
    fn a_delivery_id_keeps_the_status_readable_and_nothing_else() {
        let data = json!({"id": "csub_item_1", "status": "past_due", "plan": {"slug": "pro"},
                          "updated_at": 5, "payer": {"user_id": "user_1"}});
        assert_eq!(
            correction(data, None, false, 10).unwrap().0,
            "reconcile_csub_item_1_5000_past_due"
        );
        let data = json!({"id": "csub_item_1", "status": "a b/../c", "plan": {"slug": "pro"},
                          "updated_at": 5, "payer": {"user_id": "user_1"}});
        assert_eq!(
            correction(data, None, false, 10).unwrap().0,
            "reconcile_csub_item_1_5000_abc"
        );
    }

    #[test]
    fn a_payer_is_reconciled_after_checkout_once_per_cooldown() {
        let mut recent = HashMap::new();
        let payer = || Payer::user("user_1");
        let t0 = Instant::now();
        assert!(admit(&mut recent, payer(), t0));
        assert!(!admit(&mut recent, payer(), t0 + PAYER_COOLDOWN / 2));
        assert!(
            admit(&mut recent, Payer::org("user_1"), t0),
            "another payer is not held back"
        );
        assert!(
            !admit(
                &mut recent,
                payer(),
                t0 + PAYER_COOLDOWN - Duration::from_millis(1)
            ),
            "still within the cooldown"
        );
        assert!(
            admit(&mut recent, payer(), t0 + PAYER_COOLDOWN),
            "the cooldown is over"
        );
        assert_eq!(
            recent.len(),
            1,
            "the org's entry was forgotten with its cooldown"
        );
    }

    #[test]
    fn a_payer_is_named_by_a_user_or_an_organization_id() {
        assert!(has_payer(&json!({"payer": {"user_id": "user_1"}})));
        assert!(has_payer(
            &json!({"payer": {"organization_id": "org_1", "user_id": ""}})
        ));
        assert!(!has_payer(
            &json!({"payer": {"user_id": "", "organization_id": ""}})
        ));
        assert!(!has_payer(&json!({"payer_id": "cpayer_1"})));
    }
}
