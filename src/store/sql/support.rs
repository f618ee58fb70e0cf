//! The queries support and ops read: one learner, lists, counts, the promise.

use super::{Backend, Run, SqlStore};
use crate::domain::{NationalId, RegistryKind};
use crate::store::dialect::{Dialect, Sql};
use crate::store::rowmap::ReadRow as _;
use crate::store::rowmap::{
    breached_record, delivery_item, parse_registry, person_record, sla_count, state_count,
    table_counts,
};
use crate::store::{
    BreachedRecord, DeliveryItem, PersonRecord, Result, ResyncScope, SlaCount, SlaFilter, State,
    StateCount, SupportStore, TableCounts,
};
use async_trait::async_trait;

static SLA_COUNTS: Sql = Sql::text(
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
);

static BREACHED: Sql = Sql::text(
    "SELECT id, registry, completion_id, course_code, national_id, state, reason, attempts, last_error,
            eligible_since, due_at
     FROM deliveries
     WHERE due_at IS NOT NULL AND state NOT IN ('delivered', 'correcting') AND $1 >= due_at + 1000
       AND eligible_since >= $2 AND ($3 = '' OR registry = $3)
     ORDER BY due_at, id LIMIT $4",
);

/// The `at_risk` branch of `SLA_COUNTS`, listed.
static AT_RISK: Sql = Sql::text(
    "SELECT id, registry, completion_id, course_code, national_id, state, reason, attempts, last_error,
            eligible_since, due_at
     FROM deliveries
     WHERE due_at IS NOT NULL AND state NOT IN ('delivered', 'correcting')
       AND $1 < due_at + 1000 AND due_at - $1 <= $2
       AND eligible_since >= $3 AND ($4 = '' OR registry = $4)
     ORDER BY due_at, id LIMIT $5",
);

static OLDEST_UNDELIVERED: Sql = Sql::text(
    "SELECT registry, MIN(eligible_since) FROM deliveries
     WHERE state IN ('pending', 'retrying', 'rejected', 'failed') AND eligible_since IS NOT NULL
     GROUP BY registry ORDER BY registry",
);

static DELIVERED_SINCE: Sql = Sql::text(
    "SELECT registry, COUNT(*) FROM deliveries WHERE delivered_at >= $1
     GROUP BY registry ORDER BY registry",
);

static COMPLETIONS_IN_SCOPE: Sql = Sql::text(
    "SELECT c.id FROM completions c JOIN accounts a ON a.account_id = c.account_id
     WHERE ($1 = '' OR a.national_id = $1) AND ($2 = '' OR c.course_code = $2)
       AND c.completed_at >= $3 AND c.completed_at < $4
     ORDER BY c.id",
);

/// The columns of a [`DeliveryItem`], from `deliveries d`.
const ITEM_COLUMNS: &str = "d.id, d.completion_id, d.registry, d.national_id, d.course_code, \
    d.state, d.reason, d.hours_tenths, d.attempts, d.last_error, d.eligible_since, d.due_at, \
    d.receipt_id, d.idempotency_key, d.revision";

static DELIVERIES_OF: Sql = Sql::built(|d: Dialect| {
    format!(
        "SELECT {ITEM_COLUMNS}
         FROM completions c JOIN deliveries d ON d.completion_id = c.completion_id
         WHERE {} AND ($2 = '' OR d.registry = $2)
         ORDER BY d.id",
        d.in_list("c.id", "$1")
    )
});

static DELIVERY: Sql =
    Sql::built(|_| format!("SELECT {ITEM_COLUMNS} FROM deliveries d WHERE d.id = $1"));

static LIST_DELIVERIES: Sql = Sql::built(|_| {
    format!(
        "SELECT {ITEM_COLUMNS} FROM deliveries d
         WHERE d.id > $1 AND ($2 = '' OR d.state = $2) AND ($3 = '' OR d.registry = $3)
         ORDER BY d.id LIMIT $4"
    )
});

static PERSON_RECORDS: Sql = Sql::text(
    "SELECT c.completion_id, c.course_code, d.id, d.registry, d.state, d.reason, d.hours_tenths,
            d.eligible_since, d.receipt_id,
            (SELECT COUNT(*) FROM request_records t WHERE t.delivery_id = d.id), d.last_error, d.due_at, d.delivered_at,
            co.name, c.completed_on
     FROM completions c
     JOIN accounts a ON a.account_id = c.account_id
     LEFT JOIN courses co ON co.course_code = c.course_code
     LEFT JOIN deliveries d ON d.completion_id = c.completion_id
     WHERE a.national_id = $1
     ORDER BY c.completed_at, c.completion_id, d.registry",
);

static DELIVERY_COUNTS: Sql = Sql::text(
    "SELECT registry, state, reason, COUNT(*) FROM deliveries
     GROUP BY registry, state, reason ORDER BY 1, 2, 3",
);

