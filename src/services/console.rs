//! The operator console (README, "Operator console"): who is an operator, the one-time form
//! tokens, the actions (each through Clerk's Backend API, or the demo's stand-in, or this
//! app's own reconcile, replay and usage), and the audit log every action is written to.
//! The rules (fresh sign-in, form fields, audit wording) are `billing::operator`'s.

use std::sync::Arc;

use rand::RngCore;
use sha2::{Digest, Sha256};

use super::{
    reconcile::{ReconcileError, SWEEP_JOB},
    Inbox, InboxError, Reconciler, Usage,
};
use crate::{
    billing::{
        operator::{
            clerk_failure, extends_trial, recently_verified, rfc3339, Action, AuditEntry,
            FormError, Outcome,
        },
        Catalog, ItemState, Payer, PayerKind, PlanFacts, PlanSummary,
    },
    clerk_api::ClerkApiError,
    db::{
        self,
        console::{FoundPayer, MailRow},
        inbox::EventRow,
        now_ms, Db, DbError,
    },
    demo::backend::DemoBackend,
};

/// How long a rendered form's token stays usable.
pub const FORM_TOKEN_TTL_MS: i64 = 60 * 60 * 1000;
/// How long an action may take, Backend API retries included, before its outcome is unknown.
pub const ACTION_DEADLINE: std::time::Duration = std::time::Duration::from_secs(60);

/// Where cancel and extend go: Clerk's Backend API (through the reconciler's client), or the
/// demo's stand-in; neither without a Backend API key outside demo mode.
pub enum Backend {
    Clerk(Arc<Reconciler>),
    Demo(DemoBackend),
    None,
}

pub struct Console {
    db: Db,
    operators: Vec<String>,
    backend: Backend,
    reconciler: Option<Arc<Reconciler>>,
    inbox: Arc<Inbox>,
    usage: Arc<Usage>,
    catalog: Arc<Catalog>,
}

/// The start page's figures.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Overview {
    pub dead_letters: i64,
    pub pending_mail: i64,
    /// The last sweep across instances: (when, result).
    pub last_sweep: Option<(i64, String)>,
    pub sweep_enabled: bool,
}

/// One metered feature of a payer this period.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageRow {
    pub feature: String,
    pub used: u64,
    pub limit: Option<u64>,
    pub period: (i64, i64),
}

/// Everything the payer page shows.
#[derive(Debug, Clone)]
pub struct PayerView {
    pub payer: Payer,
    /// The plan now, in the words the subscriber's own pages use.
    pub summary: PlanSummary,
    pub email: Option<String>,
    pub items: Vec<ItemState>,
    /// The item whose plan applies now.
    pub current: Option<String>,
    pub deliveries: Vec<EventRow>,
    pub mail: Vec<MailRow>,
    pub usage: Vec<UsageRow>,
}

impl PayerView {
    /// The deliveries about payments (`paymentAttempt.*`), newest first.
    pub fn payments(&self) -> impl Iterator<Item = &EventRow> {
        self.deliveries
            .iter()
            .filter(|d| d.event_type.starts_with("paymentAttempt."))
    }
}

impl Console {
    /// The console for this configuration: its operators, and where cancel and extend go —
    /// the demo's stand-in for Clerk in demo mode (it answers with signed webhooks to
    /// `webhook_url`, this process's own endpoint), Clerk's Backend API with a key, else nowhere.
    pub fn for_config(
        services: &super::Services,
        operators: Vec<String>,
        demo: Option<(Arc<crate::demo::DemoIssuer>, reqwest::Client, String)>,
    ) -> Console {
        let backend = match (demo, &services.reconciler) {
            (Some((issuer, http, webhook_url)), _) => Backend::Demo(DemoBackend::new(
                issuer,
                http,
                webhook_url,
                services.db.clone(),
                services.catalog.clone(),
            )),
            (None, Some(r)) => Backend::Clerk(r.clone()),
            (None, None) => Backend::None,
        };
        Console::new(
            services.db.clone(),
            operators,
            backend,
            services.reconciler.clone(),
            services.inbox.clone(),
            services.usage.clone(),
            services.catalog.clone(),
        )
    }

