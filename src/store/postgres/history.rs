//! The attempt history and the reconcile's reads and repairs (postgres).

use super::*;

pub(super) const INSERT_ATTEMPTS: &str = "
INSERT INTO attempts (delivery_id, at, revision, action, request_id, http_status, result, error)
SELECT delivery_id, at, revision, action, request_id, http_status, result, error
FROM jsonb_to_recordset($1::jsonb) AS r(delivery_id bigint, at bigint, revision bigint, action text,
    request_id text, http_status bigint, result text, error text)";

impl PostgresStore {
    pub(super) async fn add_attempts_rows(&self, attempts: &[Attempt]) -> Result<()> {
        if attempts.is_empty() {
            return Ok(());
        }
        let mut tx = self.pool.begin().await?;
        sqlx::query(INSERT_ATTEMPTS)
            .bind(super::rowmap::attempt_rows(attempts))
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    pub(super) async fn attempts_of_rows(&self, delivery_id: i64) -> Result<Vec<Attempt>> {
        let rows = sqlx::query(
            "SELECT delivery_id, at, revision, action, request_id, http_status, result, error
             FROM attempts WHERE delivery_id = $1 ORDER BY id",
        )
        .bind(delivery_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(super::rowmap::attempt).collect()
    }

    pub(super) async fn purge_attempts_rows(&self, before_ms: i64) -> Result<u64> {
        let mut tx = self.pool.begin().await?;
        let n = sqlx::query("DELETE FROM attempts WHERE at < $1")
            .bind(before_ms)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        tx.commit().await?;
        Ok(n)
    }

    pub(super) async fn reconcile_candidates_rows(
        &self,
        query: &ReconcileQuery,
        after_id: i64,
        limit: usize,
    ) -> Result<Vec<ReconcileItem>> {
        let rows = sqlx::query(
            "SELECT id, registry, completion_id, national_id, state, revision, idempotency_key, format,
                    hours_tenths, credited_tenths, receipt_id
             FROM deliveries
             WHERE ($1 = '' OR registry = $1) AND idempotency_key IS NOT NULL
               AND (state = 'retrying'
                    OR (state = 'delivered' AND delivered_at >= $2 AND (id * 7919 + $3) % 1000 < $4))
               AND id > $5
             ORDER BY id LIMIT $6",
        )
        .bind(query.registry.map_or("", |r| r.as_str()))
        .bind(query.delivered_since_ms)
        .bind(query.salt.rem_euclid(1000))
        .bind(i64::from(query.sample_per_mille))
        .bind(after_id)
        .bind(limit as i64)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(super::rowmap::reconcile_item).collect()
    }

    pub(super) async fn apply_repairs_rows(
        &self,
        repairs: &[Repair],
        now_ms: i64,
    ) -> Result<Vec<Repair>> {
        let events: Vec<(i64, crate::transition::Event)> = repairs
            .iter()
            .map(|r| (r.id(), crate::transition::Event::Repaired(r)))
            .collect();
        let mut tx = self.pool.begin().await?;
        let decided = Self::transition_rows(&mut tx, &events, now_ms).await?;
        tx.commit().await?;
        Ok(crate::store::transitions::applied_repairs(
            repairs, &decided,
        ))
    }
}
