//! Thin bootstrap: `plangate [serve|migrate|trigger …]`.

use plangate::{config::Config, db::Db, startup::Application, telemetry, trigger};

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
        "-h" | "--help" | "help" => {
            println!(
                "usage: plangate [serve | migrate | trigger <event-type> …]\n{}",
                trigger::USAGE
            );
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
