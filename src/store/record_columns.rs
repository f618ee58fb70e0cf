//! A record's facts as delivery-row columns, both ways: written beside the
//! row's other columns (the scan's upsert reads them from the write's JSON
//! by these names) and read back by name. The learner, the course and the
//! hours are the row's own `national_id`, `course_code` and `hours_tenths`;
//! the other facts have a column each, null where the registry's record
//! has no such field. `format` is null exactly when the row holds no record.

use super::Result;
use super::rowmap::{ByName, corrupt, hours, nid};
use crate::domain::{LearningMode, RecordDetail, RecordFacts, RegistryKind};
use serde::ser::{Serialize, SerializeMap, Serializer};

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

/// The record's own columns (not the learner, course or hours, which the
/// write carries as the row's), flattened into a
/// [`DeliveryWrite`](super::DeliveryWrite)'s JSON.
impl Serialize for RecordFacts {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(None)?;
        m.serialize_entry("format", &self.format)?;
        m.serialize_entry("course_name", &self.course_name)?;
        m.serialize_entry("completed_on", &self.completed_on)?;
        match &self.detail {
            RecordDetail::Lifelong {
                learning_mode,
                digital,
                classroom,
                category_code,
            } => {
                m.serialize_entry("learning_mode", &learning_mode.code())?;
                m.serialize_entry("digital_tenths", &digital.tenths())?;
                m.serialize_entry("classroom_tenths", &classroom.tenths())?;
                m.serialize_entry("category_code", category_code)?;
            }
            RecordDetail::Teacher => {}
            RecordDetail::Enved {
                enved_account,
                service_unit_code,
            } => {
                m.serialize_entry("enved_account", enved_account)?;
                m.serialize_entry("service_unit_code", service_unit_code)?;
            }
        }
        m.end()
    }
}
