//! Copying between databases (`migrate-data`): pages out, pages in, on PostgreSQL.

use super::*;

#[async_trait]
impl CopyStore for PostgresStore {
    async fn export_page(
        &self,
        table: CopyTable,
        after: &PageKey,
        limit: usize,
    ) -> Result<Vec<serde_json::Value>> {
        let (after_key, order) = table.page_clauses(|i| format!("${i}"), 2);
        let sql = format!(
            "SELECT row_to_json(t)::text FROM {} AS t WHERE {after_key} ORDER BY {order} LIMIT $1",
            table.name(),
        );
        let query = sqlx::query_scalar::<_, String>(sqlx::AssertSqlSafe(sql)).bind(limit as i64);
        let rows = crate::store::copy::bind_page(query, table, after)
            .fetch_all(&self.pool)
            .await?;
        crate::store::copy::parse_page(table, &rows)
    }

    async fn import_page(&self, table: CopyTable, rows: &[serde_json::Value]) -> Result<u64> {
        let cols = table.columns().join(", ");
        let sql = format!(
            "INSERT INTO {t} ({cols}) SELECT {cols} FROM jsonb_populate_recordset(NULL::{t}, $1::jsonb)",
            t = table.name()
        );
        let mut tx = self.pool.begin().await?;
        if table == CopyTable::ChangeSeq {
            sqlx::query("DELETE FROM change_seq")
                .execute(&mut *tx)
                .await?;
        }
        let json = serde_json::Value::Array(rows.to_vec()).to_string();
        let n = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(json)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        tx.commit().await?;
        Ok(n)
    }

    async fn finish_import(&self) -> Result<()> {
        for t in ["completions", "deliveries", "audit", "attempts"] {
            let sql = format!(
                "SELECT setval(pg_get_serial_sequence('{t}', 'id'), GREATEST((SELECT MAX(id) FROM {t}), 1))"
            );
            sqlx::query(sqlx::AssertSqlSafe(sql))
                .execute(&self.pool)
                .await?;
        }
        Ok(())
    }
}
