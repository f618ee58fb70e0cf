//! The attempt history, the reconcile's reads and repairs, the audit trail.

use super::{Backend, Run, SqlStore};
use crate::store::dialect::{Dialect, Sql};
use crate::store::rowmap::ReadRow as _;
use crate::store::rowmap::{attempt, attempt_rows, audit_entry, reconcile_item};
use crate::store::transitions::applied_repairs;
use crate::store::{
    Attempt, AuditEntry, HistoryStore, ReconcileItem, ReconcileQuery, Repair, Result,
};
use crate::transition::Event;
use async_trait::async_trait;

/// The columns of an attempt, as the JSON of [`attempt_rows`] names them.
const ATTEMPT_COLUMNS: [(&str, &str); 8] = [
    ("delivery_id", "bigint"),
    ("at", "bigint"),
    ("revision", "bigint"),
    ("action", "text"),
    ("request_id", "text"),
    ("http_status", "bigint"),
    ("result", "text"),
    ("error", "text"),
];

pub(super) static INSERT_ATTEMPTS: Sql = Sql::built(|d: Dialect| {
    format!(
        "INSERT INTO attempts (delivery_id, at, revision, action, request_id, http_status, result, error)
         SELECT delivery_id, at, revision, action, request_id, http_status, result, error
         FROM {} WHERE true",
        d.json_rows("$1", &ATTEMPT_COLUMNS, "r")
    )
});

static ATTEMPTS_OF: Sql = Sql::text(
    "SELECT delivery_id, at, revision, action, request_id, http_status, result, error
     FROM attempts WHERE delivery_id = $1 ORDER BY id",
);

static PURGE_ATTEMPTS: Sql = Sql::text("DELETE FROM attempts WHERE at < $1");

/// The end of the span after `$1`: an index-only walk of the primary key.
static SPAN_END: Sql = Sql::text(
    "SELECT max(id) FROM (SELECT id FROM deliveries WHERE id > $1 ORDER BY id LIMIT $2) AS s",
);

static RECONCILE_CANDIDATES: Sql = Sql::text(
    "SELECT id, registry, completion_id, national_id, state, revision, idempotency_key, format,
            hours_tenths, credited_tenths, receipt_id
     FROM deliveries
     WHERE id > $5 AND id <= $6
       AND ($1 = '' OR registry = $1) AND idempotency_key IS NOT NULL
       AND (state = 'retrying'
            OR (state = 'delivered' AND delivered_at >= $2 AND (id * 7919 + $3) % 1000 < $4))
     ORDER BY id",
);

static ADD_AUDIT: Sql = Sql::text(
    "INSERT INTO audit (at, actor, action, scope, records, status, result, finished_at)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id",
);

static UPDATE_AUDIT: Sql = Sql::text(
    "UPDATE audit SET records = $2, status = $3, result = $4, finished_at = $5 WHERE id = $1",
);

static AUDIT_ENTRY: Sql = Sql::text(
    "SELECT id, at, actor, action, scope, records, status, result, finished_at
     FROM audit WHERE id = $1",
);

static LIST_AUDIT: Sql = Sql::text(
    "SELECT id, at, actor, action, scope, records, status, result, finished_at FROM audit
     WHERE id < $1 ORDER BY id DESC LIMIT $2",
);

#[async_trait]
impl<B: Backend> HistoryStore for SqlStore<B> {
    async fn add_audit(&self, e: &AuditEntry) -> Result<i64> {
        let mut tx = self.db.begin().await?;
        let row = tx
            .fetch_one(
                Self::sql(&ADD_AUDIT),
                args![
                    e.at,
                    &e.actor,
                    &e.action,
                    &e.scope,
                    e.records,
                    &e.status,
                    &e.result,
                    e.finished_at
                ],
            )
            .await?;
        tx.finish().await?;
        row.int(0)
    }

    async fn update_audit(
        &self,
        id: i64,
        records: i64,
        status: &str,
        result: Option<&str>,
        finished_at: Option<i64>,
    ) -> Result<()> {
        self.write(
            &UPDATE_AUDIT,
            args![id, records, status, result, finished_at],
        )
        .await?;
        Ok(())
    }

    async fn audit_entry(&self, id: i64) -> Result<Option<AuditEntry>> {
        self.read_optional(&AUDIT_ENTRY, args![id], audit_entry)
            .await
    }

    async fn list_audit(&self, before_id: i64, limit: usize) -> Result<Vec<AuditEntry>> {
        self.read(&LIST_AUDIT, args![before_id, limit as i64], audit_entry)
            .await
    }

    async fn add_attempts(&self, attempts: &[Attempt]) -> Result<()> {
        if !attempts.is_empty() {
            self.write(&INSERT_ATTEMPTS, args![&attempt_rows(attempts)])
                .await?;
        }
        Ok(())
    }

    async fn attempts_of(&self, delivery_id: i64) -> Result<Vec<Attempt>> {
        self.read(&ATTEMPTS_OF, args![delivery_id], attempt).await
    }

    async fn purge_attempts(&self, before_ms: i64) -> Result<u64> {
        self.write(&PURGE_ATTEMPTS, args![before_ms]).await
    }

    async fn reconcile_span(
        &self,
        query: &ReconcileQuery,
        after_id: i64,
        span: usize,
    ) -> Result<(Vec<ReconcileItem>, Option<i64>)> {
        let mut pool = self.db.pool();
        let end = pool
            .fetch_one(Self::sql(&SPAN_END), args![after_id, span as i64])
            .await?
            .opt_int(0)?;
        let Some(end) = end else {
            return Ok((Vec::new(), None));
        };
        let rows = pool
            .fetch_all(
                Self::sql(&RECONCILE_CANDIDATES),
                args![
                    query.registry.map_or("", |r| r.as_str()),
                    query.delivered_since_ms,
                    query.salt.rem_euclid(1000),
                    i64::from(query.sample_per_mille),
                    after_id,
                    end
                ],
            )
            .await?;
        let items = rows
            .iter()
            .map(reconcile_item)
            .collect::<Result<Vec<_>>>()?;
        Ok((items, Some(end)))
    }

    async fn apply_repairs(&self, repairs: &[Repair], now_ms: i64) -> Result<Vec<Repair>> {
        let events: Vec<(i64, Event)> = repairs
            .iter()
            .map(|r| (r.id(), Event::Repaired(r)))
            .collect();
        let mut tx = self.db.begin().await?;
        let decided = Self::transition_rows(&mut tx, &events, now_ms).await?;
        tx.finish().await?;
        Ok(applied_repairs(repairs, &decided))
    }
}
