//! A reconcile's walk over the deliveries by id spans (sqlite).

use super::*;

#[async_trait]
impl ReconcileStore for SqliteStore {
    async fn reconcile_span(
        &self,
        query: &ReconcileQuery,
        after_id: i64,
        span: usize,
    ) -> Result<(Vec<ReconcileItem>, Option<i64>)> {
        // The span's end first: an index-only walk of the primary key.
        let end: Option<i64> = sqlx::query_scalar(
            "SELECT max(id) FROM (SELECT id FROM deliveries WHERE id > ?1 ORDER BY id LIMIT ?2) AS s",
        )
        .bind(after_id)
        .bind(span as i64)
        .fetch_one(&self.pool)
        .await?;
        let Some(end) = end else {
            return Ok((Vec::new(), None));
        };
        let rows = sqlx::query(
            "SELECT id, registry, completion_id, national_id, state, revision, idempotency_key, format,
                    hours_tenths, credited_tenths, receipt_id
             FROM deliveries
             WHERE id > ?5 AND id <= ?6
               AND (?1 = '' OR registry = ?1) AND idempotency_key IS NOT NULL
               AND (state = 'retrying'
                    OR (state = 'delivered' AND delivered_at >= ?2 AND (id * 7919 + ?3) % 1000 < ?4))
             ORDER BY id",
        )
        .bind(query.registry.map_or("", |r| r.as_str()))
        .bind(query.delivered_since_ms)
        .bind(query.salt.rem_euclid(1000))
        .bind(i64::from(query.sample_per_mille))
        .bind(after_id)
        .bind(end)
        .fetch_all(&self.pool)
        .await?;
        let items = rows
            .iter()
            .map(super::rowmap::reconcile_item)
            .collect::<Result<Vec<_>>>()?;
        Ok((items, Some(end)))
    }
}