    pub fn new(
        db: Db,
        operators: Vec<String>,
        backend: Backend,
        reconciler: Option<Arc<Reconciler>>,
        inbox: Arc<Inbox>,
        usage: Arc<Usage>,
        catalog: Arc<Catalog>,
    ) -> Console {
        Console {
            db,
            operators,
            backend,
            reconciler,
            inbox,
            usage,
            catalog,
        }
    }

    /// Whether `user_id` is one of the operators.
    pub fn is_operator(&self, user_id: &str) -> bool {
        self.operators.iter().any(|o| o == user_id)
    }

    pub fn catalog(&self) -> &Catalog {
        &self.catalog
    }

    /// Whether cancel and extend have somewhere to go.
    pub fn can_reach_clerk(&self) -> bool {
        !matches!(self.backend, Backend::None)
    }

    /// `n` fresh one-time form tokens for `operator`, stored (as hashes) before they are shown.
    pub async fn form_tokens(&self, operator: &str, n: usize) -> Result<Vec<String>, DbError> {
        let tokens: Vec<String> = {
            let mut rng = rand::thread_rng();
            (0..n)
                .map(|_| {
                    let mut b = [0u8; 24];
                    rng.fill_bytes(&mut b);
                    hex::encode(b)
                })
                .collect()
        };
        let hashes: Vec<String> = tokens.iter().map(|t| hash(t)).collect();
        db::console::issue_tokens(
            &self.db.pool,
            operator,
            &hashes,
            now_ms() + FORM_TOKEN_TTL_MS,
        )
        .await?;
        Ok(tokens)
    }

    /// Performs `action` for `operator` if their sign-in passes Clerk's `strict`
    /// reverification (`fva`) and `form_token` was issued to them and never used. The audit
    /// row is written first (`pending`) and completed when the action ends; the action runs in
    /// a task of its own, to [`ACTION_DEADLINE`], whatever happens to the request that asked
    /// (a closed tab, the request timeout): what Clerk did is never left unrecorded.
    pub async fn act(
        self: &Arc<Self>,
        operator: &str,
        fva: Option<[i32; 2]>,
        form_token: &str,
        action: Action,
    ) -> Outcome {
        let refused = if !recently_verified(fva) {
            Some(Outcome::Refused("reverification_required"))
        } else {
            match db::console::use_token(&self.db.pool, &hash(form_token), operator, now_ms()).await
            {
                Ok(true) => None,
                Ok(false) => Some(Outcome::Refused("form_token")),
                Err(e) => Some(Outcome::Failed(e.to_string())),
            }
        };
        if let Some(outcome) = refused {
            let entry = AuditEntry::new(now_ms(), operator, &action, &outcome);
            self.write_audit(&entry).await;
            return outcome;
        }
        let id = new_id();
        let pending = AuditEntry::new(now_ms(), operator, &action, &Outcome::Pending);
        if let Err(e) = db::console::audit(&self.db.pool, &id, &pending).await {
            tracing::error!(error = %e, line = %pending.line(), "the audit row could not be written; nothing was done");
            return Outcome::Failed("the audit log could not be written; nothing was done".into());
        }
        let (tx, rx) = tokio::sync::oneshot::channel();
        let this = self.clone();
        tokio::spawn(async move {
            let outcome = tokio::time::timeout(ACTION_DEADLINE, this.perform(&action))
                .await
                .unwrap_or_else(|_| {
                    Outcome::Unknown(format!("no answer within {} s", ACTION_DEADLINE.as_secs()))
                });
            let entry = AuditEntry {
                result: outcome.audit(),
                ..pending
            };
            if let Err(e) = db::console::complete(&this.db.pool, &id, &entry.result).await {
                tracing::error!(error = %e, line = %entry.line(), "the audit row could not be completed");
            }
            log_action(&entry);
            let _ = tx.send(outcome);
        });
        rx.await
            .unwrap_or_else(|_| Outcome::Unknown("the action ended without an answer".into()))
    }

