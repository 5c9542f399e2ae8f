//! `Application::build` wires config, database, keys and routes, and binds the listener (port 0
//! allowed, for tests); `run_until_stopped` serves until SIGINT/SIGTERM.

use std::{net::SocketAddr, sync::Arc, time::Duration};

use anyhow::Context;
use axum::Router;
use leptos::config::LeptosOptions;
use tokio::{net::TcpListener, sync::Notify};
use tracing::info;

use crate::{
    auth::{cookie_suffix, KeyStore, TokenVerifier},
    billing::{Catalog, Policy},
    clerk_api::ClerkApi,
    config::{AppEnv, Config},
    db::now_ms,
    db::Db,
    demo::DemoIssuer,
    http::serve::{raise_open_file_limit, serve},
    mail,
    metrics::Metrics,
    security::{csp::Csp, RateLimiter},
    services::{Gate, Inbox, Reconciler},
    state::{AppState, Wiring},
    webhooks::{
        verify::Verifier,
        writer::{OnCommit, Writer},
    },
};

/// The time in ms since the epoch, as background work sees it.
pub type Clock = Arc<dyn Fn() -> i64 + Send + Sync>;

/// Where a test may put its own code into the app it builds.
#[derive(Default)]
pub struct Seams {
    /// Runs in the webhook writer after each durable commit, before its deliveries are
    /// answered (a test blocks here to see that nothing is acknowledged meanwhile).
    pub after_commit: Option<Box<dyn Fn() + Send + Sync>>,
    /// The clock retention reads (a test moves it days ahead instead of sleeping).
    pub clock: Option<Clock>,
}

pub struct Application {
    listener: TcpListener,
    metrics_listener: Option<TcpListener>,
    router: Router,
    pub state: AppState,
    background: Background,
}

/// The periodic work `serve` does besides answering requests. What must run once across
/// instances (the sweep, retention) runs under a lease in the database; the outbox worker
/// claims each mail instead (`db::outbox::claim`).
struct Background {
    inbox: Arc<Inbox>,
    reconciler: Option<Arc<Reconciler>>,
    reconcile_interval: Option<Duration>,
    retention_days: i64,
    clock: Clock,
    leases: Leases,
    gate: Arc<Gate>,
    metrics: Arc<Metrics>,
}

/// How often retention looks for payloads to remove.
const RETENTION_PERIOD: Duration = Duration::from_secs(3600);

/// This instance's leases on once-only background work.
#[derive(Clone)]
struct Leases {
    db: Db,
    /// Who this instance is, as the lease table names it (host, process, a random part, so two
    /// applications in one process differ too).
    holder: String,
    clock: Clock,
}

