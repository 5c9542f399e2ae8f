//! The periodic work `serve` does besides answering requests, each loop a function of its own
//! (as zero-to-production's `issue_delivery_worker` and svix's `expired_message_cleaner` are):
//! following the other instances' commits (`services::invalidation`), draining the outbox
//! (`mail::worker`), inbox retention and the reconciliation sweep. What must run once across
//! instances (the sweep, retention) runs under a lease in the database; the outbox worker claims
//! each mail instead (`db::outbox::claim`).

use std::{sync::Arc, time::Duration};

use anyhow::Context;
use tracing::info;

use crate::{
    config::Config,
    db::Db,
    mail,
    services::{usage::SETTLE_EVERY, Console, Inbox, Reconciler, Services, Usage},
};

/// The time in ms since the epoch, as background work sees it.
pub use crate::services::usage::Clock;

/// How often retention looks for payloads to remove.
pub const RETENTION_PERIOD: Duration = Duration::from_secs(3600);
const RETENTION_LEASE: &str = "inbox_retention";
const SWEEP_LEASE: &str = "reconcile_sweep";

/// This instance's leases on once-only background work.
#[derive(Clone)]
pub struct Leases {
    db: Db,
    /// Who this instance is, as the lease table names it (host, process, a random part, so two
    /// applications in one process differ too).
    holder: String,
    clock: Clock,
}

impl Leases {
    pub fn new(db: Db, clock: Clock) -> Leases {
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|h| h.trim().to_string())
            .unwrap_or_else(|_| "host".into());
        let holder = format!(
            "{host}:{}:{:08x}",
            std::process::id(),
            rand::random::<u32>()
        );
        Leases { db, holder, clock }
    }

    /// Takes `name` for `ttl` unless another instance holds it. A database error counts as
    /// "not taken": the work waits for its next turn rather than risk running twice.
    async fn take(&self, name: &str, ttl: Duration) -> bool {
        let ttl_ms = i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX);
        match crate::db::leases::acquire(&self.db.pool, name, &self.holder, (self.clock)(), ttl_ms)
            .await
        {
            Ok(taken) => {
                if !taken {
                    tracing::debug!(lease = name, "held by another instance; skipped");
                }
                taken
            }
            Err(e) => {
                tracing::warn!(lease = name, error = %e, "cannot take the lease; skipped");
                false
            }
        }
    }

    /// Gives `name` back, so that the work can be tried again soon (by any instance).
    async fn release(&self, name: &str) {
        if let Err(e) = crate::db::leases::release(&self.db.pool, name, &self.holder).await {
            tracing::warn!(lease = name, error = %e, "cannot release the lease; it expires");
        }
    }
}

/// Everything the loops need besides the services; `spawn` starts them.
pub struct Background {
    services: Arc<Services>,
    console: Arc<Console>,
    reconcile_interval: Option<Duration>,
    retention_days: i64,
    clock: Clock,
    leases: Leases,
    mail: (mail::Transport, lettre::message::Mailbox),
}

impl Background {
    /// The loops' settings from the configuration; runs retention once now, before anything is
    /// served (by one instance of several), and every hour once spawned.
    pub async fn start(
        config: &Config,
        services: Arc<Services>,
        console: Arc<Console>,
        clock: Clock,
    ) -> anyhow::Result<Background> {
        let leases = Leases::new(services.db.clone(), clock.clone());
        let retention_days = config.operations.inbox_retention_days;
        purge(&services.inbox, retention_days, &clock, &leases).await;
        let transport =
            mail::Transport::from_config(config.mail.smtp_url_exposed(), &config.data_dir)?;
        let from: lettre::message::Mailbox = config.mail.from.parse().context("MAIL_FROM")?;
        Ok(Background {
            services,
            console,
            reconcile_interval: config.operations.reconcile_interval,
            retention_days,
            clock,
            leases,
            mail: (transport, from),
        })
    }

    pub fn spawn(self) {
        let Background {
            services,
            console,
            reconcile_interval,
            retention_days,
            clock,
            leases,
            mail: (transport, from),
        } = self;
        let s = &services;
        tokio::spawn(settle_loop(s.usage.clone()));
        tokio::spawn(crate::services::invalidation::follow(
            s.db.clone(),
            s.entitlements.clone(),
            s.metrics.clone(),
        ));
        tokio::spawn(mail::worker(
            s.db.clone(),
            transport,
            from,
            s.mail_notify.clone(),
        ));
        tokio::spawn(retention_loop(
            s.inbox.clone(),
            console,
            retention_days,
            clock,
            leases.clone(),
        ));
        if let (Some(reconciler), Some(interval)) = (s.reconciler.clone(), reconcile_interval) {
            tokio::spawn(sweep_loop(reconciler, interval, leases));
        }
    }
}

/// Gives unspent metered units back every [`SETTLE_EVERY`], so that what one instance holds
/// and does not spend can be spent through another.
async fn settle_loop(usage: Arc<Usage>) {
    loop {
        tokio::time::sleep(SETTLE_EVERY).await;
        if let Err(e) = usage.settle().await {
            tracing::warn!(error = %e, "giving unspent units back failed; next pass tries again");
        }
    }
}

/// Retention every [`RETENTION_PERIOD`] (start-up runs it once before serving).
/// Expired console form tokens go at the same pace. The audit log is never purged.
async fn retention_loop(
    inbox: Arc<Inbox>,
    console: Arc<Console>,
    days: i64,
    clock: Clock,
    leases: Leases,
) {
    loop {
        tokio::time::sleep(RETENTION_PERIOD).await;
        purge(&inbox, days, &clock, &leases).await;
        if let Err(e) = console.purge_tokens().await {
            tracing::warn!(error = %e, "removing expired form tokens failed; the next pass tries again");
        }
    }
}

/// The reconciliation sweep, once per `interval` across all instances (the lease lasts the
/// interval); a failed sweep is tried again sooner than a whole period later, by any instance.
async fn sweep_loop(reconciler: Arc<Reconciler>, interval: Duration, leases: Leases) {
    let retry = interval.min(Duration::from_secs(60));
    let mut wait = interval.min(Duration::from_secs(30));
    loop {
        tokio::time::sleep(wait).await;
        if !leases.take(SWEEP_LEASE, interval).await {
            wait = retry;
            continue;
        }
        wait = match reconciler.sweep().await {
            Ok(report) => {
                info!(
                    checked = report.checked,
                    corrected = report.corrected.len(),
                    "reconciliation sweep done"
                );
                interval
            }
            Err(_) => {
                leases.release(SWEEP_LEASE).await;
                retry
            }
        };
    }
}

/// Removes the payloads older than the retention period (the rows stay for deduplication),
/// unless another instance did within the last period.
pub async fn purge(inbox: &Inbox, days: i64, clock: &Clock, leases: &Leases) {
    if !leases.take(RETENTION_LEASE, RETENTION_PERIOD).await {
        return;
    }
    let now = clock();
    match inbox
        .purge_payloads(now.saturating_sub(days.saturating_mul(86_400_000)), now)
        .await
    {
        Ok(0) => {}
        Ok(n) => info!(
            payloads = n,
            retention_days = days,
            "inbox retention removed old payloads"
        ),
        Err(e) => tracing::warn!(error = %e, "inbox retention failed; the next pass tries again"),
    }
}
