//! The tables `hoursync migrate-data` copies between databases, in an order
//! that needs nothing before it exists, with their columns (in table
//! order) and the key pages are read by. Leases and request gates are not
//! copied: they describe running daemons, not data. `course_hours` comes
//! after `courses`, the rows its rows belong to.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CopyTable {
    ChangeSeq,
    Cursors,
    Units,
    Persons,
    Accounts,
    Courses,
    CourseHours,
    Completions,
    Deliveries,
    CalendarYears,
    Audit,
    Requests,
    RequestRecords,
}

impl CopyTable {
    pub const ALL: [CopyTable; 13] = [
        Self::ChangeSeq,
        Self::Cursors,
        Self::Units,
        Self::Persons,
        Self::Accounts,
        Self::Courses,
        Self::CourseHours,
        Self::Completions,
        Self::Deliveries,
        Self::CalendarYears,
        Self::Audit,
        Self::Requests,
        Self::RequestRecords,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Self::ChangeSeq => "change_seq",
            Self::Cursors => "cursors",
            Self::Units => "units",
            Self::Persons => "persons",
            Self::Accounts => "accounts",
            Self::Courses => "courses",
            Self::CourseHours => "course_hours",
            Self::Completions => "completions",
            Self::Deliveries => "deliveries",
            Self::CalendarYears => "calendar_years",
            Self::Audit => "audit",
            Self::Requests => "requests",
            Self::RequestRecords => "request_records",
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
            Self::Requests => &["id", "at", "action", "request_id", "http_status", "error"],
            Self::RequestRecords => &["delivery_id", "request", "revision", "result", "error"],
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
                "seq",
                "changed_at",
            ],
            Self::CourseHours => &["course_code", "registry", "tenths"],
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
                "eligible_since",
                "attempts",
                "next_attempt_at",
                "last_error",
                "receipt_id",
                "delivered_at",
                "credited_tenths",
                "lease_owner",
                "lease_until",
                "lease_taken_from",
                "updated_at",
                "due_at",
                "rescan",
                "format",
                "course_name",
                "completed_on",
                "learning_mode",
                "digital_tenths",
                "classroom_tenths",
                "category_code",
                "enved_account",
                "service_unit_code",
            ],
        }
    }

    /// The primary key pages are ordered by: the first column, or the
    /// first two for `course_hours`, whose rows share a course's code, and
    /// for `request_records`, a delivery's records of several requests.
    pub fn key(self) -> &'static [&'static str] {
        let cols = self.columns();
        match self {
            Self::CourseHours | Self::RequestRecords => &cols[..2],
            _ => &cols[..1],
        }
    }

    /// Rows after `after`'s place, in key order: a WHERE and an ORDER BY
    /// clause, the key's values bound from `first` (`$1`, or `?1`, …).
    pub fn page_clauses(
        self,
        placeholder: impl Fn(usize) -> String,
        first: usize,
    ) -> (String, String) {
        let key = self.key().join(", ");
        let params: Vec<String> = (0..self.key().len())
            .map(|i| placeholder(first + i))
            .collect();
        (format!("({key}) > ({})", params.join(", ")), key)
    }

    /// Whether the key is made of integers (else text).
    pub fn int_key(self) -> bool {
        matches!(
            self,
            Self::ChangeSeq
                | Self::Completions
                | Self::Deliveries
                | Self::CalendarYears
                | Self::Audit
                | Self::Requests
                | Self::RequestRecords
        )
    }
}

/// Where the previous page ended.
#[derive(Clone, PartialEq, Eq)]
pub enum PageKey {
    Start,
    Int(i64),
    Text(String),
    /// A key of two text columns (a course and a registry).
    Pair(String, String),
    /// A key of two integer columns (a delivery and a request).
    IntPair(i64, i64),
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
            Self::Pair(a, b) => f
                .debug_tuple("Pair")
                .field(&crate::domain::mask_ids_in(a))
                .field(&crate::domain::mask_ids_in(b))
                .finish(),
            Self::IntPair(a, b) => f.debug_tuple("IntPair").field(a).field(b).finish(),
        }
    }
}

