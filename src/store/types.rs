//! The values that cross the store boundary.

use crate::domain::{
    Account, Completion, Course, NationalId, Person, RecordFacts, RegistryKind, Unit,
};
use std::collections::{HashMap, HashSet};
use std::fmt;

/// A field's `Debug` with every run shaped like a national ID masked. The
/// stored wire record carries the whole ID by design, an audit scope may,
/// and a registry's error text may quote one; a typed [`NationalId`] masks
/// itself, but these are plain text.
struct IdsMasked<'a, T>(&'a T);

impl<T: fmt::Debug> fmt::Debug for IdsMasked<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let raw = if f.alternate() {
            format!("{:#?}", self.0)
        } else {
            format!("{:?}", self.0)
        };
        f.write_str(&crate::domain::mask_ids_in(&raw))
    }
}

/// `Debug` as derived, but through [`IdsMasked`] for every field, for the
/// types that hold text which may contain a whole ID. Every field is named
/// (the pattern has no `..`), so a field added to the type without being
/// added here does not compile.
macro_rules! debug_masking_ids {
    (struct $t:ident { $($f:ident),* $(,)? }) => {
        impl fmt::Debug for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                let Self { $($f),* } = self;
                f.debug_struct(stringify!($t))
                    $(.field(stringify!($f), &IdsMasked($f)))*
                    .finish()
            }
        }
    };
    (enum $t:ident { $($v:ident { $($f:ident),* $(,)? }),* $(,)? }) => {
        impl fmt::Debug for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                match self {
                    $(Self::$v { $($f),* } => f
                        .debug_struct(stringify!($v))
                        $(.field(stringify!($f), &IdsMasked($f)))*
                        .finish(),)*
                }
            }
        }
    };
}

/// Keys an intake chunk refers to, to check against what is stored.
#[derive(Debug, Default, Clone)]
pub struct KeyQuery {
    pub persons: Vec<NationalId>,
    pub accounts: Vec<String>,
    pub courses: Vec<String>,
}

/// What [`KeyQuery`] found: stored persons and courses, and stored accounts
/// with their kind and person (a certificate may only bind to an eCPA or
/// My e-Gov account of the same person).
#[derive(Debug, Default, Clone)]
pub struct KnownKeys {
    pub persons: HashSet<NationalId>,
    pub accounts: HashMap<String, KnownAccount>,
    pub courses: HashSet<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KnownAccount {
    pub kind: String,
    pub national_id: NationalId,
}

/// Valid intake objects to upsert together.
#[derive(Debug, Default, Clone)]
pub struct IntakeChunk {
    pub units: Vec<Unit>,
    pub persons: Vec<Person>,
    pub accounts: Vec<Account>,
    pub courses: Vec<Course>,
    pub completions: Vec<Completion>,
}

impl IntakeChunk {
    pub fn len(&self) -> usize {
        self.units.len()
            + self.persons.len()
            + self.accounts.len()
            + self.courses.len()
            + self.completions.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The state of a delivery row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    /// Not sent, with a reason; may become eligible later.
    Ineligible,
    /// Eligible, waiting for its first attempt.
    Pending,
    /// An attempt failed in a way a retry can fix; `next_attempt_at` says when.
    Retrying,
    /// The registry credited it (accepted or duplicate), with a receipt.
    Delivered,
    /// The registry refused it; needs a person or a data fix.
    Rejected,
    /// Gave up after `retry.max_attempts`; needs a person.
    Failed,
    /// Credited with hours that are no longer right: a `PUT` correction
    /// under a new revision key is due (and retried until it lands).
    Correcting,
    /// Credited, but the completion was revoked or the course lost its
    /// certification: a `DELETE` is due (and retried until it lands).
    Withdrawing,
    /// The registry no longer holds it; `reason` says why.
    Withdrawn,
}

impl State {
    pub const ALL: [State; 9] = [
        Self::Ineligible,
        Self::Pending,
        Self::Retrying,
        Self::Delivered,
        Self::Rejected,
        Self::Failed,
        Self::Correcting,
        Self::Withdrawing,
        Self::Withdrawn,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ineligible => "ineligible",
            Self::Pending => "pending",
            Self::Retrying => "retrying",
            Self::Delivered => "delivered",
            Self::Rejected => "rejected",
            Self::Failed => "failed",
            Self::Correcting => "correcting",
            Self::Withdrawing => "withdrawing",
            Self::Withdrawn => "withdrawn",
        }
    }

    pub fn parse(s: &str) -> Option<State> {
        Self::ALL.into_iter().find(|x| x.as_str() == s)
    }

