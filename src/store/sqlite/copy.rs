//! Copying between databases (`migrate-data`): pages out, pages in, on SQLite.

use super::*;

#[async_trait]
impl CopyStore for SqliteStore {
    async fn export_page(
        &self,
        table: CopyTable,
        after: &PageKey,
        limit: usize,
    ) -> Result<Vec<serde_json::Value>> {
        let cols = table.columns();
        let object: Vec<String> = cols.iter().map(|c| format!("'{c}', {c}")).collect();
        let (after_key, order) = table.page_clauses(|i| format!("?{i}"), 2);
        let sql = format!(
            "SELECT json_object({}) FROM {} WHERE {after_key} ORDER BY {order} LIMIT ?1",
            object.join(", "),
            table.name(),
        );
        let query = sqlx::query_scalar::<_, String>(sqlx::AssertSqlSafe(sql)).bind(limit as i64);
        let rows = crate::store::copy::bind_page(query, table, after)
            .fetch_all(&self.pool)
            .await?;
        crate::store::copy::parse_page(table, &rows)
    }

    async fn import_page(&self, table: CopyTable, rows: &[serde_json::Value]) -> Result<u64> {
        let cols = table.columns();
        let values: Vec<String> = cols.iter().map(|c| format!("j.value->>'{c}'")).collect();
        let sql = format!(
            "INSERT INTO {} ({}) SELECT {} FROM jsonb_each(?1) AS j",
            table.name(),
            cols.join(", "),
            values.join(", ")
        );
        let mut tx = self.write_tx().await?;
        if table == CopyTable::ChangeSeq {
            // The migration seeded this single row; the copy replaces it.
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
        Ok(()) // INTEGER PRIMARY KEY continues after the largest id by itself
    }
}
