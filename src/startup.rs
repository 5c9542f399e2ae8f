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
    config::{AppEnv, Config},
    db::Db,
    demo::DemoIssuer,
    mail,
    security::{csp::Csp, RateLimiter},
    services::{Gate, Inbox},
    state::{AppState, Wiring},
    webhooks::{verify::Verifier, writer::Writer},
};

/// Where a test may put its own code into the app it builds.
#[derive(Default)]
pub struct Seams {
    /// Runs in the webhook writer after each durable commit, before its deliveries are
    /// answered (a test blocks here to see that nothing is acknowledged meanwhile).
    pub after_commit: Option<Box<dyn Fn() + Send + Sync>>,
}

pub struct Application {
    listener: TcpListener,
    router: Router,
    pub state: AppState,
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
                        urls.push((
                            format!("https://{}/.well-known/jwks.json", clerk.frontend_api_host),
                            None,
                        ));
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
        ));
        let writer = Writer::start(
            db.clone(),
            config.manage_url(),
            mail_notify.clone(),
            Box::new({
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
            }),
        );
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
            inbox: Inbox::new(db.clone(), Verifier::new(&secrets), writer),
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
            router,
            state,
        })
    }

    pub fn port(&self) -> u16 {
        self.listener.local_addr().map(|a| a.port()).unwrap_or(0)
    }

    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        info!(addr = %self.listener.local_addr()?, demo = self.state.demo().is_some(), "plangate listening");
        // The peer address is the client address (unless TRUSTED_PROXIES says otherwise).
        axum::serve(
            self.listener,
            self.router
                .into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(shutdown_signal())
        .await
        .context("serving HTTP")
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
