//! Stored columns back into domain values. What is stored was valid when it
//! was written, so a failure here means the database was changed behind our
//! back: it is reported as such, never papered over.

use super::{IntakeChunk, Result, StoreError};
use crate::domain::{
    Account, AccountKind, Completion, CompletionStatus, Course, Hours, Identity, LearningMode,
    NationalId, Person,
};
use chrono::{FixedOffset, TimeZone};
use serde_json::json;
use std::collections::BTreeMap;

pub(super) fn corrupt(what: &str) -> StoreError {
    StoreError::Fatal(format!("stored data is not valid: {what}"))
}

/// A stored national ID, checked again as it leaves the database.
pub fn nid(s: &str) -> Result<NationalId> {
    NationalId::parse(s).map_err(|_| corrupt("a national ID"))
}

pub(super) fn hours(tenths: i64) -> Result<Hours> {
    u32::try_from(tenths)
        .ok()
        .and_then(Hours::from_tenths)
        .ok_or_else(|| corrupt("hours"))
}

pub fn completion_from(
    completion_id: String,
    account_id: String,
    course_code: String,
    completed_at_ms: i64,
    status: &str,
) -> Result<Completion> {
    let status = match status {
        "completed" => CompletionStatus::Completed,
        "revoked" => CompletionStatus::Revoked,
        _ => return Err(corrupt("a completion status")),
    };
    let taipei = FixedOffset::east_opt(8 * 3600).expect("valid offset");
    let completed_at = taipei
        .timestamp_millis_opt(completed_at_ms)
        .single()
        .ok_or_else(|| corrupt("a timestamp"))?;
    Ok(Completion {
        completion_id,
        account_id,
        course_code,
        completed_at,
        status,
    })
}

pub fn account_from(
    account_id: String,
    national_id: &str,
    kind: &str,
    identity: Option<String>,
    bound_to: Option<String>,
) -> Result<Account> {
    Ok(Account {
        account_id,
        national_id: nid(national_id)?,
        kind: AccountKind::parse(kind).ok_or_else(|| corrupt("an account kind"))?,
        identity: match identity {
            Some(i) => Some(Identity::parse(&i).ok_or_else(|| corrupt("an identity"))?),
            None => None,
        },
        bound_to,
    })
}

pub fn person_from(
    national_id: &str,
    personnel_category: Option<String>,
    enved_account: Option<String>,
    service_unit_code: Option<String>,
) -> Result<Person> {
    Ok(Person {
        national_id: nid(national_id)?,
        personnel_category,
        enved_account,
        service_unit_code,
    })
}

/// A course as the scan reads it: its certified hours come as one JSON
/// object of registry name to tenths (`{"lifelong": 20}`), aggregated from
/// the `course_hours` rows in the same query.
pub fn course_from(
    course_code: String,
    name: String,
    learning_mode: i64,
    category_code: String,
    [digital, classroom]: [i64; 2],
    certified: &str,
) -> Result<Course> {
    let by_name: BTreeMap<String, i64> =
        serde_json::from_str(certified).map_err(|_| corrupt("a course's certified hours"))?;
    let certified = by_name
        .into_iter()
        .map(|(registry, tenths)| Ok((parse_registry(&registry)?, hours(tenths)?)))
        .collect::<Result<_>>()?;
    Ok(Course {
        course_code,
        name,
        learning_mode: LearningMode::from_code(learning_mode)
            .ok_or_else(|| corrupt("a learning mode"))?,
        category_code,
        digital_hours: hours(digital)?,
        classroom_hours: hours(classroom)?,
        certified,
    })
}

/// A course's certified hours as the intake upserts write them: one JSON
/// object of registry name to tenths, the zero figures included, its keys
/// in name order (SQLite compares it as text with the stored rows, see its
/// `STAMP_COURSES_WITH_NEW_HOURS`).
fn certified_object(course: &Course) -> serde_json::Value {
    let mut by_name: Vec<_> = course
        .certified
        .iter()
        .map(|(registry, h)| (registry.as_str(), h.tenths()))
        .collect();
    by_name.sort_unstable();
    let map = by_name
        .into_iter()
        .map(|(name, tenths)| (name.to_string(), json!(tenths)));
    serde_json::Value::Object(map.collect())
}

