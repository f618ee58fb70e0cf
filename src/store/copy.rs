//! The tables `hoursync migrate-data` copies between databases, in an order
//! that needs nothing before it exists, with their columns (in table
//! order) and the key pages are read by. Leases and request gates are not
//! copied: they describe running daemons, not data.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CopyTable {
    ChangeSeq,
    Cursors,
    Units,
    Persons,
    Accounts,
    Courses,
    Completions,
    Deliveries,
    CalendarYears,
    Audit,
    Attempts,
}

impl CopyTable {
    pub const ALL: [CopyTable; 11] = [
        Self::ChangeSeq,
        Self::Cursors,
        Self::Units,
        Self::Persons,
        Self::Accounts,
        Self::Courses,
        Self::Completions,
        Self::Deliveries,
        Self::CalendarYears,
        Self::Audit,
        Self::Attempts,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Self::ChangeSeq => "change_seq",
            Self::Cursors => "cursors",
            Self::Units => "units",
            Self::Persons => "persons",
            Self::Accounts => "accounts",
            Self::Courses => "courses",
            Self::Completions => "completions",
            Self::Deliveries => "deliveries",
            Self::CalendarYears => "calendar_years",
            Self::Audit => "audit",
            Self::Attempts => "attempts",
        }
    }

    pub fn columns(self) -> &'static [&'static str] {
        match self {
            Self::ChangeSeq => &["id", "value"],
            Self::CalendarYears => &["year", "csv", "loaded_at"],
            Self::Audit => &[
                "id",
                "at",
                "actor",
                "action",
                "scope",
                "records",
                "status",
                "result",
                "finished_at",
            ],
            Self::Attempts => &[
                "id",
                "delivery_id",
                "at",
                "revision",
                "action",
                "request_id",
                "http_status",
                "result",
                "error",
            ],
            Self::Cursors => &["name", "seq", "last_run_at"],
            Self::Units => &["code", "name", "seq", "changed_at"],
            Self::Persons => &[
                "national_id",
                "personnel_category",
                "enved_account",
                "service_unit_code",
                "seq",
                "changed_at",
            ],
            Self::Accounts => &[
                "account_id",
                "national_id",
                "kind",
                "identity",
                "bound_to",
                "seq",
                "changed_at",
            ],
            Self::Courses => &[
                "course_code",
                "name",
                "learning_mode",
                "category_code",
                "digital_tenths",
                "classroom_tenths",
                "lifelong_tenths",
                "teacher_tenths",
                "enved_tenths",
                "seq",
                "changed_at",
            ],
            Self::Completions => &[
                "id",
                "completion_id",
                "account_id",
                "course_code",
                "completed_at",
                "completed_on",
                "status",
                "seq",
                "changed_at",
            ],
            Self::Deliveries => &[
                "id",
                "completion_id",
                "registry",
                "national_id",
                "course_code",
                "state",
                "reason",
                "hours_tenths",
                "revision",
                "idempotency_key",
                "payload",
                "eligible_since",
                "attempts",
                "next_attempt_at",
                "last_error",
                "receipt_id",
                "delivered_at",
                "credited_tenths",
                "lease_owner",
                "lease_until",
                "updated_at",
                "due_at",
                "rescan",
            ],
        }
    }

    /// The first column: the primary key pages are ordered by.
    pub fn key(self) -> &'static str {
        self.columns()[0]
    }

    /// Whether the key is an integer (else text).
    pub fn int_key(self) -> bool {
        matches!(
            self,
            Self::ChangeSeq
                | Self::Completions
                | Self::Deliveries
                | Self::CalendarYears
                | Self::Audit
                | Self::Attempts
        )
    }
}

/// Where the previous page ended.
#[derive(Clone, PartialEq, Eq)]
pub enum PageKey {
    Start,
    Int(i64),
    Text(String),
}

/// The persons table is paged by national ID: a text key is shown masked.
impl std::fmt::Debug for PageKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Start => f.write_str("Start"),
            Self::Int(i) => f.debug_tuple("Int").field(i).finish(),
            Self::Text(s) => f
                .debug_tuple("Text")
                .field(&crate::domain::mask_ids_in(s))
                .finish(),
        }
    }
}

impl PageKey {
    /// The key of a copied row, to continue after it.
    pub fn of(table: CopyTable, row: &serde_json::Value) -> PageKey {
        let v = &row[table.key()];
        match (table.int_key(), v.as_i64(), v.as_str()) {
            (true, Some(i), _) => PageKey::Int(i),
            (false, _, Some(s)) => PageKey::Text(s.to_string()),
            _ => PageKey::Start,
        }
    }

    pub fn int(&self) -> i64 {
        match self {
            PageKey::Int(i) => *i,
            _ => i64::MIN,
        }
    }

    pub fn text(&self) -> &str {
        match self {
            PageKey::Text(s) => s,
            _ => "",
        }
    }
}
