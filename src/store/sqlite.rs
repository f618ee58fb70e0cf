//! The embedded SQLite backend: one file, WAL, a busy timeout, and
//! `BEGIN IMMEDIATE` for every transaction that writes, so a writer takes
//! the lock up front and waits for it instead of failing half-way with
//! "database is locked". Bulk work goes through `jsonb_each` so each chunk
//! is one statement, not one per row (`jsonb_each` parses the JSON once;
//! `json_each` would re-parse an element for every field read from it).

mod calendar;
mod copy;
mod dispatch;
mod history;
mod intake;
mod leases;
mod reconcile;
mod scan;
mod support;
mod transitions;

use super::rowmap::{
    IntakeRows, ReadRow, audit_entry, breached_record, claimed, delivery_item, existing_delivery,
    nid, parse_registry, person_record, scan_row, sla_count, state_count, table_counts,
};
use super::*;
use crate::transition::Event;
use history::INSERT_ATTEMPTS;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Row, SqlitePool, Transaction};
use std::str::FromStr;
use std::time::Duration;

pub struct SqliteStore {
    pool: SqlitePool,
}

type Tx = Transaction<'static, sqlx::Sqlite>;

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
        Ok(Self { pool })
    }

    async fn write_tx(&self) -> Result<Tx> {
        Ok(self.pool.begin_with("BEGIN IMMEDIATE").await?)
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

fn ids_json(ids: &[i64]) -> String {
    serde_json::to_string(ids).expect("ids serialize")
}

#[async_trait]
impl Store for SqliteStore {
    async fn pending_migrations(&self) -> Result<usize> {
        // No migrations table: nothing applied (an empty database).
        let applied: Vec<i64> =
            match sqlx::query_scalar("SELECT version FROM _sqlx_migrations WHERE success")
                .fetch_all(&self.pool)
                .await
            {
                Ok(applied) => applied,
                Err(sqlx::Error::Database(e)) if super::no_such_table(e.as_ref()) => vec![],
                Err(e) => return Err(e.into()),
            };
        Ok(super::missing(
            &sqlx::migrate!("migrations/sqlite"),
            &applied,
        ))
    }

    async fn migrate(&self) -> Result<()> {
        sqlx::migrate!("migrations/sqlite")
            .run(&self.pool)
            .await
            .map_err(|e| StoreError::Migration(e.to_string()))
    }

    async fn analyze(&self) -> Result<()> {
        sqlx::query("PRAGMA optimize").execute(&self.pool).await?;
        Ok(())
    }

    async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    async fn encrypted(&self) -> Result<Option<bool>> {
        Ok(None)
    }
}
