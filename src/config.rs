//! Typed configuration from the environment (DESIGN §1), validated once at start-up.
//!
//! Everything is read through a lookup function so tests can build a `Config` without touching
//! the process environment. Every error names the variable at fault.

use std::{net::SocketAddr, path::PathBuf, time::Duration};

use base64::Engine;
use secrecy::{ExposeSecret, SecretString};

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

/// Clerk instance settings derived from the publishable key.
#[derive(Debug, Clone)]
pub struct ClerkConfig {
    pub publishable_key: String,
    /// Frontend API host, e.g. `clerk.example.com` or `foo-bar-1.clerk.accounts.dev`.
    pub frontend_api_host: String,
    pub secret_key: Option<SecretString>,
    pub api_url: String,
}

impl ClerkConfig {
    pub fn issuer(&self) -> String {
        format!("https://{}", self.frontend_api_host)
    }
}

#[derive(Debug, Clone)]
pub struct Config {
    pub app_env: AppEnv,
    pub database_url: String,
    pub app_url: String,
    pub listen_addr: SocketAddr,
    /// `None` means demo mode (development only).
    pub clerk: Option<ClerkConfig>,
    pub webhook_secrets: Vec<SecretString>,
    pub jwt_key_pem: Option<String>,
    pub jwks_url: Option<String>,
    pub jwks_cooldown: Duration,
    pub authorized_parties: Vec<String>,
    pub plans_file: PathBuf,
    pub smtp_url: Option<SecretString>,
    pub mail_from: String,
    pub data_dir: PathBuf,
    pub past_due_grace_days: i64,
    pub json_logs: bool,
}

impl Config {
    pub fn demo_mode(&self) -> bool {
        self.clerk.is_none()
    }

    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        // Empty values count as unset: `.env.example` ships with blank secrets.
        let var = |k: &str| {
            get(k)
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
        };

        let app_env = match var("APP_ENV").as_deref() {
            None | Some("development") | Some("dev") => AppEnv::Development,
            Some("production") | Some("prod") => AppEnv::Production,
            Some(other) => {
                return Err(err(
                    "APP_ENV",
                    format!("expected `development` or `production`, got `{other}`"),
                ))
            }
        };
        let production = app_env == AppEnv::Production;

        let data_dir = PathBuf::from(var("DATA_DIR").unwrap_or_else(|| "data".into()));

        let database_url = var("DATABASE_URL")
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

        let listen_addr: SocketAddr = var("LEPTOS_SITE_ADDR")
            .unwrap_or_else(|| "127.0.0.1:3000".into())
            .parse()
            .map_err(|_| {
                err(
                    "LEPTOS_SITE_ADDR",
                    "expected host:port, e.g. 127.0.0.1:3000",
                )
            })?;

        let app_url = var("APP_URL")
            .unwrap_or_else(|| format!("http://localhost:{}", listen_addr.port()))
            .trim_end_matches('/')
            .to_string();
        if !(app_url.starts_with("http://") || app_url.starts_with("https://")) {
            return Err(err(
                "APP_URL",
                "expected an origin such as http://localhost:3000",
            ));
        }

        let allow_test_keys = var("ALLOW_TEST_KEYS").as_deref() == Some("1");
        let publishable = var("CLERK_PUBLISHABLE_KEY");
        let secret_key = var("CLERK_SECRET_KEY");
        if let Some(sk) = &secret_key {
            if !(sk.starts_with("sk_test_") || sk.starts_with("sk_live_")) {
                return Err(err("CLERK_SECRET_KEY", "expected sk_test_… or sk_live_…"));
            }
            if production && sk.starts_with("sk_test_") && !allow_test_keys {
                return Err(err(
                    "CLERK_SECRET_KEY",
                    "a test key in production (set ALLOW_TEST_KEYS=1 to allow it)",
                ));
            }
        }
        let api_url = var("CLERK_API_URL")
            .unwrap_or_else(|| "https://api.clerk.com".into())
            .trim_end_matches('/')
            .to_string();

        let clerk = match publishable {
            Some(pk) => {
                let host = frontend_api_host(&pk).ok_or_else(|| {
                    err("CLERK_PUBLISHABLE_KEY", "not a valid Clerk publishable key")
                })?;
                if production && pk.starts_with("pk_test_") && !allow_test_keys {
                    return Err(err(
                        "CLERK_PUBLISHABLE_KEY",
                        "a test key in production (set ALLOW_TEST_KEYS=1 to allow it)",
                    ));
                }
                Some(ClerkConfig {
                    publishable_key: pk,
                    frontend_api_host: host,
                    secret_key: secret_key.map(SecretString::from),
                    api_url,
                })
            }
            None if secret_key.is_some() => {
                return Err(err(
                    "CLERK_PUBLISHABLE_KEY",
                    "required when CLERK_SECRET_KEY is set",
                ))
            }
            None if production => {
                return Err(err(
                    "CLERK_PUBLISHABLE_KEY",
                    "required in production (demo mode is refused)",
                ))
            }
            None => None,
        };