    /// Whether dispatch has work for a row in this state.
    pub fn is_due_work(self) -> bool {
        matches!(
            self,
            Self::Pending | Self::Retrying | Self::Correcting | Self::Withdrawing
        )
    }

    /// Whether the registry holds a record of ours for a row in this state.
    pub fn is_credited(self) -> bool {
        matches!(self, Self::Delivered | Self::Correcting | Self::Withdrawing)
    }
}

/// What dispatch sends for a claimed row, decided by its state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// `POST …/records:batch`.
    Upload,
    /// `PUT …/records/{receipt_id}` with the new hours and revision key.
    Correct,
    /// `DELETE …/records/{receipt_id}`.
    Withdraw,
    /// `GET …/records/{idempotency_key}` (reconcile, or before a withdrawal
    /// of a record whose upload outcome is unknown). Never claimed.
    Lookup,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Upload => "upload",
            Self::Correct => "correct",
            Self::Withdraw => "withdraw",
            Self::Lookup => "lookup",
        }
    }
}

/// A completion with everything eligibility and the adapters look at.
#[derive(Debug, Clone)]
pub struct ScanRow {
    pub completion: Completion,
    /// The Asia/Taipei date of completion, `YYYY-MM-DD`.
    pub completed_on: String,
    pub account: Account,
    /// For a certificate, the account it is bound to (if it exists).
    pub bound: Option<Account>,
    /// The person the hours are credited to (the bound account's, for a
    /// certificate).
    pub person: Person,
    pub unit_known: bool,
    pub course: Course,
    /// The latest `changed_at` among the rows above: when the newest fact
    /// this decision rests on arrived.
    pub latest_change_ms: i64,
    /// The completion's delivery rows, one per registry judged before.
    pub deliveries: Vec<DeliveryRow>,
}

/// Whether a dispatcher's lease ending at `lease_until` still holds at
/// `now_ms`, so a request for the row may be in flight: a claim takes the
/// row again only once the lease is past (`lease_until < now`).
pub fn lease_held(lease_until: Option<i64>, now_ms: i64) -> bool {
    lease_until.is_some_and(|until| until >= now_ms)
}

/// A delivery row: the facts its revision carries and where it stands, as
/// the state machine ([`crate::transition`]) reads and decides it. The scan
/// reads it to judge a completion again; every other change reads it in
/// the write transaction and writes the result back with a compare-and-set
/// on (`id`, `revision`, `lease_owner`) as they were read.
#[derive(Clone, PartialEq, Eq)]
pub struct DeliveryRow {
    /// [`UNSTORED`] for a pair the scan judges for the first time.
    pub id: i64,
    pub registry: RegistryKind,
    pub state: State,
    pub reason: Option<String>,
    pub revision: i64,
    /// The hours this revision carries.
    pub hours_tenths: Option<u32>,
    /// The hours the registry credits, once it credits the record.
    pub credited_tenths: Option<u32>,
    pub receipt_id: Option<String>,
    pub delivered_at: Option<i64>,
    pub attempts: i64,
    pub next_attempt_at: Option<i64>,
    pub last_error: Option<String>,
    /// The dispatcher that took the row and has recorded no answer yet: a
    /// request may be in flight, or may have landed before its sender died
    /// (its lease expired). Either way the registry may hold what was sent.
    pub lease_owner: Option<String>,
    pub lease_until: Option<i64>,
    /// The key the row's revision is sent under (none if never eligible).
    pub idempotency_key: Option<String>,
    /// The record of the row's revision (none if it was never eligible;
    /// for a `withdrawing` row, the revision that follows the withdrawal,
    /// if reinstated). Only a scan's judgement changes it.
    pub record: Record,
    /// Since when the record is owed to its registry: the promise's clock.
    pub eligible_since: Option<i64>,
    /// The facts changed while an outcome was unknown: judge the row again
    /// once the registry's answer is known.
    pub rescan: bool,
}

/// The record a [`DeliveryRow`]'s revision carries, as far as it was read.
/// The scan reads its facts, as it compares a change against them; an
/// answer, a requeue, a repair or a lease expiry only asks whether there is
/// one, and the drain, which reads every row it records an answer for,
/// does not pay for the rest (about a sixth of the SQLite drain).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Record {
    /// Never eligible, or withdrawn and not reinstated.
    None,
    /// Its facts.
    Facts(RecordFacts),
    /// One is held; its facts were not read.
    Unread,
}

impl Record {
    /// Whether the row holds a record, read or not.
    pub fn is_held(&self) -> bool {
        !matches!(self, Record::None)
    }

