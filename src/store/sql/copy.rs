//! Copying between databases (`migrate-data`): pages out, pages in.

use super::{Backend, Run, SqlStore};
use crate::store::copy::{CopyTable, PageKey, page_args, parse_page};
use crate::store::rowmap::ReadRow as _;
use crate::store::{CopyStore, Result};
use async_trait::async_trait;

/// The tables whose ids the copy carries over.
const ID_TABLES: [&str; 4] = ["completions", "deliveries", "audit", "requests"];

#[async_trait]
impl<B: Backend> CopyStore for SqlStore<B> {
    async fn export_page(
        &self,
        table: CopyTable,
        after: &PageKey,
        limit: usize,
    ) -> Result<Vec<serde_json::Value>> {
        let d = B::DIALECT;
        let (after_key, order) = table.page_clauses(|i| format!("${i}"), 2);
        let sql = format!(
            "SELECT {} FROM {} WHERE {after_key} ORDER BY {order} LIMIT $1",
            d.json_object(table.columns()),
            table.name(),
        );
        let rows = self
            .db
            .pool()
            .fetch_all(d.placeholders(&sql), &page_args(limit, table, after))
            .await?;
        let rows = rows.iter().map(|r| r.text(0)).collect::<Result<Vec<_>>>()?;
        parse_page(table, &rows)
    }

    async fn import_page(&self, table: CopyTable, rows: &[serde_json::Value]) -> Result<u64> {
        let d = B::DIALECT;
        let cols = table.columns();
        let sql = format!(
            "INSERT INTO {t} ({c}) SELECT {c} FROM {rows} WHERE true",
            t = table.name(),
            c = cols.join(", "),
            rows = d.json_table_rows("$1", table.name(), cols)
        );
        let mut tx = self.db.begin().await?;
        if table == CopyTable::ChangeSeq {
            // The migration seeded this single row; the copy replaces it.
            tx.execute("DELETE FROM change_seq", &[]).await?;
        }
        let json = serde_json::Value::Array(rows.to_vec()).to_string();
        let n = tx.execute(d.placeholders(&sql), args![&json]).await?;
        tx.finish().await?;
        Ok(n)
    }

    async fn finish_import(&self) -> Result<()> {
        for sql in B::DIALECT.after_copy(&ID_TABLES) {
            self.db.pool().execute(sql, &[]).await?;
        }
        Ok(())
    }
}
