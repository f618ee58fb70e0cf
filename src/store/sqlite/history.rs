//! The attempt history and the reconcile's reads and repairs (sqlite).

use super::*;

pub(super) const INSERT_ATTEMPTS: &str = "
INSERT INTO attempts (delivery_id, at, revision, action, request_id, http_status, result, error)
SELECT j.value->>'delivery_id', j.value->>'at', j.value->>'revision', j.value->>'action',
       j.value->>'request_id', j.value->>'http_status', j.value->>'result', j.value->>'error'
FROM jsonb_each(?1) AS j WHERE true";

impl SqliteStore {
    pub(super) async fn add_attempts_rows(&self, attempts: &[Attempt]) -> Result<()> {
        if attempts.is_empty() {
            return Ok(());
        }
        let mut tx = self.write_tx().await?;
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
             FROM attempts WHERE delivery_id = ?1 ORDER BY id",
        )
        .bind(delivery_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(super::rowmap::attempt).collect()
    }

    pub(super) async fn purge_attempts_rows(&self, before_ms: i64) -> Result<u64> {
        let mut tx = self.write_tx().await?;
        let n = sqlx::query("DELETE FROM attempts WHERE at < ?1")
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
             WHERE (?1 = '' OR registry = ?1) AND idempotency_key IS NOT NULL
               AND (state = 'retrying'
                    OR (state = 'delivered' AND delivered_at >= ?2 AND (id * 7919 + ?3) % 1000 < ?4))
               AND id > ?5
             ORDER BY id LIMIT ?6",
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
        let mut tx = self.write_tx().await?;
        let decided = Self::transition_rows(&mut tx, &events, now_ms).await?;
        tx.commit().await?;
        Ok(crate::store::transitions::applied_repairs(
            repairs, &decided,
        ))
    }
}

#[async_trait]
impl HistoryStore for SqliteStore {
    async fn add_audit(&self, e: &AuditEntry) -> Result<i64> {
        let mut tx = self.write_tx().await?;
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO audit (at, actor, action, scope, records, status, result, finished_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) RETURNING id",
        )
        .bind(e.at)
        .bind(&e.actor)
        .bind(&e.action)
        .bind(&e.scope)
        .bind(e.records)
        .bind(&e.status)
        .bind(&e.result)
        .bind(e.finished_at)
        .fetch_one(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(id)
    }

    async fn update_audit(
        &self,
        id: i64,
        records: i64,
        status: &str,
        result: Option<&str>,
        finished_at: Option<i64>,
    ) -> Result<()> {
        let mut tx = self.write_tx().await?;
        sqlx::query("UPDATE audit SET records = ?2, status = ?3, result = ?4, finished_at = ?5 WHERE id = ?1")
            .bind(id)
            .bind(records)
            .bind(status)
            .bind(result)
            .bind(finished_at)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn audit_entry(&self, id: i64) -> Result<Option<AuditEntry>> {
        let row = sqlx::query("SELECT id, at, actor, action, scope, records, status, result, finished_at FROM audit WHERE id = ?1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(audit_entry).transpose()
    }

    async fn list_audit(&self, before_id: i64, limit: usize) -> Result<Vec<AuditEntry>> {
        let rows = sqlx::query(
            "SELECT id, at, actor, action, scope, records, status, result, finished_at FROM audit
             WHERE id < ?1 ORDER BY id DESC LIMIT ?2",
        )
        .bind(before_id)
        .bind(limit as i64)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(audit_entry).collect()
    }

    async fn add_attempts(&self, attempts: &[Attempt]) -> Result<()> {
        self.add_attempts_rows(attempts).await
    }

    async fn attempts_of(&self, delivery_id: i64) -> Result<Vec<Attempt>> {
        self.attempts_of_rows(delivery_id).await
    }

    async fn purge_attempts(&self, before_ms: i64) -> Result<u64> {
        self.purge_attempts_rows(before_ms).await
    }

    async fn reconcile_candidates(
        &self,
        query: &ReconcileQuery,
        after_id: i64,
        limit: usize,
    ) -> Result<Vec<ReconcileItem>> {
        self.reconcile_candidates_rows(query, after_id, limit).await
    }

    async fn apply_repairs(&self, repairs: &[Repair], now_ms: i64) -> Result<Vec<Repair>> {
        self.apply_repairs_rows(repairs, now_ms).await
    }
}
