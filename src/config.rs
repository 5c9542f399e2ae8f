//! Typed configuration from the environment, validated once at start-up.
//!
//! Everything is read through a lookup function so tests can build a `Config` without touching
//! the process environment. Every error names the variable at fault.

use std::{net::SocketAddr, path::PathBuf, time::Duration};

use base64::Engine;
use secrecy::{ExposeSecret, SecretString};

use crate::security::TrustedProxies;

#[derive(Debug, thiserror::Error)]
#[error("invalid configuration: {var}: {reason}")]
pub struct ConfigError {
    pub var: &'static str,
    pub reason: String,
}

fn err(var: &'static str, reason: impl Into<String>) -> ConfigError {
    ConfigError {
        var,
        reason: reason.into(),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AppEnv {
    Development,
    Production,
}

/// Who issues the session tokens: plangate's own demo issuer (development without Clerk keys)
/// or a Clerk instance. Everything derived from it is derived here, once.
#[derive(Debug, Clone)]
pub enum Identity {
    Demo {
        /// Tokens carry `APP_URL` as their issuer.
        issuer: String,
        /// The demo issuer's handshake endpoint base (`<APP_URL>/demo`, or a test's stand-in).
        frontend_api_url: String,
        /// The demo session token lifetime (`DEMO_SESSION_TTL_SECS`, default 60 like Clerk's).
        session_ttl_secs: i64,
    },
    Clerk(ClerkInstance),
}

/// Whether a Clerk instance is a development (`pk_test_`) or production one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InstanceKind {
    Development,
    Production,
}

/// A Clerk instance, from its publishable key, and every URL derived from it.
#[derive(Debug, Clone)]
pub struct ClerkInstance {
    pub publishable_key: String,
    /// Frontend API host, e.g. `clerk.example.com` or `foo-bar-1.clerk.accounts.dev`.
    pub frontend_api_host: String,
    pub secret_key: Option<SecretString>,
    /// The Backend API base (`CLERK_API_URL`).
    pub api_url: String,
    /// Where the handshake goes: `https://<frontend-api-host>`, or in development
    /// `CLERK_FRONTEND_API_URL` (a test's stand-in).
    pub frontend_api_url: String,
}

impl ClerkInstance {
    /// The issuer session tokens must carry.
    pub fn issuer(&self) -> String {
        format!("https://{}", self.frontend_api_host)
    }

    /// The instance's public keys, served by its Frontend API.
    pub fn jwks_url(&self) -> String {
        format!("https://{}/.well-known/jwks.json", self.frontend_api_host)
    }

    pub fn kind(&self) -> InstanceKind {
        if self.publishable_key.starts_with("pk_test_") {
            InstanceKind::Development
        } else {
            InstanceKind::Production
        }
    }

    /// Clerk's account portal, where a payer manages their subscription and card.
    pub fn account_portal_url(&self) -> String {
        let host = &self.frontend_api_host;
        let accounts = match host.strip_prefix("clerk.") {
            Some(rest) => format!("accounts.{rest}"),
            None => host.replace(".clerk.accounts.dev", ".accounts.dev"),
        };
        format!("https://{accounts}/user")
    }

    /// clerk-js v6, from the instance's Frontend API.
    pub fn clerk_js_url(&self) -> String {
        format!(
            "https://{}/npm/@clerk/clerk-js@6/dist/clerk.browser.js",
            self.frontend_api_host
        )
    }

    /// `@clerk/ui`, which mounts the PricingTable and the other components.
    pub fn clerk_ui_url(&self) -> String {
        format!(
            "https://{}/npm/@clerk/ui@1/dist/ui.browser.js",
            self.frontend_api_host
        )
    }

    /// Clerk's cookie-name suffix for this publishable key.
    pub fn cookie_suffix(&self) -> String {
        cookie_suffix(&self.publishable_key)
    }
}

impl Identity {
    pub fn clerk(&self) -> Option<&ClerkInstance> {
        match self {
            Identity::Clerk(c) => Some(c),
            Identity::Demo { .. } => None,
        }
    }

    /// The issuer session tokens must carry.
    pub fn issuer(&self) -> String {
        match self {
            Identity::Clerk(c) => c.issuer(),
            Identity::Demo { issuer, .. } => issuer.clone(),
        }
    }

    /// Where the handshake sends browsers.
    pub fn frontend_api_url(&self) -> &str {
        match self {
            Identity::Clerk(c) => &c.frontend_api_url,
            Identity::Demo {
                frontend_api_url, ..
            } => frontend_api_url,
        }
    }
}

/// Session-token keys and who may present the tokens.
#[derive(Debug, Clone)]
pub struct TokenSettings {
    /// `CLERK_JWT_KEY`: a PEM key for networkless verification (wins over the JWKS).
    pub jwt_key_pem: Option<String>,
    /// `CLERK_JWKS_URL`: where the keys are, instead of the Frontend API's JWKS.
    pub jwks_url: Option<String>,
    pub jwks_cooldown: Duration,
    /// Origins accepted in `azp` (`CLERK_AUTHORIZED_PARTIES`, default `APP_URL`).
    pub authorized_parties: Vec<String>,
}

/// Outgoing mail.
#[derive(Debug, Clone)]
pub struct MailSettings {
    /// `SMTP_URL`; `None` writes mail to `DATA_DIR/mail/` (development).
    pub smtp_url: Option<SecretString>,
    pub from: String,
}

impl MailSettings {
    pub fn smtp_url_exposed(&self) -> Option<&str> {
        self.smtp_url.as_ref().map(|s| s.expose_secret())
    }
}

/// Limits on hostile traffic.
#[derive(Debug, Clone)]
pub struct LimitSettings {
    /// Failed attempts allowed per client address per minute; 0 disables the limit.
    pub rate_limit_per_minute: u32,
    pub trusted_proxies: TrustedProxies,
}

/// The operator's side: metrics, the drift sweep, inbox retention.
#[derive(Debug, Clone)]
pub struct OperationSettings {
    /// Where Prometheus scrapes `/metrics`; `None` when `METRICS_ADDR=off`.
    pub metrics_addr: Option<SocketAddr>,
    /// The drift sweep's period; `None` disables it (`RECONCILE_INTERVAL_SECS=0`).
    pub reconcile_interval: Option<Duration>,
    /// Stored webhook payloads older than this are removed (their rows stay).
    pub inbox_retention_days: i64,
    /// The operators (`ADMIN_USER_IDS`): the Clerk user ids the console at `/admin` exists
    /// for; empty, no console. In demo mode, unset means the demo operator.
    pub admin_user_ids: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct Config {
    pub app_env: AppEnv,
    pub database_url: String,
    pub app_url: String,
    pub listen_addr: SocketAddr,
    pub data_dir: PathBuf,
    pub plans_file: PathBuf,
    pub json_logs: bool,
    pub past_due_grace_days: i64,
    pub identity: Identity,
    /// `CLERK_WEBHOOK_SECRET` (or `CLERK_WEBHOOK_SIGNING_SECRET`): one or more, while rotating.
    pub webhook_secrets: Vec<SecretString>,
    pub tokens: TokenSettings,
    pub mail: MailSettings,
    pub limits: LimitSettings,
    pub operations: OperationSettings,
}

impl Config {
    pub fn demo_mode(&self) -> bool {
        matches!(self.identity, Identity::Demo { .. })
    }

    /// The Clerk instance, unless in demo mode.
    pub fn clerk(&self) -> Option<&ClerkInstance> {
        self.identity.clerk()
    }

    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let env = Vars(&get);
        let app_env = app_env(&env)?;
        let production = app_env == AppEnv::Production;
        let data_dir = PathBuf::from(env.get("DATA_DIR").unwrap_or_else(|| "data".into()));
        let database_url = database_url(&env, &data_dir)?;
        let (listen_addr, app_url) = addresses(&env)?;
        let identity = identity(&env, production, &app_url)?;
        let webhook_secrets = webhook_secrets(&env, production)?;
        let tokens = token_settings(&env, production, &app_url)?;
        let mail = mail(&env)?;
        let past_due_grace_days = env.num("PAST_DUE_GRACE_DAYS", 0)?;
        let limits = LimitSettings {
            rate_limit_per_minute: env.num("RATE_LIMIT_PER_MINUTE", 120)?.min(1_000_000) as u32,
            trusted_proxies: match env.get("TRUSTED_PROXIES") {
                Some(v) => TrustedProxies::parse(&v).map_err(|bad| {
                    err(
                        "TRUSTED_PROXIES",
                        format!("`{bad}` is not an IP address or a CIDR range"),
                    )
                })?,
                None => Default::default(),
            },
        };
        if production && !app_url.starts_with("https://") {
            return Err(err("APP_URL", "must be https:// in production"));
        }
        let operations = operations(&env, matches!(identity, Identity::Demo { .. }))?;
        if operations
            .metrics_addr
            .is_some_and(|m| m.port() != 0 && m.port() == listen_addr.port())
        {
            return Err(err(
                "METRICS_ADDR",
                "must not be the public port (LEPTOS_SITE_ADDR): metrics are for the operator only",
            ));
        }
        let json_logs = match env.get("LOG_FORMAT").as_deref() {
            None | Some("text") | Some("pretty") => false,
            Some("json") => true,
            Some(_) => return Err(err("LOG_FORMAT", "expected `text` or `json`")),
        };
        Ok(Config {
            app_env,
            database_url,
            app_url,
            listen_addr,
            data_dir,
            plans_file: PathBuf::from(env.get("PLANS_FILE").unwrap_or_else(|| "plans.toml".into())),
            json_logs,
            past_due_grace_days,
            identity,
            webhook_secrets,
            tokens,
            mail,
            limits,
            operations,
        })
    }

    /// Where a payer fixes their card: Clerk's account portal, or the demo dashboard.
    pub fn manage_url(&self) -> String {
        match self.clerk() {
            Some(c) => c.account_portal_url(),
            None => format!("{}/dashboard/billing", self.app_url),
        }
    }

    /// The issuer that session tokens must carry.
    pub fn issuer(&self) -> String {
        self.identity.issuer()
    }
}

/// The settings as read: empty values count as unset (`.env.example` ships blank secrets).
struct Vars<'a>(&'a dyn Fn(&str) -> Option<String>);

