//! `plangate check` (README, "Going live with Clerk"): the launch preflight. Reads the configuration as `serve`
//! does and, without starting anything, checks what a misconfigured launch gets wrong silently:
//! the settings, the Clerk instance behind the keys, the JWKS, the secret key, the plan slugs
//! against Clerk's, the database. One line per check, `ok …` or `FAIL …` with what to do.

use std::{collections::HashSet, sync::Arc, time::Duration};

use serde_json::Value;

use crate::{
    billing::{plans::parse_scoped, Catalog, PayerKind},
    clerk_api::{ClerkApi, ClerkApiError, Retry},
    config::Config,
    db::Db,
    metrics::Metrics,
};

/// How long one network check may take.
pub const TIMEOUT: Duration = Duration::from_secs(10);

/// One check's verdict.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    pub ok: bool,
    pub text: String,
}

impl std::fmt::Display for Line {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", if self.ok { "ok  " } else { "FAIL" }, self.text)
    }
}

fn ok(text: impl Into<String>) -> Line {
    Line {
        ok: true,
        text: text.into(),
    }
}

fn fail(text: impl Into<String>) -> Line {
    Line {
        ok: false,
        text: text.into(),
    }
}

/// Runs every check on the configuration `lookup` gives (the process environment for the
/// command); the lines in order.
pub async fn run(lookup: impl Fn(&str) -> Option<String>) -> Vec<Line> {
    let config = match Config::from_lookup(lookup) {
        Ok(c) => c,
        Err(e) => {
            return vec![fail(format!(
                "settings: {e} (fix {} and run plangate check again)",
                e.var
            ))]
        }
    };
    let mut lines = vec![ok(format!(
        "settings parse and agree ({})",
        match config.app_env {
            crate::config::AppEnv::Production => "production rules",
            crate::config::AppEnv::Development => "development",
        }
    ))];
    let catalog = match crate::config::load_catalog(&config.plans_file) {
        Ok(c) => {
            lines.push(ok(format!(
                "PLANS_FILE {} reads",
                config.plans_file.display()
            )));
            Some(c)
        }
        Err(e) => {
            lines.push(fail(format!(
                "PLANS_FILE {}: {e}",
                config.plans_file.display()
            )));
            None
        }
    };
    if let Some(c) = &catalog {
        for (gate, slug) in c.unknown_gate_plans() {
            lines.push(fail(format!(
                "gate `{gate}` names plan `{slug}`, which PLANS_FILE does not define"
            )));
        }
    }
    match config.clerk() {
        None => lines.push(fail(
            "CLERK_PUBLISHABLE_KEY is not set: plangate would run in demo mode (copy the keys from \
             the Clerk Dashboard, API keys)",
        )),
        Some(clerk) => {
            lines.push(ok(format!(
                "frontend API host {} (from CLERK_PUBLISHABLE_KEY); tokens must be issued by {}",
                clerk.frontend_api_host,
                clerk.issuer()
            )));
            lines.push(jwks(config.tokens.jwks_url.clone().unwrap_or_else(|| clerk.jwks_url())).await);
            match &clerk.secret_key {
                None => lines.push(fail(
                    "CLERK_SECRET_KEY is not set: the Backend API (reconciliation, these plan \
                     checks) needs it",
                )),
                Some(key) => {
                    let api = ClerkApi::new(&clerk.api_url, key.clone(), Arc::new(Metrics::new()))
                        .map(|a| {
                            a.with_retry(Retry {
                                attempts: 1,
                                ..Retry::default()
                            })
                        });
                    match api {
                        Ok(api) => lines.extend(plans(&api, &clerk.api_url, catalog.as_ref()).await),
                        Err(e) => lines.push(fail(format!("Backend API client: {e}"))),
                    }
                }
            }
        }
    }
    lines.push(database(&config).await);
    lines
}

/// The JWKS the session tokens are checked against answers and has RSA keys.
async fn jwks(url: String) -> Line {
    let fetched = async {
        let client = reqwest::Client::builder().timeout(TIMEOUT).build()?;
        client
            .get(&url)
            .send()
            .await?
            .error_for_status()?
            .json::<Value>()
            .await
    };
    match tokio::time::timeout(TIMEOUT, fetched).await {
        Err(_) => fail(format!("JWKS {url}: no answer within 10 s")),
        Ok(Err(e)) => fail(format!(
            "JWKS {url} is unreachable ({}): check CLERK_PUBLISHABLE_KEY or CLERK_JWKS_URL",
            e.without_url()
        )),
        Ok(Ok(doc)) => {
            let rsa = doc
                .get("keys")
                .and_then(Value::as_array)
                .map(|k| k.iter().filter(|k| k["kty"] == "RSA").count())
                .unwrap_or(0);
            if rsa > 0 {
                ok(format!("JWKS {url} has {rsa} RSA key(s)"))
            } else {
                fail(format!("JWKS {url} has no RSA keys"))
            }
        }
    }
}

