//! The attempt history, the reconcile's reads and repairs, the audit trail.

use super::{Backend, Run, SqlStore};
use crate::store::dialect::{Dialect, Sql};
use crate::store::request_log::{self, RequestKey};
use crate::store::rowmap::ByName as _;
use crate::store::rowmap::ReadRow as _;
use crate::store::rowmap::{attempt, audit_entry, reconcile_item};
use crate::store::transitions::applied_repairs;
use crate::store::{
    Attempt, AuditEntry, HistoryStore, ReconcileItem, ReconcileQuery, Repair, Result, StoreError,
};
use crate::transition::Event;
use async_trait::async_trait;
use std::collections::HashMap;

/// The columns of a [`RequestRow`](crate::store::request_log::RequestRow).
const REQUEST_COLUMNS: [(&str, &str); 5] = [
    ("at", "bigint"),
    ("action", "text"),
    ("request_id", "text"),
    ("http_status", "bigint"),
    ("error", "text"),
];

/// The columns of a record of the history, as [`request_log::records`] names them.
const RECORD_COLUMNS: [(&str, &str); 5] = [
    ("delivery_id", "bigint"),
    ("request", "bigint"),
    ("revision", "bigint"),
    ("result", "text"),
    ("error", "text"),
];

static INSERT_REQUESTS: Sql = Sql::built(|d: Dialect| {
    format!(
        "INSERT INTO requests (at, action, request_id, http_status, error)
         SELECT at, action, request_id, http_status, error FROM {} WHERE true
         RETURNING id, at, action, request_id, http_status",
        d.json_rows("$1", &REQUEST_COLUMNS, "r")
    )
});

/// A plain insert: [`request_log::records`] names a delivery once per
/// request, and each request row is new. (`ON CONFLICT` would make
/// PostgreSQL insert speculatively, a cost on every record.)
static INSERT_RECORDS: Sql = Sql::built(|d: Dialect| {
    format!(
        "INSERT INTO request_records (delivery_id, request, revision, result, error)
         SELECT delivery_id, request, revision, result, error FROM {} WHERE true",
        d.json_rows("$1", &RECORD_COLUMNS, "r")
    )
});

static ATTEMPTS_OF: Sql = Sql::text(
    "SELECT r.delivery_id, q.at, r.revision, q.action, q.request_id, q.http_status, r.result,
            COALESCE(r.error, q.error)
     FROM request_records r JOIN requests q ON q.id = r.request
     WHERE r.delivery_id = $1 ORDER BY q.id",
);

static PURGE_RECORDS: Sql = Sql::text(
    "DELETE FROM request_records WHERE request IN (SELECT id FROM requests WHERE at < $1)",
);

static PURGE_REQUESTS: Sql = Sql::text("DELETE FROM requests WHERE at < $1");

impl<B: Backend> SqlStore<B> {
    /// Writes `attempts` to the history in `tx`: their requests, then each
    /// record under its request's id.
    pub(super) async fn insert_history(tx: &mut B::Tx, attempts: &[Attempt]) -> Result<()> {
        if attempts.is_empty() {
            return Ok(());
        }
        let split = request_log::split(attempts);
        let json = serde_json::to_string(&split.requests).expect("history rows serialize");
        let stored = tx
            .fetch_all(Self::sql(&INSERT_REQUESTS), args![&json])
            .await?;
        // RETURNING keeps no order: each stored row names its request.
        let written: HashMap<RequestKey, usize> = split
            .requests
            .iter()
            .enumerate()
            .map(|(i, r)| (r.key(), i))
            .collect();
        let mut ids = vec![None; split.requests.len()];
        for row in &stored {
            let request_id = row.text_at("request_id")?;
            let action = row.text_at("action")?;
            let status = row.opt_int_at("http_status")?.map(|s| s as u16);
            let key = (
                request_id.as_str(),
                row.int_at("at")?,
                action.as_str(),
                status,
            );
            let Some(&i) = written.get(&key) else {
                return Err(StoreError::Fatal(
                    "the history stored a request it was not given".into(),
                ));
            };
            ids[i] = Some(row.int_at("id")?);
        }
        let records = request_log::records(attempts, &split, &ids)?;
        tx.execute(Self::sql(&INSERT_RECORDS), args![&records])
            .await?;
        Ok(())
    }
}

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
        if attempts.is_empty() {
            return Ok(());
        }
        let mut tx = self.db.begin().await?;
        Self::insert_history(&mut tx, attempts).await?;
        tx.finish().await
    }

    async fn attempts_of(&self, delivery_id: i64) -> Result<Vec<Attempt>> {
        self.read(&ATTEMPTS_OF, args![delivery_id], attempt).await
    }

    async fn purge_attempts(&self, before_ms: i64) -> Result<u64> {
        let mut tx = self.db.begin().await?;
        let records = tx
            .execute(Self::sql(&PURGE_RECORDS), args![before_ms])
            .await?;
        tx.execute(Self::sql(&PURGE_REQUESTS), args![before_ms])
            .await?;
        tx.finish().await?;
        Ok(records)
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