/// Which of [`intake_rows`]'s arrays a statement reads.
#[derive(Debug, Clone, Copy)]
pub enum IntakeRows {
    Units,
    Persons,
    Accounts,
    Courses,
    Completions,
}

/// An intake chunk as five JSON arrays of arrays (units, persons, accounts,
/// courses, completions), the form both backends unpack in one statement
/// per table. A course's last element is its certified hours as an object
/// of registry name to tenths.
pub fn intake_rows(chunk: &IntakeChunk) -> [String; 5] {
    fn array<T>(items: &[T], f: impl Fn(&T) -> serde_json::Value) -> String {
        serde_json::Value::Array(items.iter().map(f).collect()).to_string()
    }
    [
        array(&chunk.units, |u| json!([u.code, u.name])),
        array(&chunk.persons, |p| {
            json!([
                p.national_id.expose(),
                p.personnel_category,
                p.enved_account,
                p.service_unit_code
            ])
        }),
        array(&chunk.accounts, |a| {
            json!([
                a.account_id,
                a.national_id.expose(),
                a.kind.as_str(),
                a.identity.map(|i| i.as_str()),
                a.bound_to
            ])
        }),
        array(&chunk.courses, |c| {
            json!([
                c.course_code,
                c.name,
                c.learning_mode.code(),
                c.category_code,
                c.digital_hours.tenths(),
                c.classroom_hours.tenths(),
                certified_object(c)
            ])
        }),
        array(&chunk.completions, |c| {
            json!([
                c.completion_id,
                c.account_id,
                c.course_code,
                c.completed_at.timestamp_millis(),
                crate::domain::taipei_date(&c.completed_at),
                c.status.as_str()
            ])
        }),
    ]
}

/// A row of the history query.
pub fn attempt(r: &impl ReadRow) -> Result<super::Attempt> {
    Ok(super::Attempt {
        delivery_id: r.int(0)?,
        at: r.int(1)?,
        revision: r.int(2)?,
        action: r.text(3)?,
        request_id: r.text(4)?,
        http_status: r.opt_int(5)?.map(|s| s as u16),
        result: r.text(6)?,
        error: r.opt_text(7)?,
    })
}

pub fn parse_registry(s: &str) -> Result<crate::domain::RegistryKind> {
    s.parse()
        .map_err(|e: crate::domain::UnknownRegistry| StoreError::Fatal(format!("stored data: {e}")))
}

pub fn parse_state(s: &str) -> Result<super::State> {
    super::State::parse(s)
        .ok_or_else(|| StoreError::Fatal(format!("stored data: unknown delivery state {s:?}")))
}

/// Typed column access by name, for mappings that must not depend on the
/// order of a SELECT list written elsewhere.
pub trait ByName {
    fn int_at(&self, name: &str) -> Result<i64>;
    fn opt_int_at(&self, name: &str) -> Result<Option<i64>>;
    fn text_at(&self, name: &str) -> Result<String>;
    fn opt_text_at(&self, name: &str) -> Result<Option<String>>;
}

impl<R> ByName for R
where
    R: sqlx::Row,
    for<'a> &'a str: sqlx::ColumnIndex<R>,
    for<'r> i64: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> String: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    fn int_at(&self, name: &str) -> Result<i64> {
        Ok(self.try_get(name)?)
    }
    fn opt_int_at(&self, name: &str) -> Result<Option<i64>> {
        Ok(self.try_get(name)?)
    }
    fn text_at(&self, name: &str) -> Result<String> {
        Ok(self.try_get(name)?)
    }
    fn opt_text_at(&self, name: &str) -> Result<Option<String>> {
        Ok(self.try_get(name)?)
    }
}

/// Typed column access shared by both backends' rows, so each mapping from
/// a row to a value is written once.
pub trait ReadRow {
    fn int(&self, i: usize) -> Result<i64>;
    fn opt_int(&self, i: usize) -> Result<Option<i64>>;
    fn text(&self, i: usize) -> Result<String>;
    fn opt_text(&self, i: usize) -> Result<Option<String>>;
}

