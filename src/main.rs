//! Thin bootstrap: `.env`, the command line (`cli`), then the command: `serve` through
//! `startup::Application`, the operator commands through `services::Services`.

use plangate::{
    cli::{self, Command},
    config::Config,
    db::Db,
    services::{InboxError, Services},
    startup::Application,
    telemetry, trigger,
};

/// mimalloc rather than glibc's malloc: signed-in pages allocate a few thousand small objects
/// per render (BENCHMARKS.md, "Signed-in pages").
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() {
    // `.env` in development; real environment variables win.
    let _ = dotenvy::dotenv();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match cli::parse(&args) {
        Ok(command) => run(command).await,
        Err(usage) => Err(anyhow::anyhow!(usage)),
    };
    if let Err(e) = result {
        eprintln!("plangate: {e:#}");
        std::process::exit(1);
    }
}

async fn run(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Help => {
            println!("{}", cli::USAGE);
            Ok(())
        }
        Command::Serve => {
            let config = Config::from_env()?;
            telemetry::init(config.json_logs);
            Application::build(config).await?.run_until_stopped().await
        }
        Command::Migrate => {
            let config = Config::from_env()?;
            telemetry::init(config.json_logs);
            Db::connect(&config.database_url).await?.migrate().await?;
            println!("migrations applied");
            Ok(())
        }
        Command::Trigger(args) => {
            // The configured secret (either name), when the settings read; `--secret` wins.
            let configured = Config::from_env().ok().and_then(|c| {
                c.webhook_secrets
                    .first()
                    .map(|s| secrecy::ExposeSecret::expose_secret(s).to_string())
            });
            trigger::run(args, configured).await
        }
        Command::Reconcile(target) => reconcile(target).await,
        Command::Usage(payer) => usage(payer).await,
        Command::Audit(limit) => {
            let services = services().await?;
            for entry in plangate::db::console::audit_log(&services.db.pool, limit).await? {
                println!("{}", entry.line());
            }
            Ok(())
        }
        Command::InboxList { failed, limit } => {
            let services = services().await?;
            for row in services.inbox.list(failed, limit).await? {
                println!(
                    "{} {} {} {}",
                    row.svix_id,
                    row.event_type,
                    row.outcome,
                    plangate::page_data::format_rfc3339(row.received_at)
                );
            }
            Ok(())
        }
        Command::InboxReplay(ids) => replay(ids).await,
        Command::Check => check().await,
        Command::Backup(file) => backup(&file).await,
    }
}

/// The services the operator commands use, built as `serve` builds them (no listeners; mail
/// they queue is sent by `serve`'s outbox worker).
async fn services() -> anyhow::Result<Services> {
    let config = Config::from_env()?;
    telemetry::init_for_command(config.json_logs);
    Services::build(&config, None, std::sync::Arc::new(plangate::db::now_ms)).await
}

/// `plangate usage --user ID | --org ID` (README, "Usage limits"): one line per metered feature,
/// `<feature> <used>/<limit> <period start>..<period end>` (`unlimited` for no limit), under the
/// payer's current plan as the database knows it.
async fn usage(payer: plangate::billing::Payer) -> anyhow::Result<()> {
    use plangate::page_data::format_rfc3339;
    let services = services().await?;
    let item = services.entitlements.current_plan(&payer).await?;
    let report = services
        .usage
        .report(
            &payer,
            item.as_ref().map(|i| i.plan_slug.as_str()),
            item.as_ref().and_then(|i| i.period_start.zip(i.period_end)),
        )
        .await?;
    for f in report.features {
        let limit = f
            .limit
            .map_or_else(|| "unlimited".to_string(), |l| l.to_string());
        println!(
            "{} {}/{limit} {}..{}",
            f.feature,
            f.used,
            format_rfc3339(report.period.start),
            format_rfc3339(report.period.end)
        );
    }
    Ok(())
}

/// `plangate reconcile --user ID | --org ID | --all` (README, "Operations"): one line per
/// corrected item, then `N checked, M corrected`; exit 1 when the Backend API could not be read.
async fn reconcile(target: Option<plangate::billing::Payer>) -> anyhow::Result<()> {
    let services = services().await?;
    let reconciler = services.reconciler.ok_or_else(|| {
        anyhow::anyhow!("reconciliation needs CLERK_SECRET_KEY (and CLERK_PUBLISHABLE_KEY)")
    })?;
    let report = match target {
        None => reconciler.sweep().await?,
        Some(payer) => reconciler.payer(&payer).await?,
    };
    for line in report.lines() {
        println!("{line}");
    }
    Ok(())
}

/// `plangate inbox replay <svix_id>… | --failed`.
async fn replay(ids: Option<Vec<String>>) -> anyhow::Result<()> {
    let services = services().await?;
    let ids = match ids {
        Some(ids) => ids,
        None => services
            .inbox
            .list(true, i64::MAX)
            .await?
            .into_iter()
            .map(|r| r.svix_id)
            .collect(),
    };
    let mut trouble = 0;
    for id in ids {
        match services.inbox.replay(&id).await {
            Ok(r) => match r.reason {
                Some(reason) => {
                    trouble += 1;
                    println!("{id} {} ({reason})", r.outcome.as_str())
                }
                None => println!("{id} {}", r.outcome.as_str()),
            },
            Err(e @ (InboxError::NotFound(_) | InboxError::Purged(_) | InboxError::Payload(_))) => {
                trouble += 1;
                println!("{id} not replayed: {e}");
            }
            Err(e) => return Err(e.into()),
        }
    }
    if trouble > 0 {
        anyhow::bail!("{trouble} deliveries are still not applied");
    }
    Ok(())
}

/// `plangate check` (README, "Going live with Clerk"): one `ok`/`FAIL` line per check; exit 1
/// on any FAIL.
async fn check() -> anyhow::Result<()> {
    telemetry::init_for_command(false);
    let lines = plangate::preflight::run(|k| std::env::var(k).ok()).await;
    for line in &lines {
        println!("{line}");
    }
    let failed = lines.iter().filter(|l| !l.ok).count();
    if failed > 0 {
        anyhow::bail!("{failed} check(s) failed");
    }
    Ok(())
}

/// `plangate backup <file>`: SQLite's `VACUUM INTO`, safe while `serve` runs.
async fn backup(file: &std::path::Path) -> anyhow::Result<()> {
    let config = Config::from_env()?;
    telemetry::init_for_command(config.json_logs);
    let db = Db::connect(&config.database_url).await?;
    let started = std::time::Instant::now();
    db.backup_sqlite(file).await?;
    let size = std::fs::metadata(file).map(|m| m.len()).unwrap_or(0);
    println!(
        "backup written to {} ({size} bytes, {} ms)",
        file.display(),
        started.elapsed().as_millis()
    );
    Ok(())
}