impl Vars<'_> {
    fn get(&self, k: &str) -> Option<String> {
        (self.0)(k)
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
    }

    fn num(&self, var: &'static str, default: i64) -> Result<i64, ConfigError> {
        parse_num(self.get(var), var, default)
    }
}

fn app_env(env: &Vars) -> Result<AppEnv, ConfigError> {
    match env.get("APP_ENV").as_deref() {
        None | Some("development") | Some("dev") => Ok(AppEnv::Development),
        Some("production") | Some("prod") => Ok(AppEnv::Production),
        Some(other) => Err(err(
            "APP_ENV",
            format!("expected `development` or `production`, got `{other}`"),
        )),
    }
}

fn database_url(env: &Vars, data_dir: &std::path::Path) -> Result<String, ConfigError> {
    let database_url = env
        .get("DATABASE_URL")
        .unwrap_or_else(|| format!("sqlite://{}/plangate.db", data_dir.display()));
    if !(database_url.starts_with("sqlite:")
        || database_url.starts_with("postgres://")
        || database_url.starts_with("postgresql://"))
    {
        let scheme = database_url.split(':').next().unwrap_or_default();
        return Err(err(
            "DATABASE_URL",
            format!("unsupported scheme `{scheme}`: use sqlite://… or postgres://…"),
        ));
    }
    Ok(database_url)
}