impl<R> ReadRow for R
where
    R: sqlx::Row,
    usize: sqlx::ColumnIndex<R>,
    for<'r> i64: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> String: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    fn int(&self, i: usize) -> Result<i64> {
        Ok(self.try_get(i)?)
    }
    fn opt_int(&self, i: usize) -> Result<Option<i64>> {
        Ok(self.try_get(i)?)
    }
    fn text(&self, i: usize) -> Result<String> {
        Ok(self.try_get(i)?)
    }
    fn opt_text(&self, i: usize) -> Result<Option<String>> {
        Ok(self.try_get(i)?)
    }
}

/// A row of `SCAN_FACTS` (both backends select the same columns).
pub fn scan_row(r: &impl ReadRow) -> Result<super::ScanRow> {
    let completion = completion_from(r.text(0)?, r.text(1)?, r.text(2)?, r.int(3)?, &r.text(5)?)?;
    let account = account_from(
        r.text(6)?,
        &r.text(7)?,
        &r.text(8)?,
        r.opt_text(9)?,
        r.opt_text(10)?,
    )?;
    let bound = match r.opt_text(11)? {
        Some(id) => Some(account_from(
            id,
            &r.text(12)?,
            &r.text(13)?,
            r.opt_text(14)?,
            None,
        )?),
        None => None,
    };
    let person = person_from(
        &r.text(15)?,
        r.opt_text(16)?,
        r.opt_text(17)?,
        r.opt_text(18)?,
    )?;
    let course = course_from(
        r.text(20)?,
        r.text(21)?,
        r.int(22)?,
        r.text(23)?,
        [r.int(24)?, r.int(25)?],
        &r.text(26)?,
    )?;
    Ok(super::ScanRow {
        completion,
        completed_on: r.text(4)?,
        account,
        bound,
        person,
        unit_known: r.int(19)? != 0,
        course,
        latest_change_ms: r.int(27)?,
        deliveries: Vec::new(),
    })
}

/// A row of `SCAN_DELIVERIES`, with its completion id.
pub fn existing_delivery(r: &impl ByName) -> Result<(String, super::DeliveryRow)> {
    Ok((
        r.text_at("completion_id")?,
        super::transitions::judged_row(r)?,
    ))
}

/// A row returned by a claim.
pub fn claimed(r: &impl ByName) -> Result<super::Claimed> {
    let action = match parse_state(&r.text_at("state")?)? {
        super::State::Correcting => super::Action::Correct,
        super::State::Withdrawing => super::Action::Withdraw,
        _ => super::Action::Upload,
    };
    let registry = parse_registry(&r.text_at("registry")?)?;
    let record = super::record_columns::record_from(r, registry)?;
    if action == super::Action::Upload && record.is_none() {
        return Err(corrupt("an upload without its record"));
    }
    Ok(super::Claimed {
        id: r.int_at("id")?,
        action,
        revision: r.int_at("revision")?,
        idempotency_key: r.text_at("idempotency_key")?,
        record,
        attempts: r.int_at("attempts")?,
        hours_tenths: r.opt_int_at("hours_tenths")?.unwrap_or(0) as u32,
        receipt_id: r.opt_text_at("receipt_id")?,
        taken_over: r.opt_text_at("lease_taken_from")?.is_some(),
    })
}

/// A row of the person-records query.
pub fn person_record(r: &impl ReadRow) -> Result<super::PersonRecord> {
    let delivery = match r.opt_int(2)? {
        None => None,
        Some(id) => Some(super::DeliveryView {
            id,
            registry: parse_registry(&r.text(3)?)?,
            state: parse_state(&r.text(4)?)?,
            reason: r.opt_text(5)?,
            hours_tenths: r.opt_int(6)?.map(|h| h as u32),
            eligible_since: r.opt_int(7)?,
            receipt_id: r.opt_text(8)?,
            attempts: r.int(9)?,
            last_error: r.opt_text(10)?,
            due_at: r.opt_int(11)?,
            delivered_at: r.opt_int(12)?,
        }),
    };
    Ok(super::PersonRecord {
        completion_id: r.text(0)?,
        course_code: r.text(1)?,
        course_title: r.opt_text(13)?,
        completed_on: r.text(14)?,
        delivery,
    })
}

