//! The service layer the HTTP edges, the pages and the operator commands call: `Entitlements`
//! (what a caller may open), the `Inbox` (Clerk's deliveries, replays and corrections) and
//! the `Reconciler` (Clerk's Backend API against the database). Only `startup` builds them.
//! Nothing here names an HTTP type (a test keeps it so): the edges translate.

pub mod billing;
pub mod console;
pub mod entitlements;
pub mod inbox;
pub mod invalidation;
pub mod reconcile;
pub mod usage;

pub use console::Console;
pub use entitlements::Entitlements;
pub use inbox::{Inbox, InboxError, Receipt};
pub use reconcile::{Reconciler, Report};
pub use usage::Usage;

use std::sync::Arc;

use anyhow::Context;
use tokio::sync::Notify;

use crate::{
    billing::Policy,
    clerk_api::ClerkApi,
    config::{load_catalog, Config},
    db::Db,
    metrics::Metrics,
    webhooks::writer::{OnCommit, Writer},
};

/// The service layer, built once from the configuration: by `serve` (with its listeners around
/// it) and by the operator commands (`plangate reconcile`, `plangate inbox`), alike.
pub struct Services {
    pub db: Db,
    pub metrics: Arc<Metrics>,
    /// The plans (`plans.toml`).
    pub catalog: Arc<crate::billing::Catalog>,
    pub entitlements: Arc<Entitlements>,
    /// Metered features (README, "Usage limits").
    pub usage: Arc<Usage>,
    pub inbox: Arc<Inbox>,
    /// Present when a Backend API key is configured.
    pub reconciler: Option<Arc<Reconciler>>,
    /// Clerk's Backend API client, when a key is configured (API keys are verified with it).
    pub clerk_api: Option<Arc<ClerkApi>>,
    /// Woken when a commit queued mail (the outbox worker waits on it).
    pub mail_notify: Arc<Notify>,
}

/// Runs in the webhook writer after each durable commit, before its deliveries are answered.
pub type AfterCommit = Box<dyn Fn() + Send + Sync>;

impl Services {
    /// Connects and migrates the database, loads the plans, and builds the services on it.
    pub async fn build(
        config: &Config,
        after_commit: Option<AfterCommit>,
        clock: usage::Clock,
    ) -> anyhow::Result<Services> {
        let catalog = Arc::new(
            load_catalog(&config.plans_file)
                .map_err(|e| anyhow::anyhow!("PLANS_FILE {}: {e}", config.plans_file.display()))?,
        );
        let db = Db::connect(&config.database_url).await?;
        db.migrate().await?;
        let metrics = Arc::new(Metrics::new());
        let entitlements = Arc::new(Entitlements::new(
            db.clone(),
            catalog.clone(),
            Policy::with_grace_days(config.past_due_grace_days),
            metrics.clone(),
        ));
        let mail_notify = Arc::new(Notify::new());
        let api = match config
            .clerk()
            .and_then(|c| c.secret_key.as_ref().map(|k| (c, k)))
        {
            Some((clerk, key)) => Some(Arc::new(
                ClerkApi::new(&clerk.api_url, key.clone(), metrics.clone())
                    .context("building the Backend API client")?,
            )),
            None => None,
        };
        let usage = Arc::new(Usage::new(
            db.clone(),
            catalog.clone(),
            metrics.clone(),
            mail_notify.clone(),
            format!("{}/pricing", config.app_url),
            clock,
            api.clone(),
        ));
        // A commit that changed subscription state empties the entitlement cache before its
        // deliveries are answered.
        let on_commit: OnCommit = Box::new({
            let entitlements = entitlements.clone();
            move |changed| {
                if changed {
                    entitlements.invalidate();
                }
                if let Some(hook) = &after_commit {
                    hook();
                }
            }
        });
        let writer = Writer::start(
            db.clone(),
            config.manage_url(),
            catalog.clone(),
            mail_notify.clone(),
            on_commit,
        );
        let inbox = Arc::new(Inbox::new(db.clone(), writer, metrics.clone()));
        let reconciler = api.clone().map(|api| {
            Arc::new(Reconciler::new(
                api,
                db.clone(),
                inbox.clone(),
                metrics.clone(),
            ))
        });
        Ok(Services {
            db,
            metrics,
            catalog,
            entitlements,
            usage,
            inbox,
            reconciler,
            clerk_api: api,
            mail_notify,
        })
    }
}