/// The listening address and the public origin (`APP_URL`, by default 127.0.0.1 on that port).
fn addresses(env: &Vars) -> Result<(SocketAddr, String), ConfigError> {
    let listen_addr: SocketAddr = env
        .get("LEPTOS_SITE_ADDR")
        .unwrap_or_else(|| "127.0.0.1:3000".into())
        .parse()
        .map_err(|_| {
            err(
                "LEPTOS_SITE_ADDR",
                "expected host:port, e.g. 127.0.0.1:3000",
            )
        })?;
    let app_url = env
        .get("APP_URL")
        // The address developers open (README: http://127.0.0.1:3000): state-changing requests
        // must come from exactly this origin.
        .unwrap_or_else(|| format!("http://127.0.0.1:{}", listen_addr.port()))
        .trim_end_matches('/')
        .to_string();
    if !(app_url.starts_with("http://") || app_url.starts_with("https://")) {
        return Err(err(
            "APP_URL",
            "expected an origin such as http://localhost:3000",
        ));
    }
    Ok((listen_addr, app_url))
}

/// The plans and gates of `PLANS_FILE`: what `serve` runs with and `plangate check` checks;
/// the error says what is wrong with the file (the caller names it).
pub fn load_catalog(path: &std::path::Path) -> Result<crate::billing::Catalog, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read it: {e}"))?;
    crate::billing::Catalog::from_toml(&text).map_err(|e| e.to_string())
}

/// Clerk's cookie suffix: the first 8 characters of URL-safe base64 of SHA-1(publishable key).
pub fn cookie_suffix(publishable_key: &str) -> String {
    use sha1::{Digest, Sha1};
    let digest = Sha1::digest(publishable_key.as_bytes());
    let enc = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(digest);
    enc.chars().take(8).collect()
}

/// Whether `url` is an `https` URL (any spelling of the scheme).
fn is_https(url: &str) -> bool {
    reqwest::Url::parse(url).is_ok_and(|u| u.scheme() == "https")
}

/// Who issues tokens: the Clerk instance of the keys, or (development only) the demo issuer.
fn identity(env: &Vars, production: bool, app_url: &str) -> Result<Identity, ConfigError> {
    let stand_in = match env.get("CLERK_FRONTEND_API_URL") {
        Some(_) if production => {
            return Err(err(
                "CLERK_FRONTEND_API_URL",
                "a test stand-in, not accepted in production (the publishable key names the Frontend API)",
            ))
        }
        Some(u) => {
            let parsed =
                reqwest::Url::parse(&u).map_err(|_| err("CLERK_FRONTEND_API_URL", "not a URL"))?;
            if !matches!(parsed.scheme(), "http" | "https") {
                return Err(err("CLERK_FRONTEND_API_URL", "expected http:// or https://"));
            }
            Some(u.trim_end_matches('/').to_string())
        }
        None => None,
    };
    let session_ttl_secs = env.num("DEMO_SESSION_TTL_SECS", 60)?;
    if !(1..=3600).contains(&session_ttl_secs) {
        return Err(err("DEMO_SESSION_TTL_SECS", "must be 1–3600 seconds"));
    }
    Ok(match clerk(env, production, stand_in.clone())? {
        Some(c) => Identity::Clerk(c),
        None => Identity::Demo {
            issuer: app_url.to_string(),
            frontend_api_url: stand_in.unwrap_or_else(|| format!("{app_url}/demo")),
            session_ttl_secs,
        },
    })
}

