//! The embedded SQLite engine under the shared store (`sql/`): one file,
//! WAL, a busy timeout, and `BEGIN IMMEDIATE` for every transaction that
//! writes, so a writer takes the lock up front and waits for it instead of
//! failing half-way with "database is locked". Lists and JSON tables go
//! through `jsonb_each` (it parses the JSON once; `json_each` would re-parse
//! an element for every field read from it).

use super::dialect::Dialect;
use super::record_columns::{Cell, WriteRow};
use super::sql::{Backend, Engine, OnPool, Query, SqlStore};
use super::{Result, StoreError};
use async_trait::async_trait;
use sqlx::SqlitePool;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use std::str::FromStr;
use std::time::Duration;

/// The SQLite engine under [`SqlStore`].
pub struct Sqlite {
    pub(super) pool: SqlitePool,
}

pub type SqliteStore = SqlStore<Sqlite>;

impl SqliteStore {
    pub async fn open(url: &str, max_connections: u32, busy_timeout_ms: u64) -> Result<Self> {
        let opts = SqliteConnectOptions::from_str(url)?
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_millis(busy_timeout_ms))
            .pragma("cache_size", "-4000");
        let pool = SqlitePoolOptions::new()
            .max_connections(max_connections.max(1))
            .acquire_timeout(Duration::from_millis(busy_timeout_ms.max(1000)))
            .after_connect(|conn, _| Box::pin(refuse_read_only(conn)))
            .after_release(|conn, _| Box::pin(out_of_transaction(conn)))
            .connect_with(opts)
            .await?;
        Ok(SqlStore::new(Sqlite { pool }))
    }
}

/// Refuses a new connection that can not write. SQLite opens a file it
/// may not write (made immutable, or read-only, for a while) read-only
/// without a word, and such a connection stays read-only after the file is
/// writable again: every write on it would fail for as long as the pool
/// keeps it. `BEGIN IMMEDIATE` does not tell (it succeeds on such a
/// connection); rewriting `user_version` with its own value inside it does,
/// and the rollback leaves the file untouched. With no busy wait, a lock
/// held by another writer answers `SQLITE_BUSY`, which says the file is
/// writable. The pool retries a refused connection until its acquire
/// timeout.
async fn refuse_read_only(conn: &mut sqlx::SqliteConnection) -> sqlx::Result<()> {
    use sqlx::Executor as _;
    let busy_timeout: i64 = sqlx::query_scalar("PRAGMA busy_timeout")
        .fetch_one(&mut *conn)
        .await?;
    conn.execute("PRAGMA busy_timeout = 0").await?;
    let probe = async {
        conn.execute("BEGIN IMMEDIATE").await?;
        let version: i64 = sqlx::query_scalar("PRAGMA user_version")
            .fetch_one(&mut *conn)
            .await?;
        conn.execute(sqlx::AssertSqlSafe(format!(
            "PRAGMA user_version = {version}"
        )))
        .await
    }
    .await;
    // Nothing to roll back when `BEGIN` itself failed.
    let _ = conn.execute("ROLLBACK").await;
    conn.execute(sqlx::AssertSqlSafe(format!(
        "PRAGMA busy_timeout = {busy_timeout}"
    )))
    .await?;
    match probe {
        Err(sqlx::Error::Database(e)) if !is_busy(e.as_ref()) => Err(sqlx::Error::Database(e)),
        Ok(_) | Err(sqlx::Error::Database(_)) => Ok(()),
        Err(e) => Err(e),
    }
}

/// `SQLITE_BUSY` or one of its extended codes.
fn is_busy(e: &dyn sqlx::error::DatabaseError) -> bool {
    e.code()
        .and_then(|c| c.parse::<i32>().ok())
        .is_some_and(|c| c & 0xff == 5)
}

/// Keeps a connection returned to the pool only when it is outside any
/// transaction. A transaction whose `COMMIT` failed (an I/O error: the
/// file was not writable) is rolled back by SQLite itself, so the
/// `ROLLBACK` sent when it is dropped fails, and the driver still counts
/// the transaction as open: every later `BEGIN` on that connection would
/// fail ("attempted to call begin_with at non-zero transaction depth").
/// The ping first runs the rollback a dropped transaction queued.
async fn out_of_transaction(conn: &mut sqlx::SqliteConnection) -> sqlx::Result<bool> {
    use sqlx::Connection as _;
    conn.ping().await?;
    let clean = !conn.is_in_transaction();
    if !clean {
        tracing::warn!("a database connection came back inside a failed transaction; closing it");
    }
    Ok(clean)
}

impl Engine for sqlx::Sqlite {
    fn bind_ids<'q>(query: Query<'q, Self>, ids: &'q [i64]) -> Query<'q, Self> {
        query.bind(serde_json::to_string(ids).expect("ids serialize"))
    }

    fn bind_texts<'q>(query: Query<'q, Self>, texts: &'q [&'q str]) -> Query<'q, Self> {
        query.bind(serde_json::to_string(texts).expect("texts serialize"))
    }

    fn bind_write_rows<'q>(query: Query<'q, Self>, rows: &'q [WriteRow<'q>]) -> Query<'q, Self> {
        let mut query = query;
        for row in rows {
            for cell in row.cells() {
                query = match cell {
                    Cell::Int(v) => query.bind(v),
                    Cell::Text(v) => query.bind(v),
                };
            }
        }
        query
    }

    fn rows_affected(result: &sqlx::sqlite::SqliteQueryResult) -> u64 {
        result.rows_affected()
    }
}

#[async_trait]
impl Backend for Sqlite {
    const DIALECT: Dialect = Dialect::Sqlite;
    type Row = sqlx::sqlite::SqliteRow;
    type Pool<'a> = OnPool<'a, sqlx::Sqlite>;
    type Alone<'a> = Self::Tx;
    type Tx = sqlx::Transaction<'static, sqlx::Sqlite>;

    fn pool(&self) -> Self::Pool<'_> {
        OnPool(&self.pool)
    }

    async fn begin(&self) -> Result<Self::Tx> {
        Ok(self.pool.begin_with("BEGIN IMMEDIATE").await?)
    }

    async fn alone(&self) -> Result<Self::Alone<'_>> {
        self.begin().await
    }

    async fn migrate(&self) -> Result<()> {
        Self::migrator()
            .run(&self.pool)
            .await
            .map_err(|e| StoreError::Migration(e.to_string()))
    }

    async fn applied_migrations(&self) -> Result<Vec<i64>> {
        super::applied_migrations(&self.pool).await
    }

    fn migrator() -> sqlx::migrate::Migrator {
        sqlx::migrate!("migrations/sqlite")
    }

    async fn analyze(&self) -> Result<()> {
        sqlx::query("PRAGMA optimize").execute(&self.pool).await?;
        Ok(())
    }

    async fn encrypted(&self) -> Result<Option<bool>> {
        Ok(None)
    }
}