    /// The facts, when they were read, taken out.
    pub fn into_facts(self) -> Option<RecordFacts> {
        match self {
            Record::Facts(f) => Some(f),
            _ => None,
        }
    }

    /// The facts, when they were read.
    pub fn facts(&self) -> Option<&RecordFacts> {
        match self {
            Record::Facts(f) => Some(f),
            _ => None,
        }
    }
}

impl From<Option<RecordFacts>> for Record {
    fn from(facts: Option<RecordFacts>) -> Self {
        facts.map_or(Record::None, Record::Facts)
    }
}

/// The id of a [`DeliveryRow`] not stored yet.
pub const UNSTORED: i64 = 0;

debug_masking_ids!(struct DeliveryRow {
    id, registry, state, reason, revision, hours_tenths, credited_tenths, receipt_id,
    delivered_at, attempts, next_attempt_at, last_error, lease_owner, lease_until,
    idempotency_key, record, eligible_since, rescan,
});

/// The scan's decision for one (completion, registry), written whole. Not
/// serializable: its columns are bound as typed values
/// (`store::record_columns::WriteRow`), so no JSON of it carries the ID.
#[derive(Clone, PartialEq, Eq)]
pub struct DeliveryWrite {
    pub completion_id: String,
    pub registry: RegistryKind,
    pub national_id: NationalId,
    pub course_code: String,
    pub state: State,
    pub reason: Option<String>,
    pub hours_tenths: Option<u32>,
    pub revision: i64,
    pub idempotency_key: Option<String>,
    /// The facts of the revision, written as columns beside the others
    /// (see `store::record_columns`); `national_id`, `course_code` and
    /// `hours_tenths` above are the record's own when it has one.
    pub record: Option<RecordFacts>,
    pub eligible_since: Option<i64>,
    /// End of the third working day after `eligible_since` (DOMAIN.md).
    pub due_at: Option<i64>,
    /// When to attempt (now, for a fresh or re-fixed record).
    pub next_attempt_at: Option<i64>,
    /// Reset attempts and last error (a new or changed record starts over).
    pub reset_attempts: bool,
    /// Judge the row again once its outcome is known (see [`DeliveryRow::rescan`]).
    pub rescan: bool,
}

debug_masking_ids!(struct DeliveryWrite {
    completion_id, registry, national_id, course_code, state, reason, hours_tenths, revision,
    idempotency_key, record, eligible_since, due_at, next_attempt_at, reset_attempts, rescan,
});

/// A leased delivery, ready to send.
#[derive(Clone)]
pub struct Claimed {
    pub id: i64,
    pub action: Action,
    pub revision: i64,
    pub idempotency_key: String,
    /// The facts to upload (none for a withdrawal of a record not
    /// reinstated).
    pub record: Option<RecordFacts>,
    pub attempts: i64,
    pub hours_tenths: u32,
    /// The receipt of the credited record a correction or withdrawal acts on.
    pub receipt_id: Option<String>,
    /// Another dispatcher's lease on the row ended without an answer (it
    /// died or stalled mid-request): what it sent may have landed.
    pub taken_over: bool,
}

debug_masking_ids!(struct Claimed {
    id, action, revision, idempotency_key, record, attempts, hours_tenths, receipt_id, taken_over,
});

/// What happened to one sent (or held back) record. `revision` is the
/// revision that was sent: if the scan made a newer one meanwhile, the answer
/// is recorded for what it was about and the newer revision stays due.
#[derive(Clone, PartialEq)]
pub enum Outcome {
    /// Accepted or duplicate: credited, with its receipt.
    Delivered {
        id: i64,
        revision: i64,
        receipt_id: String,
        credited_tenths: u32,
    },
    /// Refused for good by the registry.
    Rejected {
        id: i64,
        revision: i64,
        code: String,
        message: String,
    },
    /// A failed attempt: try again at `next_attempt_at`, or give up
    /// (`failed`). A correction or withdrawal never gives up: only the
    /// registry can finish it, and until then it holds a wrong figure.
    Failed {
        id: i64,
        revision: i64,
        next_attempt_at: i64,
        error: String,
        give_up: bool,
    },
    /// Not attempted (rate limit, auth, shutdown): release the lease and wait.
    Released {
        id: i64,
        next_attempt_at: i64,
        error: Option<String>,
    },
    /// A correction landed: the registry now credits `credited_tenths`.
    Corrected {
        id: i64,
        revision: i64,
        credited_tenths: u32,
    },
    /// The registry no longer holds the record (DELETE answered 200 or 404).
    /// A row reinstated meanwhile goes out again as its new revision.
    Withdrawn { id: i64 },
    /// The registry does not know the receipt a correction names (it lost
    /// the record): upload the new revision as a new record.
    Lost { id: i64 },
}

