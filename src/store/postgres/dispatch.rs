//! Dispatch: leasing due records, recording the answers, putting records back in the queue, on PostgreSQL.

use super::*;

#[async_trait]
impl DispatchStore for PostgresStore {
    async fn claim(
        &self,
        registry: RegistryKind,
        owner: &str,
        now_ms: i64,
        lease_until_ms: i64,
        limit: usize,
    ) -> Result<Vec<Claimed>> {
        // Only the lease columns, which no index holds: on PostgreSQL the
        // claim is then a HOT update (no new entry in any index, given room
        // on the page: migration 0011) and on SQLite it rewrites no index.
        // Other claimers skip leased rows by their `lease_until`.
        let rows = sqlx::query(
            "UPDATE deliveries SET lease_owner = $1, lease_until = $2
             WHERE id IN (
                SELECT id FROM deliveries
                WHERE registry = $3 AND state IN ('pending', 'retrying', 'correcting', 'withdrawing')
                  AND next_attempt_at <= $4
                  AND (lease_until IS NULL OR lease_until < $4)
                ORDER BY next_attempt_at, id LIMIT $5
                FOR UPDATE SKIP LOCKED)
             RETURNING id, registry, idempotency_key, attempts, state, revision, receipt_id, national_id, course_code, hours_tenths, format, course_name,
                       completed_on, learning_mode, digital_tenths, classroom_tenths, category_code,
                       enved_account, service_unit_code",
        )
        .bind(owner)
        .bind(lease_until_ms)
        .bind(registry.as_str())
        .bind(now_ms)
        .bind(limit as i64)
        .fetch_all(&self.pool)
        .await?;
        let mut claimed = rows.iter().map(claimed).collect::<Result<Vec<Claimed>>>()?;
        claimed.sort_by_key(|c| c.id);
        Ok(claimed)
    }

    async fn record_outcomes(
        &self,
        owner: &str,
        outcomes: &[Outcome],
        attempts: &[Attempt],
        now_ms: i64,
    ) -> Result<u64> {
        let events: Vec<(i64, Event)> = outcomes
            .iter()
            .map(|o| (o.id(), Event::Answered { owner, outcome: o }))
            .collect();
        let mut tx = self.pool.begin().await?;
        let written = Self::transition_rows(&mut tx, &events, now_ms).await?.rows as u64;
        // What was asked and answered is history even when the lease was lost.
        if !attempts.is_empty() {
            sqlx::query(INSERT_ATTEMPTS)
                .bind(super::rowmap::attempt_rows(attempts))
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(written)
    }

    async fn requeue(&self, delivery_ids: &[i64], now_ms: i64) -> Result<u64> {
        let mut changed = 0;
        for chunk in delivery_ids.chunks(10_000) {
            let events: Vec<(i64, Event)> = chunk.iter().map(|&id| (id, Event::Requeue)).collect();
            let mut tx = self.pool.begin().await?;
            changed += Self::transition_rows(&mut tx, &events, now_ms).await?.rows as u64;
            tx.commit().await?;
        }
        Ok(changed)
    }
}
