//! The store, one trait per concern it serves: what each part of the
//! daemon needs from the database, and nothing else. [`Store`] is all of
//! them, implemented once for both databases, one file per concern
//! (`sql/<concern>.rs`).

use super::*;
use crate::domain::{NationalId, RegistryKind};
use async_trait::async_trait;

/// Learning data in: the intake applies chunks of objects.
#[async_trait]
pub trait IntakeStore: Send + Sync {
    /// Which of the referenced keys already exist, for reference checks.
    async fn known_keys(&self, wanted: &KeyQuery) -> Result<KnownKeys>;

    /// Applies one chunk of intake objects in one transaction, stamping what
    /// really changed with a fresh change sequence. Returns how many rows
    /// changed (identical content changes nothing).
    async fn apply_intake(&self, chunk: &IntakeChunk, now_ms: i64) -> Result<u64>;
}

/// What the scan reads (the change window, the facts) and writes (its decisions).
#[async_trait]
pub trait ScanStore: Send + Sync {
    /// The scan cursor and the highest committed change sequence.
    async fn scan_window(&self) -> Result<(i64, i64)>;

    /// Internal ids of completions touched by changes in `(from, to]`.
    async fn changed_completions(&self, from: i64, to: i64) -> Result<Vec<i64>>;

    /// Internal ids of completions with a delivery flagged to be judged
    /// again ([`DeliveryRow::rescan`]), in id order.
    async fn rescan_completions(&self) -> Result<Vec<i64>>;

    /// Loads the facts of `ids` and their deliveries, lets `plan` decide the
    /// writes, and writes them, all in one write transaction so that
    /// dispatch can not change a row between the read and the write.
    async fn scan_chunk(
        &self,
        ids: &[i64],
        now_ms: i64,
        plan: &mut (dyn FnMut(Vec<ScanRow>) -> Vec<DeliveryWrite> + Send),
    ) -> Result<usize>;

    /// Moves the scan cursor after a complete pass.
    async fn finish_scan(&self, to: i64, now_ms: i64) -> Result<()>;
}

/// Leasing due records, recording what the registry answered, and putting records back in the queue.
#[async_trait]
pub trait DispatchStore: Send + Sync {
    /// Leases up to `limit` due deliveries of `registry` to `owner`. A
    /// leased row is due again only when its lease expires, so other
    /// claimers skip it, and a crashed owner's rows come back by themselves.
    /// Only the lease columns change, which no index holds.
    async fn claim(
        &self,
        registry: RegistryKind,
        owner: &str,
        now_ms: i64,
        lease_until_ms: i64,
        limit: usize,
    ) -> Result<Vec<Claimed>>;

    /// Records the outcome of sent records, and the attempts made, in one
    /// transaction; a row is written only while `owner` still holds its
    /// lease. Returns how many rows were written.
    async fn record_outcomes(
        &self,
        owner: &str,
        outcomes: &[Outcome],
        attempts: &[Attempt],
        now_ms: i64,
    ) -> Result<u64>;

    /// Marks rows `owner` just claimed from leases that ended without an
    /// answer ([`Claimed::taken_over`]): the outcome of what the earlier
    /// holder sent is unknown ([`crate::transition::Event::LeaseExpired`]).
    /// Returns each changed row's id and attempt count, as the state
    /// machine counted them.
    async fn take_over(
        &self,
        owner: &str,
        delivery_ids: &[i64],
        now_ms: i64,
    ) -> Result<Vec<(i64, i64)>>;

    /// Puts deliveries back to `pending`, due now, with a fresh attempt count:
    /// a record fixed by a person, or one a registry turned out not to have.
    /// Ineligible rows and rows leased by a running batch are left alone.
    /// Returns how many rows changed.
    async fn requeue(&self, delivery_ids: &[i64], now_ms: i64) -> Result<u64>;
}

/// What happened to records: the attempt history, reconciliation, the audit trail.
#[async_trait]
pub trait HistoryStore: Send + Sync {
    /// Keeps attempts made outside dispatch (reconcile lookups).
    async fn add_attempts(&self, attempts: &[Attempt]) -> Result<()>;

    /// Every kept attempt of a delivery, oldest first.
    async fn attempts_of(&self, delivery_id: i64) -> Result<Vec<Attempt>>;

    /// Deletes attempts made before `before_ms`; returns how many.
    async fn purge_attempts(&self, before_ms: i64) -> Result<u64>;

    /// What a reconcile looks up among the next `span` deliveries after
    /// `after_id`: rows whose last outcome is unknown (`retrying`), and
    /// `delivered` rows credited since `delivered_since_ms` of which the
    /// sample keeps `sample_per_mille`/1000 (rotated by `salt`), in id
    /// order; and the last id of that span, `None` when no delivery follows
    /// `after_id`. Read by primary key ranges: a plan that stays an index
    /// range scan whatever the table's statistics say (statistics taken
    /// before a drain make a filtered `ORDER BY id LIMIT` a scan of every
    /// delivered row, for every page).
    async fn reconcile_span(
        &self,
        query: &ReconcileQuery,
        after_id: i64,
        span: usize,
    ) -> Result<(Vec<ReconcileItem>, Option<i64>)>;

    /// Applies what a reconcile learnt, one row at a time, each only if the
    /// row is still as the reconcile saw it (same state and revision, not
    /// leased). Returns the repairs that were applied.
    async fn apply_repairs(&self, repairs: &[Repair], now_ms: i64) -> Result<Vec<Repair>>;

    /// Writes an audit entry and returns its id.
    async fn add_audit(&self, entry: &AuditEntry) -> Result<i64>;

