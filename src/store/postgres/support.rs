//! The queries support and ops read: one learner, lists, counts, the promise, on PostgreSQL.

use super::*;

#[async_trait]
impl SupportStore for PostgresStore {
    async fn sla_counts(
        &self,
        now_ms: i64,
        at_risk_ms: i64,
        filter: SlaFilter,
    ) -> Result<Vec<SlaCount>> {
        let rows = sqlx::query(
            "SELECT registry,
                    CASE WHEN state IN ('delivered', 'correcting') AND delivered_at < due_at + 1000 THEN 'on_time'
                         WHEN state IN ('delivered', 'correcting') THEN 'late'
                         WHEN $1 >= due_at + 1000 THEN 'breached'
                         WHEN due_at - $1 <= $2 THEN 'at_risk'
                         ELSE 'pending' END AS sla,
                    COUNT(*)
             FROM deliveries
             WHERE due_at IS NOT NULL AND eligible_since >= $3 AND ($4 = '' OR registry = $4)
             GROUP BY 1, 2 ORDER BY 1, 2",
        )
        .bind(now_ms)
        .bind(at_risk_ms)
        .bind(filter.since_ms.unwrap_or(i64::MIN))
        .bind(filter.registry.map_or("", |r| r.as_str()))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(sla_count).collect()
    }

    async fn breached(
        &self,
        now_ms: i64,
        filter: SlaFilter,
        limit: usize,
    ) -> Result<Vec<BreachedRecord>> {
        let rows = sqlx::query(
            "SELECT id, registry, completion_id, course_code, national_id, state, reason, attempts, last_error,
                    eligible_since, due_at
             FROM deliveries
             WHERE due_at IS NOT NULL AND state NOT IN ('delivered', 'correcting') AND $1 >= due_at + 1000
               AND eligible_since >= $2 AND ($3 = '' OR registry = $3)
             ORDER BY due_at, id LIMIT $4",
        )
        .bind(now_ms)
        .bind(filter.since_ms.unwrap_or(i64::MIN))
        .bind(filter.registry.map_or("", |r| r.as_str()))
        .bind(limit as i64)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(breached_record).collect()
    }

    async fn oldest_undelivered(&self) -> Result<Vec<(RegistryKind, i64)>> {
        let rows = sqlx::query(
            "SELECT registry, MIN(eligible_since) FROM deliveries
             WHERE state IN ('pending', 'retrying', 'rejected', 'failed') AND eligible_since IS NOT NULL
             GROUP BY registry ORDER BY registry",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| Ok((parse_registry(&r.text(0)?)?, r.int(1)?)))
            .collect()
    }

    async fn delivered_since(&self, since_ms: i64) -> Result<Vec<(RegistryKind, i64)>> {
        let rows = sqlx::query(
            "SELECT registry, COUNT(*) FROM deliveries
             WHERE delivered_at >= $1
             GROUP BY registry ORDER BY registry",
        )
        .bind(since_ms)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| Ok((parse_registry(&r.text(0)?)?, r.int(1)?)))
            .collect()
    }

    async fn at_risk(
        &self,
        now_ms: i64,
        at_risk_ms: i64,
        filter: SlaFilter,
        limit: usize,
    ) -> Result<Vec<BreachedRecord>> {
        // The `at_risk` branch of `sla_counts`, listed.
        let rows = sqlx::query(
            "SELECT id, registry, completion_id, course_code, national_id, state, reason, attempts, last_error,
                    eligible_since, due_at
             FROM deliveries
             WHERE due_at IS NOT NULL AND state NOT IN ('delivered', 'correcting')
               AND $1 < due_at + 1000 AND due_at - $1 <= $2
               AND eligible_since >= $3 AND ($4 = '' OR registry = $4)
             ORDER BY due_at, id LIMIT $5",
        )
        .bind(now_ms)
        .bind(at_risk_ms)
        .bind(filter.since_ms.unwrap_or(i64::MIN))
        .bind(filter.registry.map_or("", |r| r.as_str()))
        .bind(limit as i64)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(breached_record).collect()
    }

    async fn completions_in_scope(&self, scope: &ResyncScope) -> Result<Vec<i64>> {
        Ok(sqlx::query_scalar(
            "SELECT c.id FROM completions c JOIN accounts a ON a.account_id = c.account_id
             WHERE ($1 = '' OR a.national_id = $1) AND ($2 = '' OR c.course_code = $2)
               AND c.completed_at >= $3 AND c.completed_at < $4
             ORDER BY c.id",
        )
        .bind(scope.national_id.as_ref().map_or("", NationalId::expose))
        .bind(scope.course_code.clone().unwrap_or_default())
        .bind(scope.completed_from_ms.unwrap_or(i64::MIN))
        .bind(scope.completed_to_ms.unwrap_or(i64::MAX))
        .fetch_all(&self.pool)
        .await?)
    }