pub fn state_count(r: &impl ReadRow) -> Result<super::StateCount> {
    Ok(super::StateCount {
        registry: parse_registry(&r.text(0)?)?,
        state: parse_state(&r.text(1)?)?,
        reason: r.opt_text(2)?,
        count: r.int(3)?,
    })
}

pub fn table_counts(r: &impl ReadRow) -> Result<super::TableCounts> {
    Ok(super::TableCounts {
        units: r.int(0)?,
        persons: r.int(1)?,
        accounts: r.int(2)?,
        courses: r.int(3)?,
        completions: r.int(4)?,
        deliveries: r.int(5)?,
        change_seq: r.int(6)?,
        calendar_years: r.int(7)?,
        course_hours: r.int(8)?,
    })
}

pub fn sla_count(r: &impl ReadRow) -> Result<super::SlaCount> {
    Ok(super::SlaCount {
        registry: parse_registry(&r.text(0)?)?,
        sla: r.text(1)?,
        count: r.int(2)?,
    })
}

pub fn breached_record(r: &impl ReadRow) -> Result<super::BreachedRecord> {
    Ok(super::BreachedRecord {
        id: r.int(0)?,
        registry: parse_registry(&r.text(1)?)?,
        completion_id: r.text(2)?,
        course_code: r.text(3)?,
        national_id: nid(&r.text(4)?)?,
        state: parse_state(&r.text(5)?)?,
        reason: r.opt_text(6)?,
        attempts: r.int(7)?,
        last_error: r.opt_text(8)?,
        eligible_since: r.int(9)?,
        due_at: r.int(10)?,
    })
}

pub fn delivery_item(r: &impl ReadRow) -> Result<super::DeliveryItem> {
    Ok(super::DeliveryItem {
        id: r.int(0)?,
        completion_id: r.text(1)?,
        registry: parse_registry(&r.text(2)?)?,
        national_id: nid(&r.text(3)?)?,
        course_code: r.text(4)?,
        state: parse_state(&r.text(5)?)?,
        reason: r.opt_text(6)?,
        hours_tenths: r.opt_int(7)?.map(|h| h as u32),
        attempts: r.int(8)?,
        last_error: r.opt_text(9)?,
        eligible_since: r.opt_int(10)?,
        due_at: r.opt_int(11)?,
        receipt_id: r.opt_text(12)?,
        idempotency_key: r.opt_text(13)?,
        revision: r.int(14)?,
    })
}

pub fn audit_entry(r: &impl ReadRow) -> Result<super::AuditEntry> {
    Ok(super::AuditEntry {
        id: r.int(0)?,
        at: r.int(1)?,
        actor: r.text(2)?,
        action: r.text(3)?,
        scope: r.text(4)?,
        records: r.int(5)?,
        status: r.text(6)?,
        result: r.opt_text(7)?,
        finished_at: r.opt_int(8)?,
    })
}

/// A row of the reconcile-candidates query.
pub fn reconcile_item(r: &impl ByName) -> Result<super::ReconcileItem> {
    Ok(super::ReconcileItem {
        id: r.int_at("id")?,
        registry: parse_registry(&r.text_at("registry")?)?,
        completion_id: r.text_at("completion_id")?,
        national_id: nid(&r.text_at("national_id")?)?,
        state: parse_state(&r.text_at("state")?)?,
        revision: r.int_at("revision")?,
        idempotency_key: r.text_at("idempotency_key")?,
        has_record: r.opt_int_at("format")?.is_some(),
        hours_tenths: r.opt_int_at("hours_tenths")?.map(|t| t as u32),
        credited_tenths: r.opt_int_at("credited_tenths")?.map(|t| t as u32),
        receipt_id: r.opt_text_at("receipt_id")?,
    })
}