/// The secret key is accepted, every paid plan of PLANS_FILE exists in Clerk for its payer
/// type (so paying users are not denied by a slug that differs), and every plan Clerk has is in
/// PLANS_FILE (so nothing Clerk sells meters by a limit the file cannot know).
async fn plans(api: &ClerkApi, base: &str, catalog: Option<&Catalog>) -> Vec<Line> {
    let mut lines = Vec::new();
    let mut clerk = [HashSet::new(), HashSet::new()];
    for (i, payer_type) in ["user", "org"].into_iter().enumerate() {
        let listed = tokio::time::timeout(TIMEOUT, api.plans(payer_type)).await;
        match listed {
            Err(_) => {
                lines.push(fail(format!("Backend API {base}: no answer within 10 s")));
                return lines;
            }
            Ok(Err(ClerkApiError::Status {
                status: 401 | 403, ..
            })) => {
                lines.push(fail(
                    "CLERK_SECRET_KEY was refused by the Backend API (401): copy the secret key \
                     of this instance from the Clerk Dashboard",
                ));
                return lines;
            }
            Ok(Err(e)) => {
                lines.push(fail(format!("Backend API: {e}")));
                return lines;
            }
            Ok(Ok(list)) => {
                if i == 0 {
                    lines.push(ok(format!(
                        "CLERK_SECRET_KEY accepted by the Backend API {base}"
                    )));
                }
                clerk[i] = list
                    .iter()
                    .filter_map(|p| p.get("slug").and_then(Value::as_str))
                    .map(str::to_string)
                    .collect();
            }
        }
    }
    let Some(catalog) = catalog else {
        return lines;
    };
    let mut missing = false;
    for plan in catalog.plans.iter().filter(|p| !p.is_free()) {
        let (i, kind) = match plan.scope() {
            PayerKind::User => (0, "user"),
            PayerKind::Org => (1, "organization"),
        };
        if !clerk[i].contains(&plan.slug) {
            missing = true;
            lines.push(fail(format!(
                "plan `{}` ({kind}) is in PLANS_FILE but not in Clerk: create it in the Clerk \
                 Dashboard (Billing, plans for {kind}s) with exactly this slug, or fix the slug",
                plan.slug
            )));
        }
    }
    for (name, gate) in &catalog.gates {
        for (scopes, slug) in gate.plans.iter().filter_map(|e| parse_scoped(e)) {
            let known = scopes.iter().any(|s| match s {
                PayerKind::User => clerk[0].contains(slug),
                PayerKind::Org => clerk[1].contains(slug),
            });
            if !known {
                missing = true;
                lines.push(fail(format!(
                    "gate `{name}` names plan `{slug}`, which Clerk does not have for that payer type"
                )));
            }
        }
    }
    // The other way round: a plan Clerk sells that the file lacks would be answered
    // `403 plan_not_configured` on every metered call of its subscribers.
    for (i, kind) in [(0, "user"), (1, "organization")] {
        let mut unknown: Vec<&String> = clerk[i]
            .iter()
            .filter(|slug| {
                catalog
                    .plan(slug)
                    .is_none_or(|p| p.scope() != [PayerKind::User, PayerKind::Org][i])
            })
            .collect();
        unknown.sort();
        for slug in unknown {
            missing = true;
            lines.push(fail(format!(
                "plan `{slug}` ({kind}) is in Clerk but not in PLANS_FILE: add it (its features, \
                 and limits for metered ones) or its subscribers' metered calls answer 403 \
                 plan_not_configured"
            )));
        }
    }
    if !missing {
        lines.push(ok(format!(
            "every paid plan and gate of PLANS_FILE exists in Clerk ({} user, {} organization plans there)",
            clerk[0].len(),
            clerk[1].len()
        )));
    }
    lines
}

/// The database answers and has every migration.
async fn database(config: &Config) -> Line {
    let db = match tokio::time::timeout(TIMEOUT, Db::connect(&config.database_url)).await {
        Err(_) => return fail("DATABASE_URL: no answer within 10 s"),
        Ok(Err(e)) => return fail(format!("DATABASE_URL: {e:#}")),
        Ok(Ok(db)) => db,
    };
    match db.pending_migrations().await {
        Err(e) => fail(format!("database: {e}")),
        Ok(p) if p.is_empty() => ok(format!("database ({}) reachable and migrated", db.engine.as_str())),
        Ok(p) => fail(format!(
            "database ({}) lacks {} migration(s): run plangate migrate (serve also migrates at start)",
            db.engine.as_str(),
            p.len()
        )),
    }
}