    /// Audits a refusal the edge decided (an unreadable form, a field out of bounds): the
    /// action's name and target as the route named them, `refused: <code>`.
    pub async fn refused(&self, operator: &str, action: &str, target: &str, code: &'static str) {
        let entry = AuditEntry {
            at: now_ms(),
            operator: operator.into(),
            action: action.into(),
            target: target.into(),
            params: String::new(),
            result: Outcome::Refused(code).audit(),
        };
        self.write_audit(&entry).await;
    }

    /// Checks what only the stored state can tell before anything is asked of Clerk: a trial is
    /// extended only past its current end.
    pub async fn validate(&self, action: &Action) -> Result<(), ValidateError> {
        if let Action::ExtendTrial { item_id, extend_to } = action {
            let item = {
                let mut conn = self.db.conn().await?;
                db::items::get(&mut conn, item_id).await?
            };
            let trial_end = item.filter(|i| i.is_free_trial).and_then(|i| i.period_end);
            extends_trial(*extend_to, trial_end)?;
        }
        Ok(())
    }

    async fn write_audit(&self, entry: &AuditEntry) {
        if let Err(e) = db::console::audit(&self.db.pool, &new_id(), entry).await {
            tracing::error!(error = %e, line = %entry.line(), "the audit row could not be written");
        }
        log_action(entry);
    }

    async fn perform(&self, action: &Action) -> Outcome {
        match action {
            Action::Reconcile { payer } => match &self.reconciler {
                Some(r) => match r.payer(payer).await {
                    Ok(report) => Outcome::Done(format!(
                        "{} checked, {} corrected",
                        report.checked,
                        report.corrected.len()
                    )),
                    Err(ReconcileError::Api(e)) => clerk_outcome(e),
                    Err(e) => Outcome::Failed(e.to_string()),
                },
                None => Outcome::Refused("no_backend_api"),
            },
            Action::Replay { svix_id } => match self.inbox.replay(svix_id).await {
                Ok(r) if r.outcome.as_str() == "failed" => {
                    Outcome::Failed("the delivery still cannot be applied".into())
                }
                Ok(r) => Outcome::Done(r.outcome.as_str().to_string()),
                Err(InboxError::NotFound(_)) => Outcome::Refused("no_such_delivery"),
                Err(InboxError::Purged(_)) => Outcome::Refused("payload_purged"),
                Err(e) => Outcome::Failed(e.to_string()),
            },
            Action::Cancel { item_id, end_now } => {
                let result = match &self.backend {
                    Backend::Clerk(r) => r.api().cancel_item(item_id, *end_now).await,
                    Backend::Demo(d) => d.cancel_item(item_id, *end_now).await,
                    Backend::None => return Outcome::Refused("no_backend_api"),
                };
                result.map_or_else(clerk_outcome, |()| Outcome::Done(String::new()))
            }
            Action::ExtendTrial { item_id, extend_to } => {
                let result = match &self.backend {
                    Backend::Clerk(r) => {
                        r.api()
                            .extend_free_trial(item_id, &rfc3339(*extend_to))
                            .await
                    }
                    Backend::Demo(d) => d.extend_free_trial(item_id, *extend_to).await,
                    Backend::None => return Outcome::Refused("no_backend_api"),
                };
                result.map_or_else(clerk_outcome, |()| Outcome::Done(String::new()))
            }
            Action::Grant {
                payer,
                feature,
                units,
            } => self.grant(payer, feature, *units).await,
        }
    }

    async fn grant(&self, payer: &Payer, feature: &str, units: u64) -> Outcome {
        let item = match self.current_item(payer).await {
            Ok(i) => i,
            Err(e) => return Outcome::Failed(e.to_string()),
        };
        let item_period = item.and_then(|i| i.period_start.zip(i.period_end));
        match self.usage.grant(payer, item_period, feature, units).await {
            Ok((extra, end)) => Outcome::Done(format!("{extra} extra until {}", rfc3339(end))),
            Err(e) => Outcome::Failed(e.to_string()),
        }
    }

    async fn current_item(&self, payer: &Payer) -> Result<Option<ItemState>, DbError> {
        let items = {
            let mut conn = self.db.conn().await?;
            db::items::for_payer(&mut conn, payer).await?
        };
        Ok(crate::billing::current_plan(&items, now_ms()).cloned())
    }