        let secrets_raw =
            var("CLERK_WEBHOOK_SECRET").or_else(|| var("CLERK_WEBHOOK_SIGNING_SECRET"));
        let mut webhook_secrets = Vec::new();
        for s in secrets_raw
            .iter()
            .flat_map(|v| v.split([',', ' ']))
            .map(str::trim)
            .filter(|s| !s.is_empty())
        {
            if svix::webhooks::Webhook::new(s).is_err() || !s.starts_with("whsec_") {
                return Err(err(
                    "CLERK_WEBHOOK_SECRET",
                    "each secret must be a whsec_… value",
                ));
            }
            webhook_secrets.push(SecretString::from(s.to_string()));
        }
        if production && webhook_secrets.is_empty() {
            return Err(err("CLERK_WEBHOOK_SECRET", "required in production"));
        }

        let jwt_key_pem = var("CLERK_JWT_KEY").map(|k| k.replace("\\n", "\n"));
        if let Some(pem) = &jwt_key_pem {
            jsonwebtoken::DecodingKey::from_rsa_pem(pem.as_bytes())
                .map_err(|_| err("CLERK_JWT_KEY", "not a PEM-encoded RSA public key"))?;
        }
        let jwks_url = var("CLERK_JWKS_URL");
        if let Some(u) = &jwks_url {
            reqwest::Url::parse(u).map_err(|_| err("CLERK_JWKS_URL", "not a URL"))?;
        }
        let jwks_cooldown = Duration::from_secs(parse_num(
            var("JWKS_REFETCH_COOLDOWN_SECS"),
            "JWKS_REFETCH_COOLDOWN_SECS",
            60,
        )? as u64);

        let authorized_parties = match var("CLERK_AUTHORIZED_PARTIES") {
            Some(v) => v
                .split(',')
                .map(|s| s.trim().trim_end_matches('/').to_string())
                .filter(|s| !s.is_empty())
                .collect(),
            None => vec![app_url.clone()],
        };

        let smtp_url = var("SMTP_URL");
        if let Some(u) = &smtp_url {
            if !(u.starts_with("smtp://") || u.starts_with("smtps://")) {
                return Err(err(
                    "SMTP_URL",
                    "expected smtp://host:port or smtps://user:pass@host",
                ));
            }
        }
        let mail_from = var("MAIL_FROM").unwrap_or_else(|| "plangate <billing@localhost>".into());
        if mail_from.parse::<lettre::message::Mailbox>().is_err() {
            return Err(err(
                "MAIL_FROM",
                "not a mail address, e.g. Billing <billing@example.com>",
            ));
        }

        let past_due_grace_days = parse_num(var("PAST_DUE_GRACE_DAYS"), "PAST_DUE_GRACE_DAYS", 0)?;

        let json_logs = match var("LOG_FORMAT").as_deref() {
            None | Some("text") | Some("pretty") => false,
            Some("json") => true,
            Some(_) => return Err(err("LOG_FORMAT", "expected `text` or `json`")),
        };

        Ok(Config {
            app_env,
            database_url,
            app_url,
            listen_addr,
            clerk,
            webhook_secrets,
            jwt_key_pem,
            jwks_url,
            jwks_cooldown,
            authorized_parties,
            plans_file: PathBuf::from(var("PLANS_FILE").unwrap_or_else(|| "plans.toml".into())),
            smtp_url: smtp_url.map(SecretString::from),
            mail_from,
            data_dir,
            past_due_grace_days,
            json_logs,
        })
    }

    /// The issuer that session tokens must carry.
    pub fn issuer(&self) -> String {
        match &self.clerk {
            Some(c) => c.issuer(),
            None => self.app_url.clone(),
        }
    }

    pub fn smtp_url_exposed(&self) -> Option<&str> {
        self.smtp_url.as_ref().map(|s| s.expose_secret())
    }
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
    fn production_refuses_test_keys_unless_allowed() {
        let pk = format!(
            "pk_test_{}",
            base64::engine::general_purpose::STANDARD.encode("a.clerk.accounts.dev$")
        );
        let base = [
            ("APP_ENV", "production"),
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
        ] {
            let e = Config::from_lookup(lookup(&[(k, v)])).unwrap_err();
            assert_eq!(e.var, k, "{k}={v} gave {e}");
        }
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
}
