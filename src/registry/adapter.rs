//! One adapter per registry: each owns its registry's record shape
//! (REGISTRY-API.md, "Upload a batch"). A deployment whose registry speaks
//! something else changes this file and nothing else.

use crate::domain::{Hours, RECORD_FORMAT, RecordDetail, RecordFacts, RegistryKind};
use crate::store::ScanRow;
use serde::Serialize;
#[cfg(test)]
use serde_json::Value;
use sha2::{Digest, Sha256};

/// The idempotency key of one (completion, registry, revision): stable, at
/// most 64 characters, and revealing nothing about the learner.
pub fn idempotency_key(completion_id: &str, registry: RegistryKind, revision: i64) -> String {
    let mut h = Sha256::new();
    h.update(completion_id.as_bytes());
    h.update([0x1f]);
    h.update(registry.as_str().as_bytes());
    h.update([0x1f]);
    h.update(revision.to_string().as_bytes());
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut key = String::with_capacity(44);
    key.push_str("hs1-");
    for b in h.finalize().iter().take(20) {
        key.push(HEX[usize::from(b >> 4)] as char);
        key.push(HEX[usize::from(b & 0xf)] as char);
    }
    key
}

/// The fields every registry's record has.
#[derive(Serialize)]
struct Common<'a> {
    idempotency_key: &'a str,
    national_id: &'a str,
    course_code: &'a str,
    course_name: &'a str,
    completed_on: &'a str,
    hours: String,
}

/// `lifelong`: how the hours were earned.
#[derive(Serialize)]
struct Lifelong<'a> {
    #[serde(flatten)]
    common: Common<'a>,
    learning_mode: i64,
    digital_hours: String,
    classroom_hours: String,
    category_code: &'a str,
}

/// `teacher`: education staff only, so the category is always 10.
#[derive(Serialize)]
struct Teacher<'a> {
    #[serde(flatten)]
    common: Common<'a>,
    personnel_category: &'static str,
}

/// `enved`: the learner's own account and service unit on that network.
#[derive(Serialize)]
struct Enved<'a> {
    #[serde(flatten)]
    common: Common<'a>,
    enved_account: Option<&'a str>,
    service_unit_code: Option<&'a str>,
}

/// The facts a scan decision puts under a new revision for `registry`:
/// the completion's course and learner as they are now, in the format
/// this build writes.
pub fn record_facts(registry: RegistryKind, row: &ScanRow, hours: Hours) -> RecordFacts {
    let detail = match registry {
        RegistryKind::Lifelong => RecordDetail::Lifelong {
            learning_mode: row.course.learning_mode,
            digital: row.course.digital_hours,
            classroom: row.course.classroom_hours,
            category_code: row.course.category_code.clone(),
        },
        RegistryKind::Teacher => RecordDetail::Teacher,
        RegistryKind::Enved => RecordDetail::Enved {
            enved_account: row.person.enved_account.clone(),
            service_unit_code: row.person.service_unit_code.clone(),
        },
    };
    RecordFacts {
        format: RECORD_FORMAT,
        national_id: row.person.national_id.clone(),
        course_code: row.course.course_code.clone(),
        course_name: row.course.name.clone(),
        completed_on: row.completed_on.clone(),
        hours,
        detail,
    }
}

/// The record exactly as it goes on the wire under `key`: a pure function
/// of the facts and their format version, so every resend of a revision
/// carries the same bytes. Format 1 is the only one so far; a new format
/// adds an arm here and a golden file, and rows keep the version they
/// were built with.
pub fn wire_record(facts: &RecordFacts, key: &str) -> String {
    match facts.format {
        1 => wire_v1(facts, key),
        other => unreachable!("record format {other} is refused when a row is read"),
    }
}

fn wire_v1(facts: &RecordFacts, key: &str) -> String {
    let common = Common {
        idempotency_key: key,
        national_id: facts.national_id.expose(),
        course_code: &facts.course_code,
        course_name: &facts.course_name,
        completed_on: &facts.completed_on,
        hours: facts.hours.to_string(),
    };
    let json = match &facts.detail {
        RecordDetail::Lifelong {
            learning_mode,
            digital,
            classroom,
            category_code,
        } => serde_json::to_string(&Lifelong {
            common,
            learning_mode: learning_mode.code(),
            digital_hours: digital.to_string(),
            classroom_hours: classroom.to_string(),
            category_code,
        }),
        RecordDetail::Teacher => serde_json::to_string(&Teacher {
            common,
            personnel_category: "10",
        }),
        RecordDetail::Enved {
            enved_account,
            service_unit_code,
        } => serde_json::to_string(&Enved {
            common,
            enved_account: enved_account.as_deref(),
            service_unit_code: service_unit_code.as_deref(),
        }),
    };
    json.expect("a record always serialises")
}

/// A batch body from wire records, without parsing them again.
pub fn batch_body<'a>(records: impl IntoIterator<Item = &'a str>) -> String {
    let mut body = String::from("{\"records\":[");
    for (i, r) in records.into_iter().enumerate() {
        if i > 0 {
            body.push(',');
        }
        body.push_str(r);
    }
    body.push_str("]}");
    body
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_stable_short_and_differ_per_registry_and_revision() {
        let a = idempotency_key("cmp-1", RegistryKind::Lifelong, 1);
        assert_eq!(a, idempotency_key("cmp-1", RegistryKind::Lifelong, 1));
        assert!(a.len() <= 64);
        assert_ne!(a, idempotency_key("cmp-1", RegistryKind::Teacher, 1));
        assert_ne!(a, idempotency_key("cmp-1", RegistryKind::Lifelong, 2));
        assert_ne!(a, idempotency_key("cmp-2", RegistryKind::Lifelong, 1));
    }

    #[test]
    fn a_batch_body_is_the_records_verbatim() {
        let body = batch_body(["{\"a\":1}", "{\"b\":2}"]);
        let v: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["records"][1]["b"], 2);
    }
}
