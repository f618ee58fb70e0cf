//! The PostgreSQL engine under the shared store (`sql/`), for several
//! daemons on one database: connection bounds, the password kept off the
//! URL, arrays bound as arrays. Its SQL differs from SQLite's only where
//! `dialect.rs` says (row locks, `jsonb_to_recordset`, `UNNEST`).

use super::dialect::Dialect;
use super::record_columns::{Cell, WRITE_COLUMNS, WriteRow};
use super::sql::{Backend, Engine, OnPool, Query, SqlStore};
use super::{Result, StoreError};
use async_trait::async_trait;
use sqlx::PgPool;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use std::str::FromStr;
use std::time::Duration;

/// The PostgreSQL engine under [`SqlStore`].
pub struct Postgres {
    pub(super) pool: PgPool,
}

pub type PostgresStore = SqlStore<Postgres>;
/// The longest wait for a pooled connection. A server that holds packets
/// (a network partition) rather than refusing them leaves every ping of an
/// idle connection unanswered: the wait must end, with an error the daemon
/// logs, within seconds rather than after `busy_timeout_ms`.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);

/// Server-side bounds, in milliseconds. A session idle inside a
/// transaction this long is ended, so that a daemon cut off mid-transaction
/// does not hold its row locks (and the other daemons' claims behind them)
/// for as long as TCP takes to notice (the daemon's transactions go from
/// one statement to the next in well under a second). A statement that runs this long
/// is cancelled: far above the daemon's own (its bulk work goes in chunks
/// of seconds), with room for a migration or `ANALYZE` of a large database.
const IDLE_IN_TRANSACTION_TIMEOUT_MS: u32 = 120_000;
const STATEMENT_TIMEOUT_MS: u32 = 300_000;

impl PostgresStore {
    pub async fn open(
        url: &str,
        password: Option<&str>,
        max_connections: u32,
        acquire_timeout_ms: u64,
    ) -> Result<Self> {
        refuse_unknown_secrets(url)?;
        // Without a password here, sqlx takes the URL's, `PGPASSWORD`'s or
        // the one `PGPASSFILE` (or `~/.pgpass`) holds for this host and user.
        let mut opts = PgConnectOptions::from_str(url)?;
        if let Some(password) = password {
            opts = opts.password(password);
        }
        // JIT compiling costs more than these short statements ever run.
        let opts = opts.application_name("hoursync").options([
            ("jit", "off".to_string()),
            ("statement_timeout", STATEMENT_TIMEOUT_MS.to_string()),
            (
                "idle_in_transaction_session_timeout",
                IDLE_IN_TRANSACTION_TIMEOUT_MS.to_string(),
            ),
        ]);
        let acquire_timeout = Duration::from_millis(acquire_timeout_ms)
            .clamp(Duration::from_secs(1), ACQUIRE_TIMEOUT);
        let pool = PgPoolOptions::new()
            .max_connections(max_connections.max(1))
            .acquire_timeout(acquire_timeout)
            .connect_with(opts)
            .await?;
        Ok(SqlStore::new(Postgres { pool }))
    }
}

impl Engine for sqlx::Postgres {
    fn bind_ids<'q>(query: Query<'q, Self>, ids: &'q [i64]) -> Query<'q, Self> {
        query.bind(ids)
    }

    fn bind_texts<'q>(query: Query<'q, Self>, texts: &'q [&'q str]) -> Query<'q, Self> {
        query.bind(texts)
    }

    fn bind_write_rows<'q>(query: Query<'q, Self>, rows: &'q [WriteRow<'q>]) -> Query<'q, Self> {
        let cells: Vec<[Cell<'q>; 23]> = rows.iter().map(WriteRow::cells).collect();
        let mut query = query;
        for (c, (_, ty)) in WRITE_COLUMNS.iter().enumerate() {
            query = if *ty == "bigint" {
                query.bind(cells.iter().map(|r| r[c].int()).collect::<Vec<_>>())
            } else {
                query.bind(cells.iter().map(|r| r[c].text()).collect::<Vec<_>>())
            };
        }
        query
    }

    fn rows_affected(result: &sqlx::postgres::PgQueryResult) -> u64 {
        result.rows_affected()
    }
}

#[async_trait]
impl Backend for Postgres {
    const DIALECT: Dialect = Dialect::Postgres;
    type Row = sqlx::postgres::PgRow;
    type Pool<'a> = OnPool<'a, sqlx::Postgres>;
    type Alone<'a> = OnPool<'a, sqlx::Postgres>;
    type Tx = sqlx::Transaction<'static, sqlx::Postgres>;

    fn pool(&self) -> Self::Pool<'_> {
        OnPool(&self.pool)
    }

    async fn begin(&self) -> Result<Self::Tx> {
        Ok(self.pool.begin().await?)
    }

    async fn alone(&self) -> Result<Self::Alone<'_>> {
        Ok(self.pool())
    }

    async fn migrate(&self) -> Result<()> {
        // sqlx takes an advisory lock: daemons starting together migrate once.
        Self::migrator()
            .run(&self.pool)
            .await
            .map_err(|e| StoreError::Migration(e.to_string()))
    }

    async fn applied_migrations(&self) -> Result<Vec<i64>> {
        super::applied_migrations(&self.pool).await
    }

    fn migrator() -> sqlx::migrate::Migrator {
        sqlx::migrate!("migrations/postgres")
    }

    async fn analyze(&self) -> Result<()> {
        sqlx::query("ANALYZE units, persons, accounts, courses, completions, deliveries")
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn encrypted(&self) -> Result<Option<bool>> {
        let ssl: Option<bool> =
            sqlx::query_scalar("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
                .fetch_optional(&self.pool)
                .await?;
        Ok(Some(ssl.unwrap_or(false)))
    }
}

/// Query parameters sqlx reads that look like secrets but are not.
const KNOWN_KEYS: [&str; 3] = ["password", "sslkey", "ssl-key"];

/// sqlx logs the value of a query parameter it does not know: a
/// password-like one (libpq's `sslpassword`, a misspelt `passwd`) is
/// refused before that, naming the key, never the value.
fn refuse_unknown_secrets(url: &str) -> Result<()> {
    let Ok(parsed) = url::Url::parse(url) else {
        return Ok(());
    };
    let query = parsed.query().unwrap_or("");
    for pair in query.split('&') {
        let key = pair.split_once('=').map_or(pair, |(k, _)| k);
        if crate::redact::is_secret_key(key) && !KNOWN_KEYS.contains(&key) {
            return Err(StoreError::Fatal(format!(
                "database.url: parameter {key:?} is not supported, and it looks like a secret; \
                 put the password in database.password_file"
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::refuse_unknown_secrets;

    #[test]
    fn an_unknown_password_like_parameter_is_refused_without_its_value() {
        let err = refuse_unknown_secrets("postgres://h/db?sslmode=require&sslpassword=hunter2")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("sslpassword") && !err.contains("hunter2"),
            "{err}"
        );
        for fine in [
            "postgres://h/db?password=x&sslmode=verify-full&sslrootcert=/ca.pem&sslkey=/k.pem",
            "postgres://u:p@h/db",
        ] {
            refuse_unknown_secrets(fine).unwrap();
        }
    }
}
