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
            .connect_with(opts)
            .await?;
        Ok(Self { pool })
    }

    async fn write_tx(&self) -> Result<Tx> {
        Ok(self.pool.begin_with("BEGIN IMMEDIATE").await?)
    }
}

fn ids_json(ids: &[i64]) -> String {
    serde_json::to_string(ids).expect("ids serialize")
}

#[async_trait]
impl Store for SqliteStore {
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
}