impl PageKey {
    /// The key of a copied row, to continue after it.
    pub fn of(table: CopyTable, row: &serde_json::Value) -> PageKey {
        let text = |col: &str| row[col].as_str().map(str::to_string);
        match table.key() {
            [a, b] if table.int_key() => match (row[*a].as_i64(), row[*b].as_i64()) {
                (Some(a), Some(b)) => PageKey::IntPair(a, b),
                _ => PageKey::Start,
            },
            [a, b] => match (text(a), text(b)) {
                (Some(a), Some(b)) => PageKey::Pair(a, b),
                _ => PageKey::Start,
            },
            [key, ..] => match (table.int_key(), row[key].as_i64(), text(key)) {
                (true, Some(i), _) => PageKey::Int(i),
                (false, _, Some(s)) => PageKey::Text(s),
                _ => PageKey::Start,
            },
            [] => PageKey::Start,
        }
    }

    /// The values to bind for [`CopyTable::page_clauses`]: before the first
    /// page, a key smaller than any stored one.
    pub fn binds(&self, table: CopyTable) -> PageBinds<'_> {
        match (self, table.int_key(), table.key().len()) {
            (PageKey::Int(i), true, _) => PageBinds::Ints(vec![*i]),
            (PageKey::IntPair(a, b), true, _) => PageBinds::Ints(vec![*a, *b]),
            (_, true, n) => PageBinds::Ints(vec![i64::MIN; n]),
            (PageKey::Pair(a, b), _, _) => PageBinds::Text(vec![a, b]),
            (PageKey::Text(s), _, _) => PageBinds::Text(vec![s]),
            (_, false, n) => PageBinds::Text(vec![""; n]),
        }
    }
}

/// The values a page's key is bound to.
pub enum PageBinds<'a> {
    Ints(Vec<i64>),
    Text(Vec<&'a str>),
}

/// An export page's arguments: the `LIMIT`, then `after`'s key.
pub(super) fn page_args<'a>(
    limit: usize,
    table: CopyTable,
    after: &'a PageKey,
) -> Vec<super::sql::Arg<'a>> {
    use super::sql::Arg;
    let mut args = vec![Arg::Int(limit as i64)];
    match after.binds(table) {
        PageBinds::Ints(keys) => args.extend(keys.into_iter().map(Arg::Int)),
        PageBinds::Text(keys) => args.extend(keys.into_iter().map(Arg::Text)),
    }
    args
}

/// An export page's rows, each a JSON object keyed by column.
pub(super) fn parse_page(
    table: CopyTable,
    rows: &[String],
) -> super::Result<Vec<serde_json::Value>> {
    rows.iter()
        .map(|r| {
            serde_json::from_str(r)
                .map_err(|e| super::StoreError::Fatal(format!("export of {}: {e}", table.name())))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn course_hours_pages_continue_after_both_key_columns() {
        let table = CopyTable::CourseHours;
        let (after, order) = table.page_clauses(|i| format!("${i}"), 2);
        assert_eq!(after, "(course_code, registry) > ($2, $3)");
        assert_eq!(order, "course_code, registry");
        let row = serde_json::json!({"course_code": "K1", "registry": "teacher", "tenths": 15});
        let key = PageKey::of(table, &row);
        assert_eq!(key, PageKey::Pair("K1".into(), "teacher".into()));
        assert!(matches!(key.binds(table), PageBinds::Text(k) if k == ["K1", "teacher"]));
        assert!(matches!(PageKey::Start.binds(table), PageBinds::Text(k) if k == ["", ""]));
    }

    #[test]
    fn request_records_pages_continue_after_the_delivery_and_the_request() {
        let table = CopyTable::RequestRecords;
        let (after, order) = table.page_clauses(|i| format!("${i}"), 2);
        assert_eq!(after, "(delivery_id, request) > ($2, $3)");
        assert_eq!(order, "delivery_id, request");
        let row = serde_json::json!({"delivery_id": 7, "request": 40, "revision": 1,
                                     "result": "accepted", "error": null});
        let key = PageKey::of(table, &row);
        assert_eq!(key, PageKey::IntPair(7, 40));
        assert!(matches!(key.binds(table), PageBinds::Ints(k) if k == [7, 40]));
        assert!(
            matches!(PageKey::Start.binds(table), PageBinds::Ints(k) if k == [i64::MIN, i64::MIN])
        );
    }

    #[test]
    fn courses_come_before_their_hours_and_requests_before_their_records() {
        let at = |t| CopyTable::ALL.iter().position(|&x| x == t).unwrap();
        assert!(at(CopyTable::Courses) < at(CopyTable::CourseHours));
        assert!(at(CopyTable::Requests) < at(CopyTable::RequestRecords));
    }
}
