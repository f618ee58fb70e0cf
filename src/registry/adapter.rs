//! One adapter per registry: each owns its registry's record shape
//! (REGISTRY-API.md, "Upload a batch"). A deployment whose registry speaks
//! something else changes this file and nothing else.

use crate::domain::{Hours, RegistryKind};
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

/// The record exactly as it is sent, key included, serialised once at scan
/// time so that every resend carries the same bytes under the same key.
pub fn build_record(registry: RegistryKind, row: &ScanRow, hours: Hours, key: &str) -> String {
    let common = Common {
        idempotency_key: key,
        national_id: row.person.national_id.expose(),
        course_code: &row.course.course_code,
        course_name: &row.course.name,
        completed_on: &row.completed_on,
        hours: hours.to_string(),
    };
    let json = match registry {
        RegistryKind::Lifelong => serde_json::to_string(&Lifelong {
            common,
            learning_mode: row.course.learning_mode.code(),
            digital_hours: row.course.digital_hours.to_string(),
            classroom_hours: row.course.classroom_hours.to_string(),
            category_code: &row.course.category_code,
        }),
        RegistryKind::Teacher => serde_json::to_string(&Teacher {
            common,
            personnel_category: "10",
        }),
        RegistryKind::Enved => serde_json::to_string(&Enved {
            common,
            enved_account: row.person.enved_account.as_deref(),
            service_unit_code: row.person.service_unit_code.as_deref(),
        }),
    };
    json.expect("a record always serialises")
}

/// A batch body from stored records, without parsing them again.
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
