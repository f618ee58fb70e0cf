//! Persistence. The [`Store`] trait is everything the daemon asks of a
//! database, split by concern (`api.rs`: intake, scan, dispatch, history,
//! leases, support, calendar, copy). Each concern is written once, in
//! `sql/<concern>.rs`, over a small [`sql::Backend`] (a pool, transactions,
//! migrations) that `sqlite.rs` and `postgres.rs` provide; what differs
//! between their SQL is named in `dialect.rs`. All SQL lives in this module.
//! Instants are bound as parameters (milliseconds, from the caller's
//! [`Clock`](crate::clock::Clock)), never read from the database's clock.

mod api;
pub mod bench_reference;
mod copy;
mod dialect;
mod postgres;
mod record_columns;
mod request_log;
mod rowmap;
mod sql;
mod sqlite;
mod transitions;
mod types;

pub use api::*;
pub use copy::{CopyTable, PageBinds, PageKey};
pub use postgres::PostgresStore;
pub use sqlite::SqliteStore;
pub use types::*;

use async_trait::async_trait;
use std::sync::Arc;

/// A database failure. `Busy` and `Unavailable` are worth retrying (a lock
/// held too long, a connection lost); `Fatal` is not.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database busy: {0}")]
    Busy(String),
    #[error("database unavailable: {0}")]
    Unavailable(String),
    #[error("database error: {0}")]
    Fatal(String),
    #[error("database migration failed: {0}")]
    Migration(String),
    /// A row with the same key exists (a unique constraint refused the
    /// write): the statement's guess about the table was wrong.
    #[error("database conflict: {0}")]
    Duplicate(String),
}

impl StoreError {
    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::Busy(_) | Self::Unavailable(_))
    }
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        match &e {
            sqlx::Error::Io(_) | sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed => {
                Self::Unavailable(e.to_string())
            }
            sqlx::Error::Database(db) if db.is_unique_violation() => Self::Duplicate(e.to_string()),
            // SQLite's lock, PostgreSQL's serialization failure and deadlock.
            sqlx::Error::Database(db)
                if db.message().contains("locked")
                    || db.message().contains("busy")
                    || matches!(db.code().as_deref(), Some("40001" | "40P01")) =>
            {
                Self::Busy(e.to_string())
            }
            // PostgreSQL going away: admin shutdown, crash, cannot connect now.
            sqlx::Error::Database(db)
                if db
                    .code()
                    .as_deref()
                    .is_some_and(|c| c.starts_with("57P") || c.starts_with("08")) =>
            {
                Self::Unavailable(e.to_string())
            }
            _ => Self::Fatal(e.to_string()),
        }
    }
}

pub type Result<T> = std::result::Result<T, StoreError>;
pub type SharedStore = Arc<dyn Store>;

/// Everything the daemon needs from a database; each backend implements
/// every concern.
#[async_trait]
pub trait Store:
    IntakeStore
    + ScanStore
    + DispatchStore
    + HistoryStore
    + LeaseStore
    + SupportStore
    + CalendarStore
    + CopyStore
    + Send
    + Sync
    + 'static
{
    /// Applies pending migrations; safe to call on every start.
    async fn migrate(&self) -> Result<()>;

    /// How many of this build's migrations the database lacks (all of them
    /// for an empty database), for commands that must not migrate.
    async fn pending_migrations(&self) -> Result<usize>;

    /// Refreshes the planner's statistics after a bulk change, so the
    /// queries keep their index plans (PostgreSQL servers without
    /// autovacuum, and SQLite, otherwise plan on stale or no statistics).
    async fn analyze(&self) -> Result<()>;

    /// Whether the database answers.
    async fn ping(&self) -> Result<()>;

    /// Whether the connection to the database is encrypted (TLS); `None`
    /// for a database that is a local file. Logged at start, so ops see
    /// what `sslmode` gave them.
    async fn encrypted(&self) -> Result<Option<bool>>;
}

/// Opens the store a URL names: `sqlite://…` or `postgres://…`.
/// Whether the database `url` names exists: for SQLite, whether its file
/// does (opening would create it); a PostgreSQL database is never created
/// by connecting, so it counts as existing here.
pub fn database_exists(url: &str) -> Result<bool> {
    if !url.starts_with("sqlite:") {
        return Ok(true);
    }
    let opts: sqlx::sqlite::SqliteConnectOptions = url.parse()?;
    let file = opts.get_filename();
    Ok(file.as_os_str() == ":memory:" || file.exists())
}

/// SQLite's and PostgreSQL's (42P01) error for a table that does not exist.
fn no_such_table(e: &dyn sqlx::error::DatabaseError) -> bool {
    e.code().as_deref() == Some("42P01") || e.message().contains("no such table")
}

/// The versions of the migrations applied to the database `pool` opens;
/// none for an empty database (no migrations table).
async fn applied_migrations<DB>(pool: &sqlx::Pool<DB>) -> Result<Vec<i64>>
where
    DB: sqlx::Database,
    for<'c> &'c mut DB::Connection: sqlx::Executor<'c, Database = DB>,
    DB::Arguments: sqlx::IntoArguments<DB>,
    for<'r> (i64,): sqlx::FromRow<'r, DB::Row>,
{
    match sqlx::query_as::<_, (i64,)>("SELECT version FROM _sqlx_migrations WHERE success")
        .fetch_all(pool)
        .await
    {
        Ok(applied) => Ok(applied.into_iter().map(|(v,)| v).collect()),
        Err(sqlx::Error::Database(e)) if no_such_table(e.as_ref()) => Ok(vec![]),
        Err(e) => Err(e.into()),
    }
}

/// The migrations of `migrator` not among `applied` (their versions).
fn missing(migrator: &sqlx::migrate::Migrator, applied: &[i64]) -> usize {
    migrator
        .iter()
        .filter(|m| m.migration_type.is_up_migration() && !applied.contains(&m.version))
        .count()
}

pub async fn open(url: &str, max_connections: u32, busy_timeout_ms: u64) -> Result<SharedStore> {
    open_with_password(url, None, max_connections, busy_timeout_ms).await
}

/// [`open`], with a PostgreSQL password given to the connection options
/// (from `database.password_file`) rather than written into the URL, where
/// every message that names the URL would have to hide it again.
pub async fn open_with_password(
    url: &str,
    password: Option<&str>,
    max_connections: u32,
    busy_timeout_ms: u64,
) -> Result<SharedStore> {
    if url.starts_with("sqlite:") {
        Ok(Arc::new(
            SqliteStore::open(url, max_connections, busy_timeout_ms).await?,
        ))
    } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Ok(Arc::new(
            PostgresStore::open(url, password, max_connections, busy_timeout_ms).await?,
        ))
    } else {
        Err(StoreError::Fatal(format!(
            "unsupported database URL scheme {:?}: expected sqlite:// or postgres://",
            url.split(':').next().unwrap_or("")
        )))
    }
}