    async fn deliveries_of(
        &self,
        completion_ids: &[i64],
        registry: Option<RegistryKind>,
    ) -> Result<Vec<DeliveryItem>> {
        let mut items = Vec::new();
        for chunk in completion_ids.chunks(10_000) {
            let rows = sqlx::query(
                "SELECT d.id, d.completion_id, d.registry, d.national_id, d.course_code, d.state, d.reason, d.hours_tenths, d.attempts, d.last_error, d.eligible_since, d.due_at, d.receipt_id, d.idempotency_key, d.revision
                 FROM completions c JOIN deliveries d ON d.completion_id = c.completion_id
                 WHERE c.id = ANY($1) AND ($2 = '' OR d.registry = $2)
                 ORDER BY d.id",
            )
            .bind(chunk)
            .bind(registry.map_or("", |r| r.as_str()))
            .fetch_all(&self.pool)
            .await?;
            for r in &rows {
                items.push(delivery_item(r)?);
            }
        }
        Ok(items)
    }

    async fn delivery(&self, id: i64) -> Result<Option<DeliveryItem>> {
        let row = sqlx::query("SELECT d.id, d.completion_id, d.registry, d.national_id, d.course_code, d.state, d.reason, d.hours_tenths, d.attempts, d.last_error, d.eligible_since, d.due_at, d.receipt_id, d.idempotency_key, d.revision FROM deliveries d WHERE d.id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(delivery_item).transpose()
    }

    async fn list_deliveries(
        &self,
        state: Option<State>,
        registry: Option<RegistryKind>,
        after_id: i64,
        limit: usize,
    ) -> Result<Vec<DeliveryItem>> {
        let rows = sqlx::query(
            "SELECT d.id, d.completion_id, d.registry, d.national_id, d.course_code, d.state, d.reason, d.hours_tenths, d.attempts, d.last_error, d.eligible_since, d.due_at, d.receipt_id, d.idempotency_key, d.revision FROM deliveries d
             WHERE d.id > $1 AND ($2 = '' OR d.state = $2) AND ($3 = '' OR d.registry = $3)
             ORDER BY d.id LIMIT $4",
        )
        .bind(after_id)
        .bind(state.map_or("", |s| s.as_str()))
        .bind(registry.map_or("", |r| r.as_str()))
        .bind(limit as i64)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(delivery_item).collect()
    }

    async fn person_records(&self, national_id: &NationalId) -> Result<Vec<PersonRecord>> {
        let rows = sqlx::query(
            "SELECT c.completion_id, c.course_code, d.id, d.registry, d.state, d.reason, d.hours_tenths,
                    d.eligible_since, d.receipt_id,
                    (SELECT COUNT(*) FROM attempts t WHERE t.delivery_id = d.id), d.last_error, d.due_at, d.delivered_at,
                    co.name, c.completed_on
             FROM completions c
             JOIN accounts a ON a.account_id = c.account_id
             LEFT JOIN courses co ON co.course_code = c.course_code
             LEFT JOIN deliveries d ON d.completion_id = c.completion_id
             WHERE a.national_id = $1
             ORDER BY c.completed_at, c.completion_id, d.registry",
        )
        .bind(national_id.expose())
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(person_record).collect()
    }

    async fn delivery_counts(&self) -> Result<Vec<StateCount>> {
        let rows = sqlx::query(
            "SELECT registry, state, reason, COUNT(*) FROM deliveries GROUP BY registry, state, reason ORDER BY 1, 2, 3",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(state_count).collect()
    }

    async fn table_counts(&self) -> Result<TableCounts> {
        let r = sqlx::query(
            "SELECT (SELECT COUNT(*) FROM units), (SELECT COUNT(*) FROM persons), (SELECT COUNT(*) FROM accounts),
                    (SELECT COUNT(*) FROM courses), (SELECT COUNT(*) FROM completions),
                    (SELECT COUNT(*) FROM deliveries), (SELECT value FROM change_seq WHERE id = 1),
                    (SELECT COUNT(*) FROM calendar_years), (SELECT COUNT(*) FROM course_hours)",
        )
        .fetch_one(&self.pool)
        .await?;
        table_counts(&r)
    }
}
