//! The only place with SQL. One pool over SQLite or PostgreSQL (sqlx's `Any` driver), chosen by
//! `DATABASE_URL`; every statement is written so both engines accept it (`$n` placeholders,
//! `on conflict`, `returning`).

pub mod api_keys;
pub mod console;
pub mod inbox;
pub mod items;
pub mod leases;
pub mod notify;
pub mod outbox;
pub mod payments;
pub mod usage;
pub mod users;

use std::{future::Future, path::Path, pin::Pin, str::FromStr, time::Duration};

use anyhow::Context;
use sqlx::{
    any::{AnyConnectOptions, AnyPoolOptions},
    error::BoxDynError,
    migrate::{Migration, MigrationType},
    AnyConnection, AnyPool, Connection, Executor,
};

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("database error: {0}")]
    Sqlx(#[from] sqlx::Error),
}

#[derive(Clone, Debug)]
pub struct Db {
    pub pool: AnyPool,
    pub engine: Engine,
    options: AnyConnectOptions,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Engine {
    Sqlite,
    Postgres,
}

impl Engine {
    pub fn as_str(self) -> &'static str {
        match self {
            Engine::Sqlite => "sqlite",
            Engine::Postgres => "postgres",
        }
    }
}

/// Makes `sqlite://relative/path.db` usable: creates the folder and asks SQLite to create the
/// file on first start. Also returns the database file's path (none for an in-memory database).
fn sqlite_url(url: &str) -> anyhow::Result<(String, Option<&str>)> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
        .unwrap_or(url);
    let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
    let in_memory =
        path == ":memory:" || path.is_empty() || query.split('&').any(|kv| kv == "mode=memory");
    if !in_memory {
        if let Some(parent) = Path::new(path)
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
        {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("creating the database folder {}", parent.display()))?;
        }
    }
    let query = if query.contains("mode=") {
        query.to_string()
    } else if query.is_empty() {
        "mode=rwc".to_string()
    } else {
        format!("{query}&mode=rwc")
    };
    let file = (!in_memory).then_some(path);
    Ok((format!("sqlite://{path}?{query}"), file))
}

impl Db {
    pub async fn connect(url: &str) -> anyhow::Result<Db> {
        sqlx::any::install_default_drivers();
        let engine = if url.starts_with("sqlite:") {
            Engine::Sqlite
        } else {
            Engine::Postgres
        };
        let url = match engine {
            Engine::Sqlite => {
                let (url, file) = sqlite_url(url)?;
                if let Some(f) = file {
                    // Private from the first byte: SQLite gives its journal files the
                    // database file's mode.
                    crate::private_files::create_private(Path::new(f))
                        .with_context(|| format!("creating the database file {f}"))?;
                    for suffix in ["-wal", "-shm", "-journal"] {
                        crate::private_files::private_file(Path::new(&format!("{f}{suffix}")))
                            .with_context(|| format!("making {f}{suffix} private"))?;
                    }
                }
                url
            }
            Engine::Postgres => url.to_string(),
        };
        let options = AnyConnectOptions::from_str(&url).context("parsing DATABASE_URL")?;
        let pool = AnyPoolOptions::new()
            .max_connections(match engine {
                Engine::Sqlite => 8,
                Engine::Postgres => 16,
            })
            .acquire_timeout(Duration::from_secs(10))
            .after_connect(move |conn, _| Box::pin(prepare(conn, engine)))
            .connect_with(options.clone())
            .await
            .with_context(|| format!("connecting to the {} database", engine.as_str()))?;
        Ok(Db {
            pool,
            engine,
            options,
        })
    }

    /// The webhook writer's connection: its own, outside the pool, set up like the pool's
    /// (on SQLite `synchronous = full`: a commit returns once its log frames are on disk).
    pub async fn connect_writer(&self) -> Result<AnyConnection, DbError> {
        let mut conn = AnyConnection::connect_with(&self.options).await?;
        prepare(&mut conn, self.engine).await?;
        Ok(conn)
    }

    pub async fn migrate(&self) -> anyhow::Result<()> {
        sqlx::migrate::Migrator::new(Embedded)
            .await?
            .run(&self.pool)
            .await
            .context("running database migrations")
    }