    /// Records the progress or end of an audited action.
    async fn update_audit(
        &self,
        id: i64,
        records: i64,
        status: &str,
        result: Option<&str>,
        finished_at: Option<i64>,
    ) -> Result<()>;

    async fn audit_entry(&self, id: i64) -> Result<Option<AuditEntry>>;

    /// Audit entries, newest first, before `before_id`.
    async fn list_audit(&self, before_id: i64, limit: usize) -> Result<Vec<AuditEntry>>;
}

/// Coordination between daemons on one database: named leases and the per-registry request gate.
#[async_trait]
pub trait LeaseStore: Send + Sync {
    /// Takes or renews the lease `name` for `owner` until `now + ttl`;
    /// false while another owner holds an unexpired lease.
    async fn try_lease(&self, name: &str, owner: &str, now_ms: i64, ttl_ms: i64) -> Result<bool>;

    /// Gives the lease up, if `owner` holds it.
    async fn release_lease(&self, name: &str, owner: &str) -> Result<()>;

    /// Reserves the next request slot of `registry`: the returned instant is
    /// the latest of `now`, the next free slot and any hold; the slot after
    /// it is `interval_ms` later. Shared by every daemon on the database, so
    /// a registry's rate limit is a total.
    async fn take_slot(&self, registry: RegistryKind, now_ms: i64, interval_ms: i64)
    -> Result<i64>;

    /// Holds every daemon back from `registry` until `until_ms` (Retry-After).
    async fn hold_registry(&self, registry: RegistryKind, until_ms: i64) -> Result<()>;

    /// Until when `registry` is held back (0 when it is not).
    async fn registry_hold(&self, registry: RegistryKind) -> Result<i64>;
}

/// The queries support and ops read: one learner, lists, counts, the promise.
#[async_trait]
pub trait SupportStore: Send + Sync {
    /// Eligible deliveries counted by registry and SLA state (`on_time`,
    /// `late`, `breached`, `at_risk`, `pending`) at `now`; the rule of
    /// [`crate::sla::sla_state`], to the second.
    async fn sla_counts(
        &self,
        now_ms: i64,
        at_risk_ms: i64,
        filter: SlaFilter,
    ) -> Result<Vec<SlaCount>>;

    /// Undelivered records past their due time, the oldest due first.
    async fn breached(
        &self,
        now_ms: i64,
        filter: SlaFilter,
        limit: usize,
    ) -> Result<Vec<BreachedRecord>>;

    /// Per registry, when the longest-waiting undelivered record became eligible.
    async fn oldest_undelivered(&self) -> Result<Vec<(RegistryKind, i64)>>;

    /// Per registry, how many records were delivered at or after `since_ms`
    /// (the console's "delivered today").
    async fn delivered_since(&self, since_ms: i64) -> Result<Vec<(RegistryKind, i64)>>;

    /// Undelivered records due within `at_risk_ms` of `now` but not yet
    /// past due, the oldest due first: what to push before it breaches.
    async fn at_risk(
        &self,
        now_ms: i64,
        at_risk_ms: i64,
        filter: SlaFilter,
        limit: usize,
    ) -> Result<Vec<BreachedRecord>>;

    /// Internal ids of the completions a resync scope covers (the registry
    /// of the scope narrows deliveries, not completions).
    async fn completions_in_scope(&self, scope: &ResyncScope) -> Result<Vec<i64>>;

    /// The deliveries of these completions, of one registry or all.
    async fn deliveries_of(
        &self,
        completion_ids: &[i64],
        registry: Option<RegistryKind>,
    ) -> Result<Vec<DeliveryItem>>;

    /// One delivery.
    async fn delivery(&self, id: i64) -> Result<Option<DeliveryItem>>;

    /// Deliveries by state and registry, in id order after `after_id`.
    async fn list_deliveries(
        &self,
        state: Option<State>,
        registry: Option<RegistryKind>,
        after_id: i64,
        limit: usize,
    ) -> Result<Vec<DeliveryItem>>;

    /// Every completion of the person and its deliveries, for `status`.
    async fn person_records(&self, national_id: &NationalId) -> Result<Vec<PersonRecord>>;

    /// Deliveries counted by registry, state and reason.
    async fn delivery_counts(&self) -> Result<Vec<StateCount>>;

    /// Rows per table and the change sequence: what an import changed, and
    /// what a copy between databases must preserve.
    async fn table_counts(&self) -> Result<TableCounts>;
}

/// The office calendar the working-day promise is counted on.
#[async_trait]
pub trait CalendarStore: Send + Sync {
    /// Every stored calendar year with its canonical CSV.
    async fn calendar_years(&self) -> Result<Vec<(i32, String)>>;

    /// Stores a year, replacing a stored one.
    async fn put_calendar_year(&self, year: i32, csv: &str, now_ms: i64) -> Result<()>;
}

/// Copying between databases (`migrate-data`).
#[async_trait]
pub trait CopyStore: Send + Sync {
    /// Up to `limit` rows of `table` after `after`, in key order, as JSON
    /// objects keyed by column.
    async fn export_page(
        &self,
        table: CopyTable,
        after: &PageKey,
        limit: usize,
    ) -> Result<Vec<serde_json::Value>>;

    /// Inserts rows exported by [`Store::export_page`], in one transaction.
    async fn import_page(&self, table: CopyTable, rows: &[serde_json::Value]) -> Result<u64>;

    /// After a copy: make generated ids continue after the copied ones.
    async fn finish_import(&self) -> Result<()>;
}
