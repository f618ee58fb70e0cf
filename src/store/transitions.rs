//! Applying the delivery state machine ([`crate::transition`]), the part
//! both backends share: the rows read in the write transaction and the
//! events for them go in; what to write comes out, each write guarded by
//! the (revision, lease owner) the row was read with. The backends only
//! read the rows and run the one named write statement.

use super::{DeliveryRow, Record, Result, State, rowmap::ByName};
use crate::transition::{Event, transition};
use std::collections::HashMap;

/// The columns of a [`DeliveryRow`] whose record is [`Record::Unread`]
/// (`format` says whether there is one); with its facts, also
/// [`super::record_columns::RECORD_COLUMNS`].
pub(super) const ROW_COLUMNS: &str = "id, registry, state, reason, revision, hours_tenths, \
    credited_tenths, receipt_id, delivered_at, attempts, next_attempt_at, last_error, \
    lease_owner, lease_until, idempotency_key, eligible_since, rescan, format";

/// One row's new values, with the compare-and-set guard. The key is sent
/// only when it changed (a reconcile correction's new revision). The
/// record's facts are not among them: the state machine never changes
/// what a revision says, only the scan does.
#[derive(Debug, serde::Serialize)]
pub(super) struct RowWrite {
    id: i64,
    state: State,
    reason: Option<String>,
    revision: i64,
    hours_tenths: Option<u32>,
    credited_tenths: Option<u32>,
    receipt_id: Option<String>,
    delivered_at: Option<i64>,
    attempts: i64,
    next_attempt_at: Option<i64>,
    last_error: Option<String>,
    lease_owner: Option<String>,
    lease_until: Option<i64>,
    new_key: Option<String>,
    expected_revision: i64,
    expected_owner: Option<String>,
}

impl RowWrite {
    fn new(read: &DeliveryRow, row: DeliveryRow) -> Self {
        Self {
            new_key: row
                .idempotency_key
                .filter(|k| read.idempotency_key.as_ref() != Some(k)),
            id: row.id,
            state: row.state,
            reason: row.reason,
            revision: row.revision,
            hours_tenths: row.hours_tenths,
            credited_tenths: row.credited_tenths,
            receipt_id: row.receipt_id,
            delivered_at: row.delivered_at,
            attempts: row.attempts,
            next_attempt_at: row.next_attempt_at,
            last_error: row.last_error,
            lease_owner: row.lease_owner,
            lease_until: row.lease_until,
            expected_revision: read.revision,
            expected_owner: read.lease_owner.clone(),
        }
    }
}

/// What a batch of events does to the rows read for it.
pub(super) struct Decided {
    /// The writes, one per row that changed, as one JSON array.
    pub json: String,
    pub rows: usize,
    /// Each written row's id and attempt count.
    pub attempts: Vec<(i64, i64)>,
    /// Per event, whether it applied.
    pub applied: Vec<bool>,
}

/// Runs each event, in order, against the row it names (several events
/// for one row compose); a row that is not among `rows` ignores its events.
pub(super) fn decide(rows: Vec<DeliveryRow>, events: &[(i64, Event)], now_ms: i64) -> Decided {
    let mut current: HashMap<i64, (DeliveryRow, DeliveryRow)> =
        rows.into_iter().map(|r| (r.id, (r.clone(), r))).collect();
    let mut applied = vec![false; events.len()];
    for (i, (id, event)) in events.iter().enumerate() {
        if let Some((_, row)) = current.get_mut(id)
            && let Some(next) = transition(Some(row), *event, now_ms)
        {
            *row = next;
            applied[i] = true;
        }
    }
    let mut writes: Vec<RowWrite> = current
        .into_values()
        .filter(|(read, row)| read != row)
        .map(|(read, row)| RowWrite::new(&read, row))
        .collect();
    writes.sort_by_key(|w| w.id);
    Decided {
        rows: writes.len(),
        attempts: writes.iter().map(|w| (w.id, w.attempts)).collect(),
        json: serde_json::to_string(&writes).expect("row writes serialize"),
        applied,
    }
}

/// A row of a `SELECT {ROW_COLUMNS}, {RECORD_COLUMNS}`: with its record's
/// facts, as the scan judges it.
pub(super) fn judged_row(r: &impl ByName) -> Result<DeliveryRow> {
    let row = delivery_row(r)?;
    Ok(DeliveryRow {
        record: super::record_columns::record_from(r, row.registry)?.into(),
        ..row
    })
}

/// A row of a `SELECT {ROW_COLUMNS}`: its record, if any, unread.
pub(super) fn delivery_row(r: &impl ByName) -> Result<DeliveryRow> {
    let registry = super::rowmap::parse_registry(&r.text_at("registry")?)?;
    Ok(DeliveryRow {
        id: r.int_at("id")?,
        registry,
        state: super::rowmap::parse_state(&r.text_at("state")?)?,
        reason: r.opt_text_at("reason")?,
        revision: r.int_at("revision")?,
        hours_tenths: r.opt_int_at("hours_tenths")?.map(|t| t as u32),
        credited_tenths: r.opt_int_at("credited_tenths")?.map(|t| t as u32),
        receipt_id: r.opt_text_at("receipt_id")?,
        delivered_at: r.opt_int_at("delivered_at")?,
        attempts: r.int_at("attempts")?,
        next_attempt_at: r.opt_int_at("next_attempt_at")?,
        last_error: r.opt_text_at("last_error")?,
        lease_owner: r.opt_text_at("lease_owner")?,
        lease_until: r.opt_int_at("lease_until")?,
        idempotency_key: r.opt_text_at("idempotency_key")?,
        record: match r.opt_int_at("format")? {
            Some(_) => Record::Unread,
            None => Record::None,
        },
        eligible_since: r.opt_int_at("eligible_since")?,
        rescan: r.int_at("rescan")? != 0,
    })
}

/// The decision, once its writes are done: every decided row must have
/// been written (the rows were read in the same transaction, locked).
pub(super) fn written(decided: Decided, rows_affected: u64) -> Result<Decided> {
    if rows_affected as usize == decided.rows {
        Ok(decided)
    } else {
        Err(super::StoreError::Busy(
            "a delivery row changed while its outcome was written".into(),
        ))
    }
}

/// The repairs that applied, in their order.
pub(super) fn applied_repairs(repairs: &[super::Repair], decided: &Decided) -> Vec<super::Repair> {
    repairs
        .iter()
        .zip(&decided.applied)
        .filter(|(_, applied)| **applied)
        .map(|(r, _)| r.clone())
        .collect()
}

/// The ids events name, each once, for the read.
pub(super) fn ids_of(events: &[(i64, Event)]) -> Vec<i64> {
    let mut ids: Vec<i64> = events.iter().map(|(id, _)| *id).collect();
    ids.sort_unstable();
    ids.dedup();
    ids
}