impl Leases {
    fn new(db: Db, clock: Clock) -> Leases {
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

const RETENTION_LEASE: &str = "inbox_retention";
const SWEEP_LEASE: &str = "reconcile_sweep";

/// What the operator commands (`plangate reconcile`, `plangate inbox`) need: the database,
/// the inbox and the reconciler, built like `serve`'s but without listeners.
pub struct Operations {
    pub inbox: Arc<Inbox>,
    pub reconciler: Option<Arc<Reconciler>>,
}

impl Operations {
    pub async fn build(config: &Config) -> anyhow::Result<Operations> {
        let db = Db::connect(&config.database_url).await?;
        db.migrate().await?;
        let metrics = Arc::new(Metrics::new());
        // Mail these commands queue is sent by `serve`'s outbox worker.
        let writer = Writer::start(
            db.clone(),
            config.manage_url(),
            Arc::new(Notify::new()),
            Box::new(|_| {}),
        );
        let inbox = Arc::new(Inbox::new(
            db.clone(),
            Verifier::new(&[]),
            writer,
            metrics.clone(),
        ));
        let reconciler = reconciler(config, &db, &inbox, &metrics)?;
        Ok(Operations { inbox, reconciler })
    }
}

/// The reconciler, when a Backend API key is configured.
fn reconciler(
    config: &Config,
    db: &Db,
    inbox: &Arc<Inbox>,
    metrics: &Arc<Metrics>,
) -> anyhow::Result<Option<Arc<Reconciler>>> {
    let Some((clerk, key)) = config
        .clerk
        .as_ref()
        .and_then(|c| c.secret_key.as_ref().map(|k| (c, k)))
    else {
        return Ok(None);
    };
    let api = ClerkApi::new(&clerk.api_url, key.clone(), metrics.clone())
        .context("building the Backend API client")?;
    Ok(Some(Arc::new(Reconciler::new(
        api,
        db.clone(),
        inbox.clone(),
        metrics.clone(),
    ))))
}

fn leptos_options(addr: SocketAddr) -> anyhow::Result<LeptosOptions> {
    let mut opts = match leptos::config::get_configuration(Some("Leptos.toml")) {
        Ok(conf) => conf.leptos_options,
        // Deployed without Leptos.toml: LEPTOS_* variables and defaults.
        Err(_) => {
            leptos::config::get_configuration(None)
                .map_err(|e| anyhow::anyhow!("LEPTOS_*: {e}"))?
                .leptos_options
        }
    };
    opts.site_addr = addr;
    Ok(opts)
}

impl Application {
    pub async fn build(config: Config) -> anyhow::Result<Application> {
        Self::build_with(config, Seams::default()).await
    }

    /// `build`, with test doubles where `seams` names them.
    pub async fn build_with(config: Config, seams: Seams) -> anyhow::Result<Application> {
        let catalog =
            Catalog::from_toml(&std::fs::read_to_string(&config.plans_file).with_context(
                || format!("PLANS_FILE: cannot read {}", config.plans_file.display()),
            )?)
            .map_err(|e| anyhow::anyhow!("PLANS_FILE: {e}"))?;

        // The data folder holds the demo issuer's key and secret, mail and (by default) the
        // database: this user's only, also when an older version made it world-readable.
        crate::private_files::private_dir(&config.data_dir)
            .with_context(|| format!("DATA_DIR: cannot create {}", config.data_dir.display()))?;
        for secret in ["demo-key.pem", "demo-webhook-secret"] {
            crate::private_files::private_file(&config.data_dir.join(secret))
                .with_context(|| format!("making {secret} private"))?;
        }
        let db = Db::connect(&config.database_url).await?;
        db.migrate().await?;

        let listener = TcpListener::bind(config.listen_addr)
            .await
            .with_context(|| {
                format!("LEPTOS_SITE_ADDR: cannot listen on {}", config.listen_addr)
            })?;
        let addr = listener.local_addr()?;
        let self_url = format!("http://{addr}");

        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .context("building the HTTP client")?;

        let demo = if config.demo_mode() {
            Some(Arc::new(DemoIssuer::load(
                &config.data_dir,
                config.issuer(),
                config.webhook_secrets.first(),
                config.demo_session_ttl_secs,
            )?))
        } else {
            None
        };

        let keys = match (&demo, &config.jwt_key_pem, &config.clerk) {
            (Some(d), _, _) => KeyStore::fixed(d.verification_keys()),
            (None, Some(pem), _) => KeyStore::pem(pem).context("CLERK_JWT_KEY")?,
            (None, None, Some(clerk)) => {
                let mut urls = Vec::new();
                match &config.jwks_url {
                    Some(u) => urls.push((u.clone(), None)),
                    None => {
                        urls.push((clerk.jwks_url(), None));
                        if let Some(sk) = &clerk.secret_key {
                            urls.push((format!("{}/v1/jwks", clerk.api_url), Some(sk.clone())));
                        }
                    }
                }
                KeyStore::jwks(urls, config.jwks_cooldown, http.clone())
            }
            (None, None, None) => unreachable!("no Clerk keys means demo mode"),
        };
        let tokens = Arc::new(TokenVerifier::new(
            keys,
            config.issuer(),
            config.authorized_parties.clone(),
        ));

        let mut secrets = config.webhook_secrets.clone();
        if let Some(d) = &demo {
            if secrets.is_empty() {
                secrets.push(d.webhook_secret.clone());
            }
        }

        let metrics_listener = match config.metrics_addr {
            Some(a) => Some(TcpListener::bind(a).await.with_context(|| {
                format!("METRICS_ADDR: cannot listen on {a} (set another address or `off`)")
            })?),
            None => None,
        };
        let metrics = Arc::new(Metrics::new());
        let mail_notify = Arc::new(Notify::new());
        let transport = mail::Transport::from_config(config.smtp_url_exposed(), &config.data_dir)?;
        let from: lettre::message::Mailbox = config.mail_from.parse().context("MAIL_FROM")?;

        let catalog = Arc::new(catalog);
        let gate = Arc::new(Gate::new(
            db.clone(),
            tokens,
            catalog,
            Policy::with_grace_days(config.past_due_grace_days),
            config
                .clerk
                .as_ref()
                .map(|c| cookie_suffix(&c.publishable_key)),
            metrics.clone(),
        ));
        let on_commit: OnCommit = Box::new({
            let gate = gate.clone();
            let after_commit = seams.after_commit;
            move |changed| {
                if changed {
                    gate.invalidate();
                }
                if let Some(hook) = &after_commit {
                    hook();
                }
            }
        });
        let writer = Writer::start(
            db.clone(),
            config.manage_url(),
            mail_notify.clone(),
            on_commit,
        );
        let inbox = Arc::new(Inbox::new(
            db.clone(),
            Verifier::new(&secrets),
            writer,
            metrics.clone(),
        ));
        let reconciler = reconciler(&config, &db, &inbox, &metrics)?;
        if reconciler.is_none() && config.reconcile_interval.is_some() && !config.demo_mode() {
            tracing::warn!("no CLERK_SECRET_KEY: the reconciliation sweep is off");
        }
        let clock: Clock = seams.clock.unwrap_or_else(|| Arc::new(now_ms));
        let leases = Leases::new(db.clone(), clock.clone());
        // Once at start-up, then every hour in the background (by one instance of several).
        purge(&inbox, config.inbox_retention_days, &clock, &leases).await;
        let background = Background {
            inbox: inbox.clone(),
            reconciler: reconciler.clone(),
            reconcile_interval: config.reconcile_interval,
            retention_days: config.inbox_retention_days,
            clock,
            leases,
            gate: gate.clone(),
            metrics: metrics.clone(),
        };
        let leptos_options = leptos_options(addr)?;
        // cargo-leptos' live-reload socket, when `cargo leptos watch` runs this process.
        let reload_port = (config.app_env == AppEnv::Development
            && std::env::var_os("LEPTOS_WATCH").is_some())
        .then(|| u16::try_from(leptos_options.reload_port).ok())
        .flatten();
        let csp = Csp::new(
            config.clerk.as_ref().map(|c| c.frontend_api_host.as_str()),
            reload_port,
            config.app_url.starts_with("https://"),
        );
        let state = AppState::new(Wiring {
            leptos_options,
            db: db.clone(),
            gate,
            inbox,
            reconciler,
            limiter: RateLimiter::new(config.rate_limit_per_minute),
            config: Arc::new(config),
            demo,
            http,
            self_url,
            csp,
        });
        tokio::spawn(mail::worker(db, transport, from, mail_notify));

        let router = crate::http::router(state.clone());
        Ok(Application {
            listener,
            metrics_listener,
            router,
            state,
            background,
        })
    }

    pub fn port(&self) -> u16 {
        self.listener.local_addr().map(|a| a.port()).unwrap_or(0)
    }

    /// The metrics listener's port, when it listens.
    pub fn metrics_port(&self) -> Option<u16> {
        self.metrics_listener
            .as_ref()
            .and_then(|l| l.local_addr().ok())
            .map(|a| a.port())
    }

    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        info!(addr = %self.listener.local_addr()?, demo = self.state.demo().is_some(), "plangate listening");
        if let Some(l) = self.metrics_listener {
            info!(addr = %l.local_addr()?, "metrics listening");
            let router = crate::http::metrics_router(self.state.clone());
            tokio::spawn(async move {
                if let Err(e) = serve(l, router, std::future::pending()).await {
                    tracing::error!(error = %e, "metrics listener stopped");
                }
            });
        }
        if let Some((soft, hard)) = raise_open_file_limit() {
            tracing::debug!(soft, hard, "open-file limit");
        }
        self.background.spawn();
        // The peer address is the client address (unless TRUSTED_PROXIES says otherwise).
        serve(self.listener, self.router, shutdown_signal())
            .await
            .context("serving HTTP")
    }
}

impl Background {
    fn spawn(self) {
        let Background {
            inbox,
            reconciler,
            reconcile_interval,
            retention_days,
            clock,
            leases,
            gate,
            metrics,
        } = self;
        tokio::spawn(crate::services::invalidation::follow(
            leases.db.clone(),
            gate,
            metrics,
        ));
        let retention_leases = leases.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(RETENTION_PERIOD).await;
                purge(&inbox, retention_days, &clock, &retention_leases).await;
            }
        });
        if let (Some(reconciler), Some(interval)) = (reconciler, reconcile_interval) {
            tokio::spawn(async move {
                // A failed sweep is tried again sooner than a whole period later.
                let retry = interval.min(Duration::from_secs(60));
                let mut wait = interval.min(Duration::from_secs(30));
                loop {
                    tokio::time::sleep(wait).await;
                    // One sweep per interval across all instances: the lease lasts the interval.
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
            });
        }
    }
}

/// Removes the payloads older than the retention period (the rows stay for deduplication),
/// unless another instance did within the last period.
async fn purge(inbox: &Inbox, days: i64, clock: &Clock, leases: &Leases) {
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

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        if let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        {
            s.recv().await;
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
}