    /// The compiled-in migrations this database has not applied (successfully), by version.
    pub async fn pending_migrations(&self) -> Result<Vec<i64>, DbError> {
        use sqlx::Row;
        let applied: Vec<i64> =
            match sqlx::query("select version from _sqlx_migrations where success = true")
                .fetch_all(&self.pool)
                .await
            {
                Ok(rows) => rows.iter().map(|r| r.get::<i64, _>(0)).collect(),
                // No bookkeeping table yet: nothing was ever migrated.
                Err(sqlx::Error::Database(_)) => Vec::new(),
                Err(e) => return Err(e.into()),
            };
        Ok(MIGRATIONS
            .iter()
            .map(|(v, _, _)| *v)
            .filter(|v| !applied.contains(v))
            .collect())
    }

    /// A consistent copy of the SQLite database in `file` (`VACUUM INTO`: one read transaction,
    /// so it is safe while `serve` writes; the copy holds every commit made before it began).
    /// The file is created private (0600) and must not exist yet.
    pub async fn backup_sqlite(&self, file: &Path) -> anyhow::Result<()> {
        anyhow::ensure!(
            self.engine == Engine::Sqlite,
            "plangate backup copies the SQLite database; for PostgreSQL use pg_dump"
        );
        anyhow::ensure!(
            !file.exists(),
            "{} exists already: choose a new file",
            file.display()
        );
        if let Some(dir) = file.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        // An empty file is allowed as the target; created first so it is private from the start.
        crate::private_files::create_private(file)
            .with_context(|| format!("creating {}", file.display()))?;
        let path = file
            .to_str()
            .ok_or_else(|| anyhow::anyhow!("the backup path must be UTF-8"))?;
        let result = sqlx::query("vacuum into $1")
            .bind(path)
            .execute(&self.pool)
            .await;
        if let Err(e) = result {
            let _ = std::fs::remove_file(file);
            return Err(anyhow::Error::new(e).context("copying the database"));
        }
        Ok(())
    }

    pub async fn ping(&self) -> Result<(), DbError> {
        sqlx::query("select 1").execute(&self.pool).await?;
        Ok(())
    }

    pub async fn conn(&self) -> Result<sqlx::pool::PoolConnection<sqlx::Any>, DbError> {
        Ok(self.pool.acquire().await?)
    }
}

/// The migrations, compiled in: (version, description, SQL), as `sqlx::migrate!` would read
/// `migrations/<version>_<description>.sql` (same checksums, so existing databases agree).
/// Listed by hand because the macro needs sqlx's `macros` feature, which compiles sqlx's
/// drivers and the bundled SQLite a second time for the compiler host (minutes of a cold build).
/// A unit test checks this list against the folder.
const MIGRATIONS: &[(i64, &str, &str)] = &[
    (1, "init", include_str!("../../migrations/0001_init.sql")),
    (
        2,
        "event duplicates",
        include_str!("../../migrations/0002_event_duplicates.sql"),
    ),
    (
        3,
        "dead letters",
        include_str!("../../migrations/0003_dead_letters.sql"),
    ),
    (
        4,
        "leases",
        include_str!("../../migrations/0004_leases.sql"),
    ),
    (
        5,
        "item evidence",
        include_str!("../../migrations/0005_item_evidence.sql"),
    ),
    (6, "usage", include_str!("../../migrations/0006_usage.sql")),
    (
        7,
        "console",
        include_str!("../../migrations/0007_console.sql"),
    ),
    (
        8,
        "payments",
        include_str!("../../migrations/0008_payments.sql"),
    ),
    (
        9,
        "api keys",
        include_str!("../../migrations/0009_api_keys.sql"),
    ),
];

#[derive(Debug)]
struct Embedded;

impl<'s> sqlx::migrate::MigrationSource<'s> for Embedded {
    fn resolve(
        self,
    ) -> Pin<Box<dyn Future<Output = Result<Vec<Migration>, BoxDynError>> + Send + 's>> {
        let all = MIGRATIONS
            .iter()
            .map(|&(version, description, sql)| {
                Migration::new(
                    version,
                    description.into(),
                    MigrationType::Simple,
                    sql.into(),
                    false,
                )
            })
            .collect();
        Box::pin(std::future::ready(Ok(all)))
    }
}