/// The Clerk instance, from its keys; `None` (demo mode) only in development.
fn clerk(
    env: &Vars,
    production: bool,
    frontend_api_url: Option<String>,
) -> Result<Option<ClerkInstance>, ConfigError> {
    let allow_test_keys = env.get("ALLOW_TEST_KEYS").as_deref() == Some("1");
    let test_key_in_production = |var| {
        err(
            var,
            "a test key in production (set ALLOW_TEST_KEYS=1 to allow it)",
        )
    };
    let publishable = env.get("CLERK_PUBLISHABLE_KEY");
    let secret_key = env.get("CLERK_SECRET_KEY");
    if let Some(sk) = &secret_key {
        if !(sk.starts_with("sk_test_") || sk.starts_with("sk_live_")) {
            return Err(err("CLERK_SECRET_KEY", "expected sk_test_… or sk_live_…"));
        }
        if production && sk.starts_with("sk_test_") && !allow_test_keys {
            return Err(test_key_in_production("CLERK_SECRET_KEY"));
        }
    }
    let api_url = env
        .get("CLERK_API_URL")
        .unwrap_or_else(|| "https://api.clerk.com".into())
        .trim_end_matches('/')
        .to_string();
    if production && !api_url.starts_with("https://") {
        return Err(err(
            "CLERK_API_URL",
            "must be https:// in production (the secret key is sent to it)",
        ));
    }
    match publishable {
        Some(pk) => {
            let host = frontend_api_host(&pk)
                .ok_or_else(|| err("CLERK_PUBLISHABLE_KEY", "not a valid Clerk publishable key"))?;
            if production && pk.starts_with("pk_test_") && !allow_test_keys {
                return Err(test_key_in_production("CLERK_PUBLISHABLE_KEY"));
            }
            Ok(Some(ClerkInstance {
                publishable_key: pk,
                frontend_api_url: frontend_api_url.unwrap_or_else(|| format!("https://{host}")),
                frontend_api_host: host,
                secret_key: secret_key.map(SecretString::from),
                api_url,
            }))
        }
        None if secret_key.is_some() => Err(err(
            "CLERK_PUBLISHABLE_KEY",
            "required when CLERK_SECRET_KEY is set",
        )),
        None if production => Err(err(
            "CLERK_PUBLISHABLE_KEY",
            "required in production (demo mode is refused)",
        )),
        None => Ok(None),
    }
}

/// `CLERK_WEBHOOK_SECRET` (or Clerk's newer name `CLERK_WEBHOOK_SIGNING_SECRET`): one or more
/// `whsec_` secrets, separated by commas or spaces while rotating.
fn webhook_secrets(env: &Vars, production: bool) -> Result<Vec<SecretString>, ConfigError> {
    let (secrets_var, secrets_raw) = match (
        env.get("CLERK_WEBHOOK_SECRET"),
        env.get("CLERK_WEBHOOK_SIGNING_SECRET"),
    ) {
        (None, Some(v)) => ("CLERK_WEBHOOK_SIGNING_SECRET", Some(v)),
        (v, _) => ("CLERK_WEBHOOK_SECRET", v),
    };
    let mut webhook_secrets = Vec::new();
    for s in secrets_raw
        .iter()
        .flat_map(|v| v.split([',', ' ']))
        .map(str::trim)
        .filter(|s| !s.is_empty())
    {
        webhook_secrets.push(SecretString::from(webhook_secret(s, secrets_var)?));
    }
    if production && webhook_secrets.is_empty() {
        return Err(err(secrets_var, "required in production"));
    }
    Ok(webhook_secrets)
}

/// Where session-token keys come from (a PEM key, a JWKS URL, the refetch cooldown) and the
/// origins accepted in `azp`.
fn token_settings(
    env: &Vars,
    production: bool,
    app_url: &str,
) -> Result<TokenSettings, ConfigError> {
    let jwt_key_pem = env.get("CLERK_JWT_KEY").map(|k| k.replace("\\n", "\n"));
    if let Some(pem) = &jwt_key_pem {
        jsonwebtoken::DecodingKey::from_rsa_pem(pem.as_bytes())
            .map_err(|_| err("CLERK_JWT_KEY", "not a PEM-encoded RSA public key"))?;
    }
    let jwks_url = env.get("CLERK_JWKS_URL");
    if let Some(u) = &jwks_url {
        reqwest::Url::parse(u).map_err(|_| err("CLERK_JWKS_URL", "not a URL"))?;
        // Whoever can alter the key download can mint any session.
        if production && !is_https(u) {
            return Err(err(
                "CLERK_JWKS_URL",
                "must be https:// in production (session keys are downloaded from it)",
            ));
        }
    }
    let jwks_cooldown = Duration::from_secs(env.num("JWKS_REFETCH_COOLDOWN_SECS", 60)? as u64);
    let authorized_parties = match env.get("CLERK_AUTHORIZED_PARTIES") {
        Some(v) => authorized_parties(&v)?,
        None => vec![app_url.to_string()],
    };
    Ok(TokenSettings {
        jwt_key_pem,
        jwks_url,
        jwks_cooldown,
        authorized_parties,
    })
}

/// The metrics listener, the reconciliation period and the inbox retention.
fn operations(env: &Vars, demo: bool) -> Result<OperationSettings, ConfigError> {
    let metrics_addr = match env.get("METRICS_ADDR").as_deref() {
        Some("off") => None,
        other => Some(
            other
                .unwrap_or("127.0.0.1:9464")
                .parse::<SocketAddr>()
                .map_err(|_| {
                    err(
                        "METRICS_ADDR",
                        "expected host:port (e.g. 127.0.0.1:9464) or `off`",
                    )
                })?,
        ),
    };
    let interval = env.num("RECONCILE_INTERVAL_SECS", 3600)?;
    let reconcile_interval = (interval > 0).then(|| Duration::from_secs(interval as u64));
    let inbox_retention_days = env.num("INBOX_RETENTION_DAYS", 30)?;
    if !(1..=36_500).contains(&inbox_retention_days) {
        return Err(err(
            "INBOX_RETENTION_DAYS",
            "expected a whole number of days from 1 to 36500",
        ));
    }
    let admin_user_ids = match env.get("ADMIN_USER_IDS") {
        Some(v) => admin_user_ids(&v)?,
        None if demo => vec![DEMO_OPERATOR.to_string()],
        None => Vec::new(),
    };
    Ok(OperationSettings {
        metrics_addr,
        reconcile_interval,
        inbox_retention_days,
        admin_user_ids,
    })
}