    pub async fn overview(&self) -> Result<Overview, DbError> {
        let dead_letters = {
            let mut conn = self.db.conn().await?;
            db::inbox::count_failed(&mut conn).await?
        };
        Ok(Overview {
            dead_letters,
            pending_mail: db::outbox::count_by_status(&self.db.pool, "queued").await?,
            last_sweep: db::console::last_run(&self.db.pool, SWEEP_JOB).await?,
            sweep_enabled: self.reconciler.is_some(),
        })
    }

    pub async fn find(&self, q: &str) -> Result<Vec<FoundPayer>, DbError> {
        if q.trim().is_empty() {
            return Ok(Vec::new());
        }
        db::console::find_payers(&self.db.pool, q).await
    }

    pub async fn payer(&self, payer: &Payer) -> Result<PayerView, DbError> {
        let id = payer.id.as_str();
        let mut conn = self.db.conn().await?;
        let mut items = db::items::for_payer(&mut conn, payer).await?;
        items.sort_by_key(|i| std::cmp::Reverse(i.event_at));
        let current = crate::billing::current_plan(&items, now_ms()).cloned();
        let user_email = match payer.kind {
            PayerKind::User => db::users::get(&mut conn, id).await?.and_then(|u| u.email),
            PayerKind::Org => None,
        };
        let deliveries = db::inbox::recent_for(&mut conn, &[id], 50).await?;
        drop(conn);
        let mut recipients: Vec<String> = user_email.iter().cloned().collect();
        for e in items.iter().filter_map(|i| i.payer.email.clone()) {
            if !recipients.contains(&e) {
                recipients.push(e);
            }
        }
        let mail = db::console::mail_to(&self.db.pool, &recipients, 20).await?;
        let report = self
            .usage
            .report(
                payer,
                current.as_ref().map(|i| i.plan_slug.as_str()),
                current
                    .as_ref()
                    .and_then(|i| i.period_start.zip(i.period_end)),
            )
            .await?;
        let usage = report
            .features
            .into_iter()
            .map(|f| UsageRow {
                feature: f.feature,
                used: f.used,
                limit: f.limit,
                period: (report.period.start, report.period.end),
            })
            .collect();
        let summary = PlanSummary::of(&self.catalog, PlanFacts::of_item(current.as_ref()));
        Ok(PayerView {
            payer: payer.clone(),
            summary,
            email: user_email.or_else(|| recipients.first().cloned()),
            current: current.map(|i| i.id),
            items,
            deliveries,
            mail,
            usage,
        })
    }

    pub async fn dead_letters(&self, limit: i64) -> Result<Vec<EventRow>, DbError> {
        self.inbox.list(true, limit).await
    }

    pub async fn audit_log(&self, limit: i64) -> Result<Vec<AuditEntry>, DbError> {
        db::console::audit_log(&self.db.pool, limit).await
    }

    /// Forgets form tokens that expired a day ago or more.
    pub async fn purge_tokens(&self) -> Result<u64, DbError> {
        db::console::purge_tokens(&self.db.pool, now_ms() - 86_400_000).await
    }
}

/// A Backend API failure as an outcome: a `4xx` is Clerk's refusal; a `5xx`, no answer or an
/// unreadable one leaves what Clerk did unknown.
fn clerk_outcome(e: ClerkApiError) -> Outcome {
    match e {
        ClerkApiError::Status { status, .. } => clerk_failure(Some(status), ""),
        ClerkApiError::BadId(_) => Outcome::Refused("bad_id"),
        e => clerk_failure(None, &e.to_string()),
    }
}

/// Why an action was refused before it ran.
#[derive(Debug, thiserror::Error)]
pub enum ValidateError {
    #[error(transparent)]
    Form(#[from] FormError),
    #[error(transparent)]
    Db(#[from] DbError),
}

/// Every action's line in the log, as in the audit log.
fn log_action(entry: &AuditEntry) {
    tracing::info!(
        operator = entry.operator,
        action = entry.action,
        target = entry.target,
        result = entry.result,
        "operator action"
    );
}

fn hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

fn new_id() -> String {
    let mut b = [0u8; 12];
    rand::thread_rng().fill_bytes(&mut b);
    format!("audit_{}", hex::encode(b))
}
