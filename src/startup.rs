//! `Application::build` wires config, database, keys and routes, and binds the listener (port 0
//! allowed, for tests); `run_until_stopped` serves until SIGINT/SIGTERM.

use std::{
    net::SocketAddr,
    sync::{atomic::AtomicU64, Arc, OnceLock},
    time::Duration,
};

use anyhow::Context;
use axum::{
    extract::DefaultBodyLimit,
    http::{header, HeaderValue, Request},
    middleware,
    routing::{get, post},
    Router,
};
use leptos::prelude::*;
use leptos_axum::{generate_route_list, LeptosRoutes};
use tokio::{net::TcpListener, sync::Notify};
use tower_http::{
    limit::RequestBodyLimitLayer, set_header::SetResponseHeaderLayer, trace::TraceLayer,
};
use tracing::info;

use crate::{
    api,
    app::{shell, App},
    auth::{KeyStore, TokenVerifier},
    billing::Catalog,
    config::Config,
    db::Db,
    demo::{self, DemoIssuer},
    mail,
    state::{AppState, Shared},
    webhooks::{self, verify::Verifier},
};

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

        let manage_url = webhooks::manage_url(config.clerk.as_ref(), &config.app_url);
        let payers = Arc::new(crate::access::PayerCache::default());
        let writer = webhooks::writer::Writer::start(
            db.clone(),
            manage_url,
            mail_notify.clone(),
            payers.clone(),
        );
        let leptos_options = leptos_options(addr)?;
        // cargo-leptos' live-reload socket, when `cargo leptos watch` runs this process.
        let reload_port = (config.app_env == crate::config::AppEnv::Development
            && std::env::var_os("LEPTOS_WATCH").is_some())
        .then(|| u16::try_from(leptos_options.reload_port).ok())
        .flatten();
        let csp = crate::security::csp::Csp::new(
            config.clerk.as_ref().map(|c| c.frontend_api_host.as_str()),
            reload_port,
            config.app_url.starts_with("https://"),
        );
        let limiter = crate::security::RateLimiter::new(config.rate_limit_per_minute);
        let cookie_suffix = config
            .clerk
            .as_ref()
            .map(|c| crate::auth::extract::cookie_suffix(&c.publishable_key));
        let state = AppState::new(Shared {
            leptos_options,
            db: db.clone(),
            tokens,
            webhook: Verifier::new(&secrets),
            writer,
            payers,
            config: Arc::new(config),
            catalog: Arc::new(catalog),
            mail_notify: mail_notify.clone(),
            demo,
            http,
            self_url,
            rejected_webhooks: Arc::new(AtomicU64::new(0)),
            pages: Default::default(),
            limiter,
            csp,
            cookie_suffix,
        });
        tokio::spawn(mail::worker(db, transport, from, mail_notify));

        let router = router(state.clone());
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
        info!(addr = %self.listener.local_addr()?, demo = self.state.demo.is_some(), "plangate listening");
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

/// The app's route list, generated once per process. Generating it sets a process-global flag
/// that makes any resource first polled meanwhile wait forever (leptos issue #4773); generating
/// it again while another `Application` in the process serves pages (tests run many) hung
/// those pages. Once, before anything serves, it cannot overlap a render.
fn route_list() -> Vec<leptos_axum::AxumRouteListing> {
    static ROUTES: OnceLock<Vec<leptos_axum::AxumRouteListing>> = OnceLock::new();
    ROUTES.get_or_init(|| generate_route_list(App)).clone()
}

pub fn router(state: AppState) -> Router {
    let routes = route_list();
    let leptos_options = state.leptos_options.clone();

    let webhook = Router::new()
        .route(crate::security::WEBHOOK_PATH, post(webhooks::receive))
        .layer(DefaultBodyLimit::disable())
        .layer(RequestBodyLimitLayer::new(webhooks::BODY_LIMIT));

    let mut app = Router::new()
        .route("/healthz", get(api::healthz))
        .route("/readyz", get(api::readyz))
        .route("/api/me", get(api::me))
        .route("/api/premium-feature", get(api::premium_feature))
        .merge(webhook);

    if state.demo.is_some() {
        app = app
            .route("/.well-known/jwks.json", get(demo::routes::jwks))
            .route("/demo/sign-in", post(demo::routes::sign_in))
            .route("/demo/sign-out", post(demo::routes::sign_out))
            .route("/demo/refresh", post(demo::routes::refresh))
            .route("/demo/action", post(demo::routes::action));
    }

    let ctx_state = state.clone();
    let mut app = app
        .route(
            "/api/{*rest}",
            get(api::api_not_found).post(api::api_not_found),
        )
        .leptos_routes_with_context(
            &state,
            routes,
            move || {
                provide_context(ctx_state.clone());
                crate::security::provide_request_nonce();
            },
            {
                // Behind an Arc: axum clones a route's handler for every request, and with it
                // whatever this closure holds (the options were ~3.5% of a cached page's CPU).
                let leptos_options = Arc::new(leptos_options.clone());
                move || shell(LeptosOptions::clone(&leptos_options))
            },
        )
        .fallback(leptos_axum::file_and_error_handler_with_context::<
            AppState,
            _,
        >(
            {
                let s = state.clone();
                move || {
                    provide_context(s.clone());
                    crate::security::provide_request_nonce();
                }
            },
            shell,
        ));
    // Inside the demo refresh below, so a refreshed session is seen as one.
    app = app.layer(middleware::from_fn_with_state(
        state.clone(),
        crate::page_cache::middleware,
    ));
    // Demo only: the session refresh that Clerk's handshake does in production.
    if state.demo.is_some() {
        app = app.layer(middleware::from_fn_with_state(
            state.clone(),
            demo::routes::refresh_middleware,
        ));
    }
    // Outside the demo refresh and the page cache: the client address, the origin check, the
    // token verdict and the nonce are in place before either runs.
    app = app.layer(middleware::from_fn_with_state(
        state.clone(),
        crate::security::guard,
    ));
    app.layer(SetResponseHeaderLayer::if_not_present(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::REFERRER_POLICY,
            HeaderValue::from_static("strict-origin-when-cross-origin"),
        ))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::X_FRAME_OPTIONS,
            HeaderValue::from_static("DENY"),
        ))
        // Method and path only: never headers (tokens) or bodies.
        .layer(TraceLayer::new_for_http().make_span_with(|req: &Request<_>| {
            tracing::info_span!("http", method = %req.method(), path = %req.uri().path())
        }))
        .with_state(state)
}
