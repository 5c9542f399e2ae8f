//! `Application::build` wires the configuration, the services, the session keys and the routes,
//! and binds the listeners (port 0 allowed, for tests); `run_until_stopped` serves until
//! SIGINT/SIGTERM. The services are `services::Services`, the loops `background`, where the
//! session keys come from `auth::KeyStore::for_config`: this file only puts them together.

use std::{net::SocketAddr, sync::Arc, time::Duration};

use anyhow::Context;
use axum::Router;
use leptos::config::LeptosOptions;
use tokio::net::TcpListener;
use tracing::info;

pub use crate::background::Clock;
use crate::{
    auth::Sessions,
    background::Background,
    config::{AppEnv, Config},
    db::now_ms,
    demo::DemoIssuer,
    http::serve::{raise_open_file_limit, serve},
    security::{csp::Csp, RateLimiter},
    services::{AfterCommit, Console, Services},
    state::{AppState, Wiring},
    webhooks::verify::Verifier,
};

/// Where a test may put its own code into the app it builds.
#[derive(Default)]
pub struct Seams {
    /// Runs in the webhook writer after each durable commit, before its deliveries are
    /// answered (a test blocks here to see that nothing is acknowledged meanwhile).
    pub after_commit: Option<AfterCommit>,
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
        // The data folder holds the demo issuer's key and secret, mail and (by default) the
        // database: this user's only, also when an older version made it world-readable.
        crate::private_files::private_dir(&config.data_dir)
            .with_context(|| format!("DATA_DIR: cannot create {}", config.data_dir.display()))?;
        for secret in ["demo-key.pem", "demo-webhook-secret"] {
            crate::private_files::private_file(&config.data_dir.join(secret))
                .with_context(|| format!("making {secret} private"))?;
        }
        let clock: Clock = seams.clock.unwrap_or_else(|| Arc::new(now_ms));
        let services = Arc::new(Services::build(&config, seams.after_commit, clock.clone()).await?);

        let listener = TcpListener::bind(config.listen_addr)
            .await
            .with_context(|| {
                format!("LEPTOS_SITE_ADDR: cannot listen on {}", config.listen_addr)
            })?;
        let addr = listener.local_addr()?;
        let metrics_listener = match config.operations.metrics_addr {
            Some(a) => Some(TcpListener::bind(a).await.with_context(|| {
                format!("METRICS_ADDR: cannot listen on {a} (set another address or `off`)")
            })?),
            None => None,
        };
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .context("building the HTTP client")?;

        let demo = DemoIssuer::for_config(&config)?;
        let demo_keys = demo.as_ref().map(|d| d.verification_keys());
        let sessions = Arc::new(Sessions::for_config(&config, demo_keys, http.clone())?);
        // Demo mode signs its own deliveries when no secret is configured.
        let mut secrets = config.webhook_secrets.clone();
        if let (Some(d), true) = (&demo, secrets.is_empty()) {
            secrets.push(d.webhook_secret.clone());
        }
        if services.reconciler.is_none()
            && config.operations.reconcile_interval.is_some()
            && demo.is_none()
        {
            tracing::warn!("no CLERK_SECRET_KEY: the reconciliation sweep is off");
        }
        let console = Arc::new(Console::for_config(
            &services,
            config.operations.admin_user_ids.clone(),
            demo.clone().map(|d| {
                let hook = format!("http://{addr}{}", crate::http::WEBHOOK_PATH);
                (d, http.clone(), hook)
            }),
        ));
        let demo_keys = demo
            .as_ref()
            .map(|_| Arc::new(crate::demo::api_keys::DemoKeys::new(services.db.clone())));
        let api_keys = Arc::new(crate::auth::ApiKeys::for_config(
            services.clerk_api.clone(),
            demo_keys
                .as_ref()
                .map(|k| (format!("http://{addr}/demo/bapi"), k.bapi_secret.clone())),
            services.metrics.clone(),
            clock.clone(),
        )?);
        let background =
            Background::start(&config, services.clone(), console.clone(), clock).await?;

        let leptos_options = leptos_options(addr)?;
        // cargo-leptos' live-reload socket, when `cargo leptos watch` runs this process.
        let reload_port = (config.app_env == AppEnv::Development
            && std::env::var_os("LEPTOS_WATCH").is_some())
        .then(|| u16::try_from(leptos_options.reload_port).ok())
        .flatten();
        let csp = Csp::new(
            config.clerk().map(|c| c.frontend_api_host.as_str()),
            reload_port,
            config.app_url.starts_with("https://"),
        );
        let state = AppState::new(Wiring {
            leptos_options,
            services,
            sessions,
            api_keys,
            demo_keys,
            console,
            verifier: Arc::new(Verifier::new(&secrets)),
            limiter: RateLimiter::new(config.limits.rate_limit_per_minute),
            config: Arc::new(config),
            demo,
            http,
            self_url: format!("http://{addr}"),
            csp,
        });
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
        let served = serve(self.listener, self.router, shutdown_signal())
            .await
            .context("serving HTTP");
        // Metered units held and not spent go back for the other instances (README, "Usage
        // limits"); a crash skips this and only leaves them unused.
        if let Err(e) = self.state.usage().settle().await {
            tracing::warn!(error = %e, "giving unspent units back at shutdown failed");
        }
        served
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