/// The most rows one multi-row statement takes. A webhook batch is then one statement per
/// kind (each statement is a hand-off to SQLite's worker thread, and on PostgreSQL a round
/// trip), and the at most 32 texts per kind stay in the connection's prepared-statement cache
/// (100 entries).
pub(crate) const MAX_ROWS: usize = 32;

/// `rows` groups of `per_row` placeholders numbered from `first`: `($1, $2), ($3, $4)`; with
/// one per row, a plain list: `$2, $3`.
pub(crate) fn placeholders(rows: usize, per_row: usize, first: usize) -> String {
    (0..rows)
        .map(|r| {
            let start = first + r * per_row;
            let row: Vec<String> = (start..start + per_row).map(|n| format!("${n}")).collect();
            if per_row == 1 {
                row.join(", ")
            } else {
                format!("({})", row.join(", "))
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

async fn prepare(conn: &mut AnyConnection, engine: Engine) -> Result<(), sqlx::Error> {
    if engine == Engine::Sqlite {
        // WAL with synchronous=FULL: a commit is on disk before we answer 2xx.
        conn.execute(
            "pragma journal_mode = wal; pragma synchronous = full; \
             pragma busy_timeout = 15000; pragma foreign_keys = on;",
        )
        .await?;
    }
    Ok(())
}

pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    /// A new file in `migrations/` must be listed in `MIGRATIONS`, as the macro would read it.
    #[test]
    fn compiled_in_migrations_match_the_folder() {
        let mut files: Vec<(i64, String, String)> = std::fs::read_dir("migrations")
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|x| x == "sql"))
            .map(|p| {
                let stem = p.file_stem().unwrap().to_str().unwrap().to_owned();
                let (version, description) = stem.split_once('_').unwrap();
                let sql = std::fs::read_to_string(&p).unwrap();
                (version.parse().unwrap(), description.replace('_', " "), sql)
            })
            .collect();
        files.sort();
        let listed: Vec<(i64, String, String)> = super::MIGRATIONS
            .iter()
            .map(|&(v, d, sql)| (v, d.to_owned(), sql.to_owned()))
            .collect();
        assert_eq!(listed, files);
    }

    /// The writer answers once its commit returns: on SQLite that is durable only with
    /// `synchronous = full` (2), which its own connection must have too.
    #[tokio::test]
    async fn the_writers_sqlite_connection_syncs_every_commit() {
        use sqlx::Row;
        let dir = std::env::temp_dir().join(format!("plangate-sync-{}", std::process::id()));
        let db = super::Db::connect(&format!("sqlite://{}/s.db", dir.display()))
            .await
            .unwrap();
        let mut conn = db.connect_writer().await.unwrap();
        let level: i64 = sqlx::query("pragma synchronous")
            .fetch_one(&mut conn)
            .await
            .unwrap()
            .get(0);
        assert_eq!(level, 2);
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn placeholders_number_rows_from_the_first() {
        assert_eq!(super::placeholders(2, 2, 1), "($1, $2), ($3, $4)");
        assert_eq!(super::placeholders(2, 1, 2), "$2, $3");
    }

    #[test]
    fn sqlite_urls_name_their_file_unless_in_memory() {
        let file = |url| super::sqlite_url(url).unwrap().1;
        assert_eq!(file("sqlite:///tmp/x.db"), Some("/tmp/x.db"));
        assert_eq!(file("sqlite:/tmp/x.db?mode=rwc"), Some("/tmp/x.db"));
        assert_eq!(file("sqlite::memory:"), None);
        assert_eq!(file("sqlite://x.db?mode=memory&cache=shared"), None);
    }

    #[test]
    fn sqlite_urls_gain_create_mode_and_keep_their_options() {
        let dir = std::env::temp_dir().join("plangate-url-test");
        let url = format!("sqlite://{}/x.db", dir.display());
        assert!(super::sqlite_url(&url)
            .unwrap()
            .0
            .ends_with("/x.db?mode=rwc"));
        assert!(dir.exists());
        assert!(super::sqlite_url("sqlite::memory:")
            .unwrap()
            .0
            .contains("mode=rwc"));
        assert!(super::sqlite_url("sqlite://a.db?mode=ro")
            .unwrap()
            .0
            .ends_with("?mode=ro"));
    }
}
