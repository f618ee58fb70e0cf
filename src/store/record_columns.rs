//! A record's facts as delivery-row columns, both ways: written beside the
//! row's other columns (the scan binds them typed, through [`WriteRow`])
//! and read back by name. The learner, the course and the hours are the
//! row's own `national_id`, `course_code` and `hours_tenths`; the other
//! facts have a column each, null where the registry's record has no such
//! field. `format` is null exactly when the row holds no record.

use super::Result;
use super::rowmap::{ByName, corrupt, hours, nid};
use crate::domain::{LearningMode, RecordDetail, RecordFacts, RegistryKind};

/// The columns a record's facts are read from, besides `format` and
/// `hours_tenths` (which every delivery row read has).
pub(super) const RECORD_COLUMNS: &str = "national_id, course_code, course_name, completed_on, \
    learning_mode, digital_tenths, classroom_tenths, category_code, enved_account, \
    service_unit_code";

/// The facts of a row of `registry`, if it holds a record, read by the
/// column names above (every query that reads a record selects them all).
pub(super) fn record_from(r: &impl ByName, registry: RegistryKind) -> Result<Option<RecordFacts>> {
    let Some(format) = r.opt_int_at("format")? else {
        return Ok(None);
    };
    let format = u8::try_from(format)
        .ok()
        .filter(|f| *f == 1)
        .ok_or_else(|| corrupt("a record format version this build does not know"))?;
    let detail = match registry {
        RegistryKind::Lifelong => RecordDetail::Lifelong {
            learning_mode: LearningMode::from_code(r.int_at("learning_mode")?)
                .ok_or_else(|| corrupt("a learning mode"))?,
            digital: hours(r.int_at("digital_tenths")?)?,
            classroom: hours(r.int_at("classroom_tenths")?)?,
            category_code: r.text_at("category_code")?,
        },
        RegistryKind::Teacher => RecordDetail::Teacher,
        RegistryKind::Enved => RecordDetail::Enved {
            enved_account: r.opt_text_at("enved_account")?,
            service_unit_code: r.opt_text_at("service_unit_code")?,
        },
    };
    Ok(Some(RecordFacts {
        format,
        national_id: nid(&r.text_at("national_id")?)?,
        course_code: r.text_at("course_code")?,
        course_name: r.text_at("course_name")?,
        completed_on: r.text_at("completed_on")?,
        hours: hours(r.int_at("hours_tenths")?)?,
        detail,
    }))
}

/// The columns of a [`WriteRow`], in [`WriteRow::cells`]' order, with their
/// SQL types.
pub const WRITE_COLUMNS: [(&str, &str); 23] = [
    ("completion_id", "text"),
    ("registry", "text"),
    ("national_id", "text"),
    ("course_code", "text"),
    ("state", "text"),
    ("reason", "text"),
    ("hours_tenths", "bigint"),
    ("revision", "bigint"),
    ("idempotency_key", "text"),
    ("eligible_since", "bigint"),
    ("due_at", "bigint"),
    ("next_attempt_at", "bigint"),
    ("attempts", "bigint"),
    ("rescan", "bigint"),
    ("format", "bigint"),
    ("course_name", "text"),
    ("completed_on", "text"),
    ("learning_mode", "bigint"),
    ("digital_tenths", "bigint"),
    ("classroom_tenths", "bigint"),
    ("category_code", "text"),
    ("enved_account", "text"),
    ("service_unit_code", "text"),
];

/// One value of a [`WriteRow`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cell<'a> {
    Int(Option<i64>),
    Text(Option<&'a str>),
}

impl<'a> Cell<'a> {
    /// The integer; `None` for a text cell too (a column is of one type).
    pub fn int(self) -> Option<i64> {
        match self {
            Cell::Int(v) => v,
            Cell::Text(_) => None,
        }
    }

    /// The text; `None` for an integer cell too.
    pub fn text(self) -> Option<&'a str> {
        match self {
            Cell::Text(v) => v,
            Cell::Int(_) => None,
        }
    }
}

/// A scan write as the values of its row's columns, typed and borrowed, for
/// statements that bind one parameter per column (or per column array)
/// instead of parsing a JSON document per row. `attempts` is 0 to start the
/// attempts (and the last error) over, -1 to keep them.
pub struct WriteRow<'a> {
    pub completion_id: &'a str,
    pub registry: &'static str,
    pub national_id: &'a str,
    pub course_code: &'a str,
    pub state: &'static str,
    pub reason: Option<&'a str>,
    pub hours_tenths: Option<i64>,
    pub revision: i64,
    pub idempotency_key: Option<&'a str>,
    pub eligible_since: Option<i64>,
    pub due_at: Option<i64>,
    pub next_attempt_at: Option<i64>,
    pub attempts: i64,
    pub rescan: i64,
    pub format: Option<i64>,
    pub course_name: Option<&'a str>,
    pub completed_on: Option<&'a str>,
    pub learning_mode: Option<i64>,
    pub digital_tenths: Option<i64>,
    pub classroom_tenths: Option<i64>,
    pub category_code: Option<&'a str>,
    pub enved_account: Option<&'a str>,
    pub service_unit_code: Option<&'a str>,
}

impl<'a> WriteRow<'a> {
    /// The values, in [`WRITE_COLUMNS`]' order.
    pub fn cells(&self) -> [Cell<'a>; 23] {
        use Cell::{Int, Text};
        [
            Text(Some(self.completion_id)),
            Text(Some(self.registry)),
            Text(Some(self.national_id)),
            Text(Some(self.course_code)),
            Text(Some(self.state)),
            Text(self.reason),
            Int(self.hours_tenths),
            Int(Some(self.revision)),
            Text(self.idempotency_key),
            Int(self.eligible_since),
            Int(self.due_at),
            Int(self.next_attempt_at),
            Int(Some(self.attempts)),
            Int(Some(self.rescan)),
            Int(self.format),
            Text(self.course_name),
            Text(self.completed_on),
            Int(self.learning_mode),
            Int(self.digital_tenths),
            Int(self.classroom_tenths),
            Text(self.category_code),
            Text(self.enved_account),
            Text(self.service_unit_code),
        ]
    }

