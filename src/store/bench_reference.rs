//! The bench's reference line: the least a drain can do (claim a batch with
//! one `UPDATE … RETURNING`, mark it delivered with one `UPDATE`), on a copy
//! of `deliveries` with the same columns and indexes, so the daemon's drain
//! can be compared with it in the same run. Not used by the daemon: no
//! lease table, no transition function, no history.

use super::{Claimed, Result, StoreError};
use crate::domain::RegistryKind;
use sqlx::{PgPool, SqlitePool};

const TABLE: &str = "bench_reference";

/// Columns a claim returns: what [`super::rowmap::claimed`] reads.
const CLAIMED: &str = "id, registry, idempotency_key, attempts, state, revision, receipt_id, national_id, course_code, hours_tenths, format, course_name,
    completed_on, learning_mode, digital_tenths, classroom_tenths, category_code,
    enved_account, service_unit_code";

/// Columns of the copy set back to a never-sent record; the rest are copied.
const RESET: [(&str, &str); 9] = [
    ("state", "'pending'"),
    ("next_attempt_at", "COALESCE(eligible_since, 0)"),
    ("attempts", "0"),
    ("last_error", "NULL"),
    ("receipt_id", "NULL"),
    ("delivered_at", "NULL"),
    ("credited_tenths", "NULL"),
    ("lease_owner", "NULL"),
    ("lease_until", "NULL"),
];

/// The copy, on either backend; dropped by [`ReferenceTable::drop_table`].
#[derive(Clone)]
pub enum ReferenceTable {
    Postgres(PgPool),
    Sqlite(SqlitePool),
}

fn select_list(columns: &[String]) -> String {
    columns
        .iter()
        .map(|c| {
            RESET
                .iter()
                .find(|(name, _)| name == c)
                .map_or_else(|| c.clone(), |(_, v)| format!("{v} AS {c}"))
        })
        .collect::<Vec<_>>()
        .join(", ")
}

impl ReferenceTable {
    /// Copies the `delivered` rows of `deliveries` (what the daemon just
    /// drained) into a new table as never sent, with `deliveries`' indexes;
    /// `connections`: one per lane. Not timed by the bench.
    pub async fn prepare(url: &str, connections: u32) -> Result<Self> {
        if url.starts_with("postgres") {
            let pool = sqlx::postgres::PgPoolOptions::new()
                .max_connections(connections)
                .connect(url)
                .await?;
            let columns: Vec<String> = sqlx::query_scalar(
                "SELECT column_name::text FROM information_schema.columns
                 WHERE table_schema = current_schema() AND table_name = 'deliveries'
                 ORDER BY ordinal_position",
            )
            .fetch_all(&pool)
            .await?;
            for sql in [
                format!("DROP TABLE IF EXISTS {TABLE}"),
                format!("CREATE TABLE {TABLE} (LIKE deliveries INCLUDING ALL)"),
                format!(
                    "INSERT INTO {TABLE} ({}) SELECT {} FROM deliveries WHERE state = 'delivered' ORDER BY id",
                    columns.join(", "),
                    select_list(&columns)
                ),
                format!("ANALYZE {TABLE}"),
            ] {
                sqlx::query(sqlx::AssertSqlSafe(sql)).execute(&pool).await?;
            }
            Ok(Self::Postgres(pool))
        } else {
            let options: sqlx::sqlite::SqliteConnectOptions = url.parse()?;
            let options = options
                .journal_mode(sqlx::sqlite::SqliteJournalMode::Wal)
                .synchronous(sqlx::sqlite::SqliteSynchronous::Normal)
                .busy_timeout(std::time::Duration::from_secs(30))
                .pragma("cache_size", "-4000");
            let pool = sqlx::sqlite::SqlitePoolOptions::new()
                .max_connections(connections)
                .connect_with(options)
                .await?;
            let columns: Vec<String> =
                sqlx::query_scalar("SELECT name FROM pragma_table_info('deliveries') ORDER BY cid")
                    .fetch_all(&pool)
                    .await?;
            let schema: Vec<(String, String)> = sqlx::query_as(
                "SELECT type, sql FROM sqlite_master
                 WHERE tbl_name = 'deliveries' AND sql IS NOT NULL ORDER BY type DESC",
            )
            .fetch_all(&pool)
            .await?;
            let (tables, indexes): (Vec<_>, Vec<_>) =
                schema.into_iter().partition(|(kind, _)| kind == "table");
            let renamed = |sql: &str| sql.replace("deliveries", TABLE);
            let mut statements = vec![format!("DROP TABLE IF EXISTS {TABLE}")];
            statements.extend(tables.iter().map(|(_, sql)| renamed(sql)));
            statements.push(format!(
                "INSERT INTO {TABLE} ({}) SELECT {} FROM deliveries WHERE state = 'delivered' ORDER BY id",
                columns.join(", "),
                select_list(&columns)
            ));
            statements.extend(indexes.iter().map(|(_, sql)| renamed(sql)));
            statements.push(format!("ANALYZE {TABLE}"));
            for sql in statements {
                sqlx::query(sqlx::AssertSqlSafe(sql)).execute(&pool).await?;
            }
            Ok(Self::Sqlite(pool))
        }
    }

