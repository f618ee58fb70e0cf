//! The bench's reference line over either backend: see
//! [`crate::store::bench_reference`].

use super::dispatch::claim_sql;
use super::{Backend, Run, SqlStore};
use crate::domain::RegistryKind;
use crate::store::Claimed;
use crate::store::Result;
use crate::store::bench_reference::{TABLE, select_list};
use crate::store::dialect::{Dialect, Sql};
use crate::store::rowmap::ReadRow as _;
use async_trait::async_trait;

/// What the reference loop does to its copy.
#[async_trait]
pub trait Reference: Send + Sync {
    /// Copies the `delivered` rows of `deliveries` into the copy as never
    /// sent, with `deliveries`' indexes.
    async fn copy_delivered(&self) -> Result<()>;
    async fn claim(
        &self,
        registry: RegistryKind,
        owner: &str,
        now_ms: i64,
        lease_until_ms: i64,
        limit: usize,
    ) -> Result<Vec<Claimed>>;
    async fn mark_delivered(&self, delivered: &[(i64, String, i64)], now_ms: i64) -> Result<u64>;
    async fn drop_table(&self) -> Result<()>;
}

static COLUMNS: Sql = Sql::built(|d: Dialect| match d {
    Dialect::Postgres => "SELECT column_name::text FROM information_schema.columns
         WHERE table_schema = current_schema() AND table_name = 'deliveries'
         ORDER BY ordinal_position"
        .into(),
    Dialect::Sqlite => "SELECT name FROM pragma_table_info('deliveries') ORDER BY cid".into(),
});

static CLAIM: Sql = Sql::built(|d: Dialect| claim_sql(d, TABLE));

static MARK_DELIVERED: Sql = Sql::built(|d: Dialect| {
    format!(
        "UPDATE {TABLE} AS d SET state = 'delivered', receipt_id = r.receipt,
            credited_tenths = r.tenths, delivered_at = $2, attempts = d.attempts + 1,
            lease_owner = NULL, lease_until = NULL, updated_at = $2
         FROM {}
         WHERE d.id = r.id",
        d.json_tuples(
            "$1",
            &[("id", "bigint"), ("receipt", "text"), ("tenths", "bigint")],
            "r"
        )
    )
});

#[async_trait]
impl<B: Backend> Reference for SqlStore<B> {
    async fn copy_delivered(&self) -> Result<()> {
        let mut pool = self.db.pool();
        let columns = pool
            .fetch_all(Self::sql(&COLUMNS), &[])
            .await?
            .iter()
            .map(|r| r.text(0))
            .collect::<Result<Vec<String>>>()?;
        let copy = format!(
            "INSERT INTO {TABLE} ({}) SELECT {} FROM deliveries WHERE state = 'delivered' ORDER BY id",
            columns.join(", "),
            select_list(&columns)
        );
        let mut statements = vec![format!("DROP TABLE IF EXISTS {TABLE}")];
        match B::DIALECT {
            Dialect::Postgres => {
                statements.push(format!(
                    "CREATE TABLE {TABLE} (LIKE deliveries INCLUDING ALL)"
                ));
                statements.push(copy);
            }
            Dialect::Sqlite => {
                // The table first, its indexes after the rows are in.
                let schema = pool
                    .fetch_all(
                        "SELECT type, sql FROM sqlite_master
                         WHERE tbl_name = 'deliveries' AND sql IS NOT NULL ORDER BY type DESC",
                        &[],
                    )
                    .await?;
                let mut indexes = Vec::new();
                for r in &schema {
                    let sql = r.text(1)?.replace("deliveries", TABLE);
                    if r.text(0)? == "table" {
                        statements.push(sql);
                    } else {
                        indexes.push(sql);
                    }
                }
                statements.push(copy);
                statements.extend(indexes);
            }
        }
        statements.push(format!("ANALYZE {TABLE}"));
        for sql in statements {
            pool.execute(sql, &[]).await?;
        }
        Ok(())
    }

    async fn claim(
        &self,
        registry: RegistryKind,
        owner: &str,
        now_ms: i64,
        lease_until_ms: i64,
        limit: usize,
    ) -> Result<Vec<Claimed>> {
        self.claim_with(&CLAIM, registry, owner, now_ms, lease_until_ms, limit)
            .await
    }

    async fn mark_delivered(&self, delivered: &[(i64, String, i64)], now_ms: i64) -> Result<u64> {
        if delivered.is_empty() {
            return Ok(0);
        }
        let json = serde_json::to_string(delivered).expect("tuples serialize");
        self.db
            .pool()
            .execute(Self::sql(&MARK_DELIVERED), args![&json, now_ms])
            .await
    }

    async fn drop_table(&self) -> Result<()> {
        self.db
            .pool()
            .execute(format!("DROP TABLE IF EXISTS {TABLE}"), &[])
            .await?;
        Ok(())
    }
}
