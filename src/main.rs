//! Thin bootstrap: `plangate [serve | migrate | trigger … | reconcile … | inbox …]`.

use plangate::{
    billing::PayerKind,
    config::Config,
    db::Db,
    services::InboxError,
    startup::{Application, Operations},
    telemetry, trigger,
};

const USAGE: &str =
    "usage: plangate [serve | migrate | trigger <event-type> … | reconcile … | inbox …]
  reconcile --user ID | --org ID | --all
      compares the database with Clerk's Backend API and corrects what drifted
  inbox list [--failed] [--limit N]
      the newest deliveries: <svix_id> <event type> <outcome> <received>
  inbox replay <svix_id>... | --failed
      applies stored deliveries again (ordering and exactly-once side effects included)
  check
      the launch preflight: settings, Clerk keys, JWKS, plan slugs, database; exit 1 on a FAIL
  backup <file>
      a consistent copy of the SQLite database, safe while serve runs";

/// mimalloc rather than glibc's malloc: signed-in pages allocate a few thousand small objects
/// per render (BENCHMARKS.md, "Signed-in pages").
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() {
    // `.env` in development; real environment variables win.
    let _ = dotenvy::dotenv();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let command = args.first().map(String::as_str).unwrap_or("serve");
    let result = match command {
        "serve" | "migrate" => serve_or_migrate(command == "migrate").await,
        "trigger" => {
            let secret = std::env::var("CLERK_WEBHOOK_SECRET").ok().map(|s| {
                s.split([',', ' '])
                    .find(|p| !p.is_empty())
                    .unwrap_or_default()
                    .to_string()
            });
            trigger::run(&args[1..], secret).await
        }
        "reconcile" => reconcile(&args[1..]).await,
        "inbox" => inbox(&args[1..]).await,
        "check" => check().await,
        "backup" => backup(&args[1..]).await,
        "-h" | "--help" | "help" => {
            println!("{USAGE}\n{}", trigger::USAGE);
            Ok(())
        }
        other => Err(anyhow::anyhow!(
            "unknown command `{other}`; try `plangate --help`"
        )),
    };
    if let Err(e) = result {
        eprintln!("plangate: {e:#}");
        std::process::exit(1);
    }
}

async fn serve_or_migrate(migrate_only: bool) -> anyhow::Result<()> {
    let config = Config::from_env()?;
    telemetry::init(config.json_logs);
    if migrate_only {
        let db = Db::connect(&config.database_url).await?;
        db.migrate().await?;
        println!("migrations applied");
        return Ok(());
    }
    Application::build(config).await?.run_until_stopped().await
}

async fn operations() -> anyhow::Result<Operations> {
    let config = Config::from_env()?;
    telemetry::init_for_command(config.json_logs);
    Operations::build(&config).await
}

/// `plangate reconcile --user ID | --org ID | --all` (DESIGN §7): one line per corrected item,
/// then `N checked, M corrected`; exit 1 when the Backend API could not be read.
async fn reconcile(args: &[String]) -> anyhow::Result<()> {
    let usage = || anyhow::anyhow!("usage: plangate reconcile --user ID | --org ID | --all");
    let target = match args {
        [flag] if flag == "--all" => None,
        [flag, id] if flag == "--user" => Some((PayerKind::User, id.as_str())),
        [flag, id] if flag == "--org" => Some((PayerKind::Org, id.as_str())),
        _ => return Err(usage()),
    };
    let ops = operations().await?;
    let reconciler = ops.reconciler.ok_or_else(|| {
        anyhow::anyhow!("reconciliation needs CLERK_SECRET_KEY (and CLERK_PUBLISHABLE_KEY)")
    })?;
    let report = match target {
        None => reconciler.sweep().await?,
        Some((kind, id)) => reconciler.payer(kind, id).await?,
    };
    for line in report.lines() {
        println!("{line}");
    }
    Ok(())
}

/// `plangate inbox list [--failed] [--limit N]` and `plangate inbox replay <svix_id>… | --failed`.
async fn inbox(args: &[String]) -> anyhow::Result<()> {
    let usage = || {
        anyhow::anyhow!(
            "usage: plangate inbox list [--failed] [--limit N] | plangate inbox replay <svix_id>... | --failed"
        )
    };
    match args.first().map(String::as_str) {
        Some("list") => {
            let (mut failed, mut limit) = (false, 50i64);
            let mut rest = args[1..].iter();
            while let Some(a) = rest.next() {
                match a.as_str() {
                    "--failed" => failed = true,
                    "--limit" => {
                        limit = rest
                            .next()
                            .and_then(|n| n.parse().ok())
                            .filter(|n| *n > 0)
                            .ok_or_else(|| anyhow::anyhow!("--limit takes a number above 0"))?
                    }
                    _ => return Err(usage()),
                }
            }
            let ops = operations().await?;
            for row in ops.inbox.list(failed, limit).await? {
                println!(
                    "{} {} {} {}",
                    row.svix_id,
                    row.event_type,
                    row.outcome,
                    plangate::views::format_rfc3339(row.received_at)
                );
            }
            Ok(())
        }
        Some("replay") if args.len() > 1 => {
            let ops = operations().await?;
            let ids: Vec<String> = if args[1..] == ["--failed".to_string()] {
                ops.inbox
                    .list(true, i64::MAX)
                    .await?
                    .into_iter()
                    .map(|r| r.svix_id)
                    .collect()
            } else if args[1..].iter().any(|a| a.starts_with("--")) {
                return Err(usage());
            } else {
                args[1..].to_vec()
            };
            let mut trouble = 0;
            for id in ids {
                match ops.inbox.replay(&id).await {
                    Ok(r) => match r.reason {
                        Some(reason) => {
                            trouble += 1;
                            println!("{id} {} ({reason})", r.outcome.as_str())
                        }
                        None => println!("{id} {}", r.outcome.as_str()),
                    },
                    Err(
                        e @ (InboxError::NotFound(_)
                        | InboxError::Purged(_)
                        | InboxError::Payload(_)),
                    ) => {
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
        _ => Err(usage()),
    }
}

/// `plangate check` (DESIGN §12): one `ok`/`FAIL` line per check; exit 1 on any FAIL.
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
async fn backup(args: &[String]) -> anyhow::Result<()> {
    let [file] = args else {
        anyhow::bail!("usage: plangate backup <file>");
    };
    let config = Config::from_env()?;
    telemetry::init_for_command(config.json_logs);
    let db = Db::connect(&config.database_url).await?;
    let started = std::time::Instant::now();
    db.backup_sqlite(std::path::Path::new(file)).await?;
    let size = std::fs::metadata(file).map(|m| m.len()).unwrap_or(0);
    println!(
        "backup written to {file} ({size} bytes, {} ms)",
        started.elapsed().as_millis()
    );
    Ok(())
}