static TABLE_COUNTS: Sql = Sql::text(
    "SELECT (SELECT COUNT(*) FROM units), (SELECT COUNT(*) FROM persons), (SELECT COUNT(*) FROM accounts),
            (SELECT COUNT(*) FROM courses), (SELECT COUNT(*) FROM completions),
            (SELECT COUNT(*) FROM deliveries), (SELECT value FROM change_seq WHERE id = 1),
            (SELECT COUNT(*) FROM calendar_years), (SELECT COUNT(*) FROM course_hours)",
);

fn registry_arg(registry: Option<RegistryKind>) -> &'static str {
    registry.map_or("", |r| r.as_str())
}

/// A row of `(registry, count)`.
fn per_registry(r: &impl crate::store::rowmap::ReadRow) -> Result<(RegistryKind, i64)> {
    Ok((parse_registry(&r.text(0)?)?, r.int(1)?))
}

#[async_trait]
impl<B: Backend> SupportStore for SqlStore<B> {
    async fn sla_counts(
        &self,
        now_ms: i64,
        at_risk_ms: i64,
        filter: SlaFilter,
    ) -> Result<Vec<SlaCount>> {
        let since = filter.since_ms.unwrap_or(i64::MIN);
        let registry = registry_arg(filter.registry);
        let args = args![now_ms, at_risk_ms, since, registry];
        self.read(&SLA_COUNTS, args, sla_count).await
    }

    async fn breached(
        &self,
        now_ms: i64,
        filter: SlaFilter,
        limit: usize,
    ) -> Result<Vec<BreachedRecord>> {
        let since = filter.since_ms.unwrap_or(i64::MIN);
        let registry = registry_arg(filter.registry);
        let args = args![now_ms, since, registry, limit as i64];
        self.read(&BREACHED, args, breached_record).await
    }

    async fn oldest_undelivered(&self) -> Result<Vec<(RegistryKind, i64)>> {
        self.read(&OLDEST_UNDELIVERED, &[], per_registry).await
    }

    async fn delivered_since(&self, since_ms: i64) -> Result<Vec<(RegistryKind, i64)>> {
        self.read(&DELIVERED_SINCE, args![since_ms], per_registry)
            .await
    }

    async fn at_risk(
        &self,
        now_ms: i64,
        at_risk_ms: i64,
        filter: SlaFilter,
        limit: usize,
    ) -> Result<Vec<BreachedRecord>> {
        let since = filter.since_ms.unwrap_or(i64::MIN);
        let registry = registry_arg(filter.registry);
        let args = args![now_ms, at_risk_ms, since, registry, limit as i64];
        self.read(&AT_RISK, args, breached_record).await
    }

    async fn completions_in_scope(&self, scope: &ResyncScope) -> Result<Vec<i64>> {
        let args = args![
            scope.national_id.as_ref().map_or("", NationalId::expose),
            scope.course_code.as_deref().unwrap_or(""),
            scope.completed_from_ms.unwrap_or(i64::MIN),
            scope.completed_to_ms.unwrap_or(i64::MAX)
        ];
        self.read(&COMPLETIONS_IN_SCOPE, args, |r| r.int(0)).await
    }

    async fn deliveries_of(
        &self,
        completion_ids: &[i64],
        registry: Option<RegistryKind>,
    ) -> Result<Vec<DeliveryItem>> {
        let mut items = Vec::new();
        for chunk in completion_ids.chunks(10_000) {
            let args = args![chunk, registry_arg(registry)];
            items.extend(self.read(&DELIVERIES_OF, args, delivery_item).await?);
        }
        Ok(items)
    }

    async fn delivery(&self, id: i64) -> Result<Option<DeliveryItem>> {
        self.read_optional(&DELIVERY, args![id], delivery_item)
            .await
    }

    async fn list_deliveries(
        &self,
        state: Option<State>,
        registry: Option<RegistryKind>,
        after_id: i64,
        limit: usize,
    ) -> Result<Vec<DeliveryItem>> {
        let state = state.map_or("", |s| s.as_str());
        let args = args![after_id, state, registry_arg(registry), limit as i64];
        self.read(&LIST_DELIVERIES, args, delivery_item).await
    }

    async fn person_records(&self, national_id: &NationalId) -> Result<Vec<PersonRecord>> {
        self.read(&PERSON_RECORDS, args![national_id.expose()], person_record)
            .await
    }

    async fn delivery_counts(&self) -> Result<Vec<StateCount>> {
        self.read(&DELIVERY_COUNTS, &[], state_count).await
    }

    async fn table_counts(&self) -> Result<TableCounts> {
        let row = self
            .db
            .pool()
            .fetch_one(Self::sql(&TABLE_COUNTS), &[])
            .await?;
        table_counts(&row)
    }
}