debug_masking_ids!(enum Outcome {
    Delivered { id, revision, receipt_id, credited_tenths },
    Rejected { id, revision, code, message },
    Failed { id, revision, next_attempt_at, error, give_up },
    Released { id, next_attempt_at, error },
    Corrected { id, revision, credited_tenths },
    Withdrawn { id },
    Lost { id },
});

impl Outcome {
    /// The delivery the outcome is about.
    pub fn id(&self) -> i64 {
        match self {
            Self::Delivered { id, .. }
            | Self::Rejected { id, .. }
            | Self::Failed { id, .. }
            | Self::Released { id, .. }
            | Self::Corrected { id, .. }
            | Self::Withdrawn { id }
            | Self::Lost { id } => *id,
        }
    }
}

/// One request made for one delivery, kept for `history.retention_days`.
#[derive(Clone, PartialEq, Eq, serde::Serialize)]
pub struct Attempt {
    pub delivery_id: i64,
    pub at: i64,
    pub revision: i64,
    /// `upload`, `correct`, `withdraw` or `lookup`.
    pub action: String,
    pub request_id: String,
    /// The HTTP status, when an answer came back.
    pub http_status: Option<u16>,
    /// `accepted`, `duplicate`, `rejected`, `corrected`, `withdrawn`,
    /// `not_found`, `found`, `unknown` (5xx, timeout), `rate_limited`,
    /// `unauthorized`, `too_large`, `bad_request`.
    pub result: String,
    pub error: Option<String>,
}

debug_masking_ids!(struct Attempt {
    delivery_id, at, revision, action, request_id, http_status, result, error,
});

/// One line of a person's status.
#[derive(Clone, PartialEq, Eq)]
pub struct PersonRecord {
    pub completion_id: String,
    pub course_code: String,
    /// The course's name, when the course is known.
    pub course_title: Option<String>,
    /// The completion date in Asia/Taipei (`YYYY-MM-DD`).
    pub completed_on: String,
    pub delivery: Option<DeliveryView>,
}

debug_masking_ids!(struct PersonRecord {
    completion_id, course_code, course_title, completed_on, delivery,
});

#[derive(Clone, PartialEq, Eq)]
pub struct DeliveryView {
    pub id: i64,
    pub registry: RegistryKind,
    pub state: State,
    pub reason: Option<String>,
    pub hours_tenths: Option<u32>,
    pub eligible_since: Option<i64>,
    pub receipt_id: Option<String>,
    pub attempts: i64,
    pub last_error: Option<String>,
    pub due_at: Option<i64>,
    pub delivered_at: Option<i64>,
}

debug_masking_ids!(struct DeliveryView {
    id, registry, state, reason, hours_tenths, eligible_since, receipt_id, attempts, last_error,
    due_at, delivered_at,
});

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct StateCount {
    pub registry: RegistryKind,
    pub state: State,
    pub reason: Option<String>,
    pub count: i64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct TableCounts {
    pub units: i64,
    pub persons: i64,
    pub accounts: i64,
    pub courses: i64,
    /// Rows of certified hours, one per course and registry.
    pub course_hours: i64,
    pub completions: i64,
    pub deliveries: i64,
    pub calendar_years: i64,
    pub change_seq: i64,
}

/// Deliveries of one registry in one SLA state.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SlaCount {
    pub registry: RegistryKind,
    pub sla: String,
    pub count: i64,
}

/// An undelivered record past its due time, for the breach list.
#[derive(Clone, PartialEq, Eq)]
pub struct BreachedRecord {
    pub id: i64,
    pub registry: RegistryKind,
    pub completion_id: String,
    pub course_code: String,
    pub national_id: NationalId,
    pub state: State,
    pub reason: Option<String>,
    pub attempts: i64,
    pub last_error: Option<String>,
    pub eligible_since: i64,
    pub due_at: i64,
}

debug_masking_ids!(struct BreachedRecord {
    id, registry, completion_id, course_code, national_id, state, reason, attempts, last_error,
    eligible_since, due_at,
});

/// Which deliveries an SLA query looks at.
#[derive(Debug, Clone, Copy, Default)]
pub struct SlaFilter {
    pub registry: Option<RegistryKind>,
    /// Only records eligible since this instant.
    pub since_ms: Option<i64>,
}