    /// Leases up to `limit` due rows of `registry`: one statement, rows
    /// another lane holds skipped (PostgreSQL), returned by id.
    pub async fn claim(
        &self,
        registry: RegistryKind,
        owner: &str,
        now_ms: i64,
        lease_until_ms: i64,
        limit: usize,
    ) -> Result<Vec<Claimed>> {
        let mut claimed = match self {
            Self::Postgres(pool) => {
                let sql = format!(
                    "UPDATE {TABLE} SET lease_owner = $1, lease_until = $2
                     WHERE id IN (
                        SELECT id FROM {TABLE}
                        WHERE registry = $3 AND state IN ('pending', 'retrying', 'correcting', 'withdrawing')
                          AND next_attempt_at <= $4
                          AND (lease_until IS NULL OR lease_until < $4)
                        ORDER BY next_attempt_at, id LIMIT $5
                        FOR UPDATE SKIP LOCKED)
                     RETURNING {CLAIMED}"
                );
                let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
                    .bind(owner)
                    .bind(lease_until_ms)
                    .bind(registry.as_str())
                    .bind(now_ms)
                    .bind(limit as i64)
                    .fetch_all(pool)
                    .await?;
                rows.iter()
                    .map(super::rowmap::claimed)
                    .collect::<Result<Vec<_>>>()?
            }
            Self::Sqlite(pool) => {
                let sql = format!(
                    "UPDATE {TABLE} SET lease_owner = ?1, lease_until = ?2
                     WHERE id IN (
                        SELECT id FROM {TABLE}
                        WHERE registry = ?3 AND state IN ('pending', 'retrying', 'correcting', 'withdrawing')
                          AND next_attempt_at <= ?4
                          AND (lease_until IS NULL OR lease_until < ?4)
                        ORDER BY next_attempt_at, id LIMIT ?5)
                     RETURNING {CLAIMED}"
                );
                let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
                    .bind(owner)
                    .bind(lease_until_ms)
                    .bind(registry.as_str())
                    .bind(now_ms)
                    .bind(limit as i64)
                    .fetch_all(pool)
                    .await?;
                rows.iter()
                    .map(super::rowmap::claimed)
                    .collect::<Result<Vec<_>>>()?
            }
        };
        claimed.sort_by_key(|c| c.id);
        Ok(claimed)
    }

    /// Marks `delivered` (id, receipt, credited tenths) in one statement.
    pub async fn mark_delivered(
        &self,
        delivered: &[(i64, String, i64)],
        now_ms: i64,
    ) -> Result<u64> {
        if delivered.is_empty() {
            return Ok(0);
        }
        let n = match self {
            Self::Postgres(pool) => {
                let ids: Vec<i64> = delivered.iter().map(|d| d.0).collect();
                let receipts: Vec<&str> = delivered.iter().map(|d| d.1.as_str()).collect();
                let tenths: Vec<i64> = delivered.iter().map(|d| d.2).collect();
                let sql = format!(
                    "UPDATE {TABLE} AS d SET state = 'delivered', receipt_id = r.receipt,
                        credited_tenths = r.tenths, delivered_at = $4, attempts = d.attempts + 1,
                        lease_owner = NULL, lease_until = NULL, updated_at = $4
                     FROM unnest($1::bigint[], $2::text[], $3::bigint[]) AS r(id, receipt, tenths)
                     WHERE d.id = r.id"
                );
                sqlx::query(sqlx::AssertSqlSafe(sql))
                    .bind(ids)
                    .bind(receipts)
                    .bind(tenths)
                    .bind(now_ms)
                    .execute(pool)
                    .await?
                    .rows_affected()
            }
            Self::Sqlite(pool) => {
                let json = serde_json::to_string(delivered)
                    .map_err(|e| StoreError::Fatal(e.to_string()))?;
                let sql = format!(
                    "UPDATE {TABLE} SET state = 'delivered', receipt_id = r.receipt,
                        credited_tenths = r.tenths, delivered_at = ?2, attempts = attempts + 1,
                        lease_owner = NULL, lease_until = NULL, updated_at = ?2
                     FROM (SELECT value ->> 0 AS id, value ->> 1 AS receipt, value ->> 2 AS tenths
                           FROM json_each(?1)) AS r
                     WHERE {TABLE}.id = r.id"
                );
                sqlx::query(sqlx::AssertSqlSafe(sql))
                    .bind(json)
                    .bind(now_ms)
                    .execute(pool)
                    .await?
                    .rows_affected()
            }
        };
        Ok(n)
    }

    /// Drops the copy and closes the connections.
    pub async fn drop_table(self) -> Result<()> {
        let sql = format!("DROP TABLE IF EXISTS {TABLE}");
        match self {
            Self::Postgres(pool) => {
                sqlx::query(sqlx::AssertSqlSafe(sql)).execute(&pool).await?;
                pool.close().await;
            }
            Self::Sqlite(pool) => {
                sqlx::query(sqlx::AssertSqlSafe(sql)).execute(&pool).await?;
                pool.close().await;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_copy_resets_what_a_delivery_changed_and_keeps_the_rest() {
        let cols: Vec<String> = ["id", "state", "receipt_id", "hours_tenths"]
            .into_iter()
            .map(String::from)
            .collect();
        assert_eq!(
            select_list(&cols),
            "id, 'pending' AS state, NULL AS receipt_id, hours_tenths"
        );
    }
}