/// The demo operator's user id: the console's operator in demo mode unless `ADMIN_USER_IDS`
/// names others.
pub const DEMO_OPERATOR: &str = "user_demo_operator";

/// `ADMIN_USER_IDS`: Clerk user ids (`user_…`), separated by commas or blanks.
fn admin_user_ids(v: &str) -> Result<Vec<String>, ConfigError> {
    let mut ids: Vec<String> = Vec::new();
    for id in v.split([',', ' ', '\t', '\n']).filter(|s| !s.is_empty()) {
        let shaped = id.len() <= 64
            && id.strip_prefix("user_").is_some_and(|rest| {
                !rest.is_empty()
                    && rest
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
            });
        if !shaped {
            return Err(err(
                "ADMIN_USER_IDS",
                format!("`{id}` is not a Clerk user id (user_…)"),
            ));
        }
        if !ids.iter().any(|i| i == id) {
            ids.push(id.to_string());
        }
    }
    Ok(ids)
}

fn mail(env: &Vars) -> Result<MailSettings, ConfigError> {
    let smtp_url = env.get("SMTP_URL");
    if let Some(u) = &smtp_url {
        if !(u.starts_with("smtp://") || u.starts_with("smtps://")) {
            return Err(err(
                "SMTP_URL",
                "expected smtp://host:port or smtps://user:pass@host",
            ));
        }
    }
    let mail_from = env
        .get("MAIL_FROM")
        .unwrap_or_else(|| "plangate <billing@localhost>".into());
    if mail_from.parse::<lettre::message::Mailbox>().is_err() {
        return Err(err(
            "MAIL_FROM",
            "not a mail address, e.g. Billing <billing@example.com>",
        ));
    }
    Ok(MailSettings {
        smtp_url: smtp_url.map(SecretString::from),
        from: mail_from,
    })
}

fn parse_num(v: Option<String>, var: &'static str, default: i64) -> Result<i64, ConfigError> {
    match v {
        None => Ok(default),
        Some(s) => s
            .parse::<i64>()
            .ok()
            .filter(|n| *n >= 0)
            .ok_or_else(|| err(var, "expected a whole number ≥ 0")),
    }
}

/// The shortest webhook signing key accepted (Svix's own are 24 bytes).
const MIN_WEBHOOK_KEY_BYTES: usize = 16;

/// A `whsec_<base64>` secret whose key is long enough to resist guessing.
fn webhook_secret(s: &str, var: &'static str) -> Result<String, ConfigError> {
    let key = s
        .strip_prefix("whsec_")
        .and_then(|b64| base64::engine::general_purpose::STANDARD.decode(b64).ok())
        .filter(|_| svix::webhooks::Webhook::new(s).is_ok())
        .ok_or_else(|| err(var, "each secret must be a whsec_… value"))?;
    if key.len() < MIN_WEBHOOK_KEY_BYTES {
        return Err(err(
            var,
            format!(
                "a secret decodes to {} bytes; at least {MIN_WEBHOOK_KEY_BYTES} bytes are required \
                 (copy the signing secret from the Clerk Dashboard)",
                key.len()
            ),
        ));
    }
    Ok(s.to_string())
}

/// `https://app.example.com, http://localhost:3000`: origins only, at least one.
fn authorized_parties(v: &str) -> Result<Vec<String>, ConfigError> {
    let var = "CLERK_AUTHORIZED_PARTIES";
    let list: Vec<String> = v
        .split(',')
        .map(|s| s.trim().trim_end_matches('/').to_string())
        .filter(|s| !s.is_empty())
        .collect();
    if list.is_empty() {
        return Err(err(
            var,
            "lists no origin (unset it to accept only APP_URL's origin)",
        ));
    }
    for origin in &list {
        let ok = reqwest::Url::parse(origin).is_ok_and(|u| {
            matches!(u.scheme(), "http" | "https")
                && u.host_str().is_some()
                && u.path() == "/"
                && u.query().is_none()
                && u.origin().ascii_serialization() == *origin
        });
        if !ok {
            return Err(err(
                var,
                format!("`{origin}` is not an origin such as https://app.example.com"),
            ));
        }
    }
    Ok(list)
}