/// What a resync covers; every given field narrows it.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ResyncScope {
    /// Whole in the audit trail, which keeps what an action covered; the
    /// admin API masks it when it shows an audit entry.
    #[serde(with = "crate::domain::whole_id_opt")]
    pub national_id: Option<NationalId>,
    pub course_code: Option<String>,
    pub registry: Option<RegistryKind>,
    /// Completed at or after this instant.
    pub completed_from_ms: Option<i64>,
    /// Completed before this instant.
    pub completed_to_ms: Option<i64>,
}

/// A delivery row as support staff see it.
#[derive(Clone, PartialEq, Eq)]
pub struct DeliveryItem {
    pub id: i64,
    pub completion_id: String,
    pub registry: RegistryKind,
    pub national_id: NationalId,
    pub course_code: String,
    pub state: State,
    pub reason: Option<String>,
    pub hours_tenths: Option<u32>,
    pub attempts: i64,
    pub last_error: Option<String>,
    pub eligible_since: Option<i64>,
    pub due_at: Option<i64>,
    pub receipt_id: Option<String>,
    pub idempotency_key: Option<String>,
    /// The revision of the facts last written, for the history of a lookup.
    pub revision: i64,
}

debug_masking_ids!(struct DeliveryItem {
    id, completion_id, registry, national_id, course_code, state, reason, hours_tenths,
    attempts, last_error, eligible_since, due_at, receipt_id, idempotency_key, revision,
});

/// One audited action.
#[derive(Clone, PartialEq, Eq, serde::Serialize)]
pub struct AuditEntry {
    pub id: i64,
    pub at: i64,
    pub actor: String,
    pub action: String,
    /// JSON of what the action covered.
    pub scope: String,
    pub records: i64,
    /// `running`, `done` or `failed`.
    pub status: String,
    /// JSON of the outcome.
    pub result: Option<String>,
    pub finished_at: Option<i64>,
}

debug_masking_ids!(struct AuditEntry {
    id, at, actor, action, scope, records, status, result, finished_at,
});

impl AuditEntry {
    /// An action starting now: `running`, no records or result yet.
    pub fn running(at: i64, actor: &str, action: &str, scope: String) -> Self {
        Self {
            id: 0,
            at,
            actor: actor.into(),
            action: action.into(),
            scope,
            records: 0,
            status: "running".into(),
            result: None,
            finished_at: None,
        }
    }
}

/// Which rows a reconcile looks up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReconcileQuery {
    pub registry: Option<RegistryKind>,
    /// `delivered` rows credited at or after this instant are sampled.
    pub delivered_since_ms: i64,
    /// How many of every 1000 such rows are looked up (1000: all).
    pub sample_per_mille: u32,
    /// Rotates which rows the sample keeps, so successive nights see others.
    pub salt: i64,
}

/// A row a reconcile looks up.
#[derive(Clone, PartialEq, Eq)]
pub struct ReconcileItem {
    pub id: i64,
    pub registry: RegistryKind,
    pub completion_id: String,
    pub national_id: NationalId,
    pub state: State,
    pub revision: i64,
    pub idempotency_key: String,
    /// Whether the row holds a record's facts (one that can be corrected).
    pub has_record: bool,
    pub hours_tenths: Option<u32>,
    pub credited_tenths: Option<u32>,
    pub receipt_id: Option<String>,
}

debug_masking_ids!(struct ReconcileItem {
    id, registry, completion_id, national_id, state, revision, idempotency_key, has_record,
    hours_tenths, credited_tenths, receipt_id,
});

/// A repair a reconcile applies to one row, guarded by the state and
/// revision it saw.
#[derive(Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "repair", rename_all = "snake_case")]
pub enum Repair {
    /// The registry does not have the record: send it again now under its
    /// key (a `delivered` or `retrying` row).
    Requeued { id: i64, revision: i64 },
    /// An unknown outcome the registry did credit: `delivered`, with the
    /// registry's receipt and hours.
    Found {
        id: i64,
        revision: i64,
        receipt_id: String,
        credited_tenths: u32,
    },
    /// The registry credits other hours than ours: the same facts as a new
    /// revision, sent as a correction under that revision's key (a
    /// `delivered` row).
    Corrected {
        id: i64,
        revision: i64,
        new_revision: i64,
        idempotency_key: String,
        /// What the registry holds now.
        credited_tenths: u32,
    },
}

debug_masking_ids!(enum Repair {
    Requeued { id, revision },
    Found { id, revision, receipt_id, credited_tenths },
    Corrected { id, revision, new_revision, idempotency_key, credited_tenths },
});

impl Repair {
    /// The delivery the repair is about.
    pub fn id(&self) -> i64 {
        match self {
            Self::Requeued { id, .. } | Self::Found { id, .. } | Self::Corrected { id, .. } => *id,
        }
    }
}

#[cfg(test)]
mod tests;