    /// The columns of `w`, null where its record (if any) has no such field.
    pub fn of(w: &'a super::DeliveryWrite) -> Self {
        let record = w.record.as_ref();
        let (mut learning_mode, mut digital_tenths, mut classroom_tenths) = (None, None, None);
        let (mut category_code, mut enved_account, mut service_unit_code) = (None, None, None);
        match record.map(|r| &r.detail) {
            Some(RecordDetail::Lifelong {
                learning_mode: mode,
                digital,
                classroom,
                category_code: category,
            }) => {
                learning_mode = Some(mode.code());
                digital_tenths = Some(i64::from(digital.tenths()));
                classroom_tenths = Some(i64::from(classroom.tenths()));
                category_code = Some(category.as_str());
            }
            Some(RecordDetail::Enved {
                enved_account: account,
                service_unit_code: unit,
            }) => {
                enved_account = account.as_deref();
                service_unit_code = unit.as_deref();
            }
            Some(RecordDetail::Teacher) | None => {}
        }
        Self {
            completion_id: &w.completion_id,
            registry: w.registry.as_str(),
            national_id: w.national_id.expose(),
            course_code: &w.course_code,
            state: w.state.as_str(),
            reason: w.reason.as_deref(),
            hours_tenths: w.hours_tenths.map(i64::from),
            revision: w.revision,
            idempotency_key: w.idempotency_key.as_deref(),
            eligible_since: w.eligible_since,
            due_at: w.due_at,
            next_attempt_at: w.next_attempt_at,
            attempts: if w.reset_attempts { 0 } else { -1 },
            rescan: i64::from(w.rescan),
            format: record.map(|r| i64::from(r.format)),
            course_name: record.map(|r| r.course_name.as_str()),
            completed_on: record.map(|r| r.completed_on.as_str()),
            learning_mode,
            digital_tenths,
            classroom_tenths,
            category_code,
            enved_account,
            service_unit_code,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Hours, NationalId};
    use crate::store::{DeliveryWrite, State};

    fn write(registry: RegistryKind, detail: Option<RecordDetail>) -> DeliveryWrite {
        let national_id = NationalId::parse("A123456789").unwrap();
        DeliveryWrite {
            completion_id: "c1".into(),
            registry,
            national_id: national_id.clone(),
            course_code: "K1".into(),
            state: State::Pending,
            reason: None,
            hours_tenths: Some(20),
            revision: 2,
            idempotency_key: Some("c1-2".into()),
            record: detail.map(|detail| RecordFacts {
                format: 1,
                national_id,
                course_code: "K1".into(),
                course_name: "Course".into(),
                completed_on: "2026-03-02".into(),
                hours: Hours::from_tenths(20).unwrap(),
                detail,
            }),
            eligible_since: Some(5),
            due_at: Some(6),
            next_attempt_at: Some(7),
            reset_attempts: true,
            rescan: false,
        }
    }

    #[test]
    fn a_lifelong_write_binds_its_split_and_no_enved_fields() {
        let w = write(
            RegistryKind::Lifelong,
            Some(RecordDetail::Lifelong {
                learning_mode: LearningMode::Blended,
                digital: Hours::from_tenths(5).unwrap(),
                classroom: Hours::from_tenths(15).unwrap(),
                category_code: "C9".into(),
            }),
        );
        let r = WriteRow::of(&w);
        assert_eq!((r.completion_id, r.registry), ("c1", "lifelong"));
        assert_eq!((r.national_id, r.state), ("A123456789", "pending"));
        assert_eq!(
            (r.hours_tenths, r.revision, r.format),
            (Some(20), 2, Some(1))
        );
        assert_eq!(
            (r.learning_mode, r.digital_tenths, r.classroom_tenths),
            (Some(LearningMode::Blended.code()), Some(5), Some(15))
        );
        assert_eq!(r.category_code, Some("C9"));
        assert_eq!((r.enved_account, r.service_unit_code), (None, None));
        assert_eq!(
            (r.course_name, r.completed_on),
            (Some("Course"), Some("2026-03-02"))
        );
        assert_eq!(
            (r.eligible_since, r.due_at, r.next_attempt_at),
            (Some(5), Some(6), Some(7))
        );
        assert_eq!((r.attempts, r.rescan), (0, 0));
    }

    #[test]
    fn an_enved_write_binds_its_account_and_unit_and_no_split() {
        let w = write(
            RegistryKind::Enved,
            Some(RecordDetail::Enved {
                enved_account: Some("e1".into()),
                service_unit_code: None,
            }),
        );
        let r = WriteRow::of(&w);
        assert_eq!((r.enved_account, r.service_unit_code), (Some("e1"), None));
        assert_eq!(
            (r.learning_mode, r.digital_tenths, r.category_code),
            (None, None, None)
        );
    }

    #[test]
    fn a_write_without_a_record_binds_no_facts_and_a_kept_row_keeps_its_attempts() {
        let w = DeliveryWrite {
            reset_attempts: false,
            rescan: true,
            ..write(RegistryKind::Teacher, None)
        };
        let r = WriteRow::of(&w);
        assert_eq!(
            (r.format, r.course_name, r.completed_on),
            (None, None, None)
        );
        assert_eq!((r.attempts, r.rescan), (-1, 1));
    }
}
