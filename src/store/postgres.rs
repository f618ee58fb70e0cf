//! The PostgreSQL backend, for several daemons on one database. The same
//! contract as SQLite; the differences are PostgreSQL's own tools: claims
//! with `FOR UPDATE SKIP LOCKED`, bulk statements over `jsonb`, row locks on
//! the deliveries a scan chunk rewrites.

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
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{PgPool, Row};
use std::str::FromStr;
use std::time::Duration;

pub struct PostgresStore {
    pool: PgPool,
}

impl PostgresStore {
    pub async fn open(url: &str, max_connections: u32, acquire_timeout_ms: u64) -> Result<Self> {
        // JIT compiling costs more than these short statements ever run.
        let opts = PgConnectOptions::from_str(url)?
            .application_name("hoursync")
            .options([("jit", "off")]);
        let pool = PgPoolOptions::new()
            .max_connections(max_connections.max(1))
            .acquire_timeout(Duration::from_millis(acquire_timeout_ms.max(1000)))
            .connect_with(opts)
            .await?;
        Ok(Self { pool })
    }
}

#[async_trait]
impl Store for PostgresStore {
    async fn migrate(&self) -> Result<()> {
        // sqlx takes an advisory lock: daemons starting together migrate once.
        sqlx::migrate!("migrations/postgres")
            .run(&self.pool)
            .await
            .map_err(|e| StoreError::Migration(e.to_string()))
    }

    async fn analyze(&self) -> Result<()> {
        sqlx::query("ANALYZE units, persons, accounts, courses, completions, deliveries")
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }
}

/// What an intake statement takes beyond its rows. PostgreSQL refuses a
/// parameter a statement does not use.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Params {
    /// The sequence and the time: it stamps the rows it changes, which
    /// count as changed.
    Stamp,
    /// The sequence only: it rewrites the hours of courses already
    /// stamped (and counted).
    Rewrite,
}
