//! The attempt history and the reconcile's reads and repairs, and the SQL
//! of the outcomes a correction or withdrawal records (sqlite).

use super::*;

/// A correction landed: the registry credits the sent revision's hours.
pub(super) const RECORD_CORRECTED: &str = "
UPDATE deliveries SET
    state = CASE WHEN deliveries.state = 'correcting' AND deliveries.revision = (j.value->>'rev') THEN 'delivered' ELSE deliveries.state END,
    next_attempt_at = CASE WHEN deliveries.state = 'correcting' AND deliveries.revision = (j.value->>'rev') THEN NULL
                           ELSE deliveries.next_attempt_at END,
    credited_tenths = j.value->>'credited', last_error = NULL, attempts = deliveries.attempts + 1,
    lease_owner = NULL, lease_until = NULL, updated_at = ?2
FROM jsonb_each(?1) AS j WHERE deliveries.id = j.value->>'id' AND deliveries.lease_owner = ?3";

/// The registry no longer holds the record. A row that carries a record
/// again (reinstated meanwhile) sends it as a new one.
pub(super) const RECORD_WITHDRAWN: &str = "
UPDATE deliveries SET
    state = CASE WHEN deliveries.payload IS NULL THEN 'withdrawn' ELSE 'pending' END,
    next_attempt_at = CASE WHEN deliveries.payload IS NULL THEN NULL ELSE ?2 END,
    receipt_id = NULL, credited_tenths = NULL, delivered_at = NULL, last_error = NULL, attempts = 0,
    lease_owner = NULL, lease_until = NULL, updated_at = ?2
FROM jsonb_each(?1) AS j WHERE deliveries.id = j.value->>'id' AND deliveries.lease_owner = ?3";

/// A correction named a receipt the registry does not know (it lost the
/// record): the new revision goes out as a new record.
pub(super) const RECORD_LOST: &str = "
UPDATE deliveries SET state = 'pending', next_attempt_at = ?2,
    receipt_id = NULL, credited_tenths = NULL, delivered_at = NULL, last_error = NULL, attempts = 0,
    lease_owner = NULL, lease_until = NULL, updated_at = ?2
FROM jsonb_each(?1) AS j
WHERE deliveries.id = j.value->>'id' AND deliveries.lease_owner = ?3 AND deliveries.state = 'correcting'";

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
            "SELECT id, registry, completion_id, national_id, state, revision, idempotency_key, payload,
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
        let mut applied = Vec::new();
        let mut tx = self.write_tx().await?;
        for repair in repairs {
            let q = match repair {
                Repair::Requeued { id, revision } => sqlx::query(
                    "UPDATE deliveries SET state = 'pending', next_attempt_at = ?1, attempts = 0, last_error = NULL,
                            receipt_id = NULL, credited_tenths = NULL, delivered_at = NULL, updated_at = ?1
                     WHERE id = ?2 AND revision = ?3 AND state IN ('delivered', 'retrying')
                       AND (lease_until IS NULL OR lease_until < ?1)",
                )
                .bind(now_ms)
                .bind(id)
                .bind(revision),
                Repair::Found {
                    id,
                    revision,
                    receipt_id,
                    credited_tenths,
                } => sqlx::query(
                    "UPDATE deliveries SET state = 'delivered', next_attempt_at = NULL, last_error = NULL,
                            receipt_id = ?4, credited_tenths = ?5, delivered_at = ?1, updated_at = ?1
                     WHERE id = ?2 AND revision = ?3 AND state = 'retrying'
                       AND (lease_until IS NULL OR lease_until < ?1)",
                )
                .bind(now_ms)
                .bind(id)
                .bind(revision)
                .bind(receipt_id)
                .bind(i64::from(*credited_tenths)),
                Repair::Corrected {
                    id,
                    revision,
                    new_revision,
                    idempotency_key,
                    payload,
                    credited_tenths,
                } => sqlx::query(
                    "UPDATE deliveries SET state = 'correcting', next_attempt_at = ?1, attempts = 0, last_error = NULL,
                            revision = ?4, idempotency_key = ?5, payload = ?6, credited_tenths = ?7,
                            updated_at = ?1
                     WHERE id = ?2 AND revision = ?3 AND state = 'delivered'
                       AND (lease_until IS NULL OR lease_until < ?1)",
                )
                .bind(now_ms)
                .bind(id)
                .bind(revision)
                .bind(new_revision)
                .bind(idempotency_key)
                .bind(payload)
                .bind(i64::from(*credited_tenths)),
            };
            if q.execute(&mut *tx).await?.rows_affected() == 1 {
                applied.push(repair.clone());
            }
        }
        tx.commit().await?;
        Ok(applied)
    }
}