/// Decodes `pk_(test|live)_<base64("<host>$")>` into the Frontend API host.
pub fn frontend_api_host(publishable_key: &str) -> Option<String> {
    let encoded = publishable_key
        .strip_prefix("pk_test_")
        .or_else(|| publishable_key.strip_prefix("pk_live_"))?;
    let engine = base64::engine::general_purpose::GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        base64::engine::GeneralPurposeConfig::new()
            .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent),
    );
    let decoded = engine.decode(encoded).ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let host = text.strip_suffix('$')?;
    let valid = !host.is_empty()
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-' || c == ':');
    valid.then(|| host.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lookup(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let owned: Vec<(String, String)> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| owned.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone())
    }

    #[test]
    fn publishable_key_decodes_to_the_frontend_api_host() {
        let pk = format!(
            "pk_test_{}",
            base64::engine::general_purpose::STANDARD.encode("example-app-1.clerk.accounts.dev$")
        );
        assert_eq!(
            frontend_api_host(&pk).as_deref(),
            Some("example-app-1.clerk.accounts.dev")
        );
        assert_eq!(frontend_api_host("pk_test_bm90LWEta2V5"), None);
        assert_eq!(frontend_api_host("sk_test_abc"), None);
    }

    #[test]
    fn no_configuration_means_demo_mode_on_sqlite() {
        let c = Config::from_lookup(lookup(&[])).unwrap();
        assert!(c.demo_mode());
        assert!(c.database_url.starts_with("sqlite://data/"));
    }

    #[test]
    fn production_without_keys_refuses_demo_mode() {
        let e = Config::from_lookup(lookup(&[("APP_ENV", "production")])).unwrap_err();
        assert_eq!(e.var, "CLERK_PUBLISHABLE_KEY");
    }

    #[test]
    fn production_requires_a_webhook_secret_under_either_name() {
        let e = production(&[("CLERK_WEBHOOK_SECRET", "")]).unwrap_err();
        assert_eq!(e.var, "CLERK_WEBHOOK_SECRET");
        assert!(e.reason.contains("required in production"), "{e}");
        let signing = production(&[
            ("CLERK_WEBHOOK_SECRET", ""),
            (
                "CLERK_WEBHOOK_SIGNING_SECRET",
                "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
            ),
        ]);
        assert_eq!(signing.unwrap().webhook_secrets.len(), 1, "the alias");
    }

    #[test]
    fn production_refuses_test_keys_unless_allowed() {
        let pk = format!(
            "pk_test_{}",
            base64::engine::general_purpose::STANDARD.encode("a.clerk.accounts.dev$")
        );
        let base = [
            ("APP_ENV", "production"),
            ("APP_URL", "https://app.example.com"),
            ("CLERK_PUBLISHABLE_KEY", pk.as_str()),
            (
                "CLERK_WEBHOOK_SECRET",
                "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
            ),
        ];
        let e = Config::from_lookup(lookup(&base)).unwrap_err();
        assert_eq!(e.var, "CLERK_PUBLISHABLE_KEY");
        let mut allowed = base.to_vec();
        allowed.push(("ALLOW_TEST_KEYS", "1"));
        assert!(Config::from_lookup(lookup(&allowed)).is_ok());
    }

    #[test]
    fn bad_values_name_their_variable() {
        for (k, v) in [
            ("DATABASE_URL", "mysql://x"),
            ("APP_ENV", "staging"),
            ("LEPTOS_SITE_ADDR", "nowhere"),
            ("CLERK_WEBHOOK_SECRET", "not-a-secret"),
            ("PAST_DUE_GRACE_DAYS", "-3"),
            ("SMTP_URL", "http://mail"),
            ("RATE_LIMIT_PER_MINUTE", "many"),
            ("RATE_LIMIT_PER_MINUTE", "-1"),
            ("TRUSTED_PROXIES", "10.0.0.1, proxy.internal"),
            ("TRUSTED_PROXIES", "10.0.0.0/33"),
            ("METRICS_ADDR", "9464"),
            ("METRICS_ADDR", "127.0.0.1:3000"),
            ("METRICS_ADDR", "OFF "),
            ("RECONCILE_INTERVAL_SECS", "hourly"),
            ("RECONCILE_INTERVAL_SECS", "-60"),
            ("INBOX_RETENTION_DAYS", "0"),
            ("INBOX_RETENTION_DAYS", "36501"),
            ("INBOX_RETENTION_DAYS", "30d"),
            ("ADMIN_USER_IDS", "alice"),
            ("ADMIN_USER_IDS", "org_2abc"),
            ("ADMIN_USER_IDS", "user_"),
            ("ADMIN_USER_IDS", "user_ok,user_x/../y"),
            ("ADMIN_USER_IDS", "user_ok;user_two"),
            ("ADMIN_USER_IDS", "USER_ABC"),
        ] {
            let e = Config::from_lookup(lookup(&[(k, v)])).unwrap_err();
            assert_eq!(e.var, k, "{k}={v} gave {e}");
        }
    }

    #[test]
    fn operators_are_named_by_user_id_and_the_demo_has_its_own() {
        let demo = Config::from_lookup(lookup(&[])).unwrap();
        assert_eq!(demo.operations.admin_user_ids, vec![DEMO_OPERATOR]);
        let named = Config::from_lookup(lookup(&[(
            "ADMIN_USER_IDS",
            " user_2abc, user_x-1\tuser_2abc ",
        )]))
        .unwrap();
        assert_eq!(
            named.operations.admin_user_ids,
            vec!["user_2abc", "user_x-1"]
        );
        let pk = format!(
            "pk_test_{}",
            base64::engine::general_purpose::STANDARD.encode("x.clerk.accounts.dev$")
        );
        let clerk = Config::from_lookup(lookup(&[("CLERK_PUBLISHABLE_KEY", pk.as_str())])).unwrap();
        assert!(
            clerk.operations.admin_user_ids.is_empty(),
            "no console unless someone is named"
        );
    }

    #[test]
    fn operations_settings_have_their_defaults_and_their_off_switches() {
        let c = Config::from_lookup(lookup(&[])).unwrap();
        assert_eq!(
            c.operations.metrics_addr,
            Some("127.0.0.1:9464".parse().unwrap())
        );
        assert_eq!(
            c.operations.reconcile_interval,
            Some(Duration::from_secs(3600))
        );
        assert_eq!(c.operations.inbox_retention_days, 30);
        let c = Config::from_lookup(lookup(&[
            ("METRICS_ADDR", "off"),
            ("RECONCILE_INTERVAL_SECS", "0"),
            ("INBOX_RETENTION_DAYS", "1"),
        ]))
        .unwrap();
        assert_eq!(
            (c.operations.metrics_addr, c.operations.reconcile_interval),
            (None, None)
        );
        assert_eq!(c.operations.inbox_retention_days, 1);
        let c = Config::from_lookup(lookup(&[
            ("METRICS_ADDR", "0.0.0.0:9100"),
            ("RECONCILE_INTERVAL_SECS", "90"),
        ]))
        .unwrap();
        assert_eq!(
            c.operations.metrics_addr,
            Some("0.0.0.0:9100".parse().unwrap())
        );
        assert_eq!(
            c.operations.reconcile_interval,
            Some(Duration::from_secs(90))
        );
    }

    #[test]
    fn several_webhook_secrets_are_accepted_for_rotation() {
        let c = Config::from_lookup(lookup(&[(
            "CLERK_WEBHOOK_SECRET",
            "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw, whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD",
        )]))
        .unwrap();
        assert_eq!(c.webhook_secrets.len(), 2);
    }

    fn production(extra: &[(&'static str, &'static str)]) -> Result<Config, ConfigError> {
        let pk = format!(
            "pk_live_{}",
            base64::engine::general_purpose::STANDARD.encode("clerk.example.com$")
        );
        let pk: &'static str = Box::leak(pk.into_boxed_str());
        let mut vars = vec![
            ("APP_ENV", "production"),
            ("APP_URL", "https://app.example.com"),
            ("CLERK_PUBLISHABLE_KEY", pk),
            (
                "CLERK_WEBHOOK_SECRET",
                "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
            ),
        ];
        for (k, v) in extra {
            vars.retain(|(n, _)| n != k);
            vars.push((k, v));
        }
        Config::from_lookup(lookup(&vars))
    }

    #[test]
    fn a_complete_production_configuration_starts() {
        let c = production(&[]).unwrap();
        assert_eq!(c.tokens.authorized_parties, ["https://app.example.com"]);
        assert_eq!(c.limits.rate_limit_per_minute, 120);
        assert_eq!(c.identity.frontend_api_url(), "https://clerk.example.com");
    }

    #[test]
    fn the_instance_owns_every_value_derived_from_its_key() {
        let key = |host: &str, kind: &str| {
            format!(
                "pk_{kind}_{}",
                base64::engine::general_purpose::STANDARD.encode(format!("{host}$"))
            )
        };
        let dev = Config::from_lookup(lookup(&[(
            "CLERK_PUBLISHABLE_KEY",
            Box::leak(key("fine-owl-1.clerk.accounts.dev", "test").into_boxed_str()),
        )]))
        .unwrap();
        let c = dev.clerk().unwrap();
        assert_eq!(c.kind(), InstanceKind::Development);
        assert_eq!(c.issuer(), "https://fine-owl-1.clerk.accounts.dev");
        assert_eq!(
            c.jwks_url(),
            "https://fine-owl-1.clerk.accounts.dev/.well-known/jwks.json"
        );
        assert_eq!(c.frontend_api_url, "https://fine-owl-1.clerk.accounts.dev");
        assert_eq!(
            c.account_portal_url(),
            "https://fine-owl-1.accounts.dev/user"
        );
        assert_eq!(
            c.clerk_js_url(),
            "https://fine-owl-1.clerk.accounts.dev/npm/@clerk/clerk-js@6/dist/clerk.browser.js"
        );
        assert_eq!(
            c.clerk_ui_url(),
            "https://fine-owl-1.clerk.accounts.dev/npm/@clerk/ui@1/dist/ui.browser.js"
        );
        assert_eq!(c.cookie_suffix().len(), 8);
        assert_eq!(dev.issuer(), c.issuer());
        assert_eq!(dev.manage_url(), c.account_portal_url());
        let live = production(&[]).unwrap();
        let c = live.clerk().unwrap();
        assert_eq!(c.kind(), InstanceKind::Production);
        assert_eq!(c.account_portal_url(), "https://accounts.example.com/user");
        let demo = Config::from_lookup(lookup(&[("APP_URL", "http://127.0.0.1:3000")])).unwrap();
        assert!(demo.demo_mode() && demo.clerk().is_none());
        assert_eq!(demo.issuer(), "http://127.0.0.1:3000");
        assert_eq!(demo.manage_url(), "http://127.0.0.1:3000/dashboard/billing");
        assert_eq!(
            demo.identity.frontend_api_url(),
            "http://127.0.0.1:3000/demo"
        );
    }

    /// Whoever can alter the key download can mint any session: production fetches keys over
    /// https only, whatever the spelling of the plain scheme.
    #[test]
    fn a_plain_http_jwks_url_is_refused_in_production() {
        for url in [
            "http://clerk.example.com/.well-known/jwks.json",
            "HTTP://clerk.example.com/jwks",
            "http://127.0.0.1:9/jwks",
            "ftp://clerk.example.com/jwks",
        ] {
            let e = production(&[("CLERK_JWKS_URL", url)]).unwrap_err();
            assert_eq!(e.var, "CLERK_JWKS_URL", "{url}");
        }
        let c = production(&[("CLERK_JWKS_URL", "https://proxy.example.com/jwks")]).unwrap();
        assert_eq!(
            c.tokens.jwks_url.as_deref(),
            Some("https://proxy.example.com/jwks")
        );
        let dev = Config::from_lookup(lookup(&[("CLERK_JWKS_URL", "http://127.0.0.1:9/jwks")]));
        assert!(dev.is_ok(), "development may use a local stand-in");
    }

    /// The handshake's Frontend API comes from the publishable key; a stand-in is for tests,
    /// and a production server never sends its users' browsers anywhere else.
    #[test]
    fn the_frontend_api_stand_in_is_refused_in_production_and_checked_elsewhere() {
        for url in ["https://evil.example", "http://127.0.0.1:9"] {
            let e = production(&[("CLERK_FRONTEND_API_URL", url)]).unwrap_err();
            assert_eq!(e.var, "CLERK_FRONTEND_API_URL");
        }
        let dev = |v: &str| Config::from_lookup(lookup(&[("CLERK_FRONTEND_API_URL", v)]));
        assert_eq!(
            dev("http://127.0.0.1:9/")
                .unwrap()
                .identity
                .frontend_api_url()
                .to_string(),
            "http://127.0.0.1:9"
        );
        for bad in ["javascript:alert(1)", "not a url", "ftp://x"] {
            assert_eq!(dev(bad).unwrap_err().var, "CLERK_FRONTEND_API_URL", "{bad}");
        }
        let demo = Config::from_lookup(lookup(&[])).unwrap();
        assert_eq!(
            demo.identity.frontend_api_url(),
            format!("{}/demo", demo.app_url)
        );
        for ttl in ["0", "3601", "-1", "x"] {
            let e = Config::from_lookup(lookup(&[("DEMO_SESSION_TTL_SECS", ttl)])).unwrap_err();
            assert_eq!(e.var, "DEMO_SESSION_TTL_SECS", "{ttl}");
        }
    }

    #[test]
    fn webhook_secrets_shorter_than_16_bytes_are_refused_in_every_environment() {
        // 4, 15 bytes; then 16 bytes, the shortest accepted.
        for (secret, ok) in [
            ("whsec_dGVzdA==", false),
            ("whsec_MDEyMzQ1Njc4OWFiY2Rl", false),
            ("whsec_MDEyMzQ1Njc4OWFiY2RlZg==", true),
            ("whsec_", false),
            ("whsec_!!!!", false),
        ] {
            for var in ["CLERK_WEBHOOK_SECRET", "CLERK_WEBHOOK_SIGNING_SECRET"] {
                let dev = Config::from_lookup(lookup(&[(var, secret)]));
                let prod = production(&[("CLERK_WEBHOOK_SECRET", ""), (var, secret)]);
                for r in [dev, prod] {
                    match r {
                        Ok(_) => assert!(ok, "{var}={secret} was accepted"),
                        Err(e) => {
                            assert!(!ok, "{var}={secret}: {e}");
                            assert_eq!(e.var, var, "{e}");
                        }
                    }
                }
            }
        }
        // One weak secret among strong ones is refused too.
        let e = Config::from_lookup(lookup(&[(
            "CLERK_WEBHOOK_SECRET",
            "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw whsec_dGVzdA==",
        )]))
        .unwrap_err();
        assert_eq!(e.var, "CLERK_WEBHOOK_SECRET");
    }

    #[test]
    fn an_authorized_party_list_must_name_origins() {
        for bad in [
            " , ",
            ",",
            ",,",
            "*",
            "https://app.example.com/path",
            "app.example.com",
            "javascript:alert(1)",
            "https://",
            "https://a.example.com?x=1",
        ] {
            let e = production(&[("CLERK_AUTHORIZED_PARTIES", bad)]).unwrap_err();
            assert_eq!(e.var, "CLERK_AUTHORIZED_PARTIES", "{bad:?}: {e}");
        }
        // Blank is unset: the default (APP_URL's origin) keeps the check on.
        let c = production(&[("CLERK_AUTHORIZED_PARTIES", " ")]).unwrap();
        assert_eq!(c.tokens.authorized_parties, ["https://app.example.com"]);
        let c = production(&[(
            "CLERK_AUTHORIZED_PARTIES",
            "https://app.example.com/, http://localhost:3000",
        )])
        .unwrap();
        assert_eq!(
            c.tokens.authorized_parties,
            ["https://app.example.com", "http://localhost:3000"]
        );
    }

    #[test]
    fn production_requires_https_for_the_app_and_the_backend_api() {
        for (k, v) in [
            ("APP_URL", "http://app.example.com"),
            ("CLERK_API_URL", "http://api.clerk.com"),
            ("CLERK_API_URL", "HTTP://api.clerk.com"),
        ] {
            let e = production(&[(k, v)]).unwrap_err();
            assert_eq!(e.var, k, "{k}={v}: {e}");
        }
        assert!(production(&[("CLERK_API_URL", "https://api.clerk.com/")]).is_ok());
        // Development keeps plain http for localhost.
        assert!(Config::from_lookup(lookup(&[("APP_URL", "http://localhost:3000")])).is_ok());
    }
}
